//! The event-reader decoder agrees with quick-xml's serde deserializer — the decoder it replaced —
//! on generated documents: the same fields where both accept, the same refusal class where both
//! refuse, and a refusal of its own only for what it refuses on purpose (checked separately below).

use std::cell::Cell;

use proptest::prelude::*;
use quick_xml::de::{DeError, Deserializer, EntityResolver};
use quick_xml::errors::SyntaxError;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::BytesText;
use serde::Deserialize;

use super::{FlatFields, MessageError, decode};

#[derive(Debug, Default, Deserialize, PartialEq)]
struct Shape {
    #[serde(rename = "ToUserName")]
    to: Option<String>,
    #[serde(rename = "Content")]
    content: Option<String>,
    #[serde(rename = "MsgId", alias = "MsgID")]
    msg_id: Option<String>,
}

impl FlatFields for Shape {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            "ToUserName" => Some(&mut self.to),
            "Content" => Some(&mut self.content),
            "MsgId" | "MsgID" => Some(&mut self.msg_id),
            _ => None,
        }
    }
}

/// The replaced decoder, as it was: serde over quick-xml, DTDs refused, nothing after the root.
fn serde_decode(text: &str) -> Result<Shape, MessageError> {
    struct RejectDtd<'a>(&'a Cell<bool>);
    impl EntityResolver for RejectDtd<'_> {
        type Error = std::fmt::Error;
        fn capture(&mut self, _doctype: BytesText<'_>) -> Result<(), Self::Error> {
            self.0.set(true);
            Err(std::fmt::Error)
        }
        fn resolve(&self, entity: &str) -> Option<&str> {
            resolve_predefined_entity(entity)
        }
    }
    let saw_dtd = Cell::new(false);
    let mut de = Deserializer::from_str_with_resolver(text.trim_end(), RejectDtd(&saw_dtd));
    let result = Shape::deserialize(&mut de);
    if saw_dtd.get() {
        return Err(MessageError::Dtd);
    }
    match result {
        Ok(_) if !de.is_empty() => Err(MessageError::Malformed("trailing".into())),
        Ok(value) => Ok(value),
        Err(DeError::InvalidXml(quick_xml::Error::Syntax(SyntaxError::InvalidBangMarkup))) => Err(MessageError::Dtd),
        Err(err) => Err(MessageError::Malformed(err.to_string())),
    }
}

fn class(result: &Result<Shape, MessageError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(MessageError::Dtd) => "dtd",
        Err(_) => "malformed",
    }
}

/// A piece of a field's content; `dtd` lets it be a DOCTYPE (not inside unknown elements, see above).
fn text_piece(dtd: bool) -> impl Strategy<Value = String> {
    let doctype = if dtd { "<!DOCTYPE x>" } else { "<!-- no dtd -->" };
    prop_oneof![
        6 => "[a-z0-9 ]{0,6}",
        3 => "[ \r\n\t]{1,3}",
        3 => "[a-z]{0,4}".prop_map(|t| format!("<![CDATA[{t}<&>]]>")),
        2 => Just("&lt;".to_owned()),
        1 => Just("&amp;".to_owned()),
        1 => Just("&#x41;".to_owned()),
        1 => Just("&#66;".to_owned()),
        1 => Just("<!-- c -->".to_owned()),
        1 => Just("<?pi x?>".to_owned()),
        // Refused inside a field.
        1 => Just("&custom;".to_owned()),
        1 => Just("&#0;".to_owned()),
        1 => Just("<b>x</b>".to_owned()),
        1 => Just("<b/>".to_owned()),
        1 => Just(doctype.to_owned()),
    ]
}

fn value(dtd: bool) -> impl Strategy<Value = String> {
    prop::collection::vec(text_piece(dtd), 0..4).prop_map(|pieces| pieces.concat())
}

fn child() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("ToUserName"),
        Just("Content"),
        Just("MsgId"),
        Just("MsgID"),
        Just("Other")
    ];
    let known = prop_oneof![Just("ToUserName"), Just("Content"), Just("MsgId"), Just("MsgID")];
    prop_oneof![
        12 => (known, value(true)).prop_map(|(n, v)| format!("<{n}>{v}</{n}>")),
        1 => value(false).prop_map(|v| format!("<Other>{v}</Other>")),
        1 => name.clone().prop_map(|n| format!("<{n}/>")),
        1 => name.clone().prop_map(|n| format!("<{n} a=\"1\">v</{n}>")),
        // Malformed attributes, namespace prefixes.
        1 => name.clone().prop_map(|n| format!("<{n} a>v</{n}>")),
        1 => name.clone().prop_map(|n| format!("<{n} a=\"1\" a=\"2\"/>")),
        1 => name.prop_map(|n| format!("<wx:{n}>p</wx:{n}>")),
        // References between fields.
        1 => prop_oneof![Just("&lt;"), Just("&custom;"), Just("&#0;"), Just("&#x41;")].prop_map(str::to_owned),
        // An unknown element with nested content (no DTD in it: refusing one there is this decoder's own).
        1 => "[a-z ]{0,4}".prop_map(|t| format!("<Other><x><y>{t}</y></x><z/></Other>")),
        1 => "[ \r\n]{1,2}",
        1 => Just("<!-- c -->".to_owned()),
        1 => "[a-z]{1,3}",
        // Mismatched and unclosed tags.
        1 => Just("<Content>a</Wrong>".to_owned()),
        1 => Just("<Content>a".to_owned()),
        1 => Just("<!ENTITY x \"y\">".to_owned()),
        1 => Just("<!DOCTYPE x>".to_owned()),
    ]
}

fn document() -> impl Strategy<Value = String> {
    let prolog = prop_oneof![
        6 => Just(String::new()),
        2 => Just("<?xml version=\"1.0\"?>".to_owned()),
        2 => Just("<?xml version=\"1.1\"?>\n".to_owned()),
        1 => Just("<!-- c -->\n".to_owned()),
        1 => Just("  ".to_owned()),
        1 => Just("junk".to_owned()),
        1 => Just("<!DOCTYPE xml>".to_owned()),
        1 => Just("\u{feff}".to_owned()),
        1 => Just("\u{feff}<?xml version=\"1.0\" encoding=\"GBK\"?>".to_owned()),
        1 => Just("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n".to_owned()),
    ];
    let epilogue = prop_oneof![
        8 => Just(String::new()),
        1 => Just("\r\n".to_owned()),
        1 => Just("<!-- c -->".to_owned()),
        1 => Just("trailing".to_owned()),
        1 => Just("<xml/>".to_owned()),
        1 => Just("</xml>".to_owned()),
    ];
    let body = prop_oneof![
        8 => prop::collection::vec(child(), 0..6).prop_map(|c| format!("<xml>{}</xml>", c.concat())),
        1 => Just("<xml/>".to_owned()),
        1 => prop_oneof![Just("<xml a=\"1\">"), Just("<xml a>"), Just("<xml a=\"1\" a=\"2\">")]
            .prop_map(|root| format!("{root}<Content>r</Content></xml>")),
        1 => prop::collection::vec(child(), 0..3).prop_map(|c| format!("<xml>{}", c.concat())),
    ];
    (prolog, body, epilogue).prop_map(|(p, b, e)| format!("{p}{b}{e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn agrees_with_the_serde_decoder(doc in document()) {
        let ours = decode::<Shape>(doc.as_bytes()).map(|(shape, _)| shape);
        let theirs = serde_decode(&doc);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{:?}", doc),
            _ => prop_assert_eq!(class(&ours), class(&theirs), "{:?}: ours {:?}, serde {:?}", doc, ours, theirs),
        }
    }
}

#[test]
fn a_dtd_inside_an_unknown_element_is_refused_too() {
    // The serde decoder skipped unknown subtrees unread; this one reads them and refuses a DTD anywhere.
    let doc = "<xml><Other><!DOCTYPE x></Other><Content>a</Content></xml>";
    assert!(serde_decode(doc).is_ok());
    assert_eq!(decode::<Shape>(doc.as_bytes()).unwrap_err(), MessageError::Dtd);
}
