//! The freshness window: a signed request is only good for `max_skew` seconds around its
//! `timestamp`, in both directions.
//!
//! WeChat's plain-mode signature covers token, timestamp and nonce — not the body, not the time
//! it was sent. Without a window one captured query string (even the GET verification URL) would
//! sign any request forever. WeChat stamps each push with the current time and retries within
//! ~15 s, so a window of minutes loses nothing real.

use super::open::{CallbackQuery, OpenError};

/// Checks `query.timestamp` against `now_secs` (Unix seconds): refused when missing, not a
/// number, or `max_skew_secs` or more away from now — before or after.
///
/// # Errors
/// [`OpenError::MissingSignature`] without a timestamp, [`OpenError::Stale`] outside the window.
pub fn check_fresh(query: &CallbackQuery<'_>, now_secs: i64, max_skew_secs: u32) -> Result<(), OpenError> {
    let raw = query.timestamp.ok_or(OpenError::MissingSignature("timestamp"))?;
    let timestamp: i64 = raw.trim().parse().map_err(|_| OpenError::Stale)?;
    if timestamp.abs_diff(now_secs) < u64::from(max_skew_secs) {
        Ok(())
    } else {
        Err(OpenError::Stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(timestamp: &str) -> CallbackQuery<'_> {
        CallbackQuery {
            timestamp: Some(timestamp),
            ..CallbackQuery::default()
        }
    }

    #[test]
    fn only_timestamps_inside_the_window_in_either_direction_pass() {
        let now = 1_700_000_000;
        assert_eq!(check_fresh(&at("1700000000"), now, 300), Ok(()));
        assert_eq!(check_fresh(&at("1699999701"), now, 300), Ok(()));
        assert_eq!(check_fresh(&at("1700000299"), now, 300), Ok(()));
        assert_eq!(
            check_fresh(&at("1699999700"), now, 300),
            Err(OpenError::Stale),
            "300 s old"
        );
        assert_eq!(
            check_fresh(&at("1700000300"), now, 300),
            Err(OpenError::Stale),
            "300 s ahead"
        );
        assert_eq!(check_fresh(&at("soon"), now, 300), Err(OpenError::Stale));
        assert_eq!(
            check_fresh(&CallbackQuery::default(), now, 300),
            Err(OpenError::MissingSignature("timestamp"))
        );
        assert!(OpenError::Stale.is_unauthenticated());
    }
}
