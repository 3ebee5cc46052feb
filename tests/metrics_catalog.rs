//! The metrics the code emits, the README's table and the template's dashboard and alarms name the
//! same things: every `wechat_*` metric the template or the README mentions is in the catalog, and
//! every catalog metric is in the README's table.

use std::collections::BTreeSet;

use shared::telemetry::metrics::CATALOG;

fn repo_file(name: &str) -> String {
    let path = format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Every `wechat_[a-z_]+` token in `text` that looks like a metric name (ends like one).
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(found) = text[i..].find("wechat_") {
        let start = i + found;
        let before_ok = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + "wechat_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        if before_ok
            && ["_total", "_ms", "_state", "_open", "_rate", "_overdue"]
                .iter()
                .any(|s| name.ends_with(s))
        {
            names.insert(name.to_owned());
        }
        i = end;
    }
    names
}

fn catalog() -> BTreeSet<String> {
    CATALOG.iter().map(|m| m.name.to_owned()).collect()
}

#[test]
fn the_template_names_only_metrics_the_code_emits() {
    let template = repo_file("template.yaml");
    let named = metric_names(&template);
    assert!(named.len() >= 10, "the dashboard and alarms use the metrics: {named:?}");
    let unknown: Vec<_> = named.difference(&catalog()).cloned().collect();
    assert!(unknown.is_empty(), "template metrics not in the catalog: {unknown:?}");
}

#[test]
fn the_readme_table_lists_exactly_the_catalog() {
    let readme = repo_file("README.md");
    let table: BTreeSet<String> = readme
        .lines()
        .filter(|line| line.starts_with("| `wechat_"))
        .filter_map(|line| line.split('`').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(table, catalog(), "the README's metrics table and the catalog differ");
    let unknown: Vec<_> = metric_names(&readme).difference(&catalog()).cloned().collect();
    assert!(
        unknown.is_empty(),
        "the README mentions metrics not in the catalog: {unknown:?}"
    );
    for metric in CATALOG {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `{}`", metric.name)))
            .expect("a row");
        assert!(
            row.contains(metric.unit),
            "{}: unit {} in its row",
            metric.name,
            metric.unit
        );
        for label in metric.labels {
            assert!(row.contains(label), "{}: dimension {label} in its row", metric.name);
        }
    }
}
