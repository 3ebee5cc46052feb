//! The two cookies of the web login: the session (`__Host-wxha_session`) and the browser's
//! login binding (`__Host-wxha_login`, which ties an OAuth `state` to the browser that asked
//! for it). Both `HttpOnly; Secure; SameSite=Lax`: scripts cannot read them, they travel only
//! over HTTPS, and a cross-site POST or sub-request carries neither — while WeChat's redirect
//! back to `/oauth/callback` (a top-level GET navigation) carries the binding.
//!
//! `__Host-` names require `Path=/` and no `Domain`; with `AUTH_COOKIE_DOMAIN` (a session shared
//! with sibling hosts) the session cookie becomes `__Secure-wxha_session` with that domain.

use std::time::Duration;

/// The session cookie's name without a domain.
pub const SESSION_COOKIE: &str = "__Host-wxha_session";
/// The session cookie's name with a domain.
pub const SESSION_COOKIE_WITH_DOMAIN: &str = "__Secure-wxha_session";
/// The login-binding cookie's name.
pub const LOGIN_COOKIE: &str = "__Host-wxha_login";

/// How the session cookie is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookiePolicy {
    /// `AUTH_COOKIE_DOMAIN`: share the session with sibling hosts (none: this host only).
    pub domain: Option<String>,
}

impl CookiePolicy {
    /// The session cookie's name under this policy.
    pub fn session_name(&self) -> &'static str {
        if self.domain.is_some() {
            SESSION_COOKIE_WITH_DOMAIN
        } else {
            SESSION_COOKIE
        }
    }

    /// `Set-Cookie` for a session `value` living `max_age`.
    pub fn set_session(&self, value: &str, max_age: Duration) -> String {
        let domain = self
            .domain
            .as_ref()
            .map(|d| format!("; Domain={d}"))
            .unwrap_or_default();
        format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax{domain}",
            self.session_name(),
            max_age.as_secs()
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_session(&self) -> String {
        self.set_session("", Duration::ZERO)
    }
}

/// `Set-Cookie` for the login binding (`value` lives `max_age`).
pub fn set_login_binding(value: &str, max_age: Duration) -> String {
    format!(
        "{LOGIN_COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
        max_age.as_secs()
    )
}

/// The value of cookie `name` in the request's `Cookie` headers (API Gateway joins the browser's
/// cookies into one), if present and non-empty.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_host_only_http_only_secure_and_lax() {
        let policy = CookiePolicy::default();
        assert_eq!(
            policy.set_session("wxs_x", Duration::from_secs(60)),
            "__Host-wxha_session=wxs_x; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
        );
        assert!(policy.clear_session().contains("Max-Age=0"));
        let shared = CookiePolicy {
            domain: Some("example.com".into()),
        };
        assert!(
            shared
                .set_session("v", Duration::from_secs(1))
                .starts_with("__Secure-wxha_session=v;")
        );
        assert!(
            shared
                .set_session("v", Duration::from_secs(1))
                .ends_with("; Domain=example.com")
        );
        assert!(set_login_binding("n", Duration::from_secs(600)).contains("HttpOnly; Secure; SameSite=Lax"));
    }

    #[test]
    fn a_cookie_is_found_among_others_and_across_headers() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; __Host-wxha_login=abc".parse().unwrap());
        headers.append(http::header::COOKIE, "__Host-wxha_session=wxs_1".parse().unwrap());
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("wxs_1"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
