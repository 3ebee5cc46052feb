//! The XML reading of a flat callback body on quick-xml's event reader.
//!
//! A WeChat push is one root element whose children are text fields. Reading it event by event
//! instead of through quick-xml's serde deserializer saves that deserializer's lookahead and
//! buffering (a tenth of a POST's instructions, docs/benchmarks.md §17) and keeps every refusal
//! explicit: DTDs anywhere, an element nested in a known field, a field given twice, malformed
//! root attributes, unknown entities, content before or after the root. Fields match by local name
//! (`<wx:Content>` is `Content`), as the serde decoder did. Unknown fields are skipped with a
//! depth counter, never by recursion, so deep input cannot exhaust the stack.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, BytesText, Event};
use quick_xml::reader::Reader;

use super::{FlatFields, MessageError, duplicate, malformed};

/// Decodes `text` (one root element of text fields) into `T`.
pub(super) fn decode_xml<T: FlatFields>(text: &str) -> Result<T, MessageError> {
    // Trailing whitespace after the root is legal; `check_end_names` (the default) refuses `<a></b>`.
    let mut events = Events::new(text.trim_end());
    let mut fields = T::default();
    if events.root()? {
        loop {
            match events.next()? {
                Event::Start(start) => match fields.slot(element_name(&start)) {
                    Some(slot) if slot.is_some() => return Err(duplicate(element_name(&start))),
                    Some(slot) => *slot = Some(events.value()?),
                    None => events.skip_element()?,
                },
                Event::Empty(start) => match fields.slot(element_name(&start)) {
                    Some(slot) if slot.is_some() => return Err(duplicate(element_name(&start))),
                    Some(slot) => *slot = Some(String::new()),
                    None => {}
                },
                // The root's end tag (the reader has checked its name).
                Event::End(_) => break,
                Event::Eof => return Err(malformed("the root element is not closed")),
                // A reference between fields is text nobody reads, but an unknown one is refused.
                Event::GeneralRef(reference) => {
                    resolve(&reference)?;
                }
                // Text between fields (indentation), comments, processing instructions.
                _ => {}
            }
        }
    }
    events.epilogue()?;
    Ok(fields)
}

/// quick-xml's events with the refusals every position shares: DTDs, and errors as [`MessageError`].
struct Events<'a> {
    reader: Reader<&'a [u8]>,
    /// From the declaration: XML 1.1 normalises line ends differently.
    version: XmlVersion,
}

impl<'a> Events<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            reader: Reader::from_str(text),
            version: XmlVersion::Implicit1_0,
        }
    }

    fn next(&mut self) -> Result<Event<'a>, MessageError> {
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(MessageError::Dtd),
            Ok(Event::Decl(decl)) => {
                self.version = decl
                    .xml_version()
                    .map_err(|err| MessageError::Malformed(err.to_string()))?;
                Ok(Event::Decl(decl))
            }
            Ok(event) => Ok(event),
            // A bare `<!ENTITY …>` / `<!ELEMENT …>` outside a DOCTYPE is invalid `<!` markup.
            Err(XmlError::Syntax(SyntaxError::InvalidBangMarkup)) => Err(MessageError::Dtd),
            Err(err) => Err(MessageError::Malformed(err.to_string())),
        }
    }

    /// Reads up to the root element's start tag: `true` if it has content, `false` for `<xml/>`.
    fn root(&mut self) -> Result<bool, MessageError> {
        loop {
            match self.next()? {
                Event::Start(root) => return check_attributes(&root).map(|()| true),
                Event::Empty(root) => return check_attributes(&root).map(|()| false),
                Event::Text(text) if is_blank(&text) => {}
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(malformed("no root element")),
                _ => return Err(malformed("content before the root element")),
            }
        }
    }

    /// After the root: only whitespace, comments and processing instructions.
    fn epilogue(&mut self) -> Result<(), MessageError> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Text(text) if is_blank(&text) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(malformed("content after the root element")),
            }
        }
    }

    /// The text of the field whose start tag was just read, up to its end tag: text, CDATA sections
    /// and references concatenated as they are (untrimmed, line ends normalised).
    fn value(&mut self) -> Result<String, MessageError> {
        let mut value = Cow::Borrowed("");
        loop {
            match self.next()? {
                Event::Text(text) => append(&mut value, text.xml_content(self.version)),
                Event::CData(cdata) => append(&mut value, cdata.xml_content(self.version)),
                Event::GeneralRef(reference) => value.to_mut().push_str(&resolve(&reference)?),
                Event::End(_) => return Ok(value.into_owned()),
                Event::Start(_) | Event::Empty(_) => return Err(malformed("an element nested in a field")),
                Event::Eof => return Err(malformed("a field is not closed")),
                _ => {}
            }
        }
    }

    /// Skips the rest of an element whose start tag was just read, however deep.
    fn skip_element(&mut self) -> Result<(), MessageError> {
        let mut depth = 1_usize;
        while depth > 0 {
            match self.next()? {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(malformed("an element is not closed")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The element's local name: after the first `:`, as quick-xml's `local_name` has it, found
/// with a plain byte scan (its `str::find` sets up a char searcher per call: 4 % of a message's
/// parse, for names of a dozen bytes).
fn element_name<'e>(start: &'e BytesStart<'_>) -> &'e str {
    let name = start.name().0;
    match name.bytes().position(|byte| byte == b':') {
        // `:` is ASCII, so the byte after it starts a char.
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

/// The root's attributes are read by nobody, but a malformed one (`<xml a>`, a repeated name) is
/// refused, as the serde decoder did (it never looked at a field's).
fn check_attributes(start: &BytesStart<'_>) -> Result<(), MessageError> {
    for attribute in start.attributes() {
        attribute.map_err(|err| MessageError::Malformed(err.to_string()))?;
    }
    Ok(())
}

fn is_blank(text: &BytesText<'_>) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn append<'a>(value: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if value.is_empty() {
        *value = piece;
    } else {
        value.to_mut().push_str(&piece);
    }
}

/// `&#x41;` / `&#65;` and the five predefined entities; any other entity is refused.
fn resolve(reference: &BytesRef<'_>) -> Result<Cow<'static, str>, MessageError> {
    let invalid = |err: &dyn std::fmt::Display| MessageError::Malformed(err.to_string());
    if let Some(ch) = reference.resolve_char_ref().map_err(|err| invalid(&err))? {
        return Ok(Cow::Owned(ch.to_string()));
    }
    let name: &str = reference;
    resolve_predefined_entity(name)
        .map(Cow::Borrowed)
        .ok_or_else(|| MessageError::Malformed(format!("unknown entity &{name};")))
}
