//! blue-green-swapper as ECS's lifecycle hook, for services that ECS deploys itself with its
//! blue/green, canary or linear strategy (developer guide, "Lambda hooks for Amazon ECS service
//! deployments"). ECS invokes the function at the stages the service's
//! `deploymentConfiguration.lifecycleHooks` name; the function gates each stage on the alarms the
//! service names (none in ALARM) and on the health of the new revision's targets, and answers
//! `SUCCEEDED`, `FAILED` (ECS rolls the deployment back) or `IN_PROGRESS` with a `callBackDelay`
//! (ECS calls again), never waiting inside an invocation. A call while ECS rolls back always
//! succeeds: a gate never holds a rollback.
//!
//! Parsing and deciding live here and are pure; observing is in [`crate::observe`], the alerts in
//! [`crate::report`].

use std::collections::BTreeMap;

use ops_core::aws::elbv2::TargetHealth;
use ops_core::events::EventError;
use ops_core::time::{duration_text, parse_duration, utc_text};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::view::AlarmView;

/// On the ECS service: the CloudWatch alarms that must not be in ALARM at any stage
/// (comma-separated names).
pub const HOOK_ALARMS: &str = "ops:hook-alarms";
/// On the ECS service: how long the new revision's targets may take to be healthy from the first
/// call of a stage that checks them (default 15 minutes).
pub const HOOK_HEALTH_TIMEOUT: &str = "ops:hook-health-timeout";
/// Seconds ECS waits before calling again after `IN_PROGRESS` (its default is 30).
pub const CALL_BACK_DELAY: u64 = 30;
/// The `hookDetails` key that carries, between calls of one hook, when it started waiting.
const WAITING_SINCE: &str = "opsWaitingSince";
const DEFAULT_HEALTH_TIMEOUT: u64 = 15 * 60;
/// The stages at which the new revision's tasks run (developer guide, "How Amazon ECS blue/green
/// deployments work": from POST_SCALE_UP "The green service revision has started").
const HEALTH_STAGES: &[&str] = &[
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];

/// What ECS sends a lifecycle hook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookCall {
    /// This hook execution.
    pub execution_id: String,
    /// The stage, e.g. `POST_TEST_TRAFFIC_SHIFT`.
    pub lifecycle_stage: String,
    /// The service deployment's ARN.
    pub resource_arn: String,
    /// The deployment's details.
    pub execution_details: ExecutionDetails,
    /// Data from the service's hook configuration and from this hook's earlier `IN_PROGRESS`.
    #[serde(default)]
    pub hook_details: Option<Map<String, Value>>,
}

/// `executionDetails` of a hook call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDetails {
    /// The service's ARN.
    pub service_arn: String,
    /// The service revision being deployed (green).
    pub target_service_revision_arn: String,
    /// Test traffic by service revision ARN, in percent.
    #[serde(default)]
    pub test_traffic_weights: BTreeMap<String, f64>,
    /// Production traffic by service revision ARN, in percent.
    #[serde(default)]
    pub production_traffic_weights: BTreeMap<String, f64>,
}

/// Read a hook call, naming the field that does not fit.
pub fn parse(raw: &Value) -> Result<HookCall, EventError> {
    serde_json::from_value(raw.clone()).map_err(|e| EventError::Malformed {
        detail_type: "ECS lifecycle hook".into(),
        reason: e.to_string(),
    })
}

impl HookCall {
    /// Whether ECS is rolling back: "There is no dedicated ROLLBACK lifecycle stage ... check the
    /// productionTrafficWeights. If the targetServiceRevisionArn (green revision) has a weight of
    /// 0% and the other revision has 100%, the deployment is rolling back" (developer guide,
    /// "Lambda hooks for Amazon ECS service deployments").
    pub fn rolling_back(&self) -> bool {
        let details = &self.execution_details;
        let weights = &details.production_traffic_weights;
        matches!(
            self.lifecycle_stage.as_str(),
            "TEST_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT"
        ) && weights.get(&details.target_service_revision_arn) == Some(&0.0)
            && weights
                .iter()
                .any(|(arn, w)| *arn != details.target_service_revision_arn && *w >= 100.0)
    }

    /// The service deployment's id (the ARN's last part).
    pub fn deployment_id(&self) -> &str {
        self.resource_arn.rsplit('/').next().unwrap_or_default()
    }

    /// When this hook started waiting, as its earlier `IN_PROGRESS` recorded.
    pub fn waiting_since(&self) -> Option<u64> {
        self.hook_details.as_ref()?.get(WAITING_SINCE)?.as_u64()
    }
}

/// The gates a service names in its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookGates {
    /// Alarms that must not be in ALARM.
    pub alarms: Vec<String>,
    /// How long the new revision's targets may take to be healthy, seconds.
    pub health_timeout: u64,
}

impl HookGates {
    /// The gates of a service with `tags`, or why they cannot be read.
    pub fn of(tags: &BTreeMap<String, String>) -> Result<Self, String> {
        let alarms = tags
            .get(HOOK_ALARMS)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let health_timeout = match tags.get(HOOK_HEALTH_TIMEOUT) {
            Some(text) => parse_duration(text, 60, 24 * 3600)
                .map_err(|e| format!("tag `{HOOK_HEALTH_TIMEOUT}` = `{text}`: {e}"))?,
            None => DEFAULT_HEALTH_TIMEOUT,
        };
        Ok(HookGates {
            alarms,
            health_timeout,
        })
    }
}

/// What a hook call observed.
#[derive(Debug, Clone, PartialEq)]
pub struct HookView {
    /// `cluster/service`.
    pub service: String,
    /// The revision being deployed, `family:revision`.
    pub target: String,
    /// The service's gates, or why they cannot be used (also: a service outside the managed
    /// clusters).
    pub gates: Result<HookGates, String>,
    /// The gating alarms that exist.
    pub alarms: Vec<AlarmView>,
    /// Gating alarms CloudWatch does not know.
    pub missing_alarms: Vec<String>,
    /// The targets of the new revision's target groups.
    pub targets: Vec<TargetHealth>,
    /// The service's desired task count.
    pub desired: i32,
}

/// The hook's answer to ECS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStatus {
    /// The stage may go on.
    Succeeded,
    /// ECS rolls the deployment back.
    Failed,
    /// ECS calls again after [`CALL_BACK_DELAY`].
    InProgress,
}

impl HookStatus {
    /// As ECS reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            HookStatus::Succeeded => "SUCCEEDED",
            HookStatus::Failed => "FAILED",
            HookStatus::InProgress => "IN_PROGRESS",
        }
    }
}

/// A gate decision: the answer, why, and (while waiting) since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDecision {
    /// The answer.
    pub status: HookStatus,
    /// Why, for people.
    pub reason: String,
    /// While `IN_PROGRESS`: when the wait began.
    pub waiting_since: Option<u64>,
}

impl HookDecision {
    fn done(status: HookStatus, reason: String) -> Self {
        HookDecision {
            status,
            reason,
            waiting_since: None,
        }
    }
}

/// The gate decision for `call` at `now`, from what was observed: a pure function.
pub fn decide(call: &HookCall, view: &HookView, now: u64) -> HookDecision {
    let stage = &call.lifecycle_stage;
    if call.rolling_back() {
        return HookDecision::done(
            HookStatus::Succeeded,
            format!(
                "ECS is rolling {} back at {stage}: a gate never holds a rollback",
                view.target
            ),
        );
    }
    let gates = match &view.gates {
        Ok(gates) => gates,
        Err(problem) => return HookDecision::done(HookStatus::Failed, problem.clone()),
    };
    if !view.missing_alarms.is_empty() {
        return HookDecision::done(
            HookStatus::Failed,
            format!(
                "alarms named in `{HOOK_ALARMS}` do not exist, so they cannot gate {}: {}",
                view.target,
                view.missing_alarms.join(", ")
            ),
        );
    }
    let firing: Vec<String> = view
        .alarms
        .iter()
        .filter(|a| a.state == "ALARM")
        .map(|a| format!("{} ({})", a.name, a.reason))
        .collect();
    if !firing.is_empty() {
        return HookDecision::done(
            HookStatus::Failed,
            format!("alarm in ALARM at {stage}: {}", firing.join("; ")),
        );
    }
    if !HEALTH_STAGES.contains(&stage.as_str()) {
        return HookDecision::done(
            HookStatus::Succeeded,
            format!("no gating alarm in ALARM at {stage}"),
        );
    }
    let healthy = view.targets.iter().filter(|t| t.state == "healthy").count();
    let want = view.desired.max(1) as usize;
    let health = format!(
        "{} {healthy}/{want} healthy{}",
        view.target,
        match view.targets.iter().filter(|t| t.state != "healthy").count() {
            0 => String::new(),
            n => format!(", {n} not healthy"),
        }
    );
    if healthy >= want && healthy == view.targets.len() {
        return HookDecision::done(
            HookStatus::Succeeded,
            format!("{health} and no gating alarm in ALARM at {stage}"),
        );
    }
    let since = call.waiting_since().unwrap_or(now);
    let deadline = since + gates.health_timeout;
    if now >= deadline {
        return HookDecision::done(
            HookStatus::Failed,
            format!(
                "{} was not healthy within {} at {stage} ({health})",
                view.target,
                duration_text(gates.health_timeout)
            ),
        );
    }
    HookDecision {
        status: HookStatus::InProgress,
        reason: format!(
            "waiting for {health} at {stage}; fails at {}",
            utc_text(deadline)
        ),
        waiting_since: Some(since),
    }
}

/// The JSON ECS reads: `hookStatus`, and while waiting `callBackDelay` and the `hookDetails` it
/// passes back (what it sent, with the wait's start).
pub fn answer(call: &HookCall, decision: &HookDecision) -> Value {
    let mut body = json!({
        "hookStatus": decision.status.as_str(),
        "reason": decision.reason,
    });
    if let (HookStatus::InProgress, Some(object)) = (decision.status, body.as_object_mut()) {
        let mut details = call.hook_details.clone().unwrap_or_default();
        if let Some(since) = decision.waiting_since {
            details.insert(WAITING_SINCE.into(), json!(since));
        }
        object.insert("callBackDelay".into(), json!(CALL_BACK_DELAY));
        object.insert("hookDetails".into(), Value::Object(details));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREEN: &str =
        "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/9313423515462893900";
    const BLUE: &str =
        "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/1920498462936580504";

    /// A call as the developer guide's "Lambda hooks for Amazon ECS service deployments" shows it.
    fn call(stage: &str, production: &[(&str, f64)], details: Option<Value>) -> HookCall {
        let mut raw = json!({
            "executionId": "f4fcae0f-9bec-41c6-ba87-0eaa0cef8af5",
            "lifecycleStage": stage,
            "resourceArn": "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/EZe5RNVLH6PPzHXINuP28",
            "executionDetails": {
                "serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service",
                "targetServiceRevisionArn": GREEN,
                "testTrafficWeights": {},
                "productionTrafficWeights": production.iter().map(|(a, w)| (a.to_string(), json!(w))).collect::<Map<_, _>>(),
            }
        });
        if let Some(details) = details {
            raw["hookDetails"] = details;
        }
        parse(&raw).unwrap()
    }

    fn view(healthy: usize, alarm: &str) -> HookView {
        HookView {
            service: "my-cluster/my-service".into(),
            target: "web:3".into(),
            gates: Ok(HookGates {
                alarms: vec!["web-5xx".into()],
                health_timeout: 600,
            }),
            alarms: vec![AlarmView {
                name: "web-5xx".into(),
                state: alarm.into(),
                reason: "Threshold Crossed".into(),
            }],
            missing_alarms: vec![],
            targets: (0..2)
                .map(|i| TargetHealth {
                    id: format!("10.0.0.{i}"),
                    port: Some(80),
                    state: if i < healthy { "healthy" } else { "initial" }.into(),
                    reason: None,
                })
                .collect(),
            desired: 2,
        }
    }

    #[test]
    fn a_stage_with_healthy_targets_and_quiet_alarms_succeeds() {
        let decided = decide(
            &call("POST_TEST_TRAFFIC_SHIFT", &[], None),
            &view(2, "OK"),
            100,
        );
        assert_eq!(decided.status, HookStatus::Succeeded);
        assert_eq!(
            answer(&call("POST_TEST_TRAFFIC_SHIFT", &[], None), &decided),
            json!({"hookStatus": "SUCCEEDED", "reason": "web:3 2/2 healthy and no gating alarm in ALARM at POST_TEST_TRAFFIC_SHIFT"})
        );
    }

    #[test]
    fn an_alarm_fails_the_stage_so_ecs_rolls_back() {
        let shifting = call(
            "PRODUCTION_TRAFFIC_SHIFT",
            &[(GREEN, 10.0), (BLUE, 90.0)],
            None,
        );
        let decided = decide(&shifting, &view(2, "ALARM"), 100);
        assert_eq!(decided.status, HookStatus::Failed);
        assert_eq!(
            decided.reason,
            "alarm in ALARM at PRODUCTION_TRAFFIC_SHIFT: web-5xx (Threshold Crossed)"
        );
    }

    #[test]
    fn unhealthy_targets_wait_with_in_progress_until_the_timeout_counted_from_the_first_call() {
        let first = call("POST_SCALE_UP", &[], Some(json!({"S3_BUCKET_NAME": "b"})));
        let waiting = decide(&first, &view(1, "OK"), 1_000);
        assert_eq!(waiting.status, HookStatus::InProgress);
        let body = answer(&first, &waiting);
        assert_eq!(body["callBackDelay"], 30);
        assert_eq!(
            body["hookDetails"],
            json!({"S3_BUCKET_NAME": "b", "opsWaitingSince": 1000})
        );
        let again = call("POST_SCALE_UP", &[], Some(body["hookDetails"].clone()));
        assert_eq!(
            decide(&again, &view(1, "OK"), 1_599).status,
            HookStatus::InProgress
        );
        let late = decide(&again, &view(1, "OK"), 1_600);
        assert_eq!(late.status, HookStatus::Failed);
        assert_eq!(
            late.reason,
            "web:3 was not healthy within 10 minutes at POST_SCALE_UP (web:3 1/2 healthy, 1 not healthy)"
        );
        assert_eq!(
            decide(&again, &view(2, "OK"), 1_599).status,
            HookStatus::Succeeded
        );
    }

    #[test]
    fn a_rollback_is_never_held_even_with_an_alarm_firing() {
        // The developer guide's rollback example: green 0, blue 100 at PRODUCTION_TRAFFIC_SHIFT.
        let back = call(
            "PRODUCTION_TRAFFIC_SHIFT",
            &[(GREEN, 0.0), (BLUE, 100.0)],
            None,
        );
        assert!(back.rolling_back());
        assert_eq!(
            decide(&back, &view(0, "ALARM"), 100).status,
            HookStatus::Succeeded
        );
        // The same weights before the first production shift are not a rollback.
        let before = call(
            "PRE_PRODUCTION_TRAFFIC_SHIFT",
            &[(GREEN, 0.0), (BLUE, 100.0)],
            None,
        );
        assert!(!before.rolling_back());
    }

    #[test]
    fn missing_alarms_and_unusable_gates_fail_rather_than_pass_unchecked() {
        let mut missing = view(2, "OK");
        missing.alarms.clear();
        missing.missing_alarms = vec!["web-5xx".into()];
        let stage = call("POST_SCALE_UP", &[], None);
        assert_eq!(decide(&stage, &missing, 1).status, HookStatus::Failed);
        let mut outside = view(2, "OK");
        outside.gates = Err("not managed".into());
        assert_eq!(decide(&stage, &outside, 1).reason, "not managed");
        assert_eq!(
            HookGates::of(&BTreeMap::from([(
                HOOK_HEALTH_TIMEOUT.to_string(),
                "soon".to_string()
            )]))
            .unwrap_err(),
            format!(
                "tag `{HOOK_HEALTH_TIMEOUT}` = `soon`: {}",
                parse_duration("soon", 60, 86_400).unwrap_err()
            )
        );
    }

    #[test]
    fn a_malformed_call_names_the_field() {
        let error =
            parse(&json!({"executionId": "e", "lifecycleStage": "POST_SCALE_UP"})).unwrap_err();
        assert!(error.to_string().contains("resourceArn"), "{error}");
    }
}
