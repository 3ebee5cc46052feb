//! Query parameters: the parsed map when the request carries one, else the URI's query read in place.
//!
//! On Lambda, lambda_http builds the map from the event and the URI from the same parameters, so
//! the map is there whenever the request has a query. The local server builds it only for a query
//! that needs percent-decoding (`%` or `+`): a plain query — WeChat's callback query is hex digits,
//! digits and `aes` — is its own decoding and is read from the URI without a map per request.

use lambda_http::RequestExt;

/// The first value of query parameter `name`.
pub fn query_param<'a>(req: &'a lambda_http::Request, name: &str) -> Option<&'a str> {
    match req.query_string_parameters_ref() {
        Some(params) => params.first(name),
        None => plain_uri_pairs(req)
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value),
    }
}

/// Every `(name, value)` pair of the query, borrowed: the parsed map's when the request has one
/// (a name's values in order), else the URI's plain pairs in order. For reading several
/// parameters in one pass (the callback's [`crate::protocol::CallbackQuery::from_pairs`]).
pub fn query_pairs(req: &lambda_http::Request) -> impl Iterator<Item = (&str, &str)> {
    let map = req.query_string_parameters_ref();
    let from_uri = map.is_none().then(|| plain_uri_pairs(req));
    map.into_iter()
        .flat_map(|params| params.iter())
        .chain(from_uri.into_iter().flatten())
}

/// The URI query's `name=value` pairs that need no decoding, borrowed, in order. A request without
/// a parsed map has no pair that needs decoding (see the module note); one that did would be
/// skipped here rather than read undecoded.
fn plain_uri_pairs(req: &lambda_http::Request) -> PlainPairs<'_> {
    let query = req.uri().query().unwrap_or_default();
    PlainPairs {
        rest: query,
        encoded: needs_decoding(query),
    }
}

/// The pairs of a query, found with SIMD byte searches (`memchr`): WeChat's query has none that
/// needs decoding, so one search over the whole query spares every pair its own check (a chain of
/// `split` / `split_once` / `any` was a tenth of a GET verify's instructions).
struct PlainPairs<'a> {
    rest: &'a str,
    /// Whether some pair holds `%` or `+` (then each pair is checked).
    encoded: bool,
}

impl<'a> Iterator for PlainPairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            // `&` and `=` are ASCII: every index found is a char boundary.
            let end = memchr::memchr(b'&', self.rest.as_bytes()).unwrap_or(self.rest.len());
            let pair = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            if pair.is_empty() || (self.encoded && needs_decoding(pair)) {
                continue;
            }
            return Some(match memchr::memchr(b'=', pair.as_bytes()) {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, ""),
            });
        }
        None
    }
}

/// Whether a query (or part of one) holds anything form-decoding would change.
pub fn needs_decoding(query: &str) -> bool {
    memchr::memchr2(b'%', b'+', query.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;
    use std::collections::HashMap;

    fn with_uri(uri: &str) -> lambda_http::Request {
        http::Request::builder().uri(uri).body(Body::Empty).unwrap()
    }

    #[test]
    fn the_parsed_map_is_read_first() {
        let req = with_uri("/wechat?nonce=1")
            .with_query_string_parameters(HashMap::from([("nonce".to_owned(), "42".to_owned())]));
        assert_eq!(query_param(&req, "nonce"), Some("42"));
        assert_eq!(query_param(&req, "missing"), None);
        assert_eq!(query_pairs(&req).collect::<Vec<_>>(), [("nonce", "42")]);
    }

    #[test]
    fn without_a_map_the_uri_query_is_read_in_place() {
        let req = with_uri("/wechat?signature=ab12&timestamp=1700000000&nonce=7&nonce=8&flag&empty=");
        assert_eq!(query_param(&req, "signature"), Some("ab12"));
        assert_eq!(
            query_param(&req, "nonce"),
            Some("7"),
            "the first value wins, as with the map"
        );
        assert_eq!(query_param(&req, "flag"), Some(""));
        assert_eq!(query_param(&req, "empty"), Some(""));
        assert_eq!(query_param(&req, "missing"), None);
        let names: Vec<&str> = query_pairs(&req).map(|(name, _)| name).collect();
        assert_eq!(names, ["signature", "timestamp", "nonce", "nonce", "flag", "empty"]);
    }

    #[test]
    fn an_encoded_pair_is_never_read_undecoded() {
        let req = with_uri("/wechat?echostr=a%2Bb&nonce=1+2&timestamp=5");
        assert_eq!(query_param(&req, "echostr"), None);
        assert_eq!(query_param(&req, "nonce"), None);
        assert_eq!(query_param(&req, "timestamp"), Some("5"));
        assert_eq!(query_pairs(&req).collect::<Vec<_>>(), [("timestamp", "5")]);
        assert!(needs_decoding("a%2Bb") && needs_decoding("1+2") && !needs_decoding("abc=1&d=2"));
    }

    proptest::proptest! {
        #[test]
        fn the_one_pass_reader_reads_what_split_reads(query in "[a-z0-9é=&%+]{0,40}") {
            let reference: Vec<(&str, &str)> = query
                .split('&')
                .filter(|pair| !pair.is_empty() && !needs_decoding(pair))
                .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                .collect();
            let read: Vec<(&str, &str)> = PlainPairs { rest: &query, encoded: needs_decoding(&query) }.collect();
            proptest::prop_assert_eq!(read, reference);
        }
    }
}
