//! A mini-program user's encrypted data (`wx.getUserInfo`, `wx.getWeRunData`, …): AES-128-CBC
//! with PKCS#7 padding, key = base64(session_key), iv = base64(iv); the plaintext is JSON whose
//! `watermark.appid` must be our mini-program's. And the plain `rawData`'s signature,
//! `sha1(rawData + session_key)`.
//!
//! Every failure to decrypt — bad base64, a wrong iv, tampered bytes, a stale session_key, bad
//! padding, not JSON — is the same [`UserDataError::Undecryptable`]: a caller learns nothing
//! about which step failed (no padding oracle).

use aes::Aes128;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

type Decryptor = cbc::Decryptor<Aes128>;

/// Why user data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    /// It does not decrypt to JSON under this session's key and this iv.
    #[error("the encrypted data does not decrypt under this session")]
    Undecryptable,
    /// It decrypted, but carries another mini-program's watermark (or none).
    #[error("the data is watermarked for another mini-program")]
    ForeignAppid,
    /// It decrypted, but names another user than the session's.
    #[error("the data belongs to another user")]
    OtherUser,
    /// `rawData`'s signature does not match.
    #[error("rawData's signature does not match")]
    BadSignature,
}

/// Decrypts `encrypted_data` with `session_key` and `iv` and checks its watermark against
/// `appid` (and, when the data names one, its `openId` against `openid`).
///
/// # Errors
/// [`UserDataError`].
pub fn decrypt_user_data(
    session_key: &Secret,
    encrypted_data: &str,
    iv: &str,
    appid: &str,
    openid: &str,
) -> Result<Value, UserDataError> {
    let undecryptable = |_: base64::DecodeError| UserDataError::Undecryptable;
    let key: [u8; 16] = STANDARD
        .decode(session_key.expose())
        .map_err(undecryptable)?
        .try_into()
        .map_err(|_| UserDataError::Undecryptable)?;
    let iv: [u8; 16] = STANDARD
        .decode(iv)
        .map_err(undecryptable)?
        .try_into()
        .map_err(|_| UserDataError::Undecryptable)?;
    let ciphertext = STANDARD.decode(encrypted_data).map_err(undecryptable)?;
    let plaintext = Decryptor::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
        .map_err(|_| UserDataError::Undecryptable)?;
    let data: Value = serde_json::from_slice(&plaintext).map_err(|_| UserDataError::Undecryptable)?;
    let watermark = data.pointer("/watermark/appid").and_then(Value::as_str);
    if watermark != Some(appid) {
        return Err(UserDataError::ForeignAppid);
    }
    if let Some(named) = data.get("openId").and_then(Value::as_str)
        && named != openid
    {
        return Err(UserDataError::OtherUser);
    }
    Ok(data)
}

/// Checks `signature` = hex(sha1(`raw_data` + session_key)), in constant time.
///
/// # Errors
/// [`UserDataError::BadSignature`].
pub fn check_raw_data(session_key: &Secret, raw_data: &str, signature: &str) -> Result<(), UserDataError> {
    let mut hasher = Sha1::new();
    hasher.update(raw_data.as_bytes());
    hasher.update(session_key.expose().as_bytes());
    let expected = hex::encode(hasher.finalize());
    if expected
        .as_bytes()
        .ct_eq(signature.to_ascii_lowercase().as_bytes())
        .into()
    {
        Ok(())
    } else {
        Err(UserDataError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `shared/testdata/auth/wxa_encrypted_data.json` (wechatpy's test of the official sample).
    fn vector() -> Value {
        serde_json::from_str(include_str!("../../testdata/auth/wxa_encrypted_data.json")).unwrap()
    }

    fn field<'a>(v: &'a Value, name: &str) -> &'a str {
        v[name].as_str().unwrap()
    }

    #[test]
    fn the_official_sample_decrypts_to_its_plaintext() {
        let v = vector();
        let key = Secret::new(field(&v, "session_key"));
        let data = decrypt_user_data(
            &key,
            field(&v, "encrypted_data"),
            field(&v, "iv"),
            field(&v, "appid"),
            "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
        )
        .unwrap();
        let expected: Value = serde_json::from_str(field(&v, "expected_plaintext")).unwrap();
        assert_eq!(data, expected);
    }

    #[test]
    fn a_wrong_iv_tampered_bytes_or_a_stale_key_are_one_error() {
        let v = vector();
        let key = Secret::new(field(&v, "session_key"));
        let (data, iv, appid) = (field(&v, "encrypted_data"), field(&v, "iv"), field(&v, "appid"));
        let openid = "oGZUI0egBJY1zhBYw2KhdUfwVJJE";
        let mut tampered = STANDARD.decode(data).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let tampered = STANDARD.encode(tampered);
        let other_key = Secret::new(STANDARD.encode([7u8; 16]));
        let cases = [
            decrypt_user_data(&key, data, &STANDARD.encode([0u8; 16]), appid, openid),
            decrypt_user_data(&key, &tampered, iv, appid, openid),
            decrypt_user_data(&other_key, data, iv, appid, openid),
            decrypt_user_data(&key, "not base64!", iv, appid, openid),
            decrypt_user_data(&key, data, "short", appid, openid),
        ];
        for case in cases {
            assert_eq!(case, Err(UserDataError::Undecryptable));
        }
    }

    #[test]
    fn another_mini_programs_or_users_data_is_refused() {
        let v = vector();
        let key = Secret::new(field(&v, "session_key"));
        let (data, iv) = (field(&v, "encrypted_data"), field(&v, "iv"));
        assert_eq!(
            decrypt_user_data(&key, data, iv, "wx_ours", "oGZUI0egBJY1zhBYw2KhdUfwVJJE"),
            Err(UserDataError::ForeignAppid)
        );
        assert_eq!(
            decrypt_user_data(&key, data, iv, field(&v, "appid"), "o_someone_else"),
            Err(UserDataError::OtherUser)
        );
    }

    #[test]
    fn raw_data_signatures_match_the_official_example() {
        let v: Value = serde_json::from_str(include_str!("../../testdata/auth/raw_data_signature.json")).unwrap();
        let key = Secret::new(field(&v, "session_key"));
        let (raw, signature) = (field(&v, "raw_data"), field(&v, "signature"));
        assert_eq!(check_raw_data(&key, raw, signature), Ok(()));
        assert_eq!(
            check_raw_data(&key, &raw.replace("Band", "Bond"), signature),
            Err(UserDataError::BadSignature)
        );
        assert_eq!(
            check_raw_data(&key, raw, &"0".repeat(40)),
            Err(UserDataError::BadSignature)
        );
    }
}
