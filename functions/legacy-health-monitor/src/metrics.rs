//! Metrics per target in CloudWatch Embedded Metric Format: one JSON log line per target, which
//! CloudWatch Logs turns into metrics. Chosen over PutMetricData because it costs no API calls
//! (1,000 targets x 3 metrics would be 3 calls a minute, each able to be throttled or slow),
//! adds nothing to the run's latency, and needs no write permission beyond the function's logs.

use std::sync::Mutex;

use serde_json::{json, Value};

use crate::probe::Outcome;

/// Where metric lines go.
pub trait MetricSink: Send + Sync {
    /// Emit one line.
    fn emit(&self, line: String);
}

/// Standard output: what Lambda forwards to CloudWatch Logs.
#[derive(Debug, Default)]
pub struct Stdout;

impl MetricSink for Stdout {
    fn emit(&self, line: String) {
        println!("{line}");
    }
}

/// Lines kept in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryMetrics(Mutex<Vec<String>>);

impl MemoryMetrics {
    /// Every line emitted so far, parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl MetricSink for MemoryMetrics {
    fn emit(&self, line: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
}

/// The EMF line for one target's check: `Up` (1 or 0), `LatencyMs`, and `CertDaysLeft` when the
/// target serves a certificate; dimension `Target`.
pub fn target_line(namespace: &str, target: &str, outcome: &Outcome, at_millis: u64) -> String {
    let mut metrics = vec![
        json!({"Name": "Up", "Unit": "Count"}),
        json!({"Name": "LatencyMs", "Unit": "Milliseconds"}),
    ];
    let mut line = json!({
        "Target": target,
        "Up": u8::from(outcome.healthy()),
        "LatencyMs": outcome.latency_ms,
    });
    if let Some(days) = outcome.cert_days_left {
        metrics.push(json!({"Name": "CertDaysLeft", "Unit": "Count"}));
        line["CertDaysLeft"] = json!(days);
    }
    line["_aws"] = json!({
        "Timestamp": at_millis,
        "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["Target"]], "Metrics": metrics}],
    });
    line.to_string()
}

/// The EMF line for the run as a whole: targets checked, down, unknown, invalid entries, run time.
pub fn run_line(namespace: &str, counts: &RunCounts, at_millis: u64) -> String {
    json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [[]], "Metrics": [
                {"Name": "TargetsChecked", "Unit": "Count"},
                {"Name": "TargetsDown", "Unit": "Count"},
                {"Name": "InvalidEntries", "Unit": "Count"},
                {"Name": "RunMs", "Unit": "Milliseconds"}
            ]}],
        },
        "TargetsChecked": counts.checked,
        "TargetsDown": counts.down,
        "InvalidEntries": counts.invalid,
        "RunMs": counts.run_ms,
    })
    .to_string()
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
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ops/LegacyHealth");
        assert_eq!(directive["Dimensions"][0][0], "Target");
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 3);
        assert_eq!(line["_aws"]["Timestamp"], 1_795_000_000_000u64);
    }
}
