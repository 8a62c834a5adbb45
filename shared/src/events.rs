//! Event types that `aws_lambda_events` lacks, and telling an event from a chat command.
//!
//! The detail types mirror what EventBridge delivers for ECR pushes, ECS deployment state changes and
//! Auto Scaling launch lifecycle actions; the samples in `events/` are round-tripped in tests.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An event whose shape is not what its trigger promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The payload is neither an EventBridge event, an alarm action nor a chat command.
    #[error("unrecognised payload: {0}")]
    Unrecognised(String),
    /// An EventBridge event whose detail does not fit the type named by its `detail-type`.
    #[error("malformed `{detail_type}` event: {reason}")]
    Malformed {
        /// The event's `detail-type`.
        detail_type: String,
        /// What does not fit, naming the field.
        reason: String,
    },
}

/// What a function was invoked with.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An EventBridge event (has `detail-type` and `source`).
    Event {
        /// Its `detail-type`, e.g. `ECR Image Action`.
        detail_type: String,
        /// Its `source`, e.g. `aws.ecr`.
        source: String,
        /// The whole event, for [`parse_event`].
        raw: Value,
    },
    /// A CloudWatch alarm invoking the function directly as its action (has `alarmData`).
    AlarmAction(Value),
    /// A chat command (has `command`), for [`crate::command::CommandSet::parse`].
    Command(Value),
    /// ECS calling a lifecycle hook of a blue/green, canary or linear deployment (has
    /// `executionId` and `lifecycleStage`; developer guide, "Lambda hooks for Amazon ECS service
    /// deployments").
    LifecycleHook(Value),
}

/// The answer of a function that ECS invoked as a lifecycle hook but that is not one.
pub fn not_a_lifecycle_hook(function: &str) -> EventError {
    EventError::Unrecognised(format!(
        "{function} is not an ECS lifecycle hook (blue-green-swapper is); point the service's lifecycleHooks at blue-green-swapper"
    ))
}

/// Tell what kind of payload arrived, without judging its details yet.
pub fn classify(payload: Value) -> Result<Incoming, EventError> {
    let Some(object) = payload.as_object() else {
        return Err(EventError::Unrecognised(
            "the payload is not a JSON object".into(),
        ));
    };
    if let Some(detail_type) = object.get("detail-type") {
        let detail_type = detail_type
            .as_str()
            .ok_or_else(|| EventError::Unrecognised("`detail-type` is not a string".into()))?
            .to_string();
        let source = object
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok(Incoming::Event {
            detail_type,
            source,
            raw: payload,
        });
    }
    if object.contains_key("alarmData") {
        return Ok(Incoming::AlarmAction(payload));
    }
    if object.contains_key("command") {
        return Ok(Incoming::Command(payload));
    }
    if object.contains_key("executionId") && object.contains_key("lifecycleStage") {
        return Ok(Incoming::LifecycleHook(payload));
    }
    Err(EventError::Unrecognised(
        "expected an EventBridge event (with `detail-type`), a CloudWatch alarm action (with `alarmData`), \
         a chat command (with `command`) or an ECS lifecycle hook call (with `executionId` and `lifecycleStage`)"
            .into(),
    ))
}

/// Deserialize an EventBridge event with a typed detail, naming the field that does not fit.
pub fn parse_event<T>(raw: &Value) -> Result<EventBridgeEvent<T>, EventError>
where
    T: Serialize + DeserializeOwned,
{
    serde_json::from_value(raw.clone()).map_err(|e| EventError::Malformed {
        detail_type: raw
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string(),
        reason: e.to_string(),
    })
}

/// When an EventBridge event happened (its `time`), or `fallback` when it carries none. Decisions
/// use the event's own time, so a redelivered event decides as the first delivery did.
pub fn event_time(raw: &Value, fallback: u64) -> Result<u64, EventError> {
    let event = parse_event::<Value>(raw)?;
    Ok(event
        .time
        .map(|t| t.timestamp().max(0) as u64)
        .unwrap_or(fallback))
}

/// The answer to an EventBridge event a function does not handle.
pub fn ignored_event(function: &str, detail_type: &str) -> Value {
    serde_json::json!({
        "status": "ignored",
        "reason": format!("{function} does not handle `{detail_type}` events"),
    })
}

/// Detail of `ECR Image Action` (source `aws.ecr`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    /// `SUCCESS` or `FAILURE`.
    pub result: String,
    /// Repository name, e.g. `web`.
    pub repository_name: String,
    /// Digest of the image, `sha256:<64 hex>`.
    pub image_digest: String,
    /// `PUSH` or `DELETE`.
    pub action_type: String,
    /// The tag pushed; absent for a push by digest only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

/// `detail-type` of [`EcrImageAction`].
pub const ECR_IMAGE_ACTION: &str = "ECR Image Action";

/// Detail of `ECS Deployment State Change` (source `aws.ecs`); the service ARN is in `resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsDeploymentStateChange {
    /// `INFO` or `ERROR`.
    pub event_type: String,
    /// `SERVICE_DEPLOYMENT_IN_PROGRESS`, `SERVICE_DEPLOYMENT_COMPLETED` or `SERVICE_DEPLOYMENT_FAILED`.
    pub event_name: String,
    /// The deployment, e.g. `ecs-svc/123`.
    pub deployment_id: String,
    /// When ECS updated it (ISO 8601).
    pub updated_at: String,
    /// ECS's reason, e.g. the circuit breaker's.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `detail-type` of [`EcsDeploymentStateChange`].
pub const ECS_DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";

/// Detail of `EC2 Instance-launch Lifecycle Action` (source `aws.autoscaling`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleAction {
    /// Token to complete the action with.
    pub lifecycle_action_token: String,
    /// The group.
    pub auto_scaling_group_name: String,
    /// The hook.
    pub lifecycle_hook_name: String,
    /// The instance held at the hook.
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: String,
    /// `autoscaling:EC2_INSTANCE_LAUNCHING` for launches.
    pub lifecycle_transition: String,
    /// Free text set on the hook, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_metadata: Option<String>,
    /// Where the instance comes from, e.g. `EC2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Where it goes, e.g. `AutoScalingGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// `detail-type` of [`LifecycleAction`] for launches.
pub const LAUNCH_LIFECYCLE_ACTION: &str = "EC2 Instance-launch Lifecycle Action";

/// Detail of `CloudWatch Alarm State Change` (source `aws.cloudwatch`). Only what the functions
/// use; the alarm itself is read back from CloudWatch rather than trusted from the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStateChange {
    /// The alarm's name.
    pub alarm_name: String,
    /// The new state.
    pub state: AlarmStateDetail,
    /// The state before, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<AlarmStateDetail>,
    /// The alarm's configuration as the event states it: `metrics` for a metric alarm,
    /// `alarmRule` for a composite alarm. Kept for the round trip, not trusted: the alarm is read
    /// back from CloudWatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
}

/// One state of an alarm in an `AlarmStateChange`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStateDetail {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub value: String,
    /// CloudWatch's reason.
    #[serde(default)]
    pub reason: String,
    /// JSON text with the datapoints, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_data: Option<String>,
    /// When (ISO 8601).
    pub timestamp: String,
}

/// `detail-type` of [`AlarmStateChange`].
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
/// `detail-type` of an EventBridge schedule.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
/// `source` of the events EventBridge's schedules send. EventBridge lets no one else put events
/// with an `aws.` source, so a [`SCHEDULED_EVENT`] from any other source was sent by a person or a
/// script (anyone who may invoke the function can send that shape). The converse does not hold: a
/// direct invoke can carry `aws.events` too, which is why an event's time is also bounded by the
/// invocation's clock ([`bounded_event_time`]).
pub const SCHEDULE_SOURCE: &str = "aws.events";

/// Refuse a [`SCHEDULED_EVENT`] whose `source` is not [`SCHEDULE_SOURCE`], before any AWS call:
/// only the schedule starts what `starts` names (e.g. `the reconcile`).
pub fn refuse_unscheduled(source: &str, starts: &str) -> crate::Result<()> {
    if source == SCHEDULE_SOURCE {
        return Ok(());
    }
    tracing::warn!(
        source,
        "a Scheduled Event not from the schedule was refused"
    );
    Err(crate::Error::Refused(format!(
        "a `{SCHEDULED_EVENT}` from source `{source}` does not start {starts}: only the EventBridge schedule (source `{SCHEDULE_SOURCE}`) does; nothing was read or changed"
    )))
}

/// How far ahead of the invocation's clock an event's own time may be by default, in seconds:
/// clock skew only. EventBridge stamps an event when it happens, before Lambda invokes, and AWS
/// clocks are synchronised to well under a second; an event's time ahead of Lambda's clock by more
/// is a payload someone wrote, and every second accepted is a second taken off a cooldown, a bake
/// or a hold.
pub const DEFAULT_SCHEDULE_LEAD: u64 = 30;

/// An event's own time, refused when it is more than `lead` seconds ahead of the invocation's
/// `clock`: nothing AWS sends comes from the future, and a time taken from the future (a payload
/// anyone who may invoke the function can send) would end waits, bakes, cooldowns and holds early
/// and stamp new ones where real events never reach them.
pub fn bounded_event_time(raw: &Value, clock: u64, lead: u64) -> crate::Result<u64> {
    not_ahead(event_time(raw, clock)?, clock, lead)
}

/// `time` (an event's own, epoch seconds), refused as [`bounded_event_time`] says.
pub fn not_ahead(time: u64, clock: u64, lead: u64) -> crate::Result<u64> {
    if time > clock.saturating_add(lead) {
        tracing::warn!(time, clock, "an event from the future was refused");
        return Err(crate::Error::Refused(format!(
            "the event's time ({}) is {} s after this invocation's clock ({}): AWS sends nothing from the future; not acted on",
            crate::time::iso8601(time),
            time - clock,
            crate::time::iso8601(clock)
        )));
    }
    Ok(time)
}

/// The time an event acts at: its own time when that is later than the invocation's `clock` (by
/// at most `lead`, see [`bounded_event_time`]; a demo plays the schedule ahead), else the clock. An
/// event that arrives late (EventBridge retries for 24 hours, Lambda keeps async events for 6)
/// acts now, so a backlog delivered at once counts as one moment, not as the hour it spans: every
/// cooldown, bake and wait it starts is measured from now.
pub fn acting_time(raw: &Value, clock: u64, lead: u64) -> crate::Result<u64> {
    Ok(bounded_event_time(raw, clock, lead)?.max(clock))
}

/// An alarm invoking a Lambda function directly as its action (the `alarmData` shape).
pub type AlarmAction = aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm<Value, Value>;

/// Parse an alarm action payload, naming the field that does not fit.
pub fn parse_alarm_action(raw: &Value) -> Result<AlarmAction, EventError> {
    serde_json::from_value(raw.clone()).map_err(|e| EventError::Malformed {
        detail_type: "CloudWatch alarm action".into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_scheduled_event_from_aws_events_is_taken_as_the_schedule() {
        assert!(refuse_unscheduled("aws.events", "the tick").is_ok());
        for source in ["chat.forged", "", "aws.events.x", "AWS.EVENTS"] {
            let refused = refuse_unscheduled(source, "the tick")
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains(&format!("from source `{source}` does not start the tick"))
                    && refused.contains("nothing was read or changed"),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_late_event_acts_at_the_clock_and_an_early_one_at_its_own_time() {
        let at = |time: &str| {
            json!({"version": "0", "id": "1", "detail-type": SCHEDULED_EVENT, "source": SCHEDULE_SOURCE,
                   "account": "123456789012", "time": time, "region": "us-east-1", "resources": [], "detail": {}})
        };
        // 2026-11-18T09:00:00Z = 1_794_992_400.
        let nine = at("2026-11-18T09:00:00Z");
        assert_eq!(
            acting_time(&nine, 1_795_000_000, 300).unwrap(),
            1_795_000_000
        );
        assert_eq!(
            acting_time(&nine, 1_794_992_200, 300).unwrap(),
            1_794_992_400
        );
        let ahead = acting_time(&nine, 1_794_990_000, 300).unwrap_err();
        assert_eq!(
            ahead.to_string(),
            "refused: the event's time (2026-11-18T09:00:00Z) is 2400 s after this invocation's clock (2026-11-18T08:20:00Z): AWS sends nothing from the future; not acted on"
        );
        assert!(!ahead.retryable());
        assert_eq!(
            acting_time(&nine, 1_794_990_000, 3_600).unwrap(),
            1_794_992_400
        );
    }

    /// Parse a sample from `events/`, check its detail, and check it serializes back unchanged.
    fn round_trip<T: Serialize + DeserializeOwned>(file: &str) -> EventBridgeEvent<T> {
        let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let raw: Value = serde_json::from_str(&text).unwrap();
        let event: EventBridgeEvent<T> = parse_event(&raw).unwrap();
        let again = serde_json::to_value(&event).unwrap();
        assert_eq!(
            again["detail"], raw["detail"],
            "{file}: detail changed on the round trip"
        );
        assert_eq!(again["detail-type"], raw["detail-type"]);
        event
    }

    #[test]
    fn ecr_push_sample_round_trips() {
        let event = round_trip::<EcrImageAction>("ecr-image-push.json");
        assert_eq!(event.detail_type, ECR_IMAGE_ACTION);
        assert_eq!(event.detail.action_type, "PUSH");
        assert_eq!(event.detail.image_tag.as_deref(), Some("release-42"));
    }

    #[test]
    fn ecs_deployment_state_change_sample_round_trips() {
        let event = round_trip::<EcsDeploymentStateChange>("ecs-deployment-failed.json");
        assert_eq!(event.detail.event_name, "SERVICE_DEPLOYMENT_FAILED");
        assert_eq!(
            event.resources.unwrap()[0],
            "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
        );
    }

    #[test]
    fn ecs_deployment_completed_and_ecr_delete_samples_round_trip() {
        let completed = round_trip::<EcsDeploymentStateChange>("ecs-deployment-completed.json");
        assert_eq!(completed.detail.event_name, "SERVICE_DEPLOYMENT_COMPLETED");
        let deleted = round_trip::<EcrImageAction>("ecr-image-delete.json");
        assert_eq!(deleted.detail.action_type, "DELETE");
    }

    #[test]
    fn launch_lifecycle_action_sample_round_trips() {
        let event = round_trip::<LifecycleAction>("asg-launch-lifecycle-action.json");
        assert_eq!(event.detail.ec2_instance_id, "i-0123456789abcdef0");
        assert_eq!(
            event.detail.lifecycle_transition,
            "autoscaling:EC2_INSTANCE_LAUNCHING"
        );
    }

    #[test]
    fn alarm_state_change_and_alarm_action_samples_parse() {
        let change = round_trip::<AlarmStateChange>("cloudwatch-alarm-state-change.json");
        assert_eq!(change.detail.alarm_name, "workers-cpu-high");
        assert_eq!(change.detail.state.value, "ALARM");
        let raw: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../events/cloudwatch-alarm-action.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        assert!(matches!(
            classify(raw.clone()).unwrap(),
            Incoming::AlarmAction(_)
        ));
        let action = parse_alarm_action(&raw).unwrap();
        assert_eq!(action.alarm_data.alarm_name, "workers-cpu-high");
    }

    #[test]
    fn classify_tells_events_alarm_actions_and_commands_apart() {
        let event =
            classify(json!({"detail-type": "ECR Image Action", "source": "aws.ecr", "detail": {}}))
                .unwrap();
        assert!(
            matches!(event, Incoming::Event { ref detail_type, .. } if detail_type == "ECR Image Action")
        );
        assert!(matches!(
            classify(json!({"alarmData": {}})).unwrap(),
            Incoming::AlarmAction(_)
        ));
        assert!(matches!(
            classify(json!({"command": "help"})).unwrap(),
            Incoming::Command(_)
        ));
        assert!(matches!(
            classify(json!({"executionId": "e", "lifecycleStage": "POST_SCALE_UP"})).unwrap(),
            Incoming::LifecycleHook(_)
        ));
        let error = classify(json!({"hello": "world"})).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("unrecognised payload: expected an EventBridge event"));
        assert_eq!(
            classify(json!([1])).unwrap_err().to_string(),
            "unrecognised payload: the payload is not a JSON object"
        );
    }

    #[test]
    fn a_detail_missing_a_field_names_the_field() {
        let raw = json!({"detail-type": "ECR Image Action", "source": "aws.ecr",
                         "detail": {"result": "SUCCESS", "action-type": "PUSH", "image-digest": "sha256:x"}});
        let error = parse_event::<EcrImageAction>(&raw).unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed `ECR Image Action` event: missing field `repository-name`"
        );
    }
}
