//! WeChat callback protocol: signatures, inbound XML messages, passive replies, safe-mode crypto.
//!
//! Pure code: no I/O, no HTTP types, no randomness of its own (the caller passes the 16 random bytes
//! a sealed reply starts with). A route calls: [`open()`] the request → [`parse_message`] → business
//! logic → [`Reply::render`] → [`seal()`] the reply.

mod crypto;
mod decode;
mod freshness;
mod keyring;
mod message;
mod mode;
mod open;
mod reply;
mod seal;
mod signature;

pub use crypto::{AesKey, DecryptError, Decrypted, EncryptError, KeyError, RANDOM_LEN};
pub use decode::{BodyFormat, MessageError};
pub use freshness::check_fresh;
pub use keyring::{KeyRing, KeySlot};
pub use message::{Event, Header, Message, MessageKind, QR_SCENE_PREFIX, parse_message};
pub use mode::{EncryptMode, ParseModeError};
pub use open::{CallbackQuery, CallbackRequest, OpenError, OpenedMessage, open, verify_url, verify_url_encrypted};
pub use reply::{Article, MAX_ARTICLES, PassiveReply, Reply, ReplyError, SUCCESS};
pub use seal::{SealedReply, seal};
pub use signature::{
    jssdk_signature, msg_signature, sha1_hex_sorted, url_signature, verify_msg_signature, verify_url_signature,
};
