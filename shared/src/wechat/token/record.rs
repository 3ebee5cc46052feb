//! The fleet-wide token item: `token#{appid}` / `access_token` | `jsapi_ticket`, and its codec.
//!
//! Attributes: `value`, `expires_at_ms` (the real expiry WeChat gave), `fetched_at_ms`, `version`
//! (bumped by every publish and invalidation), `lease_owner` / `lease_until` (the refresh lease).

use crate::secret::Secret;
use crate::store::{Attrs, Key};

pub(crate) const VALUE: &str = "value";
pub(crate) const EXPIRES_AT_MS: &str = "expires_at_ms";
pub(crate) const FETCHED_AT_MS: &str = "fetched_at_ms";
pub(crate) const VERSION: &str = "version";
pub(crate) const LEASE_OWNER: &str = "lease_owner";
pub(crate) const LEASE_UNTIL: &str = "lease_until";

/// Which credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The API access token.
    AccessToken,
    /// The JS-SDK ticket (fetched with an access token).
    JsapiTicket,
}

impl TokenKind {
    /// The stable sort key of the item (persisted: never change).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::JsapiTicket => "jsapi_ticket",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::AccessToken => 0,
            Self::JsapiTicket => 1,
        }
    }
}

/// The partition key of an account's token items.
pub(crate) fn partition(appid: &str) -> String {
    format!("token#{appid}")
}

/// The item key of one credential.
pub(crate) fn key(appid: &str, kind: TokenKind) -> Key {
    Key::new(partition(appid), kind.as_str())
}

/// A credential value with its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub value: Secret,
    pub expires_at_ms: i64,
    pub fetched_at_ms: i64,
}

/// When a token counts as fresh, i.e. nobody needs to refresh it yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Freshness {
    /// Refresh once fewer than this many ms remain.
    pub margin_ms: i64,
    /// But never refresh a token fetched less than this long ago (stops a storm when WeChat
    /// hands back a token that is already inside the margin).
    pub min_age_ms: i64,
}

impl Token {
    /// Still accepted by WeChat (before its real expiry).
    pub fn is_usable(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms
    }

    /// Usable and not yet due for a refresh.
    pub fn is_fresh(&self, now_ms: i64, f: Freshness) -> bool {
        self.is_usable(now_ms)
            && (now_ms < self.expires_at_ms - f.margin_ms || now_ms < self.fetched_at_ms + f.min_age_ms)
    }
}

/// The stored item, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Record {
    pub token: Option<Token>,
    pub version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
}

impl Record {
    pub fn from_attrs(attrs: &Attrs) -> Self {
        let token = attrs.str_attr(VALUE).filter(|v| !v.is_empty()).map(|value| Token {
            value: Secret::new(value),
            expires_at_ms: attrs.num_attr(EXPIRES_AT_MS).unwrap_or(0),
            fetched_at_ms: attrs.num_attr(FETCHED_AT_MS).unwrap_or(0),
        });
        Self {
            token,
            version: attrs.num_attr(VERSION).unwrap_or(0),
            lease_owner: attrs.str_attr(LEASE_OWNER).map(str::to_owned),
            lease_until: attrs.num_attr(LEASE_UNTIL).unwrap_or(0),
        }
    }

    pub fn from_item(item: Option<&Attrs>) -> Self {
        item.map(Self::from_attrs).unwrap_or_default()
    }

    /// The token, if fresh.
    pub fn fresh(&self, now_ms: i64, f: Freshness) -> Option<&Token> {
        self.token.as_ref().filter(|t| t.is_fresh(now_ms, f))
    }

    /// The token, if usable.
    pub fn usable(&self, now_ms: i64) -> Option<&Token> {
        self.token.as_ref().filter(|t| t.is_usable(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttrValue;

    const F: Freshness = Freshness {
        margin_ms: 300_000,
        min_age_ms: 60_000,
    };

    #[test]
    fn token_is_fresh_until_the_margin_then_usable_until_real_expiry() {
        let t = Token {
            value: Secret::new("v"),
            expires_at_ms: 7_200_000,
            fetched_at_ms: 0,
        };
        assert!(t.is_fresh(6_899_999, F));
        assert!(!t.is_fresh(6_900_000, F));
        assert!(t.is_usable(7_199_999));
        assert!(!t.is_usable(7_200_000));
    }

    #[test]
    fn a_token_fetched_inside_the_margin_is_fresh_for_the_minimum_age() {
        let t = Token {
            value: Secret::new("v"),
            expires_at_ms: 200_000,
            fetched_at_ms: 0,
        };
        assert!(t.is_fresh(59_999, F));
        assert!(!t.is_fresh(60_000, F));
    }

    #[test]
    fn record_decodes_attributes_and_treats_empty_value_as_none() {
        let mut attrs = Attrs::new();
        attrs.insert(VALUE.into(), AttrValue::S("tok".into()));
        attrs.insert(EXPIRES_AT_MS.into(), AttrValue::N(10));
        attrs.insert(VERSION.into(), AttrValue::N(3));
        attrs.insert(LEASE_OWNER.into(), AttrValue::S("me".into()));
        let record = Record::from_attrs(&attrs);
        assert_eq!(record.token.as_ref().map(|t| t.value.expose()), Some("tok"));
        assert_eq!((record.version, record.lease_owner.as_deref()), (3, Some("me")));
        attrs.insert(VALUE.into(), AttrValue::from(String::new()));
        assert_eq!(Record::from_attrs(&attrs).token, None);
        assert_eq!(
            key("wx1", TokenKind::JsapiTicket),
            Key::new("token#wx1", "jsapi_ticket")
        );
    }
}
