//! Strict decoding of callback bodies (XML, or JSON for mini-program JSON pushes) into flat text fields.
//!
//! Why strict: the body is attacker-controlled until its signature is checked, so the decoder refuses anything
//! a WeChat push never contains — non-UTF-8 bytes, `<!DOCTYPE>` / `<!ENTITY>` declarations (XXE and entity
//! expansion) anywhere, content before or after the root element, a field given twice (in JSON: the same
//! key again, even with `null`, or both spellings of an alias) or holding an element — instead of silently
//! ignoring it. Only the five predefined entities and character references are resolved.

#[cfg(test)]
mod agreement_tests;
mod json;
mod xml;

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

/// A flat body shape: named text fields, each decoded at most once; names it has no slot for are ignored.
pub(crate) trait FlatFields: Default {
    /// The slot of field `name`, or `None` for a field this shape does not keep. Each field has
    /// one slot at a fixed place in the value (a struct field, not a map entry), shared only by
    /// the spellings of one alias: the JSON decoder tells repeats apart by the slot's address.
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>>;
}

/// Decodes `body` as XML or JSON (see [`BodyFormat::detect`]) into `T`, strictly.
pub(crate) fn decode<T: FlatFields>(body: &[u8]) -> Result<(T, BodyFormat), MessageError> {
    decode_str(std::str::from_utf8(body).map_err(|_| MessageError::NotUtf8)?)
}

/// [`decode`] of text already known to be UTF-8.
pub(crate) fn decode_str<T: FlatFields>(text: &str) -> Result<(T, BodyFormat), MessageError> {
    match BodyFormat::detect(text.as_bytes()) {
        BodyFormat::Json => json::decode_json(text).map(|value| (value, BodyFormat::Json)),
        BodyFormat::Xml => xml::decode_xml(text).map(|value| (value, BodyFormat::Xml)),
    }
}

fn malformed(why: &str) -> MessageError {
    MessageError::Malformed(why.to_owned())
}

fn duplicate(name: &str) -> MessageError {
    MessageError::Malformed(format!("duplicate field `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Probe {
        content: Option<String>,
    }

    impl FlatFields for Probe {
        fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
            (name == "Content").then_some(&mut self.content)
        }
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
