//! Where a web login may send the browser back to: a path on this API, or an `https` URL on an
//! allowed host (`AUTH_RETURN_HOSTS`). Anything else is refused before the login starts, so
//! `/oauth/authorize` is never an open redirect.

/// The allow-list of return hosts: exact names (`shop.example.com`, with an optional
/// `:port`) or one-level-or-more wildcards (`*.example.com`, which does not match
/// `example.com` itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnHosts(Vec<String>);

/// Why a return target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnError {
    /// Not a path and not an absolute http(s) URL, or too long, or with control characters.
    #[error("return_to must be a path on this site or an https URL on an allowed host")]
    Malformed,
    /// A well-formed URL whose host is not on the list.
    #[error("return_to's host is not allowed")]
    HostNotAllowed,
}

/// The longest accepted target.
const MAX_LEN: usize = 2048;

impl ReturnHosts {
    /// The list from its comma-separated form (lower-cased, blanks dropped).
    pub fn parse(list: &str) -> Self {
        Self(
            list.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    /// Whether `host` (with `:port` when not the default) is allowed.
    fn allows(&self, host: &str) -> bool {
        self.0.iter().any(|allowed| match allowed.strip_prefix("*.") {
            Some(parent) => host
                .strip_suffix(parent)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => allowed == host,
        })
    }

    /// Whether a browser `Origin` (`https://shop.example.com`) belongs to an allowed host (CORS
    /// for `/me` and `/logout`).
    pub fn allows_origin(&self, origin: &str) -> bool {
        reqwest::Url::parse(origin)
            .ok()
            .filter(|url| matches!(url.scheme(), "https" | "http"))
            .and_then(|url| host_of(&url))
            .is_some_and(|host| self.allows(&host))
    }

    /// `raw` as a target to redirect to, when it is one.
    ///
    /// # Errors
    /// [`ReturnError`] for anything but a plain path (`/x`, not `//x` or `/\x`) or an `https`
    /// URL (plain `http` only for `localhost` and `127.0.0.1`) on an allowed host.
    pub fn check(&self, raw: &str) -> Result<String, ReturnError> {
        if raw.is_empty() || raw.len() > MAX_LEN || raw.chars().any(|c| c.is_control() || c == '\\') {
            return Err(ReturnError::Malformed);
        }
        if raw.starts_with('/') {
            // `//host` is scheme-relative: another site.
            return if raw.starts_with("//") {
                Err(ReturnError::Malformed)
            } else {
                Ok(raw.to_owned())
            };
        }
        let url = reqwest::Url::parse(raw).map_err(|_| ReturnError::Malformed)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ReturnError::Malformed);
        }
        let host = host_of(&url).ok_or(ReturnError::Malformed)?;
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            _ => return Err(ReturnError::Malformed),
        }
        if self.allows(&host) {
            Ok(url.to_string())
        } else {
            Err(ReturnError::HostNotAllowed)
        }
    }
}

/// `host` or `host:port` (port only when explicit and not the scheme's default), lower case.
fn host_of(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> ReturnHosts {
        ReturnHosts::parse("shop.example.com, *.example.org ,localhost:3000")
    }

    #[test]
    fn paths_and_allowed_https_hosts_pass() {
        let hosts = hosts();
        assert_eq!(hosts.check("/welcome?x=1").unwrap(), "/welcome?x=1");
        assert_eq!(
            hosts.check("https://shop.example.com/cart").unwrap(),
            "https://shop.example.com/cart"
        );
        assert!(hosts.check("https://a.b.example.org/").is_ok());
        assert!(hosts.check("http://localhost:3000/me").is_ok());
    }

    #[test]
    fn open_redirects_are_refused() {
        let hosts = hosts();
        let refused = [
            ("https://evil.example.net/", ReturnError::HostNotAllowed),
            ("https://shop.example.com.evil.net/", ReturnError::HostNotAllowed),
            ("https://example.org/", ReturnError::HostNotAllowed),
            ("https://shop.example.com:8443/", ReturnError::HostNotAllowed),
            ("https://shop.example.com@evil.net/", ReturnError::Malformed),
            ("//evil.net/x", ReturnError::Malformed),
            ("/\\evil.net", ReturnError::Malformed),
            ("http://shop.example.com/", ReturnError::Malformed),
            ("javascript:alert(1)", ReturnError::Malformed),
            ("https://shop.example.com/\r\nSet-Cookie:x", ReturnError::Malformed),
            ("", ReturnError::Malformed),
        ];
        for (raw, why) in refused {
            assert_eq!(hosts.check(raw), Err(why), "{raw:?}");
        }
        assert_eq!(
            ReturnHosts::default().check("https://shop.example.com/"),
            Err(ReturnError::HostNotAllowed),
            "an empty list allows only paths"
        );
    }

    #[test]
    fn origins_are_matched_against_the_same_list() {
        let hosts = hosts();
        assert!(hosts.allows_origin("https://shop.example.com"));
        assert!(!hosts.allows_origin("https://evil.example.net"));
        assert!(!hosts.allows_origin("null"));
    }
}
