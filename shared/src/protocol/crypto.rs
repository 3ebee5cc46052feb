//! WXBizMsgCrypt: the AES-256-CBC scheme of WeChat safe mode (also WeCom, with the corpid as receive id).
//!
//! Plaintext = random(16) || be_u32(msg byte length) || msg || receive_id, PKCS#7-padded to a multiple of
//! **32** bytes (pad 1..=32), encrypted with AES-256-CBC, IV = key[..16], then base64. The cipher runs with
//! `NoPadding` and the 32-byte padding is done here explicitly: a 16-byte PKCS#7 unpadder would wrongly reject
//! the official vectors (pad 19 and 30).
//!
//! Every decryption failure (base64, length, padding, length prefix, receive id) is the same [`DecryptError`]:
//! telling them apart would hand an attacker a padding oracle.

use std::fmt;
use std::str::FromStr;

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use subtle::ConstantTimeEq;

type CbcEnc = cbc::Encryptor<Aes256>;
type CbcDec = cbc::Decryptor<Aes256>;

/// Length of the random prefix of the plaintext.
pub const RANDOM_LEN: usize = 16;
/// WeChat's PKCS#7 block size: pads are 1..=32 bytes.
const PAD_BLOCK: usize = 32;
/// AES block size: the ciphertext length must be a multiple of it.
const AES_BLOCK: usize = 16;
/// random(16) + be_u32 length.
const HEADER_LEN: usize = RANDOM_LEN + 4;
/// Length of an EncodingAESKey.
const ENCODING_KEY_LEN: usize = 43;
/// 43 base64 characters carry 258 bits, so the last one has 2 stray bits. The standard engine rejects non-zero
/// stray bits; WeChat's own decoders (PHP, Java, Python) ignore them, and so must we (the official sample key
/// `abcd…EFG` has them set).
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// A 32-byte AES key decoded from a 43-character EncodingAESKey. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

/// The EncodingAESKey is not 43 characters of `[A-Za-z0-9]` (the message never includes the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid EncodingAESKey: expected exactly 43 characters of [A-Za-z0-9]")]
pub struct KeyError;

/// The one error of every decryption failure, deliberately without detail (no padding oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decryption failed")]
pub struct DecryptError;

/// Encryption failures (none depends on secret data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The message is longer than the 4-byte length prefix can express.
    #[error("message too large to encrypt")]
    MessageTooLarge,
}

/// A decrypted payload: the random prefix and the message bytes (receive id already checked and removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The 16 random bytes the sender put first.
    pub random: [u8; RANDOM_LEN],
    /// The message (for callbacks, the message XML or JSON).
    pub message: Vec<u8>,
}

impl AesKey {
    /// Decodes an EncodingAESKey: `base64(key + "=")`, after checking it is 43 characters of `[A-Za-z0-9]`.
    ///
    /// # Errors
    /// [`KeyError`] for any other length or character.
    pub fn from_encoding_aes_key(encoding_aes_key: &str) -> Result<Self, KeyError> {
        let bytes = encoding_aes_key.as_bytes();
        if bytes.len() != ENCODING_KEY_LEN || !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(KeyError);
        }
        let mut padded = [b'='; ENCODING_KEY_LEN + 1];
        padded[..ENCODING_KEY_LEN].copy_from_slice(bytes);
        let mut key = [0u8; 32];
        match KEY_ENGINE.decode_slice(padded, &mut key) {
            Ok(32) => Ok(Self(key)),
            _ => Err(KeyError),
        }
    }

    /// Builds a key from raw bytes (tests and tools; production keys come from an EncodingAESKey).
    pub const fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// Encrypts `message` for `receive_id` with the caller's 16 random bytes; returns the base64 `Encrypt`.
    ///
    /// # Errors
    /// [`EncryptError::MessageTooLarge`] if `message` is 4 GiB or more.
    pub fn encrypt(&self, receive_id: &str, message: &[u8], random: &[u8; RANDOM_LEN]) -> Result<String, EncryptError> {
        let msg_len = u32::try_from(message.len()).map_err(|_| EncryptError::MessageTooLarge)?;
        let plain_len = HEADER_LEN + message.len() + receive_id.len();
        let pad = PAD_BLOCK - plain_len % PAD_BLOCK;
        let mut buf = Vec::with_capacity(plain_len + pad);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&msg_len.to_be_bytes());
        buf.extend_from_slice(message);
        buf.extend_from_slice(receive_id.as_bytes());
        // pad is in 1..=32, so it fits a byte.
        buf.resize(plain_len + pad, pad as u8);
        let total = buf.len();
        let ciphertext = CbcEnc::new(self.0.as_slice().into(), self.0[..AES_BLOCK].into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, total)
            .map_err(|_| EncryptError::MessageTooLarge)?;
        Ok(STANDARD.encode(ciphertext))
    }

    /// Decrypts a base64 `Encrypt` value and checks the trailing receive id (constant time).
    ///
    /// # Errors
    /// [`DecryptError`] for every failure: bad base64, length not a multiple of 16 or below 32, invalid padding,
    /// length prefix out of bounds, receive id mismatch.
    pub fn decrypt(&self, receive_id: &str, encrypt: &str) -> Result<Decrypted, DecryptError> {
        let mut buf = STANDARD.decode(encrypt).map_err(|_| DecryptError)?;
        if buf.len() < PAD_BLOCK || buf.len() % AES_BLOCK != 0 {
            return Err(DecryptError);
        }
        let plain_len = CbcDec::new(self.0.as_slice().into(), self.0[..AES_BLOCK].into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| DecryptError)?
            .len();
        let content_len = plain_len - pkcs7_pad_len(&buf[..plain_len])?;
        let content = &buf[..content_len];
        if content.len() < HEADER_LEN {
            return Err(DecryptError);
        }
        let (random, rest) = content.split_at(RANDOM_LEN);
        let (len_bytes, rest) = rest.split_at(4);
        let msg_len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        if msg_len > rest.len() {
            return Err(DecryptError);
        }
        let id = &rest[msg_len..];
        if !bool::from(id.ct_eq(receive_id.as_bytes())) {
            return Err(DecryptError);
        }
        let mut random_out = [0u8; RANDOM_LEN];
        random_out.copy_from_slice(random);
        // Reuse the buffer for the message: move it to the front, drop the rest.
        buf.copy_within(HEADER_LEN..HEADER_LEN + msg_len, 0);
        buf.truncate(msg_len);
        Ok(Decrypted {
            random: random_out,
            message: buf,
        })
    }
}

/// The PKCS#7 pad length (1..=32) of `plain`, checking every pad byte without an early exit.
fn pkcs7_pad_len(plain: &[u8]) -> Result<usize, DecryptError> {
    let Some(&last) = plain.last() else {
        return Err(DecryptError);
    };
    let pad = usize::from(last);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return Err(DecryptError);
    }
    let consistent = plain[plain.len() - pad..].iter().fold(0u8, |acc, &b| acc | (b ^ last));
    if consistent != 0 {
        return Err(DecryptError);
    }
    Ok(pad)
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl FromStr for AesKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_encoding_aes_key(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const APPID: &str = "wx2c2769f8efd9abc2";

    fn key() -> AesKey {
        AesKey::from_encoding_aes_key(KEY).unwrap()
    }

    /// Encrypts raw `plain` bytes (already laid out and padded by the test) with the test key.
    fn encrypt_raw(mut plain: Vec<u8>) -> String {
        let len = plain.len();
        let k = key();
        let out = CbcEnc::new(k.0.as_slice().into(), k.0[..16].into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .unwrap();
        STANDARD.encode(out)
    }

    fn layout(msg: &[u8], id: &[u8], declared_len: u32) -> Vec<u8> {
        let mut plain = vec![b'r'; 16];
        plain.extend_from_slice(&declared_len.to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(id);
        plain
    }

    fn pad_with(mut plain: Vec<u8>, pad: usize, byte: u8) -> Vec<u8> {
        plain.resize(plain.len() + pad, byte);
        plain
    }

    #[test]
    fn encoding_aes_key_must_be_43_alphanumerics() {
        assert!(AesKey::from_encoding_aes_key(KEY).is_ok());
        assert_eq!(AesKey::from_encoding_aes_key(&KEY[..42]), Err(KeyError));
        assert_eq!(AesKey::from_encoding_aes_key(&format!("{KEY}A")), Err(KeyError));
        assert_eq!(
            AesKey::from_encoding_aes_key(&format!("{}+", &KEY[..42])),
            Err(KeyError)
        );
        assert_eq!(
            AesKey::from_encoding_aes_key(&format!("{}=", &KEY[..42])),
            Err(KeyError)
        );
        assert_eq!(
            AesKey::from_encoding_aes_key(&format!("{}é", &KEY[..41])),
            Err(KeyError)
        );
        assert_eq!(format!("{:?}", key()), "AesKey(<redacted>)");
    }

    #[test]
    fn round_trip_pads_to_32_byte_blocks() {
        for len in [0usize, 1, 11, 12, 13, 44, 100] {
            let msg = vec![b'x'; len];
            let enc = key().encrypt(APPID, &msg, b"0123456789abcdef").unwrap();
            let raw = STANDARD.decode(&enc).unwrap();
            assert_eq!(raw.len() % 32, 0, "len {len}");
            let dec = key().decrypt(APPID, &enc).unwrap();
            assert_eq!(dec.message, msg);
            assert_eq!(&dec.random, b"0123456789abcdef");
        }
    }

    #[test]
    fn aligned_plaintext_gets_a_full_block_of_padding() {
        // 20 + 12 + 18 (appid) + 14 = 64 bytes: aligned, so a full 32-byte pad is appended.
        let msg = vec![b'm'; 26];
        let enc = key().encrypt(APPID, &msg, &[7; 16]).unwrap();
        assert_eq!(STANDARD.decode(&enc).unwrap().len(), 96);
        assert_eq!(key().decrypt(APPID, &enc).unwrap().message, msg);
    }

    #[test]
    fn every_decrypt_failure_is_the_same_error() {
        let good = layout(b"hello", APPID.as_bytes(), 5);
        let pad = 32 - good.len() % 32;
        let cases: Vec<(&str, String)> = vec![
            ("bad base64", "not base64!!".to_owned()),
            ("empty", String::new()),
            ("truncated to one block", STANDARD.encode([0u8; 16])),
            ("not a multiple of 16", STANDARD.encode([0u8; 40])),
            ("pad 0", encrypt_raw(pad_with(good.clone(), pad, 0))),
            ("pad 33", encrypt_raw(pad_with(good.clone(), 32 + pad, 33))),
            ("inconsistent pad bytes", {
                let mut p = pad_with(good.clone(), pad, pad as u8);
                let n = p.len();
                p[n - 2] ^= 1;
                encrypt_raw(p)
            }),
            ("length prefix too large", {
                let p = layout(b"hello", APPID.as_bytes(), 5000);
                let pad = 32 - p.len() % 32;
                encrypt_raw(pad_with(p, pad, pad as u8))
            }),
            ("shorter than header", encrypt_raw(vec![19u8; 32])),
            (
                "wrong appid",
                key().encrypt("wx0000000000000000", b"hello", &[1; 16]).unwrap(),
            ),
            ("truncated ciphertext", {
                let enc = key().encrypt(APPID, b"hello world, long enough", &[1; 16]).unwrap();
                let raw = STANDARD.decode(enc).unwrap();
                STANDARD.encode(&raw[..raw.len() - 32])
            }),
        ];
        for (name, encrypt) in cases {
            assert_eq!(key().decrypt(APPID, &encrypt), Err(DecryptError), "{name}");
        }
        // Sanity: the well-formed layout decrypts.
        let ok = encrypt_raw(pad_with(good, pad, pad as u8));
        assert_eq!(key().decrypt(APPID, &ok).unwrap().message, b"hello");
    }

    #[test]
    fn receive_id_prefix_or_extension_is_rejected() {
        let enc = key().encrypt(APPID, b"m", &[0; 16]).unwrap();
        assert_eq!(key().decrypt(&APPID[..17], &enc), Err(DecryptError));
        assert_eq!(key().decrypt(&format!("{APPID}x"), &enc), Err(DecryptError));
        assert_eq!(key().decrypt("", &enc), Err(DecryptError));
    }

    #[test]
    fn decrypt_error_message_is_uniform() {
        assert_eq!(DecryptError.to_string(), "decryption failed");
    }
}
