//! The WeChat client's error: transport, HTTP, WeChat errcode, breaker, quota and deadline failures.

use super::errcode::{DAILY_QUOTA, Errcode};
use crate::error_chain::error_chain;

/// Why a WeChat call failed. Messages never contain a token, a secret or a URL with a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WechatError {
    /// No connection could be made (refused, DNS, TLS handshake): the request was not sent.
    #[error("cannot connect to {domain}: {message}")]
    Connect {
        /// The base URL tried.
        domain: String,
        /// The transport's description (URL stripped).
        message: String,
    },
    /// The connection broke after the request may have been sent (reset, closed without answer).
    #[error("network error on {domain}: {message}")]
    Network {
        /// The base URL tried.
        domain: String,
        /// The transport's description (URL stripped).
        message: String,
    },
    /// No answer within the attempt's timeout.
    #[error("timed out waiting for {domain}")]
    Timeout {
        /// The base URL tried.
        domain: String,
    },
    /// A non-2xx HTTP status.
    #[error("HTTP {status} from {domain}")]
    Http {
        /// The base URL tried.
        domain: String,
        /// The status code.
        status: u16,
    },
    /// WeChat answered with a non-zero errcode.
    #[error(transparent)]
    Api(#[from] Errcode),
    /// The answer was not the JSON we expect.
    #[error("undecodable answer from {domain}: {message}")]
    Decode {
        /// The base URL tried.
        domain: String,
        /// What did not parse.
        message: String,
    },
    /// A circuit breaker refused the call (every domain open, or the API's breaker open).
    #[error("circuit open: {0}")]
    CircuitOpen(String),
    /// The daily token quota is spent (45009); nothing is tried again before `until_ms`.
    #[error("daily quota exhausted until {until_ms} (epoch ms)")]
    QuotaExhausted {
        /// Next daily reset (midnight Beijing time), epoch ms.
        until_ms: i64,
    },
    /// The caller's deadline passed (or leaves no room for another attempt).
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A call that may have been processed (see [`WechatError::may_have_been_processed`]) failed
    /// on one domain and, not being idempotent, was not repeated on another.
    #[error("{cause} (not repeated on another domain: it may have been processed)")]
    InDoubt {
        /// The domain's failure.
        cause: Box<WechatError>,
        /// Whether other domains were left untried (the failure is that domain's alone).
        others_untried: bool,
    },
    /// A forced token refresh was refused by the fleet-wide limit (20/day, 30 s apart).
    #[error("forced token refresh refused: {0}")]
    ForceRefreshLimited(String),
}

impl WechatError {
    /// The WeChat errcode, when WeChat answered with one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::Api(api) => Some(api.errcode),
            Self::QuotaExhausted { .. } => Some(DAILY_QUOTA),
            _ => None,
        }
    }

    /// Whether WeChat certainly did not process the request (safe to send again or elsewhere,
    /// even a non-idempotent message): no connection, a breaker refusal, HTTP 502 / 503 from the
    /// access layer (no backend took it) or 429 (throttled).
    pub fn is_not_processed(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::CircuitOpen(_)
                | Self::Http {
                    status: 502 | 503 | 429,
                    ..
                }
        )
    }

    /// Whether WeChat may have processed a request that failed: a timeout, a broken connection, an
    /// HTTP 5xx other than 502 / 503, an undecodable answer — or a call already found in doubt.
    /// A message that met one of these is not sent again automatically (it may be a duplicate).
    pub fn may_have_been_processed(&self) -> bool {
        match self {
            Self::InDoubt { .. } | Self::Network { .. } | Self::Timeout { .. } | Self::Decode { .. } => true,
            Self::Http { status, .. } => (*status >= 500 && !matches!(status, 502 | 503)) || *status == 408,
            _ => false,
        }
    }

    /// Whether the domain itself looks unhealthy (counts against the domain's breaker):
    /// connection failures, broken connections, timeouts and HTTP 5xx.
    pub fn is_domain_failure(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Network { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether the access token must be refreshed (40001 / 40014 / 42001).
    pub fn is_token_invalid(&self) -> bool {
        matches!(self, Self::Api(api) if api.is_token_invalid())
    }

    /// A transport error from reqwest, with its URL (which may hold a token) removed.
    pub(crate) fn from_reqwest(domain: &str, err: reqwest::Error) -> Self {
        let domain = domain.to_owned();
        let is_connect = err.is_connect();
        let is_timeout = err.is_timeout();
        let message = error_chain(&err.without_url());
        // A connect timeout is both: it must stay `Connect` (nothing was sent, fail over at once).
        if is_connect {
            Self::Connect { domain, message }
        } else if is_timeout {
            Self::Timeout { domain }
        } else {
            Self::Network { domain, message }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(errcode: i64) -> WechatError {
        WechatError::Api(Errcode {
            errcode,
            errmsg: String::new(),
        })
    }

    #[test]
    fn errcodes_are_domain_successes_and_5xx_are_domain_failures() {
        assert!(!api(-1).is_domain_failure());
        assert!(
            WechatError::Http {
                domain: "a".into(),
                status: 502
            }
            .is_domain_failure()
        );
        assert!(
            !WechatError::Http {
                domain: "a".into(),
                status: 404
            }
            .is_domain_failure()
        );
        assert!(api(42001).is_token_invalid());
        assert_eq!(api(40001).errcode(), Some(40001));
    }
}
