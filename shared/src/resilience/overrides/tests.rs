//! Override parsing and application, from each source.

use std::time::Duration;

use super::*;
use crate::resilience::backoff::Jitter;

#[test]
fn json_overrides_apply_default_then_named_settings() {
    let set = OverrideSet::from_json(
        r#"{"default": {"max_attempts": 2, "jitter": "equal"},
            "wechat-api": {"max_attempts": 4, "failure_rate_threshold": 40.5, "open_ms": 5000}}"#,
    )
    .unwrap();
    let config = set
        .for_name("wechat-api")
        .apply(&PolicyConfig::default(), false)
        .unwrap();
    assert_eq!(config.retry.max_attempts(), 4, "named beats default");
    assert_eq!(config.retry.backoff().jitter, Jitter::Equal);
    assert_eq!(config.breaker.failure_rate_threshold(), 40.5);
    assert_eq!(config.breaker.open_duration(), Duration::from_secs(5));
    let other = set.for_name("token").apply(&PolicyConfig::default(), false).unwrap();
    assert_eq!(other.retry.max_attempts(), 2);
}

#[test]
fn env_overrides_match_names_case_and_dash_insensitively() {
    let vars = [
        ("RESILIENCE__WECHAT_API__MAX_ATTEMPTS", "5"),
        ("RESILIENCE__WECHAT_API__BACKOFF", "linear"),
        ("PATH", "/usr/bin"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let set = OverrideSet::from_variables(vars).unwrap();
    let config = set
        .for_name("wechat-api")
        .apply(&PolicyConfig::default(), false)
        .unwrap();
    assert_eq!(config.retry.max_attempts(), 5);
    assert_eq!(set.names().collect::<Vec<_>>(), ["wechat_api"]);
}

#[test]
fn bad_values_fail_with_the_setting_name() {
    let set = OverrideSet::from_json(r#"{"p": {"max_attempts": 0}}"#).unwrap();
    assert_eq!(
        set.for_name("p")
            .apply(&PolicyConfig::default(), false)
            .unwrap_err()
            .field,
        "max_attempts"
    );
    let set = OverrideSet::from_json(r#"{"p": {"jitter": "wobbly"}}"#).unwrap();
    let err = set.for_name("p").apply(&PolicyConfig::default(), false).unwrap_err();
    assert_eq!(err.field, "jitter");
    assert!(err.message.contains("none, full, equal, decorrelated"), "{err}");
    let err = OverrideSet::from_json(r#"{"p": {"max_attempt": 2}}"#).unwrap_err();
    assert_eq!(err.field, "p.max_attempt", "typos are caught at load");
    let vars = [("RESILIENCE__P__NOPE".to_owned(), "1".to_owned())];
    assert_eq!(
        OverrideSet::from_variables(vars).unwrap_err().field,
        "RESILIENCE__P__NOPE"
    );
    let set = OverrideSet::from_variables([("RESILIENCE__P__MINIMUM_CALLS".to_owned(), "many".to_owned())]).unwrap();
    let err = set.for_name("p").apply(&PolicyConfig::default(), false).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.message.as_str()),
        ("minimum_calls", "expected a non-negative integer, got `many`")
    );
}

#[test]
fn runtime_items_cannot_change_the_window_shape_or_bulkhead() {
    let mut attrs = Attrs::new();
    attrs.insert("failure_rate_threshold".into(), AttrValue::N(30));
    attrs.insert("expires_at".into(), AttrValue::N(1));
    let overrides = Overrides::from_attrs(&attrs).unwrap();
    assert_eq!(
        overrides
            .apply(&PolicyConfig::default(), true)
            .unwrap()
            .breaker
            .failure_rate_threshold(),
        30.0
    );
    attrs.insert("buckets".into(), AttrValue::N(5));
    let err = Overrides::from_attrs(&attrs)
        .unwrap()
        .apply(&PolicyConfig::default(), true)
        .unwrap_err();
    assert_eq!(err.field, "buckets");
    attrs.insert("colour".into(), AttrValue::S("red".into()));
    assert_eq!(Overrides::from_attrs(&attrs).unwrap_err().field, "colour");
}

#[test]
fn later_sources_win_and_zero_attempt_timeout_means_none() {
    let file = OverrideSet::from_json(r#"{"p": {"max_attempts": 2, "attempt_timeout_ms": 800}}"#).unwrap();
    let env = OverrideSet::from_variables([("RESILIENCE__P__MAX_ATTEMPTS".to_owned(), "3".to_owned())]).unwrap();
    let config = file
        .merged(env)
        .for_name("p")
        .apply(&PolicyConfig::default(), false)
        .unwrap();
    assert_eq!(config.retry.max_attempts(), 3);
    assert_eq!(config.retry.attempt_timeout(), Some(Duration::from_millis(800)));
    let none = OverrideSet::from_json(r#"{"p": {"attempt_timeout_ms": 0}}"#).unwrap();
    assert_eq!(
        none.for_name("p")
            .apply(&config, false)
            .unwrap()
            .retry
            .attempt_timeout(),
        None
    );
    assert!(setting_names().count() >= 27);
}

#[test]
fn store_items_carry_fractions_as_decimal_strings_and_whole_values_as_numbers() {
    let mut attrs = Attrs::new();
    attrs.insert("failure_rate_threshold".into(), AttrValue::S("37.5".into()));
    attrs.insert("slow_call_rate_threshold".into(), AttrValue::N(80));
    attrs.insert("budget_percent".into(), AttrValue::S(" 12.25 ".into()));
    attrs.insert("minimum_calls".into(), AttrValue::S("7".into()));
    let config = Overrides::from_attrs(&attrs)
        .unwrap()
        .apply(&PolicyConfig::default(), true)
        .unwrap();
    assert_eq!(config.breaker.failure_rate_threshold(), 37.5);
    assert_eq!(config.breaker.slow_call_rate_threshold(), 80.0);
    assert_eq!(config.retry.budget().percent(), 12.25);
    assert_eq!(config.breaker.minimum_calls(), 7);
    for (bad, why) in [("37,5", "a comma"), ("37.5%", "a unit"), ("NaN", "not a rate")] {
        attrs.insert("failure_rate_threshold".into(), AttrValue::S(bad.into()));
        let err = Overrides::from_attrs(&attrs)
            .unwrap()
            .apply(&PolicyConfig::default(), true)
            .unwrap_err();
        assert_eq!(err.field, "failure_rate_threshold", "{why}: {err}");
    }
    attrs.insert("failure_rate_threshold".into(), AttrValue::S("37.5".into()));
    attrs.insert("minimum_calls".into(), AttrValue::S("7.5".into()));
    let err = Overrides::from_attrs(&attrs)
        .unwrap()
        .apply(&PolicyConfig::default(), true)
        .unwrap_err();
    assert_eq!(err.field, "minimum_calls", "counts stay whole: {err}");
}
