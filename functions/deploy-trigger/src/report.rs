//! Report: the alerts ops read and the JSON the caller gets back.

use std::collections::BTreeMap;

use ops_core::alert::{Alert, Severity};
use ops_core::aws::ecs::{short_task_definition, ServiceState};
use ops_core::metrics::change_events::{
    DEPLOYMENT_FAILED, DEPLOYMENT_SUCCEEDED, DEPLOYMENT_UNVERIFIED,
};
use ops_core::plan::FailedChange;
use serde::Serialize;

use crate::commands::{help_line, rollback_line, status_line, COMMANDS};
use crate::contract::{self, Settled};
use crate::decide::{
    in_flight, is_settled, settlement, short_digest, Action, NativeDeployment, NewImage, Outcome,
    Problem, Refusal, SeenBy,
};

/// Images by revision (`family:revision` → container → image), as observed for the report.
pub type RevisionImages = BTreeMap<String, BTreeMap<String, String>>;

/// The alert for a finished deployment: succeeded, or failed (and whether ECS rolled it back), or
/// ended unverified (ECS stopped listing it before its outcome was read).
pub fn outcome_alert(function: &str, outcome: &Outcome, images: &RevisionImages) -> Alert {
    if outcome.settled == Settled::Unverified {
        return unverified_alert(function, outcome, images);
    }
    let deployed = outcome.deployed.as_deref().map(short_task_definition);
    let previous = outcome.previous.as_deref().map(short_task_definition);
    let deployed_name = deployed
        .clone()
        .unwrap_or_else(|| "an unknown revision".into());
    let changed = changed_images(images, previous.as_deref(), deployed.as_deref());
    let trigger = outcome
        .in_flight
        .as_ref()
        .map(|f| f.trigger.describe())
        .unwrap_or_else(|| {
            "a deployment deploy-trigger did not start (another tool or the console)".into()
        });
    let describe = |revision: &Option<String>| match revision {
        Some(name) => format!("{name} ({})", summarize(images.get(name))),
        None => "unknown".into(),
    };
    let mut alert = if outcome.succeeded {
        let succeeded = Alert::new(
            Severity::Info,
            function,
            DEPLOYMENT_SUCCEEDED,
            &outcome.service,
            format!("{} now runs {}", outcome.service, changed.first().cloned().unwrap_or(deployed_name.clone())),
        )
        .what(match &outcome.native {
            Some(native) => format!(
                "ECS's {} deployment {} of {deployed_name} to {} is SUCCESSFUL: {}, every stage passed{}.",
                native.strategy.name,
                outcome.deployment_id,
                outcome.service,
                native.strategy.plan,
                native
                    .service_deployment
                    .as_ref()
                    .map(|d| format!(" (ended at {})", d.progress()))
                    .unwrap_or_default()
            ),
            None => format!(
                "Deployment {} of {deployed_name} is COMPLETED: ECS verified every desired task of {} running it.",
                outcome.deployment_id, outcome.service
            ),
        });
        // Offer only an undo that works: the first verified deployment has nothing to go back to.
        match outcome.rollback_to.as_deref() {
            Some(_) => succeeded.undo(rollback_line(function, &outcome.service)),
            None => succeeded.next_step(format!(
                "This is the first verified deployment of {}, so there is no earlier one to roll back to; to replace it, push or deploy another image (the deploy command: {})",
                outcome.service,
                help_line(function)
            )),
        }
    } else {
        let title = match outcome.rolled_back_to.as_deref().map(short_task_definition) {
            Some(back) => format!(
                "{} deployment of {deployed_name} FAILED; ECS rolled back to {back}",
                outcome.service
            ),
            None => format!("{} deployment of {deployed_name} FAILED", outcome.service),
        };
        let mut failed = Alert::new(
            Severity::Critical,
            function,
            DEPLOYMENT_FAILED,
            &outcome.service,
            title,
        );
        failed = match &outcome.native {
            Some(native) => native_failure(failed, outcome, native, &deployed_name),
            None => failed
                .what(format!(
                    "Deployment {} of {deployed_name} to {} FAILED: its tasks did not reach a steady state.",
                    outcome.deployment_id, outcome.service
                ))
                .next_step(format!(
                    "Read why the new tasks stopped: ECS console > {} > Tasks (stopped), or `aws ecs list-tasks --desired-status STOPPED`.",
                    outcome.service
                )),
        }
        .next_step(format!("Check what runs now: {}", status_line(function, &outcome.service)));
        if let (None, Some(target)) = (&outcome.rolled_back_to, &outcome.rollback_to) {
            failed = failed.next_step(format!(
                "Go back to the last verified deployment ({}): {}",
                short_task_definition(target),
                rollback_line(function, &outcome.service)
            ));
        }
        failed
    };
    let rolled_back = outcome.rolled_back_to.as_deref().map(short_task_definition);
    let after = match (outcome.succeeded, &rolled_back) {
        (true, _) => describe(&deployed),
        (false, Some(_)) => format!(
            "{}; {deployed_name} failed and was rolled back",
            describe(&rolled_back)
        ),
        (false, None) => format!("{}, failing", describe(&deployed)),
    };
    let why = if outcome.succeeded {
        format!("Started by {trigger}.")
    } else {
        format!("Started by {trigger}. ECS says: {}", outcome.reason)
    };
    alert = alert
        .why(why)
        .change(describe(&previous), after)
        .thread(format!("{function}:{}", outcome.service))
        .context("service", &outcome.service)
        .context("deployment_id", &outcome.deployment_id)
        .context("seen_by", seen_by(outcome.seen_by));
    if let Some(who) = outcome
        .in_flight
        .as_ref()
        .and_then(|f| f.trigger.requested_by())
    {
        alert = alert.requested_by(who);
    }
    if let Some(native) = &outcome.native {
        alert = alert.context("strategy", &native.strategy.name);
        if let Some(deployment) = &native.service_deployment {
            alert = alert
                .context("stage", deployment.stage.as_deref().unwrap_or("none"))
                .related(&deployment.arn);
        }
    }
    if let Some(seconds) = outcome.duration_seconds {
        alert = alert.context("duration", format!("{}m{:02}s", seconds / 60, seconds % 60));
    }
    for revision in [&outcome.deployed, &outcome.rolled_back_to]
        .into_iter()
        .flatten()
    {
        if revision.starts_with("arn:") {
            alert = alert.related(revision);
        }
    }
    alert
}

/// What a failed blue/green, canary or linear deployment did: the stage ECS failed it at, the
/// traffic it had, the alarms that fired, and where to look.
fn native_failure(
    alert: Alert,
    outcome: &Outcome,
    native: &NativeDeployment,
    deployed_name: &str,
) -> Alert {
    let at = native
        .service_deployment
        .as_ref()
        .map(|d| format!(" at {}", d.progress()))
        .unwrap_or_default();
    let alert = alert.what(format!(
        "ECS's {} deployment {} of {deployed_name} to {} FAILED{at}; ECS ended it as {}.",
        native.strategy.name,
        outcome.deployment_id,
        outcome.service,
        native
            .service_deployment
            .as_ref()
            .map_or("failed", |d| d.status.as_str())
    ));
    let fired = native
        .service_deployment
        .as_ref()
        .map(|d| d.triggered_alarms.clone())
        .unwrap_or_default();
    if fired.is_empty() {
        alert.next_step(format!(
            "Read why ECS failed it: `aws ecs describe-service-deployments --service-deployment-arns {}` (its lifecycle hooks and status reason).",
            native
                .service_deployment
                .as_ref()
                .map_or("<arn>", |d| d.arn.as_str())
        ))
    } else {
        alert.next_step(format!(
            "See what the alarm saw: `aws cloudwatch describe-alarm-history --alarm-name {}`.",
            fired.join(" / ")
        ))
    }
}

/// How the alert says which path saw the outcome.
fn seen_by(seen_by: SeenBy) -> &'static str {
    match seen_by {
        SeenBy::Event => "ECS Deployment State Change event",
        SeenBy::Reconcile => {
            "reconcile of ECS's own deployment state (no ECS Deployment State Change event had arrived)"
        }
    }
}

/// The warning for a deployment deploy-trigger started whose outcome it could not read: ECS no
/// longer lists it. Never claimed as success; what runs now is said.
fn unverified_alert(function: &str, outcome: &Outcome, images: &RevisionImages) -> Alert {
    let deployed = outcome
        .deployed
        .as_deref()
        .map(short_task_definition)
        .unwrap_or_else(|| "an unknown revision".into());
    let trigger = outcome
        .in_flight
        .as_ref()
        .map(|f| f.trigger.describe())
        .unwrap_or_else(|| "an unknown trigger".into());
    let describe = |revision: Option<&str>| match revision.map(short_task_definition) {
        Some(name) => format!("{name} ({})", summarize(images.get(&name))),
        None => "unknown".into(),
    };
    let mut alert = Alert::new(
        Severity::Warning,
        function,
        DEPLOYMENT_UNVERIFIED,
        &outcome.service,
        format!(
            "{} deployment of {deployed} ended unverified",
            outcome.service
        ),
    )
    .what(format!("{}: {}.", outcome.service, outcome.reason))
    .why(format!(
        "Started by {trigger}. The ECS Deployment State Change event did not arrive, and ECS had dropped the deployment before a reconcile read it, so it is not recorded as verified."
    ))
    .change(describe(outcome.previous.as_deref()), describe(outcome.deployed.as_deref()))
    .next_step(format!(
        "Check what runs now: {}",
        status_line(function, &outcome.service)
    ))
    .thread(format!("{function}:{}", outcome.service))
    .context("service", &outcome.service)
    .context("deployment_id", &outcome.deployment_id)
    .context("seen_by", seen_by(outcome.seen_by));
    if let Some(target) = &outcome.rollback_to {
        alert = alert.next_step(format!(
            "To go back to the last verified deployment ({}): {}",
            short_task_definition(target),
            rollback_line(function, &outcome.service)
        ));
    }
    if let Some(who) = outcome
        .in_flight
        .as_ref()
        .and_then(|f| f.trigger.requested_by())
    {
        alert = alert.requested_by(who);
    }
    alert
}

/// Whether deploy-trigger has verified the in-flight deployment, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verified {
    /// ECS is still rolling it out: nothing to verify yet.
    InProgress,
    /// ECS says it finished (or no longer lists it), and deploy-trigger has not verified it.
    Unverified,
    /// deploy-trigger verified its outcome (COMPLETED or FAILED) and alerted it.
    Verified,
}

/// `status`'s account of the deployment deploy-trigger started last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// ECS deployment id.
    pub deployment_id: String,
    /// The revision it deploys (`family:revision`).
    pub revision: String,
    /// The deployment's rollout state as ECS reports it; `None` when ECS no longer lists it.
    pub ecs_says: Option<String>,
    /// Whether deploy-trigger verified it.
    pub state: Verified,
    /// In words, e.g. `web:2 (app: web:release-2@sha256:...): ECS says COMPLETED, not yet verified
    /// by deploy-trigger (unverified; the next reconcile settles it)`.
    pub says: String,
}

/// What `status` says about `service`'s in-flight record next to ECS's own state; `label` names
/// the revision it deploys, e.g. `web:2 (app: web:release-2@sha256:...)`. "unverified" is said
/// exactly when ECS reports the deployment finished (or gone) and deploy-trigger has not verified
/// its outcome, or could not.
pub fn verification(service: &ServiceState, label: &str) -> Option<Verification> {
    let record = in_flight(service)?;
    let id = record.deployment_id.clone();
    let shown = service.deployments.iter().find(|d| d.id == id);
    let ecs_says = shown.map(|d| {
        d.rollout_state
            .clone()
            .unwrap_or_else(|| "no rollout state".into())
    });
    let (state, says) = if is_settled(service, &id) {
        let outcome = settlement(service)
            .filter(|s| s.deployment_id == id)
            .and_then(|s| s.outcome)
            .unwrap_or_else(|| {
                // Settled before settlements were recorded: COMPLETED is the one recorded as good.
                let good = service
                    .tag(contract::LAST_COMPLETED)
                    .map(short_task_definition);
                if good.as_deref() == Some(record.to.as_str()) {
                    Settled::Completed
                } else {
                    Settled::Failed
                }
            });
        match outcome {
            Settled::Completed => (
                Verified::Verified,
                format!("{label}: verified COMPLETED by deploy-trigger (deployment {id}; alerted)"),
            ),
            Settled::Failed => (
                Verified::Verified,
                format!("{label}: verified FAILED by deploy-trigger (deployment {id}; alerted)"),
            ),
            Settled::Unverified => (
                Verified::Unverified,
                format!(
                    "{label}: unverified: ECS stopped listing deployment {id} before deploy-trigger read its outcome (alerted as unverified; it is not recorded as good)"
                ),
            ),
        }
    } else {
        match (shown, ecs_says.as_deref()) {
            (Some(_), Some(finished @ ("COMPLETED" | "FAILED"))) => (
                Verified::Unverified,
                format!(
                    "{label}: ECS says {finished}, not yet verified by deploy-trigger (unverified; the next reconcile settles it)"
                ),
            ),
            (None, _) => (
                Verified::Unverified,
                format!(
                    "{label}: ECS does not list deployment {id}, and deploy-trigger has not verified its outcome (unverified; a reconcile settles it)"
                ),
            ),
            (Some(_), _) if service.service_deployment_of(&id).is_some() => {
                let (status, progress) = service
                    .service_deployment_of(&id)
                    .map(|d| (d.status.clone(), d.progress()))
                    .unwrap_or_default();
                (
                    Verified::InProgress,
                    format!(
                        "{label}: ECS's {} deployment is {status} ({progress}); deploy-trigger verifies it when ECS finishes",
                        service.strategy.name
                    ),
                )
            }
            (Some(deployment), state) => (
                Verified::InProgress,
                format!(
                    "{label}: rolling out (ECS says {}, {} of {} tasks running); deploy-trigger verifies it when ECS finishes",
                    state.unwrap_or("no rollout state"),
                    deployment.running,
                    deployment.desired
                ),
            ),
        }
    };
    Some(Verification {
        deployment_id: id,
        revision: record.to,
        ecs_says,
        state,
        says,
    })
}

/// `web:2 (app: web:release-2@sha256:abcdef123456)`: a revision and its images, for `status`.
pub fn revision_label(revision: &str, images: Option<&BTreeMap<String, String>>) -> String {
    match images {
        Some(images) if !images.is_empty() => format!("{revision} ({})", summarize(Some(images))),
        _ => revision.to_string(),
    }
}

/// The warning for an opted-in service a push could not reach.
pub fn problem_alert(function: &str, problem: &Problem, image: &NewImage) -> Alert {
    Alert::new(
        Severity::Warning,
        function,
        "deployment.not-started",
        &problem.service,
        format!("{} was not deployed {}", problem.service, image.label()),
    )
    .what(format!(
        "{} opted in to deploys of repository `{}`, but {} was not deployed to it: {}",
        problem.service,
        image.repository,
        image.reference(),
        problem.problem
    ))
    .why("Its opt-in tags do not fit its task definition.")
    .next_step("Fix the service's ops:deploy-* tags (see the deploy-trigger tag contract in the README), then deploy from chat.")
    .related(&problem.service_arn)
}

/// The note that a late or repeated push was refused for one service (info: redelivery is normal).
pub fn refusal_alert(function: &str, refusal: &Refusal, image: &NewImage) -> Alert {
    let deploy = COMMANDS.chat_line(
        function,
        "deploy",
        serde_json::json!({ "service": refusal.service, "digest": image.digest }),
    );
    Alert::new(
        Severity::Info,
        function,
        "deployment.refused",
        &refusal.service,
        format!(
            "{}: late push of {} refused; it keeps running {}",
            refusal.service, refusal.refused, refusal.runs
        ),
    )
    .what(refusal.reason.clone())
    .why("EventBridge delivers at least once and retries for 24 hours, so an old push can arrive after newer ones; ECR's push time (imagePushedAt), not the event, orders them.")
    .next_step(format!(
        "Nothing to do unless you want that image: a person may deploy it on purpose with {deploy}"
    ))
    .next_step(format!("Check what runs now: {}", status_line(function, &refusal.service)))
    .context("refused", image.reference())
    .related(&refusal.service_arn)
}

/// What ECR said that disproves a push event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disproof {
    /// The repository has no image with the event's digest.
    NotInEcr,
    /// The image exists, but does not carry the event's tag.
    TagNotOnImage,
}

/// The alert for a push event ECR does not bear out (`message` says what ECR has): nothing was
/// deployed, and someone may have sent it.
pub fn forged_push_alert(
    function: &str,
    repository: &str,
    digest: &str,
    tag: Option<&str>,
    disproof: Disproof,
    message: &str,
) -> Alert {
    let claimed = match tag {
        Some(tag) => format!("{repository}:{tag}@{}", short_digest(digest)),
        None => format!("{repository}@{}", short_digest(digest)),
    };
    let (title, why) = match disproof {
        Disproof::NotInEcr => (
            "the image is not in ECR",
            "deploy-trigger verifies a push event against ECR (DescribeImages by digest) before deploying; ECR has no such image in the repository.",
        ),
        Disproof::TagNotOnImage => (
            "ECR does not show that tag on the image",
            "deploy-trigger verifies a push event against ECR (DescribeImages by digest) before deploying: the tag decides which services take the image, and ECR does not list the event's tag on that digest.",
        ),
    };
    Alert::new(
        Severity::Warning,
        function,
        "deployment.refused",
        repository,
        format!("push of {claimed} refused: {title}"),
    )
    .what(message.to_string())
    .why(why)
    .next_step("If nobody deleted the image or moved the tag since, find who invoked the function with this event (CloudTrail: lambda Invoke), since EventBridge only sends pushes ECR made.")
    .context("digest", digest)
}

/// The alert for a change that could not be made.
pub fn failure_alert(function: &str, failed: &FailedChange<Action>) -> Alert {
    let (service, verb) = match &failed.change.action {
        Action::Deploy(spec) => (spec.target.service.clone(), "start the deployment"),
        Action::Rollback(spec) => (spec.target.service.clone(), "start the rollback"),
        Action::Record(spec) => (
            spec.target.service.clone(),
            "record the deployment's outcome",
        ),
    };
    let retry = if failed.retryable {
        "Lambda retries the event; this alert repeats if every retry fails."
    } else {
        "Retrying will not help until the cause is fixed."
    };
    Alert::new(
        Severity::Critical,
        function,
        "deployment.error",
        &service,
        format!("{service}: could not {verb}"),
    )
    .what(format!(
        "deploy-trigger could not {verb} on {service}: {}",
        failed.error
    ))
    .why(failed.change.reason.clone())
    .next_step(retry)
    .next_step(format!(
        "Check what runs now: {}",
        status_line(function, &service)
    ))
}

/// `app: web:release-42@sha256:7f5b2640fe6f, log-router: ...` for one revision.
fn summarize(images: Option<&BTreeMap<String, String>>) -> String {
    match images {
        Some(images) if !images.is_empty() => images
            .iter()
            .map(|(c, i)| format!("{c}: {}", shorten_image(i)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "images unknown".into(),
    }
}

/// Images that differ between two revisions, as `repo:tag@sha256:abcdef123456`.
fn changed_images(
    images: &RevisionImages,
    before: Option<&str>,
    after: Option<&str>,
) -> Vec<String> {
    let empty = BTreeMap::new();
    let old = before.and_then(|b| images.get(b)).unwrap_or(&empty);
    let Some(new) = after.and_then(|a| images.get(a)) else {
        return vec![];
    };
    new.iter()
        .filter(|(c, i)| old.get(*c) != Some(*i))
        .map(|(_, i)| shorten_image(i))
        .collect()
}

fn shorten_image(image: &str) -> String {
    let without_registry = match image.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') => rest,
        _ => image,
    };
    match without_registry.split_once('@') {
        Some((name, digest)) => format!("{name}@{}", short_digest(digest)),
        None => without_registry.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{InFlight, Trigger};

    fn images() -> RevisionImages {
        let registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        BTreeMap::from([
            ("web:7".to_string(), BTreeMap::from([("app".to_string(), format!("{registry}/web:release-41"))])),
            (
                "web:8".to_string(),
                BTreeMap::from([(
                    "app".to_string(),
                    format!("{registry}/web:release-42@sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234ef56"),
                )]),
            ),
        ])
    }

    fn outcome(succeeded: bool) -> Outcome {
        Outcome {
            service: "prod/web".into(),
            deployment_id: "ecs-svc/42".into(),
            succeeded,
            settled: if succeeded {
                Settled::Completed
            } else {
                Settled::Failed
            },
            seen_by: SeenBy::Event,
            reason: if succeeded {
                "ECS deployment ecs-svc/42 completed.".into()
            } else {
                "tasks failed to start".into()
            },
            deployed: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:8".into()),
            previous: Some("web:7".into()),
            rolled_back_to: (!succeeded)
                .then(|| "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7".into()),
            rollback_to: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7".into()),
            in_flight: Some(InFlight {
                deployment_id: "ecs-svc/42".into(),
                trigger: Trigger::ChatDeploy {
                    requested_by: "alice".into(),
                },
                started_at: 100,
                from: "web:7".into(),
                to: "web:8".into(),
            }),
            duration_seconds: Some(185),
            native: None,
        }
    }

    #[test]
    fn a_success_alert_names_images_revisions_trigger_duration_and_the_rollback_command() {
        let alert = outcome_alert("opsstack-deploy-trigger", &outcome(true), &images());
        assert_eq!(alert.severity, Severity::Info);
        assert_eq!(
            alert.title,
            "prod/web now runs web:release-42@sha256:7f5b2640fe6f"
        );
        assert_eq!(alert.before.as_deref(), Some("web:7 (app: web:release-41)"));
        assert_eq!(
            alert.after.as_deref(),
            Some("web:8 (app: web:release-42@sha256:7f5b2640fe6f)")
        );
        assert_eq!(alert.why, "Started by chat deploy by alice.");
        assert_eq!(alert.requested_by.as_deref(), Some("alice"));
        assert_eq!(alert.context["duration"], "3m05s");
        assert_eq!(
            alert.undo.as_deref(),
            Some(
                r#"@Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {"args":{"service":"prod/web"},"command":"rollback"}"#
            )
        );
    }

    #[test]
    fn the_first_verified_deployment_offers_no_undo_but_says_how_to_replace_it() {
        let first = Outcome {
            previous: None,
            rollback_to: None,
            ..outcome(true)
        };
        let alert = outcome_alert("opsstack-deploy-trigger", &first, &images());
        assert_eq!(
            alert.undo, None,
            "a rollback would be refused: nothing to go back to"
        );
        assert_eq!(
            alert.next_steps,
            [
                r#"This is the first verified deployment of prod/web, so there is no earlier one to roll back to; to replace it, push or deploy another image (the deploy command: @Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {"command":"help"})"#
            ]
        );
    }

    #[test]
    fn a_failure_ecs_did_not_roll_back_offers_the_rollback_only_when_there_is_somewhere_to_go() {
        let stuck = Outcome {
            rolled_back_to: None,
            ..outcome(false)
        };
        let alert = outcome_alert("opsstack-deploy-trigger", &stuck, &images());
        assert!(alert.next_steps.iter().any(|step| step
            == r#"Go back to the last verified deployment (web:7): @Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {"args":{"service":"prod/web"},"command":"rollback"}"#));
        let never_verified = Outcome {
            rollback_to: None,
            ..stuck
        };
        let alert = outcome_alert("opsstack-deploy-trigger", &never_verified, &images());
        assert!(
            alert
                .next_steps
                .iter()
                .all(|step| !step.contains(r#""command":"rollback""#)),
            "{:?}",
            alert.next_steps
        );
    }

    #[test]
    fn a_failure_alert_is_critical_and_says_ecs_rolled_back() {
        let alert = outcome_alert("deploy-trigger", &outcome(false), &images());
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(
            alert.title,
            "prod/web deployment of web:8 FAILED; ECS rolled back to web:7"
        );
        assert_eq!(
            alert.why,
            "Started by chat deploy by alice. ECS says: tasks failed to start"
        );
        assert_eq!(
            alert.after.as_deref(),
            Some("web:7 (app: web:release-41); web:8 failed and was rolled back"),
            "after is what runs now"
        );
        assert!(
            alert.undo.is_none(),
            "nothing to undo: ECS already went back"
        );
        assert!(!alert.title.contains("now runs"));
    }

    #[test]
    fn an_unverified_deployment_is_a_warning_that_never_says_it_runs() {
        let gone = Outcome {
            succeeded: false,
            settled: Settled::Unverified,
            seen_by: SeenBy::Reconcile,
            reason: "ECS no longer lists deployment ecs-svc/42 of web:8, so its outcome was never read; prod/web runs web:7".into(),
            deployed: Some("web:8".into()),
            rolled_back_to: None,
            duration_seconds: None,
            ..outcome(false)
        };
        let alert = outcome_alert("deploy-trigger", &gone, &images());
        assert_eq!(alert.severity, Severity::Warning);
        assert_eq!(alert.event_type, "deployment.unverified");
        assert_eq!(alert.title, "prod/web deployment of web:8 ended unverified");
        assert!(
            alert.what.starts_with("prod/web: ECS no longer lists"),
            "{}",
            alert.what
        );
        assert!(!alert.title.contains("now runs") && alert.undo.is_none());
        assert!(
            alert
                .next_steps
                .iter()
                .any(|s| s.starts_with("To go back to the last verified deployment (web:7)")),
            "{:?}",
            alert.next_steps
        );
    }
}
