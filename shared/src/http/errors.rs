//! Every domain error's one mapping to an [`ApiError`]: status, code and a client-safe message,
//! with the reason kept for the log. Routes use `?`; none chooses a status itself.

use super::error::{ApiError, ErrorKind};
use crate::auth::{LoginError, ReturnError, SessionError, StateError, UserDataError};
use crate::ledger::LedgerError;
use crate::protocol::{EncryptError, MessageError, OpenError, ReplyError};
use crate::queue::QueueError;
use crate::wechat::WechatError;

impl From<OpenError> for ApiError {
    /// 403 for a sender not proven to be WeChat (missing or wrong signature, plaintext in safe
    /// mode), 400 for a request that cannot be opened. One message per class, so a response
    /// reveals nothing about which check failed (a padding oracle needs that difference).
    fn from(error: OpenError) -> Self {
        if error.is_unauthenticated() {
            Self::new(ErrorKind::InvalidSignature, "invalid signature").with_detail(error)
        } else {
            Self::new(ErrorKind::BadRequest, "invalid request").with_detail(error)
        }
    }
}

impl From<MessageError> for ApiError {
    /// An authenticated body that is not a message: 400.
    fn from(error: MessageError) -> Self {
        Self::new(ErrorKind::BadRequest, "invalid message").with_detail(error)
    }
}

impl From<LedgerError> for ApiError {
    /// The store is out: 503 (the caller retries); anything else — a corrupt record, a refused
    /// request — is our bug: 500. Never a silent second run.
    fn from(error: LedgerError) -> Self {
        if error.is_outage() || matches!(error, LedgerError::DeadlineExceeded) {
            Self::new(ErrorKind::Unavailable, "temporarily unavailable").with_detail(error)
        } else {
            Self::internal().with_detail(error)
        }
    }
}

impl From<ReplyError> for ApiError {
    /// The business handler returned a reply that cannot be rendered: 500.
    fn from(error: ReplyError) -> Self {
        Self::internal().with_detail(format_args!("unrenderable reply: {error}"))
    }
}

impl From<EncryptError> for ApiError {
    /// The reply could not be encrypted: 500.
    fn from(error: EncryptError) -> Self {
        Self::internal().with_detail(format_args!("could not encrypt the reply: {error}"))
    }
}

impl From<QueueError> for ApiError {
    /// The queue is unavailable: 503.
    fn from(error: QueueError) -> Self {
        Self::new(ErrorKind::Unavailable, "temporarily unavailable; retry later").with_detail(error)
    }
}

impl From<WechatError> for ApiError {
    /// WeChat could not serve the request (down, breaker open, quota, refused): 503, the
    /// upstream text only in the log.
    fn from(error: WechatError) -> Self {
        Self::new(ErrorKind::Unavailable, "WeChat API unavailable; retry later").with_detail(error)
    }
}

impl From<LoginError> for ApiError {
    /// A refused or replayed code is the caller's (400: sign in again); a user WeChat will not
    /// sign in is 403; a concurrent exchange still running 409; WeChat's per-user limit 429;
    /// WeChat or the store out 503 (try again); our deployment wrong 500.
    fn from(error: LoginError) -> Self {
        let (kind, message) = match &error {
            LoginError::CodeRefused(_) => (
                ErrorKind::BadRequest,
                "the login code is invalid or expired; sign in again",
            ),
            LoginError::Replayed => (ErrorKind::BadRequest, "the login code was used already; sign in again"),
            LoginError::Blocked => (ErrorKind::Forbidden, "WeChat does not allow this login"),
            LoginError::SnapshotUser => (ErrorKind::Forbidden, "open the page in WeChat to sign in"),
            LoginError::InProgress => (ErrorKind::Conflict, "this login is still being processed; retry"),
            LoginError::Throttled => (ErrorKind::TooManyRequests, "too many logins; retry in a minute"),
            LoginError::Unavailable(_) | LoginError::Store(_) => {
                (ErrorKind::Unavailable, "login temporarily unavailable; retry")
            }
            LoginError::Misconfigured(_) | LoginError::Internal(_) => (ErrorKind::Internal, "internal error"),
        };
        Self::new(kind, message).with_detail(error)
    }
}

impl From<StateError> for ApiError {
    /// A state this browser did not get from `/oauth/authorize` (forged, expired, another
    /// browser's, reused with another code): 403; the store out: 503.
    fn from(error: StateError) -> Self {
        match error {
            StateError::Unavailable(_) => {
                Self::new(ErrorKind::Unavailable, "login temporarily unavailable; retry").with_detail(error)
            }
            _ => Self::new(ErrorKind::Forbidden, "invalid login state; start the sign-in again").with_detail(error),
        }
    }
}

impl From<SessionError> for ApiError {
    /// The session store out: 503; a stored session we cannot read: 500.
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Unavailable(_) => {
                Self::new(ErrorKind::Unavailable, "sessions temporarily unavailable; retry").with_detail(error)
            }
            SessionError::Corrupt(_) => Self::internal().with_detail(error),
        }
    }
}

impl From<UserDataError> for ApiError {
    /// Data that does not decrypt or verify with this session's key: 400, one message for every
    /// cause (no padding oracle); data of another mini-program or user: 403.
    fn from(error: UserDataError) -> Self {
        match error {
            UserDataError::ForeignAppid | UserDataError::OtherUser => {
                Self::new(ErrorKind::Forbidden, "the data belongs to another mini-program or user").with_detail(error)
            }
            UserDataError::Undecryptable | UserDataError::BadSignature => {
                Self::new(ErrorKind::BadRequest, "the data does not verify with this session").with_detail(error)
            }
        }
    }
}

impl From<ReturnError> for ApiError {
    /// A `return_to` outside the allow-list (no open redirect): 400.
    fn from(error: ReturnError) -> Self {
        Self::bad_request("return_to must be a path or a URL on an allowed host").with_detail(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn open_errors_are_403_for_the_unauthenticated_and_400_otherwise_with_one_message_each() {
        let forbidden = [
            OpenError::MissingSignature("signature"),
            OpenError::BadSignature,
            OpenError::Stale,
            OpenError::PlaintextRejected,
        ];
        for error in forbidden {
            let api = ApiError::from(error.clone());
            assert_eq!(
                (api.kind.status().as_u16(), api.message.as_str()),
                (403, "invalid signature")
            );
            assert_eq!(api.detail, Some(error.to_string()));
        }
        let bad = [
            OpenError::NoKeys,
            OpenError::MalformedBody(MessageError::MissingField("Encrypt")),
            OpenError::Decrypt,
            OpenError::MissingEchostr,
        ];
        for error in bad {
            let api = ApiError::from(error);
            assert_eq!(
                (api.kind.status().as_u16(), api.message.as_str()),
                (400, "invalid request")
            );
        }
    }

    #[test]
    fn a_store_outage_is_503_and_a_corrupt_record_is_500() {
        let outage = ApiError::from(LedgerError::Store(StoreError::Unavailable("down".into())));
        assert_eq!(outage.kind.status().as_u16(), 503);
        let corrupt = ApiError::from(LedgerError::Store(StoreError::Corrupt("bad".into())));
        assert_eq!(corrupt.kind.status().as_u16(), 500);
        assert_eq!(corrupt.message, "internal error", "no detail reaches the client");
    }

    #[test]
    fn upstream_text_stays_in_the_detail() {
        let api = ApiError::from(WechatError::CircuitOpen("wechat.message: open".into()));
        assert_eq!(api.kind.status().as_u16(), 503);
        assert!(!api.message.contains("wechat.message"));
        assert!(api.detail.as_deref().is_some_and(|d| d.contains("wechat.message")));
    }
}
