//! Opening a callback request: signature check, safe-mode decryption, GET URL verification.
//!
//! Everything is decided by the request's own protocol facts (`encrypt_type`, signatures, body) and the
//! configured [`EncryptMode`]. Errors split in two classes ([`OpenError::is_unauthenticated`]): a missing or
//! wrong signature (the sender is not WeChat), and a body that cannot be opened; every decryption failure is
//! the same error with the same message, so nothing distinguishes a padding error. Which HTTP status each
//! class gets is the HTTP layer's business, not this module's.

use std::borrow::Cow;
use std::fmt;

use super::crypto::{DecryptError, Decrypted};
use super::decode::{BodyFormat, FlatFields, MessageError, decode};
use super::keyring::{KeyRing, KeySlot};
use super::mode::EncryptMode;
use super::signature::{verify_msg_signature, verify_url_signature};

/// The callback's query parameters (already percent-decoded), borrowed from the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallbackQuery<'a> {
    /// `signature` = sha1(sort(token, timestamp, nonce)).
    pub signature: Option<&'a str>,
    /// `timestamp`.
    pub timestamp: Option<&'a str>,
    /// `nonce`.
    pub nonce: Option<&'a str>,
    /// `echostr` (GET verification only).
    pub echostr: Option<&'a str>,
    /// `encrypt_type` (`aes` for an encrypted body).
    pub encrypt_type: Option<&'a str>,
    /// `msg_signature` = sha1(sort(token, timestamp, nonce, Encrypt)).
    pub msg_signature: Option<&'a str>,
}

impl<'a> CallbackQuery<'a> {
    /// Reads the parameters through `lookup` (e.g. `|k| params.first(k)` on a lambda_http query map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            signature: lookup("signature"),
            timestamp: lookup("timestamp"),
            nonce: lookup("nonce"),
            echostr: lookup("echostr"),
            encrypt_type: lookup("encrypt_type"),
            msg_signature: lookup("msg_signature"),
        }
    }

    /// Reads the parameters from `name=value` pairs in one pass; the first value of a name wins.
    pub fn from_pairs(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let mut query = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                "signature" => &mut query.signature,
                "timestamp" => &mut query.timestamp,
                "nonce" => &mut query.nonce,
                "echostr" => &mut query.echostr,
                "encrypt_type" => &mut query.encrypt_type,
                "msg_signature" => &mut query.msg_signature,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        query
    }

    /// Whether the request says its body is encrypted (`encrypt_type=aes`).
    pub fn is_encrypted(&self) -> bool {
        self.encrypt_type.is_some_and(|t| t.eq_ignore_ascii_case("aes"))
    }
}

/// Everything [`open`] needs: configuration and the request's protocol facts.
#[derive(Clone, Copy)]
pub struct CallbackRequest<'a> {
    /// The configured encryption mode.
    pub mode: EncryptMode,
    /// The callback token.
    pub token: &'a str,
    /// The AES keys and receive id, if configured.
    pub keys: Option<&'a KeyRing>,
    /// The query parameters.
    pub query: CallbackQuery<'a>,
    /// The raw body.
    pub body: &'a [u8],
}

/// A request whose authenticity is established: the plaintext message and how to seal the reply.
#[derive(Debug, Clone)]
pub struct OpenedMessage<'a> {
    message: Cow<'a, [u8]>,
    format: BodyFormat,
    key: Option<(&'a KeyRing, KeySlot)>,
}

/// Why a request could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A query parameter needed for the signature (`signature`, `msg_signature`, `timestamp`, `nonce`) is absent.
    #[error("missing query parameter {0}")]
    MissingSignature(&'static str),
    /// The signature does not match.
    #[error("signature mismatch")]
    BadSignature,
    /// The timestamp is outside the freshness window (or not a number): a replayed request.
    #[error("timestamp outside the freshness window")]
    Stale,
    /// A plaintext POST reached an endpoint in safe mode.
    #[error("plaintext request rejected: endpoint is in safe mode")]
    PlaintextRejected,
    /// `encrypt_type=aes`, but no AES key is configured.
    #[error("encrypted request but no AES key is configured")]
    NoKeys,
    /// The body has no usable `Encrypt` value.
    #[error("malformed encrypted body: {0}")]
    MalformedBody(MessageError),
    /// Decryption failed (base64, padding, length, receive id: deliberately not distinguished).
    #[error("decryption failed")]
    Decrypt,
    /// A GET verification without `echostr`.
    #[error("missing echostr")]
    MissingEchostr,
}

impl OpenError {
    /// Whether the sender is not proven to be WeChat (missing or wrong signature, or plaintext in
    /// safe mode), as opposed to a request from WeChat that cannot be opened.
    pub const fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Self::MissingSignature(_) | Self::BadSignature | Self::Stale | Self::PlaintextRejected
        )
    }
}

impl From<DecryptError> for OpenError {
    fn from(_: DecryptError) -> Self {
        Self::Decrypt
    }
}

/// Authenticates a callback POST and returns its plaintext message.
///
/// With `encrypt_type=aes`: extracts `Encrypt` (XML `<Encrypt>` or JSON `{"Encrypt":…}`), verifies
/// `msg_signature` over it, decrypts with the key ring (current key, then previous) and checks the receive id.
/// Otherwise: rejects the request in safe mode, else verifies `signature` and returns the body as is.
///
/// # Errors
/// See [`OpenError`].
pub fn open<'a>(request: &CallbackRequest<'a>) -> Result<OpenedMessage<'a>, OpenError> {
    let query = &request.query;
    if !query.is_encrypted() {
        if !request.mode.accepts_plaintext() {
            return Err(OpenError::PlaintextRejected);
        }
        check_url_signature(request.token, query)?;
        let format = BodyFormat::detect(request.body);
        return Ok(OpenedMessage {
            message: Cow::Borrowed(request.body),
            format,
            key: None,
        });
    }
    let (envelope, format) = decode::<EncryptedBody>(request.body).map_err(OpenError::MalformedBody)?;
    let encrypt = envelope
        .encrypt
        .filter(|e| !e.is_empty())
        .ok_or(OpenError::MalformedBody(MessageError::MissingField("Encrypt")))?;
    let (keys, Decrypted { message, .. }, slot) = check_and_decrypt(request.token, request.keys, query, &encrypt)?;
    Ok(OpenedMessage {
        message: Cow::Owned(message),
        format,
        key: Some((keys, slot)),
    })
}

/// GET URL verification (Official Account / Mini Program): checks `signature`, returns `echostr` verbatim.
///
/// OA/MP `echostr` is plaintext in every mode; for WeCom use [`verify_url_encrypted`].
///
/// # Errors
/// An unauthenticated [`OpenError`] for a missing/wrong signature, [`OpenError::MissingEchostr`] without `echostr`.
pub fn verify_url<'a>(token: &str, query: &CallbackQuery<'a>) -> Result<&'a str, OpenError> {
    check_url_signature(token, query)?;
    query.echostr.ok_or(OpenError::MissingEchostr)
}

/// GET URL verification for WeCom (企业微信): `echostr` is encrypted; checks `msg_signature` over it, decrypts
/// it (receive id = corpid) and returns the plaintext to answer with.
///
/// # Errors
/// As [`open`] for an encrypted request, plus [`OpenError::MissingEchostr`].
pub fn verify_url_encrypted(token: &str, keys: &KeyRing, query: &CallbackQuery<'_>) -> Result<Vec<u8>, OpenError> {
    let echostr = query.echostr.ok_or(OpenError::MissingEchostr)?;
    let (_, decrypted, _) = check_and_decrypt(token, Some(keys), query, echostr)?;
    Ok(decrypted.message)
}

impl<'a> OpenedMessage<'a> {
    /// The plaintext message (XML or JSON) for [`parse_message`](super::parse_message).
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// Takes the plaintext message.
    pub fn into_message(self) -> Cow<'a, [u8]> {
        self.message
    }

    /// Whether the request was encrypted, so the reply must be too.
    pub fn was_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// Which key decrypted the request (`None` for plaintext); the reply is sealed with the same one.
    pub fn key_slot(&self) -> Option<KeySlot> {
        self.key.map(|(_, slot)| slot)
    }

    /// The key ring and slot that decrypted the request.
    pub(crate) fn sealing_key(&self) -> Option<(&'a KeyRing, KeySlot)> {
        self.key
    }

    /// The format of the request body (the encrypted reply envelope uses the same).
    pub fn format(&self) -> BodyFormat {
        self.format
    }
}

/// The `Encrypt` field of an encrypted body; other fields (compatible mode) are ignored.
#[derive(Default)]
struct EncryptedBody {
    encrypt: Option<String>,
}

impl FlatFields for EncryptedBody {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        (name == "Encrypt").then_some(&mut self.encrypt)
    }
}

fn check_url_signature(token: &str, query: &CallbackQuery<'_>) -> Result<(), OpenError> {
    let (timestamp, nonce) = timestamp_nonce(query)?;
    let signature = query.signature.ok_or(OpenError::MissingSignature("signature"))?;
    if verify_url_signature(token, timestamp, nonce, signature) {
        Ok(())
    } else {
        Err(OpenError::BadSignature)
    }
}

/// Verifies `msg_signature` over `encrypt` (before any key is touched), then decrypts with the ring.
fn check_and_decrypt<'k>(
    token: &str,
    keys: Option<&'k KeyRing>,
    query: &CallbackQuery<'_>,
    encrypt: &str,
) -> Result<(&'k KeyRing, Decrypted, KeySlot), OpenError> {
    let (timestamp, nonce) = timestamp_nonce(query)?;
    let signature = query
        .msg_signature
        .ok_or(OpenError::MissingSignature("msg_signature"))?;
    if !verify_msg_signature(token, timestamp, nonce, encrypt, signature) {
        return Err(OpenError::BadSignature);
    }
    let keys = keys.ok_or(OpenError::NoKeys)?;
    let (decrypted, slot) = keys.decrypt(encrypt)?;
    Ok((keys, decrypted, slot))
}

fn timestamp_nonce<'q>(query: &CallbackQuery<'q>) -> Result<(&'q str, &'q str), OpenError> {
    let timestamp = query.timestamp.ok_or(OpenError::MissingSignature("timestamp"))?;
    let nonce = query.nonce.ok_or(OpenError::MissingSignature("nonce"))?;
    Ok((timestamp, nonce))
}

impl fmt::Debug for CallbackRequest<'_> {
    /// The token is a secret and the body may be large: neither is printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackRequest")
            .field("mode", &self.mode)
            .field("token", &"<redacted>")
            .field("keys", &self.keys)
            .field("query", &self.query)
            .field("body_len", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
