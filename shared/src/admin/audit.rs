//! The admin audit trail: every action, who did it and when, in the fleet store.

use serde::Serialize;

use crate::clock::SharedClock;
use crate::store::{AttrValue, Attrs, Condition, EXPIRES_AT, Key, SharedStore, StoreError};

/// The audit partition.
pub const AUDIT_PK: &str = "audit#admin";
/// How long audit entries are kept (seconds): 90 days.
const KEEP_SECS: i64 = 90 * 86_400;

/// This process's action counter (orders actions within one millisecond).
static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When (epoch ms).
    pub at_ms: i64,
    /// Who: an IAM principal ARN, `key:<fingerprint>` for a bearer key, or `tuner`.
    pub actor: String,
    /// What: `force`, `reset`, `thresholds`, `pin`, `unpin`, `tune`.
    pub action: String,
    /// On which breaker.
    pub target: String,
    /// The details (new state, settings), as given.
    pub detail: String,
}

/// Writes and lists audit entries.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: SharedStore,
    clock: SharedClock,
}

impl AuditLog {
    /// The trail on `store`.
    pub fn new(store: SharedStore, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Records one action now.
    ///
    /// # Errors
    /// [`StoreError`] when the store does not take it.
    pub async fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<AuditEntry, StoreError> {
        let at_ms = self.clock.now_ms();
        let entry = AuditEntry {
            at_ms,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.to_owned(),
        };
        let mut attrs = Attrs::new();
        attrs.insert("actor".into(), AttrValue::from(actor));
        attrs.insert("action".into(), AttrValue::from(action));
        attrs.insert("target".into(), AttrValue::from(target));
        attrs.insert("detail".into(), AttrValue::from(detail));
        attrs.insert("at_ms".into(), AttrValue::N(at_ms));
        attrs.insert(EXPIRES_AT.into(), AttrValue::N(at_ms / 1000 + KEEP_SECS));
        // Sortable by time, then by this instance's sequence (two actions in one millisecond stay
        // in order); the random part keeps two instances' keys apart.
        let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = Key::new(
            AUDIT_PK,
            format!("{at_ms:015}#{sequence:010}#{:08x}", rand::random::<u32>()),
        );
        self.store.put(&key, attrs, Condition::ItemAbsent).await?;
        Ok(entry)
    }

    /// The newest `limit` entries, newest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub async fn list(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut items = self.store.query(AUDIT_PK).await?;
        // Newest first: the sort keys start with the time and the sequence.
        items.sort_by(|(a, _), (b, _)| b.cmp(a));
        items.truncate(limit);
        let text = |attrs: &Attrs, name: &str| attrs.str_attr(name).unwrap_or_default().to_owned();
        let entries: Vec<AuditEntry> = items
            .iter()
            .map(|(_, attrs)| AuditEntry {
                at_ms: attrs.num_attr("at_ms").unwrap_or_default(),
                actor: text(attrs, "actor"),
                action: text(attrs, "action"),
                target: text(attrs, "target"),
                detail: text(attrs, "detail"),
            })
            .collect();
        Ok(entries)
    }
}
