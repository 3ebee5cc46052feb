//! SHA-1 signatures of the WeChat callback protocol: URL `signature`, `msg_signature`, JS-SDK signature.
//!
//! WeChat signs by sorting the parts lexicographically (byte order), concatenating them without a separator and
//! taking the lowercase hex SHA-1. The parts are hashed one after the other, so no joined string is allocated;
//! verification compares the hex digests in constant time (`subtle`), so a forger learns nothing from timing.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Length of a hex-encoded SHA-1 digest.
const HEX_LEN: usize = 40;

/// Lowercase hex SHA-1 of the parts sorted lexicographically and concatenated (WeChat's signature formula).
pub fn sha1_hex_sorted(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    hex_string(sha1_hex_of(sorted.iter().copied()))
}

/// URL `signature` = sha1_hex(sort(token, timestamp, nonce)): GET verification and plain-mode POSTs.
pub fn url_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    hex_string(sorted_digest([token, timestamp, nonce]))
}

/// `msg_signature` = sha1_hex(sort(token, timestamp, nonce, encrypt)): safe/compatible-mode bodies and replies.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    hex_string(sorted_digest([token, timestamp, nonce, encrypt]))
}

/// Whether `signature` is the URL signature of (token, timestamp, nonce); constant-time comparison.
pub fn verify_url_signature(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    ct_eq_hex(&sorted_digest([token, timestamp, nonce]), signature)
}

/// Whether `signature` is the msg_signature of (token, timestamp, nonce, encrypt); constant-time comparison.
pub fn verify_msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str, signature: &str) -> bool {
    ct_eq_hex(&sorted_digest([token, timestamp, nonce, encrypt]), signature)
}

/// JS-SDK `signature` = sha1_hex("jsapi_ticket=..&noncestr=..&timestamp=..&url=..").
///
/// The keys are already in ASCII order; `url` is used without its `#fragment`, as the JS-SDK doc requires.
pub fn jssdk_signature(jsapi_ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let parts = [
        "jsapi_ticket=",
        jsapi_ticket,
        "&noncestr=",
        noncestr,
        "&timestamp=",
        timestamp,
        "&url=",
        url,
    ];
    hex_string(sha1_hex_of(parts.into_iter()))
}

fn sorted_digest<const N: usize>(mut parts: [&str; N]) -> [u8; HEX_LEN] {
    parts.sort_unstable();
    sha1_hex_of(parts.into_iter())
}

fn sha1_hex_of<'a>(parts: impl Iterator<Item = &'a str>) -> [u8; HEX_LEN] {
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = [0u8; HEX_LEN];
    // 20 digest bytes always fit 40 hex chars: this cannot fail.
    let _ = hex::encode_to_slice(digest.as_slice(), &mut hex);
    hex
}

fn ct_eq_hex(expected: &[u8; HEX_LEN], given: &str) -> bool {
    // A length mismatch reveals nothing secret (the length is public), so it may return early.
    let Ok(given) = <&[u8; HEX_LEN]>::try_from(given.as_bytes()) else {
        return false;
    };
    // Compared as five words: `subtle` guards each element with an optimisation barrier, and
    // forty of them per byte-wise comparison were a fortieth of a GET verify's instructions.
    bool::from(words(expected).ct_eq(&words(given)))
}

/// The 40 hex digits as five 64-bit words (any fixed byte order: both sides use the same).
fn words(hex: &[u8; HEX_LEN]) -> [u64; HEX_LEN / 8] {
    let mut words = [0_u64; HEX_LEN / 8];
    for (word, bytes) in words.iter_mut().zip(hex.chunks_exact(8)) {
        *word = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
    }
    words
}

fn hex_string(hex: [u8; HEX_LEN]) -> String {
    // Hex digits are ASCII, hence valid UTF-8.
    String::from_utf8(hex.to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_signature_matches_official_get_example() {
        let sig = url_signature("AAAAA", "1714036504", "1514711492");
        assert_eq!(sig, "f464b24fc39322e44b38aa78f5edd27bd1441696");
        assert!(verify_url_signature("AAAAA", "1714036504", "1514711492", &sig));
    }

    #[test]
    fn sorting_is_independent_of_argument_order() {
        assert_eq!(
            sha1_hex_sorted(&["AAAAA", "1714036504", "1514711492"]),
            url_signature("AAAAA", "1714036504", "1514711492")
        );
        assert_eq!(
            sha1_hex_sorted(&["d", "a", "c", "b"]),
            msg_signature("a", "b", "c", "d")
        );
    }

    #[test]
    fn wrong_or_truncated_or_uppercase_signature_is_rejected() {
        let sig = url_signature("test", "1410685589", "test");
        assert!(verify_url_signature("test", "1410685589", "test", &sig));
        assert!(!verify_url_signature(
            "test",
            "1410685589",
            "test",
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe"
        ));
        assert!(!verify_url_signature("test", "1410685589", "test", &sig[..39]));
        assert!(!verify_url_signature("test", "1410685589", "test", ""));
        assert!(!verify_url_signature("test", "1410685589", "test", &sig.to_uppercase()));
    }

    #[test]
    fn msg_signature_covers_the_encrypt_value() {
        let sig = msg_signature("t", "1", "2", "cipher");
        assert!(verify_msg_signature("t", "1", "2", "cipher", &sig));
        assert!(!verify_msg_signature("t", "1", "2", "cipheR", &sig));
    }

    #[test]
    fn jssdk_signature_ignores_the_url_fragment() {
        let ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
        let expected = "0f9de62fce790f9a083d5c99e95740ceb90c27ed";
        let url = "http://mp.weixin.qq.com?params=value";
        assert_eq!(jssdk_signature(ticket, "Wm3WZYTPz0wzccnW", "1414587457", url), expected);
        let with_fragment = format!("{url}#wechat_redirect");
        assert_eq!(
            jssdk_signature(ticket, "Wm3WZYTPz0wzccnW", "1414587457", &with_fragment),
            expected
        );
    }
}
