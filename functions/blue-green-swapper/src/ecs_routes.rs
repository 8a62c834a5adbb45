//! The handler's routes for ECS's own blue/green, canary and linear deployments: a lifecycle hook
//! call, ECS's hook event of a paused deployment, and the person's `promote` / `abort` of
//! `cluster/service` from chat; and what the function deployed for lifecycle hooks only refuses.

use std::collections::BTreeMap;

use ops_core::alert::AlertSink;
use ops_core::aws::service_deployments;
use ops_core::events::{EventError, Incoming};
use ops_core::plan::{execute, Mode};
use ops_core::{Error, Result};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::commands::AppArgs;
use crate::config::SwapperConfig;
use crate::gate::{self, GateAction, HookEvent, HOOK_STATE_CHANGE};
use crate::handler::{Deps, Invocation};
use crate::hook::{self, Hold, HookView};
use crate::observe;
use crate::report::{gate_alert, hook_alert, pause_alert};

/// The function deployed to serve lifecycle hooks (without the reserved concurrency that keeps
/// swaps to one invocation at a time) answers hook calls, ECS's hook events and `doctor`; it runs
/// no swap, so a schedule is ignored and any other chat command is sent back to the swapper.
pub fn not_for_the_hook_function(
    incoming: &Incoming,
    config: &SwapperConfig,
) -> Option<Result<Value>> {
    let function = &config.common.function_name;
    let swapper = &config.chat_function;
    match incoming {
        Incoming::LifecycleHook(_) => None,
        Incoming::Event { detail_type, .. } if detail_type == HOOK_STATE_CHANGE => None,
        Incoming::Event { detail_type, .. } => Some(Ok(json!({
            "status": "ignored",
            "reason": format!("{function} serves ECS lifecycle hooks only (SWAPPER_SERVES=lifecycle-hooks), not `{detail_type}` events"),
        }))),
        Incoming::Command(raw) if raw.get("command").and_then(Value::as_str) == Some("doctor") => None,
        Incoming::Command(_) | Incoming::AlarmAction(_) => Some(Err(Error::Refused(format!(
            "{function} serves ECS lifecycle hooks only (SWAPPER_SERVES=lifecycle-hooks): send chat commands to blue-green-swapper itself, {swapper}"
        )))),
    }
}

/// ECS calls the function as a lifecycle hook: check the call against ECS, gate the stage, and
/// answer. A read that fails is answered by [`hook::unreadable`] (a failure that a retry cannot fix
/// is alerted). The alert is a side effect: one that cannot be sent is logged and never changes the
/// answer (ECS rolls back when the function fails), and the same call delivered again alerts once.
pub async fn on_hook<A: AlertSink>(raw: &Value, now: u64, deps: &Deps<A>) -> Result<Value> {
    let call = hook::parse(raw)?;
    let function = &deps.config.common.function_name;
    let (view, decision) = match observe::hook_view(
        &call,
        &deps.clients,
        &deps.config.clusters,
        observe::TestUrlReach::Here,
    )
    .await
    {
        Ok(view) => {
            let decision = hook::decide(&call, &view, now);
            (view, decision)
        }
        Err(error @ Error::Refused(_)) => return Err(error),
        Err(error) => {
            let decision = hook::unreadable(&call, &error.to_string(), error.retryable(), now);
            (HookView::unread(&call, decision.reason.clone()), decision)
        }
    };
    let mut decision = decision;
    // A hold is recorded, and alerted, only where ECS shows the deployment: a late repeat of a
    // passed stage or a call made up for a stage ECS has not reached holds nothing a person could
    // release. ECS calls again, so a record that fails for now is tried again then (and alerted
    // once it is recorded); one that cannot be made fails the stage.
    let mut held = true;
    if decision.awaits_person {
        let hold = Hold::of(&call).encode();
        if !view.call_is_current(&call) {
            held = false;
            info!(%hold, "ECS is not at this step: no hold recorded, nothing alerted");
        } else if view.holding.as_deref() != Some(hold.as_str()) {
            let tags = BTreeMap::from([(hook::HOOK_HOLDING.to_string(), hold)]);
            match deps
                .clients
                .ecs
                .tag(&call.execution_details.service_arn, &tags)
                .await
            {
                Ok(()) => {}
                Err(error) if error.retryable() => {
                    held = false;
                    warn!(%error, "could not record the hold; ECS calls again and it is tried then");
                }
                Err(error) => {
                    decision =
                        hook::HookDecision::unholdable(&call, &view.target, &error.to_string());
                }
            }
        }
    }
    let alert = hook_alert(
        function,
        &deps.config.chat_function,
        &call,
        &view,
        &decision,
    )
    .filter(|_| held || !decision.awaits_person);
    if let Some(alert) = alert {
        publish_once(
            deps,
            &alert,
            &call.execution_details.service_arn,
            view.alerted.as_deref(),
            &decision.alert_key(&call),
        )
        .await;
    }
    info!(stage = %call.lifecycle_stage, status = decision.status.as_str(), reason = %decision.reason, "lifecycle hook answered");
    Ok(hook::answer(&call, &decision))
}

/// `promote`, `abort` or `rollback` of an ECS service's deployment (`cluster/service`): decide
/// from what ECS shows, change it (or, in dry-run, say what would change) and alert who did what.
pub async fn gate_command<A: AlertSink>(
    name: &str,
    args: &AppArgs,
    by: &str,
    now: u64,
    mode: Mode,
    deps: &Deps<A>,
) -> Result<Value> {
    let promote = name == "promote";
    let clusters = &deps.config.clusters;
    let view = observe::gate_view(&deps.clients, clusters, &args.app, now, promote).await?;
    let deployment = args.deployment.as_deref();
    let plan = if promote {
        gate::decide_promote(&view, by, deployment)
    } else {
        gate::decide_abort(&view, by, deployment)
    }
    .map_err(Error::Refused)?;
    let ecs = &deps.clients.ecs;
    let execution = execute(plan, mode, |action| {
        let action = action.clone();
        async move {
            match action {
                GateAction::ContinuePause {
                    deployment,
                    hook_id,
                } => {
                    service_deployments::continue_paused(ecs.client(), &deployment, &hook_id, false)
                        .await
                }
                GateAction::RollBackPause {
                    deployment,
                    hook_id,
                } => {
                    service_deployments::continue_paused(ecs.client(), &deployment, &hook_id, true)
                        .await
                }
                GateAction::Release {
                    service_arn,
                    release,
                } => {
                    let tags = BTreeMap::from([(hook::HOOK_RELEASE.to_string(), release)]);
                    ecs.tag(&service_arn, &tags).await
                }
                GateAction::StopWithRollback { deployment } => {
                    service_deployments::stop_with_rollback(ecs.client(), &deployment).await
                }
            }
        }
    })
    .await;
    if execution.changed_anything() {
        let alert = gate_alert(
            &deps.config.common.function_name,
            name,
            &view,
            by,
            &execution,
        );
        if let Err(error) = deps.alerts.publish(&alert).await {
            warn!(%error, title = %alert.title, "gate alert not sent; the change stands");
        }
    }
    let answer = json!({
        "status": execution.status,
        "service": view.service,
        "dry_run": execution.dry_run,
        "applied": execution.applied,
        "not_attempted": execution.not_attempted,
        "failed": execution.failed,
        "notes": execution.notes,
    });
    match (&execution.failed, execution.error()) {
        // The loser of a race (two people at once, or ECS moving on) hears what ECS shows now.
        (Some(failed), Some(error)) if !failed.retryable => {
            let now_shows = observe::gate_view(&deps.clients, clusters, &args.app, now, false)
                .await
                .map(|v| v.waiting_for())
                .unwrap_or_else(|e| format!("(could not read it again: {e})"));
            Err(Error::Refused(format!(
                "{error}. ECS may have moved on or someone answered first; the deployment now waits for {now_shows}"
            )))
        }
        (_, Some(error)) => Err(error),
        _ => Ok(answer),
    }
}

/// ECS paused a deployment at a pause hook (`HOOK_AWAITING_ACTION`): check the event against ECS
/// and alert once what the deployment waits for, with the gates now and the commands that answer
/// it. Other hook events, services outside the managed clusters and pauses already answered are
/// quiet.
pub async fn on_hook_event<A: AlertSink>(
    raw: &Value,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    let now = invocation.now;
    let event: HookEvent = serde_json::from_value(raw.get("detail").cloned().unwrap_or_default())
        .map_err(|e| EventError::Malformed {
        detail_type: HOOK_STATE_CHANGE.into(),
        reason: e.to_string(),
    })?;
    // ECS's own event, of a service in this account and region: anything else is not ours.
    let caller = &invocation.caller;
    let home = format!(":ecs:{}:{}:service/", caller.region, caller.account_id);
    if raw.get("source").and_then(Value::as_str) != Some("aws.ecs")
        || !event.service_arn.contains(&home)
    {
        return Ok(json!({"status": "ignored", "reason": format!(
            "a hook event from {} for {} is not ECS's in {} {}: nothing read or alerted",
            raw.get("source").and_then(Value::as_str).unwrap_or("no source"),
            event.service_arn, caller.account_id, caller.region
        )}));
    }
    if event.event_name != gate::HOOK_AWAITING_ACTION || event.hook_type.as_deref() != Some("PAUSE")
    {
        return Ok(json!({"status": "ignored", "reason": format!(
            "blue-green-swapper alerts only pause hooks awaiting action, not {} of a {} hook",
            event.event_name, event.hook_type.as_deref().unwrap_or("unnamed")
        )}));
    }
    let Some((cluster, name)) = event.cluster_and_service() else {
        return Ok(json!({"status": "ignored", "reason": format!(
            "`{}` is not a service ARN of the form ...:service/<cluster>/<name>: nothing read or alerted",
            event.service_arn
        )}));
    };
    let service = format!("{cluster}/{name}");
    if !deps.config.clusters.iter().any(|c| c == cluster) {
        return Ok(json!({"status": "ignored", "reason": format!(
            "{service} is not in a cluster blue-green-swapper manages"
        )}));
    }
    let view =
        observe::gate_view(&deps.clients, &deps.config.clusters, &service, now, true).await?;
    let Some(pause) = gate::still_paused(&view, &event) else {
        return Ok(json!({"status": "ignored", "reason": format!(
            "pause hook {} of {} no longer awaits action in ECS: nothing to alert",
            event.hook_id, event.service_deployment_arn
        )}));
    };
    let key = format!("{} {}", pause.id, gate::HOOK_AWAITING_ACTION);
    if hook::alerted_before(view.alerted.as_deref(), &key) {
        return Ok(
            json!({"status": "ok", "alerted": false, "reason": "this pause was alerted already"}),
        );
    }
    let alert = pause_alert(
        &deps.config.common.function_name,
        &deps.config.chat_function,
        &view,
        pause,
    );
    deps.alerts.publish(&alert).await?;
    remember_alert(deps, &view.service_arn, view.alerted.as_deref(), &key).await;
    Ok(
        json!({"status": "ok", "alerted": true, "service": view.service, "waiting_for": view.waiting_for()}),
    )
}

/// Publish a hook alert unless the service remembers sending it; a publish that fails is logged and
/// never changes the answer to ECS (ECS rolls back when the function fails).
async fn publish_once<A: AlertSink>(
    deps: &Deps<A>,
    alert: &ops_core::alert::Alert,
    service_arn: &str,
    alerted: Option<&str>,
    key: &str,
) {
    if hook::alerted_before(alerted, key) {
        info!(%key, "this hook alert was sent already");
    } else if let Err(error) = deps.alerts.publish(alert).await {
        warn!(%error, title = %alert.title, "hook alert not sent; the answer to ECS stands");
    } else {
        remember_alert(deps, service_arn, alerted, key).await;
    }
}

/// Remember on the service that the alert of `key` was sent. Two deliveries at the very same
/// moment can both alert: a tag has no conditional write.
async fn remember_alert<A: AlertSink>(
    deps: &Deps<A>,
    service_arn: &str,
    alerted: Option<&str>,
    key: &str,
) {
    let tags = BTreeMap::from([(
        hook::HOOK_ALERTED.to_string(),
        hook::remember_alerted(alerted, key),
    )]);
    if let Err(error) = deps.clients.ecs.tag(service_arn, &tags).await {
        warn!(%error, "could not record the hook alert; a redelivered call may alert again");
    }
}
