//! The handler: route an event, a reconcile tick or a chat command through observe, decide, act
//! and report. deploy-trigger's invariants (I1 to I4) are written down in [`crate::decide`].
//!
//! # Settling a deployment's outcome exactly once
//!
//! Two paths see a deployment deploy-trigger started finish: ECS's `ECS Deployment State Change`
//! event (best effort: it can be lost, late or repeated), and the scheduled reconcile
//! (`Scheduled Event` from `aws.events`, every 5 minutes), which reads ECS's own deployment state
//! (DescribeServices `deployments[].rolloutState`) for every in-flight record in the managed
//! clusters. A push, chat deploy or rollback that is about to replace the in-flight record settles
//! it the same way first (and, while another invocation holds the claim on settling it, fails
//! retryably instead of replacing it). Whichever comes first alerts; the others are quiet. Both go through
//! [`settle`], and the in-flight record's settlement tag (`ops:deploy-settlement`,
//! [`crate::contract::Settlement`]) is the single point that decides who alerts:
//!
//! 1. Decide from the service as read: nothing to settle (in progress, already settled, not ours)
//!    is quiet.
//! 2. Claim: on a fresh read of the service (the event path's own read; the reconcile and the
//!    push and chat paths read the service again first), if no live claim names this deployment,
//!    write one naming this invocation (a random token) and the time. A live claim of another
//!    invocation: quiet.
//! 3. Re-read the service. Only the invocation whose claim ECS kept goes on (tags are last writer
//!    wins, so of two invocations that claimed at once the earlier writer reads the later one's
//!    claim and stays quiet); it decides again from what it re-read (settled meanwhile: quiet).
//! 4. Alert.
//! 5. Record the outcome (`ops:deploy-last-reported`, the last/previous completed revisions, and
//!    the settlement with its outcome) in one TagResource.
//!
//! Alert before settle, with the record as dedupe: a crash before the alert leaves a claim that
//! nobody alerted, which another invocation takes over once its lease
//! ([`crate::contract::CLAIM_LEASE_SECONDS`], twice the function's timeout) has run out: the next
//! reconcile. A crash between the alert and the record repeats the alert after the lease: never
//! lost, at worst said twice. ECS tags have no conditional write, so this is not a true
//! compare-and-set: two settlers both alert only if one reads the service before the other's claim
//! lands and writes its own claim only after the other has already re-read its claim, i.e. their
//! read-to-write and write-to-re-read round trips (one AWS call each) interleave exactly. The
//! template's reserved concurrency of 1 keeps invocations from overlapping at all; the two
//! together stand in for the compare-and-set ECS does not offer.
//!
//! Outcomes of deployments deploy-trigger did not start (the console's, the circuit breaker's own
//! rollback deployment) come only by event and keep the older protocol: alert, then record
//! `ops:deploy-last-reported`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ops_core::alert::AlertSink;
use ops_core::aws::ecr::{EcrImages, ImageSelector, ResolvedImage};
use ops_core::aws::ecs::{
    cluster_and_service_of, EcsServices, ServiceState, TaskDefinitionState, IMAGE_DIGEST_TAG,
};
use ops_core::aws::iam::IamSimulator;
use ops_core::command::{Command, CommandError};
use ops_core::doctor;
use ops_core::events::{
    classify, not_a_lifecycle_hook, parse_event, refuse_unscheduled, EcrImageAction,
    EcsDeploymentStateChange, EventError, Incoming, ECR_IMAGE_ACTION, ECS_DEPLOYMENT_STATE_CHANGE,
    SCHEDULED_EVENT,
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
use crate::contract::{self, opt_in, service_opt_in, OptIn, Settlement, Trigger};
use crate::decide::{
    claim_state, decide_deploy, decide_outcome, decide_reconcile, decide_replacing,
    decide_rollback, foreign_deployment, in_flight, is_in_flight, is_own_deployment, pushed_time,
    retagged_at, rollback_target, short_digest, with_settlement, Action, Candidate, Claim,
    NewImage, Outcome, OutcomeDecision, Problem, Refusal,
};
use crate::observe;
use crate::report::{
    failure_alert, forged_push_alert, outcome_alert, problem_alert, refusal_alert, verification,
    Disproof,
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
        Incoming::Event {
            detail_type,
            source,
            raw,
        } if detail_type == SCHEDULED_EVENT => on_schedule(&source, &raw, invocation, deps).await,
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
        Incoming::LifecycleHook(_) => Err(not_a_lifecycle_hook("deploy-trigger").into()),
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
            if let Some(stale) =
                stale_push(deps, &account, &repository, tag.as_deref(), &digest).await?
            {
                return Ok(stale);
            }
            let message = format!(
                "ECR repository `{repository}` (registry {account}) has no image {digest}: the push event claims an image ECR does not have, so it is forged or stale (the image was deleted); nothing was deployed"
            );
            let claimed = (repository.as_str(), digest.as_str(), tag.as_deref());
            return refuse_push(deps, claimed, Disproof::NotInEcr, message).await;
        }
        Err(other) => return Err(other),
    };
    // The tag decides which services take the image (their tag patterns) and is what alerts
    // show: it must be one ECR shows on that digest now.
    if let Some(claimed) = tag
        .as_deref()
        .filter(|t| !pushed.tags.iter().any(|p| p == t))
    {
        if let Some(stale) =
            stale_push(deps, &account, &repository, tag.as_deref(), &digest).await?
        {
            return Ok(stale);
        }
        let carries = if pushed.tags.is_empty() {
            "no tag".to_string()
        } else {
            format!("the tags `{}`", pushed.tags.join("`, `"))
        };
        let message = format!(
            "ECR's image {digest} in `{repository}` (registry {account}) carries {carries}, not `{claimed}`: the push event claims a tag ECR does not show on that image, so it is forged or stale (the tag has since moved to another image, whose own push deploys it); nothing was deployed"
        );
        let claimed = (repository.as_str(), digest.as_str(), tag.as_deref());
        return refuse_push(deps, claimed, Disproof::TagNotOnImage, message).await;
    }
    let image = NewImage {
        registry,
        repository,
        tag,
        digest,
        pushed_at_ms: pushed.pushed_at_ms,
        retagged_at_ms: retagged_at(
            event.time.map(|t| t.timestamp_millis()),
            pushed.pushed_at_ms,
        ),
    };

    let pushed = deploy_push(&image, invocation, deps).await?;
    let restored = restore_overtaken(&account, &image, &pushed, invocation, deps).await?;
    let PushDeployed {
        execution,
        mut started,
        problems,
        refused,
        ..
    } = pushed;
    started.extend(restored.started);
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
        if refusal.repeat {
            debug!(service = %refusal.service, refused = %refusal.refused, "push refused before, refused again without an alert");
            continue;
        }
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
        json!({
            "image": image.reference(),
            "problems": problems,
            "refused": refused,
            "restored": restored.notes,
        }),
    ))
}

/// What deploying one pushed image did.
struct PushDeployed {
    execution: Execution<Action>,
    started: Vec<Started>,
    problems: Vec<Problem>,
    refused: Vec<Refusal>,
    /// The opted-in services it looked at.
    candidates: Vec<Candidate>,
}

/// Deploy a pushed `image` to the services that take it.
async fn deploy_push<A: AlertSink>(
    image: &NewImage,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<PushDeployed> {
    let (candidates, mut problems) =
        observe::candidates(&deps.ecs, &deps.config.clusters, &image.repository).await?;
    let decision = decide_deploy(&candidates, image, &Trigger::EcrPush, invocation.now);
    problems.extend(decision.problems);
    settle_before_replacing(&decision.plan, &candidates, Mode::Apply, invocation, deps).await?;
    let revisions = candidates
        .iter()
        .map(|c| (c.current.arn().to_string(), c.current.clone()))
        .collect();
    let (execution, started) =
        run(decision.plan, Mode::Apply, &revisions, invocation, deps).await?;
    Ok(PushDeployed {
        execution,
        started,
        problems,
        refused: decision.refused,
        candidates,
    })
}

/// What putting back overtaken deployments did.
#[derive(Default)]
struct Restored {
    started: Vec<Started>,
    notes: Vec<String>,
}

/// Two pushes handled at once (or a push redelivered while the next one is handled) each register
/// a revision and call UpdateService, and ECS has no conditional update: the older image's call can
/// land after the newer one's and leave production on the older image, with no later event to put
/// it right. So once this push has started a deployment, the service is read again: a deployment
/// ECS still lists of a revision deploy-trigger registered for an image ECR says was pushed after
/// this one means this update overtook a newer push's, and that revision is deployed again,
/// unchanged, as that push's own. Only a deployment that really was overtaken counts: an image
/// pushed later whose event has not been handled yet is left to its own push.
async fn restore_overtaken<A: AlertSink>(
    account: &str,
    image: &NewImage,
    pushed: &PushDeployed,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Restored> {
    let mut restored = Restored::default();
    let (Some(ours), Some(tag)) = (image.pushed_at_ms, image.tag.as_deref()) else {
        return Ok(restored);
    };
    // Every service this push is for, also one it found already running the image: a run that
    // failed after its update, retried, starts nothing and must still look.
    for candidate in pushed
        .candidates
        .iter()
        .filter(|c| c.opt_in.patterns.iter().any(|p| p.matches(tag)))
    {
        let service = deps
            .ecs
            .describe(&candidate.service.cluster, &candidate.service.name)
            .await?;
        let Some(primary) = service.primary().cloned() else {
            continue;
        };
        // Only a deployment a push started (this one, or its interrupted run, recorded): a
        // person's chat deploy of an older image, or ECS's circuit breaker rolling back from a
        // newer one, is never undone.
        let pushed_it = in_flight(&service)
            .is_some_and(|r| r.deployment_id == primary.id && r.trigger == Trigger::EcrPush);
        if !pushed_it {
            continue;
        }
        let primary_revision = deps.ecs.task_definition(&primary.task_definition).await?;
        if primary_revision.tags.get(IMAGE_DIGEST_TAG) != Some(&image.digest) {
            continue;
        }
        let mut overtaken: Option<(TaskDefinitionState, ResolvedImage)> = None;
        for deployment in service.deployments.iter().filter(|d| d.id != primary.id) {
            let revision = deps
                .ecs
                .task_definition(&deployment.task_definition)
                .await?;
            let Some(digest) = revision.tags.get(IMAGE_DIGEST_TAG).cloned() else {
                continue;
            };
            if digest == image.digest {
                continue;
            }
            let other = match deps
                .ecr
                .resolve(account, &image.repository, &ImageSelector::Digest(digest))
                .await
            {
                Ok(other) => other,
                Err(Error::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            let newer = other.pushed_at_ms.is_some_and(|at| at > ours);
            let newest = overtaken
                .as_ref()
                .is_none_or(|(_, o)| other.pushed_at_ms > o.pushed_at_ms);
            if newer && newest {
                overtaken = Some((revision, other));
            }
        }
        let Some((revision, newer)) = overtaken else {
            continue;
        };
        let tag = newer
            .tags
            .iter()
            .find(|t| candidate.opt_in.patterns.iter().any(|p| p.matches(t)))
            .cloned();
        let newer = NewImage {
            registry: image.registry.clone(),
            repository: image.repository.clone(),
            tag,
            digest: newer.digest,
            pushed_at_ms: newer.pushed_at_ms,
            retagged_at_ms: None,
        };
        let name = candidate.service.qualified_name();
        warn!(service = %name, overtaken = %revision.short_name(), image = %newer.reference(), "this push's deployment overtook a newer push's: deploying that one again");
        let mut now = observe::candidate(&deps.ecs, service, candidate.opt_in.clone()).await?;
        now.restore = Some(revision);
        let decision = decide_deploy(
            std::slice::from_ref(&now),
            &newer,
            &Trigger::EcrPush,
            invocation.now,
        );
        let candidates = [now];
        settle_before_replacing(&decision.plan, &candidates, Mode::Apply, invocation, deps).await?;
        let revisions = candidates
            .iter()
            .map(|c| (c.current.arn().to_string(), c.current.clone()))
            .collect();
        let (_, again) = run(decision.plan, Mode::Apply, &revisions, invocation, deps).await?;
        restored.notes.push(format!(
            "{name}: this push's deployment overtook the one of {}, pushed after it; that one is deployed again, so production does not stay on the older image",
            newer.label()
        ));
        restored.started.extend(again);
    }
    Ok(restored)
}

/// The answer to a push event that went stale before it arrived: its tag now names another image in
/// ECR (CI pushed the tag again, and the older image may since have expired), whose own push event
/// deploys it. An ordinary race under at-least-once delivery: answered, not alerted and not failed
/// (a failure would have Lambda retry it and page ops about nothing). `None` when the tag names no
/// image or this one, so the event stays unexplained.
async fn stale_push<A>(
    deps: &Deps<A>,
    account: &str,
    repository: &str,
    tag: Option<&str>,
    digest: &str,
) -> Result<Option<Value>> {
    let Some(tag) = tag else {
        return Ok(None);
    };
    let now = match deps
        .ecr
        .resolve(account, repository, &ImageSelector::Tag(tag.to_string()))
        .await
    {
        Ok(now) if now.digest != digest => now,
        Ok(_) | Err(Error::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    info!(repository, tag, digest, now = %now.digest, "stale push: the tag has moved on");
    Ok(Some(ignored(format!(
        "the push of {repository}:{tag}@{} is stale: ECR's `{tag}` now names {}{}, whose own push event deploys it; nothing was deployed",
        short_digest(digest),
        short_digest(&now.digest),
        now.pushed_at_ms
            .map(|ms| format!(" (pushed {})", pushed_time(ms)))
            .unwrap_or_default()
    ))))
}

/// Refuse a push event ECR does not bear out (`claimed`: repository, digest, tag), warning ops:
/// nothing was deployed, and someone may have sent it.
async fn refuse_push<A: AlertSink>(
    deps: &Deps<A>,
    claimed: (&str, &str, Option<&str>),
    disproof: Disproof,
    message: String,
) -> Result<Value> {
    let (repository, digest, tag) = claimed;
    warn!(
        repository,
        digest,
        tag,
        ?disproof,
        "push event ECR does not bear out refused"
    );
    deps.alerts
        .publish(&forged_push_alert(
            &deps.config.common.function_name,
            repository,
            digest,
            tag,
            disproof,
            &message,
        ))
        .await?;
    Err(Error::Refused(message))
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
    let Some((cluster, name)) = cluster_and_service_of(&service_arn) else {
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
    let judge = Judge::Event {
        event_name: &detail.event_name,
        deployment_id: &detail.deployment_id,
        reason: &reason,
    };
    let (execution, settled) = settle(service, true, &judge, invocation, deps).await?;
    let outcome = match settled {
        Settle::Alerted(outcome) => Some(*outcome),
        Settle::Quiet | Settle::Held(_) => None,
    };
    Ok(answer(
        &deps.config.common.function_name,
        &execution,
        &[],
        json!({ "outcome": outcome }),
    ))
}

/// A reconcile tick: settle every in-flight deployment of the opted-in services in the managed
/// clusters from ECS's own deployment state. Only EventBridge's own schedules are accepted: anyone
/// allowed to invoke the function could send a `Scheduled Event`, and although a tick only settles
/// what ECS reports, a forged one is refused before any AWS call.
async fn on_schedule<A: AlertSink>(
    source: &str,
    raw: &Value,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    refuse_unscheduled(source, "the reconcile")?;
    let account = raw
        .get("account")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if account != invocation.caller.account_id {
        warn!(account, "scheduled event of another account refused");
        return Err(Error::Refused(format!(
            "a `{SCHEDULED_EVENT}` of account `{account}` is not from this function's account {}: nothing was reconciled",
            invocation.caller.account_id
        )));
    }
    let mut settled = Vec::new();
    let mut notes = Vec::new();
    let mut retry = None;
    for cluster in &deps.config.clusters {
        let arns = deps.ecs.list_services(cluster).await?;
        for service in deps.ecs.describe_many(cluster, &arns).await? {
            if opt_in(&service.tags).is_none() || in_flight(&service).is_none() {
                continue;
            }
            let name = service.qualified_name();
            match settle(service, false, &Judge::Reconcile, invocation, deps).await {
                Ok((execution, done)) => {
                    notes.extend(execution.notes);
                    if let Some(failed) = execution.failed {
                        notes.push(format!("{name}: {}", failed.error));
                    }
                    if let Settle::Alerted(outcome) = done {
                        settled.push(*outcome);
                    }
                }
                Err(error) if error.retryable() => {
                    warn!(service = %name, %error, "not reconciled; the tick is retried");
                    retry = Some(error);
                }
                Err(error) => {
                    warn!(service = %name, %error, "not reconciled");
                    notes.push(format!("{name}: not reconciled: {error}"));
                }
            }
        }
    }
    // A retried tick settles what is left; what this one settled is quiet then.
    if let Some(error) = retry {
        return Err(error);
    }
    info!(settled = settled.len(), "reconciled");
    Ok(json!({
        "status": if settled.is_empty() { "no_change" } else { "settled" },
        "settled": settled,
        "notes": notes,
    }))
}

/// What judges a deployment's outcome: ECS's event, or ECS's own state read by a reconcile.
enum Judge<'a> {
    /// An `ECS Deployment State Change`.
    Event {
        event_name: &'a str,
        deployment_id: &'a str,
        reason: &'a str,
    },
    /// The service's in-flight deployment, as DescribeServices shows it.
    Reconcile,
    /// The in-flight deployment a push or chat command is about to replace.
    Replacing,
}

impl Judge<'_> {
    fn decide(&self, service: &ServiceState, now: u64) -> OutcomeDecision {
        match self {
            Judge::Event {
                event_name,
                deployment_id,
                reason,
            } => decide_outcome(service, event_name, deployment_id, reason, now),
            Judge::Reconcile => decide_reconcile(service, now),
            Judge::Replacing => decide_replacing(service, now),
        }
    }
}

/// What [`settle`] did.
enum Settle {
    /// This invocation alerted the outcome and recorded it.
    Alerted(Box<Outcome>),
    /// Nothing to settle (in progress, already settled, not ours); the notes say why.
    Quiet,
    /// Another invocation holds a live claim on settling it: that one alerts (or, if it died, an
    /// invocation after its lease does).
    Held(Settlement),
}

/// Settle one deployment's outcome on `service` (see the module docs): decide, claim and re-read
/// when it is the in-flight deployment, alert, record. `fresh`: `service` was read just now (else it
/// is read again before claiming, so the claim's read-to-write window is one round trip). Returns
/// the record's execution (its notes say why nothing was done) and what it did.
async fn settle<A: AlertSink>(
    service: ServiceState,
    fresh: bool,
    judge: &Judge<'_>,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<(Execution<Action>, Settle)> {
    let now = invocation.now;
    // Nothing to alert: the plan's notes say why, and it changes nothing.
    let quiet = |plan: Plan<Action>, settle: Settle| async move {
        run(plan, Mode::Apply, &BTreeMap::new(), invocation, deps)
            .await
            .map(|(execution, _)| (execution, settle))
    };
    let outcome_id =
        |decision: &OutcomeDecision| decision.outcome.as_ref().map(|o| o.deployment_id.clone());
    let mut decision = judge.decide(&service, now);
    let Some(mut deployment_id) = outcome_id(&decision) else {
        return quiet(decision.plan, Settle::Quiet).await;
    };
    let name = service.qualified_name();
    if is_in_flight(&service, &deployment_id) {
        let service = if fresh {
            service
        } else {
            let now_read = deps.ecs.describe(&service.cluster, &service.name).await?;
            decision = judge.decide(&now_read, now);
            match outcome_id(&decision) {
                Some(id) if is_in_flight(&now_read, &id) => deployment_id = id,
                _ => return quiet(decision.plan, Settle::Quiet).await,
            }
            now_read
        };
        let token = invocation_token();
        let claim = Settlement {
            deployment_id: deployment_id.clone(),
            by: token.clone(),
            at: now,
            outcome: None,
        };
        match claim_state(&service, &deployment_id, &token, now) {
            Claim::Held(holder) => {
                info!(service = %name, deployment = %deployment_id, holder = %holder.by, "another invocation is settling the deployment");
                let note = held_note(&name, &holder);
                return quiet(Plan::new().note(note), Settle::Held(holder)).await;
            }
            Claim::Ours => {}
            Claim::Free => {
                deps.ecs
                    .tag(
                        &service.arn,
                        &BTreeMap::from([(contract::SETTLEMENT.to_string(), claim.encode())]),
                    )
                    .await?;
                // Tags are last writer wins: only the invocation whose claim ECS kept alerts.
                let reread = deps.ecs.describe(&service.cluster, &service.name).await?;
                match claim_state(&reread, &deployment_id, &token, now) {
                    Claim::Ours => {}
                    Claim::Held(holder) => {
                        info!(service = %name, deployment = %deployment_id, holder = %holder.by, "another invocation claimed the deployment at the same time");
                        let note = held_note(&name, &holder);
                        return quiet(Plan::new().note(note), Settle::Held(holder)).await;
                    }
                    Claim::Free => {
                        // Settled meanwhile (or the record moved on): nothing of ours to alert.
                        decision = judge.decide(&reread, now);
                        return quiet(
                            Plan {
                                changes: Vec::new(),
                                notes: decision.plan.notes,
                            },
                            Settle::Quiet,
                        )
                        .await;
                    }
                }
                decision = judge.decide(&reread, now);
                if outcome_id(&decision).as_deref() != Some(deployment_id.as_str()) {
                    return quiet(decision.plan, Settle::Quiet).await;
                }
            }
        }
        decision = with_settlement(decision, &claim);
    }
    let outcome = decision
        .outcome
        .clone()
        .expect("a decision to settle has an outcome");
    let revisions = [
        outcome.deployed.clone(),
        outcome.previous.clone(),
        outcome.rolled_back_to.clone(),
    ];
    let images = observe::revision_images(&deps.ecs, &revisions).await;
    // Alert before recording: a crash in between repeats the alert (after the claim's lease)
    // rather than losing it.
    deps.alerts
        .publish(&outcome_alert(
            &deps.config.common.function_name,
            &outcome,
            &images,
        ))
        .await?;
    info!(service = %outcome.service, deployment = %outcome.deployment_id, succeeded = outcome.succeeded, seen_by = ?outcome.seen_by, "deployment outcome reported");
    let (execution, _) = run(
        decision.plan,
        Mode::Apply,
        &BTreeMap::new(),
        invocation,
        deps,
    )
    .await?;
    Ok((execution, Settle::Alerted(Box::new(outcome))))
}

fn held_note(name: &str, holder: &Settlement) -> String {
    format!(
        "{name}: deployment {} is being settled by invocation {} (claimed at {}); it alerts the outcome, or, if it died, an invocation after its lease ends at {} does",
        holder.deployment_id,
        holder.by,
        ops_core::time::utc_text(holder.at),
        ops_core::time::utc_text(holder.at + contract::CLAIM_LEASE_SECONDS)
    )
}

/// Before a plan replaces the in-flight record of a service it deploys to, settle that record if
/// ECS has finished its deployment (its event may have been lost, and the reconcile cannot find it
/// once the record names another deployment). Nothing in dry-run.
async fn settle_before_replacing<A: AlertSink>(
    plan: &Plan<Action>,
    candidates: &[crate::decide::Candidate],
    mode: Mode,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<()> {
    if mode != Mode::Apply {
        return Ok(());
    }
    for change in &plan.changes {
        let target = match &change.action {
            Action::Deploy(spec) => &spec.target,
            Action::Rollback(spec) => &spec.target,
            Action::Record(_) => continue,
        };
        if let Some(candidate) = candidates
            .iter()
            .find(|c| c.service.arn == target.service_arn)
        {
            settle_finished(&candidate.service, plan.changes.len(), invocation, deps).await?;
        }
    }
    Ok(())
}

/// Settle `service`'s in-flight deployment if ECS has finished it; whether it settled one. While
/// another invocation holds the claim on settling it, the record must not be replaced (its outcome
/// would then never be alerted): a retryable error, so the event is retried (after the lease at
/// the latest, when the claim is free) and a person is told to send the command again.
async fn settle_finished<A: AlertSink>(
    service: &ServiceState,
    planned: usize,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<bool> {
    if decide_replacing(service, invocation.now).outcome.is_none() {
        return Ok(false);
    }
    match settle(service.clone(), false, &Judge::Replacing, invocation, deps).await? {
        (_, Settle::Alerted(_)) => Ok(true),
        (_, Settle::Quiet) => Ok(false),
        (_, Settle::Held(holder)) => Err(Error::Incomplete {
            applied: 0,
            planned,
            message: format!(
                "{}; nothing was changed: send the command again in a few seconds (by {} at the latest)",
                held_note(&service.qualified_name(), &holder),
                ops_core::time::utc_text(holder.at + contract::CLAIM_LEASE_SECONDS)
            ),
            retryable: true,
        }),
    }
}

/// A token unique to this invocation (and to each call), for claims: 64 random bits from the
/// standard library's per-process random hash keys, with the time.
fn invocation_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    format!("inv-{:016x}", hasher.finish())
}

async fn on_command<A: AlertSink>(
    command: Command,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    let requested_by = command.requester();
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
                retagged_at_ms: None,
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
            settle_before_replacing(
                &decision.plan,
                std::slice::from_ref(&candidate),
                mode,
                invocation,
                deps,
            )
            .await?;
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
            let mut service =
                observe::find_service(&deps.ecs, &deps.config.clusters, &args.service).await?;
            opted_in(&service)?;
            // A finished deployment whose event was lost is settled first: where a rollback goes
            // depends on what was verified, and the rollback replaces the in-flight record.
            if mode == Mode::Apply && settle_finished(&service, 1, invocation, deps).await? {
                service = deps.ecs.describe(&service.cluster, &service.name).await?;
            }
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
    match service_opt_in(service) {
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
    let opt_in = service_opt_in(service).map(|parsed| parsed.map_err(|e| e.to_string()));
    let primary = service.primary();
    // Our record of the deployment we started, next to ECS's own state: "unverified" where ECS
    // says it finished and no event or reconcile has verified it yet.
    let verification = match in_flight(service) {
        Some(record) => {
            let images = if record.to == current.short_name() {
                Some(current.images())
            } else {
                ecs.task_definition(&record.to)
                    .await
                    .ok()
                    .map(|revision| revision.images())
            };
            verification(
                service,
                &crate::report::revision_label(&record.to, images.as_ref()),
            )
        }
        None => None,
    };
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
        "strategy": service.strategy,
        "service_deployment": service.service_deployments.first().map(|d| json!({
            "arn": d.arn,
            "status": d.status,
            "stage": d.stage,
            "production_traffic": d.weights,
            "progress": d.progress(),
            "alarms_in_alarm": d.triggered_alarms,
            "reason": d.reason,
        })),
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
        "in_flight": in_flight(service),
        "verification": verification,
    }))
}
