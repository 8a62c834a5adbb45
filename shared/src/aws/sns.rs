//! SNS adapter: publish an [`Alert`] to the ops topic.
//!
//! One message with `MessageStructure=json`: the `default` body is the custom-notification JSON of
//! Amazon Q Developer in chat applications (what chat and SQS subscribers get), the `email` body is
//! plain text. Message attributes `severity`, `function`, `resource` and `event_type` let ops filter
//! subscriptions.

use aws_config::SdkConfig;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;
use tracing::{info, instrument};

use super::aws_error;
use crate::alert::{Alert, AlertSink};
use crate::error::Result;

/// Publishes alerts to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsAlerts {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsAlerts {
    /// Build the publisher for `topic_arn` from the function's shared SDK config.
    pub fn new(config: &SdkConfig, topic_arn: impl Into<String>) -> Self {
        SnsAlerts {
            client: aws_sdk_sns::Client::new(config),
            topic_arn: topic_arn.into(),
        }
    }

    /// The message body: per-protocol bodies as SNS expects with `MessageStructure=json`.
    pub fn message_body(alert: &Alert) -> String {
        json!({
            "default": alert.chatbot_json().to_string(),
            "email": alert.email_text(),
        })
        .to_string()
    }
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type is set, the only required field")
}

impl AlertSink for SnsAlerts {
    #[instrument(skip(self, alert), fields(event_type = %alert.event_type, resource = %alert.resource), err)]
    async fn publish(&self, alert: &Alert) -> Result<()> {
        let sent = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(alert.subject())
            .message_structure("json")
            .message(Self::message_body(alert))
            .message_attributes("severity", attribute(alert.severity.as_str()))
            .message_attributes("function", attribute(&alert.function))
            .message_attributes("resource", attribute(&alert.resource))
            .message_attributes("event_type", attribute(&alert.event_type))
            .send()
            .await
            .map_err(|e| aws_error("sns", "Publish", e))?;
        info!(
            message_id = sent.message_id().unwrap_or_default(),
            severity = alert.severity.as_str(),
            "alert published"
        );
        Ok(())
    }
}
