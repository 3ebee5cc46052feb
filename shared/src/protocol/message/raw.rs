//! The flat wire shape of every inbound message: all fields of all types, optional, decoded in one pass.
//!
//! Typing happens afterwards (`super::typed_kind`), so an unknown `MsgType` or `Event` never fails
//! decoding. Every field is text: XML text as is, JSON scalars stringified by `decode`.

use crate::protocol::decode::FlatFields;

/// Every field a supported message or event may carry (unknown fields are ignored).
#[derive(Debug, Default)]
pub(super) struct RawMessage {
    pub to_user_name: Option<String>,
    pub from_user_name: Option<String>,
    pub create_time: Option<String>,
    pub msg_type: Option<String>,
    /// `MsgID` is the spelling of TEMPLATESENDJOBFINISH / MASSSENDJOBFINISH events.
    pub msg_id: Option<String>,

    pub content: Option<String>,
    pub pic_url: Option<String>,
    pub media_id: Option<String>,
    pub format: Option<String>,
    pub recognition: Option<String>,
    pub thumb_media_id: Option<String>,
    pub location_x: Option<String>,
    pub location_y: Option<String>,
    pub scale: Option<String>,
    pub label: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub file_key: Option<String>,
    pub file_md5: Option<String>,
    pub file_total_len: Option<String>,

    pub event: Option<String>,
    pub event_key: Option<String>,
    pub ticket: Option<String>,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub precision: Option<String>,
    pub menu_id: Option<String>,
    pub status: Option<String>,
}

impl FlatFields for RawMessage {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "ToUserName" => &mut self.to_user_name,
            "FromUserName" => &mut self.from_user_name,
            "CreateTime" => &mut self.create_time,
            "MsgType" => &mut self.msg_type,
            "MsgId" | "MsgID" => &mut self.msg_id,
            "Content" => &mut self.content,
            "PicUrl" => &mut self.pic_url,
            "MediaId" => &mut self.media_id,
            "Format" => &mut self.format,
            "Recognition" => &mut self.recognition,
            "ThumbMediaId" => &mut self.thumb_media_id,
            "Location_X" => &mut self.location_x,
            "Location_Y" => &mut self.location_y,
            "Scale" => &mut self.scale,
            "Label" => &mut self.label,
            "Title" => &mut self.title,
            "Description" => &mut self.description,
            "Url" => &mut self.url,
            "FileKey" => &mut self.file_key,
            "FileMd5" => &mut self.file_md5,
            "FileTotalLen" => &mut self.file_total_len,
            "Event" => &mut self.event,
            "EventKey" => &mut self.event_key,
            "Ticket" => &mut self.ticket,
            "Latitude" => &mut self.latitude,
            "Longitude" => &mut self.longitude,
            "Precision" => &mut self.precision,
            "MenuId" => &mut self.menu_id,
            "Status" => &mut self.status,
            _ => return None,
        })
    }
}
