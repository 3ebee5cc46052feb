//! Strict decoding of callback bodies (XML, or JSON for mini-program JSON pushes) into serde types.
//!
//! Why strict: the body is attacker-controlled until its signature is checked, so the decoder refuses anything
//! a WeChat push never contains — non-UTF-8 bytes, `<!DOCTYPE>` / `<!ENTITY>` declarations (XXE and entity
//! expansion), content after the root element — instead of silently ignoring it. quick-xml never expands
//! custom entities anyway; rejecting the declaration makes the refusal explicit. Nesting is capped by the
//! deserializer (depth 128), so deep input cannot exhaust the stack.

use std::cell::Cell;

use quick_xml::de::{DeError, Deserializer, EntityResolver};
use quick_xml::errors::SyntaxError;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::BytesText;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a callback body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The body is not valid UTF-8.
    #[error("message body is not valid UTF-8")]
    NotUtf8,
    /// The body declares a DOCTYPE, ENTITY or other markup declaration.
    #[error("DOCTYPE and entity declarations are not allowed")]
    Dtd,
    /// The body is not well-formed XML/JSON of the expected shape.
    #[error("malformed message body: {0}")]
    Malformed(String),
    /// A required header field (`ToUserName`, `FromUserName`, `CreateTime`, `MsgType`) is missing or empty.
    #[error("missing required field {0}")]
    MissingField(&'static str),
    /// A required header field has an invalid value (e.g. a non-numeric `CreateTime`).
    #[error("invalid value of field {0}")]
    InvalidField(&'static str),
}

/// The wire format of a callback body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyFormat {
    /// `<xml>…</xml>` (Official Accounts, and mini programs configured for XML).
    Xml,
    /// `{…}` (mini programs configured for JSON).
    Json,
}

impl BodyFormat {
    /// JSON if the first non-whitespace byte is `{`, XML otherwise.
    pub fn detect(body: &[u8]) -> Self {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Self::Json,
            _ => Self::Xml,
        }
    }
}

/// Decodes `body` as XML or JSON (see [`BodyFormat::detect`]) into `T`, strictly.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<(T, BodyFormat), MessageError> {
    decode_str(std::str::from_utf8(body).map_err(|_| MessageError::NotUtf8)?)
}

/// [`decode`] of text already known to be UTF-8.
pub(crate) fn decode_str<T: DeserializeOwned>(text: &str) -> Result<(T, BodyFormat), MessageError> {
    match BodyFormat::detect(text.as_bytes()) {
        BodyFormat::Json => decode_json(text).map(|value| (value, BodyFormat::Json)),
        BodyFormat::Xml => decode_xml(text).map(|value| (value, BodyFormat::Xml)),
    }
}

/// Decodes a JSON object into `T`, with top-level scalars as strings (`"CreateTime":1714037059` becomes
/// `"1714037059"`), so one serde shape of all-text fields serves XML and JSON bodies alike.
fn decode_json<T: DeserializeOwned>(text: &str) -> Result<T, MessageError> {
    let malformed = |err: serde_json::Error| MessageError::Malformed(err.to_string());
    let mut object: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(malformed)?;
    object.retain(|_, value| !value.is_null());
    for value in object.values_mut() {
        match value {
            Value::Number(n) => *value = Value::String(n.to_string()),
            Value::Bool(b) => *value = Value::String(b.to_string()),
            _ => {}
        }
    }
    T::deserialize(Value::Object(object)).map_err(malformed)
}

/// Decodes an XML document into `T`, rejecting DTDs and trailing content.
pub(crate) fn decode_xml<T: DeserializeOwned>(text: &str) -> Result<T, MessageError> {
    let saw_dtd = Cell::new(false);
    // Trailing whitespace after the root is legal; anything else after it is not.
    let mut de = Deserializer::from_str_with_resolver(text.trim_end(), RejectDtd(&saw_dtd));
    let result = T::deserialize(&mut de);
    if saw_dtd.get() {
        return Err(MessageError::Dtd);
    }
    match result {
        Ok(_) if !de.is_empty() => Err(MessageError::Malformed("content after the root element".to_owned())),
        Ok(value) => Ok(value),
        // A bare `<!ENTITY …>` / `<!ELEMENT …>` outside a DOCTYPE is invalid `<!` markup.
        Err(DeError::InvalidXml(quick_xml::Error::Syntax(SyntaxError::InvalidBangMarkup))) => Err(MessageError::Dtd),
        Err(err) => Err(MessageError::Malformed(err.to_string())),
    }
}

/// Entity resolver that refuses any DOCTYPE and resolves only the five predefined entities.
struct RejectDtd<'a>(&'a Cell<bool>);

/// Returned to quick-xml when a DOCTYPE is seen (mapped to [`MessageError::Dtd`] by the caller).
#[derive(Debug, thiserror::Error)]
#[error("DOCTYPE is not allowed")]
struct DtdRejected;

impl EntityResolver for RejectDtd<'_> {
    type Error = DtdRejected;

    fn capture(&mut self, _doctype: BytesText<'_>) -> Result<(), Self::Error> {
        self.0.set(true);
        Err(DtdRejected)
    }

    fn resolve(&self, entity: &str) -> Option<&str> {
        // Only `lt gt amp apos quot`; character references (`&#x41;`) are handled by quick-xml itself.
        resolve_predefined_entity(entity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Probe {
        #[serde(rename = "Content")]
        content: Option<String>,
    }

    fn probe(xml: &str) -> Result<Probe, MessageError> {
        decode::<Probe>(xml.as_bytes()).map(|(p, _)| p)
    }

    #[test]
    fn doctype_and_entity_declarations_are_rejected() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>"#;
        assert_eq!(probe(xxe), Err(MessageError::Dtd));
        assert_eq!(
            probe("<!DOCTYPE xml><xml><Content>a</Content></xml>"),
            Err(MessageError::Dtd)
        );
        assert_eq!(
            probe("<xml><Content>a<!DOCTYPE x>b</Content></xml>"),
            Err(MessageError::Dtd)
        );
        assert_eq!(
            probe(r#"<!ENTITY x "y"><xml><Content>&x;</Content></xml>"#),
            Err(MessageError::Dtd)
        );
        assert_eq!(
            probe(r#"<xml><!ENTITY x "y"><Content>a</Content></xml>"#),
            Err(MessageError::Dtd)
        );
    }

    #[test]
    fn predefined_and_numeric_entities_are_resolved_but_custom_ones_fail() {
        assert_eq!(
            probe("<xml><Content>&lt;&amp;&#x41;&#66;</Content></xml>")
                .unwrap()
                .content
                .unwrap(),
            "<&AB"
        );
        assert!(matches!(
            probe("<xml><Content>&custom;</Content></xml>"),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_xml_is_rejected() {
        for bad in [
            "",
            "   ",
            "not xml",
            "<xml><Content>a</Content>",
            "<xml><Content>a</Wrong></xml>",
            "<xml><Content>a</Content></xml>trailing",
            "<xml><Content>a</Content></xml><xml/>",
            "<xml><Content>a</Content><Content>b</Content></xml>",
        ] {
            assert!(
                matches!(probe(bad), Err(MessageError::Malformed(_))),
                "{bad:?} → {:?}",
                probe(bad)
            );
        }
    }

    #[test]
    fn trailing_whitespace_after_root_is_accepted() {
        assert_eq!(
            probe("<xml><Content>a</Content></xml>\r\n\n")
                .unwrap()
                .content
                .as_deref(),
            Some("a")
        );
    }

    #[test]
    fn non_utf8_is_rejected() {
        let mut body = b"<xml><Content>".to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(b"</Content></xml>");
        assert_eq!(decode::<Probe>(&body).unwrap_err(), MessageError::NotUtf8);
    }

    #[test]
    fn json_bodies_are_detected_and_decoded() {
        let (p, format) = decode::<Probe>(br#"  {"Content":"hi"}"#).unwrap();
        assert_eq!((p.content.as_deref(), format), (Some("hi"), BodyFormat::Json));
        let (p, _) = decode::<Probe>(br#"{"Content":17,"Other":null,"Nested":{"a":1}}"#).unwrap();
        assert_eq!(p.content.as_deref(), Some("17"));
        assert!(matches!(
            decode::<Probe>(b"{\"Content\":"),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Probe>(b"{\"Content\":[1]}"),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        // Unknown subtrees are skipped without recursion; nesting inside a known field is an error.
        let deep = format!("<xml>{}{}</xml>", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert_eq!(probe(&deep), Ok(Probe { content: None }));
        let deep = format!(
            "<xml><Content>{}{}</Content></xml>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        assert!(matches!(probe(&deep), Err(MessageError::Malformed(_))));
    }
}
