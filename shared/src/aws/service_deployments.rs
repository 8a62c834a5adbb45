//! ECS's own blue/green, canary and linear deployments: the strategy a service names and its
//! service deployments (lifecycle stage, traffic weights, outcome, rollback), read from
//! ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions.
//!
//! For such a service the legacy `deployments` of DescribeServices are not where the outcome is:
//! the API reference (Deployment, `rolloutState`) says the rollout state "is only returned for
//! services that use the rolling update (`ECS`) deployment type". [`settle_rollouts`] gives each
//! such deployment the rollout state its service deployment reports, so a reader sees one answer
//! for every strategy.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookAction,
    ServiceDeployment, StopServiceDeploymentStopType,
};
use serde::Serialize;

use super::aws_error;
use super::ecs::{short_task_definition, DeploymentState, ServiceState};
use crate::error::Result;

/// The strategy of a service that names none.
pub const ROLLING: &str = "ROLLING";

/// How ECS runs a service's deployments, from its `deploymentConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Strategy {
    /// `ROLLING`, `BLUE_GREEN`, `CANARY` or `LINEAR`.
    pub name: String,
    /// How the production traffic moves and how long blue is kept, for people.
    pub plan: String,
    /// The CloudWatch alarms that make ECS fail (and, if set, roll back) a deployment.
    pub alarms: Vec<String>,
    /// The Lambda functions its lifecycle hooks call (their names, from `hookTargetArn`).
    pub hook_functions: Vec<String>,
    /// The stages at which each of those functions is called.
    pub hook_stages: BTreeMap<String, Vec<String>>,
    /// The stages where a pause hook stops its deployments for `ContinueServiceDeployment`.
    pub pauses: Vec<String>,
}

impl Strategy {
    /// Whether ECS runs the deployments itself through lifecycle stages (not a rolling update).
    pub fn native(&self) -> bool {
        !self.name.is_empty() && self.name != ROLLING
    }

    /// The strategy of `config` (ROLLING when it names none).
    pub fn of(config: Option<&DeploymentConfiguration>) -> Self {
        let name = config
            .and_then(|c| c.strategy())
            .map_or(ROLLING, |s| s.as_str())
            .to_string();
        let bake = config
            .and_then(|c| c.bake_time_in_minutes())
            .map(|m| format!("; blue is kept {m} min after the shift"))
            .unwrap_or_default();
        let plan = match name.as_str() {
            "BLUE_GREEN" => format!("all production traffic at once{bake}"),
            "CANARY" => {
                let canary = config.and_then(|c| c.canary_configuration());
                format!(
                    "{}% first for {} min, then the rest{bake}",
                    percent(canary.and_then(|c| c.canary_percent()).unwrap_or(5.0)),
                    canary
                        .and_then(|c| c.canary_bake_time_in_minutes())
                        .unwrap_or(10)
                )
            }
            "LINEAR" => {
                let linear = config.and_then(|c| c.linear_configuration());
                format!(
                    "{}% more every {} min{bake}",
                    percent(linear.and_then(|c| c.step_percent()).unwrap_or(10.0)),
                    linear
                        .and_then(|c| c.step_bake_time_in_minutes())
                        .unwrap_or(6)
                )
            }
            _ => "a rolling update".to_string(),
        };
        let alarms = config
            .and_then(|c| c.alarms())
            .filter(|a| a.enable())
            .map(|a| a.alarm_names().to_vec())
            .unwrap_or_default();
        let hooks = config.map(|c| c.lifecycle_hooks()).unwrap_or_default();
        let is_pause =
            |h: &&DeploymentLifecycleHook| h.target_type().is_some_and(|t| t.as_str() == "PAUSE");
        let function_of = |h: &DeploymentLifecycleHook| {
            let rest = h.hook_target_arn()?.split(":function:").nth(1)?;
            Some(rest.split(':').next().unwrap_or(rest).to_string())
        };
        let mut hook_functions = Vec::new();
        let mut hook_stages: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for hook in hooks.iter().filter(|h| !is_pause(h)) {
            let Some(function) = function_of(hook) else {
                continue;
            };
            if !hook_functions.contains(&function) {
                hook_functions.push(function.clone());
            }
            hook_stages.entry(function).or_default().extend(
                hook.lifecycle_stages()
                    .iter()
                    .map(|s| s.as_str().to_string()),
            );
        }
        let pauses = hooks
            .iter()
            .filter(is_pause)
            .flat_map(|h| h.lifecycle_stages().iter().map(|s| s.as_str().to_string()))
            .collect();
        Strategy {
            name,
            plan,
            alarms,
            hook_functions,
            hook_stages,
            pauses,
        }
    }
}

/// A share of production traffic, as a service deployment requested it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficWeight {
    /// The revision's task definition (`family:revision`).
    pub task_definition: String,
    /// Its share, in percent (`10`, `12.5`).
    pub percent: String,
}

/// One service deployment, as ECS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDeploymentView {
    /// Its ARN.
    pub arn: String,
    /// ECS's status: `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `STOP_REQUESTED`,
    /// `ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL`, `ROLLBACK_FAILED`.
    pub status: String,
    /// ECS's reason for the status.
    pub reason: Option<String>,
    /// The lifecycle stage it is at (or ended at).
    pub stage: Option<String>,
    /// The task definition ARN it deploys.
    pub target: Option<String>,
    /// The ARN of the service revision it deploys.
    pub target_revision: Option<String>,
    /// The production traffic it asked for: the target revision first.
    pub weights: Vec<TrafficWeight>,
    /// Alarms whose ALARM state failed it.
    pub triggered_alarms: Vec<String>,
    /// Why it was rolled back, if it was.
    pub rollback_reason: Option<String>,
    /// The task definition ARN it was rolled back to, if it was.
    pub rolled_back_to: Option<String>,
    /// When it was created, epoch milliseconds.
    pub created_at: Option<i64>,
    /// The production traffic it asked for the revision it deploys, in percent (`10`, `12.5`).
    pub target_weight: Option<String>,
    /// Its lifecycle hooks' executions as ECS reports them (`lifecycleHookDetails`).
    pub hooks: Vec<HookExecution>,
}

/// One execution of a lifecycle hook in a service deployment (API reference,
/// DeploymentLifecycleHookDetail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookExecution {
    /// The id `ContinueServiceDeployment` takes (`ecs-pause-...` for a pause hook).
    pub id: String,
    /// `AWS_LAMBDA` or `PAUSE`.
    pub kind: String,
    /// `AWAITING_ACTION`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED` or `TIMED_OUT`.
    pub status: String,
    /// When ECS takes the timeout action, epoch seconds.
    pub expires_at: Option<i64>,
    /// What ECS does then: `ROLLBACK` or `CONTINUE`.
    pub timeout_action: Option<String>,
}

impl HookExecution {
    /// A pause hook that waits for `ContinueServiceDeployment` (developer guide, "Pause hooks for
    /// Amazon ECS service deployments").
    pub fn awaits_action(&self) -> bool {
        self.kind == "PAUSE" && self.status == "AWAITING_ACTION"
    }
}

impl ServiceDeploymentView {
    /// The rollout state a rolling deployment in the same place would show: `COMPLETED` once it
    /// succeeded, `FAILED` once its rollback ended (successful or not), `STOPPED` for one stopped
    /// or being stopped (a newer deployment replaced it), else `IN_PROGRESS`, a rollback that is
    /// requested or runs included: the developer guide ("View service history using Amazon ECS
    /// service deployments") counts those as ongoing, and what it ends as is the news.
    pub fn rollout_state(&self) -> &'static str {
        match self.status.as_str() {
            "SUCCESSFUL" => "COMPLETED",
            "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" => "FAILED",
            "STOPPED" | "STOP_REQUESTED" => "STOPPED",
            _ => "IN_PROGRESS",
        }
    }

    /// The revision ECS's rollback went back to, once the rollback succeeded (not while it runs,
    /// not when it failed).
    pub fn rolled_back(&self) -> Option<&str> {
        (self.status == "ROLLBACK_SUCCESSFUL")
            .then_some(self.rolled_back_to.as_deref())
            .flatten()
    }

    /// Why it ended as it did, in ECS's words, with the alarms that fired.
    pub fn outcome_reason(&self) -> String {
        let mut reason = self
            .rollback_reason
            .clone()
            .or_else(|| self.reason.clone())
            .unwrap_or_else(|| format!("ECS reports service deployment {}", self.status));
        if self.status == "ROLLBACK_FAILED" {
            reason = format!("{reason}; ECS's rollback FAILED too (ROLLBACK_FAILED)");
        }
        if !self.triggered_alarms.is_empty() && !reason.contains(&self.triggered_alarms[0]) {
            reason = format!(
                "{reason} (alarm in ALARM: {})",
                self.triggered_alarms.join(", ")
            );
        }
        reason
    }

    /// Whether ECS still runs it (the developer guide's "Pending" and "Ongoing" statuses).
    pub fn in_flight(&self) -> bool {
        matches!(
            self.status.as_str(),
            "PENDING"
                | "IN_PROGRESS"
                | "STOP_REQUESTED"
                | "ROLLBACK_REQUESTED"
                | "ROLLBACK_IN_PROGRESS"
        )
    }

    /// Its pause hooks that wait for `ContinueServiceDeployment`.
    pub fn awaiting(&self) -> Vec<&HookExecution> {
        self.hooks.iter().filter(|h| h.awaits_action()).collect()
    }

    /// `stage PRODUCTION_TRAFFIC_SHIFT, production traffic web:3 10% / web:2 90%`.
    pub fn progress(&self) -> String {
        let stage = self.stage.as_deref().unwrap_or("no stage yet");
        if self.weights.is_empty() {
            return format!("stage {stage}");
        }
        let weights = self
            .weights
            .iter()
            .map(|w| format!("{} {}%", w.task_definition, w.percent))
            .collect::<Vec<_>>()
            .join(" / ");
        format!("stage {stage}, production traffic {weights}")
    }
}

/// `10`, `12.5`: a percentage as people write it.
pub fn percent(value: f64) -> String {
    let tenths = (value * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}")
    } else {
        format!("{tenths:.1}")
    }
}

/// How many service deployments a read looks at, newest first (DescribeServiceDeployments takes at
/// most 20 ARNs).
pub const HISTORY: usize = 20;
/// How many pages of ListServiceDeployments a read goes through at most.
const LIST_PAGES: usize = 5;

/// The service's newest service deployments, newest first, with their revisions' task definitions.
pub async fn read(
    client: &aws_sdk_ecs::Client,
    service: &ServiceState,
) -> Result<Vec<ServiceDeploymentView>> {
    // The API reference documents no order for ListServiceDeployments: read every page (up to
    // LIST_PAGES of 100) and keep the newest by creation time.
    let mut briefs = Vec::new();
    let mut next = None;
    for _ in 0..LIST_PAGES {
        let page = client
            .list_service_deployments()
            .cluster(&service.cluster)
            .service(&service.name)
            .max_results(100)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| aws_error("ecs", "ListServiceDeployments", e))?;
        briefs.extend(page.service_deployments().iter().cloned());
        next = page.next_token().map(String::from);
        if next.is_none() {
            break;
        }
    }
    briefs.sort_by_key(|b| std::cmp::Reverse(b.created_at().and_then(|t| t.to_millis().ok())));
    let arns: Vec<String> = briefs
        .iter()
        .take(HISTORY)
        .filter_map(|b| b.service_deployment_arn().map(String::from))
        .collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let described = client
        .describe_service_deployments()
        .set_service_deployment_arns(Some(arns))
        .send()
        .await
        .map_err(|e| aws_error("ecs", "DescribeServiceDeployments", e))?;
    let deployments = described.service_deployments();
    let mut revision_arns: Vec<String> = deployments
        .iter()
        .flat_map(|d| {
            let target = d.target_service_revision().and_then(|r| r.arn());
            let sources = d.source_service_revisions().iter().filter_map(|r| r.arn());
            let rollback = d.rollback().and_then(|r| r.service_revision_arn());
            target.into_iter().chain(sources).chain(rollback)
        })
        .map(String::from)
        .collect();
    revision_arns.sort();
    revision_arns.dedup();
    let mut task_definitions = BTreeMap::new();
    for batch in revision_arns.chunks(20) {
        let revisions = client
            .describe_service_revisions()
            .set_service_revision_arns(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("ecs", "DescribeServiceRevisions", e))?;
        for revision in revisions.service_revisions() {
            if let (Some(arn), Some(definition)) =
                (revision.service_revision_arn(), revision.task_definition())
            {
                task_definitions.insert(arn.to_string(), definition.to_string());
            }
        }
    }
    let mut views: Vec<ServiceDeploymentView> = deployments
        .iter()
        .map(|d| view(d, &task_definitions))
        .collect();
    views.sort_by_key(|v| std::cmp::Reverse(v.created_at));
    Ok(views)
}

/// One service deployment by ARN, with the ARN of the service it belongs to; `None` when ECS does
/// not know it (DescribeServiceDeployments lists it as a failure).
pub async fn describe_one(
    client: &aws_sdk_ecs::Client,
    arn: &str,
) -> Result<Option<(String, ServiceDeploymentView)>> {
    let described = client
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "DescribeServiceDeployments", e))?;
    Ok(described.service_deployments().first().map(|d| {
        (
            d.service_arn().unwrap_or_default().to_string(),
            view(d, &BTreeMap::new()),
        )
    }))
}

/// The target groups a service revision's tasks are registered in (its `resolvedConfiguration`:
/// API reference, ServiceRevisionLoadBalancer, "the target group associated with the service
/// revision"), and its task definition; `None` when ECS does not know the revision.
pub async fn revision_target_groups(
    client: &aws_sdk_ecs::Client,
    arn: &str,
) -> Result<Option<(String, Vec<String>)>> {
    let described = client
        .describe_service_revisions()
        .service_revision_arns(arn)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "DescribeServiceRevisions", e))?;
    Ok(described.service_revisions().first().map(|revision| {
        let groups = revision
            .resolved_configuration()
            .map(|r| {
                r.load_balancers()
                    .iter()
                    .filter_map(|b| b.target_group_arn().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        (
            revision.task_definition().unwrap_or_default().to_string(),
            groups,
        )
    }))
}

fn view(
    deployment: &ServiceDeployment,
    task_definitions: &BTreeMap<String, String>,
) -> ServiceDeploymentView {
    let definition_of = |arn: Option<&str>| arn.and_then(|a| task_definitions.get(a)).cloned();
    let target = deployment.target_service_revision();
    let weights = target
        .into_iter()
        .chain(deployment.source_service_revisions())
        .filter_map(|revision| {
            let weight = revision.requested_production_traffic_weight()?;
            let definition = definition_of(revision.arn())?;
            Some(TrafficWeight {
                task_definition: short_task_definition(&definition),
                percent: percent(weight),
            })
        })
        .collect();
    ServiceDeploymentView {
        arn: deployment
            .service_deployment_arn()
            .unwrap_or_default()
            .to_string(),
        status: deployment.status().map_or("", |s| s.as_str()).to_string(),
        reason: deployment.status_reason().map(String::from),
        stage: deployment.lifecycle_stage().map(|s| s.as_str().to_string()),
        target: definition_of(target.and_then(|t| t.arn())),
        target_revision: target.and_then(|t| t.arn()).map(String::from),
        weights,
        triggered_alarms: deployment
            .alarms()
            .map(|a| a.triggered_alarm_names().to_vec())
            .unwrap_or_default(),
        rollback_reason: deployment
            .rollback()
            .and_then(|r| r.reason())
            .map(String::from),
        rolled_back_to: definition_of(deployment.rollback().and_then(|r| r.service_revision_arn())),
        created_at: deployment.created_at().and_then(|t| t.to_millis().ok()),
        target_weight: target
            .and_then(|t| t.requested_production_traffic_weight())
            .map(percent),
        hooks: deployment
            .lifecycle_hook_details()
            .iter()
            .map(|hook| HookExecution {
                id: hook.hook_id().unwrap_or_default().to_string(),
                kind: hook.target_type().map_or("", |t| t.as_str()).to_string(),
                status: hook.status().map_or("", |s| s.as_str()).to_string(),
                expires_at: hook.expires_at().map(|t| t.secs()),
                timeout_action: hook.timeout_action().map(|a| a.as_str().to_string()),
            })
            .collect(),
    }
}

/// Continue (`rollback` false) or roll back a deployment paused at a pause hook: ECS's
/// ContinueServiceDeployment with the hook's id and the action `CONTINUE` or `ROLLBACK`.
pub async fn continue_paused(
    client: &aws_sdk_ecs::Client,
    deployment_arn: &str,
    hook_id: &str,
    rollback: bool,
) -> Result<()> {
    let action = if rollback {
        DeploymentLifecycleHookAction::Rollback
    } else {
        DeploymentLifecycleHookAction::Continue
    };
    client
        .continue_service_deployment()
        .service_deployment_arn(deployment_arn)
        .hook_id(hook_id)
        .action(action)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "ContinueServiceDeployment", e))?;
    Ok(())
}

/// Stop a deployment in flight and have ECS roll it back to the previous service revision
/// (StopServiceDeployment, stop type `ROLLBACK`: "You can use this option even if you didn't
/// configure the service deployment for the rollback option").
pub async fn stop_with_rollback(client: &aws_sdk_ecs::Client, deployment_arn: &str) -> Result<()> {
    client
        .stop_service_deployment()
        .service_deployment_arn(deployment_arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "StopServiceDeployment", e))?;
    Ok(())
}

/// The service deployment that stands for a legacy `deployment`: of its task definition, and
/// created closest to it (UpdateService creates both; one task definition may have several
/// service deployments: a forced new deployment, a redeploy, a rollback onto it), else, when ECS
/// gives no creation time, the newest of its task definition.
pub fn pair<'a>(
    deployment: &DeploymentState,
    views: &'a [ServiceDeploymentView],
) -> Option<&'a ServiceDeploymentView> {
    let candidates = views
        .iter()
        .filter(|v| v.target.as_deref() == Some(deployment.task_definition.as_str()));
    match deployment.created_at {
        Some(at) => candidates.min_by_key(|v| v.created_at.map_or(i64::MAX, |c| (c - at).abs())),
        None => candidates.max_by_key(|v| v.created_at),
    }
}

/// Give each legacy deployment the rollout state its service deployment reports (see [`pair`]).
/// It replaces one ECS may give too: for these strategies the service deployment is where ECS
/// tracks the stages, and a legacy COMPLETED could mean only that green's tasks are steady.
pub fn settle_rollouts(service: &mut ServiceState) {
    let views = service.service_deployments.clone();
    for deployment in &mut service.deployments {
        if let Some(view) = pair(deployment, &views) {
            deployment.rollout_state = Some(view.rollout_state().to_string());
            deployment.rollout_reason = Some(view.outcome_reason());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(status: &str) -> ServiceDeploymentView {
        ServiceDeploymentView {
            arn: "arn:aws:ecs:us-east-1:1:service-deployment/prod/web/x".into(),
            status: status.into(),
            reason: None,
            stage: Some("PRODUCTION_TRAFFIC_SHIFT".into()),
            target: Some("arn:aws:ecs:us-east-1:1:task-definition/web:3".into()),
            target_revision: None,
            weights: vec![
                TrafficWeight {
                    task_definition: "web:3".into(),
                    percent: "10".into(),
                },
                TrafficWeight {
                    task_definition: "web:2".into(),
                    percent: "90".into(),
                },
            ],
            triggered_alarms: vec!["web-5xx".into()],
            rollback_reason: None,
            rolled_back_to: None,
            created_at: Some(1),
            target_weight: None,
            hooks: Vec::new(),
        }
    }

    /// API reference, ServiceDeployment `status`, grouped as the developer guide's "View service
    /// history using Amazon ECS service deployments" groups them.
    #[test]
    fn each_service_deployment_status_reads_as_the_rollout_state_it_amounts_to() {
        for (status, rollout) in [
            ("PENDING", "IN_PROGRESS"),
            ("IN_PROGRESS", "IN_PROGRESS"),
            ("SUCCESSFUL", "COMPLETED"),
            ("ROLLBACK_REQUESTED", "IN_PROGRESS"),
            ("ROLLBACK_IN_PROGRESS", "IN_PROGRESS"),
            ("ROLLBACK_SUCCESSFUL", "FAILED"),
            ("ROLLBACK_FAILED", "FAILED"),
            ("STOPPED", "STOPPED"),
            ("STOP_REQUESTED", "STOPPED"),
        ] {
            assert_eq!(with(status).rollout_state(), rollout, "{status}");
        }
    }

    #[test]
    fn progress_names_the_stage_and_every_weight_and_a_reason_names_the_alarm() {
        let view = with("ROLLBACK_SUCCESSFUL");
        assert_eq!(
            view.progress(),
            "stage PRODUCTION_TRAFFIC_SHIFT, production traffic web:3 10% / web:2 90%"
        );
        assert_eq!(
            view.outcome_reason(),
            "ECS reports service deployment ROLLBACK_SUCCESSFUL (alarm in ALARM: web-5xx)"
        );
        assert_eq!(percent(12.5), "12.5");
        assert_eq!(percent(5.0), "5");
    }
}
