//! The refresh task in flight, per credential kind: its result channel, so callers without a
//! valid token wait for the same task instead of starting their own (one refresh per instance
//! and kind at a time).

use std::sync::Mutex;

use tokio::sync::watch;

use super::record::{Token, TokenKind};
use crate::wechat::error::WechatError;

/// What one refresh task found: a usable token, `None` while another instance holds the lease
/// and nothing usable is known, or the refresh's error when no valid token is left.
pub(crate) type Done = Result<Option<Token>, WechatError>;

/// The refresh task in flight, per kind: its result channel (`None` until it is done).
#[derive(Debug, Default)]
pub(crate) struct Inflight([Mutex<Option<watch::Receiver<Option<Done>>>>; 2]);

impl Inflight {
    pub(crate) fn slot(&self, kind: TokenKind) -> std::sync::MutexGuard<'_, Option<watch::Receiver<Option<Done>>>> {
        // Only an `Option` swap happens under this lock; a poisoned one is still consistent.
        self.0[kind.index()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
