//! The outcome, counted from what the WeChat mock recorded and what the dead-letter queue holds.

use std::collections::{HashMap, HashSet};

use crate::traffic;

/// Counts from the mock's recorded messages and the dead-letter queue.
#[derive(Debug)]
pub struct Report {
    delivered_once: usize,
    duplicated_ids: usize,
    extra_copies: usize,
    lost: usize,
    foreign: usize,
    poison_dead: usize,
    poison_missing: usize,
    pub legit_dead: usize,
    legit_dead_ids: Vec<String>,
}

impl Report {
    pub fn count(mock: &wechat_mock::MockHandle, n: usize, poison: &[String], dead: &[String]) -> Self {
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
        Self {
            delivered_once: expected.iter().filter(|id| copies.get(*id) == Some(&1)).count(),
            duplicated_ids: copies.values().filter(|c| **c > 1).count(),
            extra_copies: copies.values().map(|c| c.saturating_sub(1)).sum(),
            lost: expected.iter().filter(|id| !copies.contains_key(*id)).count(),
            foreign,
            poison_dead: dead_poison.len(),
            poison_missing: poison_set.len() - dead_poison.len(),
            legit_dead: legit_dead_ids.len(),
            legit_dead_ids,
        }
    }

    pub fn print(&self) {
        println!("delivered exactly once: {}", self.delivered_once);
        println!(
            "duplicates: {} messages delivered more than once ({} extra copies)",
            self.duplicated_ids, self.extra_copies
        );
        println!("lost (never delivered): {}", self.lost);
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
