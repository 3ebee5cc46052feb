//! The flat wire shape of every inbound message: all fields of all types, optional, decoded in one pass.
//!
//! Typing happens afterwards (`super::kind_of`), so an unknown `MsgType` or `Event` never fails
//! deserialization. Every field is text: XML text as is, JSON scalars stringified by `decode`.

use serde::Deserialize;

/// Every field a supported message or event may carry (unknown fields are ignored).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawMessage {
    #[serde(rename = "ToUserName")]
    pub to_user_name: Option<String>,
    #[serde(rename = "FromUserName")]
    pub from_user_name: Option<String>,
    #[serde(rename = "CreateTime")]
    pub create_time: Option<String>,
    #[serde(rename = "MsgType")]
    pub msg_type: Option<String>,
    /// `MsgID` is the spelling of TEMPLATESENDJOBFINISH / MASSSENDJOBFINISH events.
    #[serde(rename = "MsgId", alias = "MsgID")]
    pub msg_id: Option<String>,

    #[serde(rename = "Content")]
    pub content: Option<String>,
    #[serde(rename = "PicUrl")]
    pub pic_url: Option<String>,
    #[serde(rename = "MediaId")]
    pub media_id: Option<String>,
    #[serde(rename = "Format")]
    pub format: Option<String>,
    #[serde(rename = "Recognition")]
    pub recognition: Option<String>,
    #[serde(rename = "ThumbMediaId")]
    pub thumb_media_id: Option<String>,
    #[serde(rename = "Location_X")]
    pub location_x: Option<String>,
    #[serde(rename = "Location_Y")]
    pub location_y: Option<String>,
    #[serde(rename = "Scale")]
    pub scale: Option<String>,
    #[serde(rename = "Label")]
    pub label: Option<String>,
    #[serde(rename = "Title")]
    pub title: Option<String>,
    #[serde(rename = "Description")]
    pub description: Option<String>,
    #[serde(rename = "Url")]
    pub url: Option<String>,
    #[serde(rename = "FileKey")]
    pub file_key: Option<String>,
    #[serde(rename = "FileMd5")]
    pub file_md5: Option<String>,
    #[serde(rename = "FileTotalLen")]
    pub file_total_len: Option<String>,

    #[serde(rename = "Event")]
    pub event: Option<String>,
    #[serde(rename = "EventKey")]
    pub event_key: Option<String>,
    #[serde(rename = "Ticket")]
    pub ticket: Option<String>,
    #[serde(rename = "Latitude")]
    pub latitude: Option<String>,
    #[serde(rename = "Longitude")]
    pub longitude: Option<String>,
    #[serde(rename = "Precision")]
    pub precision: Option<String>,
    #[serde(rename = "MenuId")]
    pub menu_id: Option<String>,
    #[serde(rename = "Status")]
    pub status: Option<String>,
}
