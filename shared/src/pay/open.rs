//! Opening a WeChat Pay notice: headers, freshness, signature (key by serial), envelope, AEAD,
//! typed event — every refusal with its reason, and nothing read before the signature holds.

use super::crypto::{SignatureError, decrypt_resource};
use super::keys::{KeyError, PayKeys};
use super::notice::{Envelope, PayEvent, Refund, Transaction};

/// Notices whose timestamp is this far from now (either way) are refused, as WeChat Pay's SDKs do.
pub const MAX_SKEW_SECS: i64 = 300;

/// The signing headers of a notice (names as API Gateway gives them: lower case).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoticeHeaders<'a> {
    /// `Wechatpay-Serial`.
    pub serial: Option<&'a str>,
    /// `Wechatpay-Signature`.
    pub signature: Option<&'a str>,
    /// `Wechatpay-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `Wechatpay-Nonce`.
    pub nonce: Option<&'a str>,
    /// `Wechatpay-Signature-Type` (absent means `WECHATPAY2-SHA256-RSA2048`).
    pub signature_type: Option<&'a str>,
}

/// Why a notice was refused. Each has a stable reason for the metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// A signing header is missing or empty.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// Not `WECHATPAY2-SHA256-RSA2048`.
    #[error("unsupported signature type")]
    SignatureType,
    /// The timestamp is not a number, or not within 300 s of now.
    #[error("stale or future timestamp")]
    Stale,
    /// No key for the serial (after a certificate refresh, when certificates are used).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A signature probe, a malformed or a wrong signature.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The (authentic) body is not a notice.
    #[error("not a notice: {0}")]
    Malformed(String),
    /// The resource did not decrypt.
    #[error(transparent)]
    Decrypt(#[from] super::crypto::DecryptError),
}

impl NoticeError {
    /// The metrics' reason.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::SignatureType => "signature_type",
            Self::Stale => "stale",
            Self::Key(KeyError::Unknown(_)) => "unknown_serial",
            Self::Key(KeyError::Expired(_)) => "expired_certificate",
            Self::Signature(SignatureError::Probe) => "probe",
            Self::Signature(_) => "bad_signature",
            Self::Malformed(_) => "malformed",
            Self::Decrypt(_) => "decrypt",
        }
    }

    /// Whether the sender was not proven to be WeChat Pay (401), as opposed to an authentic
    /// notice that cannot be read (400).
    pub const fn is_unauthenticated(&self) -> bool {
        !matches!(self, Self::Malformed(_) | Self::Decrypt(_))
    }
}

/// An authentic, decrypted notice.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedNotice {
    /// The notice id.
    pub id: String,
    /// The event type.
    pub event_type: String,
    /// What it says.
    pub event: PayEvent,
}

/// Checks the headers and the time, and returns the serial, timestamp, nonce and signature.
fn signing_parts<'a>(headers: &NoticeHeaders<'a>, now_secs: i64) -> Result<[&'a str; 4], NoticeError> {
    let present = |value: Option<&'a str>, name| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(NoticeError::MissingHeader(name))
    };
    let serial = present(headers.serial, "Wechatpay-Serial")?;
    let signature = present(headers.signature, "Wechatpay-Signature")?;
    let timestamp = present(headers.timestamp, "Wechatpay-Timestamp")?;
    let nonce = present(headers.nonce, "Wechatpay-Nonce")?;
    if headers
        .signature_type
        .is_some_and(|t| t.trim() != "WECHATPAY2-SHA256-RSA2048")
    {
        return Err(NoticeError::SignatureType);
    }
    let at: i64 = timestamp.parse().map_err(|_| NoticeError::Stale)?;
    if (now_secs - at).abs() >= MAX_SKEW_SECS {
        return Err(NoticeError::Stale);
    }
    Ok([serial, timestamp, nonce, signature])
}

/// Verifies `body` (the raw bytes) under `headers` with `keys` at `now_secs`.
///
/// # Errors
/// [`NoticeError`] for anything short of an authentic notice.
pub fn verify(keys: &PayKeys, headers: &NoticeHeaders<'_>, body: &[u8], now_secs: i64) -> Result<(), NoticeError> {
    let [serial, timestamp, nonce, signature] = signing_parts(headers, now_secs)?;
    // A probe is refused before the key is looked up (its serial may be anything).
    if signature.starts_with(super::crypto::PROBE_PREFIX) {
        return Err(SignatureError::Probe.into());
    }
    let verifier = keys.select(serial, now_secs)?;
    verifier.verify_message(timestamp, nonce, body, signature)?;
    Ok(())
}

/// Decrypts the resource of an authentic `body` with the APIv3 key and types it.
///
/// # Errors
/// [`NoticeError::Malformed`] or [`NoticeError::Decrypt`].
pub fn decrypt(api_v3_key: &[u8], body: &[u8]) -> Result<OpenedNotice, NoticeError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| NoticeError::Malformed(e.to_string()))?;
    let resource = &envelope.resource;
    if resource.algorithm != "AEAD_AES_256_GCM" {
        return Err(super::crypto::DecryptError::Algorithm(resource.algorithm.clone()).into());
    }
    let plaintext = decrypt_resource(
        api_v3_key,
        &resource.nonce,
        &resource.associated_data,
        &resource.ciphertext,
    )?;
    let event = typed(&envelope.event_type, &plaintext)?;
    Ok(OpenedNotice {
        id: envelope.id,
        event_type: envelope.event_type,
        event,
    })
}

/// The typed event of a decrypted resource.
fn typed(event_type: &str, plaintext: &[u8]) -> Result<PayEvent, NoticeError> {
    let malformed = |e: serde_json::Error| NoticeError::Malformed(format!("{event_type} resource: {e}"));
    Ok(if event_type.starts_with("TRANSACTION.") {
        PayEvent::Transaction(serde_json::from_slice::<Transaction>(plaintext).map_err(malformed)?)
    } else if event_type.starts_with("REFUND.") {
        PayEvent::Refund(serde_json::from_slice::<Refund>(plaintext).map_err(malformed)?)
    } else {
        PayEvent::Other {
            event_type: event_type.to_owned(),
            resource: serde_json::from_slice(plaintext).map_err(malformed)?,
        }
    })
}
