//! Typed `MsgType=event` pushes: subscribe, unsubscribe, SCAN, LOCATION, CLICK, VIEW, TEMPLATESENDJOBFINISH.

use super::raw::RawMessage;

/// Prefix of the scene value in the `EventKey` of a subscribe-by-QR-code event.
pub const QR_SCENE_PREFIX: &str = "qrscene_";

/// An event push (`MsgType=event`). Event names match case-insensitively.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `subscribe`: the user followed; via a parametric QR code, `event_key` is `qrscene_<scene>` with a `ticket`.
    Subscribe {
        /// `EventKey` (`qrscene_…`), absent or empty for a plain follow.
        event_key: Option<String>,
        /// QR code ticket, when followed by scanning one.
        ticket: Option<String>,
    },
    /// `unsubscribe`: the user unfollowed.
    Unsubscribe,
    /// `SCAN`: an already-following user scanned a parametric QR code.
    Scan {
        /// The scene value (no `qrscene_` prefix).
        event_key: String,
        /// QR code ticket.
        ticket: Option<String>,
    },
    /// `LOCATION`: periodic location report.
    Location {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
        /// Precision.
        precision: f64,
    },
    /// `CLICK`: a custom menu click.
    Click {
        /// The menu item's key.
        event_key: String,
    },
    /// `VIEW`: a menu link opened.
    View {
        /// The URL (sent as `EventKey`).
        url: String,
        /// `MenuId`, when present.
        menu_id: Option<String>,
    },
    /// `TEMPLATESENDJOBFINISH`: a template message delivery report.
    TemplateSendJobFinish {
        /// `success`, `failed:user block`, `failed: system failed`, ….
        status: String,
    },
    /// Any other event, or a known one whose fields do not fit; the whole message is kept verbatim.
    Unknown {
        /// The `Event` value as received.
        event: String,
        /// `EventKey`, if any.
        event_key: Option<String>,
        /// The complete message body, verbatim.
        raw: String,
    },
}

impl Event {
    /// Types the event in `raw`; `raw_body` is kept for [`Event::Unknown`].
    pub(super) fn from_raw(event: String, raw: &mut RawMessage, raw_body: &str) -> Self {
        Self::known(&event, raw).unwrap_or_else(|| Self::Unknown {
            event,
            event_key: raw.event_key.take(),
            raw: raw_body.to_owned(),
        })
    }

    fn known(event: &str, raw: &mut RawMessage) -> Option<Self> {
        let is = |name: &str| event.eq_ignore_ascii_case(name);
        Some(if is("subscribe") {
            Self::Subscribe {
                event_key: raw.event_key.take(),
                ticket: raw.ticket.take(),
            }
        } else if is("unsubscribe") {
            Self::Unsubscribe
        } else if is("SCAN") {
            Self::Scan {
                event_key: raw.event_key.take()?,
                ticket: raw.ticket.take(),
            }
        } else if is("LOCATION") {
            Self::Location {
                latitude: parse_f64(raw.latitude.as_deref())?,
                longitude: parse_f64(raw.longitude.as_deref())?,
                precision: parse_f64(raw.precision.as_deref())?,
            }
        } else if is("CLICK") {
            Self::Click {
                event_key: raw.event_key.take()?,
            }
        } else if is("VIEW") {
            Self::View {
                url: raw.event_key.take()?,
                menu_id: raw.menu_id.take(),
            }
        } else if is("TEMPLATESENDJOBFINISH") {
            Self::TemplateSendJobFinish {
                status: raw.status.take()?,
            }
        } else {
            return None;
        })
    }

    /// The event name: canonical spelling for known events, as received for [`Event::Unknown`].
    pub fn name(&self) -> &str {
        match self {
            Self::Subscribe { .. } => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::Scan { .. } => "SCAN",
            Self::Location { .. } => "LOCATION",
            Self::Click { .. } => "CLICK",
            Self::View { .. } => "VIEW",
            Self::TemplateSendJobFinish { .. } => "TEMPLATESENDJOBFINISH",
            Self::Unknown { event, .. } => event,
        }
    }

    /// The `EventKey` as sent (the URL for VIEW), if the event has one.
    pub fn event_key(&self) -> Option<&str> {
        match self {
            Self::Subscribe { event_key, .. } | Self::Unknown { event_key, .. } => event_key.as_deref(),
            Self::Scan { event_key, .. } | Self::Click { event_key } => Some(event_key),
            Self::View { url, .. } => Some(url),
            Self::Unsubscribe | Self::Location { .. } | Self::TemplateSendJobFinish { .. } => None,
        }
    }

    /// The QR scene of a subscribe-by-QR event (`EventKey` without `qrscene_`), or of a SCAN event.
    pub fn qr_scene(&self) -> Option<&str> {
        match self {
            Self::Subscribe {
                event_key: Some(key), ..
            } => key.strip_prefix(QR_SCENE_PREFIX),
            Self::Scan { event_key, .. } => Some(event_key),
            _ => None,
        }
    }
}

pub(super) fn parse_f64(text: Option<&str>) -> Option<f64> {
    text?.trim().parse().ok()
}
