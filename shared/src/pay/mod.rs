//! WeChat Pay APIv3: notices verified (SHA256withRSA over the raw body, key chosen by
//! `Wechatpay-Serial` among the WeChat Pay public key and platform certificates), decrypted
//! (AEAD_AES_256_GCM) and typed; requests signed with the merchant's API key.

pub mod crypto;
pub mod keys;
pub mod notice;
pub mod open;

pub use crypto::{DecryptError, Merchant, Outgoing, PaySigner, PayVerifier, SignatureError, authorization};
pub use keys::{KeyError, PayKeys, PlatformCertificate};
pub use notice::{Envelope, PayEvent, Refund, Transaction};
pub use open::{MAX_SKEW_SECS, NoticeError, NoticeHeaders, OpenedNotice, decrypt, verify};
