//! Steering the fleet: the breakers as the fleet store holds them, operators' actions on them
//! (force, reset, thresholds, pin) and the audit trail of every action. Used by the admin API
//! (`routes::admin`), the tuner (`routes::tuner`) and the local status page.
//!
//! Store layout: breaker items are the breakers' own (`breaker#{name}` / `state`); threshold
//! changes are runtime override items (`config#breaker` / `{name}`, read by every instance
//! within one cache TTL); pins live at `config#pinned` / `{name}`; the audit trail at
//! `audit#admin` / `{epoch ms}#{random}`, kept 90 days.

mod audit;
mod events;
mod pins;
mod status;
mod thresholds;
mod view;

pub use audit::{AuditEntry, AuditLog};
pub use events::{RecentEvent, RecentEvents};
pub use pins::Pins;
pub use status::status;
pub use thresholds::{ThresholdError, apply_thresholds, threshold_item};
pub use view::{BreakerView, fleet_view};
