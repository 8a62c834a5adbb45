//! The handler: route an event or chat command through observe, decide, act and report.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ops_core::alert::AlertSink;
use ops_core::aws::ecr::{EcrImages, ImageSelector};
use ops_core::aws::ecs::{EcsServices, ServiceState, TaskDefinitionState};
use ops_core::aws::iam::IamSimulator;
use ops_core::command::{Command, CommandError};
use ops_core::doctor;
use ops_core::events::{
    classify, parse_event, EcrImageAction, EcsDeploymentStateChange, EventError, Incoming,
    ECR_IMAGE_ACTION, ECS_DEPLOYMENT_STATE_CHANGE,
};
use ops_core::image::{parse_digest, parse_tag, ImageRef};
use ops_core::plan::{execute, Execution, Mode, Plan};
use ops_core::registry::{own_registry, Caller};
use ops_core::{Error, Result};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::act::{apply, Started};
use crate::commands::{status_line, DeployArgs, ServiceArgs, COMMANDS};
use crate::config::DeployConfig;
use crate::contract::{self, opt_in, OptIn, Trigger};
use crate::decide::{
    decide_deploy, decide_outcome, decide_rollback, foreign_deployment, is_own_deployment,
    rollback_target, Action, NewImage,
};
use crate::observe;
use crate::report::{
    failure_alert, forged_push_alert, outcome_alert, problem_alert, refusal_alert,
};

/// What the handler works with, built once at start.
pub struct Deps<A> {
    /// ECS adapter.
    pub ecs: EcsServices,
    /// IAM's policy simulator, for `doctor`.
    pub iam: IamSimulator,
    /// ECR adapter.
    pub ecr: EcrImages,
    /// Where alerts go.
    pub alerts: A,
    /// Configuration.
    pub config: DeployConfig,
}

/// Per-invocation facts: who runs the function, and the time (an input, never read inside).
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function's account and region.
    pub caller: Caller,
    /// Now, in epoch seconds.
    pub now: u64,
}

/// Handle one invocation; the JSON is what the caller (chat) sees.
pub async fn function_handler<A: AlertSink>(
    payload: Value,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    match classify(payload)? {
        Incoming::Event {
            detail_type, raw, ..
        } if detail_type == ECR_IMAGE_ACTION => on_push(&raw, invocation, deps).await,
        Incoming::Event {
            detail_type, raw, ..
        } if detail_type == ECS_DEPLOYMENT_STATE_CHANGE => {
            on_deployment_state_change(&raw, invocation, deps).await
        }
        Incoming::Event { detail_type, .. } => {
            debug!(detail_type, "event type not handled");
            Ok(ignored(format!(
                "deploy-trigger does not handle `{detail_type}` events"
            )))
        }
        Incoming::Command(raw) => {
            on_command(
                COMMANDS.parse(&deps.config.common.function_name, &raw)?,
                invocation,
                deps,
            )
            .await
        }
        Incoming::AlarmAction(_) => Err(EventError::Unrecognised(
            "deploy-trigger does not handle CloudWatch alarm actions".into(),
        )
        .into()),
    }
}

async fn on_push<A: AlertSink>(
    raw: &Value,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    let event = parse_event::<EcrImageAction>(raw)?;
    let push = &event.detail;
    if push.action_type != "PUSH" || push.result != "SUCCESS" {
        debug!(action = %push.action_type, result = %push.result, "not a successful push");
        return Ok(ignored(format!(
            "ECR {} with result {} is not a successful push",
            push.action_type, push.result
        )));
    }
    let malformed = |reason: String| {
        Error::Event(EventError::Malformed {
            detail_type: ECR_IMAGE_ACTION.into(),
            reason,
        })
    };
    let repository = checked_repository(&push.repository_name).map_err(malformed)?;
    let digest = parse_digest(&push.image_digest)?;
    let tag = push
        .image_tag
        .as_deref()
        .map(|t| parse_tag(t, t))
        .transpose()?;
    let account = event
        .account
        .clone()
        .ok_or_else(|| malformed("the event has no `account`".into()))?;
    let region = event
        .region
        .clone()
        .ok_or_else(|| malformed("the event has no `region`".into()))?;
    let registry = own_registry(&account, &region);
    deps.config
        .registries
        .ensure(&registry, &invocation.caller)?;
    // Verify the event's claim against ECR before acting (anyone who may invoke the function can
    // send a push event): the digest must be in the repository, and ECR's `imagePushedAt`, not the
    // event, says when it was pushed.
    let pushed = match deps
        .ecr
        .resolve(
            &account,
            &repository,
            &ImageSelector::Digest(digest.clone()),
        )
        .await
    {
        Ok(pushed) => pushed,
        Err(Error::NotFound { .. }) => {
            let message = format!(
                "ECR repository `{repository}` (registry {account}) has no image {digest}: the push event claims an image ECR does not have, so it is forged or stale (the image was deleted); nothing was deployed"
            );
            warn!(repository = %repository, digest = %digest, "push of an image not in ECR refused");
            deps.alerts
                .publish(&forged_push_alert(
                    &deps.config.common.function_name,
                    &repository,
                    &digest,
                    tag.as_deref(),
                    &message,
                ))
                .await?;
            return Err(Error::Refused(message));
        }
        Err(other) => return Err(other),
    };
    let image = NewImage {
        registry,
        repository,
        tag,
        digest,
        pushed_at_ms: pushed.pushed_at_ms,
    };

    let (candidates, mut problems) =
        observe::candidates(&deps.ecs, &deps.config.clusters, &image.repository).await?;
    let decision = decide_deploy(&candidates, &image, &Trigger::EcrPush, invocation.now);
    problems.extend(decision.problems);
    let refused = decision.refused;
    let revisions = candidates
        .iter()
        .map(|c| (c.current.arn().to_string(), c.current.clone()))
        .collect();
    let (execution, started) =
        run(decision.plan, Mode::Apply, &revisions, invocation, deps).await?;
    // After acting: an invocation that fails and is retried warns once, on the run that succeeds.
    for problem in &problems {
        warn!(service = %problem.service, problem = %problem.problem, "opted-in service not deployed");
        deps.alerts
            .publish(&problem_alert(
                &deps.config.common.function_name,
                problem,
                &image,
            ))
            .await?;
    }
    for refusal in &refused {
        info!(service = %refusal.service, refused = %refusal.refused, runs = %refusal.runs, "late or repeated push refused");
        deps.alerts
            .publish(&refusal_alert(
                &deps.config.common.function_name,
                refusal,
                &image,
            ))
            .await?;
    }
    Ok(answer(
        &deps.config.common.function_name,
        &execution,
        &started,
        json!({ "image": image.reference(), "problems": problems, "refused": refused }),
    ))
}

async fn on_deployment_state_change<A: AlertSink>(
    raw: &Value,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    let event = parse_event::<EcsDeploymentStateChange>(raw)?;
    let service_arn = event
        .resources
        .as_ref()
        .and_then(|r| r.first())
        .cloned()
        .ok_or_else(|| {
            Error::Event(EventError::Malformed {
                detail_type: ECS_DEPLOYMENT_STATE_CHANGE.into(),
                reason: "`resources` names no service ARN".into(),
            })
        })?;
    let Some((cluster, name)) = service_arn
        .split_once(":service/")
        .and_then(|(_, path)| path.split_once('/'))
    else {
        return Err(EventError::Malformed {
            detail_type: ECS_DEPLOYMENT_STATE_CHANGE.into(),
            reason: format!(
                "`{service_arn}` is not a service ARN of the form ...:service/<cluster>/<name>"
            ),
        }
        .into());
    };
    if !deps.config.clusters.iter().any(|c| c == cluster) {
        return Ok(ignored(format!(
            "cluster `{cluster}` is not managed by deploy-trigger"
        )));
    }
    let service = deps.ecs.describe(cluster, name).await?;
    if opt_in(&service.tags).is_none() {
        return Ok(ignored(format!(
            "{} has not opted in",
            service.qualified_name()
        )));
    }
    let detail = &event.detail;
    if !is_own_deployment(&service, &detail.deployment_id) {
        // Not caused by this service's rollouts (or forged): never page, never tag.
        let reason = foreign_deployment(&service, &detail.deployment_id);
        info!(service = %service.qualified_name(), deployment = %detail.deployment_id, event = %detail.event_name, "state change of a deployment the service does not have ignored");
        return Ok(ignored(reason));
    }
    let reason = detail.reason.clone().unwrap_or_default();
    let decision = decide_outcome(
        &service,
        &detail.event_name,
        &detail.deployment_id,
        &reason,
        invocation.now,
    );
    if let Some(outcome) = &decision.outcome {
        let revisions = [
            outcome.deployed.clone(),
            outcome.previous.clone(),
            outcome.rolled_back_to.clone(),
        ];
        let images = observe::revision_images(&deps.ecs, &revisions).await;
        // Alert before recording: a crash in between repeats the alert rather than losing it.
        deps.alerts
            .publish(&outcome_alert(
                &deps.config.common.function_name,
                outcome,
                &images,
            ))
            .await?;
        info!(service = %outcome.service, deployment = %outcome.deployment_id, succeeded = outcome.succeeded, "deployment outcome reported");
    }
    let (execution, started) = run(
        decision.plan,
        Mode::Apply,
        &BTreeMap::new(),
        invocation,
        deps,
    )
    .await?;
    Ok(answer(
        &deps.config.common.function_name,
        &execution,
        &started,
        json!({ "outcome": decision.outcome }),
    ))
}

async fn on_command<A: AlertSink>(
    command: Command,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    let requested_by = command
        .requested_by
        .clone()
        .unwrap_or_else(|| "an unnamed chat user".into());
    let mode = Mode::from_dry_run(command.dry_run);
    match command.name.as_str() {
        "deploy" => {
            let args: DeployArgs = command.args_as()?;
            let selector = image_selector(&command, &args)?;
            let service =
                observe::find_service(&deps.ecs, &deps.config.clusters, &args.service).await?;
            let opt_in = opted_in(&service)?;
            let candidate = observe::candidate(&deps.ecs, service, opt_in).await?;
            let registry = registry_of(&candidate.current, &candidate.opt_in, &invocation.caller);
            deps.config
                .registries
                .ensure(&registry, &invocation.caller)?;
            let registry_id =
                ImageRef::parse(&format!("{registry}/{}", candidate.opt_in.repository))
                    .ok()
                    .and_then(|r| r.ecr_registry())
                    .map(|(account, _)| account)
                    .ok_or_else(|| {
                        Error::Refused(format!("registry `{registry}` is not an ECR registry"))
                    })?;
            let resolved = deps
                .ecr
                .resolve(&registry_id, &candidate.opt_in.repository, &selector)
                .await?;
            let tag = match &selector {
                ImageSelector::Tag(tag) => Some(tag.clone()),
                ImageSelector::Digest(_) => resolved.tags.first().cloned(),
            };
            let image = NewImage {
                registry,
                repository: candidate.opt_in.repository.clone(),
                tag,
                digest: resolved.digest,
                pushed_at_ms: resolved.pushed_at_ms,
            };
            let decision = decide_deploy(
                std::slice::from_ref(&candidate),
                &image,
                &Trigger::ChatDeploy { requested_by },
                invocation.now,
            );
            if let Some(problem) = decision.problems.first() {
                return Err(Error::Refused(format!(
                    "{}: {}",
                    problem.service, problem.problem
                )));
            }
            let revisions = BTreeMap::from([(
                candidate.current.arn().to_string(),
                candidate.current.clone(),
            )]);
            let (execution, started) =
                run(decision.plan, mode, &revisions, invocation, deps).await?;
            Ok(answer(
                &deps.config.common.function_name,
                &execution,
                &started,
                json!({ "image": image.reference() }),
            ))
        }
        "rollback" => {
            let args: ServiceArgs = command.args_as()?;
            let service =
                observe::find_service(&deps.ecs, &deps.config.clusters, &args.service).await?;
            opted_in(&service)?;
            let target_arn = rollback_target(&service).map_err(Error::Refused)?;
            let target = rollback_revision(&deps.ecs, &target_arn).await?;
            let plan = decide_rollback(&service, &target, &requested_by);
            let (execution, started) = run(plan, mode, &BTreeMap::new(), invocation, deps).await?;
            Ok(answer(
                &deps.config.common.function_name,
                &execution,
                &started,
                json!({ "rollback_to": target.short_name() }),
            ))
        }
        "status" => {
            let args: ServiceArgs = command.args_as()?;
            let service =
                observe::find_service(&deps.ecs, &deps.config.clusters, &args.service).await?;
            status(&deps.ecs, &service).await
        }
        "doctor" => Ok(doctor::conclude(
            &deps.config.common,
            crate::doctor::examine(&deps.config, &invocation.caller, &deps.ecs).await,
            &deps.iam,
            &deps.alerts,
        )
        .await),
        _ => Ok(
            json!({ "status": "help", "help": COMMANDS.help(&deps.config.common.function_name) }),
        ),
    }
}

/// Act on `plan` (or not, in dry-run), collecting the deployments started. A failure that
/// retrying can fix is returned as an error so Lambda retries; any other is alerted and answered.
async fn run<A: AlertSink>(
    plan: Plan<Action>,
    mode: Mode,
    revisions: &BTreeMap<String, TaskDefinitionState>,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<(Execution<Action>, Vec<Started>)> {
    let started = Mutex::new(Vec::new());
    let execution = execute(plan, mode, |action| {
        let action = action.clone();
        let started = &started;
        async move {
            if let Some(deployment) = apply(&deps.ecs, &action, revisions, invocation.now).await? {
                started
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(deployment);
            }
            Ok(())
        }
    })
    .await;
    if let Some(failed) = &execution.failed {
        if failed.retryable {
            return Err(execution.error().expect("a failed execution has an error"));
        }
        deps.alerts
            .publish(&failure_alert(&deps.config.common.function_name, failed))
            .await?;
    }
    Ok((
        execution,
        started.into_inner().unwrap_or_else(|p| p.into_inner()),
    ))
}

fn answer(
    function: &str,
    execution: &Execution<Action>,
    started: &[Started],
    extra: Value,
) -> Value {
    let status = match (
        execution.dry_run,
        execution.failed.is_some(),
        started.is_empty(),
        execution.changed_anything(),
    ) {
        (true, _, _, _) if !execution.not_attempted.is_empty() => "planned",
        (_, true, _, _) => "failed",
        (_, _, false, _) => "started",
        (_, _, true, true) => "recorded",
        _ => "no_change",
    };
    let follow: Vec<String> = started
        .iter()
        .map(|s| status_line(function, &s.service))
        .collect();
    let mut body = json!({
        "status": status,
        "dry_run": execution.dry_run,
        "started": started,
        "follow": follow,
        "planned": if execution.dry_run { json!(execution.not_attempted) } else { json!([]) },
        "notes": execution.notes,
        "failed": execution.failed,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

fn ignored(reason: String) -> Value {
    json!({ "status": "ignored", "reason": reason })
}

fn checked_repository(repository: &str) -> std::result::Result<String, String> {
    match ImageRef::parse(repository) {
        Ok(r) if r.registry.is_none() && r.tag.is_none() && r.digest.is_none() => Ok(r.repository),
        _ => Err(format!(
            "`repository-name` = `{repository}` is not an ECR repository name"
        )),
    }
}

fn image_selector(command: &Command, args: &DeployArgs) -> Result<ImageSelector> {
    let invalid = |reason: &str| CommandError::InvalidArgs {
        command: command.name.clone(),
        reason: reason.into(),
    };
    match (&args.tag, &args.digest) {
        (Some(tag), None) => Ok(ImageSelector::Tag(parse_tag(tag.trim(), tag)?)),
        (None, Some(digest)) => Ok(ImageSelector::Digest(parse_digest(digest.trim())?)),
        (Some(_), Some(_)) => Err(invalid("give a `tag` or a `digest`, not both").into()),
        (None, None) => Err(invalid("give a `tag` or a `digest` of the image to deploy").into()),
    }
}

fn opted_in(service: &ServiceState) -> Result<OptIn> {
    match opt_in(&service.tags) {
        Some(Ok(opt_in)) => Ok(opt_in),
        Some(Err(error)) => Err(Error::Refused(format!(
            "{}: {error}",
            service.qualified_name()
        ))),
        None => Err(Error::Refused(format!(
            "{} has not opted in to deploys: it has no `{}` tag",
            service.qualified_name(),
            contract::REPOSITORY
        ))),
    }
}

/// The registry the service's images of its repository come from; the own registry if none does.
fn registry_of(current: &TaskDefinitionState, opt_in: &OptIn, caller: &Caller) -> String {
    current
        .images()
        .values()
        .filter_map(|image| ImageRef::parse(image).ok())
        .find(|image| image.repository == opt_in.repository && image.registry.is_some())
        .and_then(|image| image.registry)
        .unwrap_or_else(|| caller.own_registry())
}

async fn rollback_revision(ecs: &EcsServices, arn: &str) -> Result<TaskDefinitionState> {
    let target = ecs
        .task_definition(arn)
        .await
        .map_err(|error| match error {
            Error::Aws(aws) if aws.code.contains("ClientException") => Error::Refused(format!(
                "the recorded rollback target {arn} no longer exists: {}",
                aws.message
            )),
            other => other,
        })?;
    if target.definition.status().map(|s| s.as_str()) != Some("ACTIVE") {
        return Err(Error::Refused(format!(
            "the rollback target {} is deregistered (INACTIVE); ECS cannot start tasks from it",
            target.short_name()
        )));
    }
    Ok(target)
}

async fn status(ecs: &EcsServices, service: &ServiceState) -> Result<Value> {
    let current = ecs.task_definition(&service.task_definition).await?;
    let opt_in = opt_in(&service.tags).map(|parsed| parsed.map_err(|e| e.to_string()));
    let primary = service.primary();
    Ok(json!({
        "status": "ok",
        "service": service.qualified_name(),
        "runs": current.short_name(),
        "images": current.images(),
        "rollout": primary.map(|p| json!({
            "deployment_id": p.id,
            "state": p.rollout_state,
            "reason": p.rollout_reason,
            "running": p.running,
            "desired": p.desired,
        })),
        "deployments": service.deployments,
        "opt_in": match opt_in {
            None => json!("not opted in"),
            Some(Ok(parsed)) => json!(parsed),
            Some(Err(problem)) => json!({ "problem": problem }),
        },
        "last_completed": service.tag(contract::LAST_COMPLETED),
        "rollback_would_go_to": match rollback_target(service) {
            Ok(target) => json!(target),
            Err(reason) => json!({ "none": reason }),
        },
        "in_flight": service.tag(contract::IN_FLIGHT).and_then(contract::InFlight::decode),
    }))
}
