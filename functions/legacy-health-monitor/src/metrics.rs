//! Metrics per target in CloudWatch Embedded Metric Format (ops-core's `metrics`): one line per
//! target and one per run. EMF rather than PutMetricData: 1,000 targets x 3 metrics would be 3
//! calls a minute, each able to be throttled or slow; a log line costs nothing.

use ops_core::metrics::{
    line, CERT_DAYS_LEFT, INVALID_ENTRIES, LATENCY_MS, RUN_MS, TARGETS_CHECKED, TARGETS_DOWN, UP,
};
pub use ops_core::metrics::{MemoryMetrics, MetricSink, Stdout};
use serde_json::json;

use crate::probe::Outcome;

/// The EMF line for one target's check: `Up` (1 or 0), `LatencyMs`, and `CertDaysLeft` when the
/// target serves a certificate; dimension `Target`.
pub fn target_line(namespace: &str, target: &str, outcome: &Outcome, at_millis: u64) -> String {
    let mut values = vec![
        (UP, json!(u8::from(outcome.healthy()))),
        (LATENCY_MS, json!(outcome.latency_ms)),
    ];
    if let Some(days) = outcome.cert_days_left {
        values.push((CERT_DAYS_LEFT, json!(days)));
    }
    line(namespace, &[("Target", target)], &values, at_millis)
}

/// The EMF line for the run as a whole: targets checked, down, invalid entries, run time.
pub fn run_line(namespace: &str, counts: &RunCounts, at_millis: u64) -> String {
    line(
        namespace,
        &[],
        &[
            (TARGETS_CHECKED, json!(counts.checked)),
            (TARGETS_DOWN, json!(counts.down)),
            (INVALID_ENTRIES, json!(counts.invalid)),
            (RUN_MS, json!(counts.run_ms)),
        ],
        at_millis,
    )
}

/// Figures of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Targets checked.
    pub checked: usize,
    /// Targets down after this run.
    pub down: usize,
    /// Config entries skipped as invalid.
    pub invalid: usize,
    /// How long the run took.
    pub run_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Failure, FailureKind};
    use serde_json::Value;

    #[test]
    fn a_line_is_embedded_metric_format() {
        let outcome = Outcome {
            failure: Some(Failure::new(FailureKind::Timeout, "no answer")),
            status: None,
            latency_ms: 5000,
            address: None,
            cert_days_left: Some(12),
            attempts: 1,
        };
        let line: Value = serde_json::from_str(&target_line(
            "Ops/LegacyHealth",
            "billing",
            &outcome,
            1_795_000_000_000,
        ))
        .unwrap();
        assert_eq!(line["Up"], 0);
        assert_eq!(line["CertDaysLeft"], 12);
        assert_eq!(line["Target"], "billing");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ops/LegacyHealth");
        assert_eq!(directive["Dimensions"][0][0], "Target");
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 3);
        assert_eq!(line["_aws"]["Timestamp"], 1_795_000_000_000u64);
    }
}
