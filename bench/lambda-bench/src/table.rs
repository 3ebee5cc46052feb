//! The results as a markdown table.

use std::fmt::Write as _;
use std::time::Duration;

use crate::run::Report;

const HEADER: &str = "| function / scenario | binary | init ms (CPU ms) | 1st invocation wall ms (CPU ms) \
| wall p50 / p99 µs | CPU p50 / p99 µs | peak RSS MiB | invocations | failures |\n\
|---|---|---|---|---|---|---|---|---|\n";

/// One row per report, under the header, and a line saying what the figures are.
pub fn markdown(reports: &[Report]) -> String {
    let mut table = HEADER.to_owned();
    let Some(first) = reports.first() else {
        return table;
    };
    for report in reports {
        let _ = writeln!(
            table,
            "| {} | {:.2} MiB | {} ({}) | {} ({}) | {} / {} | {} / {} | {:.1} | {} | {} |",
            report.scenario,
            mib(report.binary_bytes),
            millis(report.init),
            millis(report.init_cpu),
            millis(report.first_wall),
            millis(report.first_cpu),
            micros(report.wall.p50),
            micros(report.wall.p99),
            micros(report.cpu.p50),
            micros(report.cpu.p99),
            mib(report.peak_rss_kib * 1024),
            report.invocations,
            report.failures,
        );
    }
    let slowest = reports.iter().max_by_key(|report| report.init_worst).unwrap_or(first);
    let _ = write!(
        table,
        "\nInit and the 1st invocation: medians of {} cold starts per function (the slowest init: {} ms, {}). \
         Wall and CPU per invocation: the long run without its first {} invocations; CPU is the function's \
         whole cycle from one `GET /next` to the next. Failures: invocations not answered as expected, \
         the cold starts' included.\n",
        first.cold_starts,
        millis(slowest.init_worst),
        slowest.scenario,
        first.warmup,
    );
    table
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn millis(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e3)
}

fn micros(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;

    #[test]
    fn a_row_per_report_in_the_units_of_the_header() {
        let report = Report {
            scenario: "callback-plain:memory".into(),
            binary_bytes: 10 * 1024 * 1024,
            cold_starts: 5,
            init: Duration::from_micros(45_260),
            init_worst: Duration::from_micros(61_000),
            init_cpu: Duration::from_micros(30_000),
            first_wall: Duration::from_micros(2_500),
            first_cpu: Duration::from_micros(1_900),
            wall: Percentiles {
                p50: Duration::from_micros(150),
                p99: Duration::from_micros(420),
            },
            cpu: Percentiles {
                p50: Duration::from_micros(90),
                p99: Duration::from_micros(200),
            },
            peak_rss_kib: 20 * 1024,
            invocations: 2000,
            warmup: 20,
            failures: 0,
            failure_samples: Vec::new(),
            log: "x.log".into(),
        };
        let table = markdown(&[report]);
        let row = table.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "| callback-plain:memory | 10.00 MiB | 45.3 (30.0) | 2.5 (1.9) | 150 / 420 | 90 / 200 | 20.0 | 2000 | 0 |"
        );
        assert_eq!(
            table.lines().next().unwrap().matches('|').count(),
            row.matches('|').count()
        );
    }
}
