//! The shapes of a WeChat Pay notice: the envelope, and the decrypted transaction or refund.
//! Unknown fields are ignored and nothing beyond what is required is required: WeChat Pay adds
//! fields without notice.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The notice as posted (the resource still encrypted).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    /// The notice id (`EV-…` or a UUID).
    pub id: String,
    /// RFC 3339.
    #[serde(default)]
    pub create_time: String,
    /// `TRANSACTION.SUCCESS`, `REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`, …
    pub event_type: String,
    /// `encrypt-resource`.
    #[serde(default)]
    pub resource_type: String,
    /// e.g. `支付成功`.
    #[serde(default)]
    pub summary: String,
    /// The encrypted payload.
    pub resource: Resource,
}

/// The encrypted payload of a notice.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    /// `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// base64(ciphertext ‖ tag).
    pub ciphertext: String,
    /// 12 characters.
    pub nonce: String,
    /// May be empty.
    #[serde(default)]
    pub associated_data: String,
    /// `transaction`, `refund`, …
    #[serde(default)]
    pub original_type: String,
}

/// The payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    /// The payer's openid.
    #[serde(default)]
    pub openid: String,
}

/// A transaction's amounts (fen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// The order total.
    pub total: i64,
    /// What the payer paid after coupons.
    #[serde(default)]
    pub payer_total: Option<i64>,
    /// `CNY`.
    #[serde(default)]
    pub currency: Option<String>,
    /// `CNY`.
    #[serde(default)]
    pub payer_currency: Option<String>,
}

/// A decrypted transaction (`TRANSACTION.SUCCESS`, or an order query's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The merchant.
    pub mchid: String,
    /// The app.
    #[serde(default)]
    pub appid: Option<String>,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// WeChat Pay's order number.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// `JSAPI`, `NATIVE`, …
    #[serde(default)]
    pub trade_type: Option<String>,
    /// `SUCCESS`, `REFUND`, `NOTPAY`, `CLOSED`, `REVOKED`, `USERPAYING`, `PAYERROR`, …
    pub trade_state: String,
    /// Human-readable state.
    #[serde(default)]
    pub trade_state_desc: Option<String>,
    /// The bank.
    #[serde(default)]
    pub bank_type: Option<String>,
    /// The merchant's data, echoed.
    #[serde(default)]
    pub attach: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub success_time: Option<String>,
    /// The payer.
    #[serde(default)]
    pub payer: Option<Payer>,
    /// Amounts.
    #[serde(default)]
    pub amount: Option<Amount>,
}

/// A refund's amounts (fen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    /// The original order's total.
    pub total: i64,
    /// This refund.
    pub refund: i64,
    /// What the payer paid.
    #[serde(default)]
    pub payer_total: Option<i64>,
    /// What goes back to the payer.
    #[serde(default)]
    pub payer_refund: Option<i64>,
}

/// A decrypted refund (`REFUND.SUCCESS` / `REFUND.ABNORMAL` / `REFUND.CLOSED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The merchant.
    #[serde(default)]
    pub mchid: Option<String>,
    /// The original order.
    pub out_trade_no: String,
    /// WeChat Pay's original order.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat Pay's refund number.
    #[serde(default)]
    pub refund_id: Option<String>,
    /// `SUCCESS`, `CLOSED`, `ABNORMAL`, `PROCESSING`.
    pub refund_status: String,
    /// RFC 3339, when successful.
    #[serde(default)]
    pub success_time: Option<String>,
    /// Where the money went.
    #[serde(default)]
    pub user_received_account: Option<String>,
    /// Amounts.
    #[serde(default)]
    pub amount: Option<RefundAmount>,
}

/// What a notice (or a reconciliation) tells the business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PayEvent {
    /// A payment's state.
    Transaction(Transaction),
    /// A refund's state.
    Refund(Refund),
    /// Another event type, passed on as decrypted.
    Other {
        /// The event type.
        event_type: String,
        /// The decrypted resource.
        resource: Value,
    },
}

impl PayEvent {
    /// The business key it is processed once under: the order (or refund) and its state.
    pub fn order_key(&self, notice_id: &str) -> String {
        match self {
            Self::Transaction(t) => format!("trade:{}:{}", t.out_trade_no, t.trade_state),
            Self::Refund(r) => format!("refund:{}:{}", r.out_refund_no, r.refund_status),
            Self::Other { event_type, .. } => format!("event:{event_type}:{notice_id}"),
        }
    }

    /// The merchant the event names, when it names one.
    pub fn mchid(&self) -> Option<&str> {
        match self {
            Self::Transaction(t) => Some(&t.mchid),
            Self::Refund(r) => r.mchid.as_deref(),
            Self::Other { .. } => None,
        }
    }
}
