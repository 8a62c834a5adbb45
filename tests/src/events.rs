//! EventBridge events as AWS would deliver them, at a chosen time, for tests and the demo.

use ops_core::time::iso8601;
use serde_json::{json, Value};

use crate::fixtures::ACCOUNT;

/// A `CloudWatch Alarm State Change` of `alarm` to `state` at `at` (epoch seconds).
pub fn alarm_state_change(alarm: &str, state: &str, at: u64) -> Value {
    json!({
        "version": "0", "id": format!("{alarm}-{at}"), "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": ACCOUNT, "time": iso8601(at), "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}")],
        "detail": {"alarmName": alarm, "state": {"value": state, "reason": "Threshold Crossed", "timestamp": iso8601(at)}}
    })
}

/// An EventBridge `Scheduled Event` at `at`.
pub fn scheduled(at: u64) -> Value {
    json!({
        "version": "0", "id": format!("tick-{at}"), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": ACCOUNT, "time": iso8601(at), "region": "us-east-1", "resources": [], "detail": {}
    })
}
