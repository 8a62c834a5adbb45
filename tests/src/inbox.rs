//! Read what ops would receive: alerts delivered from the SNS topic to an SQS queue.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::Value;

/// One alert as it arrived on the queue.
#[derive(Debug, Clone)]
pub struct ReceivedAlert {
    /// The SNS subject.
    pub subject: Option<String>,
    /// The chat body (the `default` body of the SNS message), parsed.
    pub chat: Value,
    /// SNS message attributes as name → string value.
    pub attributes: BTreeMap<String, String>,
}

/// An SQS queue subscribed to the alert topic.
pub struct AlertInbox {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl AlertInbox {
    /// Read from `queue_url` with clients built from `config`.
    pub fn new(config: &SdkConfig, queue_url: impl Into<String>) -> Self {
        AlertInbox {
            client: aws_sdk_sqs::Client::new(config),
            queue_url: queue_url.into(),
        }
    }

    /// Create the topic `topic`, a queue `queue` subscribed to it, and an inbox on that queue.
    /// Returns the topic ARN and the inbox.
    pub async fn subscribe_new(
        config: &SdkConfig,
        topic: &str,
        queue: &str,
    ) -> (String, AlertInbox) {
        let sns = aws_sdk_sns::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let topic_arn = sns
            .create_topic()
            .name(topic)
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .expect("topic arn");
        let queue_url = sqs
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("url");
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe");
        (topic_arn, AlertInbox::new(config, queue_url))
    }

    /// Wait until `count` alerts have arrived (or `within` passes) and return those that did.
    pub async fn receive(&self, count: usize, within: Duration) -> Vec<ReceivedAlert> {
        let deadline = Instant::now() + within;
        let mut alerts = Vec::new();
        while alerts.len() < count && Instant::now() < deadline {
            let answer = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive from the alert queue");
            for message in answer.messages() {
                alerts.push(parse_envelope(message.body().unwrap_or_default()));
                if let Some(handle) = message.receipt_handle() {
                    let _ = self
                        .client
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
        alerts
    }
}

/// The SNS → SQS envelope: `{"Type": "Notification", "Subject", "Message", "MessageAttributes"}`.
fn parse_envelope(body: &str) -> ReceivedAlert {
    let envelope: Value = serde_json::from_str(body).expect("SNS envelope is JSON");
    let message = envelope["Message"].as_str().unwrap_or_default();
    ReceivedAlert {
        subject: envelope["Subject"].as_str().map(String::from),
        chat: serde_json::from_str(message).unwrap_or(Value::String(message.to_string())),
        attributes: envelope["MessageAttributes"]
            .as_object()
            .map(|attrs| {
                attrs
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v["Value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
