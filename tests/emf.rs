//! The metrics a callback invocation writes on Lambda, parsed back and checked against the
//! CloudWatch Embedded Metric Format specification's required structure, and against the catalog.
//! Its own test binary: the EMF recorder is process-global.

use std::collections::BTreeSet;

use serde_json::Value;
use shared::routes::callback;
use shared::telemetry::{emf, metrics};
use wechat_ha_tests::*;

/// Units CloudWatch accepts (the `MetricDefinition.Unit` enumeration).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one EMF document as the specification requires; returns the metric names it defines.
fn check_document(line: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let root = doc.as_object().expect("a JSON object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    assert!(
        aws["Timestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000),
        "Timestamp in epoch ms"
    );
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics array");
    assert!(!directives.is_empty());
    let mut names = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"].as_str().expect("Namespace");
        assert!(!namespace.is_empty() && namespace.len() <= 1024 && !namespace.starts_with("AWS/"));
        let dimension_sets = directive["Dimensions"].as_array().expect("Dimensions array");
        for set in dimension_sets {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30, "at most 30 dimensions per set");
            for dimension in set {
                let key = dimension.as_str().expect("dimension names are strings");
                assert!(
                    root.get(key).and_then(Value::as_str).is_some(),
                    "dimension {key} has a string value member"
                );
            }
        }
        let defined = directive["Metrics"].as_array().expect("Metrics array");
        assert!(defined.len() <= 100, "at most 100 metrics per directive");
        for definition in defined {
            let name = definition["Name"].as_str().expect("metric Name");
            if let Some(unit) = definition.get("Unit") {
                let unit = unit.as_str().expect("Unit is a string");
                assert!(UNITS.contains(&unit), "{name}: unit {unit} is not a CloudWatch unit");
            }
            let value = &root[name];
            let numeric = match value {
                Value::Number(_) => true,
                Value::Array(values) => values.len() <= 100 && values.iter().all(Value::is_number),
                _ => false,
            };
            assert!(
                numeric,
                "{name}: the member is a number or an array of at most 100 numbers: {value}"
            );
            names.push(name.to_owned());
        }
    }
    names
}

#[tokio::test]
async fn a_callback_invocation_writes_valid_emf_with_the_documented_metrics() {
    assert!(emf::install("WechatHaTest", "callback"), "the EMF recorder installs");
    let (store, clock) = memory_store();
    let deps = deps_on(settings("plain", &[]), store, clock);
    let answered = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(answered.status(), 200, "{}", body_text(&answered));
    let rejected = callback::handle(&deps, event("callback-bad-signature-post.json")).await;
    assert_eq!(rejected.status(), 403);

    let mut out = Vec::new();
    emf::flush_to(&mut out).expect("flush");
    let text = String::from_utf8(out).expect("UTF-8");
    let mut names = BTreeSet::new();
    let mut outcomes = BTreeSet::new();
    for line in text.lines() {
        names.extend(check_document(line));
        let doc: Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(
            doc["Function"], "callback",
            "every document carries the Function dimension"
        );
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "WechatHaTest");
        if let Some(outcome) = doc["outcome"].as_str() {
            outcomes.insert(outcome.to_owned());
        }
    }
    for name in &names {
        assert!(
            metrics::find(name).is_some(),
            "{name} is emitted but not in the catalog"
        );
    }
    assert!(names.contains(metrics::CALLBACK_REQUESTS), "{names:?}");
    assert!(names.contains(metrics::CALLBACK_LATENCY_MS), "{names:?}");
    assert!(
        outcomes.contains("replied") && outcomes.contains("rejected_signature"),
        "{outcomes:?}"
    );
    // The latency is a histogram in milliseconds.
    let latency_line = text
        .lines()
        .find(|line| line.contains(metrics::CALLBACK_LATENCY_MS))
        .expect("a latency document");
    assert!(latency_line.contains(r#""Unit":"Milliseconds""#), "{latency_line}");

    // A second flush with nothing new writes nothing (counters are deltas).
    let mut again = Vec::new();
    emf::flush_to(&mut again).expect("flush");
    assert!(
        !String::from_utf8_lossy(&again).contains(metrics::CALLBACK_REQUESTS),
        "counters are written as deltas"
    );
}
