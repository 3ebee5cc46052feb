//! Follower data sync: WeChat's follower list and profiles mirrored into the table.
//!
//! - [`follower`]: one item per follower (`follower#{shard}` / `{openid}`), written only when
//!   newer — by a full pass's page or by a callback subscribe / unsubscribe event;
//! - [`state`]: the fleet's one lease + checkpoint item (one run at a time; resumable);
//! - [`run`]: a run — tags, list pages, profile batches, the sweep — polite to WeChat's quotas;
//! - [`read`]: the read API's pages and the export, by cursor.
//!
//! The HTTP side is `routes::followers` and `routes::admin` (`POST /admin/sync`); the schedule's
//! side `routes::sync`; the callback's events go through [`follower::store_event`].

pub mod follower;
pub mod read;
pub mod run;
pub mod state;

pub use follower::{Follower, Written};
pub use read::{Cursor, Filter};
pub use run::{Outcome, Politeness, RunReport, Syncer};
pub use state::{Checkpoint, PassCounts};
