//! Every metric the library records, in one catalog: name, kind, unit, labels and meaning. The
//! README's metrics table, the EMF descriptions and the template's dashboard and alarms are
//! checked against it (`tests/metrics_catalog.rs`).
//!
//! Recorded through the `metrics` facade: without an installed recorder (tests, tools) recording
//! is a no-op. On Lambda the recorder writes CloudWatch Embedded Metric Format (`emf`), with the
//! function as a dimension and each label as one more; locally it is Prometheus text at
//! `GET /metrics`. Labels stay low-cardinality: breaker and policy names, fixed outcome words —
//! never an openid, a message id or a URL. Names are `snake_case`, the unit last.

use std::time::Duration;

/// What kind of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A count that only grows (EMF: the delta since the last flush).
    Counter,
    /// A value that goes up and down (EMF: the last value).
    Gauge,
    /// A distribution (EMF: the values since the last flush).
    Histogram,
}

/// One metric of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The name, as CloudWatch and Prometheus show it.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// `Count`, `Milliseconds`, `Percent` or `None` (a plain number).
    pub unit: &'static str,
    /// Label keys (EMF dimensions besides `Function`).
    pub labels: &'static [&'static str],
    /// What it counts.
    pub help: &'static str,
}

macro_rules! catalog {
    ($($konst:ident = $name:literal, $kind:ident, $unit:literal, [$($label:literal),*], $help:literal;)+) => {
        $(
            #[doc = $help]
            pub const $konst: &str = $name;
        )+
        /// Every metric the library records.
        pub const CATALOG: &[Metric] = &[
            $(Metric { name: $name, kind: Kind::$kind, unit: $unit, labels: &[$($label),*], help: $help },)+
        ];
    };
}

catalog! {
    CALLBACK_REQUESTS = "wechat_callback_requests_total", Counter, "Count", ["outcome"],
        "Callback requests by outcome: replied, replayed (the stored reply of a retry), busy (success while another instance works on it), handed_over (success after the bot overran; the reply goes through the queue), verified (GET), rejected_signature, rejected_freshness, rejected_replay, rejected_size, bad_request, unavailable, error.";
    CALLBACK_LATENCY_MS = "wechat_callback_latency_ms", Histogram, "Milliseconds", [],
        "Callback answer time, from API Gateway's arrival time to the answer.";
    LEDGER_FALLBACKS = "wechat_ledger_fallbacks_total", Counter, "Count", [],
        "Idempotency decisions made on instance memory because the fleet store was out.";
    BREAKER_TRANSITIONS = "wechat_breaker_transitions_total", Counter, "Count", ["breaker", "to"],
        "Breaker state changes, counted once by the instance that committed them (to: closed, open, half_open, forced_open, disabled).";
    BREAKER_STATE = "wechat_breaker_state", Gauge, "None", ["breaker"],
        "A breaker's state as this instance last saw it: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled.";
    BREAKER_OPEN = "wechat_breaker_open", Gauge, "None", ["breaker"],
        "1 while a breaker refuses calls (open or forced open), else 0: its Maximum over a period says whether it was open at all.";
    BREAKER_REJECTIONS = "wechat_breaker_rejections_total", Counter, "Count", ["breaker"],
        "Calls refused by a breaker (open, no probe left) or a bulkhead.";
    BREAKER_PROBES = "wechat_breaker_probes_total", Counter, "Count", ["breaker"],
        "Half-open probe permits handed out.";
    RETRIES = "wechat_retries_total", Counter, "Count", ["policy"],
        "Retries about to be made, per retry policy.";
    RETRY_BUDGET_EXHAUSTED = "wechat_retry_budget_exhausted_total", Counter, "Count", ["policy"],
        "Retryable failures not retried because the fleet's retry budget was spent.";
    BREAKER_STORE_LATENCY_MS = "wechat_breaker_store_latency_ms", Histogram, "Milliseconds", [],
        "How long breaker store calls took when the store answered.";
    BREAKER_STORE_SLOW = "wechat_breaker_store_slow_total", Counter, "Count", [],
        "Breaker store calls answered, but slower than store_timeout (the adaptive timeout waited for them): the store is slow.";
    BREAKER_STORE_OUTAGES = "wechat_breaker_store_outages_total", Counter, "Count", [],
        "Breaker store calls that failed or exceeded their timeout.";
    BREAKER_STORE_FALLBACKS = "wechat_breaker_store_fallbacks_total", Counter, "Count", [],
        "Times a breaker began or extended deciding on local state (store out or too slow).";
    TOKEN_FETCHES = "wechat_token_fetches_total", Counter, "Count", ["credential"],
        "Credentials fetched from WeChat by this fleet (credential: access_token, jsapi_ticket).";
    TOKEN_LEASE_WAITS = "wechat_token_lease_waits_total", Counter, "Count", [],
        "Times an instance waited for another instance's token refresh instead of fetching itself.";
    TOKEN_FORCED_REFRESHES = "wechat_token_forced_refreshes_total", Counter, "Count", [],
        "Forced refreshes of a token WeChat rejected (40001 / 40014 / 42001).";
    SENDS = "wechat_sends_total", Counter, "Count", ["outcome"],
        "Send API answers by outcome: sent, queued, rejected, in_doubt, unavailable.";
    WORKER_JOBS = "wechat_worker_jobs_total", Counter, "Count", ["outcome"],
        "Worker jobs by outcome: delivered, already_settled, rejected, in_doubt, requeued, deferred, completed, poison.";
    WORKER_DLQ_ARRIVALS = "wechat_worker_dlq_arrivals_total", Counter, "Count", [],
        "Jobs failed on their last allowed receive: the queue's redrive moves them to the dead-letter queue.";
    DELIVERY_IN_DOUBT = "wechat_delivery_in_doubt_total", Counter, "Count", [],
        "Sends that may have reached WeChat without an answer (held or resent as DELIVERY_IN_DOUBT says).";
    DELIVERY_COMPLETION_DEFERRED = "wechat_delivery_completion_deferred_total", Counter, "Count", [],
        "Sends whose completion record could not be written in time and was handed to the queue.";
    DELIVERY_COMPLETION_WRITTEN = "wechat_delivery_completion_written_total", Counter, "Count", [],
        "Deferred completions written by the worker.";
    DELIVERY_WITHOUT_LEDGER = "wechat_delivery_without_ledger_total", Counter, "Count", [],
        "Sends made while the delivery ledger was down, kept once by instance memory only.";
    DELIVERY_LEDGER_WAIT = "wechat_delivery_ledger_wait_total", Counter, "Count", [],
        "Jobs requeued because the delivery ledger did not answer (nothing was attempted).";
    BREAKER_FLEET_STATE = "wechat_breaker_fleet_state", Gauge, "None", ["breaker"],
        "A breaker's fleet state as the tuner read it from the store each minute: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled.";
    BREAKER_FAILURE_RATE = "wechat_breaker_failure_rate", Gauge, "Percent", ["breaker"],
        "A breaker's failure rate over its current window, read by the tuner each minute (absent without calls).";
    BREAKER_OPEN_OVERDUE = "wechat_breaker_open_overdue", Gauge, "None", ["breaker"],
        "1 when a breaker has been open (or half-open) for more than twice its open period, else 0 (read by the tuner each minute).";
    PAY_RECEIVED = "wechat_pay_notices_received_total", Counter, "Count", [],
        "WeChat Pay notices received at /pay/notify.";
    PAY_VERIFIED = "wechat_pay_notices_verified_total", Counter, "Count", [],
        "Notices whose signature, time and resource checked out.";
    PAY_REJECTED = "wechat_pay_notices_rejected_total", Counter, "Count", ["reason"],
        "Notices refused, by reason: missing_header, signature_type, stale, unknown_serial, expired_certificate, probe, bad_signature, malformed, decrypt, too_large, unacceptable (authentic, refused by the business, kept).";
    PAY_DUPLICATES = "wechat_pay_duplicates_total", Counter, "Count", [],
        "Payment events already processed (the same notice again, another notice of the order, or after reconciliation).";
    PAY_HOOK_FAILURES = "wechat_pay_hook_failures_total", Counter, "Count", [],
        "Payment events whose hook failed (answered 5xx: WeChat Pay retries).";
    PAY_RECONCILED = "wechat_pay_reconciled_total", Counter, "Count", ["outcome"],
        "Pending orders the reconciliation looked up: settled (processed now), duplicate (processed before), pending (not final yet), expired (given up), failed.";
    AUTH_LOGINS = "wechat_auth_logins_total", Counter, "Count", ["flow", "outcome"],
        "Logins by flow (web, miniprogram) and outcome: ok, duplicate (a concurrent request with the same code shared its session), rejected_state, rejected_code (invalid, used or replayed), blocked, throttled, unavailable (WeChat or the store), error.";
    AUTH_SESSION_CHECKS = "wechat_auth_session_checks_total", Counter, "Count", ["outcome"],
        "Session lookups: valid, remembered (the store was out; this instance's recent copy answered), missing (unknown, expired or revoked), unavailable.";
    AUTH_PROFILE_REFRESHES = "wechat_auth_profile_refreshes_total", Counter, "Count", ["outcome"],
        "Web profiles older than AUTH_PROFILE_MAX_AGE_SECS at /me: refreshed, stale (WeChat unavailable; the stored one served), reauthorize (the refresh token expired).";
    AUTH_USER_DATA = "wechat_auth_user_data_total", Counter, "Count", ["kind", "outcome"],
        "Mini-program user data by kind (decrypt, phone) and outcome: ok, rejected (undecryptable, bad signature, used code), foreign (another app's watermark or user), unavailable.";
    SYNC_RUNS = "wechat_sync_runs_total", Counter, "Count", ["outcome"],
        "Follower sync runs by outcome: idle, busy (another run holds the lease), finished (a full pass completed), yielded (the deadline came; the next run resumes), paused (45009 until the daily reset), interrupted (WeChat or the store failed; resumed at the checkpoint).";
    SYNC_FOLLOWERS = "wechat_sync_followers_total", Counter, "Count", ["outcome"],
        "Followers written by the sync: stored (from a page), kept_newer (an event during the pass was newer), left (marked unsubscribed at the end of a pass).";
    SYNC_EVENTS = "wechat_sync_events_total", Counter, "Count", ["outcome"],
        "Subscribe / unsubscribe events applied by the callback: stored, kept_newer (the item held something newer), failed (the store did not take it; the next full pass repairs it).";
    TUNER_CHANGES = "wechat_tuner_changes_total", Counter, "Count", ["breaker", "setting"],
        "Threshold changes made by the breaker tuner (setting: failure_rate_threshold, slow_call_ms).";
    ADMIN_ACTIONS = "wechat_admin_actions_total", Counter, "Count", ["action"],
        "Admin API actions carried out (force, reset, thresholds, pin, unpin).";
}

/// The `outcome` of one callback request on `wechat_callback_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// A GET verification answered with its echostr.
    Verified,
    /// A retry answered with the reply stored for its first delivery.
    Replayed,
    /// A retry while the first delivery still runs, answered `success` after the wait.
    Busy,
    /// The bot overran its budget: answered `success`, the work handed to the queue.
    HandedOver,
    /// A message answered by the bot.
    Replied,
    /// A timestamp outside the freshness window.
    RejectedFreshness,
    /// A signed query reused with another body.
    RejectedReplay,
    /// A wrong signature.
    RejectedSignature,
    /// A body over the size limit.
    RejectedSize,
    /// A request that cannot be read, or a method other than GET and POST.
    BadRequest,
    /// The store or the bot could not take the message now (WeChat retries).
    Unavailable,
    /// Anything else that failed.
    Error,
}

impl CallbackOutcome {
    /// Every outcome, in the order of the variants (`ALL[o as usize] == o`, checked below).
    pub const ALL: [Self; 12] = [
        Self::Verified,
        Self::Replayed,
        Self::Busy,
        Self::HandedOver,
        Self::Replied,
        Self::RejectedFreshness,
        Self::RejectedReplay,
        Self::RejectedSignature,
        Self::RejectedSize,
        Self::BadRequest,
        Self::Unavailable,
        Self::Error,
    ];

    /// The label words, by variant index (what a handle per word is registered with).
    pub const WORDS: [&'static str; 12] = {
        let mut words = [""; 12];
        let mut at = 0;
        while at < words.len() {
            words[at] = Self::ALL[at].word();
            at += 1;
        }
        words
    };

    /// The label word.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Replayed => "replayed",
            Self::Busy => "busy",
            Self::HandedOver => "handed_over",
            Self::Replied => "replied",
            Self::RejectedFreshness => "rejected_freshness",
            Self::RejectedReplay => "rejected_replay",
            Self::RejectedSignature => "rejected_signature",
            Self::RejectedSize => "rejected_size",
            Self::BadRequest => "bad_request",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }
}

// `ALL` holds every variant at its own index (`word` is exhaustive by the compiler; `Error` is the
// last variant): a variant added without its place in `ALL` fails the build, not a request.
const _: () = {
    let mut at = 0;
    while at < CallbackOutcome::ALL.len() {
        assert!(CallbackOutcome::ALL[at] as usize == at);
        at += 1;
    }
    assert!(CallbackOutcome::Error as usize + 1 == CallbackOutcome::ALL.len());
};

/// The catalog entry of `name`.
pub fn find(name: &str) -> Option<&'static Metric> {
    CATALOG.iter().find(|metric| metric.name == name)
}

/// Counts one `name` event.
pub fn count(name: &'static str) {
    ::metrics::counter!(name).increment(1);
}

/// Counts one `name` event with one label.
/// (`value` is usually a `&'static str`: a `SharedString` borrows it, no allocation per event.)
pub fn count_with(name: &'static str, label: &'static str, value: impl Into<::metrics::SharedString>) {
    ::metrics::counter!(name, label => value.into()).increment(1);
}

/// Counts one `name` event with two labels.
pub fn count_with2(
    name: &'static str,
    (label, value): (&'static str, String),
    (label2, value2): (&'static str, String),
) {
    ::metrics::counter!(name, label => value, label2 => value2).increment(1);
}

/// Sets gauge `name` (one label) to `value`.
pub fn gauge_with(name: &'static str, label: &'static str, value_of_label: impl Into<String>, value: f64) {
    ::metrics::gauge!(name, label => value_of_label.into()).set(value);
}

/// Bucket bounds (milliseconds) of every histogram where the exporter needs them (Prometheus):
/// the catalog's histograms are all latencies in ms (its test checks the `_ms` suffix), and the
/// bounds bracket what matters for them — sub-millisecond local answers, the store timeouts (100 ms
/// to 1 s), the callback's 4 s alarm and WeChat's 5 s limit. Buckets, not summaries: a scraper
/// can add them up across instances, which quantiles do not allow.
pub const LATENCY_BUCKETS_MS: [f64; 16] = [
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 5000.0, 10000.0,
];

/// Records `elapsed` in milliseconds in histogram `name`.
pub fn record_ms(name: &'static str, elapsed: Duration) {
    ::metrics::histogram!(name).record(elapsed.as_secs_f64() * 1000.0);
}

/// Describes every metric to the installed recorder (units for EMF, help for Prometheus). Call
/// it after installing the recorder: descriptions reach only the recorder in place.
pub fn describe_all() {
    for metric in CATALOG {
        let unit = match metric.unit {
            "Count" => Some(::metrics::Unit::Count),
            "Milliseconds" => Some(::metrics::Unit::Milliseconds),
            "Percent" => Some(::metrics::Unit::Percent),
            _ => None,
        };
        match (metric.kind, unit) {
            (Kind::Counter, Some(unit)) => ::metrics::describe_counter!(metric.name, unit, metric.help),
            (Kind::Counter, None) => ::metrics::describe_counter!(metric.name, metric.help),
            (Kind::Gauge, Some(unit)) => ::metrics::describe_gauge!(metric.name, unit, metric.help),
            (Kind::Gauge, None) => ::metrics::describe_gauge!(metric.name, metric.help),
            (Kind::Histogram, Some(unit)) => ::metrics::describe_histogram!(metric.name, unit, metric.help),
            (Kind::Histogram, None) => ::metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_with_the_unit_last() {
        let mut seen = std::collections::BTreeSet::new();
        for metric in CATALOG {
            assert!(seen.insert(metric.name), "{} twice", metric.name);
            assert!(metric.name.starts_with("wechat_"), "{}", metric.name);
            assert!(
                metric.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                metric.name
            );
            match metric.kind {
                Kind::Counter => assert!(metric.name.ends_with("_total"), "{}", metric.name),
                Kind::Histogram => assert!(metric.name.ends_with("_ms"), "{}", metric.name),
                Kind::Gauge => assert!(!metric.name.ends_with("_total"), "{}", metric.name),
            }
            assert!(metric.labels.len() <= 2, "{}: low cardinality", metric.name);
        }
    }
}
