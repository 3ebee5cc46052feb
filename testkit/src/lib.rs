//! The test kit: doubles and gates shared by wechat-ha's tests and benchmarks.
//!
//! Kept out of the `shared` library on purpose: the functions' release binaries link `shared`
//! only, so none of this can reach production. Use it as a dev-dependency.
//!
//! - [`store`]: [`CountingStore`](store::CountingStore) (store costs), [`FlakyStore`](store::FlakyStore)
//!   (down / stalled on command) around any state store;
//! - [`slow`]: [`YieldingStore`](slow::YieldingStore) (interleaving) and [`SlowStore`](slow::SlowStore)
//!   (late answers, lost replies);
//! - [`observer`]: [`CountingObserver`](observer::CountingObserver), every resilience event counted
//!   and every transition logged;
//! - [`queue`]: [`SlowQueue`](queue::SlowQueue), a queue whose sends answer late;
//! - [`proxy`]: [`DelayProxy`](proxy::DelayProxy), a TCP proxy in front of a real service (moto)
//!   that adds latency or cuts it off;
//! - [`emulator`]: the DynamoDB emulator gate — a fresh table per test, a skip locally without an
//!   emulator, a failure under `CI=true`.

pub mod emulator;
pub mod observer;
pub mod proxy;
pub mod queue;
pub mod slow;
pub mod store;

pub use emulator::{emulator_configured, emulator_store, sdk_config};
pub use observer::{CountingObserver, TransitionRecord};
pub use proxy::DelayProxy;
pub use queue::SlowQueue;
pub use slow::{SlowStore, YieldingStore};
pub use store::{CountingStore, FlakyStore, Health, StoreOps, counting};
