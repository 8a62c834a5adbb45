//! The functions' own metrics, in CloudWatch Embedded Metric Format (EMF): one JSON log line on
//! standard output, which CloudWatch Logs turns into metrics. Chosen over PutMetricData because it
//! costs no API calls, adds nothing to a run's latency and needs no permission beyond the function's
//! logs (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! [`CATALOGUE`] lists every metric a function emits; the stack's dashboard is generated from it
//! and a test checks every widget against it. The change counts ([`DEPLOYMENTS`], [`SWAPS`],
//! [`SCALINGS`]) are emitted by [`MeteredAlerts`] when the alert of a change is sent, so a change
//! is counted where it is told, once per alert, by one piece of code for every function.

use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::alert::{Alert, AlertSink};
use crate::error::Result;

/// Where the health monitor's metrics go unless `HEALTH_METRICS_NAMESPACE` says otherwise.
pub const HEALTH_NAMESPACE: &str = "Ops/LegacyHealth";
/// Where the change counts go.
pub const CHANGES_NAMESPACE: &str = "Ops/Changes";

/// One metric a function emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Its namespace (for the health monitor's: the default one).
    pub namespace: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Its EMF unit.
    pub unit: &'static str,
    /// The dimensions it is emitted with, in order.
    pub dimensions: &'static [&'static str],
}

const fn health(name: &'static str, unit: &'static str, per_target: bool) -> Metric {
    Metric {
        namespace: HEALTH_NAMESPACE,
        name,
        unit,
        dimensions: if per_target { &["Target"] } else { &[] },
    }
}

const fn change(name: &'static str) -> Metric {
    Metric {
        namespace: CHANGES_NAMESPACE,
        name,
        unit: "Count",
        dimensions: &["FunctionName", "Outcome"],
    }
}

/// 1 when the target's check passed, else 0; per target.
pub const UP: Metric = health("Up", "Count", true);
/// How long the target's check took; per target.
pub const LATENCY_MS: Metric = health("LatencyMs", "Milliseconds", true);
/// Days until the target's certificate expires, when it serves one; per target.
pub const CERT_DAYS_LEFT: Metric = health("CertDaysLeft", "Count", true);
/// Targets a run checked.
pub const TARGETS_CHECKED: Metric = health("TargetsChecked", "Count", false);
/// Targets down after a run.
pub const TARGETS_DOWN: Metric = health("TargetsDown", "Count", false);
/// Entries of the targets document a run skipped as invalid.
pub const INVALID_ENTRIES: Metric = health("InvalidEntries", "Count", false);
/// How long a health run took.
pub const RUN_MS: Metric = health("RunMs", "Milliseconds", false);
/// Deployments that ended, by outcome (deploy-trigger).
pub const DEPLOYMENTS: Metric = change("Deployments");
/// Swaps that ended, by outcome (blue-green-swapper).
pub const SWAPS: Metric = change("Swaps");
/// Capacity changes, by direction or override (cpu-alarm-scaler).
pub const SCALINGS: Metric = change("Scalings");

/// Every metric any function emits.
pub const CATALOGUE: &[Metric] = &[
    UP,
    LATENCY_MS,
    CERT_DAYS_LEFT,
    TARGETS_CHECKED,
    TARGETS_DOWN,
    INVALID_ENTRIES,
    RUN_MS,
    DEPLOYMENTS,
    SWAPS,
    SCALINGS,
];

/// An alert that tells of a change, and how it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCount {
    /// The alert's `event_type`.
    pub event_type: &'static str,
    /// The metric it adds one to.
    pub metric: Metric,
    /// The value of its `Outcome` dimension.
    pub outcome: &'static str,
    /// Which alerts of the type are counted.
    pub when: CountWhen,
}

/// Which alerts of a counted type are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountWhen {
    /// Every one.
    Always,
    /// Only when its before and after differ: a chat override that holds capacity where it already
    /// is, or ends where it is, changed nothing.
    Moved,
    /// Unless its context says the change is held ([`change_events::HELD`]): a rollback alerted
    /// when it is held is alerted again, and counted, when it happens.
    NotHeld,
}

const fn counts(event_type: &'static str, metric: Metric, outcome: &'static str) -> ChangeCount {
    ChangeCount {
        event_type,
        metric,
        outcome,
        when: CountWhen::Always,
    }
}

const fn counts_when(
    when: CountWhen,
    event_type: &'static str,
    metric: Metric,
    outcome: &'static str,
) -> ChangeCount {
    ChangeCount {
        when,
        ..counts(event_type, metric, outcome)
    }
}

/// The alert event types that count as changes. Each function's report names its alerts through
/// these, so renaming one cannot silently stop its count.
pub mod change_events {
    /// deploy-trigger: a deployment verified complete.
    pub const DEPLOYMENT_SUCCEEDED: &str = "deployment.succeeded";
    /// deploy-trigger: a deployment that failed.
    pub const DEPLOYMENT_FAILED: &str = "deployment.failed";
    /// deploy-trigger: a deployment that ended without its outcome verified.
    pub const DEPLOYMENT_UNVERIFIED: &str = "deployment.unverified";
    /// blue-green-swapper: all traffic on the new colour and the old one drained.
    pub const SWAP_COMPLETED: &str = "swap.completed";
    /// blue-green-swapper: traffic back on the old colour after an alarm, a failure or a person.
    pub const SWAP_ROLLED_BACK: &str = "swap.rolled-back";
    /// blue-green-swapper: a swap stopped before traffic moved.
    pub const SWAP_ABORTED: &str = "swap.aborted";
    /// cpu-alarm-scaler: an alarm's step out.
    pub const SCALING_OUT: &str = "scaling.out";
    /// cpu-alarm-scaler: an alarm's step in.
    pub const SCALING_IN: &str = "scaling.in";
    /// cpu-alarm-scaler: a hold from chat.
    pub const SCALING_OVERRIDE: &str = "scaling.override";
    /// cpu-alarm-scaler: a hold from chat that ran out.
    pub const SCALING_OVERRIDE_ENDED: &str = "scaling.override-ended";
    /// The context entry (name, value) of an alert that tells of a change held back, which is
    /// alerted again when it happens (blue-green-swapper: a rollback the old colour cannot take
    /// yet).
    pub const HELD: (&str, &str) = ("rollback", "held");
}

use change_events::*;

/// The alerts that count as changes. Each ends a change (a deployment or swap is counted once, when
/// it ends, a held rollback when it happens), or is one (a scaling step; a chat override, and its
/// end, that moved capacity).
pub const CHANGE_COUNTS: &[ChangeCount] = &[
    counts(DEPLOYMENT_SUCCEEDED, DEPLOYMENTS, "succeeded"),
    counts(DEPLOYMENT_FAILED, DEPLOYMENTS, "failed"),
    counts(DEPLOYMENT_UNVERIFIED, DEPLOYMENTS, "unverified"),
    counts(SWAP_COMPLETED, SWAPS, "completed"),
    counts_when(CountWhen::NotHeld, SWAP_ROLLED_BACK, SWAPS, "rolled-back"),
    counts(SWAP_ABORTED, SWAPS, "aborted"),
    counts(SCALING_OUT, SCALINGS, "out"),
    counts(SCALING_IN, SCALINGS, "in"),
    counts_when(CountWhen::Moved, SCALING_OVERRIDE, SCALINGS, "override"),
    counts_when(
        CountWhen::Moved,
        SCALING_OVERRIDE_ENDED,
        SCALINGS,
        "override-ended",
    ),
];

/// How an alert of `event_type` is counted, if it tells of a change.
pub fn change_count(event_type: &str) -> Option<&'static ChangeCount> {
    CHANGE_COUNTS.iter().find(|c| c.event_type == event_type)
}

/// How `alert` is counted, if it tells of a change that happened.
pub fn counted_change(alert: &Alert) -> Option<&'static ChangeCount> {
    change_count(&alert.event_type).filter(|count| match count.when {
        CountWhen::Always => true,
        CountWhen::Moved => alert.before != alert.after,
        CountWhen::NotHeld => alert.context.get(HELD.0).map(String::as_str) != Some(HELD.1),
    })
}

/// A dimension value as CloudWatch takes it: "Dimension values must contain only ASCII characters"
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html>), so each
/// byte of a character beyond ASCII, and `%` itself, is percent-encoded: `café-db` is `caf%C3%A9-db`.
pub fn dimension_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii() && c != '%' {
            out.push(c);
        } else {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

/// One EMF line: `values` of metrics sharing `dimensions` (name, value), at `at_millis`. Dimension
/// values are made ASCII by [`dimension_value`].
pub fn line(
    namespace: &str,
    dimensions: &[(&str, &str)],
    values: &[(Metric, Value)],
    at_millis: u64,
) -> String {
    let mut fields = Map::new();
    for (name, value) in dimensions {
        fields.insert((*name).to_string(), json!(dimension_value(value)));
    }
    let definitions: Vec<Value> = values
        .iter()
        .map(|(metric, _)| json!({"Name": metric.name, "Unit": metric.unit}))
        .collect();
    for (metric, value) in values {
        fields.insert(metric.name.to_string(), value.clone());
    }
    let dimension_names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    fields.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_names],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(fields).to_string()
}

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

/// An [`AlertSink`] that counts the changes it tells of: after an alert in [`CHANGE_COUNTS`] is
/// sent, one EMF line adds one to its metric, with the deployed function's name and the outcome as
/// dimensions. An alert that could not be sent counts nothing (its change is told, and counted, by
/// the run that sends it).
#[derive(Debug)]
pub struct MeteredAlerts<A, M> {
    alerts: A,
    metrics: M,
    function_name: String,
}

impl<A: AlertSink, M: MetricSink> MeteredAlerts<A, M> {
    /// Send through `alerts`, count into `metrics` as `function_name` (`AWS_LAMBDA_FUNCTION_NAME`).
    pub fn new(alerts: A, metrics: M, function_name: impl Into<String>) -> Self {
        MeteredAlerts {
            alerts,
            metrics,
            function_name: function_name.into(),
        }
    }

    /// The sink alerts are sent through.
    pub fn alerts(&self) -> &A {
        &self.alerts
    }

    /// The sink metric lines go to.
    pub fn metrics(&self) -> &M {
        &self.metrics
    }
}

impl<A: AlertSink, M: MetricSink> AlertSink for MeteredAlerts<A, M> {
    async fn publish(&self, alert: &Alert) -> Result<()> {
        self.alerts.publish(alert).await?;
        if let Some(count) = counted_change(alert) {
            self.metrics.emit(line(
                count.metric.namespace,
                &[
                    ("FunctionName", &self.function_name),
                    ("Outcome", count.outcome),
                ],
                &[(count.metric, json!(1))],
                crate::time::now_epoch() * 1000,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{MemoryAlerts, Severity};
    use crate::error::Error;

    /// An alert sink that refuses every alert.
    struct Refusing;

    impl AlertSink for Refusing {
        async fn publish(&self, _: &Alert) -> Result<()> {
            Err(Error::Refused("SNS is down".into()))
        }
    }

    fn alert(event_type: &str) -> Alert {
        Alert::new(
            Severity::Info,
            "deploy-trigger",
            event_type,
            "prod/web",
            "t",
        )
    }

    #[tokio::test]
    async fn a_sent_change_alert_adds_one_to_its_metric_with_function_and_outcome() {
        let metered = MeteredAlerts::new(
            MemoryAlerts::default(),
            MemoryMetrics::default(),
            "opsstack-deploy-trigger",
        );
        metered.publish(&alert("deployment.failed")).await.unwrap();
        metered.publish(&alert("deployment.refused")).await.unwrap();
        assert_eq!(metered.alerts().sent().len(), 2, "every alert is sent");
        let lines = metered.metrics().lines();
        assert_eq!(lines.len(), 1, "only the change is counted: {lines:?}");
        let line = &lines[0];
        assert_eq!(line["Deployments"], 1);
        assert_eq!(line["FunctionName"], "opsstack-deploy-trigger");
        assert_eq!(line["Outcome"], "failed");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], CHANGES_NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["FunctionName", "Outcome"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Deployments", "Unit": "Count"}])
        );
        assert!(line["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    }

    #[tokio::test]
    async fn an_override_is_counted_only_when_it_moves_capacity() {
        let metered = MeteredAlerts::new(MemoryAlerts::default(), MemoryMetrics::default(), "f");
        let override_alert = |event_type: &str, from: &str, to: &str| {
            Alert::new(
                Severity::Warning,
                "cpu-alarm-scaler",
                event_type,
                "asg:workers",
                "t",
            )
            .change(from, to)
        };
        for alert in [
            override_alert("scaling.override", "desired 2", "desired 2"),
            override_alert("scaling.override", "desired 2", "desired 5"),
            override_alert("scaling.override", "desired 5", "desired 5"),
            override_alert("scaling.override-ended", "desired 5", "desired 2"),
            override_alert("scaling.override-ended", "desired 7", "desired 7"),
        ] {
            metered.publish(&alert).await.unwrap();
        }
        let outcomes: Vec<Value> = metered
            .metrics()
            .lines()
            .iter()
            .map(|line| line["Outcome"].clone())
            .collect();
        assert_eq!(outcomes, [json!("override"), json!("override-ended")]);
    }

    #[tokio::test]
    async fn a_held_rollback_is_counted_when_it_happens_not_when_it_is_held() {
        let metered = MeteredAlerts::new(MemoryAlerts::default(), MemoryMetrics::default(), "f");
        let rollback = || {
            Alert::new(
                Severity::Critical,
                "blue-green-swapper",
                SWAP_ROLLED_BACK,
                "shop",
                "t",
            )
        };
        metered
            .publish(&rollback().context(HELD.0, HELD.1))
            .await
            .unwrap();
        assert!(metered.metrics().lines().is_empty(), "held: not yet");
        metered.publish(&rollback()).await.unwrap();
        assert_eq!(metered.metrics().lines().len(), 1);
    }

    #[tokio::test]
    async fn an_alert_that_could_not_be_sent_counts_nothing() {
        let metered = MeteredAlerts::new(Refusing, MemoryMetrics::default(), "f");
        assert!(metered.publish(&alert("swap.completed")).await.is_err());
        assert!(metered.metrics().lines().is_empty());
    }

    #[test]
    fn every_change_count_is_a_catalogued_metric_with_an_outcome_dimension_and_one_per_event() {
        for count in CHANGE_COUNTS {
            assert!(CATALOGUE.contains(&count.metric), "{count:?}");
            assert_eq!(count.metric.dimensions, ["FunctionName", "Outcome"]);
            assert_eq!(change_count(count.event_type), Some(count));
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|m| (m.namespace, m.name)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "no metric is listed twice");
    }

    #[test]
    fn a_dimension_value_beyond_ascii_is_percent_encoded_and_ascii_is_kept() {
        assert_eq!(dimension_value("billing/i-0abc 2"), "billing/i-0abc 2");
        assert_eq!(dimension_value("café-db"), "caf%C3%A9-db");
        assert_eq!(dimension_value("主页"), "%E4%B8%BB%E9%A1%B5");
        assert_eq!(dimension_value("100%"), "100%25", "so no two names meet");
        let parsed: Value = serde_json::from_str(&line(
            HEALTH_NAMESPACE,
            &[("Target", "Zürich web/i-0abc")],
            &[(UP, json!(1))],
            1,
        ))
        .unwrap();
        assert_eq!(parsed["Target"], "Z%C3%BCrich web/i-0abc");
        assert!(parsed.to_string().is_ascii());
    }

    #[test]
    fn a_line_with_no_dimensions_names_an_empty_dimension_set() {
        let parsed: Value = serde_json::from_str(&line(
            HEALTH_NAMESPACE,
            &[],
            &[(TARGETS_DOWN, json!(3)), (RUN_MS, json!(812))],
            1_795_000_000_000,
        ))
        .unwrap();
        assert_eq!(parsed["TargetsDown"], 3);
        assert_eq!(parsed["RunMs"], 812);
        assert_eq!(
            parsed["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(parsed["_aws"]["Timestamp"], 1_795_000_000_000u64);
    }
}
