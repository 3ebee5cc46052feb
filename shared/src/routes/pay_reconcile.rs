//! The reconciliation (a schedule): WeChat Pay does not guarantee a notice, so every pending order
//! (`pay#pending`, written by the merchant) older than `PAY_RECONCILE_AFTER_SECS` is looked up
//! (`GET /v3/pay/transactions/out-trade-no/{no}`), and a final answer goes through the same
//! exactly-once path as a notice — a paid order is never left unpaid because its notice was lost,
//! and it is never processed twice when the notice comes after all. Orders still unpaid after
//! `PAY_PENDING_MAX_AGE_SECS` are given up (logged, counted).

use crate::deadline::Deadline;
use crate::deps::PayDeps;
use crate::pay::orders::is_final;
use crate::pay::{PayEvent, PendingOrders, Processed, process};
use crate::telemetry::metrics::{self, count_with};

/// One lookup's budget.
const LOOKUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Pending orders old enough to look up.
    pub looked_up: usize,
    /// Processed now (their notice was lost).
    pub settled: Vec<String>,
    /// Processed before (the notice came meanwhile).
    pub duplicates: usize,
    /// Not final yet.
    pub still_pending: usize,
    /// Given up.
    pub expired: usize,
    /// Lookups that failed (tried again next run).
    pub failed: usize,
}

/// One run.
///
/// # Errors
/// Text when there is no merchant key to query with, or the pending orders cannot be read.
pub async fn handle(deps: &PayDeps) -> Result<ReconcileReport, String> {
    let client = deps
        .client
        .as_ref()
        .ok_or("reconciliation needs the merchant API key (merchant_private_key_pem, merchant_serial_no)")?;
    let pending = PendingOrders::new(deps.store.clone());
    let now = deps.clock.now_ms();
    let after_ms = i64::try_from(deps.reconcile_after.as_millis()).unwrap_or(i64::MAX);
    let give_up_ms = i64::try_from(deps.give_up_after.as_millis()).unwrap_or(i64::MAX);
    let mut report = ReconcileReport::default();
    for order in pending.list().await? {
        let age = now - order.registered_at_ms;
        if age < after_ms {
            continue;
        }
        report.looked_up += 1;
        let deadline = Deadline::after(LOOKUP_BUDGET);
        let outcome = match client.query_order(&order.out_trade_no, deadline).await {
            Ok(Some(transaction)) if is_final(&transaction.trade_state) => {
                let event = PayEvent::Transaction(transaction);
                let wait = tokio::time::Instant::now() + LOOKUP_BUDGET / 2;
                match process(
                    &deps.ledger,
                    deps.hook.as_ref(),
                    &deps.store,
                    None,
                    &event,
                    deadline,
                    wait,
                )
                .await
                {
                    Ok(Processed::Now(_)) => {
                        report.settled.push(order.out_trade_no.clone());
                        "settled"
                    }
                    Ok(Processed::Duplicate(_)) => {
                        report.duplicates += 1;
                        // Its notice was processed; the hook's own settle may have been the one lost.
                        let _ = pending.settle(&order.out_trade_no).await;
                        "duplicate"
                    }
                    Err(error) => {
                        tracing::warn!(target: "wechat_ha::pay", out_trade_no = %order.out_trade_no, reason = %error, "reconciled order not processed; next run");
                        report.failed += 1;
                        "failed"
                    }
                }
            }
            Ok(_) if age >= give_up_ms => {
                tracing::warn!(target: "wechat_ha::pay", out_trade_no = %order.out_trade_no, "order still unpaid after the pending limit; no longer looked up");
                let _ = pending.settle(&order.out_trade_no).await;
                report.expired += 1;
                "expired"
            }
            Ok(_) => {
                report.still_pending += 1;
                "pending"
            }
            Err(error) => {
                tracing::warn!(target: "wechat_ha::pay", out_trade_no = %order.out_trade_no, reason = %error, "order lookup failed; next run");
                report.failed += 1;
                "failed"
            }
        };
        count_with(metrics::PAY_RECONCILED, "outcome", outcome);
    }
    tracing::info!(target: "wechat_ha::pay", ?report, "reconciliation run");
    Ok(report)
}
