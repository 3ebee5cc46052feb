//! The outcome, counted from what the WeChat mock recorded and what the dead-letter queue holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::traffic;

/// Counts from the mock's recorded messages and the dead-letter queue.
#[derive(Debug)]
pub struct Report {
    delivered_once: usize,
    duplicated_ids: usize,
    extra_copies: usize,
    lost: usize,
    undelivered_in_dlq: usize,
    delivered_but_in_dlq: usize,
    foreign: usize,
    poison_dead: usize,
    poison_missing: usize,
    pub legit_dead: usize,
    legit_dead_ids: Vec<String>,
    /// How the send API first answered the messages now in the DLQ (202's `reason`, shortened).
    dead_by_first_answer: BTreeMap<String, usize>,
}

impl Report {
    /// `first_answers`: message id → how the send API first answered it.
    pub fn count(
        mock: &wechat_mock::MockHandle,
        n: usize,
        poison: &[String],
        dead: &[String],
        first_answers: &HashMap<String, String>,
    ) -> Self {
        let mut copies: HashMap<String, usize> = HashMap::new();
        let mut foreign = 0;
        for message in mock.messages() {
            match message.body["rel_id"].as_str() {
                Some(id) => *copies.entry(id.to_owned()).or_default() += 1,
                None => foreign += 1,
            }
        }
        let expected: HashSet<String> = (0..n).map(traffic::id).collect();
        foreign += copies.keys().filter(|id| !expected.contains(*id)).count();
        let poison_set: HashSet<&str> = poison.iter().map(String::as_str).collect();
        let dead_poison: HashSet<&str> = dead
            .iter()
            .map(String::as_str)
            .filter(|b| poison_set.contains(b))
            .collect();
        let legit_dead_ids: Vec<String> = dead
            .iter()
            .filter(|b| !poison_set.contains(b.as_str()))
            .map(|b| {
                serde_json::from_str::<serde_json::Value>(b)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| b.clone())
            })
            .collect();
        let dead_ids: HashSet<&str> = legit_dead_ids.iter().map(String::as_str).collect();
        let mut dead_by_first_answer = BTreeMap::new();
        for id in &legit_dead_ids {
            let answer = first_answers.get(id).map_or("?", String::as_str);
            *dead_by_first_answer.entry(answer.to_owned()).or_default() += 1;
        }
        Self {
            delivered_once: expected.iter().filter(|id| copies.get(*id) == Some(&1)).count(),
            duplicated_ids: copies.values().filter(|c| **c > 1).count(),
            extra_copies: copies.values().map(|c| c.saturating_sub(1)).sum(),
            lost: expected
                .iter()
                .filter(|id| !copies.contains_key(*id) && !dead_ids.contains(id.as_str()))
                .count(),
            undelivered_in_dlq: dead_ids.iter().filter(|id| !copies.contains_key(**id)).count(),
            delivered_but_in_dlq: dead_ids.iter().filter(|id| copies.contains_key(**id)).count(),
            foreign,
            poison_dead: dead_poison.len(),
            poison_missing: poison_set.len() - dead_poison.len(),
            legit_dead: legit_dead_ids.len(),
            legit_dead_ids,
            dead_by_first_answer,
        }
    }

    pub fn print(&self) {
        println!("delivered exactly once: {}", self.delivered_once);
        println!(
            "duplicates: {} messages delivered more than once ({} extra copies)",
            self.duplicated_ids, self.extra_copies
        );
        println!(
            "not delivered: {} waiting in the DLQ (recoverable by a redrive), {} lost (neither delivered nor in the DLQ)",
            self.undelivered_in_dlq, self.lost
        );
        println!("unexpected messages at WeChat: {}", self.foreign);
        println!(
            "DLQ: {} poisoned (of {}), {} real messages{}",
            self.poison_dead,
            self.poison_dead + self.poison_missing,
            self.legit_dead,
            if self.legit_dead_ids.is_empty() {
                String::new()
            } else {
                format!(
                    ": {:?}{}",
                    &self.legit_dead_ids[..self.legit_dead_ids.len().min(10)],
                    if self.legit_dead_ids.len() > 10 { " …" } else { "" }
                )
            }
        );
        if self.delivered_but_in_dlq > 0 {
            println!(
                "  of which delivered already (a redrive acknowledges them without sending): {}",
                self.delivered_but_in_dlq
            );
        }
        if !self.dead_by_first_answer.is_empty() {
            println!(
                "  real messages in the DLQ by the send API's first answer: {:?}",
                self.dead_by_first_answer
            );
        }
    }

    pub fn exact(&self, n: usize) -> bool {
        self.delivered_once == n
            && self.extra_copies == 0
            && self.lost == 0
            && self.foreign == 0
            && self.poison_missing == 0
            && self.legit_dead == 0
    }
}
