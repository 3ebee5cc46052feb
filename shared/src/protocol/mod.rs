//! WeChat callback protocol: signatures, inbound XML messages, passive replies, safe-mode crypto.
//!
//! Pure code, no I/O. A route handler calls: [`open`] the request → [`parse_message`] → business logic →
//! [`Reply::to_xml`] → [`seal`] the reply.

mod crypto;
mod decode;
mod inbound;
mod keyring;
mod message;
mod mode;
mod outbound;
mod reply;
mod signature;

pub use crypto::{AesKey, DecryptError, Decrypted, EncryptError, KeyError, RANDOM_LEN, os_random};
pub use decode::{BodyFormat, MessageError};
pub use inbound::{CallbackQuery, CallbackRequest, OpenError, OpenedMessage, open, verify_url, verify_url_encrypted};
pub use keyring::{KeyRing, KeySlot};
pub use message::{Event, Header, Message, MessageKind, QR_SCENE_PREFIX, parse_message};
pub use mode::{EncryptMode, ParseModeError};
pub use outbound::seal;
pub use reply::{Article, MAX_ARTICLES, Reply, ReplyError, SUCCESS};
pub use signature::{
    jssdk_signature, msg_signature, sha1_hex_sorted, url_signature, verify_msg_signature, verify_url_signature,
};
