//! Inbound callback messages: the body (XML, or JSON for mini programs) → a typed [`Message`].
//!
//! Decoding is one serde pass into a flat shape, then typing. An unknown `MsgType` or `Event` — or a known one
//! whose type-specific fields are missing or malformed — becomes an `Unknown` variant carrying the raw body, never
//! an error: answering 4xx/5xx to WeChat makes it retry and the user sees "service unavailable". Errors are kept
//! for bodies that are not messages at all (see [`MessageError`]).

mod event;
mod raw;

pub use event::{Event, QR_SCENE_PREFIX};

use super::decode::{MessageError, decode_str};
use event::parse_f64;
use raw::RawMessage;

/// The fields every message and event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The receiving account (the OA's original id `gh_…`, or the corpid).
    pub to_user_name: String,
    /// The sender's openid.
    pub from_user_name: String,
    /// Unix seconds.
    pub create_time: u64,
    /// `MsgType` as received (`text`, `event`, …).
    pub msg_type: String,
    /// `MsgId` (or `MsgID`), absent on most events.
    pub msg_id: Option<String>,
}

/// A typed inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Common header.
    pub header: Header,
    /// The typed content.
    pub kind: MessageKind,
}

/// The content of a message, by `MsgType` (matched case-insensitively).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageKind {
    /// `text`.
    Text {
        /// The text.
        content: String,
    },
    /// `image`.
    Image {
        /// Image URL.
        pic_url: String,
        /// Media id.
        media_id: String,
    },
    /// `voice`; `recognition` is set when speech recognition is enabled.
    Voice {
        /// Media id.
        media_id: String,
        /// `amr`, `speex`, ….
        format: String,
        /// Recognised text.
        recognition: Option<String>,
    },
    /// `video`.
    Video {
        /// Media id.
        media_id: String,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// `shortvideo`.
    ShortVideo {
        /// Media id.
        media_id: String,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// `location` (a location the user sent).
    Location {
        /// `Location_X` (latitude).
        location_x: f64,
        /// `Location_Y` (longitude).
        location_y: f64,
        /// Map zoom.
        scale: f64,
        /// Place description.
        label: String,
    },
    /// `link`.
    Link {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// URL.
        url: String,
    },
    /// `file`.
    File {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// File key.
        file_key: String,
        /// MD5 of the file.
        file_md5: String,
        /// Size in bytes.
        file_total_len: u64,
    },
    /// `event`.
    Event(Event),
    /// Any other `MsgType`, or a known one whose fields do not fit; the body is kept verbatim.
    Unknown {
        /// The complete message body, verbatim.
        raw: String,
    },
}

/// Parses a callback message body (plaintext XML or JSON) into a [`Message`].
///
/// # Errors
/// [`MessageError`] if the body is not UTF-8, declares a DOCTYPE/ENTITY, is malformed, or lacks (or has an
/// invalid) `ToUserName`, `FromUserName`, `CreateTime` or `MsgType`. Never panics.
pub fn parse_message(body: &[u8]) -> Result<Message, MessageError> {
    let text = std::str::from_utf8(body).map_err(|_| MessageError::NotUtf8)?;
    let (mut raw, _format) = decode_str::<RawMessage>(text)?;
    let header = Header {
        to_user_name: required(raw.to_user_name.take(), "ToUserName")?,
        from_user_name: required(raw.from_user_name.take(), "FromUserName")?,
        create_time: required(raw.create_time.take(), "CreateTime")?
            .trim()
            .parse()
            .map_err(|_| MessageError::InvalidField("CreateTime"))?,
        msg_type: required(raw.msg_type.take(), "MsgType")?,
        msg_id: raw.msg_id.take().filter(|id| !id.is_empty()),
    };
    let kind =
        typed_kind(&header.msg_type, &mut raw, text).unwrap_or_else(|| MessageKind::Unknown { raw: text.to_owned() });
    Ok(Message { header, kind })
}

impl Message {
    /// Parses a callback message body; see [`parse_message`].
    ///
    /// # Errors
    /// As [`parse_message`].
    pub fn parse(body: &[u8]) -> Result<Self, MessageError> {
        parse_message(body)
    }

    /// The event, if this is an event push.
    pub fn event(&self) -> Option<&Event> {
        match &self.kind {
            MessageKind::Event(event) => Some(event),
            _ => None,
        }
    }

    /// The key under which WeChat's retries of this push are deduplicated.
    ///
    /// Events: `"{FromUserName}:{CreateTime}:{Event}:{EventKey}"` (LOCATION reports and duplicated unsubscribes
    /// share user and second, so event and key are part of it). Messages with a `MsgId`:
    /// `"{MsgId}:{FromUserName}:{CreateTime}"` (MsgId alone collided in the field). Otherwise
    /// `"{FromUserName}:{CreateTime}:{MsgType}"`.
    pub fn dedup_key(&self) -> String {
        let h = &self.header;
        let mut digits = itoa::Buffer::new();
        let (from, time) = (h.from_user_name.as_str(), digits.format(h.create_time));
        // `join` sizes the key once: this runs for every message.
        match (&self.kind, &h.msg_id) {
            (MessageKind::Event(event), _) => [from, time, event.name(), event.event_key().unwrap_or("")].join(":"),
            (_, Some(msg_id)) => [msg_id, from, time].join(":"),
            (_, None) => [from, time, &h.msg_type].join(":"),
        }
    }
}

fn required(value: Option<String>, name: &'static str) -> Result<String, MessageError> {
    value.filter(|v| !v.is_empty()).ok_or(MessageError::MissingField(name))
}

/// Types the content, or `None` when the type is unknown or its fields do not fit.
fn typed_kind(msg_type: &str, raw: &mut RawMessage, text: &str) -> Option<MessageKind> {
    let is = |name: &str| msg_type.eq_ignore_ascii_case(name);
    Some(if is("text") {
        MessageKind::Text {
            content: raw.content.take()?,
        }
    } else if is("image") {
        MessageKind::Image {
            pic_url: raw.pic_url.take()?,
            media_id: raw.media_id.take()?,
        }
    } else if is("voice") {
        MessageKind::Voice {
            media_id: raw.media_id.take()?,
            format: raw.format.take()?,
            recognition: raw.recognition.take(),
        }
    } else if is("video") {
        MessageKind::Video {
            media_id: raw.media_id.take()?,
            thumb_media_id: raw.thumb_media_id.take()?,
        }
    } else if is("shortvideo") {
        MessageKind::ShortVideo {
            media_id: raw.media_id.take()?,
            thumb_media_id: raw.thumb_media_id.take()?,
        }
    } else if is("location") {
        MessageKind::Location {
            location_x: parse_f64(raw.location_x.as_deref())?,
            location_y: parse_f64(raw.location_y.as_deref())?,
            scale: parse_f64(raw.scale.as_deref())?,
            label: raw.label.take()?,
        }
    } else if is("link") {
        MessageKind::Link {
            title: raw.title.take()?,
            description: raw.description.take()?,
            url: raw.url.take()?,
        }
    } else if is("file") {
        MessageKind::File {
            title: raw.title.take()?,
            description: raw.description.take().unwrap_or_default(),
            file_key: raw.file_key.take()?,
            file_md5: raw.file_md5.take()?,
            file_total_len: raw.file_total_len.as_deref()?.trim().parse().ok()?,
        }
    } else if is("event") {
        let event = raw.event.take().filter(|e| !e.is_empty())?;
        MessageKind::Event(Event::from_raw(event, raw, text))
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests;
