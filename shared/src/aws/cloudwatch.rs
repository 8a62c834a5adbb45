//! CloudWatch adapter: read alarms with their tags (the scaler's trigger, the swapper's gate).
//!
//! `DescribeAlarms` returns only metric alarms unless it is asked for composite alarms too
//! (`AlarmTypes`, <https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html>),
//! so [`CloudWatchAlarms::describe_any`] asks for both kinds: a composite alarm is then reported as
//! one, not as "not found".

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, MetricAlarm, StateValue};
use serde::Serialize;
use tracing::instrument;

use super::aws_error;
use crate::error::{Error, Result};

/// A metric alarm at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmState {
    /// Alarm name.
    pub name: String,
    /// Alarm ARN.
    pub arn: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// CloudWatch's reason for the state.
    pub reason: String,
    /// CloudWatch's machine-readable reason (JSON text with `recentDatapoints`), if any.
    pub reason_data: Option<String>,
    /// When the state last changed, in epoch seconds.
    pub state_updated_epoch: Option<f64>,
    /// Metric namespace.
    pub namespace: String,
    /// Metric name.
    pub metric: String,
    /// Metric dimensions.
    pub dimensions: BTreeMap<String, String>,
    /// Threshold.
    pub threshold: Option<f64>,
    /// Comparison operator, e.g. `GreaterThanThreshold`.
    pub comparison: String,
    /// The alarm's tags (filled by [`CloudWatchAlarms::describe`] and [`CloudWatchAlarms::tagged`]).
    pub tags: BTreeMap<String, String>,
}

impl AlarmState {
    /// The newest datapoint CloudWatch evaluated, from `reason_data`, if it says.
    pub fn latest_datapoint(&self) -> Option<f64> {
        let data: serde_json::Value = serde_json::from_str(self.reason_data.as_deref()?).ok()?;
        data["recentDatapoints"].as_array()?.last()?.as_f64()
    }
}

/// A composite alarm at one moment: a rule over other alarms, with no metric, threshold or
/// datapoints of its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompositeAlarmState {
    /// Alarm name.
    pub name: String,
    /// Alarm ARN.
    pub arn: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// The alarm rule, e.g. `ALARM(cpu-high) OR ALARM(latency-high)`.
    pub rule: String,
    /// The alarm's tags.
    pub tags: BTreeMap<String, String>,
}

/// A CloudWatch alarm of either kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alarm {
    /// A metric alarm (one metric or a math expression against a threshold, or an anomaly band).
    Metric(AlarmState),
    /// A composite alarm.
    Composite(CompositeAlarmState),
}

/// Reads CloudWatch alarms through the SDK.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarms {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarms {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        CloudWatchAlarms {
            client: aws_sdk_cloudwatch::Client::new(config),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_cloudwatch::Client {
        &self.client
    }

    /// Describe one metric alarm by name, with its tags; [`Error::NotFound`] if there is none (a
    /// composite alarm of that name is not a metric alarm).
    #[instrument(skip(self), err)]
    pub async fn describe(&self, name: &str) -> Result<AlarmState> {
        match self.describe_any(name).await? {
            Alarm::Metric(state) => Ok(state),
            Alarm::Composite(_) => Err(Error::NotFound {
                kind: "CloudWatch metric alarm",
                name: name.to_string(),
            }),
        }
    }

    /// Describe one alarm of either kind by name, with its tags; [`Error::NotFound`] if there is
    /// neither a metric nor a composite alarm of that name.
    #[instrument(skip(self), err)]
    pub async fn describe_any(&self, name: &str) -> Result<Alarm> {
        let answer = self
            .client
            .describe_alarms()
            .alarm_names(name)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(|e| aws_error("cloudwatch", "DescribeAlarms", e))?;
        if let Some(alarm) = answer.metric_alarms().first() {
            let mut state = alarm_state(alarm);
            state.tags = self.tags(&state.arn).await?;
            return Ok(Alarm::Metric(state));
        }
        let alarm = answer
            .composite_alarms()
            .first()
            .ok_or_else(|| Error::NotFound {
                kind: "CloudWatch alarm",
                name: name.to_string(),
            })?;
        let mut state = composite_state(alarm);
        state.tags = self.tags(&state.arn).await?;
        Ok(Alarm::Composite(state))
    }

    /// The current state of each named metric alarm (up to 100 names, one call), without tags;
    /// names CloudWatch does not know are left out.
    #[instrument(skip(self, names), fields(count = names.len()), err)]
    pub async fn states(&self, names: &[String]) -> Result<Vec<AlarmState>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self
            .client
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .max_records(100)
            .send()
            .await
            .map_err(|e| aws_error("cloudwatch", "DescribeAlarms", e))?;
        Ok(answer.metric_alarms().iter().map(alarm_state).collect())
    }

    /// Every metric alarm that carries tag `tag_key` (only those in ALARM if `only_in_alarm`),
    /// with its tags.
    #[instrument(skip(self), err)]
    pub async fn tagged(&self, tag_key: &str, only_in_alarm: bool) -> Result<Vec<AlarmState>> {
        let mut found = Vec::new();
        let mut next = None;
        loop {
            let answer = self
                .client
                .describe_alarms()
                .set_state_value(only_in_alarm.then_some(StateValue::Alarm))
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| aws_error("cloudwatch", "DescribeAlarms", e))?;
            for alarm in answer.metric_alarms() {
                let mut state = alarm_state(alarm);
                state.tags = self.tags(&state.arn).await?;
                if state.tags.contains_key(tag_key) {
                    found.push(state);
                }
            }
            next = answer.next_token().map(String::from);
            if next.is_none() {
                return Ok(found);
            }
        }
    }

    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let answer = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| aws_error("cloudwatch", "ListTagsForResource", e))?;
        Ok(answer
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect())
    }
}

fn alarm_state(alarm: &MetricAlarm) -> AlarmState {
    AlarmState {
        name: alarm.alarm_name().unwrap_or_default().to_string(),
        arn: alarm.alarm_arn().unwrap_or_default().to_string(),
        state: alarm
            .state_value()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: alarm.state_reason().unwrap_or_default().to_string(),
        reason_data: alarm.state_reason_data().map(String::from),
        state_updated_epoch: alarm.state_updated_timestamp().map(|t| t.as_secs_f64()),
        namespace: alarm.namespace().unwrap_or_default().to_string(),
        metric: alarm.metric_name().unwrap_or_default().to_string(),
        dimensions: alarm
            .dimensions()
            .iter()
            .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
            .collect(),
        threshold: alarm.threshold(),
        comparison: alarm
            .comparison_operator()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        tags: BTreeMap::new(),
    }
}

fn composite_state(alarm: &CompositeAlarm) -> CompositeAlarmState {
    CompositeAlarmState {
        name: alarm.alarm_name().unwrap_or_default().to_string(),
        arn: alarm.alarm_arn().unwrap_or_default().to_string(),
        state: alarm
            .state_value()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        rule: alarm.alarm_rule().unwrap_or_default().to_string(),
        tags: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_datapoint_comes_from_the_reason_data() {
        let alarm = AlarmState {
            name: "a".into(),
            arn: "arn".into(),
            state: "ALARM".into(),
            reason: String::new(),
            reason_data: Some(
                r#"{"version":"1.0","recentDatapoints":[91.5,96.25],"threshold":90.0}"#.into(),
            ),
            state_updated_epoch: None,
            namespace: "AWS/EC2".into(),
            metric: "CPUUtilization".into(),
            dimensions: BTreeMap::new(),
            threshold: Some(90.0),
            comparison: "GreaterThanThreshold".into(),
            tags: BTreeMap::new(),
        };
        assert_eq!(alarm.latest_datapoint(), Some(96.25));
        assert_eq!(
            AlarmState {
                reason_data: Some("not json".into()),
                ..alarm
            }
            .latest_datapoint(),
            None
        );
    }
}
