//! Pure decisions: what to deploy, where to roll back to, what a deployment's outcome means, and
//! what a reconcile tick settles. No I/O and no clock: the time is an input.
//!
//! # Invariants (DESIGN.md, "Event order")
//!
//! - **I1. Never backwards by itself.** A service never runs an image older than the newest push
//!   deploy-trigger deployed there unless a person asked (chat `deploy` or `rollback`). A push whose
//!   image ECR records as pushed before the newest one deployed there (`ops:deploy-newest-pushed`)
//!   is refused, and so is the newest push again once the service has moved on (a chat deploy, a
//!   rollback, ECS's circuit breaker): a redelivered push acts once. A push of the image the service
//!   already runs is "already runs". Equal push times with different digests cannot be ordered and
//!   deploy (real ECR records milliseconds). A chat `deploy` only ever raises the recorded newest
//!   image, never lowers it, so late pushes stay refused after it. What ECS itself does (the circuit
//!   breaker's rollback) is not deploy-trigger's doing and is alerted, never undone.
//! - **I2. Every outcome of a deploy it started is alerted exactly once**, whichever of the
//!   `ECS Deployment State Change` event or the scheduled reconcile sees it first: COMPLETED as a
//!   success (and recorded as the last known-good revision), FAILED (with what ECS rolled back to,
//!   if it did) as a failure, and a deployment ECS stopped listing before its outcome was read as
//!   unverified. The in-flight record's settlement (`ops:deploy-settlement`, see
//!   [`claim_state`] and the handler's module docs) is the one place that decides who alerts; a
//!   settled deployment is quiet to every later event and tick. The one exception is a crash
//!   between the alert and the record: the alert is then repeated once the claim's lease ends, never
//!   lost. A push, chat deploy or rollback that replaces the in-flight record first settles the
//!   one it replaces, if ECS has finished it, or as unverified at once if ECS no longer lists it
//!   ([`decide_replacing`]).
//! - **I3. What it did not cause changes nothing and pages nobody.** A state change of a deployment
//!   the service does not have (empty, unknown, another service's id), a COMPLETED or FAILED event
//!   that ECS's own state does not bear out, a push of an image ECR does not have (refused and
//!   warned as forged, since someone sent it), and a `Scheduled Event` not from `aws.events` change
//!   no tag and no service. A genuine-looking tick can do no harm: it only settles what ECS itself
//!   reports.
//! - **I4. Bad input changes nothing.** A malformed event or command is refused before any AWS
//!   call that changes something.
//!
//! I1 to I3 (and `status` never saying verified for what nothing verified) are checked after every
//! step of random event sequences, with duplicated, late, lost and concurrent deliveries and failed
//! AWS calls, by the model test `tests/tests/model_deploy_trigger.rs` (its D1 to D4 and the
//! settling check); I4 by the bad-input cases of `tests/tests/deploy_trigger.rs`.
//!
//! A refused late push is alerted once per service, pushed image and newest image (remembered in
//! `ops:deploy-refused` before the alert, so a crash in between loses that informational alert
//! rather than repeating it); its redeliveries are quiet.

use std::collections::BTreeMap;

use ops_core::aws::ecs::{
    short_task_definition, ServiceState, TaskDefinitionState, IMAGE_DIGEST_TAG,
};
use ops_core::aws::service_deployments::{ServiceDeploymentView, Strategy};
use ops_core::image::{containers_running, ImageRef};
use ops_core::plan::Plan;
use serde::Serialize;

use crate::contract::{
    self, InFlight, NewestPushed, OptIn, RefusedPushes, Settled, Settlement, Trigger,
};

/// An opted-in service and its current revision, as observed.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The service.
    pub service: ServiceState,
    /// Its opt-in.
    pub opt_in: OptIn,
    /// The revision it runs (its primary deployment's).
    pub current: TaskDefinitionState,
    /// The family's latest revision, when it is not `current` (a revision an interrupted run registered).
    pub latest: Option<TaskDefinitionState>,
    /// A revision of the image to deploy that the service already ran (a deployment another push
    /// started and this one overtook): deployed unchanged rather than cloned again.
    pub restore: Option<TaskDefinitionState>,
}

/// The image to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewImage {
    /// Registry host.
    pub registry: String,
    /// Repository name.
    pub repository: String,
    /// Tag, kept for humans.
    pub tag: Option<String>,
    /// Digest, what actually pins it.
    pub digest: String,
    /// When ECR records it was pushed (epoch milliseconds), read from ECR, never from the event.
    pub pushed_at_ms: Option<i64>,
    /// When a push event put this tag on an image ECR already had (the event's time, well after
    /// `pushed_at_ms`: a re-tag such as `put-image` of an older manifest), else `None`.
    pub retagged_at_ms: Option<i64>,
}

/// How much later than ECR's `imagePushedAt` a push event's own time must be for the push to be a
/// new tag on an image ECR already had rather than the image's own push (whose event follows it
/// within seconds).
pub const RETAG_AFTER_MS: i64 = 5 * 60 * 1000;

/// When the push event timed `event_ms` put a tag on an image ECR first recorded at `pushed_ms`,
/// if that was well after the image's own push.
pub fn retagged_at(event_ms: Option<i64>, pushed_ms: Option<i64>) -> Option<i64> {
    let (event, pushed) = (event_ms?, pushed_ms?);
    (event - pushed > RETAG_AFTER_MS).then_some(event)
}

impl NewImage {
    /// `registry/repository[:tag]@digest`.
    pub fn reference(&self) -> String {
        let image = ImageRef {
            registry: Some(self.registry.clone()),
            repository: self.repository.clone(),
            tag: self.tag.clone(),
            digest: Some(self.digest.clone()),
        };
        image.to_string()
    }

    /// `repository:tag` or `repository@sha256:abcdef123456`, for titles.
    pub fn label(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{tag}", self.repository),
            None => format!("{}@{}", self.repository, short_digest(&self.digest)),
        }
    }
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    digest.chars().take(19).collect()
}

/// One container's image change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerChange {
    /// Container name.
    pub container: String,
    /// Image before.
    pub from: String,
    /// Image after.
    pub to: String,
}

/// The service a change is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRef {
    /// `cluster/service`.
    pub service: String,
    /// Cluster name.
    pub cluster: String,
    /// Service ARN.
    pub service_arn: String,
}

impl ServiceRef {
    /// The reference to an observed service.
    pub fn of(service: &ServiceState) -> Self {
        ServiceRef {
            service: service.qualified_name(),
            cluster: service.cluster.clone(),
            service_arn: service.arn.clone(),
        }
    }
}

/// Deploy a new revision (or reuse one an interrupted run registered) to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploySpec {
    /// The service.
    #[serde(flatten)]
    pub target: ServiceRef,
    /// Task definition ARN it runs now.
    pub from: String,
    /// Container images to change.
    pub containers: Vec<ContainerChange>,
    /// The digest deployed.
    pub digest: String,
    /// An already-registered revision to use instead of registering one.
    pub reuse: Option<String>,
    /// What started it.
    pub trigger: Trigger,
    /// The service's new newest image, recorded with the in-flight record when it is newer.
    pub newest: Option<NewestPushed>,
}

/// Point a service back at an earlier revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackSpec {
    /// The service.
    #[serde(flatten)]
    pub target: ServiceRef,
    /// Task definition ARN it runs now.
    pub from: String,
    /// Task definition ARN to go back to.
    pub to: String,
    /// What started it.
    pub trigger: Trigger,
}

/// Remember an outcome in the service's tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSpec {
    /// The service.
    #[serde(flatten)]
    pub target: ServiceRef,
    /// Tags to set.
    pub tags: BTreeMap<String, String>,
}

/// Everything deploy-trigger may do to AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Register (or reuse) a revision and update the service.
    Deploy(DeploySpec),
    /// Update the service to an earlier revision.
    Rollback(RollbackSpec),
    /// Tag the service with an outcome.
    Record(RecordSpec),
}

/// A service that opted in but cannot be deployed as its tags say; ops must hear of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `cluster/service`.
    pub service: String,
    /// Service ARN.
    pub service_arn: String,
    /// What is wrong, and what to change.
    pub problem: String,
}

/// A push refused because the service already got a newer image (or this one) from deploy-trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `cluster/service`.
    pub service: String,
    /// Service ARN.
    pub service_arn: String,
    /// The refused image, `repository:tag@sha256:abcdef123456`.
    pub refused: String,
    /// What the service's containers of the repository run now.
    pub runs: String,
    /// Why, in full.
    pub reason: String,
    /// Already refused (and alerted) before: a redelivery, answered but not alerted again.
    pub repeat: bool,
}

/// A deploy decision: the plan, and the opted-in services it could not serve.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployDecision {
    /// What to change.
    pub plan: Plan<Action>,
    /// What to alert about.
    pub problems: Vec<Problem>,
    /// Late or repeated pushes refused, to alert about.
    pub refused: Vec<Refusal>,
}

/// Why a push is too late to deploy, judged against the service's recorded newest image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Late {
    /// ECR records the pushed image as pushed before the newest image deployed here.
    Older(NewestPushed),
    /// The push of the newest image deployed here, again, after the service moved away from it.
    Repeated(NewestPushed),
}

/// Judge a push of `image` against the service's recorded newest image; `None`: it may deploy.
/// Without ECR's push time nothing can be compared, and equal times cannot be ordered.
pub fn late_push(newest: Option<&NewestPushed>, image: &NewImage) -> Option<Late> {
    let newest = newest?;
    if newest.digest == image.digest {
        return Some(Late::Repeated(newest.clone()));
    }
    match image.pushed_at_ms {
        Some(pushed) if pushed < newest.pushed_at_ms => Some(Late::Older(newest.clone())),
        _ => None,
    }
}

/// The newest-image record after deploying `image`: `Some` only when it raises the recorded one
/// (a newer push time, or an equal one with another digest), so nothing ever lowers it.
pub fn raised_newest(newest: Option<&NewestPushed>, image: &NewImage) -> Option<NewestPushed> {
    let pushed = image.pushed_at_ms?;
    let raises = match newest {
        None => true,
        Some(n) => {
            pushed > n.pushed_at_ms || (pushed == n.pushed_at_ms && n.digest != image.digest)
        }
    };
    raises.then(|| NewestPushed::new(pushed, image.digest.clone()))
}

/// `2026-11-18T09:06:40Z` for an epoch-millisecond time, for humans.
pub fn pushed_time(ms: i64) -> String {
    aws_sdk_ecs::primitives::DateTime::from_millis(ms)
        .fmt(aws_sdk_ecs::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{ms} ms after the epoch"))
}

/// Decide how `image` reaches `candidates`. A push (`Trigger::EcrPush`) deploys only where the
/// service's tag patterns match the pushed tag; a chat deploy was asked for by name and ignores them.
pub fn decide_deploy(
    candidates: &[Candidate],
    image: &NewImage,
    trigger: &Trigger,
    now: u64,
) -> DeployDecision {
    let mut plan = Plan::new();
    let mut problems = Vec::new();
    let mut refused = Vec::new();
    for candidate in candidates
        .iter()
        .filter(|c| c.opt_in.repository == image.repository)
    {
        let name = candidate.service.qualified_name();
        if *trigger == Trigger::EcrPush {
            let Some(tag) = &image.tag else {
                plan = plan.note(format!(
                    "{name}: an untagged push is never deployed automatically"
                ));
                continue;
            };
            if !candidate.opt_in.patterns.iter().any(|p| p.matches(tag)) {
                let patterns: Vec<&str> = candidate
                    .opt_in
                    .patterns
                    .iter()
                    .map(|p| p.as_str())
                    .collect();
                plan = plan.note(format!(
                    "{name}: tag `{tag}` does not match its pattern `{}`",
                    patterns.join(" ")
                ));
                continue;
            }
        }
        let containers = match select_containers(
            &candidate.opt_in,
            &candidate.current,
            &image.registry,
            &image.repository,
        ) {
            Ok(containers) => containers,
            Err(problem) => {
                problems.push(Problem {
                    service: name,
                    service_arn: candidate.service.arn.clone(),
                    problem,
                });
                continue;
            }
        };
        let new_reference = image.reference();
        let already = containers.iter().all(|(_, current)| {
            ImageRef::parse(current)
                .ok()
                .and_then(|r| r.digest)
                .as_deref()
                == Some(image.digest.as_str())
        });
        let newest = candidate
            .service
            .tag(contract::NEWEST_PUSHED)
            .and_then(NewestPushed::decode);
        let raised = raised_newest(newest.as_ref(), image);
        // Restoring a newer push's deployment that another update overtook is not a push arriving
        // late: its own run may already have recorded it as the newest image.
        let late = match trigger {
            Trigger::EcrPush if candidate.restore.is_none() => late_push(newest.as_ref(), image),
            _ => None,
        };
        if already && matches!(late, Some(Late::Repeated(_))) {
            // Its run recorded it (the newest image is written with the in-flight record): a
            // rollout to it now is not this push's (ECS's circuit breaker rolling back to it,
            // say), and is never adopted as one.
            plan = plan.note(format!("{name}: already runs {}", image.label()));
            continue;
        }
        if already && late.is_none() {
            // An interrupted run started this deployment and stopped before recording it (or
            // before recording the image as the newest): record it, so its outcome is reported
            // with who and what started it, and late pushes compare against it. An older push
            // the service happens to run again (ECS rolling back to it) is refused below.
            let mut record = unrecorded_deployment(candidate, trigger, now);
            if let Some(raised) = &raised {
                record
                    .get_or_insert_with(|| RecordSpec {
                        target: ServiceRef::of(&candidate.service),
                        tags: BTreeMap::new(),
                    })
                    .tags
                    .insert(contract::NEWEST_PUSHED.to_string(), raised.encode());
            }
            match record {
                Some(record) => {
                    plan = plan.change(
                        Action::Record(record),
                        format!(
                            "{name}: record the rollout of {} an interrupted run started",
                            image.label()
                        ),
                    )
                }
                None => plan = plan.note(format!("{name}: already runs {}", image.label())),
            }
            continue;
        }
        if let Some(late) = late {
            let runs = containers
                .iter()
                .map(|(container, current)| format!("{container}: {}", shorten(current)))
                .collect::<Vec<_>>()
                .join(", ");
            let pushed = image
                .pushed_at_ms
                .map(|ms| format!(" (pushed to ECR {})", pushed_time(ms)))
                .unwrap_or_default();
            let reason = match &late {
                Late::Older(newest) => match image.retagged_at_ms {
                    Some(retagged) => format!(
                        "{name}: refused the push of {} at {}: it put that tag on an image ECR already had{pushed}, older than {} (pushed to ECR {}), which {name} already got from deploy-trigger and runs {runs}; a push never moves a service back: to run that image again, ask for it from chat (`deploy` or `rollback`)",
                        image.label(),
                        pushed_time(retagged),
                        short_digest(&newest.digest),
                        pushed_time(newest.pushed_at_ms)
                    ),
                    None => format!(
                        "{name}: refused the push of {}{pushed}: it is older than {} (pushed to ECR {}), which {name} already got from deploy-trigger and runs {runs}; a late or redelivered push never moves a service back",
                        image.label(),
                        short_digest(&newest.digest),
                        pushed_time(newest.pushed_at_ms)
                    ),
                },
                Late::Repeated(_) => format!(
                    "{name}: refused the push of {}{pushed}: it was already deployed here once and the service has moved on since (it runs {runs}); a redelivered push acts once",
                    image.label()
                ),
            };
            let against = match &late {
                Late::Older(newest) | Late::Repeated(newest) => newest,
            };
            let before = candidate
                .service
                .tag(contract::REFUSED)
                .and_then(RefusedPushes::decode);
            let repeat = before
                .as_ref()
                .is_some_and(|b| b.has_refused(against, &image.digest));
            if repeat {
                plan = plan.note(format!(
                    "{reason} (refused and alerted before: not alerted again)"
                ));
            } else {
                // Remembered before the alert is sent: a redelivery is quiet. Its own tag, so
                // that this never rewrites the newest-image record.
                let remembered = RefusedPushes::remember(before.as_ref(), against, &image.digest);
                plan = plan.note(reason.clone()).change(
                    Action::Record(RecordSpec {
                        target: ServiceRef::of(&candidate.service),
                        tags: BTreeMap::from([(
                            contract::REFUSED.to_string(),
                            remembered.encode(),
                        )]),
                    }),
                    format!(
                        "{name}: remember that the push of {} was refused",
                        image.label()
                    ),
                );
            }
            refused.push(Refusal {
                service: name,
                service_arn: candidate.service.arn.clone(),
                refused: image.label(),
                runs,
                reason,
                repeat,
            });
            continue;
        }
        let reuse = candidate
            .restore
            .as_ref()
            .filter(|r| r.tags.get(IMAGE_DIGEST_TAG) == Some(&image.digest))
            .or_else(|| {
                candidate
                    .latest
                    .as_ref()
                    .filter(|latest| latest.is_derived(candidate.current.arn(), &image.digest))
            });
        let spec = DeploySpec {
            target: ServiceRef::of(&candidate.service),
            from: candidate.current.arn().to_string(),
            containers: containers
                .into_iter()
                .map(|(container, from)| ContainerChange {
                    container,
                    from,
                    to: new_reference.clone(),
                })
                .collect(),
            digest: image.digest.clone(),
            reuse: reuse.map(|r| r.arn().to_string()),
            trigger: trigger.clone(),
            newest: raised,
        };
        let reason = format!(
            "{name} runs {}; {} asks for {}",
            candidate.current.short_name(),
            trigger.describe(),
            image.label()
        );
        plan = plan.change(Action::Deploy(spec), reason);
    }
    DeployDecision {
        plan,
        problems,
        refused,
    }
}

/// `repo:tag@sha256:abcdef123456` for an image reference, without the registry.
fn shorten(image: &str) -> String {
    match ImageRef::parse(image) {
        Ok(parsed) => {
            let mut shown = parsed.repository.clone();
            if let Some(tag) = &parsed.tag {
                shown.push_str(&format!(":{tag}"));
            }
            if let Some(digest) = &parsed.digest {
                shown.push_str(&format!("@{}", short_digest(digest)));
            }
            shown
        }
        Err(_) => image.to_string(),
    }
}

/// The in-flight record of the service's rollout in progress, when no run recorded it.
fn unrecorded_deployment(candidate: &Candidate, trigger: &Trigger, now: u64) -> Option<RecordSpec> {
    let service = &candidate.service;
    let primary = service.primary().filter(|p| {
        p.rollout_state.as_deref() == Some("IN_PROGRESS")
            && short_task_definition(&p.task_definition) == candidate.current.short_name()
    })?;
    let recorded = service
        .tag(contract::IN_FLIGHT)
        .and_then(InFlight::decode)
        .is_some_and(|f| f.deployment_id == primary.id);
    if recorded {
        return None;
    }
    let from = candidate
        .current
        .tags
        .get(ops_core::aws::ecs::DERIVED_FROM_TAG)
        .map(|arn| short_task_definition(arn))
        .unwrap_or_else(|| "unknown".into());
    let in_flight = InFlight {
        deployment_id: primary.id.clone(),
        trigger: trigger.clone(),
        started_at: now,
        from,
        to: candidate.current.short_name(),
    };
    Some(RecordSpec {
        target: ServiceRef::of(service),
        tags: BTreeMap::from([(contract::IN_FLIGHT.to_string(), in_flight.encode())]),
    })
}

/// The containers of `current` that an image of `registry/repository` replaces, with their current
/// images: those `ops:deploy-containers` names, or those running an image of the repository. The
/// error says why none can be, in the words the push's warning and `doctor` use.
pub fn select_containers(
    opt_in: &OptIn,
    current: &TaskDefinitionState,
    registry: &str,
    repository: &str,
) -> Result<Vec<(String, String)>, String> {
    let images = current.images();
    let revision = current.short_name();
    match &opt_in.containers {
        Some(names) => names
            .iter()
            .map(|name| match images.get(name) {
                Some(current) => Ok((name.clone(), current.clone())),
                None => Err(format!(
                    "tag `ops:deploy-containers` names `{name}`, but {revision} has no such container (it has {})",
                    images.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            })
            .collect(),
        None => {
            let matching = containers_running(&images, registry, repository);
            if matching.is_empty() {
                Err(format!(
                    "no container of {revision} runs an image of {registry}/{repository}; name the containers to update in tag `ops:deploy-containers`"
                ))
            } else {
                Ok(matching)
            }
        }
    }
}

/// Where a rollback of `service` goes: the last deployment verified COMPLETED, or the one before
/// it when that is what runs now. Never simply the previous revision number.
pub fn rollback_target(service: &ServiceState) -> Result<String, String> {
    let last = service.tag(contract::LAST_COMPLETED);
    let previous = service.tag(contract::PREVIOUS_COMPLETED);
    let runs_last = last == Some(service.task_definition.as_str())
        && service
            .primary()
            .is_some_and(|p| p.rollout_state.as_deref() == Some("COMPLETED"));
    match (last, previous, runs_last) {
        (None, _, _) => Err(format!(
            "no deployment of {} has been verified COMPLETED yet, so there is nothing known-good to roll back to",
            service.qualified_name()
        )),
        (Some(_), None, true) => Err(format!(
            "{} runs its only verified deployment ({}); there is no earlier one to roll back to",
            service.qualified_name(),
            short_task_definition(&service.task_definition)
        )),
        (Some(_), Some(previous), true) => Ok(previous.to_string()),
        (Some(last), _, false) => Ok(last.to_string()),
    }
}

/// Roll `service` back to `target` (an ACTIVE revision).
pub fn decide_rollback(
    service: &ServiceState,
    target: &TaskDefinitionState,
    requested_by: &str,
) -> Plan<Action> {
    if service.task_definition == target.arn() {
        return Plan::new().note(format!(
            "{} already runs {}",
            service.qualified_name(),
            target.short_name()
        ));
    }
    let spec = RollbackSpec {
        target: ServiceRef::of(service),
        from: service.task_definition.clone(),
        to: target.arn().to_string(),
        trigger: Trigger::ChatRollback {
            requested_by: requested_by.to_string(),
        },
    };
    let reason = format!(
        "{requested_by} asked to roll {} back from {} to {}, its last verified deployment",
        service.qualified_name(),
        short_task_definition(&service.task_definition),
        target.short_name()
    );
    Plan::new().change(Action::Rollback(spec), reason)
}

/// Which path saw an outcome first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenBy {
    /// ECS's `ECS Deployment State Change` event.
    Event,
    /// The scheduled reconcile (or a push or chat command that replaces the in-flight record),
    /// reading ECS's own deployment state because the event had not arrived.
    Reconcile,
}

/// How a deployment ended, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `cluster/service`.
    pub service: String,
    /// ECS deployment id.
    pub deployment_id: String,
    /// Whether ECS verified it COMPLETED.
    pub succeeded: bool,
    /// How it is settled: completed, failed, or unverified (ECS no longer lists it).
    pub settled: Settled,
    /// Which path saw it first.
    pub seen_by: SeenBy,
    /// ECS's reason.
    pub reason: String,
    /// The revision the deployment rolled out (ARN), if known.
    pub deployed: Option<String>,
    /// The revision before it (ARN or `family:revision`), if known.
    pub previous: Option<String>,
    /// For a failure: the revision ECS's circuit breaker went back to.
    pub rolled_back_to: Option<String>,
    /// Where a chat `rollback` would go once this outcome is recorded (see [`rollback_target`]):
    /// `None` when there is no earlier verified deployment, so no undo may be offered.
    pub rollback_to: Option<String>,
    /// What deploy-trigger recorded when it started it, if it did.
    pub in_flight: Option<InFlight>,
    /// Seconds from start to this outcome, if the start is known and the outcome seen as it
    /// happened (a reconcile sees it up to one schedule period late, so it gives none).
    pub duration_seconds: Option<u64>,
    /// For a service on ECS's own blue/green, canary or linear strategy: the strategy and the
    /// service deployment that ran it (the stage it ended at, the weights, the alarms that fired).
    pub native: Option<NativeDeployment>,
}

/// What ECS's own blue/green, canary or linear deployment did, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeDeployment {
    /// The service's strategy.
    pub strategy: Strategy,
    /// The service deployment, if ECS still lists it.
    pub service_deployment: Option<ServiceDeploymentView>,
}

impl NativeDeployment {
    /// The native deployment behind `deployment_id` on `service`, if the service runs one.
    pub fn of(service: &ServiceState, deployment_id: &str) -> Option<Self> {
        service.strategy.native().then(|| NativeDeployment {
            strategy: service.strategy.clone(),
            service_deployment: service.service_deployment_of(deployment_id).cloned(),
        })
    }
}

/// An outcome decision: what to record and what to report (nothing for a duplicate event).
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeDecision {
    /// Tags to record.
    pub plan: Plan<Action>,
    /// The outcome to alert, if any.
    pub outcome: Option<Outcome>,
}

impl OutcomeDecision {
    fn quiet(note: String) -> Self {
        OutcomeDecision {
            plan: Plan::new().note(note),
            outcome: None,
        }
    }
}

/// How long a deployment deploy-trigger started may be missing from DescribeServices before the
/// reconcile calls it gone (ECS is eventually consistent right after UpdateService), in seconds.
pub const VANISHED_AFTER_SECONDS: u64 = 600;

/// The deployment deploy-trigger started last on `service`, from its in-flight record.
pub fn in_flight(service: &ServiceState) -> Option<InFlight> {
    service.tag(contract::IN_FLIGHT).and_then(InFlight::decode)
}

/// The settlement record of `service`, if deploy-trigger wrote one.
pub fn settlement(service: &ServiceState) -> Option<Settlement> {
    service
        .tag(contract::SETTLEMENT)
        .and_then(Settlement::decode)
}

/// Whether the outcome of `deployment_id` was already alerted and recorded: it is the last
/// reported deployment, or the in-flight deployment's settlement records its outcome (which a later
/// report of another deployment, e.g. ECS's rollback deployment, does not overwrite).
pub fn is_settled(service: &ServiceState, deployment_id: &str) -> bool {
    contract::reported_ids(service.tag(contract::LAST_REPORTED)).contains(&deployment_id)
        || settlement(service)
            .is_some_and(|s| s.deployment_id == deployment_id && s.outcome.is_some())
}

/// Whether `deployment_id` is the one `service`'s in-flight record names.
pub fn is_in_flight(service: &ServiceState, deployment_id: &str) -> bool {
    in_flight(service).is_some_and(|f| f.deployment_id == deployment_id)
}

/// Who may alert the outcome of the in-flight deployment, as the settlement record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody holds it (or the holder's lease ran out): claim it.
    Free,
    /// This invocation claimed it.
    Ours,
    /// Another invocation claimed it and its lease runs: stay quiet.
    Held(Settlement),
}

/// The claim on settling `deployment_id`, for the invocation `token` at `now` (epoch seconds).
/// A claim without an outcome older than [`contract::CLAIM_LEASE_SECONDS`] was left by an
/// invocation that died before it alerted, so it is free again.
pub fn claim_state(service: &ServiceState, deployment_id: &str, token: &str, now: u64) -> Claim {
    match settlement(service) {
        Some(s) if s.deployment_id == deployment_id && s.outcome.is_none() => {
            if s.by == token {
                Claim::Ours
            } else if now < s.at.saturating_add(contract::CLAIM_LEASE_SECONDS) {
                Claim::Held(s)
            } else {
                Claim::Free
            }
        }
        _ => Claim::Free,
    }
}

/// The decision with the settlement (the claim, now with its outcome) recorded in the same
/// TagResource as the outcome's other tags.
pub fn with_settlement(mut decision: OutcomeDecision, claim: &Settlement) -> OutcomeDecision {
    let Some(outcome) = &decision.outcome else {
        return decision;
    };
    let settled = Settlement {
        outcome: Some(outcome.settled),
        ..claim.clone()
    };
    for change in &mut decision.plan.changes {
        if let Action::Record(record) = &mut change.action {
            record
                .tags
                .insert(contract::SETTLEMENT.to_string(), settled.encode());
        }
    }
    decision
}

/// Whether `deployment_id` is one of `service`'s deployments: one DescribeServices shows, or the
/// one its in-flight record names. An event about any other (empty, unknown, another service's)
/// was not caused by this service's rollouts and is never reported.
pub fn is_own_deployment(service: &ServiceState, deployment_id: &str) -> bool {
    !deployment_id.trim().is_empty()
        && (service.deployments.iter().any(|d| d.id == deployment_id)
            || is_in_flight(service, deployment_id))
}

/// The answer to a state change about a deployment that is not the service's.
pub fn foreign_deployment(service: &ServiceState, deployment_id: &str) -> String {
    format!(
        "deployment {} is not one of {}'s",
        if deployment_id.trim().is_empty() {
            "(empty id)"
        } else {
            deployment_id
        },
        service.qualified_name()
    )
}

/// Judge an `ECS Deployment State Change` from what the service shows now, not from the event alone.
pub fn decide_outcome(
    service: &ServiceState,
    event_name: &str,
    deployment_id: &str,
    reason: &str,
    now: u64,
) -> OutcomeDecision {
    let name = service.qualified_name();
    if !is_own_deployment(service, deployment_id) {
        return OutcomeDecision::quiet(format!(
            "ignored: {}",
            foreign_deployment(service, deployment_id)
        ));
    }
    if is_settled(service, deployment_id) {
        return OutcomeDecision::quiet(format!(
            "{name}: deployment {deployment_id} was already reported"
        ));
    }
    let succeeded = match event_name {
        "SERVICE_DEPLOYMENT_COMPLETED" => true,
        "SERVICE_DEPLOYMENT_FAILED" => false,
        other => return OutcomeDecision::quiet(format!("{name}: {other} needs no report")),
    };
    let state = service
        .deployments
        .iter()
        .find(|d| d.id == deployment_id)
        .and_then(|d| d.rollout_state.as_deref());
    if succeeded && state != Some("COMPLETED") {
        return OutcomeDecision::quiet(format!(
            "{name}: the event says deployment {deployment_id} completed, but the service does not show it COMPLETED; not reported"
        ));
    }
    if let (false, Some(shown @ ("IN_PROGRESS" | "COMPLETED" | "STOPPED"))) = (succeeded, state) {
        return OutcomeDecision::quiet(format!(
            "{name}: the event says deployment {deployment_id} failed, but the service shows it {shown}; not reported"
        ));
    }
    settle_outcome(
        service,
        deployment_id,
        succeeded,
        reason,
        SeenBy::Event,
        now,
    )
}

/// What a reconcile tick settles on `service`: the outcome of its in-flight deployment once ECS
/// reports it COMPLETED or FAILED (exactly as the event would have), or once ECS has stopped
/// listing it for [`VANISHED_AFTER_SECONDS`] (unverified); nothing while it is in progress, when
/// there is no in-flight record, or when it is already settled.
pub fn decide_reconcile(service: &ServiceState, now: u64) -> OutcomeDecision {
    let name = service.qualified_name();
    let Some(in_flight) = in_flight(service) else {
        return OutcomeDecision::quiet(format!(
            "{name}: no deployment started by deploy-trigger on record"
        ));
    };
    let id = in_flight.deployment_id.as_str();
    if is_settled(service, id) {
        return OutcomeDecision::quiet(format!(
            "{name}: deployment {id} ({}) is already settled",
            in_flight.to
        ));
    }
    match service.deployments.iter().find(|d| d.id == id) {
        Some(deployment) => {
            let state = deployment.rollout_state.as_deref();
            let reason = deployment
                .rollout_reason
                .clone()
                .unwrap_or_else(|| format!("ECS reports deployment {id} {}", state.unwrap_or("")));
            match state {
                Some("COMPLETED") => {
                    settle_outcome(service, id, true, &reason, SeenBy::Reconcile, now)
                }
                Some("FAILED") => settle_outcome(service, id, false, &reason, SeenBy::Reconcile, now),
                other => OutcomeDecision::quiet(format!(
                    "{name}: deployment {id} of {} is {} ({} of {} tasks running); nothing to settle yet",
                    in_flight.to,
                    other.unwrap_or("without a rollout state"),
                    deployment.running,
                    deployment.desired
                )),
            }
        }
        None if now >= in_flight.started_at.saturating_add(VANISHED_AFTER_SECONDS) => {
            vanished(service, &in_flight)
        }
        None => OutcomeDecision::quiet(format!(
            "{name}: ECS does not list deployment {id} ({} s after it started): too new for ECS's eventually consistent answer, or already gone; settled as unverified if still missing {VANISHED_AFTER_SECONDS} s after it started",
            now.saturating_sub(in_flight.started_at)
        )),
    }
}

/// What a push, chat deploy or rollback settles before it replaces the in-flight record: as
/// [`decide_reconcile`], except that an unsettled in-flight deployment ECS no longer lists is
/// settled as unverified at once, without waiting [`VANISHED_AFTER_SECONDS`]: once its record is
/// replaced no later tick could settle it, and its outcome would never be alerted (found by the
/// model test: a FAILED deployment rolled back by ECS, the rollback COMPLETED and drained it, then
/// a push within the grace).
pub fn decide_replacing(service: &ServiceState, now: u64) -> OutcomeDecision {
    match in_flight(service) {
        Some(record)
            if !is_settled(service, &record.deployment_id)
                && !service
                    .deployments
                    .iter()
                    .any(|d| d.id == record.deployment_id) =>
        {
            vanished(service, &record)
        }
        _ => decide_reconcile(service, now),
    }
}

/// The in-flight deployment is gone from DescribeServices before deploy-trigger read its outcome:
/// settle it as unverified (never as good), saying what runs instead.
fn vanished(service: &ServiceState, in_flight: &InFlight) -> OutcomeDecision {
    let name = service.qualified_name();
    let id = &in_flight.deployment_id;
    let runs = short_task_definition(&service.task_definition);
    let now_runs = match service.primary() {
        Some(primary) => format!(
            "{name} runs {runs} (deployment {}, {})",
            primary.id,
            primary
                .rollout_state
                .as_deref()
                .unwrap_or("no rollout state")
        ),
        None => format!("{name} runs {runs}"),
    };
    let back = if runs == in_flight.from {
        format!(", the revision it ran before: ECS's circuit breaker most likely rolled {} back (or someone deployed {runs} again)", in_flight.to)
    } else {
        String::new()
    };
    let reason = format!(
        "ECS no longer lists deployment {id} of {}, so its outcome was never read; {now_runs}{back}",
        in_flight.to
    );
    let outcome = Outcome {
        service: name.clone(),
        deployment_id: id.clone(),
        succeeded: false,
        settled: Settled::Unverified,
        seen_by: SeenBy::Reconcile,
        reason,
        deployed: Some(in_flight.to.clone()),
        previous: Some(in_flight.from.clone()),
        rolled_back_to: None,
        rollback_to: service.tag(contract::LAST_COMPLETED).map(String::from),
        in_flight: Some(in_flight.clone()),
        duration_seconds: None,
        native: NativeDeployment::of(service, id),
    };
    let record = RecordSpec {
        target: ServiceRef::of(service),
        tags: BTreeMap::from([(
            contract::LAST_REPORTED.to_string(),
            contract::with_reported(service.tag(contract::LAST_REPORTED), id),
        )]),
    };
    OutcomeDecision {
        plan: Plan::new().change(
            Action::Record(record),
            format!("{name}: deployment {id} ended unverified"),
        ),
        outcome: Some(outcome),
    }
}

/// The record and the report of `deployment_id` ending as ECS says (`succeeded` or not).
fn settle_outcome(
    service: &ServiceState,
    deployment_id: &str,
    succeeded: bool,
    reason: &str,
    seen_by: SeenBy,
    now: u64,
) -> OutcomeDecision {
    let name = service.qualified_name();
    let deployment = service.deployments.iter().find(|d| d.id == deployment_id);
    let in_flight = in_flight(service).filter(|f| f.deployment_id == deployment_id);
    let deployed = deployment
        .map(|d| d.task_definition.clone())
        .or_else(|| in_flight.as_ref().map(|f| f.to.clone()));
    let previous = in_flight
        .as_ref()
        .map(|f| f.from.clone())
        .or_else(|| service.tag(contract::LAST_COMPLETED).map(String::from))
        .filter(|p| {
            deployed.as_deref().map(short_task_definition) != Some(short_task_definition(p))
        });
    let mut tags = BTreeMap::from([(
        contract::LAST_REPORTED.to_string(),
        contract::with_reported(service.tag(contract::LAST_REPORTED), deployment_id),
    )]);
    let mut rolled_back_to = None;
    let last_completed = service.tag(contract::LAST_COMPLETED).map(String::from);
    let rollback_to;
    if succeeded {
        let deployed_arn = deployed.clone().unwrap_or_default();
        if let Some(last) = last_completed
            .as_ref()
            .filter(|last| **last != deployed_arn)
        {
            tags.insert(contract::PREVIOUS_COMPLETED.to_string(), last.clone());
            rollback_to = Some(last.clone());
        } else {
            // The same revision verified again: a rollback still goes where it went before.
            rollback_to = service.tag(contract::PREVIOUS_COMPLETED).map(String::from);
        }
        tags.insert(contract::LAST_COMPLETED.to_string(), deployed_arn);
    } else {
        // ECS's own strategies say where their rollback went, once it succeeded (not while it
        // runs, not when it failed); a rolling update's rollback is the newer deployment the
        // circuit breaker started.
        rolled_back_to = match service.service_deployment_of(deployment_id) {
            Some(native) => native.rolled_back().map(String::from),
            None => service
                .primary()
                .filter(|p| p.id != deployment_id)
                .map(|p| p.task_definition.clone()),
        };
        rollback_to = last_completed;
    }
    let duration_seconds = match seen_by {
        SeenBy::Event => in_flight.as_ref().map(|f| now.saturating_sub(f.started_at)),
        SeenBy::Reconcile => None,
    };
    let outcome = Outcome {
        service: name.clone(),
        deployment_id: deployment_id.to_string(),
        succeeded,
        settled: if succeeded {
            Settled::Completed
        } else {
            Settled::Failed
        },
        seen_by,
        reason: reason.to_string(),
        deployed,
        previous,
        rolled_back_to,
        rollback_to,
        duration_seconds,
        in_flight,
        native: NativeDeployment::of(service, deployment_id),
    };
    let verdict = if succeeded { "completed" } else { "failed" };
    let record = RecordSpec {
        target: ServiceRef::of(service),
        tags,
    };
    OutcomeDecision {
        plan: Plan::new().change(
            Action::Record(record),
            format!("{name}: deployment {deployment_id} {verdict}"),
        ),
        outcome: Some(outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition};
    use ops_core::aws::ecs::DeploymentState;

    const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234ef56";

    fn revision(
        family_revision: &str,
        images: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> TaskDefinitionState {
        let containers = images
            .iter()
            .map(|(n, i)| ContainerDefinition::builder().name(*n).image(*i).build());
        TaskDefinitionState {
            definition: TaskDefinition::builder()
                .task_definition_arn(format!(
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/{family_revision}"
                ))
                .family(family_revision.split(':').next().unwrap())
                .set_container_definitions(Some(containers.collect()))
                .build(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn service(task_definition: &str, rollout: &str, tags: &[(&str, &str)]) -> ServiceState {
        ServiceState {
            arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/web".into(),
            name: "web".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            cluster: "prod".into(),
            status: "ACTIVE".into(),
            desired: 2,
            running: 2,
            task_definition: format!(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/{task_definition}"
            ),
            deployments: vec![DeploymentState {
                id: "ecs-svc/1".into(),
                status: "PRIMARY".into(),
                rollout_state: Some(rollout.into()),
                rollout_reason: None,
                task_definition: format!(
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/{task_definition}"
                ),
                desired: 2,
                running: 2,
                failed: 0,
                created_at: None,
            }],
            target_groups: vec![],
            deployment_controller: ops_core::aws::ecs::ECS_CONTROLLER.into(),
            placement: Default::default(),
            strategy: Default::default(),
            service_deployments: Vec::new(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn candidate(
        current: TaskDefinitionState,
        latest: Option<TaskDefinitionState>,
        patterns: &str,
    ) -> Candidate {
        let tags = BTreeMap::from([
            (contract::REPOSITORY.to_string(), "web".to_string()),
            (contract::TAG_PATTERN.to_string(), patterns.to_string()),
        ]);
        Candidate {
            service: service(&current.short_name(), "COMPLETED", &[]),
            opt_in: contract::opt_in(&tags).unwrap().unwrap(),
            current,
            latest,
            restore: None,
        }
    }

    fn image(tag: Option<&str>) -> NewImage {
        NewImage {
            registry: REGISTRY.into(),
            repository: "web".into(),
            tag: tag.map(String::from),
            digest: DIGEST.into(),
            pushed_at_ms: Some(1_000),
            retagged_at_ms: None,
        }
    }

    const NEWER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    /// A candidate running `web:release-2@NEWER`, whose newest recorded image is NEWER pushed at 2 s.
    fn after_release_2() -> Candidate {
        let mut c = candidate(
            revision(
                "web:3",
                &[("app", &format!("{REGISTRY}/web:release-2@{NEWER}"))],
                &[],
            ),
            None,
            "release-+",
        );
        let newest = NewestPushed::new(2_000, NEWER);
        c.service
            .tags
            .insert(contract::NEWEST_PUSHED.into(), newest.encode());
        c
    }

    #[test]
    fn a_late_push_of_an_older_image_is_refused_and_says_what_runs() {
        let c = after_release_2();
        let decision = decide_deploy(
            std::slice::from_ref(&c),
            &image(Some("release-1")),
            &Trigger::EcrPush,
            0,
        );
        assert!(
            decision
                .plan
                .changes
                .iter()
                .all(|c| matches!(c.action, Action::Record(_))),
            "nothing deployed: {:?}",
            decision.plan
        );
        assert_eq!(decision.refused.len(), 1);
        let refusal = &decision.refused[0];
        assert_eq!(refusal.refused, "web:release-1");
        assert_eq!(
            refusal.runs,
            format!("app: web:release-2@{}", short_digest(NEWER))
        );
        assert!(
            refusal
                .reason
                .contains("it is older than sha256:222222222222"),
            "{}",
            refusal.reason
        );
        assert_eq!(decision.plan.notes.len(), 1);
        assert_eq!(decision.plan.notes[0], refusal.reason);
        assert!(!refusal.repeat);
        let Action::Record(record) = &decision.plan.changes[0].action else {
            panic!("the refusal is remembered: {:?}", decision.plan)
        };
        assert!(
            !record.tags.contains_key(contract::NEWEST_PUSHED),
            "the newest-image record is never rewritten by a refusal"
        );
        let remembered = RefusedPushes::decode(&record.tags[contract::REFUSED]).unwrap();
        assert!(remembered.has_refused(&NewestPushed::new(2_000, NEWER), DIGEST));

        let mut again = c;
        again
            .service
            .tags
            .insert(contract::REFUSED.into(), remembered.encode());
        let redelivered = decide_deploy(&[again], &image(Some("release-1")), &Trigger::EcrPush, 0);
        assert!(redelivered.plan.is_empty(), "nothing to record again");
        assert!(redelivered.refused[0].repeat, "quiet: alerted before");
        assert!(
            redelivered.plan.notes[0].ends_with("(refused and alerted before: not alerted again)"),
            "{:?}",
            redelivered.plan.notes
        );
    }

    #[test]
    fn a_newer_push_deploys_and_raises_the_newest_image() {
        let c = after_release_2();
        let mut newer = image(Some("release-3"));
        newer.pushed_at_ms = Some(3_000);
        let decision = decide_deploy(&[c], &newer, &Trigger::EcrPush, 0);
        assert!(decision.refused.is_empty());
        let Action::Deploy(spec) = &decision.plan.changes[0].action else {
            panic!("a deploy")
        };
        assert_eq!(spec.newest, Some(NewestPushed::new(3_000, DIGEST)));
    }

    #[test]
    fn a_person_may_deploy_an_older_image_and_the_newest_record_stays() {
        let c = after_release_2();
        let chat = decide_deploy(
            &[c],
            &image(Some("release-1")),
            &Trigger::ChatDeploy {
                requested_by: "alice".into(),
            },
            0,
        );
        assert!(chat.refused.is_empty());
        let Action::Deploy(spec) = &chat.plan.changes[0].action else {
            panic!("a deploy")
        };
        assert_eq!(spec.newest, None, "never lowered");
    }

    #[test]
    fn the_newest_push_again_is_already_deployed_or_refused_once_the_service_moved_on() {
        let c = after_release_2();
        let mut again = image(Some("release-2"));
        again.digest = NEWER.into();
        again.pushed_at_ms = Some(2_000);
        let same = decide_deploy(std::slice::from_ref(&c), &again, &Trigger::EcrPush, 0);
        assert!(same.plan.is_empty() && same.refused.is_empty());
        assert_eq!(same.plan.notes, ["prod/web: already runs web:release-2"]);

        let mut moved = c;
        moved.current = revision(
            "web:4",
            &[("app", &format!("{REGISTRY}/web:release-1@{DIGEST}"))],
            &[],
        );
        let repeated = decide_deploy(&[moved], &again, &Trigger::EcrPush, 0);
        assert!(
            repeated
                .plan
                .changes
                .iter()
                .all(|c| matches!(c.action, Action::Record(_))),
            "nothing deployed: {:?}",
            repeated.plan
        );
        assert!(
            repeated.refused[0]
                .reason
                .contains("already deployed here once"),
            "{:?}",
            repeated.refused
        );
    }

    #[test]
    fn a_push_event_well_after_the_image_was_pushed_is_a_retag() {
        let pushed = Some(1_000_000);
        assert_eq!(
            retagged_at(Some(1_000_000 + 2_000), pushed),
            None,
            "the image's own push"
        );
        assert_eq!(
            retagged_at(Some(1_000_000 + RETAG_AFTER_MS + 1), pushed),
            Some(1_000_000 + RETAG_AFTER_MS + 1)
        );
        assert_eq!(retagged_at(None, pushed), None);
        assert_eq!(retagged_at(Some(5), None), None);
    }

    #[test]
    fn late_push_compares_ecr_push_times_and_cannot_order_equal_ones() {
        let newest = NewestPushed::new(2_000, NEWER);
        let mut pushed = image(Some("x"));
        assert!(matches!(
            late_push(Some(&newest), &pushed),
            Some(Late::Older(_))
        ));
        pushed.pushed_at_ms = Some(2_000);
        assert_eq!(late_push(Some(&newest), &pushed), None);
        pushed.pushed_at_ms = None;
        assert_eq!(late_push(Some(&newest), &pushed), None);
        assert_eq!(late_push(None, &image(Some("x"))), None);
    }

    #[test]
    fn a_state_change_of_a_deployment_the_service_does_not_have_is_ignored() {
        let done = service("web:6", "FAILED", &[]);
        for id in ["", "  ", "ecs-svc/999"] {
            let decision = decide_outcome(&done, "SERVICE_DEPLOYMENT_FAILED", id, "", 0);
            assert!(decision.outcome.is_none(), "{id:?}");
            assert!(decision.plan.is_empty(), "{id:?}");
            assert!(
                decision.plan.notes[0].contains("is not one of prod/web's"),
                "{:?}",
                decision.plan.notes
            );
        }
        let in_flight = InFlight {
            deployment_id: "ecs-svc/7".into(),
            trigger: Trigger::EcrPush,
            started_at: 0,
            from: "web:5".into(),
            to: "web:6".into(),
        };
        let had = service(
            "web:5",
            "COMPLETED",
            &[(contract::IN_FLIGHT, &in_flight.encode())],
        );
        assert!(
            is_own_deployment(&had, "ecs-svc/7"),
            "the in-flight record counts"
        );
        let failed = decide_outcome(&had, "SERVICE_DEPLOYMENT_FAILED", "ecs-svc/7", "", 0);
        assert!(failed.outcome.is_some());
    }

    #[test]
    fn an_untagged_push_is_never_deployed_automatically_but_chat_may() {
        let c = candidate(
            revision("web:1", &[("app", &format!("{REGISTRY}/web:v1"))], &[]),
            None,
            "+",
        );
        let push = decide_deploy(std::slice::from_ref(&c), &image(None), &Trigger::EcrPush, 0);
        assert!(push.plan.is_empty());
        assert_eq!(
            push.plan.notes,
            ["prod/web: an untagged push is never deployed automatically"]
        );
        let chat = decide_deploy(
            &[c],
            &image(None),
            &Trigger::ChatDeploy {
                requested_by: "alice".into(),
            },
            0,
        );
        assert_eq!(chat.plan.changes.len(), 1);
    }

    #[test]
    fn a_revision_an_interrupted_run_registered_is_reused() {
        let current = revision("web:1", &[("app", &format!("{REGISTRY}/web:v1"))], &[]);
        let orphan = revision(
            "web:2",
            &[("app", &format!("{REGISTRY}/web:v2@{DIGEST}"))],
            &[
                (ops_core::aws::ecs::DERIVED_FROM_TAG, current.arn()),
                (ops_core::aws::ecs::IMAGE_DIGEST_TAG, DIGEST),
            ],
        );
        let decision = decide_deploy(
            &[candidate(current, Some(orphan), "v+")],
            &image(Some("v2")),
            &Trigger::EcrPush,
            0,
        );
        let Action::Deploy(spec) = &decision.plan.changes[0].action else {
            panic!("a deploy")
        };
        assert_eq!(
            spec.reuse.as_deref(),
            Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:2")
        );
    }

    #[test]
    fn a_latest_revision_of_another_digest_is_not_reused() {
        let current = revision("web:1", &[("app", &format!("{REGISTRY}/web:v1"))], &[]);
        let other = revision(
            "web:2",
            &[("app", "x")],
            &[
                (ops_core::aws::ecs::DERIVED_FROM_TAG, current.arn()),
                (ops_core::aws::ecs::IMAGE_DIGEST_TAG, "sha256:other"),
            ],
        );
        let decision = decide_deploy(
            &[candidate(current, Some(other), "v+")],
            &image(Some("v2")),
            &Trigger::EcrPush,
            0,
        );
        let Action::Deploy(spec) = &decision.plan.changes[0].action else {
            panic!("a deploy")
        };
        assert_eq!(spec.reuse, None);
    }

    #[test]
    fn no_container_of_the_repository_is_a_problem_not_a_guess() {
        let c = candidate(revision("web:1", &[("app", "nginx:1.27")], &[]), None, "+");
        let decision = decide_deploy(&[c], &image(Some("v2")), &Trigger::EcrPush, 0);
        assert!(decision.plan.is_empty());
        assert!(
            decision.problems[0]
                .problem
                .starts_with("no container of web:1 runs an image of"),
            "{:?}",
            decision.problems
        );
    }

    #[test]
    fn rollback_goes_to_the_previous_verified_revision_when_the_last_one_runs() {
        let arn = |r: &str| format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{r}");
        let runs_last = service(
            "web:5",
            "COMPLETED",
            &[
                (contract::LAST_COMPLETED, &arn("web:5")),
                (contract::PREVIOUS_COMPLETED, &arn("web:2")),
            ],
        );
        assert_eq!(rollback_target(&runs_last), Ok(arn("web:2")));
        let rolling = service(
            "web:6",
            "IN_PROGRESS",
            &[
                (contract::LAST_COMPLETED, &arn("web:5")),
                (contract::PREVIOUS_COMPLETED, &arn("web:2")),
            ],
        );
        assert_eq!(rollback_target(&rolling), Ok(arn("web:5")));
        let only = service(
            "web:5",
            "COMPLETED",
            &[(contract::LAST_COMPLETED, &arn("web:5"))],
        );
        assert!(rollback_target(&only)
            .unwrap_err()
            .contains("runs its only verified deployment (web:5)"));
    }

    #[test]
    fn a_completed_event_the_service_does_not_show_is_not_reported() {
        let rolling = service("web:6", "IN_PROGRESS", &[]);
        let decision = decide_outcome(&rolling, "SERVICE_DEPLOYMENT_COMPLETED", "ecs-svc/1", "", 0);
        assert!(decision.outcome.is_none());
        assert!(decision.plan.is_empty());
    }

    #[test]
    fn a_success_moves_last_completed_to_previous() {
        let arn = |r: &str| format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{r}");
        let done = service(
            "web:6",
            "COMPLETED",
            &[(contract::LAST_COMPLETED, &arn("web:5"))],
        );
        let decision = decide_outcome(
            &done,
            "SERVICE_DEPLOYMENT_COMPLETED",
            "ecs-svc/1",
            "done",
            0,
        );
        let Action::Record(record) = &decision.plan.changes[0].action else {
            panic!("a record")
        };
        assert_eq!(record.tags[contract::LAST_COMPLETED], arn("web:6"));
        assert_eq!(record.tags[contract::PREVIOUS_COMPLETED], arn("web:5"));
        assert_eq!(record.tags[contract::LAST_REPORTED], "ecs-svc/1");
    }

    fn in_flight_to(id: &str, to: &str) -> InFlight {
        InFlight {
            deployment_id: id.into(),
            trigger: Trigger::EcrPush,
            started_at: 1_000,
            from: "web:5".into(),
            to: to.into(),
        }
    }

    /// `prod/web` whose in-flight record names ecs-svc/1 (web:6), ECS showing it as `rollout`.
    fn started(rollout: &str) -> ServiceState {
        let record = in_flight_to("ecs-svc/1", "web:6");
        service("web:6", rollout, &[(contract::IN_FLIGHT, &record.encode())])
    }

    #[test]
    fn a_reconcile_settles_a_finished_in_flight_deployment_as_the_event_would() {
        let done = started("COMPLETED");
        let by_tick = decide_reconcile(&done, 2_000);
        let by_event = decide_outcome(
            &done,
            "SERVICE_DEPLOYMENT_COMPLETED",
            "ecs-svc/1",
            "",
            2_000,
        );
        let (tick, event) = (by_tick.outcome.unwrap(), by_event.outcome.unwrap());
        assert!(tick.succeeded && tick.settled == Settled::Completed);
        assert_eq!(tick.seen_by, SeenBy::Reconcile);
        assert_eq!(tick.duration_seconds, None, "a tick sees it late");
        assert_eq!(event.duration_seconds, Some(1_000));
        assert_eq!(
            by_tick.plan.changes, by_event.plan.changes,
            "the same record"
        );

        let failed = decide_reconcile(&started("FAILED"), 2_000).outcome.unwrap();
        assert!(!failed.succeeded && failed.settled == Settled::Failed);
    }

    #[test]
    fn a_reconcile_leaves_a_rollout_in_progress_and_a_settled_one_alone() {
        let rolling = decide_reconcile(&started("IN_PROGRESS"), 2_000);
        assert!(rolling.outcome.is_none() && rolling.plan.is_empty());
        assert!(
            rolling.plan.notes[0]
                .contains("is IN_PROGRESS (2 of 2 tasks running); nothing to settle yet"),
            "{:?}",
            rolling.plan.notes
        );
        let mut reported = started("COMPLETED");
        reported
            .tags
            .insert(contract::LAST_REPORTED.into(), "ecs-svc/1".into());
        assert!(decide_reconcile(&reported, 2_000).outcome.is_none());
        let none = service("web:6", "COMPLETED", &[]);
        assert!(
            decide_reconcile(&none, 2_000).outcome.is_none(),
            "no record: not ours to settle"
        );
    }

    #[test]
    fn a_settlement_outlives_a_later_report_of_another_deployment() {
        let mut done = started("COMPLETED");
        let settled = Settlement {
            deployment_id: "ecs-svc/1".into(),
            by: "inv-1".into(),
            at: 1_500,
            outcome: Some(Settled::Failed),
        };
        done.tags
            .insert(contract::SETTLEMENT.into(), settled.encode());
        done.tags
            .insert(contract::LAST_REPORTED.into(), "ecs-svc/2".into());
        assert!(is_settled(&done, "ecs-svc/1"));
        let late = decide_outcome(
            &done,
            "SERVICE_DEPLOYMENT_COMPLETED",
            "ecs-svc/1",
            "",
            2_000,
        );
        assert!(late.outcome.is_none(), "a late event is quiet");
        assert!(decide_reconcile(&done, 2_000).outcome.is_none());
    }

    #[test]
    fn a_deployment_ecs_stopped_listing_is_settled_unverified_after_the_grace() {
        let record = in_flight_to("ecs-svc/9", "web:6");
        let gone = service(
            "web:5",
            "COMPLETED",
            &[(contract::IN_FLIGHT, &record.encode())],
        );
        let soon = decide_reconcile(&gone, record.started_at + 10);
        assert!(
            soon.outcome.is_none(),
            "ECS may not list it yet: {:?}",
            soon.plan
        );
        let later = decide_reconcile(&gone, record.started_at + VANISHED_AFTER_SECONDS);
        let outcome = later.outcome.unwrap();
        assert_eq!(outcome.settled, Settled::Unverified);
        assert!(!outcome.succeeded, "never claimed as good");
        assert!(
            outcome
                .reason
                .contains("ECS no longer lists deployment ecs-svc/9 of web:6")
                && outcome
                    .reason
                    .contains("ECS's circuit breaker most likely rolled web:6 back"),
            "{}",
            outcome.reason
        );
        let Action::Record(record) = &later.plan.changes[0].action else {
            panic!("a record")
        };
        assert!(!record.tags.contains_key(contract::LAST_COMPLETED));
    }

    #[test]
    fn a_failed_event_that_ecs_does_not_bear_out_is_not_reported() {
        let rolling = started("IN_PROGRESS");
        let forged = decide_outcome(
            &rolling,
            "SERVICE_DEPLOYMENT_FAILED",
            "ecs-svc/1",
            "",
            2_000,
        );
        assert!(forged.outcome.is_none() && forged.plan.is_empty());
        assert!(
            forged.plan.notes[0].ends_with("but the service shows it IN_PROGRESS; not reported"),
            "{:?}",
            forged.plan.notes
        );
    }

    #[test]
    fn a_claim_is_ours_held_or_free_once_its_lease_ran_out() {
        let mut claimed = started("COMPLETED");
        let claim = Settlement {
            deployment_id: "ecs-svc/1".into(),
            by: "inv-a".into(),
            at: 1_000,
            outcome: None,
        };
        claimed
            .tags
            .insert(contract::SETTLEMENT.into(), claim.encode());
        assert_eq!(
            claim_state(&claimed, "ecs-svc/1", "inv-a", 1_001),
            Claim::Ours
        );
        assert_eq!(
            claim_state(&claimed, "ecs-svc/1", "inv-b", 1_001),
            Claim::Held(claim.clone())
        );
        assert_eq!(
            claim_state(
                &claimed,
                "ecs-svc/1",
                "inv-b",
                1_000 + contract::CLAIM_LEASE_SECONDS
            ),
            Claim::Free,
            "its holder died"
        );
        assert_eq!(
            claim_state(&claimed, "ecs-svc/2", "inv-b", 1_001),
            Claim::Free
        );

        let decision = with_settlement(decide_reconcile(&claimed, 1_001), &claim);
        let Action::Record(record) = &decision.plan.changes[0].action else {
            panic!("a record")
        };
        assert_eq!(
            Settlement::decode(&record.tags[contract::SETTLEMENT])
                .unwrap()
                .outcome,
            Some(Settled::Completed),
            "the outcome is recorded with the other tags, in one TagResource"
        );
    }
}
