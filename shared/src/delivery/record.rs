//! What the delivery ledger keeps for a settled message.

use serde::{Deserialize, Serialize};

/// What the delivery ledger keeps for a settled message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeliveryRecord {
    /// WeChat accepted it.
    Sent {
        /// WeChat's message id (template and subscribe sends).
        msgid: Option<i64>,
    },
    /// WeChat refused the message itself: retrying cannot help.
    Rejected {
        /// WeChat's errcode, when it answered with one.
        errcode: Option<i64>,
        /// What went wrong.
        errmsg: String,
    },
    /// WeChat may have it: the send failed in a way that can follow delivery. Not sent again
    /// automatically ([`InDoubt::Hold`]); an operator resends it if the user did not get it.
    InDoubt {
        /// The failure.
        reason: String,
    },
}
