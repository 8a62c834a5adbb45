//! CloudWatch adapter: read alarms (the scaler's trigger, the swapper's gate).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
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
    /// When the state last changed, in epoch seconds.
    pub state_updated_epoch: Option<f64>,
    /// Metric namespace and name.
    pub namespace: String,
    /// Metric name.
    pub metric: String,
    /// Metric dimensions.
    pub dimensions: BTreeMap<String, String>,
    /// Threshold and how it is compared, e.g. `GreaterThanThreshold`.
    pub threshold: Option<f64>,
    /// Comparison operator.
    pub comparison: String,
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

    /// Describe one metric alarm by name; [`Error::NotFound`] if there is none.
    #[instrument(skip(self), err)]
    pub async fn describe(&self, name: &str) -> Result<AlarmState> {
        let answer = self
            .client
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(|e| aws_error("cloudwatch", "DescribeAlarms", e))?;
        let alarm = answer
            .metric_alarms()
            .first()
            .ok_or_else(|| Error::NotFound {
                kind: "CloudWatch alarm",
                name: name.to_string(),
            })?;
        Ok(AlarmState {
            name: alarm.alarm_name().unwrap_or_default().to_string(),
            arn: alarm.alarm_arn().unwrap_or_default().to_string(),
            state: alarm
                .state_value()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: alarm.state_reason().unwrap_or_default().to_string(),
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
        })
    }
}
