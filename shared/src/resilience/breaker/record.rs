//! The breaker item (`breaker#{name}` / `state`): state fields and window buckets in one item.
//!
//! Keeping both in one item lets the outcome write's `ALL_NEW` return the state and the window
//! together, so the trip decision needs no second round trip. Attribute names are persisted and
//! stable. An absent item is a closed breaker at version 0.

use std::str::FromStr;

use super::state::State;
use super::window::{Window, attr_name};
use crate::store::{AttrValue, Attrs, Key, StoreError};

/// `state`: the persisted state name (a DynamoDB reserved word: the store aliases every name).
pub const STATE: &str = "state";
/// `version`: bumped by every transition; transitions are conditional on it. Absent = 0.
pub const VERSION: &str = "version";
/// `open_until`: epoch ms when the open period ends.
pub const OPEN_UNTIL: &str = "open_until";
/// `trips`: consecutive trips since the breaker last closed.
pub const TRIPS: &str = "trips";
/// `probes_left`: half-open permits not yet granted in this round.
pub const PROBES_LEFT: &str = "probes_left";
/// `probe_ok`: successful probes in this round.
pub const PROBE_OK: &str = "probe_ok";
/// `granted_until`: epoch ms when this round's permits expire.
pub const GRANTED_UNTIL: &str = "granted_until";
/// `window_from`: epoch ms before which window buckets are ignored (set on closing).
pub const WINDOW_FROM: &str = "window_from";
/// `owner`: the tag of the last transition's writer (`{instance id}#{n}`), so a writer whose
/// answer was lost can tell later that its transition committed.
pub const OWNER: &str = "owner";

/// The store key of breaker `name`.
pub fn key(name: &str) -> Key {
    Key::new(format!("breaker#{name}"), "state")
}

/// The store key of breaker `name` in `region`: with the table replicated across regions, each
/// region's breakers are its own (each region sees its own path to WeChat), and keys that differ
/// never conflict under the table's last-writer-wins replication.
pub fn regional_key(region: &str, name: &str) -> Key {
    Key::new(format!("breaker#{region}#{name}"), "state")
}

/// A breaker item, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerRecord {
    /// Current state.
    pub state: State,
    /// Transition counter (0 = never transitioned).
    pub version: i64,
    /// End of the open period (epoch ms), meaningful when open.
    pub open_until: i64,
    /// Consecutive trips since the last close.
    pub trips: u32,
    /// Probe permits left in the current half-open round.
    pub probes_left: i64,
    /// Successful probes in the current round.
    pub probe_ok: i64,
    /// Expiry of the current round's permits (epoch ms).
    pub granted_until: i64,
    /// Buckets older than this (epoch ms) are ignored.
    pub window_from: i64,
    /// The window's buckets.
    pub window: Window,
    /// The last transition's writer tag (empty when unknown).
    pub owner: String,
}

impl Default for BreakerRecord {
    fn default() -> Self {
        Self::absent()
    }
}

impl BreakerRecord {
    /// The record of a breaker that was never written: closed, version 0.
    pub fn absent() -> Self {
        Self {
            state: State::Closed,
            version: 0,
            open_until: 0,
            trips: 0,
            probes_left: 0,
            probe_ok: 0,
            granted_until: 0,
            window_from: 0,
            window: Window::default(),
            owner: String::new(),
        }
    }

    /// Decodes an item (`None` = absent).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when `state` holds an unknown name.
    pub fn from_item(item: Option<&Attrs>) -> Result<Self, StoreError> {
        let Some(attrs) = item else { return Ok(Self::absent()) };
        let state = match attrs.str_attr(STATE) {
            None => State::Closed,
            Some(name) => State::from_str(name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        };
        let num = |name| attrs.num_attr(name).unwrap_or(0);
        Ok(Self {
            state,
            version: num(VERSION),
            open_until: num(OPEN_UNTIL),
            trips: u32::try_from(num(TRIPS).max(0)).unwrap_or(u32::MAX),
            probes_left: num(PROBES_LEFT),
            probe_ok: num(PROBE_OK),
            granted_until: num(GRANTED_UNTIL),
            window_from: num(WINDOW_FROM),
            window: Window::from_attrs(attrs),
            owner: attrs.str_attr(OWNER).unwrap_or_default().to_owned(),
        })
    }

    /// Encodes the record as an item (used to seed the local fallback store).
    pub fn to_attrs(&self) -> Attrs {
        let mut attrs = Attrs::new();
        attrs.insert(STATE.into(), AttrValue::from(self.state.as_str()));
        for (name, value) in [
            (VERSION, self.version),
            (OPEN_UNTIL, self.open_until),
            (TRIPS, i64::from(self.trips)),
            (PROBES_LEFT, self.probes_left),
            (PROBE_OK, self.probe_ok),
            (GRANTED_UNTIL, self.granted_until),
            (WINDOW_FROM, self.window_from),
        ] {
            attrs.insert(name.into(), AttrValue::N(value));
        }
        if !self.owner.is_empty() {
            attrs.insert(OWNER.into(), AttrValue::from(self.owner.as_str()));
        }
        for (start, counts) in self.window.buckets() {
            for (prefix, n) in counts.by_prefix() {
                if n != 0 {
                    attrs.insert(attr_name(prefix, *start).into(), AttrValue::N(n));
                }
            }
        }
        attrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::breaker::window::Counts;

    #[test]
    fn absent_item_is_a_closed_breaker_at_version_zero() {
        let record = BreakerRecord::from_item(None).unwrap();
        assert_eq!(record.state, State::Closed);
        assert_eq!(record.version, 0);
    }

    #[test]
    fn record_round_trips_through_attributes() {
        let mut record = BreakerRecord {
            state: State::HalfOpen,
            version: 7,
            open_until: 1_000,
            trips: 3,
            probes_left: 2,
            probe_ok: 1,
            granted_until: 5_000,
            window_from: 900,
            window: Window::default(),
            owner: "a1b2#3".into(),
        };
        record.window.add(2_000, Counts::call(true, false));
        let attrs = record.to_attrs();
        assert_eq!(attrs.str_attr(STATE), Some("half_open"));
        assert_eq!(attrs.num_attr("f_2000"), Some(1));
        assert_eq!(BreakerRecord::from_item(Some(&attrs)).unwrap(), record);
    }

    #[test]
    fn unknown_state_name_is_corrupt_not_silently_closed() {
        let mut attrs = Attrs::new();
        attrs.insert(STATE.into(), AttrValue::from("OPEN"));
        assert!(matches!(
            BreakerRecord::from_item(Some(&attrs)),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn key_is_breaker_name_and_state() {
        assert_eq!(key("wechat-api").to_string(), "breaker#wechat-api/state");
        assert_eq!(
            regional_key("eu-west-1", "wechat.message").to_string(),
            "breaker#eu-west-1#wechat.message/state"
        );
    }
}
