//! The person's gate on ECS's own deployments of a service whose lifecycle hook is this function:
//! `status`, `promote` and `abort` from chat name the service as `cluster/service`, and ECS's
//! `HOOK_AWAITING_ACTION` event (a deployment paused at a pause hook) is alerted with the commands
//! that answer it.
//!
//! A deployment waits for a person in one of two ways (developer guide, "Lambda hooks for Amazon
//! ECS service deployments" and "Pause hooks for Amazon ECS service deployments"):
//! - at a stage the service names in `ops:hook-approval`, this function's own hook answers
//!   `IN_PROGRESS` once every automatic gate passes and records where it holds the deployment
//!   (`ops:hook-holding`: the deployment and the step, a traffic step with its weight), until
//!   `promote` records a release of that hold (`ops:hook-release`) that its next call reads (then
//!   `SUCCEEDED`). A hold counts only while ECS shows the deployment at that step;
//! - at a pause hook, ECS waits for `ContinueServiceDeployment`, which `promote` calls with
//!   `CONTINUE` (and `abort` with `ROLLBACK`).
//!
//! `abort` of a deployment not held at a pause hook calls StopServiceDeployment with `ROLLBACK`.
//! The decisions here are pure; observing is in [`crate::observe::gate_view`].

use ops_core::aws::ecs::cluster_and_service_of;
use ops_core::aws::service_deployments::{HookExecution, ServiceDeploymentView, Strategy};
use ops_core::plan::Plan;
use ops_core::time::utc_text;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::hook::{Hold, HookDecision, HookStatus, Release};
use crate::test_url::TEST_STAGE;

/// The detail type of ECS's hook events (developer guide, "Amazon ECS service deployment hook
/// state change events").
pub const HOOK_STATE_CHANGE: &str = "ECS Hook State Change";
/// The event of a pause hook that waits for `ContinueServiceDeployment`.
pub const HOOK_AWAITING_ACTION: &str = "HOOK_AWAITING_ACTION";

/// Whether a chat `app` names an ECS service (`cluster/service`) rather than a listener's app.
pub fn names_a_service(app: &str) -> bool {
    app.contains('/')
}

/// `(cluster, service)` of a chat `app` naming a service, or why it does not.
pub fn cluster_and_service(app: &str) -> Result<(String, String), String> {
    match app.split_once('/') {
        Some((cluster, service))
            if !cluster.is_empty() && !service.is_empty() && !service.contains('/') =>
        {
            Ok((cluster.to_string(), service.to_string()))
        }
        _ => Err(format!(
            "`{app}` is not cluster/service: name an ECS service as its cluster, a slash and its name (prod/checkout)"
        )),
    }
}

/// A service's deployment as a person at the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateView {
    /// `cluster/service`.
    pub service: String,
    /// The service's ARN.
    pub service_arn: String,
    /// How ECS deploys it.
    pub strategy: Strategy,
    /// The deployment in flight, else the newest one.
    pub deployment: Option<ServiceDeploymentView>,
    /// For a deployment in flight at a stage: what the hook's gates answer there now, or why
    /// they could not be read.
    pub gates: Option<Result<HookDecision, String>>,
    /// Where the hook holds the deployment in flight for a person, and it is not released yet.
    pub hold: Option<Hold>,
    /// The service's `ops:hook-alerted` tag.
    pub alerted: Option<String>,
    /// The service's `ops:hook-test-url` tag: the hook function checks it (from where it runs),
    /// never a person's view, so `gates` leave it out.
    pub test_url: Option<String>,
}

impl GateView {
    /// The deployment in flight, if one is.
    pub fn in_flight(&self) -> Option<&ServiceDeploymentView> {
        self.deployment.as_ref().filter(|d| d.in_flight())
    }

    /// What the deployment in flight waits for, for people.
    pub fn waiting_for(&self) -> String {
        let Some(deployment) = self.in_flight() else {
            return "nothing: no deployment is in flight".into();
        };
        if deployment.status != "IN_PROGRESS" && deployment.status != "PENDING" {
            return format!("ECS: the deployment is {}", deployment.status);
        }
        let stage = deployment.stage.as_deref().unwrap_or("its first stage");
        let pauses = deployment.awaiting();
        if !pauses.is_empty() {
            return format!(
                "a person: {} at {stage} awaits promote or abort; {}",
                pauses
                    .iter()
                    .map(|p| format!("pause hook {}", p.id))
                    .collect::<Vec<_>>()
                    .join(", "),
                timeout_text(&pauses)
            );
        }
        if let Some(hold) = &self.hold {
            return format!(
                "a person: the hook holds {} at {} (`ops:hook-approval`) until promote or abort",
                target_of(deployment),
                hold.step
            );
        }
        match &self.gates {
            Some(Err(problem)) => format!("unknown: the gates at {stage} could not be read ({problem})"),
            Some(Ok(decision)) if decision.status == HookStatus::Failed => format!(
                "nothing: a gate fails at {stage}, so the hook answers FAILED when ECS calls it there ({})",
                decision.reason
            ),
            // The health wait's deadline counts from the hook's first call of the stage, which only
            // the hook knows: the chat view names what it waits for, not when it gives up.
            Some(Ok(decision))
                if decision.status == HookStatus::InProgress && !decision.awaits_person =>
            {
                format!(
                    "the hook's gates at {stage}: {}",
                    without_deadline(&decision.reason)
                )
            }
            Some(Ok(decision)) if decision.awaits_person => format!(
                "ECS: the gates pass at {stage}; where the hook is called here (`ops:hook-approval`), it holds the deployment for a person at its next call"
            ),
            Some(Ok(decision)) => format!(
                "ECS: the gates pass at {stage} ({}), and ECS goes on by itself",
                decision.reason
            ),
            None => format!("ECS: stage {stage}"),
        }
    }

    /// The gates' answer, when they were read.
    fn gates_read(&self) -> Result<Option<&HookDecision>, String> {
        match &self.gates {
            Some(Ok(decision)) => Ok(Some(decision)),
            Some(Err(problem)) => Err(problem.clone()),
            None => Ok(None),
        }
    }
}

/// A wait's reason without the deadline the hook computes from its own first call.
fn without_deadline(reason: &str) -> &str {
    reason.split("; fails at").next().unwrap_or_default()
}

/// When the pauses time out and what ECS does then.
pub fn timeout_text(pauses: &[&HookExecution]) -> String {
    pauses
        .iter()
        .filter_map(|p| {
            let at = u64::try_from(p.expires_at?).ok()?;
            Some(format!(
                "at {} ECS will {}",
                utc_text(at),
                match p.timeout_action.as_deref() {
                    Some("CONTINUE") => "continue it",
                    _ => "roll it back",
                }
            ))
        })
        .next()
        .unwrap_or_else(|| "ECS rolls it back when the pause times out".into())
}

/// What a person's command changes in AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum GateAction {
    /// ContinueServiceDeployment `CONTINUE` for a pause hook.
    ContinuePause {
        /// The service deployment's ARN.
        deployment: String,
        /// The pause hook's id.
        hook_id: String,
    },
    /// ContinueServiceDeployment `ROLLBACK` for a pause hook.
    RollBackPause {
        /// The service deployment's ARN.
        deployment: String,
        /// The pause hook's id.
        hook_id: String,
    },
    /// Record the release the hook's next call reads (tag `ops:hook-release` on the service).
    Release {
        /// The service's ARN.
        service_arn: String,
        /// The release.
        release: String,
    },
    /// StopServiceDeployment `ROLLBACK`.
    StopWithRollback {
        /// The service deployment's ARN.
        deployment: String,
    },
}

/// The deployment in flight that a command acts on: the one `deployment` names (its id, as the
/// alert's command line carries it), or, when it names none, the one in flight.
fn the_deployment<'a>(
    view: &'a GateView,
    command: &str,
    deployment: Option<&str>,
) -> Result<&'a ServiceDeploymentView, String> {
    let service = &view.service;
    let in_flight = view.in_flight().ok_or_else(|| {
        format!(
            "no deployment of {service} is in flight: nothing to {command}{}",
            last(view)
        )
    })?;
    match deployment {
        Some(id) if id != deployment_id(in_flight) => Err(format!(
            "deployment {id} of {service} is not the one in flight ({} of {} is): nothing changed; send {command} without `deployment` to act on that one",
            deployment_id(in_flight),
            target_of(in_flight)
        )),
        _ => Ok(in_flight),
    }
}

/// `promote`: release the deployment held for a person, if every automatic gate passes.
pub fn decide_promote(
    view: &GateView,
    by: &str,
    deployment: Option<&str>,
) -> Result<Plan<GateAction>, String> {
    let deployment = the_deployment(view, "promote", deployment)?;
    let service = &view.service;
    if deployment.status != "IN_PROGRESS" && deployment.status != "PENDING" {
        return Err(format!(
            "the deployment of {service} is {}: nothing to promote",
            deployment.status
        ));
    }
    let target = target_of(deployment);
    let stage = deployment.stage.clone().unwrap_or_default();
    let gates = view.gates_read().map_err(|problem| {
        format!(
            "{target} cannot be promoted: its gates could not be read ({problem}); nothing changed"
        )
    })?;
    if let Some(decision) = gates {
        if decision.status == HookStatus::Failed {
            return Err(format!(
                "{target} cannot be promoted at {stage}: {}; abort it to roll back",
                decision.reason
            ));
        }
        if decision.status == HookStatus::InProgress && !decision.awaits_person {
            return Err(format!(
                "{target} cannot be promoted yet: {}",
                without_deadline(&decision.reason)
            ));
        }
    }
    let mut plan = Plan::new();
    for pause in deployment.awaiting() {
        plan = plan.change(
            GateAction::ContinuePause {
                deployment: deployment.arn.clone(),
                hook_id: pause.id.clone(),
            },
            format!(
                "{by} continues {target} at {stage} (pause hook {})",
                pause.id
            ),
        );
    }
    if let Some(hold) = &view.hold {
        let release = Release {
            deployment: hold.deployment.clone(),
            stage: hold.step.clone(),
            by: ops_core::tags::tag_word(by),
        };
        plan = plan.change(
            GateAction::Release {
                service_arn: view.service_arn.clone(),
                release: release.encode(),
            },
            format!(
                "{by} releases {target} at {}: the hook's next call answers SUCCEEDED if every gate still passes",
                hold.step
            ),
        );
    }
    if plan.is_empty() {
        return Err(format!(
            "nothing holds the deployment of {target} for a person at {stage}; it waits for {}",
            view.waiting_for()
        ));
    }
    Ok(plan)
}

/// `abort`: ECS rolls the deployment in flight back (a pause answered `ROLLBACK`, else
/// StopServiceDeployment `ROLLBACK`); a deployment already rolling back is left to ECS. The gates
/// are not needed: an abort is never held by what they read.
pub fn decide_abort(
    view: &GateView,
    by: &str,
    deployment: Option<&str>,
) -> Result<Plan<GateAction>, String> {
    let deployment = the_deployment(view, "abort", deployment)?;
    let target = target_of(deployment);
    if deployment.status.starts_with("ROLLBACK_") || deployment.status == "STOP_REQUESTED" {
        return Ok(Plan::new().note(format!(
            "the deployment of {target} is already {}: ECS is taking it back, nothing to do",
            deployment.status
        )));
    }
    let stage = deployment.stage.clone().unwrap_or_default();
    let pauses = deployment.awaiting();
    if pauses.is_empty() {
        return Ok(Plan::new().change(
            GateAction::StopWithRollback {
                deployment: deployment.arn.clone(),
            },
            format!("{by} stops the deployment of {target} at {stage}: ECS rolls it back"),
        ));
    }
    Ok(pauses.iter().fold(Plan::new(), |plan, pause| {
        plan.change(
            GateAction::RollBackPause {
                deployment: deployment.arn.clone(),
                hook_id: pause.id.clone(),
            },
            format!(
                "{by} answers pause hook {} at {stage} with ROLLBACK: ECS rolls {target} back",
                pause.id
            ),
        )
    }))
}

/// `status` of a service: its strategy, the deployment (stage, weights, hooks) and what it waits
/// for.
pub fn status(view: &GateView) -> Value {
    let deployment = view.deployment.as_ref().map(|d| {
        json!({
            "arn": d.arn,
            "status": d.status,
            "stage": d.stage,
            "target": d.target.as_deref().map(ops_core::aws::ecs::short_task_definition),
            "production_traffic": d.weights,
            "progress": d.progress(),
            "hooks": d.hooks,
            "reason": d.reason,
        })
    });
    json!({
        "service": view.service,
        "strategy": view.strategy,
        "deployment": deployment,
        "waiting_for": view.waiting_for(),
        "gates_now": match &view.gates {
            Some(Ok(g)) => json!({"answer": g.status.as_str(), "reason": g.reason}),
            Some(Err(problem)) => json!({"unreadable": problem}),
            None => Value::Null,
        },
        "held_for_a_person_at": view.hold.as_ref().map(|h| &h.step),
        "test_url": view.test_url.as_ref().map(|url| format!(
            "{url}: checked by the hook function at {TEST_STAGE}, from where it runs; not part of gates_now"
        )),
    })
}

/// ` (the last one, <arn>, is <status>)`, or nothing.
fn last(view: &GateView) -> String {
    view.deployment
        .as_ref()
        .map(|d| format!(" (the last one, {}, is {})", d.arn, d.status))
        .unwrap_or_default()
}

/// `web:3`, or the deployment's ARN when its revision is unknown.
pub fn target_of(deployment: &ServiceDeploymentView) -> String {
    deployment
        .target
        .as_deref()
        .map(ops_core::aws::ecs::short_task_definition)
        .unwrap_or_else(|| deployment.arn.clone())
}

/// The service deployment's id (its ARN's last part).
pub fn deployment_id(deployment: &ServiceDeploymentView) -> &str {
    deployment.arn.rsplit('/').next().unwrap_or_default()
}

/// What ECS's hook state change event says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookEvent {
    /// `HOOK_AWAITING_ACTION`, `HOOK_SUCCEEDED`, ...
    pub event_name: String,
    /// The hook's id.
    pub hook_id: String,
    /// `PAUSE` or `AWS_LAMBDA`.
    #[serde(default)]
    pub hook_type: Option<String>,
    /// The stage.
    pub lifecycle_stage: String,
    /// The service's ARN.
    pub service_arn: String,
    /// The service deployment's ARN.
    pub service_deployment_arn: String,
}

impl HookEvent {
    /// `(cluster, service)` of the service it names; `None` for an ARN that does not fit.
    pub fn cluster_and_service(&self) -> Option<(&str, &str)> {
        cluster_and_service_of(&self.service_arn)
    }
}

/// Whether `event` is still true of `view`: the deployment it names is the one in flight, and its
/// pause hook still awaits action (a late or repeated event of an answered pause is not news).
pub fn still_paused<'a>(view: &'a GateView, event: &HookEvent) -> Option<&'a HookExecution> {
    let deployment = view.in_flight()?;
    (deployment.arn == event.service_deployment_arn).then_some(())?;
    deployment
        .awaiting()
        .into_iter()
        .find(|h| h.id == event.hook_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::aws::service_deployments::TrafficWeight;

    fn deployment(status: &str, hooks: Vec<HookExecution>) -> ServiceDeploymentView {
        ServiceDeploymentView {
            arn: "arn:aws:ecs:us-west-2:123456789012:service-deployment/prod/web/EZe5".into(),
            status: status.into(),
            reason: None,
            stage: Some("POST_TEST_TRAFFIC_SHIFT".into()),
            target: Some("arn:aws:ecs:us-west-2:123456789012:task-definition/web:3".into()),
            target_revision: None,
            weights: vec![TrafficWeight {
                task_definition: "web:2".into(),
                percent: "100".into(),
            }],
            triggered_alarms: vec![],
            rollback_reason: None,
            rolled_back_to: None,
            created_at: Some(1),
            target_weight: None,
            hooks,
        }
    }

    fn pause(status: &str) -> HookExecution {
        HookExecution {
            id: "ecs-pause-abc".into(),
            kind: "PAUSE".into(),
            status: status.into(),
            expires_at: Some(1_800_000_000),
            timeout_action: Some("ROLLBACK".into()),
        }
    }

    fn view(
        deployment: Option<ServiceDeploymentView>,
        gates: Option<Result<HookDecision, String>>,
    ) -> GateView {
        GateView {
            service: "prod/web".into(),
            service_arn: "arn:aws:ecs:us-west-2:123456789012:service/prod/web".into(),
            strategy: Strategy::default(),
            deployment,
            gates,
            hold: None,
            alerted: None,
            test_url: None,
        }
    }

    fn gates(
        status: HookStatus,
        awaits_person: bool,
        reason: &str,
    ) -> Option<Result<HookDecision, String>> {
        Some(Ok(HookDecision {
            status,
            reason: reason.into(),
            wait: None,
            awaits_person,
        }))
    }

    #[test]
    fn promote_continues_a_pause_when_the_gates_pass_and_refuses_over_a_firing_alarm() {
        let paused = view(
            Some(deployment("IN_PROGRESS", vec![pause("AWAITING_ACTION")])),
            gates(HookStatus::Succeeded, false, "web:3 2/2 healthy"),
        );
        let plan = decide_promote(&paused, "alice", None).unwrap();
        assert_eq!(
            plan.changes[0].action,
            GateAction::ContinuePause {
                deployment: "arn:aws:ecs:us-west-2:123456789012:service-deployment/prod/web/EZe5"
                    .into(),
                hook_id: "ecs-pause-abc".into()
            }
        );
        assert!(paused.waiting_for().starts_with(
            "a person: pause hook ecs-pause-abc at POST_TEST_TRAFFIC_SHIFT awaits promote or abort; at 2027-01-15"
        ));
        let mut firing = paused.clone();
        firing.gates = gates(HookStatus::Failed, false, "alarm in ALARM: web-5xx");
        assert_eq!(
            decide_promote(&firing, "alice", None).unwrap_err(),
            "web:3 cannot be promoted at POST_TEST_TRAFFIC_SHIFT: alarm in ALARM: web-5xx; abort it to roll back"
        );
    }

    #[test]
    fn promote_releases_the_hooks_manual_gate_and_refuses_when_nothing_waits_for_a_person() {
        let mut held = view(
            Some(deployment("IN_PROGRESS", vec![])),
            gates(HookStatus::InProgress, true, "waiting for a person"),
        );
        held.hold = Some(Hold {
            deployment: "EZe5".into(),
            step: "POST_TEST_TRAFFIC_SHIFT".into(),
        });
        let plan = decide_promote(&held, "Zoë O'Neil", None).unwrap();
        assert_eq!(
            plan.changes[0].action,
            GateAction::Release {
                service_arn: "arn:aws:ecs:us-west-2:123456789012:service/prod/web".into(),
                release: "EZe5 POST_TEST_TRAFFIC_SHIFT Zoë_O_Neil".into()
            }
        );
        // A command pinned to another deployment (an old alert's line) changes nothing.
        assert!(decide_promote(&held, "alice", Some("other"))
            .unwrap_err()
            .starts_with(
                "deployment other of prod/web is not the one in flight (EZe5 of web:3 is)"
            ));
        // The synthetic gates say a person would be asked, but the hook holds nothing: nothing
        // to release.
        let mut unheld = held.clone();
        unheld.hold = None;
        assert!(decide_promote(&unheld, "alice", None).is_err());
        let going = view(
            Some(deployment("IN_PROGRESS", vec![])),
            gates(HookStatus::Succeeded, false, "web:3 2/2 healthy"),
        );
        assert!(decide_promote(&going, "alice", None)
            .unwrap_err()
            .starts_with(
                "nothing holds the deployment of web:3 for a person at POST_TEST_TRAFFIC_SHIFT"
            ));
        let unhealthy = view(
            Some(deployment("IN_PROGRESS", vec![])),
            gates(
                HookStatus::InProgress,
                false,
                "waiting for web:3 1/2 healthy at POST_TEST_TRAFFIC_SHIFT; fails at 2026-12-01T10:00:00Z",
            ),
        );
        assert_eq!(
            decide_promote(&unhealthy, "alice", None).unwrap_err(),
            "web:3 cannot be promoted yet: waiting for web:3 1/2 healthy at POST_TEST_TRAFFIC_SHIFT"
        );
        let done = view(Some(deployment("SUCCESSFUL", vec![])), None);
        assert!(decide_promote(&done, "alice", None)
            .unwrap_err()
            .starts_with("no deployment of prod/web is in flight"));
    }

    #[test]
    fn abort_answers_a_pause_with_rollback_else_stops_the_deployment_and_leaves_a_rollback_alone() {
        let paused = view(
            Some(deployment("IN_PROGRESS", vec![pause("AWAITING_ACTION")])),
            None,
        );
        assert!(matches!(
            decide_abort(&paused, "bob", None).unwrap().changes[0].action,
            GateAction::RollBackPause { .. }
        ));
        let running = view(
            Some(deployment("IN_PROGRESS", vec![pause("SUCCEEDED")])),
            None,
        );
        assert!(matches!(
            decide_abort(&running, "bob", None).unwrap().changes[0].action,
            GateAction::StopWithRollback { .. }
        ));
        let back = view(Some(deployment("ROLLBACK_IN_PROGRESS", vec![])), None);
        let plan = decide_abort(&back, "bob", None).unwrap();
        assert!(plan.is_empty());
        assert!(plan.notes[0].contains("already ROLLBACK_IN_PROGRESS"));
        assert!(decide_abort(&view(None, None), "bob", None).is_err());
    }

    #[test]
    fn a_service_is_named_as_cluster_and_service() {
        assert!(names_a_service("prod/web"));
        assert!(!names_a_service("shop"));
        assert_eq!(
            cluster_and_service("prod/web").unwrap(),
            ("prod".into(), "web".into())
        );
        assert!(cluster_and_service("prod/").is_err());
        assert!(cluster_and_service("a/b/c").is_err());
    }
}
