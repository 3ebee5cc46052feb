//! Orders the merchant expects to be paid: the contract reconciliation works from.
//!
//! Table contract (the merchant's systems write it when they create a WeChat Pay order):
//! `pk = pay#pending`, `sk = {out_trade_no}`, attributes `registered_at_ms` (N, epoch ms, required)
//! and `amount_total` (N, fen, optional: when present a notice with another amount is refused as
//! unacceptable). The default hook removes the item once the order reaches a final state;
//! reconciliation queries WeChat Pay for items older than `PAY_RECONCILE_AFTER_SECS` and feeds the
//! answer through the same exactly-once path as a notice.

use crate::store::{AttrValue, Attrs, Condition, Key, SharedStore};

/// The pending orders' partition.
pub const PENDING_PK: &str = "pay#pending";

/// Trade states after which an order changes no more (pending ends).
pub fn is_final(trade_state: &str) -> bool {
    matches!(trade_state, "SUCCESS" | "CLOSED" | "REVOKED" | "PAYERROR" | "REFUND")
}

/// One pending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOrder {
    /// The merchant's order number.
    pub out_trade_no: String,
    /// When the merchant registered it (epoch ms).
    pub registered_at_ms: i64,
    /// The expected total (fen), if given.
    pub amount_total: Option<i64>,
}

/// The pending orders in the fleet store.
#[derive(Debug, Clone)]
pub struct PendingOrders {
    store: SharedStore,
}

impl PendingOrders {
    /// The pending orders on `store`.
    pub fn new(store: SharedStore) -> Self {
        Self { store }
    }

    /// Registers an order (what the merchant's systems do; also for tests and `wechat-local`).
    ///
    /// # Errors
    /// The store's failure, as text.
    pub async fn register(
        &self,
        out_trade_no: &str,
        registered_at_ms: i64,
        amount_total: Option<i64>,
    ) -> Result<(), String> {
        let mut attrs = Attrs::new();
        attrs.insert("registered_at_ms".into(), AttrValue::N(registered_at_ms));
        if let Some(total) = amount_total {
            attrs.insert("amount_total".into(), AttrValue::N(total));
        }
        self.store
            .put(&Key::new(PENDING_PK, out_trade_no), attrs, Condition::Always)
            .await
            .map_err(|e| e.to_string())
    }

    /// Every pending order.
    ///
    /// # Errors
    /// The store's failure, as text.
    pub async fn list(&self) -> Result<Vec<PendingOrder>, String> {
        Ok(self
            .store
            .query(PENDING_PK)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(out_trade_no, attrs)| PendingOrder {
                registered_at_ms: attrs.num_attr("registered_at_ms").unwrap_or(0),
                amount_total: attrs.num_attr("amount_total"),
                out_trade_no,
            })
            .collect())
    }

    /// The expected total of `out_trade_no`, when it is pending with one.
    ///
    /// # Errors
    /// The store's failure, as text.
    pub async fn expected_total(&self, out_trade_no: &str) -> Result<Option<i64>, String> {
        let item = self
            .store
            .get(&Key::new(PENDING_PK, out_trade_no))
            .await
            .map_err(|e| e.to_string())?;
        Ok(item.and_then(|attrs| attrs.num_attr("amount_total")))
    }

    /// Ends `out_trade_no`'s pending state.
    ///
    /// # Errors
    /// The store's failure, as text.
    pub async fn settle(&self, out_trade_no: &str) -> Result<(), String> {
        self.store
            .delete(&Key::new(PENDING_PK, out_trade_no), Condition::Always)
            .await
            .map_err(|e| e.to_string())
    }
}
