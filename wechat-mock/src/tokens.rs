//! Token issuance and validation: classic and stable access tokens and jsapi tickets, per account.
//!
//! Pure state transitions over `now_ms`; the HTTP layer only parses requests and renders answers.

use serde::Serialize;

use crate::config::{MockConfig, beijing_day};

/// A WeChat error answer (`errcode` ≠ 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WxError {
    /// WeChat's error code.
    pub errcode: i64,
    /// WeChat's message.
    pub errmsg: String,
}

impl WxError {
    pub(crate) fn new(errcode: i64, errmsg: &str) -> Self {
        Self {
            errcode,
            errmsg: format!("{errmsg} rid: mock-{errcode}"),
        }
    }
    pub(crate) fn invalid_token() -> Self {
        Self::new(40001, "invalid credential, access_token is invalid or not latest")
    }
}

/// One issued token or ticket.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub value: String,
    pub expires_ms: i64,
    /// Set when replaced: valid until then (grace), then "not latest".
    pub retired_until: Option<i64>,
}

impl Issued {
    fn is_current(&self) -> bool {
        self.retired_until.is_none()
    }
    pub(crate) fn expires_in(&self, now_ms: i64) -> i64 {
        (self.expires_ms - now_ms).max(0).div_euclid(1000)
    }
}

/// Per-account token state.
#[derive(Debug, Default)]
pub(crate) struct AppTokens {
    pub secret: String,
    classic: Vec<Issued>,
    stable: Vec<Issued>,
    tickets: Vec<Issued>,
    /// (Beijing day, forced refreshes that day, last forced refresh ms).
    forced: (i64, u32, Option<i64>),
    /// (Beijing day, classic calls that day).
    classic_calls: (i64, u32),
}

const KEEP: usize = 16;

fn retire_all(list: &mut [Issued], until_ms: i64) {
    for t in list.iter_mut().filter(|t| t.is_current()) {
        t.retired_until = Some(until_ms);
    }
}

fn push(list: &mut Vec<Issued>, issued: Issued) {
    list.push(issued);
    if list.len() > KEEP {
        list.remove(0);
    }
}

impl AppTokens {
    pub(crate) fn new(secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            ..Self::default()
        }
    }

    /// `GET /cgi-bin/token`: a new token every call; the previous one lives on for the grace period.
    pub(crate) fn classic(&mut self, cfg: &MockConfig, value: String, now_ms: i64) -> Result<Issued, WxError> {
        let day = beijing_day(now_ms);
        if self.classic_calls.0 != day {
            self.classic_calls = (day, 0);
        }
        if self.classic_calls.1 >= cfg.classic_daily_quota {
            return Err(WxError::new(45009, "reach max api daily quota limit"));
        }
        self.classic_calls.1 += 1;
        retire_all(&mut self.classic, now_ms + cfg.classic_grace_ms);
        let issued = Issued {
            value,
            expires_ms: now_ms + cfg.token_ttl_secs * 1000,
            retired_until: None,
        };
        push(&mut self.classic, issued.clone());
        Ok(issued)
    }

    /// `POST /cgi-bin/stable_token`: the same token while it has more than the rotation margin
    /// left; `force` rotates at once (limited per day and spaced).
    pub(crate) fn stable(
        &mut self,
        cfg: &MockConfig,
        force: bool,
        value: String,
        now_ms: i64,
    ) -> Result<Issued, WxError> {
        if force {
            let day = beijing_day(now_ms);
            if self.forced.0 != day {
                self.forced = (day, 0, self.forced.2);
            }
            if self.forced.1 >= cfg.force_refresh_per_day {
                return Err(WxError::new(45009, "reach max api daily quota limit"));
            }
            if self
                .forced
                .2
                .is_some_and(|last| now_ms - last < cfg.force_refresh_spacing_ms)
            {
                return Err(WxError::new(
                    45011,
                    "api minute-quota reach limit  mustslower  retry next minute",
                ));
            }
            self.forced = (day, self.forced.1 + 1, Some(now_ms));
            retire_all(&mut self.stable, now_ms);
        } else if let Some(current) = self.stable.iter().rev().find(|t| t.is_current())
            && current.expires_ms - now_ms > cfg.stable_rotate_before_ms
        {
            return Ok(current.clone());
        } else {
            // Rotation: the old token stays valid until its own expiry (new and old overlap).
            for t in self.stable.iter_mut().filter(|t| t.is_current()) {
                t.retired_until = Some(t.expires_ms);
            }
        }
        let issued = Issued {
            value,
            expires_ms: now_ms + cfg.token_ttl_secs * 1000,
            retired_until: None,
        };
        push(&mut self.stable, issued.clone());
        Ok(issued)
    }

    /// `GET /cgi-bin/ticket/getticket`: the current ticket while valid, else a new one.
    pub(crate) fn ticket(&mut self, cfg: &MockConfig, value: String, now_ms: i64) -> Issued {
        if let Some(current) = self.tickets.iter().rev().find(|t| t.is_current())
            && current.expires_ms > now_ms
        {
            return current.clone();
        }
        retire_all(&mut self.tickets, now_ms);
        let issued = Issued {
            value,
            expires_ms: now_ms + cfg.token_ttl_secs * 1000,
            retired_until: None,
        };
        push(&mut self.tickets, issued.clone());
        issued
    }

    /// Invalidates every current access token and ticket of the account immediately.
    pub(crate) fn invalidate(&mut self, now_ms: i64) {
        retire_all(&mut self.classic, now_ms);
        retire_all(&mut self.stable, now_ms);
        retire_all(&mut self.tickets, now_ms);
    }

    /// The newest current access token (stable first), for tests.
    pub(crate) fn current(&self) -> Option<&Issued> {
        self.stable
            .iter()
            .rev()
            .find(|t| t.is_current())
            .or_else(|| self.classic.iter().rev().find(|t| t.is_current()))
    }

    /// Checks an `access_token` query value against this account's tokens.
    /// `None` when the value was never issued by this account.
    pub(crate) fn check(&self, value: &str, now_ms: i64) -> Option<Result<(), WxError>> {
        let token = self
            .classic
            .iter()
            .chain(self.stable.iter())
            .find(|t| t.value == value)?;
        Some(if now_ms >= token.expires_ms {
            Err(WxError::new(42001, "access_token expired"))
        } else if token.retired_until.is_some_and(|until| now_ms >= until) {
            Err(WxError::invalid_token())
        } else {
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MockConfig {
        MockConfig {
            classic_grace_ms: 1_000,
            ..MockConfig::default()
        }
    }

    #[test]
    fn classic_call_replaces_previous_token_after_grace() {
        let cfg = cfg();
        let mut app = AppTokens::new("s");
        let first = app.classic(&cfg, "t1".into(), 0).expect("issued");
        app.classic(&cfg, "t2".into(), 10).expect("issued");
        assert_eq!(app.check(&first.value, 500), Some(Ok(())));
        assert_eq!(
            app.check(&first.value, 1_010).map(|r| r.map_err(|e| e.errcode)),
            Some(Err(40001))
        );
        assert_eq!(
            app.check("t2", 7_200_000 + 10).map(|r| r.map_err(|e| e.errcode)),
            Some(Err(42001))
        );
        assert_eq!(app.check("never", 0), None);
    }

    #[test]
    fn stable_normal_call_returns_same_token_until_rotation_margin() {
        let cfg = cfg();
        let mut app = AppTokens::new("s");
        let a = app.stable(&cfg, false, "a".into(), 0).expect("issued");
        let again = app.stable(&cfg, false, "b".into(), 1_000).expect("issued");
        assert_eq!(again.value, a.value);
        let rotated = app
            .stable(&cfg, false, "c".into(), 7_200_000 - 299_000)
            .expect("issued");
        assert_eq!(rotated.value, "c");
        assert_eq!(
            app.check("a", 7_200_000 - 1),
            Some(Ok(())),
            "old token overlaps until its expiry"
        );
    }

    #[test]
    fn forced_refresh_is_spaced_and_limited_per_day() {
        let cfg = MockConfig {
            force_refresh_per_day: 2,
            ..cfg()
        };
        let mut app = AppTokens::new("s");
        app.stable(&cfg, true, "a".into(), 0).expect("first forced");
        let too_soon = app.stable(&cfg, true, "b".into(), 10_000).map(|t| t.value);
        assert_eq!(too_soon.map_err(|e| e.errcode), Err(45011));
        app.stable(&cfg, true, "c".into(), 40_000).expect("second forced");
        assert_eq!(
            app.check("a", 40_001).map(|r| r.map_err(|e| e.errcode)),
            Some(Err(40001))
        );
        let over = app.stable(&cfg, true, "d".into(), 80_000).map(|t| t.value);
        assert_eq!(over.map_err(|e| e.errcode), Err(45009));
    }
}
