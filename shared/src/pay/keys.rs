//! The keys WeChat Pay signs with, chosen by `Wechatpay-Serial`: the WeChat Pay public key
//! (`PUB_KEY_ID_…`) and/or platform certificates (by serial). During WeChat Pay's switch from
//! certificates to the public key a notice may use either, so both live side by side.

use std::collections::HashMap;
use std::sync::RwLock;

use rsa::pkcs8::der::{DecodePem, Encode};
use x509_cert::Certificate;

use super::crypto::PayVerifier;

/// A platform certificate: its serial (uppercase hex, no leading zero byte), key and expiry.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    /// Serial, as `Wechatpay-Serial` names it.
    pub serial: String,
    /// The certificate's public key.
    pub verifier: PayVerifier,
    /// notAfter, epoch seconds.
    pub not_after_secs: i64,
}

impl PlatformCertificate {
    /// Parses a PEM certificate.
    ///
    /// # Errors
    /// A description of what did not parse.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let certificate = Certificate::from_pem(pem.trim()).map_err(|e| format!("not a PEM certificate: {e}"))?;
        let tbs = certificate.tbs_certificate();
        let raw = tbs.serial_number().as_bytes();
        let significant = raw
            .iter()
            .position(|b| *b != 0)
            .map_or(&raw[raw.len().saturating_sub(1)..], |i| &raw[i..]);
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| format!("certificate key: {e}"))?;
        Ok(Self {
            serial: hex::encode_upper(significant),
            verifier: PayVerifier::from_public_key_der(&spki)?,
            not_after_secs: i64::try_from(tbs.validity().not_after.to_unix_duration().as_secs()).unwrap_or(i64::MAX),
        })
    }
}

/// Why no key was found for a serial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Neither the public key's id nor a held certificate's serial.
    #[error("unknown serial {0:?}")]
    Unknown(String),
    /// The certificate of that serial has expired.
    #[error("certificate {0:?} has expired")]
    Expired(String),
}

/// The verification keys of one merchant.
#[derive(Debug, Default)]
pub struct PayKeys {
    public_key: Option<(String, PayVerifier)>,
    certificates: RwLock<HashMap<String, PlatformCertificate>>,
}

impl PayKeys {
    /// Keys from the WeChat Pay public key (its id `PUB_KEY_ID_…` and key) and/or certificates.
    pub fn new(public_key: Option<(String, PayVerifier)>, certificates: Vec<PlatformCertificate>) -> Self {
        let keys = Self {
            public_key,
            certificates: RwLock::default(),
        };
        keys.add_certificates(certificates);
        keys
    }

    /// Adds (or replaces) certificates, by serial.
    pub fn add_certificates(&self, certificates: Vec<PlatformCertificate>) {
        let mut held = self
            .certificates
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for certificate in certificates {
            held.insert(certificate.serial.to_ascii_uppercase(), certificate);
        }
    }

    /// The WeChat Pay public key's id, when one is configured.
    pub fn public_key_id(&self) -> Option<&str> {
        self.public_key.as_ref().map(|(id, _)| id.as_str())
    }

    /// Whether any platform certificate is configured (a refresh is possible).
    pub fn uses_certificates(&self) -> bool {
        !self
            .certificates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// The key for `serial` at `now_secs`.
    ///
    /// # Errors
    /// [`KeyError`]: unknown serial, or an expired certificate.
    pub fn select(&self, serial: &str, now_secs: i64) -> Result<PayVerifier, KeyError> {
        if let Some((id, verifier)) = &self.public_key
            && id == serial
        {
            return Ok(verifier.clone());
        }
        let held = self
            .certificates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.get(&serial.to_ascii_uppercase()) {
            Some(certificate) if certificate.not_after_secs <= now_secs => Err(KeyError::Expired(serial.to_owned())),
            Some(certificate) => Ok(certificate.verifier.clone()),
            None => Err(KeyError::Unknown(serial.to_owned())),
        }
    }
}
