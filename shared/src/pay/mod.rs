//! WeChat Pay APIv3: notices verified (SHA256withRSA over the raw body, key chosen by
//! `Wechatpay-Serial` among the WeChat Pay public key and platform certificates), decrypted
//! (AEAD_AES_256_GCM) and typed; requests signed with the merchant's API key.

pub mod client;
pub mod crypto;
pub mod hook;
pub mod keys;
pub mod notice;
pub mod open;
pub mod orders;
pub mod process;

pub use client::{DEFAULT_PAY_API_BASES, PayApiError, PayClient, PayCredentials};
pub use crypto::{DecryptError, Merchant, Outgoing, PaySigner, PayVerifier, SignatureError, authorization};
pub use hook::{HookError, HookOutcome, PaymentHook, RecordingHook};
pub use keys::{KeyError, PayKeys, PlatformCertificate};
pub use notice::{Envelope, PayEvent, Refund, Transaction};
pub use open::{MAX_SKEW_SECS, NoticeError, NoticeHeaders, OpenedNotice, decrypt, verify};
pub use orders::{PendingOrder, PendingOrders};
pub use process::{PayRecord, ProcessError, Processed, process};
