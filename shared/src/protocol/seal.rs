//! Sealing a reply: encrypted into the safe-mode envelope when the request was encrypted, else as is.

use serde::Serialize;

use super::crypto::{EncryptError, RANDOM_LEN};
use super::decode::BodyFormat;
use super::open::OpenedMessage;
use super::reply::{PassiveReply, push_cdata};
use super::signature::msg_signature;

/// A reply ready to send, saying what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedReply {
    /// `success`: no reply (never encrypted, WeChat's rule).
    Success,
    /// A plaintext reply (the request was not encrypted).
    Plain(String),
    /// The encrypted envelope, in the request body's format (XML, or JSON for JSON pushes).
    Encrypted {
        /// The envelope.
        body: String,
        /// Its format.
        format: BodyFormat,
    },
}

/// Seals `reply` for the request `opened` came from.
///
/// If the request was encrypted, the reply is encrypted with the key that decrypted it and wrapped as
/// `<xml><Encrypt>…</Encrypt><MsgSignature>…</MsgSignature><TimeStamp>…</TimeStamp><Nonce>…</Nonce></xml>`
/// (or the JSON `{"Encrypt","MsgSignature","TimeStamp","Nonce"}` when the request body was JSON), signed over
/// (token, timestamp, nonce, Encrypt), with `random` as the 16 random bytes the plaintext starts with
/// (the caller draws them: this module does no I/O). `success` is never encrypted (WeChat's rule), and a
/// plaintext request gets the reply as is.
///
/// # Errors
/// [`EncryptError`] if the reply is 4 GiB or more.
pub fn seal(
    reply: PassiveReply,
    opened: &OpenedMessage<'_>,
    token: &str,
    timestamp_secs: u64,
    nonce: &str,
    random: &[u8; RANDOM_LEN],
) -> Result<SealedReply, EncryptError> {
    let xml = match reply {
        PassiveReply::Success => return Ok(SealedReply::Success),
        PassiveReply::Xml(xml) => xml,
    };
    let Some((keys, slot)) = opened.sealing_key() else {
        return Ok(SealedReply::Plain(xml));
    };
    let encrypt = keys.encrypt(slot, xml.as_bytes(), random)?;
    let timestamp = timestamp_secs.to_string();
    let signature = msg_signature(token, &timestamp, nonce, &encrypt);
    let format = opened.format();
    let body = match format {
        BodyFormat::Xml => xml_envelope(&encrypt, &signature, &timestamp, nonce),
        BodyFormat::Json => json_envelope(&encrypt, &signature, timestamp_secs, nonce),
    };
    Ok(SealedReply::Encrypted { body, format })
}

fn xml_envelope(encrypt: &str, signature: &str, timestamp: &str, nonce: &str) -> String {
    let mut out = String::with_capacity(160 + encrypt.len() + nonce.len());
    out.push_str("<xml><Encrypt>");
    push_cdata(&mut out, encrypt);
    out.push_str("</Encrypt><MsgSignature>");
    push_cdata(&mut out, signature);
    out.push_str("</MsgSignature><TimeStamp>");
    out.push_str(timestamp);
    out.push_str("</TimeStamp><Nonce>");
    push_cdata(&mut out, nonce);
    out.push_str("</Nonce></xml>");
    out
}

/// The JSON envelope of mini programs configured for JSON pushes (field order as in the official doc).
#[derive(Serialize)]
struct JsonEnvelope<'a> {
    #[serde(rename = "Encrypt")]
    encrypt: &'a str,
    #[serde(rename = "MsgSignature")]
    msg_signature: &'a str,
    #[serde(rename = "TimeStamp")]
    timestamp: u64,
    #[serde(rename = "Nonce")]
    nonce: &'a str,
}

fn json_envelope(encrypt: &str, msg_signature: &str, timestamp: u64, nonce: &str) -> String {
    let envelope = JsonEnvelope {
        encrypt,
        msg_signature,
        timestamp,
        nonce,
    };
    // Serializing a struct of strings and an integer into a String cannot fail; fall back to "" regardless.
    serde_json::to_string(&envelope).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::keyring::{KeyRing, KeySlot};
    use crate::protocol::mode::EncryptMode;
    use crate::protocol::open::{CallbackQuery, CallbackRequest, open};
    use crate::protocol::signature::{msg_signature, url_signature};

    const TOKEN: &str = "tok";
    const NEW: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const OLD: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn xml(text: &str) -> PassiveReply {
        PassiveReply::Xml(text.to_owned())
    }

    fn envelope(sealed: SealedReply) -> String {
        match sealed {
            SealedReply::Encrypted { body, .. } => body,
            other => panic!("expected an envelope, got {other:?}"),
        }
    }

    fn ring() -> KeyRing {
        KeyRing::from_encoding_aes_keys("wxapp", NEW, Some(OLD)).unwrap()
    }

    fn encrypted_request_body(ring: &KeyRing, slot: KeySlot, json: bool) -> (String, String) {
        let enc = ring
            .encrypt(slot, b"<xml><MsgType>text</MsgType></xml>", &[3; 16])
            .unwrap();
        let sig = msg_signature(TOKEN, "1", "2", &enc);
        let body = if json {
            format!(r#"{{"Encrypt":"{enc}"}}"#)
        } else {
            format!("<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>")
        };
        (body, sig)
    }

    fn opened<'a>(ring: &'a KeyRing, body: &'a str, sig: &'a str) -> OpenedMessage<'a> {
        let query = CallbackQuery {
            timestamp: Some("1"),
            nonce: Some("2"),
            encrypt_type: Some("aes"),
            msg_signature: Some(sig),
            ..CallbackQuery::default()
        };
        let request = CallbackRequest {
            mode: EncryptMode::Safe,
            token: TOKEN,
            keys: Some(ring),
            query,
            body: body.as_bytes(),
        };
        open(&request).unwrap()
    }

    fn field<'a>(xml: &'a str, name: &str) -> &'a str {
        let start = xml.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        let end = xml.find(&format!("</{name}>")).unwrap();
        let value = &xml[start..end];
        value
            .strip_prefix("<![CDATA[")
            .and_then(|v| v.strip_suffix("]]>"))
            .unwrap_or(value)
    }

    #[test]
    fn encrypted_request_gets_a_signed_envelope_with_the_same_key() {
        let ring = ring();
        let (body, sig) = encrypted_request_body(&ring, KeySlot::Previous, false);
        let opened = opened(&ring, &body, &sig);
        let sealed = envelope(
            seal(
                xml("<xml>reply</xml>"),
                &opened,
                TOKEN,
                1_713_424_427,
                "nonce1",
                &[9; 16],
            )
            .unwrap(),
        );
        let encrypt = field(&sealed, "Encrypt");
        assert_eq!(field(&sealed, "TimeStamp"), "1713424427");
        assert_eq!(field(&sealed, "Nonce"), "nonce1");
        assert_eq!(
            field(&sealed, "MsgSignature"),
            msg_signature(TOKEN, "1713424427", "nonce1", encrypt)
        );
        let old_key = ring.key(KeySlot::Previous).unwrap();
        assert_eq!(old_key.decrypt("wxapp", encrypt).unwrap().message, b"<xml>reply</xml>");
        assert!(ring.key(KeySlot::Current).unwrap().decrypt("wxapp", encrypt).is_err());
    }

    #[test]
    fn json_request_gets_a_json_envelope() {
        let ring = ring();
        let (body, sig) = encrypted_request_body(&ring, KeySlot::Current, true);
        let opened = opened(&ring, &body, &sig);
        let sealed = seal(xml(r#"{"demo_resp":"good luck"}"#), &opened, TOKEN, 7, "n", &[1; 16]).unwrap();
        assert!(matches!(
            sealed,
            SealedReply::Encrypted {
                format: BodyFormat::Json,
                ..
            }
        ));
        let sealed = envelope(sealed);
        let value: serde_json::Value = serde_json::from_str(&sealed).unwrap();
        assert_eq!(value["TimeStamp"], 7);
        assert_eq!(value["Nonce"], "n");
        let encrypt = value["Encrypt"].as_str().unwrap();
        assert_eq!(value["MsgSignature"], msg_signature(TOKEN, "7", "n", encrypt));
    }

    #[test]
    fn success_is_never_encrypted() {
        let ring = ring();
        let (body, sig) = encrypted_request_body(&ring, KeySlot::Current, false);
        let opened = opened(&ring, &body, &sig);
        assert_eq!(
            seal(PassiveReply::Success, &opened, TOKEN, 1, "n", &[0; 16]).unwrap(),
            SealedReply::Success
        );
        assert!(envelope(seal(xml("x"), &opened, TOKEN, 1, "n", &[0; 16]).unwrap()).starts_with("<xml><Encrypt>"));
    }

    #[test]
    fn plaintext_request_gets_the_reply_as_is() {
        let signature = url_signature(TOKEN, "1", "2");
        let query = CallbackQuery {
            signature: Some(&signature),
            timestamp: Some("1"),
            nonce: Some("2"),
            ..CallbackQuery::default()
        };
        let body = b"<xml/>";
        let request = CallbackRequest {
            mode: EncryptMode::Compatible,
            token: TOKEN,
            keys: None,
            query,
            body,
        };
        let opened = open(&request).unwrap();
        let sealed = seal(xml("<xml>reply</xml>"), &opened, TOKEN, 1, "n", &[0; 16]).unwrap();
        assert_eq!(sealed, SealedReply::Plain("<xml>reply</xml>".into()));
    }
}
