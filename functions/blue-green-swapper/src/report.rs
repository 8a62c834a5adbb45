//! Report: the alerts ops read about swaps, one per transition, threaded per app and swap.

use ops_core::alert::{Alert, Severity};
use ops_core::metrics::change_events::{HELD, SWAP_ABORTED, SWAP_COMPLETED, SWAP_ROLLED_BACK};
use ops_core::plan::FailedChange;
use serde_json::json;

use crate::commands::{abort_line, deployment_line, status_line, COMMANDS};
use crate::contract::{Colour, Phase};
use crate::decide::{Action, RouteChange, Transition};
use crate::gate::{self, GateAction, GateView};
use crate::hook::{HookCall, HookDecision, HookStatus, HookView};
use ops_core::aws::service_deployments::HookExecution;
use ops_core::plan::Execution;

/// The alert for a swap entering a state.
pub fn transition_alert(function: &str, t: &Transition) -> Alert {
    let app = &t.app;
    let (to, from) = (t.plan.to, t.plan.from());
    // Shares as the weights give them: never a rounded 0% or 100% for a colour with traffic.
    let (before, after) = (t.before.share(to), t.after.share(to));
    let automatic = t.requested_by.is_none();
    let (severity, event_type, title) = match t.state.phase {
        Phase::Deploying => (
            Severity::Info,
            "swap.started",
            format!("{app}: deploying {} to {to}", short_image(&t.image)),
        ),
        Phase::Testing => (
            Severity::Info,
            "swap.testing",
            format!("{app}: {to} is healthy; test traffic only"),
        ),
        Phase::Shifting => (
            Severity::Info,
            "swap.shifting",
            format!("{app}: {after} of live traffic on {to}"),
        ),
        Phase::Warm => (
            Severity::Info,
            "swap.traffic-moved",
            format!("{app}: all live traffic on {to}; {from} kept warm"),
        ),
        Phase::Done => (
            Severity::Info,
            SWAP_COMPLETED,
            format!("{app}: swap to {to} complete"),
        ),
        Phase::RollingBack | Phase::RolledBack => (
            if automatic {
                Severity::Critical
            } else {
                Severity::Warning
            },
            SWAP_ROLLED_BACK,
            format!("{app}: rolled back to {from}"),
        ),
        Phase::Aborting | Phase::Aborted => (
            if automatic {
                Severity::Critical
            } else {
                Severity::Warning
            },
            SWAP_ABORTED,
            format!("{app}: swap to {to} aborted; live traffic untouched"),
        ),
    };
    let facts = |colour: Colour| t.colours.iter().find(|c| c.colour == colour);
    let describe = |colour: Colour| {
        facts(colour)
            .map(|c| {
                format!(
                    "{colour} {} runs {} x{} ({})",
                    c.service, c.task_definition, c.desired, c.health
                )
            })
            .unwrap_or_default()
    };
    let what = match t.state.phase {
        Phase::Deploying => format!(
            "Swap {} of {app} started: {} ({}) is deployed to the idle colour {to}, \
             then live traffic moves from {from} by {}.",
            t.plan.id, t.image, t.plan.task_definition, t.plan.strategy
        ),
        Phase::Testing => format!(
            "{to} runs {} with every task healthy; the test route now serves it, live traffic does not.",
            t.plan.task_definition
        ),
        Phase::Shifting | Phase::Warm => format!(
            "Live traffic on {to} went from {before} to {after} in one change of {}.",
            t.route
        ),
        Phase::Done => format!(
            "{to} serves all live traffic with {}; {from} was scaled to 0 after the termination wait.",
            t.plan.task_definition
        ),
        Phase::RollingBack if !t.after.is_at(to, 0) => format!(
            "The swap is rolling back, but {from} has no healthy targets, so live traffic stays as \
             it is ({after} on {to}) until {from} can take it; then it moves back in one change of {} \
             and {to} is restored to {} x{}.",
            t.route, t.plan.was_task_definition, t.plan.was_desired
        ),
        Phase::RollingBack | Phase::RolledBack => format!(
            "All live traffic went back to {from} in one change of {} (it was {before} on {to}); \
             {to} was restored to {} x{}.",
            t.route, t.plan.was_task_definition, t.plan.was_desired
        ),
        Phase::Aborting | Phase::Aborted => format!(
            "The swap stopped before any live traffic moved; {to} was restored to {} x{}.",
            t.plan.was_task_definition, t.plan.was_desired
        ),
    };
    let old_revision = facts(from)
        .map(|c| c.task_definition.clone())
        .unwrap_or_default();
    let undo = match t.state.phase {
        Phase::Done if !old_revision.is_empty() => Some(COMMANDS.chat_line(
            function,
            "deploy",
            json!({ "app": app, "revision": old_revision }),
        )),
        phase => way_back(function, app, phase),
    };
    let requested_by = t
        .requested_by
        .clone()
        .unwrap_or_else(|| match t.state.phase {
            Phase::Deploying => t.plan.requested_by.clone(),
            _ => format!("the schedule (swap started by {})", t.plan.requested_by),
        });
    let mut alert = Alert::new(severity, function, event_type, app.as_str(), title)
        .what(what)
        .why(t.state.why.clone())
        .change(
            t.before.text(from),
            format!(
                "{}; {}; {}",
                t.after.text(from),
                describe(Colour::Blue),
                describe(Colour::Green)
            ),
        )
        .requested_by(requested_by)
        .next_step(t.next.clone())
        .next_step(format!("Follow it: {}", status_line(function, app)))
        .related(t.route.clone())
        .thread(format!("{function}:{app}:{}", t.plan.id))
        .context("swap_id", t.plan.id.clone())
        .context("image", t.image.clone())
        .context("task_definition", t.plan.task_definition.clone())
        .context("strategy", t.plan.strategy.to_string())
        .context("phase", t.state.phase.as_str())
        .context("weights", t.after.weights_text(from))
        .context("weights_before", t.before.weights_text(from));
    if t.state.phase == Phase::RollingBack && !t.after.is_at(to, 0) {
        // Held: the new colour still serves; the move back is alerted (and counted) when it happens.
        alert = alert.context(HELD.0, HELD.1);
    }
    for colour in &t.colours {
        alert = alert
            .related(colour.arn.clone())
            .context(format!("{}_health", colour.colour), colour.health.clone());
    }
    if let Some(undo) = undo {
        alert = alert.undo(undo);
    }
    alert
}

/// The chat command that takes a swap in flight back to where it started: `abort` before live
/// traffic moves, `rollback` once it has; none once it is going back or has ended.
fn way_back(function: &str, app: &str, phase: Phase) -> Option<String> {
    match phase {
        Phase::Deploying | Phase::Testing => Some(abort_line(function, app)),
        Phase::Shifting | Phase::Warm => {
            Some(COMMANDS.chat_line(function, "rollback", json!({ "app": app })))
        }
        _ => None,
    }
}

/// The alert that a route of a swap in flight was changed outside the swapper and is put back.
pub fn route_change_alert(function: &str, change: &RouteChange) -> Alert {
    let app = &change.app;
    let (found, put_back): (Vec<String>, Vec<String>) = change
        .routes
        .iter()
        .map(|(route, found, back)| (format!("{route}: {found}"), back.clone()))
        .unzip();
    let mut alert = Alert::new(
        Severity::Warning,
        function,
        "swap.route-changed",
        app.as_str(),
        format!("{app}: traffic was changed outside the swapper; putting it back"),
    )
    .what(format!(
        "Swap {} of {app} ({}) found its routes changed since it set them, and puts them back now: {}. \
         A swap in flight owns its routes until it ends.",
        change.plan.id,
        change.phase,
        put_back.join("; ")
    ))
    .why(format!(
        "Found: {}. The swapper did not make this change (the console, the CLI or another tool did).",
        found.join("; ")
    ))
    .change(found.join("; "), put_back.join("; "))
    .requested_by(format!(
        "the schedule (swap started by {})",
        change.plan.requested_by
    ))
    .next_step(match way_back(function, app, change.phase) {
        Some(line) => format!(
            "To take traffic back to {} during the swap, do it through the swapper, which then \
             keeps it there: {line}",
            change.plan.from()
        ),
        None => "The swap is going back already; it ends on its own.".into(),
    })
    .next_step(format!("Follow it: {}", status_line(function, app)))
    .thread(format!("{function}:{app}:{}", change.plan.id))
    .context("swap_id", change.plan.id.clone())
    .context("phase", change.phase.as_str());
    for (route, _, _) in &change.routes {
        alert = alert.related(route.clone());
    }
    if let Some(undo) = way_back(function, app, change.phase) {
        alert = alert.undo(undo);
    }
    alert
}

/// The alert when a swap is refused because AWS is not as it should be before traffic moves.
pub fn refusal_alert(function: &str, app: &str, reason: &str, requested_by: &str) -> Alert {
    Alert::new(
        Severity::Warning,
        function,
        "swap.refused",
        app,
        format!("{app}: swap refused at pre-flight"),
    )
    .what(format!(
        "A swap of {app} was asked for and not started; nothing was changed."
    ))
    .why(reason.to_string())
    .requested_by(requested_by)
    .next_step("Fix what the reason names, then send the deploy again.")
    .next_step(format!("See the app: {}", status_line(function, app)))
}

/// The alert when AWS refused a change of a swap (one that retrying cannot fix).
pub fn failure_alert(function: &str, app: &str, failed: &FailedChange<Action>) -> Alert {
    Alert::new(
        Severity::Critical,
        function,
        "swap.error",
        app,
        format!("{app}: a swap step failed"),
    )
    .what(format!(
        "AWS refused a change of the swap of {app}: {}. Changes before it were made; none after it.",
        failed.change.reason
    ))
    .why(failed.error.clone())
    .next_step("The swap's state is unchanged past this step; the next run retries it. If AWS keeps refusing, abort the swap.")
    .next_step(format!("Abort: {}", abort_line(function, app)))
    .next_step(format!("See the app: {}", status_line(function, app)))
}

/// `repo:tag` of an image reference, for titles.
fn short_image(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split('@').next().unwrap_or(name).to_string()
}

/// The alert for a lifecycle hook's decision: a failed gate (ECS rolls back), a deployment held for
/// a person, or every gate passed once production traffic is on the new revision; nothing for the
/// stages in between or any other wait.
pub fn hook_alert(
    function: &str,
    chat: &str,
    call: &HookCall,
    view: &HookView,
    decision: &HookDecision,
) -> Option<Alert> {
    let stage = &call.lifecycle_stage;
    let service = &view.service;
    let alert = match decision.status {
        HookStatus::Failed => Alert::new(
            Severity::Critical,
            function,
            "hook.failed",
            service,
            format!("{service}: deployment of {} stopped at {stage}; ECS rolls back", view.target),
        )
        .what(format!(
            "The lifecycle hook answered FAILED at {stage} for service deployment {}, so ECS rolls {service} back to its last successful revision.",
            call.deployment_id()
        ))
        .next_step(format!(
            "Follow ECS's rollback: `aws ecs describe-service-deployments --service-deployment-arns {}`.",
            call.resource_arn
        )),
        HookStatus::InProgress if decision.awaits_person => Alert::new(
            Severity::Warning,
            function,
            "hook.awaiting",
            service,
            format!("{service}: {} waits for your go at {}", view.target, call.step()),
        )
        .what(format!(
            "Service deployment {} of {} passed every automatic gate at {stage} and is held there for a person (tag `{}`); ECS calls the hook again every {}s and rolls back at the hook's timeout.",
            call.deployment_id(),
            view.target,
            crate::hook::HOOK_APPROVAL,
            crate::hook::CALL_BACK_DELAY
        ))
        .next_step(format!(
            "Go on: {}",
            deployment_line(chat, "promote", service, call.deployment_id())
        ))
        .next_step(format!(
            "Roll back: {}",
            deployment_line(chat, "abort", service, call.deployment_id())
        ))
        .next_step(format!("See it: {}", status_line(chat, service))),
        HookStatus::Succeeded if stage == "POST_PRODUCTION_TRAFFIC_SHIFT" && !call.rolling_back() && !view.ecs_rolling_back => Alert::new(
            Severity::Info,
            function,
            "hook.passed",
            service,
            format!("{service}: {} passed every gate; production traffic is on it", view.target),
        )
        .what(format!(
            "Service deployment {} of {} reached {stage} with every gate passed; ECS keeps the old revision for its bake time.",
            call.deployment_id(),
            view.target
        )),
        _ => return None,
    };
    Some(
        alert
            .why(decision.reason.clone())
            .thread(deployment_thread(chat, service, &call.resource_arn))
            .context("stage", stage)
            .context("execution_id", &call.execution_id)
            .related(&call.resource_arn),
    )
}

/// The thread of a service deployment's alerts: the hook's, the pause's and the gate's, named by the
/// swapper (`chat`) whichever of its two functions sends them, so they share one thread.
fn deployment_thread(chat: &str, service: &str, deployment_arn: &str) -> String {
    format!(
        "{chat}:{service}:{}",
        deployment_arn.rsplit('/').next().unwrap_or_default()
    )
}

/// The alert when ECS pauses a deployment at a pause hook: what waits, the gates now, when the
/// pause times out, and the commands that answer it.
pub fn pause_alert(function: &str, chat: &str, view: &GateView, pause: &HookExecution) -> Alert {
    let service = &view.service;
    let deployment = view.in_flight();
    let arn = deployment.map(|d| d.arn.clone()).unwrap_or_default();
    let id = arn.rsplit('/').next().unwrap_or_default();
    let target = deployment.map(gate::target_of).unwrap_or_default();
    let stage = deployment.and_then(|d| d.stage.clone()).unwrap_or_default();
    let gates = match &view.gates {
        Some(Ok(g)) => format!("gates now: {} ({})", g.status.as_str(), g.reason),
        Some(Err(problem)) => format!("gates now: could not be read ({problem})"),
        None => "gates now: not read".into(),
    };
    let (severity, go) = match &view.gates {
        Some(Ok(g)) if g.status == HookStatus::Failed => (
            Severity::Critical,
            "Do not promote: a gate fails. Roll back",
        ),
        _ => (Severity::Warning, "Roll back"),
    };
    Alert::new(
        severity,
        function,
        "hook.paused",
        service,
        format!("{service}: {target} paused at {stage}, waits for your go"),
    )
    .what(format!(
        "ECS paused service deployment {id} of {target} at {stage} (pause hook {}) until a person promotes or aborts it; {}.",
        pause.id,
        gate::timeout_text(&[pause])
    ))
    .why(gates)
    .next_step(format!(
        "Go on: {}",
        deployment_line(chat, "promote", service, id)
    ))
    .next_step(format!("{go}: {}", deployment_line(chat, "abort", service, id)))
    .next_step(format!("See it: {}", status_line(chat, service)))
    .thread(deployment_thread(chat, service, &arn))
    .context("stage", &stage)
    .context("hook_id", &pause.id)
    .related(&arn)
}

/// The alert when a person promoted or aborted a deployment from chat: who, what changed in ECS.
pub fn gate_alert(
    function: &str,
    command: &str,
    view: &GateView,
    by: &str,
    execution: &Execution<GateAction>,
) -> Alert {
    let service = &view.service;
    let deployment = view.in_flight();
    let arn = deployment.map(|d| d.arn.clone()).unwrap_or_default();
    let target = deployment.map(gate::target_of).unwrap_or_default();
    let stage = deployment.and_then(|d| d.stage.clone()).unwrap_or_default();
    let done = execution
        .applied
        .iter()
        .map(|c| c.reason.clone())
        .collect::<Vec<_>>()
        .join("; ");
    let alert = if command == "promote" {
        Alert::new(
            Severity::Info,
            function,
            "hook.promoted",
            service,
            format!("{service}: {by} promoted {target} at {stage}"),
        )
        .what(format!("{done}."))
        .next_step(format!(
            "Roll back while ECS still can: {}",
            deployment_line(
                function,
                "abort",
                service,
                arn.rsplit('/').next().unwrap_or_default()
            )
        ))
    } else {
        Alert::new(
            Severity::Warning,
            function,
            "hook.aborted",
            service,
            format!("{service}: {by} aborted {target} at {stage}; ECS rolls back"),
        )
        .what(format!("{done}."))
    };
    alert
        .requested_by(by)
        .next_step(format!("See it: {}", status_line(function, service)))
        .thread(deployment_thread(function, service, &arn))
        .context("stage", &stage)
        .related(&arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Strategy, SwapPlan, SwapState};
    use crate::decide::ColourFacts;
    use crate::traffic::Split;

    fn transition(phase: Phase, percent: (u32, u32), by: Option<&str>) -> Transition {
        Transition {
            app: "shop".into(),
            plan: SwapPlan {
                id: "tk3x2a".into(),
                to: Colour::Green,
                task_definition: "shop-blue:8".into(),
                was_task_definition: "shop-green:3".into(),
                was_desired: 0,
                requested_by: "alice".into(),
                strategy: Strategy::DEFAULT,
                started_at: 1_795_000_000,
            },
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v8@sha256:ab".into(),
            state: SwapState {
                id: "tk3x2a".into(),
                version: 3,
                reported: 2,
                phase,
                step: 0,
                since: 1_795_000_400,
                before: None,
                after: None,
                why: "alarm in ALARM: shop-5xx (Threshold Crossed)".into(),
            },
            route: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/2"
                .into(),
            before: Split::at_percent(Colour::Green, percent.0),
            after: Split::at_percent(Colour::Green, percent.1),
            colours: vec![
                ColourFacts {
                    colour: Colour::Blue,
                    service: "prod/shop-blue".into(),
                    arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/shop-blue".into(),
                    task_definition: "shop-blue:7".into(),
                    desired: 2,
                    health: "2/2 healthy".into(),
                },
                ColourFacts {
                    colour: Colour::Green,
                    service: "prod/shop-green".into(),
                    arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/shop-green".into(),
                    task_definition: "shop-blue:8".into(),
                    desired: 2,
                    health: "2/2 healthy".into(),
                },
            ],
            next: "All traffic is on blue.".into(),
            requested_by: by.map(String::from),
        }
    }

    #[test]
    fn a_held_rollback_is_not_counted_until_its_move_back_is_alerted() {
        let held = transition_alert(
            "blue-green-swapper",
            &transition(Phase::RollingBack, (10, 10), None),
        );
        assert_eq!(
            held.context.get("rollback").map(String::as_str),
            Some("held")
        );
        assert_eq!(ops_core::metrics::counted_change(&held), None);
        let moved = transition_alert(
            "blue-green-swapper",
            &transition(Phase::RolledBack, (10, 0), None),
        );
        assert_eq!(moved.event_type, SWAP_ROLLED_BACK);
        assert_eq!(
            ops_core::metrics::counted_change(&moved).map(|c| c.outcome),
            Some("rolled-back")
        );
        let at_once = transition_alert(
            "blue-green-swapper",
            &transition(Phase::RollingBack, (10, 0), None),
        );
        assert!(ops_core::metrics::counted_change(&at_once).is_some());
    }

    #[test]
    fn an_automatic_rollback_is_critical_and_says_where_traffic_went() {
        let alert = transition_alert(
            "blue-green-swapper",
            &transition(Phase::RollingBack, (10, 0), None),
        );
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(alert.event_type, "swap.rolled-back");
        assert_eq!(alert.title, "shop: rolled back to blue");
        assert!(
            alert.what.contains("went back to blue in one change"),
            "{}",
            alert.what
        );
        assert_eq!(alert.before.as_deref(), Some("blue 90% / green 10%"));
        assert!(alert
            .after
            .as_deref()
            .unwrap()
            .starts_with("blue 100% / green 0%"));
        assert_eq!(alert.why, "alarm in ALARM: shop-5xx (Threshold Crossed)");
        assert_eq!(
            alert.thread_id.as_deref(),
            Some("blue-green-swapper:shop:tk3x2a")
        );
        assert!(alert.undo.is_none());
    }

    #[test]
    fn an_alert_shows_the_real_weights_never_a_rounded_0_or_100_percent() {
        // Someone left green at weight 1 against blue's 999: that is 0.1% of live traffic.
        let dark = Split {
            blue: 999,
            green: 1,
            total: 1000,
        };
        let rollback = transition_alert(
            "blue-green-swapper",
            &Transition {
                before: dark,
                ..transition(Phase::RollingBack, (0, 0), None)
            },
        );
        assert_eq!(rollback.before.as_deref(), Some("blue 99.9% / green 0.1%"));
        assert!(
            rollback.what.contains("(it was 0.1% on green)"),
            "{}",
            rollback.what
        );
        assert!(rollback
            .after
            .as_deref()
            .unwrap()
            .starts_with("blue 100% / green 0%;"));
        let shift = transition_alert(
            "blue-green-swapper",
            &Transition {
                before: Split {
                    blue: 199,
                    green: 1,
                    total: 200,
                },
                ..transition(Phase::Shifting, (0, 10), None)
            },
        );
        assert_eq!(shift.before.as_deref(), Some("blue 99.5% / green 0.5%"));
        assert!(
            shift.what.contains("went from 0.5% to 10% in one change"),
            "{}",
            shift.what
        );
        assert_eq!(shift.title, "shop: 10% of live traffic on green");
    }

    #[test]
    fn a_requested_rollback_is_a_warning_naming_who_asked() {
        let alert = transition_alert(
            "blue-green-swapper",
            &transition(Phase::RollingBack, (10, 0), Some("bob")),
        );
        assert_eq!(alert.severity, Severity::Warning);
        assert_eq!(alert.requested_by.as_deref(), Some("bob"));
    }

    #[test]
    fn a_shift_offers_the_rollback_command_and_a_completed_swap_the_old_revision() {
        let shift = transition_alert(
            "opsstack-blue-green-swapper",
            &transition(Phase::Shifting, (0, 10), None),
        );
        assert_eq!(shift.title, "shop: 10% of live traffic on green");
        assert_eq!(
            shift.undo.as_deref(),
            Some(
                r#"@Amazon Q lambda invoke --function-name opsstack-blue-green-swapper --payload {"args":{"app":"shop"},"command":"rollback"}"#
            )
        );
        let done = transition_alert(
            "blue-green-swapper",
            &transition(Phase::Done, (100, 100), None),
        );
        assert!(done
            .undo
            .as_deref()
            .unwrap()
            .contains(r#""revision":"shop-blue:7""#));
        let started = transition_alert(
            "blue-green-swapper",
            &transition(Phase::Deploying, (0, 0), None),
        );
        assert_eq!(started.title, "shop: deploying shop:v8 to green");
        assert_eq!(started.requested_by.as_deref(), Some("alice"));
    }
}
