//! WeChat Pay APIv3 cryptography, on RustCrypto: SHA256withRSA (RSASSA-PKCS1-v1_5) verification of
//! notices and answers, signing of our requests, and AEAD_AES_256_GCM decryption of resources.
//!
//! - Signed message of a notice or an answer: `"{timestamp}\n{nonce}\n{raw body}\n"` — the raw
//!   bytes, never re-serialised JSON.
//! - Signed message of a request: `"{METHOD}\n{path?query}\n{timestamp}\n{nonce}\n{body}\n"`.
//! - A signature starting with `WECHATPAY/SIGNTEST/` is WeChat Pay's deliberate probe: it is
//!   refused as [`SignatureError::Probe`] before any decoding.
//! - Resources: key = the 32 ASCII bytes of the APIv3 key (a 16-byte key selects AES-128-GCM, for
//!   the official SDK's test vectors only — the configuration refuses it), nonce = 12 ASCII bytes,
//!   AAD = `associated_data` (may be empty), input = base64(ciphertext ‖ 16-byte tag).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::sha2::Sha256;
use rsa::signature::{Keypair, SignatureEncoding, Signer, Verifier};

/// The prefix of WeChat Pay's signature probes.
pub const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A deliberate probe (`WECHATPAY/SIGNTEST/…`): expected traffic, refused like any bad signature.
    #[error("signature probe")]
    Probe,
    /// Not base64, or not a signature of the key's size.
    #[error("malformed signature")]
    Malformed,
    /// It does not verify.
    #[error("signature does not verify")]
    Mismatch,
}

/// A WeChat Pay public key (the platform certificate's, or the "WeChat Pay public key").
#[derive(Debug, Clone)]
pub struct PayVerifier(VerifyingKey<Sha256>);

impl PayVerifier {
    /// From an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// # Errors
    /// A description of what did not parse.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, String> {
        VerifyingKey::<Sha256>::from_public_key_pem(pem.trim())
            .map(Self)
            .map_err(|e| format!("not an RSA public key PEM: {e}"))
    }

    /// From an SPKI DER.
    ///
    /// # Errors
    /// A description of what did not parse.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, String> {
        VerifyingKey::<Sha256>::from_public_key_der(der)
            .map(Self)
            .map_err(|e| format!("not an RSA public key: {e}"))
    }

    /// Verifies `signature_b64` over `message` as given (a request's signed string, say).
    ///
    /// # Errors
    /// [`SignatureError`]: a probe, a malformed or a wrong signature.
    pub fn verify_raw(&self, message: &[u8], signature_b64: &str) -> Result<(), SignatureError> {
        if signature_b64.starts_with(PROBE_PREFIX) {
            return Err(SignatureError::Probe);
        }
        let bytes = STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| SignatureError::Malformed)?;
        let signature = Signature::try_from(bytes.as_slice()).map_err(|_| SignatureError::Malformed)?;
        self.0.verify(message, &signature).map_err(|_| SignatureError::Mismatch)
    }

    /// Verifies `signature_b64` over `timestamp\nnonce\nbody\n`.
    ///
    /// # Errors
    /// [`SignatureError`]: a probe, a malformed or a wrong signature.
    pub fn verify_message(
        &self,
        timestamp: &str,
        nonce: &str,
        body: &[u8],
        signature_b64: &str,
    ) -> Result<(), SignatureError> {
        self.verify_raw(&signed_message(timestamp, nonce, body), signature_b64)
    }
}

/// `timestamp\nnonce\nbody\n`, the bytes WeChat Pay signs.
pub fn signed_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(nonce.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// The merchant's API private key: signs requests (and, in the WeChat Pay mock, notices).
#[derive(Clone)]
pub struct PaySigner(SigningKey<Sha256>);

impl std::fmt::Debug for PaySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaySigner(***)")
    }
}

impl PaySigner {
    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    /// A description of what did not parse (never the key).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, String> {
        SigningKey::<Sha256>::from_pkcs8_pem(pem.trim())
            .map(Self)
            .map_err(|_| "not a PKCS#8 RSA private key PEM".to_owned())
    }

    /// base64(SHA256withRSA(`message`)).
    pub fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.0.sign(message).to_bytes())
    }

    /// The public half, as a verifier.
    pub fn verifier(&self) -> PayVerifier {
        PayVerifier(self.0.verifying_key())
    }
}

/// Who signs a request: the merchant and its API certificate's serial (not the platform's).
#[derive(Debug, Clone, Copy)]
pub struct Merchant<'a> {
    /// The merchant id.
    pub mchid: &'a str,
    /// The merchant API certificate's serial.
    pub serial_no: &'a str,
}

/// What is signed of a request: the method, the target exactly as sent (path and query) and the
/// exact body bytes (empty for GET).
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// `/v3/…?…`.
    pub url: &'a str,
    /// The body as sent.
    pub body: &'a str,
}

/// The `Authorization` header of a request to WeChat Pay: `WECHATPAY2-SHA256-RSA2048
/// mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"`.
pub fn authorization(
    signer: &PaySigner,
    merchant: Merchant<'_>,
    request: Outgoing<'_>,
    timestamp: &str,
    nonce: &str,
) -> String {
    let message = format!(
        "{}\n{}\n{timestamp}\n{nonce}\n{}\n",
        request.method, request.url, request.body
    );
    let signature = signer.sign(message.as_bytes());
    format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
        merchant.mchid, merchant.serial_no
    )
}

/// Why a resource did not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The algorithm is not `AEAD_AES_256_GCM`.
    #[error("unsupported algorithm {0:?}")]
    Algorithm(String),
    /// The nonce is not 12 bytes, the key not 32 (or 16), the ciphertext not base64.
    #[error("malformed resource: {0}")]
    Malformed(&'static str),
    /// The tag does not verify: tampered ciphertext, nonce or associated data, or a wrong key.
    #[error("resource does not authenticate")]
    Tampered,
}

/// Decrypts `ciphertext_b64` (ciphertext ‖ tag) with `key`, `nonce` and `associated_data`.
///
/// # Errors
/// [`DecryptError`].
pub fn decrypt_resource(
    key: &[u8],
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, DecryptError> {
    if nonce.len() != 12 {
        return Err(DecryptError::Malformed("the nonce is not 12 bytes"));
    }
    let sealed = STANDARD
        .decode(ciphertext_b64.trim())
        .map_err(|_| DecryptError::Malformed("the ciphertext is not base64"))?;
    if sealed.len() < 16 {
        return Err(DecryptError::Malformed("the ciphertext is shorter than its tag"));
    }
    let nonce = Nonce::from_slice(nonce.as_bytes());
    let payload = Payload {
        msg: &sealed,
        aad: associated_data.as_bytes(),
    };
    let opened = match key.len() {
        32 => Aes256Gcm::new_from_slice(key)
            .map_err(|_| DecryptError::Malformed("bad key"))?
            .decrypt(nonce, payload),
        16 => Aes128Gcm::new_from_slice(key)
            .map_err(|_| DecryptError::Malformed("bad key"))?
            .decrypt(nonce, payload),
        _ => return Err(DecryptError::Malformed("the APIv3 key is not 32 bytes")),
    };
    opened.map_err(|_| DecryptError::Tampered)
}

/// Encrypts `plaintext` as WeChat Pay does (the mock and the tests): base64(ciphertext ‖ tag).
///
/// # Errors
/// [`DecryptError::Malformed`] for a key that is not 32 bytes or a nonce that is not 12.
pub fn encrypt_resource(
    key: &[u8],
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, DecryptError> {
    if nonce.len() != 12 {
        return Err(DecryptError::Malformed("the nonce is not 12 bytes"));
    }
    let cipher =
        Aes256Gcm::new_from_slice(key).map_err(|_| DecryptError::Malformed("the APIv3 key is not 32 bytes"))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: plaintext,
                aad: associated_data.as_bytes(),
            },
        )
        .map_err(|_| DecryptError::Malformed("encryption failed"))?;
    Ok(STANDARD.encode(sealed))
}
