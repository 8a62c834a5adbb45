//! blue-green-swapper as ECS's lifecycle hook, for services that ECS deploys itself with its
//! blue/green, canary or linear strategy (developer guide, "Lambda hooks for Amazon ECS service
//! deployments"). ECS invokes the function at the stages the service's
//! `deploymentConfiguration.lifecycleHooks` name; the function gates each stage on the alarms the
//! service names (none in ALARM) and on the health of the new revision's targets, and answers
//! `SUCCEEDED`, `FAILED` (ECS rolls the deployment back) or `IN_PROGRESS` with a `callBackDelay`
//! (ECS calls again), never waiting inside an invocation. At `POST_TEST_TRAFFIC_SHIFT` a service
//! may also name a test URL that must pass ([`crate::test_url`]). A call while ECS rolls back always
//! succeeds: a gate never holds a rollback.
//!
//! Parsing and deciding live here and are pure; observing is in [`crate::observe`], the alerts in
//! [`crate::report`].

use std::collections::BTreeMap;

use ops_core::aws::ecs::cluster_and_service_of;
use ops_core::aws::elbv2::TargetHealth;
use ops_core::events::EventError;
use ops_core::probe::Outcome;
use ops_core::time::{duration_text, parse_duration, utc_text};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::test_url::{TestUrl, HOOK_TEST_URL, TEST_STAGE};
use crate::view::AlarmView;

/// On the ECS service: the CloudWatch alarms that must not be in ALARM at any stage
/// (comma-separated names).
pub const HOOK_ALARMS: &str = "ops:hook-alarms";
/// On the ECS service: how long the new revision's targets may take to be healthy, and its test URL
/// to pass, from the first call of a stage that found one failing (default 15 minutes; a pass
/// ends that wait).
pub const HOOK_HEALTH_TIMEOUT: &str = "ops:hook-health-timeout";
/// On the ECS service: the stages at which a person releases the deployment from chat
/// (comma-separated, e.g. `POST_TEST_TRAFFIC_SHIFT`): once every other gate passes there, the hook
/// answers `IN_PROGRESS` until `promote` (then `SUCCEEDED`) or `abort` (ECS rolls back). ECS's own
/// timeout for the hook (`timeoutConfiguration`, 24 hours and ROLLBACK by default) bounds the wait.
pub const HOOK_APPROVAL: &str = "ops:hook-approval";
/// On the ECS service: the release a person gave from chat, `<deployment id> <step> <who>`: it
/// releases that deployment at that step only (see [`HookCall::step`]).
pub const HOOK_RELEASE: &str = "ops:hook-release";
/// On the ECS service: where the hook holds a deployment for a person, `<deployment id> <step>`,
/// written when it starts to hold: what `promote` releases and `status` shows.
pub const HOOK_HOLDING: &str = "ops:hook-holding";
/// The stages ECS calls once per traffic step of a canary or linear deployment (developer guide,
/// "Lifecycle hooks for Amazon ECS service deployments": "Recurring invocation stages").
const RECURRING_STAGES: &[&str] = &["PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"];
/// The stages a service may name as lifecycle hook stages (API reference,
/// DeploymentLifecycleHook `lifecycleStages`).
pub const HOOK_STAGES: &[&str] = &[
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];
/// Seconds ECS waits before calling again after `IN_PROGRESS` (its default is 30).
pub const CALL_BACK_DELAY: u64 = 30;
/// The `hookDetails` key that carries, between calls of one hook, its wait: `{"deployment",
/// "stage", "since", "timeout"}`. Only a wait of this very deployment and stage counts, so a key a
/// service's own hookDetails happens to carry never stands in for one.
const WAIT: &str = "opsWait";
/// On the ECS service: the last hook alerts sent (a short hash of each one's key, newest first,
/// space-separated), so the same news delivered again alerts once, even after other alerts of
/// the service.
pub const HOOK_ALERTED: &str = "ops:hook-alerted";
/// How many alert keys the service remembers.
const ALERTED_KEPT: usize = 8;

/// A short, tag-safe stand-in for an alert key (FNV-1a, 64 bits, hex).
fn alert_hash(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Whether the alert of `key` was sent already, by the service's `ops:hook-alerted` tag.
pub fn alerted_before(tag: Option<&str>, key: &str) -> bool {
    let hash = alert_hash(key);
    tag.is_some_and(|t| t.split_whitespace().any(|k| k == hash))
}

/// The `ops:hook-alerted` tag once the alert of `key` is sent.
pub fn remember_alerted(tag: Option<&str>, key: &str) -> String {
    let hash = alert_hash(key);
    std::iter::once(hash.as_str())
        .chain(
            tag.unwrap_or_default()
                .split_whitespace()
                .filter(|k| *k != hash),
        )
        .take(ALERTED_KEPT)
        .collect::<Vec<_>>()
        .join(" ")
}
const DEFAULT_HEALTH_TIMEOUT: u64 = 15 * 60;
/// How far the function's clock and ECS's may disagree, seconds.
const CLOCK_SKEW: u64 = 60;
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
    ///
    /// At `TEST_TRAFFIC_SHIFT` the test traffic weights are read the same way: a forward test
    /// shift gives the new revision 100% of test traffic (same page, its example), so the new
    /// revision at 0% and the other at 100% is the shift back.
    pub fn rolling_back(&self) -> bool {
        let details = &self.execution_details;
        let back = |weights: &BTreeMap<String, f64>| {
            weights.get(&details.target_service_revision_arn) == Some(&0.0)
                && weights
                    .iter()
                    .any(|(arn, w)| *arn != details.target_service_revision_arn && *w >= 100.0)
        };
        match self.lifecycle_stage.as_str() {
            "PRODUCTION_TRAFFIC_SHIFT" => back(&details.production_traffic_weights),
            "TEST_TRAFFIC_SHIFT" => {
                back(&details.production_traffic_weights) || back(&details.test_traffic_weights)
            }
            _ => false,
        }
    }

    /// `(cluster, service)` of the service the call names
    /// (`arn:aws:ecs:<region>:<account>:service/<cluster>/<service>`).
    /// Empty for an ARN that does not fit: ECS then knows no such service.
    pub fn cluster_and_service(&self) -> (String, String) {
        let (cluster, name) =
            cluster_and_service_of(&self.execution_details.service_arn).unwrap_or_default();
        (cluster.to_string(), name.to_string())
    }

    /// `cluster/service` of the service the call names.
    pub fn service_name(&self) -> String {
        let (cluster, name) = self.cluster_and_service();
        format!("{cluster}/{name}")
    }

    /// The service deployment's id (the ARN's last part).
    pub fn deployment_id(&self) -> &str {
        self.resource_arn.rsplit('/').next().unwrap_or_default()
    }

    /// Where in the deployment the call is: its stage, and for a stage ECS calls at each traffic
    /// step, the production weight of the new revision it carries (`PRODUCTION_TRAFFIC_SHIFT@10`).
    /// A person's release counts for one step only.
    pub fn step(&self) -> String {
        let stage = &self.lifecycle_stage;
        if !RECURRING_STAGES.contains(&stage.as_str()) {
            return stage.clone();
        }
        let details = &self.execution_details;
        match details
            .production_traffic_weights
            .get(&details.target_service_revision_arn)
        {
            Some(weight) => format!(
                "{stage}@{}",
                ops_core::aws::service_deployments::percent(*weight)
            ),
            None => stage.clone(),
        }
    }

    /// This hook's wait, as its earlier `IN_PROGRESS` recorded it: `(since, timeout)` seconds,
    /// only when recorded for this deployment and stage.
    pub fn wait(&self) -> Option<(u64, u64)> {
        let wait = self.hook_details.as_ref()?.get(WAIT)?;
        (wait.get("deployment")?.as_str()? == self.deployment_id()
            && wait.get("stage")?.as_str()? == self.lifecycle_stage)
            .then_some(())?;
        Some((wait.get("since")?.as_u64()?, wait.get("timeout")?.as_u64()?))
    }
}

/// The gates a service names in its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookGates {
    /// Alarms that must not be in ALARM.
    pub alarms: Vec<String>,
    /// How long the new revision's targets may take to be healthy, seconds.
    pub health_timeout: u64,
    /// The stages at which a person releases the deployment.
    pub approval: Vec<String>,
    /// The test URL checked at `POST_TEST_TRAFFIC_SHIFT`.
    pub test_url: Option<TestUrl>,
}

impl HookGates {
    /// The gates of a service with `tags`, or why they cannot be read.
    pub fn of(tags: &BTreeMap<String, String>) -> Result<Self, String> {
        let list = |key: &str| -> Vec<String> {
            tags.get(key)
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let alarms = list(HOOK_ALARMS);
        let health_timeout = match tags.get(HOOK_HEALTH_TIMEOUT) {
            Some(text) => parse_duration(text, 60, 24 * 3600)
                .map_err(|e| format!("tag `{HOOK_HEALTH_TIMEOUT}` = `{text}`: {e}"))?,
            None => DEFAULT_HEALTH_TIMEOUT,
        };
        let approval = list(HOOK_APPROVAL);
        if let Some(unknown) = approval.iter().find(|s| !HOOK_STAGES.contains(&s.as_str())) {
            return Err(format!(
                "tag `{HOOK_APPROVAL}` names `{unknown}`, not a lifecycle hook stage (one of {})",
                HOOK_STAGES.join(", ")
            ));
        }
        let test_url = tags
            .get(HOOK_TEST_URL)
            .map(|text| TestUrl::parse(text))
            .transpose()?;
        Ok(HookGates {
            alarms,
            health_timeout,
            approval,
            test_url,
        })
    }
}

/// A person's release of one deployment at one step, as the `ops:hook-release` tag records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The service deployment's id.
    pub deployment: String,
    /// The step released (see [`HookCall::step`]).
    pub stage: String,
    /// Who released it.
    pub by: String,
}

/// Whether a step (`STAGE` or `STAGE@weight`, see [`HookCall::step`]) is where ECS shows the
/// deployment: at that lifecycle stage and, for a traffic step, with that production weight asked
/// for the new revision. ECS reports no `PRE_PRODUCTION_TRAFFIC_SHIFT` stage (it is not in the
/// API's ServiceDeploymentLifecycleStage), so that step is where ECS is from the test traffic
/// shift to the production shifts. What ECS does not report never counts against a step.
pub fn ecs_is_at(step: &str, stage: Option<&str>, target_weight: Option<&str>) -> bool {
    let (step_stage, weight) = match step.split_once('@') {
        Some((stage, weight)) => (stage, Some(weight)),
        None => (step, None),
    };
    let stage_fits = match stage {
        None => true,
        Some(stage) if stage == step_stage => true,
        Some(stage) => {
            step_stage == "PRE_PRODUCTION_TRAFFIC_SHIFT"
                && matches!(
                    stage,
                    "POST_TEST_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT"
                )
        }
    };
    // A forward deployment's steps only go up: a step below the weight ECS asks now has passed.
    // ECS calls the step's hook as the weight changes, and the API reference calls the reported
    // weight "a snapshot" that "may not reflect real-time changes", so a step at or above it
    // counts.
    let weight_fits = match (
        weight.and_then(|w| w.parse::<f64>().ok()),
        target_weight.and_then(|w| w.parse::<f64>().ok()),
    ) {
        (Some(step), Some(asked)) => step + 0.05 >= asked,
        _ => true,
    };
    stage_fits && weight_fits
}

/// The stages ECS reports for a service deployment, in the order a deployment goes through them
/// (API reference, ServiceDeploymentLifecycleStage).
const REPORTED_ORDER: &[&str] = &[
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

/// Whether ECS shows the deployment past a step (`STAGE` or `STAGE@weight`, see
/// [`HookCall::step`]): at a later stage than the step's, or at a traffic step's stage asking a
/// higher weight for the new revision. A deployment going forward never goes back, so a call for
/// a step ECS is past is late or replayed, never one ECS waits on. Unlike [`ecs_is_at`], which
/// also refuses a step ECS has not reached yet, this never counts against a call ECS's lagging
/// snapshot has not caught up with.
pub fn ecs_moved_past(step: &str, stage: Option<&str>, target_weight: Option<&str>) -> bool {
    let (step_stage, weight) = match step.split_once('@') {
        Some((stage, weight)) => (stage, Some(weight)),
        None => (step, None),
    };
    // ECS reports no PRE_PRODUCTION_TRAFFIC_SHIFT: it runs before each production shift, maybe
    // after ECS already asks the step's weight, so its weight proves nothing.
    let (step_stage, weight) = match step_stage {
        "PRE_PRODUCTION_TRAFFIC_SHIFT" => ("PRODUCTION_TRAFFIC_SHIFT", None),
        other => (other, weight),
    };
    let rank = |stage: &str| REPORTED_ORDER.iter().position(|s| *s == stage);
    let (Some(reported), Some(called)) = (stage.and_then(rank), rank(step_stage)) else {
        return false;
    };
    if reported != called {
        return reported > called;
    }
    match (
        weight.and_then(|w| w.parse::<f64>().ok()),
        target_weight.and_then(|w| w.parse::<f64>().ok()),
    ) {
        (Some(step), Some(asked)) => asked > step + 0.05,
        _ => false,
    }
}

/// Where the hook holds a deployment for a person, as the `ops:hook-holding` tag records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The service deployment's id.
    pub deployment: String,
    /// The step held (see [`HookCall::step`]).
    pub step: String,
}

impl Hold {
    /// The hold of `call`.
    pub fn of(call: &HookCall) -> Self {
        Hold {
            deployment: call.deployment_id().to_string(),
            step: call.step(),
        }
    }

    /// The tag's value.
    pub fn encode(&self) -> String {
        format!("{} {}", self.deployment, self.step)
    }

    /// Read a tag's value; `None` for one that does not fit.
    pub fn decode(text: &str) -> Option<Self> {
        let (deployment, step) = text.split_once(' ')?;
        (!deployment.is_empty() && !step.is_empty() && !step.contains(' ')).then(|| Hold {
            deployment: deployment.into(),
            step: step.into(),
        })
    }

    /// Whether `release` releases it.
    pub fn released_by(&self, release: Option<&Release>) -> bool {
        release.is_some_and(|r| r.deployment == self.deployment && r.stage == self.step)
    }
}

impl Release {
    /// The tag's value.
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.deployment, self.stage, self.by)
    }

    /// Read a tag's value; `None` for one that does not fit (it then releases nothing).
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ' ');
        let (deployment, stage, by) = (parts.next()?, parts.next()?, parts.next()?);
        (!deployment.is_empty() && !stage.is_empty() && !by.is_empty()).then(|| Release {
            deployment: deployment.into(),
            stage: stage.into(),
            by: by.into(),
        })
    }

    /// Whether it releases `call`'s deployment at `call`'s step.
    pub fn releases(&self, call: &HookCall) -> bool {
        self.deployment == call.deployment_id() && self.stage == call.step()
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
    /// What the service's test URL answered, when the call's stage checks it.
    pub test_check: Option<Outcome>,
    /// The service's desired task count.
    pub desired: i32,
    /// When ECS created the service deployment, epoch seconds: no wait began before it.
    pub deployment_created: Option<u64>,
    /// The service's `ops:hook-alerted` tag.
    pub alerted: Option<String>,
    /// The service's `ops:hook-release` tag, read.
    pub release: Option<Release>,
    /// The service's `ops:hook-holding` tag, as written.
    pub holding: Option<String>,
    /// The deployment's lifecycle stage, as ECS reports it.
    pub deployment_stage: Option<String>,
    /// The production weight the deployment asks for the new revision, in percent.
    pub target_weight: Option<String>,
    /// Whether ECS is taking the deployment back (a rollback requested or running, or a stop).
    pub ecs_rolling_back: bool,
}

impl HookView {
    /// Whether the call is where ECS shows the deployment (see [`ecs_is_at`]): a late repeat of a
    /// passed stage, or a call made up for a stage ECS has not reached, is not.
    pub fn call_is_current(&self, call: &HookCall) -> bool {
        ecs_is_at(
            &call.step(),
            self.deployment_stage.as_deref(),
            self.target_weight.as_deref(),
        )
    }

    /// Whether ECS shows the deployment past the call's step (see [`ecs_moved_past`]).
    pub fn call_is_late(&self, call: &HookCall) -> bool {
        ecs_moved_past(
            &call.step(),
            self.deployment_stage.as_deref(),
            self.target_weight.as_deref(),
        )
    }
}

impl HookView {
    /// What is known of a call whose AWS reads failed: its service and revision, as named.
    pub fn unread(call: &HookCall, problem: String) -> Self {
        HookView {
            service: call.service_name(),
            target: format!(
                "service revision {}",
                call.execution_details
                    .target_service_revision_arn
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
            ),
            gates: Err(problem),
            alarms: Vec::new(),
            missing_alarms: Vec::new(),
            targets: Vec::new(),
            test_check: None,
            desired: 0,
            deployment_created: None,
            alerted: None,
            release: None,
            holding: None,
            deployment_stage: None,
            target_weight: None,
            ecs_rolling_back: false,
        }
    }
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

/// A gate decision: the answer, why, and (while waiting) the wait: `(since, timeout)` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDecision {
    /// The answer.
    pub status: HookStatus,
    /// Why, for people.
    pub reason: String,
    /// While `IN_PROGRESS`: when the wait began and how long it may last.
    pub wait: Option<(u64, u64)>,
    /// While `IN_PROGRESS`: whether it waits for a person (every other gate passed).
    pub awaits_person: bool,
}

impl HookDecision {
    fn done(status: HookStatus, reason: String) -> Self {
        HookDecision {
            status,
            reason,
            wait: None,
            awaits_person: false,
        }
    }

    /// `FAILED` because the hold a person would release cannot be recorded (a failure a retry
    /// cannot fix): no one could release the deployment, so the stage fails rather than wait for
    /// ECS's timeout with nothing to act on.
    pub fn unholdable(call: &HookCall, target: &str, error: &str) -> Self {
        HookDecision::done(
            HookStatus::Failed,
            format!(
                "the hook could not record where it holds {target} at {} ({error}): no one could release it from chat, so the stage fails",
                call.step()
            ),
        )
    }

    /// The key under which its alert is remembered, so the same news is alerted once: a wait for
    /// a person is news once per deployment and stage (ECS calls again every
    /// [`CALL_BACK_DELAY`] seconds), any other decision once per call.
    pub fn alert_key(&self, call: &HookCall) -> String {
        if self.awaits_person {
            format!("{} {} AWAITING", call.deployment_id(), call.step())
        } else {
            format!("{} {}", call.execution_id, self.status.as_str())
        }
    }
}

/// The decision when AWS could not be read: a read that may succeed on a retry waits
/// (`IN_PROGRESS`, so ECS calls again rather than rolling back on a throttle) until the wait this
/// hook already began, or a default health timeout from now, runs out; then, and for a read that
/// cannot succeed, `FAILED`.
pub fn unreadable(call: &HookCall, error: &str, retryable: bool, now: u64) -> HookDecision {
    if !retryable {
        return HookDecision::done(
            HookStatus::Failed,
            format!("the hook could not check its gates: {error}"),
        );
    }
    let (since, timeout) = call
        .wait()
        .map(|(since, timeout)| (since.min(now), timeout))
        .unwrap_or((now, DEFAULT_HEALTH_TIMEOUT));
    if now >= since + timeout {
        return HookDecision::done(
            HookStatus::Failed,
            format!(
                "the hook could not read AWS for {} at {}: {error}",
                duration_text(timeout),
                call.lifecycle_stage
            ),
        );
    }
    HookDecision {
        status: HookStatus::InProgress,
        reason: format!("could not read AWS ({error}); ECS calls again"),
        wait: Some((since, timeout)),
        awaits_person: false,
    }
}

/// The gate decision for `call` at `now`, from what was observed: a pure function.
pub fn decide(call: &HookCall, view: &HookView, now: u64) -> HookDecision {
    let stage = &call.lifecycle_stage;
    if call.rolling_back() || view.ecs_rolling_back {
        return HookDecision::done(
            HookStatus::Succeeded,
            format!(
                "ECS is rolling {} back at {stage}: a gate never holds a rollback",
                view.target
            ),
        );
    }
    if view.call_is_late(call) {
        // Not a call ECS waits on: it neither passes nor fails anything, and pages no one.
        return HookDecision {
            status: HookStatus::InProgress,
            reason: format!(
                "ECS shows {} past {} (at {}{}): this call is late or replayed; nothing checked or alerted",
                view.target,
                call.step(),
                view.deployment_stage.as_deref().unwrap_or_default(),
                view.target_weight
                    .as_deref()
                    .map(|w| format!(", {w}% asked for the new revision"))
                    .unwrap_or_default()
            ),
            wait: None,
            awaits_person: false,
        };
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
        return passed(
            call,
            view,
            gates,
            format!("no gating alarm in ALARM at {stage}"),
        );
    }
    // The new revision's health, then (at its stage) its test URL: what passed, or the gate that
    // holds the stage, how it waits and how it fails.
    let no_task = view.desired == 0 && view.targets.is_empty();
    let health = if no_task {
        Ok(format!(
            "{} runs 0 tasks by design (desired 0): no target to check,",
            view.target
        ))
    } else {
        health_gate(view)
    };
    let test = match (&gates.test_url, stage.as_str()) {
        (Some(test_url), TEST_STAGE) if !no_task => Some(match &view.test_check {
            Some(outcome) => test_url.verdict(outcome),
            None => Err(format!("test URL {} was not checked", test_url.url)),
        }),
        _ => None,
    };
    let (waiting, failed) = match (health, test) {
        (Ok(health), None) => {
            return passed(
                call,
                view,
                gates,
                format!("{health} and no gating alarm in ALARM at {stage}"),
            )
        }
        (Ok(health), Some(Ok(test))) => {
            return passed(
                call,
                view,
                gates,
                format!("{health}, {test} and no gating alarm in ALARM at {stage}"),
            )
        }
        (Err(health), _) => (
            format!("waiting for {health} at {stage}"),
            format!(
                "{} was not healthy within {} at {stage} ({health})",
                view.target,
                duration_text(gates.health_timeout)
            ),
        ),
        (Ok(_), Some(Err(test))) => (
            format!("waiting for the test URL to pass at {stage} ({test})"),
            format!(
                "{test}: it did not pass within {} at {stage}",
                duration_text(gates.health_timeout)
            ),
        ),
    };
    // A wait never began before ECS created the deployment (give or take the clocks' skew), nor
    // after now.
    let earliest = view
        .deployment_created
        .map_or(0, |created| created.saturating_sub(CLOCK_SKEW));
    let since = call
        .wait()
        .map(|(since, _)| since.max(earliest).min(now))
        .unwrap_or(now);
    let deadline = since + gates.health_timeout;
    if now >= deadline {
        return HookDecision::done(HookStatus::Failed, failed);
    }
    HookDecision {
        status: HookStatus::InProgress,
        reason: format!("{waiting}; fails at {}", utc_text(deadline)),
        wait: Some((since, gates.health_timeout)),
        awaits_person: false,
    }
}

/// The new revision's health: `Ok` with what passed when every target is healthy and there are
/// as many as the service wants, else `Err` with what is not yet.
pub fn health_gate(view: &HookView) -> Result<String, String> {
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
        Ok(health)
    } else {
        Err(health)
    }
}

/// Every automatic gate passed at the call's stage (`passed` says how): at a stage the service
/// names in `ops:hook-approval`, a person still releases it.
fn passed(call: &HookCall, view: &HookView, gates: &HookGates, passed: String) -> HookDecision {
    let stage = &call.lifecycle_stage;
    if !gates.approval.contains(stage) {
        return HookDecision::done(HookStatus::Succeeded, passed);
    }
    match &view.release {
        Some(release) if release.releases(call) => HookDecision::done(
            HookStatus::Succeeded,
            format!("released by {} from chat at {}; {passed}", release.by, call.step()),
        ),
        _ => HookDecision {
            status: HookStatus::InProgress,
            reason: format!(
                "waiting for a person at {} (`{HOOK_APPROVAL}`): promote or abort from chat; {passed}",
                call.step()
            ),
            wait: None,
            awaits_person: true,
        },
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
        match decision.wait {
            Some((since, timeout)) => {
                details.insert(
                    WAIT.into(),
                    json!({"deployment": call.deployment_id(), "stage": call.lifecycle_stage,
                           "since": since, "timeout": timeout}),
                );
            }
            // Every gate passed (it waits for a person) or nothing was checked: a gate that fails
            // later waits afresh rather than inherit a wait that already ended.
            None => {
                details.remove(WAIT);
            }
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
                approval: vec![],
                test_url: None,
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
            test_check: None,
            desired: 2,
            deployment_created: Some(500),
            alerted: None,
            release: None,
            holding: None,
            deployment_stage: None,
            target_weight: None,
            ecs_rolling_back: false,
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

    /// `view` of a service whose test URL is `http://alb:8080/health`, answering `status`.
    fn tested(healthy: usize, status: Option<u16>) -> HookView {
        let mut view = view(healthy, "OK");
        if let Ok(gates) = view.gates.as_mut() {
            gates.test_url = Some(TestUrl::parse("http://alb:8080/health").unwrap());
        }
        view.test_check = status.map(|status| Outcome {
            failure: (!(200..300).contains(&status)).then(|| ops_core::probe::Failure {
                kind: ops_core::probe::FailureKind::Status,
                detail: format!("HTTP {status} (expected 200-299)"),
                snippet: None,
            }),
            status: Some(status),
            latency_ms: 2,
            address: None,
            cert_days_left: None,
            attempts: 1,
        });
        view
    }

    #[test]
    fn the_test_url_gates_post_test_traffic_shift_only_and_waits_like_health_before_it_fails() {
        let post_test = call("POST_TEST_TRAFFIC_SHIFT", &[], None);
        let passed = decide(&post_test, &tested(2, Some(200)), 1000);
        assert_eq!(passed.status, HookStatus::Succeeded);
        assert_eq!(
            passed.reason,
            "web:3 2/2 healthy, test URL http://alb:8080/health answered HTTP 200 and no gating alarm in ALARM at POST_TEST_TRAFFIC_SHIFT"
        );

        let failing = decide(&post_test, &tested(2, Some(503)), 1000);
        assert_eq!(failing.status, HookStatus::InProgress);
        assert_eq!(failing.wait, Some((1000, 600)));
        assert!(
            failing.reason.starts_with("waiting for the test URL to pass at POST_TEST_TRAFFIC_SHIFT (test URL http://alb:8080/health failed (status): HTTP 503 (expected 200-299)); fails at "),
            "{}",
            failing.reason
        );
        // ECS calls again with the wait recorded: past it, the stage fails and ECS rolls back.
        let again = call(
            "POST_TEST_TRAFFIC_SHIFT",
            &[],
            Some(answer(&post_test, &failing)["hookDetails"].clone()),
        );
        assert_eq!(
            decide(&again, &tested(2, Some(503)), 1599).status,
            HookStatus::InProgress
        );
        let failed = decide(&again, &tested(2, Some(503)), 1600);
        assert_eq!(failed.status, HookStatus::Failed);
        assert_eq!(
            failed.reason,
            "test URL http://alb:8080/health failed (status): HTTP 503 (expected 200-299): it did not pass within 10 minutes at POST_TEST_TRAFFIC_SHIFT"
        );

        // Unhealthy targets wait on health first; a check that was not made never passes.
        let unhealthy = decide(&post_test, &tested(1, None), 1000);
        assert!(
            unhealthy
                .reason
                .starts_with("waiting for web:3 1/2 healthy"),
            "{}",
            unhealthy.reason
        );
        let unchecked = decide(&post_test, &tested(2, None), 1000);
        assert_eq!(unchecked.status, HookStatus::InProgress);
        assert!(
            unchecked
                .reason
                .contains("test URL http://alb:8080/health was not checked"),
            "{}",
            unchecked.reason
        );

        // Other stages do not check it, and a rollback is never held by it.
        let post_scale = call("POST_SCALE_UP", &[], None);
        assert_eq!(
            decide(&post_scale, &tested(2, None), 1000).status,
            HookStatus::Succeeded
        );
        let mut rolling_back = tested(2, Some(503));
        rolling_back.ecs_rolling_back = true;
        assert_eq!(
            decide(&post_test, &rolling_back, 1000).status,
            HookStatus::Succeeded
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
            json!({"S3_BUCKET_NAME": "b", "opsWait": {"deployment": "EZe5RNVLH6PPzHXINuP28",
                   "stage": "POST_SCALE_UP", "since": 1000, "timeout": 600}})
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

    /// A wait recorded for another stage or deployment, or claiming to predate the deployment,
    /// does not shorten this one (found by an independent test: `opsWaitingSince: 0` in a first
    /// call's hookDetails failed the stage at once).
    #[test]
    fn only_this_stages_own_wait_counts_and_never_from_before_the_deployment() {
        let other_stage = json!({"opsWait": {"deployment": "EZe5RNVLH6PPzHXINuP28",
                                  "stage": "POST_TEST_TRAFFIC_SHIFT", "since": 0, "timeout": 600}});
        let early = json!({"opsWait": {"deployment": "EZe5RNVLH6PPzHXINuP28",
                            "stage": "POST_SCALE_UP", "since": 0, "timeout": 600}});
        let other = decide(
            &call("POST_SCALE_UP", &[], Some(other_stage)),
            &view(1, "OK"),
            1_000,
        );
        assert_eq!(other.status, HookStatus::InProgress);
        assert_eq!(other.wait, Some((1_000, 600)));
        // Created at 500: the wait counts from 440 (a minute of clock skew) at the earliest, so at
        // 1,000 it still waits.
        let bounded = decide(
            &call("POST_SCALE_UP", &[], Some(early)),
            &view(1, "OK"),
            1_000,
        );
        assert_eq!(bounded.status, HookStatus::InProgress);
        assert_eq!(bounded.wait, Some((440, 600)));
    }

    #[test]
    fn a_read_that_keeps_failing_waits_only_until_the_wait_runs_out() {
        let first = call("POST_SCALE_UP", &[], None);
        let waiting = unreadable(&first, "throttled", true, 1_000);
        assert_eq!(waiting.status, HookStatus::InProgress);
        let again = call(
            "POST_SCALE_UP",
            &[],
            Some(answer(&first, &waiting)["hookDetails"].clone()),
        );
        assert_eq!(
            unreadable(&again, "throttled", true, 1_899).status,
            HookStatus::InProgress
        );
        let out = unreadable(&again, "throttled", true, 1_900);
        assert_eq!(out.status, HookStatus::Failed);
        assert!(
            out.reason.contains("could not read AWS for 15 minutes"),
            "{}",
            out.reason
        );
        assert_eq!(
            unreadable(&first, "AccessDenied", false, 1_000).status,
            HookStatus::Failed
        );
    }

    #[test]
    fn a_service_at_desired_zero_passes_the_health_gate_with_no_targets() {
        let mut idle = view(0, "OK");
        idle.desired = 0;
        idle.targets.clear();
        assert_eq!(
            decide(&call("POST_SCALE_UP", &[], None), &idle, 1).status,
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
        // The rollback's test shift: green back to 0% of test traffic.
        let mut test_back = call("TEST_TRAFFIC_SHIFT", &[], None);
        test_back.execution_details.test_traffic_weights =
            BTreeMap::from([(GREEN.to_string(), 0.0), (BLUE.to_string(), 100.0)]);
        assert!(test_back.rolling_back());
        let mut test_forward = call("TEST_TRAFFIC_SHIFT", &[], None);
        test_forward.execution_details.test_traffic_weights =
            BTreeMap::from([(GREEN.to_string(), 100.0), (BLUE.to_string(), 0.0)]);
        assert!(!test_forward.rolling_back());
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
    fn an_approval_stage_waits_for_a_person_once_every_gate_passes_and_only_its_release_counts() {
        let stage = call("POST_TEST_TRAFFIC_SHIFT", &[], None);
        let mut gated = view(2, "OK");
        if let Ok(gates) = &mut gated.gates {
            gates.approval = vec!["POST_TEST_TRAFFIC_SHIFT".into()];
        }
        let waiting = decide(&stage, &gated, 1_000);
        assert_eq!(
            (waiting.status, waiting.awaits_person),
            (HookStatus::InProgress, true)
        );
        assert_eq!(
            waiting.reason,
            "waiting for a person at POST_TEST_TRAFFIC_SHIFT (`ops:hook-approval`): promote or abort from chat; web:3 2/2 healthy and no gating alarm in ALARM at POST_TEST_TRAFFIC_SHIFT"
        );
        assert_eq!(
            waiting.alert_key(&stage),
            "EZe5RNVLH6PPzHXINuP28 POST_TEST_TRAFFIC_SHIFT AWAITING"
        );
        assert_eq!(answer(&stage, &waiting)["callBackDelay"], 30);
        // A release of another stage or deployment releases nothing; an unhealthy revision is not
        // offered to a person; an alarm still fails it.
        gated.release = Release::decode("EZe5RNVLH6PPzHXINuP28 POST_SCALE_UP alice");
        assert!(decide(&stage, &gated, 1_000).awaits_person);
        gated.release = Release::decode("other POST_TEST_TRAFFIC_SHIFT alice");
        assert!(decide(&stage, &gated, 1_000).awaits_person);
        gated.release = Release::decode("EZe5RNVLH6PPzHXINuP28 POST_TEST_TRAFFIC_SHIFT alice");
        let released = decide(&stage, &gated, 1_000);
        assert_eq!(released.status, HookStatus::Succeeded);
        assert!(released
            .reason
            .starts_with("released by alice from chat at POST_TEST_TRAFFIC_SHIFT; "));
        let mut sick = gated.clone();
        sick.release = None;
        sick.targets[1].state = "unhealthy".into();
        assert!(!decide(&stage, &sick, 1_000).awaits_person);
        let mut firing = gated.clone();
        firing.alarms[0].state = "ALARM".into();
        assert_eq!(decide(&stage, &firing, 1_000).status, HookStatus::Failed);
        assert_eq!(
            HookGates::of(&BTreeMap::from([(
                HOOK_APPROVAL.to_string(),
                "BAKE_TIME".to_string()
            )]))
            .unwrap_err(),
            format!(
                "tag `{HOOK_APPROVAL}` names `BAKE_TIME`, not a lifecycle hook stage (one of {})",
                HOOK_STAGES.join(", ")
            )
        );
        assert_eq!(Release::decode("only-two parts"), None);
    }

    /// ECS calls PRODUCTION_TRAFFIC_SHIFT at each step of a canary (developer guide, "Recurring
    /// invocation stages"): the release of the 10% step does not release the 100% one (found by
    /// an independent test).
    #[test]
    fn a_release_counts_for_one_traffic_step_only() {
        let mut gated = view(2, "OK");
        if let Ok(gates) = &mut gated.gates {
            gates.approval = vec!["PRODUCTION_TRAFFIC_SHIFT".into()];
        }
        let canary = call(
            "PRODUCTION_TRAFFIC_SHIFT",
            &[(GREEN, 10.0), (BLUE, 90.0)],
            None,
        );
        let rest = call(
            "PRODUCTION_TRAFFIC_SHIFT",
            &[(GREEN, 100.0), (BLUE, 0.0)],
            None,
        );
        assert_eq!(canary.step(), "PRODUCTION_TRAFFIC_SHIFT@10");
        assert_eq!(
            Hold::of(&rest).encode(),
            "EZe5RNVLH6PPzHXINuP28 PRODUCTION_TRAFFIC_SHIFT@100"
        );
        gated.release = Release::decode("EZe5RNVLH6PPzHXINuP28 PRODUCTION_TRAFFIC_SHIFT@10 alice");
        assert_eq!(decide(&canary, &gated, 1_000).status, HookStatus::Succeeded);
        let held = decide(&rest, &gated, 1_000);
        assert!(held.awaits_person, "{held:?}");
        assert_ne!(
            held.alert_key(&rest),
            decide(&canary, &view(2, "OK"), 1_000).alert_key(&canary)
        );
        assert_eq!(call("POST_SCALE_UP", &[], None).step(), "POST_SCALE_UP");
    }

    #[test]
    fn the_alerts_sent_are_remembered_newest_first_so_one_in_between_does_not_re_arm_another() {
        let one = remember_alerted(None, "ecs-pause-a HOOK_AWAITING_ACTION");
        let two = remember_alerted(Some(&one), "ecs-pause-b HOOK_AWAITING_ACTION");
        assert!(alerted_before(
            Some(&two),
            "ecs-pause-a HOOK_AWAITING_ACTION"
        ));
        assert!(alerted_before(
            Some(&two),
            "ecs-pause-b HOOK_AWAITING_ACTION"
        ));
        assert!(!alerted_before(
            Some(&two),
            "ecs-pause-c HOOK_AWAITING_ACTION"
        ));
        let mut tag = two;
        for n in 0..ALERTED_KEPT {
            tag = remember_alerted(Some(&tag), &format!("key {n}"));
        }
        assert!(!alerted_before(
            Some(&tag),
            "ecs-pause-a HOOK_AWAITING_ACTION"
        ));
        assert!(tag.len() <= ops_core::tags::MAX_TAG_VALUE);
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit() || c == ' '));
    }

    #[test]
    fn a_step_is_where_ecs_is_only_at_its_stage_and_weight() {
        // (step, the stage ECS reports, the weight it reports for the new revision, counts)
        let cases = [
            (
                "POST_TEST_TRAFFIC_SHIFT",
                Some("POST_TEST_TRAFFIC_SHIFT"),
                None,
                true,
            ),
            (
                "POST_TEST_TRAFFIC_SHIFT",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                false,
            ),
            (
                "PRODUCTION_TRAFFIC_SHIFT@10",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                true,
            ),
            (
                "PRODUCTION_TRAFFIC_SHIFT@10",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("100"),
                false,
            ),
            // ECS's reported weight is a snapshot that may lag the step it calls the hook for.
            (
                "PRODUCTION_TRAFFIC_SHIFT@100",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                true,
            ),
            (
                "PRODUCTION_TRAFFIC_SHIFT@12.5",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("12.5"),
                true,
            ),
            (
                "PRE_PRODUCTION_TRAFFIC_SHIFT@0",
                Some("POST_TEST_TRAFFIC_SHIFT"),
                Some("0"),
                true,
            ),
            (
                "PRE_PRODUCTION_TRAFFIC_SHIFT@10",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                true,
            ),
            (
                "PRE_PRODUCTION_TRAFFIC_SHIFT@0",
                Some("POST_SCALE_UP"),
                None,
                false,
            ),
            // What ECS does not report never counts against a step.
            ("POST_SCALE_UP", None, None, true),
        ];
        for (step, stage, weight, counts) in cases {
            assert_eq!(
                ecs_is_at(step, stage, weight),
                counts,
                "{step} at {stage:?} {weight:?}"
            );
        }
    }

    #[test]
    fn ecs_is_past_a_step_only_at_a_later_stage_or_a_higher_weight() {
        // (step, the stage ECS reports, the weight it reports for the new revision, past)
        let cases = [
            (
                "POST_TEST_TRAFFIC_SHIFT",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                true,
            ),
            (
                "POST_TEST_TRAFFIC_SHIFT",
                Some("POST_TEST_TRAFFIC_SHIFT"),
                None,
                false,
            ),
            // ECS's snapshot may lag a call: a stage it has not reported yet is never past.
            (
                "PRODUCTION_TRAFFIC_SHIFT@10",
                Some("POST_TEST_TRAFFIC_SHIFT"),
                None,
                false,
            ),
            (
                "PRODUCTION_TRAFFIC_SHIFT@10",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("100"),
                true,
            ),
            (
                "PRODUCTION_TRAFFIC_SHIFT@100",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                false,
            ),
            // Whether ECS asks the step's weight before it calls PRE_PRODUCTION_TRAFFIC_SHIFT is
            // not documented: only a later stage makes that call late.
            (
                "PRE_PRODUCTION_TRAFFIC_SHIFT@0",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                false,
            ),
            (
                "PRE_PRODUCTION_TRAFFIC_SHIFT@10",
                Some("POST_PRODUCTION_TRAFFIC_SHIFT"),
                Some("100"),
                true,
            ),
            (
                "PRE_PRODUCTION_TRAFFIC_SHIFT@10",
                Some("PRODUCTION_TRAFFIC_SHIFT"),
                Some("10"),
                false,
            ),
            (
                "POST_PRODUCTION_TRAFFIC_SHIFT",
                Some("BAKE_TIME"),
                Some("100"),
                true,
            ),
            ("POST_SCALE_UP", None, None, false),
            ("POST_SCALE_UP", Some("A_STAGE_ECS_ADDS_LATER"), None, false),
        ];
        for (step, stage, weight, past) in cases {
            assert_eq!(
                ecs_moved_past(step, stage, weight),
                past,
                "{step} at {stage:?} {weight:?}"
            );
        }
    }

    #[test]
    fn a_call_for_a_stage_ecs_is_past_checks_nothing_and_answers_no_verdict() {
        let late = call("POST_TEST_TRAFFIC_SHIFT", &[], None);
        let mut moved_on = tested(2, Some(500));
        moved_on.deployment_stage = Some("PRODUCTION_TRAFFIC_SHIFT".into());
        moved_on.target_weight = Some("10".into());
        let decided = decide(&late, &moved_on, 1000);
        assert_eq!(decided.status, HookStatus::InProgress);
        assert_eq!(decided.wait, None);
        assert!(!decided.awaits_person);
        assert_eq!(
            decided.reason,
            "ECS shows web:3 past POST_TEST_TRAFFIC_SHIFT (at PRODUCTION_TRAFFIC_SHIFT, 10% asked for the new revision): this call is late or replayed; nothing checked or alerted"
        );
    }

    #[test]
    fn a_wait_for_a_person_drops_the_wait_a_gate_began_so_a_later_failure_waits_afresh() {
        let post_test = call("POST_TEST_TRAFFIC_SHIFT", &[], None);
        let failing = decide(&post_test, &tested(2, Some(503)), 1000);
        let details = answer(&post_test, &failing)["hookDetails"].clone();
        assert!(details.get("opsWait").is_some());

        let mut approval = tested(2, Some(200));
        if let Ok(gates) = approval.gates.as_mut() {
            gates.approval = vec!["POST_TEST_TRAFFIC_SHIFT".into()];
        }
        let again = call("POST_TEST_TRAFFIC_SHIFT", &[], Some(details));
        let holding = decide(&again, &approval, 1030);
        assert!(holding.awaits_person, "{holding:?}");
        let details = answer(&again, &holding)["hookDetails"].clone();
        assert!(details.get("opsWait").is_none(), "{details}");

        // Twenty minutes later the URL answers 502 once: a new wait, not a stage failed at once.
        let blip = call("POST_TEST_TRAFFIC_SHIFT", &[], Some(details));
        let mut failing_later = tested(2, Some(502));
        failing_later.gates = approval.gates.clone();
        let decided = decide(&blip, &failing_later, 2200);
        assert_eq!(decided.status, HookStatus::InProgress, "{decided:?}");
        assert_eq!(decided.wait, Some((2200, 600)));
    }

    #[test]
    fn a_malformed_call_names_the_field() {
        let error =
            parse(&json!({"executionId": "e", "lifecycleStage": "POST_SCALE_UP"})).unwrap_err();
        assert!(error.to_string().contains("resourceArn"), "{error}");
    }
}
