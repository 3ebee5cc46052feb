//! The fleet-wide token manager: one access token and one jsapi ticket per account for the whole
//! fleet, refreshed ahead of expiry by a single lease holder (see [`TokenManager`]).

mod blocks;
mod config;
mod fleet;
mod fresh;
mod inflight;
mod limits;
mod lookup;
mod manager;
mod record;
mod refresh;
mod source;
mod stats;

pub use blocks::config_fix;
pub use config::TokenConfig;
pub use manager::TokenManager;
pub use record::TokenKind;
pub use source::{Fetched, TokenMode, TokenSource};
pub use stats::TokenStats;
