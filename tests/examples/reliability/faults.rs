//! The fault feeder: every send call independently fails with probability `rate`.
//!
//! The mock's faults are "the next N calls to this path" rules, consumed in insertion order. The
//! feeder keeps each send path's rule list `LEAD` rules ahead of the calls it has seen: each rule
//! is either a pass-through (`delay_ms(0)`) or, with probability `rate`, a failure before
//! processing — errcode -1, HTTP 503 or a dropped connection in equal parts. Because every call
//! consumes exactly one rule, the plan's first `calls` entries are exactly what the calls got,
//! provided the list never ran dry (checked on every tick and reported).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use wechat_mock::{Fault, MockHandle};

/// The three send APIs the run exercises.
pub const SEND_PATHS: [&str; 3] = [
    "/cgi-bin/message/custom/send",
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/subscribe/send",
];

/// How many rules each path is kept ahead of its calls.
const LEAD: u64 = 1_500;
/// How often the feeder tops up.
const TICK: Duration = Duration::from_millis(2);

/// What one planned call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Pass,
    Errcode,
    Status503,
    Drop,
}

/// Outcomes of the calls that reached the mock, per kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Calls answered normally.
    pub passed: u64,
    /// Calls answered `{"errcode":-1}`.
    pub errcode: u64,
    /// Calls answered HTTP 503.
    pub status_503: u64,
    /// Calls whose connection was dropped before processing.
    pub dropped: u64,
    /// Calls that found no rule (the feeder fell behind): answered normally, not planned.
    pub unplanned: u64,
}

impl Tally {
    /// All calls.
    pub fn calls(&self) -> u64 {
        self.passed + self.errcode + self.status_503 + self.dropped + self.unplanned
    }

    /// Failed calls.
    pub fn failed(&self) -> u64 {
        self.errcode + self.status_503 + self.dropped
    }
}

/// The plan of one path.
#[derive(Debug)]
struct PathPlan {
    path: &'static str,
    planned: Vec<Planned>,
}

/// Keeps the mock's fault lists topped up.
#[derive(Debug)]
pub struct Feeder {
    mock: MockHandle,
    rate: f64,
    rng: SmallRng,
    plans: Vec<PathPlan>,
    starved: bool,
}

impl Feeder {
    /// A feeder failing `rate` (0.0–1.0) of the calls, with a seeded random sequence.
    pub fn new(mock: MockHandle, rate: f64, seed: u64) -> Self {
        let plans = SEND_PATHS
            .iter()
            .map(|path| PathPlan {
                path,
                planned: Vec::new(),
            })
            .collect();
        Self {
            mock,
            rate,
            rng: SmallRng::seed_from_u64(seed),
            plans,
            starved: false,
        }
    }

    /// Tops every path up to `LEAD` rules ahead of its calls.
    pub fn top_up(&mut self) {
        for index in 0..self.plans.len() {
            let calls = self.mock.calls(self.plans[index].path);
            let injected = self.plans[index].planned.len() as u64;
            if calls >= injected && injected > 0 {
                self.starved = true;
            }
            for _ in injected..calls + LEAD {
                let planned = self.draw();
                let fault = match planned {
                    Planned::Pass => Fault::delay_ms(0),
                    Planned::Errcode => Fault::errcode(-1),
                    Planned::Status503 => Fault::status(503),
                    Planned::Drop => Fault::drop_connection(),
                };
                self.mock.inject(fault.on_path(self.plans[index].path).times(1));
                self.plans[index].planned.push(planned);
            }
        }
    }

    fn draw(&mut self) -> Planned {
        if !self.rng.random_bool(self.rate) {
            return Planned::Pass;
        }
        match self.rng.random_range(0..3) {
            0 => Planned::Errcode,
            1 => Planned::Status503,
            _ => Planned::Drop,
        }
    }

    /// Tops up every `TICK` in a task (abort it to stop); the feeder stays readable for the tally.
    pub fn spawn(self) -> (Arc<Mutex<Self>>, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Mutex::new(self));
        let feeder = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(mut feeder) = feeder.lock() {
                    feeder.top_up();
                }
                tokio::time::sleep(TICK).await;
            }
        });
        (shared, task)
    }

    /// What the calls so far got, and whether the feeder ever fell behind.
    pub fn tally(&self) -> (Tally, bool) {
        let mut tally = Tally::default();
        for plan in &self.plans {
            let calls = self.mock.calls(plan.path);
            let planned = plan.planned.len() as u64;
            tally.unplanned += calls.saturating_sub(planned);
            for outcome in plan.planned.iter().take(usize::try_from(calls).unwrap_or(usize::MAX)) {
                match outcome {
                    Planned::Pass => tally.passed += 1,
                    Planned::Errcode => tally.errcode += 1,
                    Planned::Status503 => tally.status_503 += 1,
                    Planned::Drop => tally.dropped += 1,
                }
            }
        }
        (tally, self.starved)
    }
}
