//! The AES keys of one app during EncodingAESKey rotation: the current key and, optionally, the previous one.
//!
//! WeChat's guidance (open platform Technical_Plan): keep the current and the previous EncodingAESKey; if the
//! current one fails to decrypt, try the previous one; reply with whichever key decrypted the request. So
//! decryption reports the [`KeySlot`] that worked and encryption takes it back.

use super::crypto::{AesKey, DecryptError, Decrypted, EncryptError, KeyError, RANDOM_LEN};

/// Which key of a [`KeyRing`] decrypted a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    /// The current EncodingAESKey.
    Current,
    /// The previous EncodingAESKey (rotation in progress).
    Previous,
}

impl KeySlot {
    /// Stable name for logs and metrics: `current` or `previous`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous => "previous",
        }
    }
}

/// The receive id (appid, or corpid for WeCom) with its current and optional previous AES key.
#[derive(Debug, Clone)]
pub struct KeyRing {
    receive_id: String,
    current: AesKey,
    previous: Option<AesKey>,
}

impl KeyRing {
    /// A ring with only a current key.
    pub fn new(receive_id: impl Into<String>, current: AesKey) -> Self {
        Self {
            receive_id: receive_id.into(),
            current,
            previous: None,
        }
    }

    /// Adds the previous key, tried when the current one fails.
    #[must_use]
    pub fn with_previous(mut self, previous: AesKey) -> Self {
        self.previous = Some(previous);
        self
    }

    /// Builds a ring from EncodingAESKey strings (43 chars of `[A-Za-z0-9]` each).
    ///
    /// # Errors
    /// [`KeyError`] if either key is malformed.
    pub fn from_encoding_aes_keys(
        receive_id: impl Into<String>,
        current: &str,
        previous: Option<&str>,
    ) -> Result<Self, KeyError> {
        let ring = Self::new(receive_id, AesKey::from_encoding_aes_key(current)?);
        match previous {
            Some(prev) => Ok(ring.with_previous(AesKey::from_encoding_aes_key(prev)?)),
            None => Ok(ring),
        }
    }

    /// The appid (or WeCom corpid) that every plaintext must end with.
    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// The key in `slot`, if configured.
    pub fn key(&self, slot: KeySlot) -> Option<&AesKey> {
        match slot {
            KeySlot::Current => Some(&self.current),
            KeySlot::Previous => self.previous.as_ref(),
        }
    }

    /// Decrypts with the current key, then the previous one; reports which key worked.
    ///
    /// # Errors
    /// The uniform [`DecryptError`] if no key decrypts `encrypt` to a payload for this receive id.
    pub fn decrypt(&self, encrypt: &str) -> Result<(Decrypted, KeySlot), DecryptError> {
        match self.current.decrypt(&self.receive_id, encrypt) {
            Ok(dec) => Ok((dec, KeySlot::Current)),
            Err(err) => match &self.previous {
                Some(prev) => prev
                    .decrypt(&self.receive_id, encrypt)
                    .map(|dec| (dec, KeySlot::Previous)),
                None => Err(err),
            },
        }
    }

    /// Encrypts `message` with the key in `slot` (falling back to the current key if that slot is empty).
    ///
    /// # Errors
    /// [`EncryptError::MessageTooLarge`] if `message` is 4 GiB or more.
    pub fn encrypt(&self, slot: KeySlot, message: &[u8], random: &[u8; RANDOM_LEN]) -> Result<String, EncryptError> {
        self.key(slot)
            .unwrap_or(&self.current)
            .encrypt(&self.receive_id, message, random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const NEW: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn key(s: &str) -> AesKey {
        AesKey::from_encoding_aes_key(s).unwrap()
    }

    #[test]
    fn decrypt_reports_the_previous_key_during_rotation() {
        let ring = KeyRing::from_encoding_aes_keys("wxapp", NEW, Some(OLD)).unwrap();
        let from_old = key(OLD).encrypt("wxapp", b"old", &[1; 16]).unwrap();
        let from_new = key(NEW).encrypt("wxapp", b"new", &[1; 16]).unwrap();
        let (dec, slot) = ring.decrypt(&from_old).unwrap();
        assert_eq!((dec.message.as_slice(), slot), (&b"old"[..], KeySlot::Previous));
        let (dec, slot) = ring.decrypt(&from_new).unwrap();
        assert_eq!((dec.message.as_slice(), slot), (&b"new"[..], KeySlot::Current));
    }

    #[test]
    fn reply_is_encrypted_with_the_slot_that_decrypted() {
        let ring = KeyRing::new("wxapp", key(NEW)).with_previous(key(OLD));
        let reply = ring.encrypt(KeySlot::Previous, b"reply", &[2; 16]).unwrap();
        assert_eq!(key(OLD).decrypt("wxapp", &reply).unwrap().message, b"reply");
        assert!(key(NEW).decrypt("wxapp", &reply).is_err());
    }

    #[test]
    fn without_previous_key_old_ciphertext_fails_uniformly() {
        let ring = KeyRing::new("wxapp", key(NEW));
        let from_old = key(OLD).encrypt("wxapp", b"old", &[1; 16]).unwrap();
        assert_eq!(ring.decrypt(&from_old), Err(DecryptError));
        assert!(ring.key(KeySlot::Previous).is_none());
    }

    #[test]
    fn malformed_previous_key_is_rejected() {
        assert_eq!(
            KeyRing::from_encoding_aes_keys("wx", NEW, Some("short")).unwrap_err(),
            KeyError
        );
        assert_eq!(KeySlot::Previous.as_str(), "previous");
    }
}
