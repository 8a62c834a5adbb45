//! The handler: route alarm events, schedules and chat commands through observe, decide, act and
//! report.

use std::collections::BTreeMap;

use ops_core::alert::AlertSink;
use ops_core::aws::cloudwatch::{Alarm, AlarmState};
use ops_core::aws::iam::IamSimulator;
use ops_core::command::{Command, CommandError};
use ops_core::doctor;
use ops_core::events::{
    classify, event_time, ignored_event, parse_alarm_action, parse_event, AlarmStateChange,
    EventError, Incoming, ALARM_STATE_CHANGE, SCHEDULED_EVENT,
};
use ops_core::plan::{execute, Execution, Mode, Plan};
use ops_core::{Error, Result};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::act::apply;
use crate::commands::{ScaleArgs, StatusArgs, COMMANDS};
use crate::config::ScalerConfig;
use crate::contract::{self, parse_duration, CompositeAnswer, TargetRef};
use crate::decide::{
    decide_override, decide_override_expiry, decide_scaling, Action, AlarmView, Trigger,
};
use crate::observe::{alarm_view, target_view, Clients};
use crate::report::{
    failure_alert, override_alert, override_ended_alert, scaling_alert, warning_alert,
};

/// What the handler works with, built once at start.
pub struct Deps<A> {
    /// AWS adapters.
    pub clients: Clients,
    /// IAM's policy simulator, for `doctor`.
    pub iam: IamSimulator,
    /// Where alerts go.
    pub alerts: A,
    /// Configuration.
    pub config: ScalerConfig,
}

/// Per-invocation facts. Events carry their own time, which decisions use, so a retried event
/// decides the same way; chat commands use `now`.
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// The clock, in epoch seconds.
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
        } if detail_type == ALARM_STATE_CHANGE => {
            let event = parse_event::<AlarmStateChange>(&detail_from_alarm_data(raw))?;
            let now = event
                .time
                .map(|t| t.timestamp().max(0) as u64)
                .unwrap_or(invocation.now);
            on_alarm(&event.detail.alarm_name, Trigger::StateChange, now, deps).await
        }
        Incoming::AlarmAction(raw) => {
            let action = parse_alarm_action(&raw)?;
            on_alarm(
                &action.alarm_data.alarm_name,
                Trigger::StateChange,
                action.time.timestamp().max(0) as u64,
                deps,
            )
            .await
        }
        Incoming::Event {
            detail_type, raw, ..
        } if detail_type == SCHEDULED_EVENT => {
            let now = event_time(&raw, invocation.now)?;
            on_schedule(now, deps).await
        }
        Incoming::Event { detail_type, .. } => {
            debug!(detail_type, "event type not handled");
            Ok(ignored_event("cpu-alarm-scaler", &detail_type))
        }
        Incoming::Command(raw) => {
            on_command(
                COMMANDS.parse(&deps.config.common.function_name, &raw)?,
                invocation.now,
                deps,
            )
            .await
        }
    }
}

/// EventBridge delivers the alarm in `detail`; the `aws_lambda_events` crate's composite alarm
/// sample (`example-cloudwatch-alarm-composite-with-suppressor-alarm.json`) has the same envelope
/// with the alarm in `alarmData`, the field of the alarm's own action payload. The alarm is only
/// named there and read back from CloudWatch, so either place is accepted.
fn detail_from_alarm_data(mut raw: Value) -> Value {
    if let Some(event) = raw.as_object_mut() {
        if !event.contains_key("detail") {
            if let Some(data) = event.remove("alarmData") {
                event.insert("detail".into(), data);
            }
        }
    }
    raw
}

async fn on_alarm<A: AlertSink>(
    name: &str,
    trigger: Trigger,
    now: u64,
    deps: &Deps<A>,
) -> Result<Value> {
    if name.trim().is_empty() || name.len() > 255 {
        return Err(EventError::Malformed {
            detail_type: ALARM_STATE_CHANGE.into(),
            reason: "the alarm name is empty or longer than 255 characters".into(),
        }
        .into());
    }
    let alarm = match deps.clients.alarms.describe_any(name).await? {
        Alarm::Metric(alarm) => alarm,
        Alarm::Composite(alarm) => {
            return match contract::composite(&alarm.name, &alarm.rule, &alarm.tags) {
                CompositeAnswer::Ignored(reason) => {
                    debug!(alarm = name, "{reason}");
                    Ok(json!({ "status": "ignored", "reason": reason }))
                }
                CompositeAnswer::Refused(reason) => Err(Error::Refused(reason)),
            };
        }
    };
    if !alarm.tags.contains_key(contract::TARGET) {
        debug!(alarm = name, "alarm does not scale anything");
        return Ok(
            json!({ "status": "ignored", "reason": format!("alarm {name} has no `{}` tag", contract::TARGET) }),
        );
    }
    scale_for(&alarm, trigger, now, deps).await
}

/// Decide and act for one opted-in alarm.
async fn scale_for<A: AlertSink>(
    alarm: &AlarmState,
    trigger: Trigger,
    now: u64,
    deps: &Deps<A>,
) -> Result<Value> {
    let view = alarm_view(alarm)?;
    let target = &view.policy.target;
    if !deps.config.allows(target) {
        return Err(Error::Refused(format!(
            "alarm {} targets {target}, which is not in AUTOSCALING_GROUPS / ECS_CLUSTERS of this function",
            alarm.name
        )));
    }
    let observed = target_view(&deps.clients, target).await?;
    let decision = decide_scaling(&view, &observed, trigger, now, deps.config.coexistence);
    for note in &decision.plan.notes {
        info!(alarm = %alarm.name, target = %target, "{note}");
    }
    let execution = run(decision.plan, Mode::Apply, deps).await?;
    let function = &deps.config.common.function_name;
    if let Some(warning) = &decision.warning {
        warn!(alarm = %alarm.name, target = %target, "{warning}");
        // A schedule re-evaluates every minute; only the state change itself alerts.
        if trigger == Trigger::StateChange {
            deps.alerts
                .publish(&warning_alert(function, target, &alarm.name, warning))
                .await?;
        }
    }
    if let Some(scaling) = decision
        .scaling
        .as_ref()
        .filter(|_| execution.failed.is_none())
    {
        deps.alerts
            .publish(&scaling_alert(function, target, scaling))
            .await?;
        if let Some(mark) = &decision.alerted {
            apply(&deps.clients, mark).await?;
        }
    }
    Ok(answer(
        &execution,
        json!({ "alarm": alarm.name, "target": target.to_string(), "scaling": decision.scaling }),
    ))
}

async fn on_schedule<A: AlertSink>(now: u64, deps: &Deps<A>) -> Result<Value> {
    let firing = deps.clients.alarms.tagged(contract::TARGET, true).await?;
    // Overrides that ran out are ended first, together with the alarms in ALARM on their target,
    // and those targets are not re-evaluated again this tick: one tick, one change per target
    // (re-evaluating first scaled out, then the revert undid it under the new cooldown).
    let views: Vec<AlarmView> = firing.iter().filter_map(|a| alarm_view(a).ok()).collect();
    let (overrides, decided, problems) = expire_overrides(now, &views, deps).await?;
    let mut results = Vec::new();
    let mut retry = None;
    for alarm in firing {
        if let Some(target) = views
            .iter()
            .find(|v| v.name == alarm.name)
            .map(|v| &v.policy.target)
            .filter(|t| decided.contains(t))
        {
            let reason = format!("{target}: its override ended this tick, decided with this alarm");
            info!(alarm = %alarm.name, target = %target, "{reason}");
            results.push(json!({ "alarm": alarm.name, "target": target.to_string(), "status": "no_change", "notes": [reason] }));
            continue;
        }
        match scale_for(&alarm, Trigger::Reevaluation, now, deps).await {
            Ok(result) => results.push(result),
            Err(error) if error.retryable() => {
                warn!(alarm = %alarm.name, %error, "re-evaluation failed; the schedule event is retried");
                retry = Some(error);
            }
            Err(error) => {
                warn!(alarm = %alarm.name, %error, "alarm not re-evaluated");
                results.push(
                    json!({ "alarm": alarm.name, "status": "refused", "error": error.to_string() }),
                );
            }
        }
    }
    if let Some(error) = retry {
        return Err(error);
    }
    Ok(
        json!({ "status": "reevaluated", "alarms": results, "overrides_ended": overrides, "problems": problems }),
    )
}

/// End every override that has run out on a target the function may scale, deciding each with the
/// alarms in ALARM (`firing`). Returns the targets ended, every target whose end was decided (the
/// schedule leaves their alarms alone this tick), and problems. A group or cluster that cannot be
/// read is reported and skipped (it must not stop the others); a retryable failure is returned so
/// the schedule event is retried.
async fn expire_overrides<A: AlertSink>(
    now: u64,
    firing: &[AlarmView],
    deps: &Deps<A>,
) -> Result<(Vec<String>, Vec<TargetRef>, Vec<String>)> {
    let (targets, mut problems) = targets_with_overrides(deps).await?;
    let mut ended = Vec::new();
    let mut decided = Vec::new();
    for target in targets {
        let observed = match target_view(&deps.clients, &target).await {
            Ok(observed) => observed,
            Err(error) if !error.retryable() => {
                problems.push(format!("{target}: {error}"));
                continue;
            }
            Err(error) => return Err(error),
        };
        let Some(expiry) = decide_override_expiry(&observed, firing, now, deps.config.coexistence)
        else {
            continue;
        };
        decided.push(target.clone());
        for note in &expiry.plan.notes {
            info!(target = %target, "{note}");
        }
        let execution = run(expiry.plan, Mode::Apply, deps).await?;
        if execution.failed.is_none() {
            let alert = override_ended_alert(
                &deps.config.common.function_name,
                &target,
                &expiry.manual,
                expiry.from,
                expiry.to,
                expiry.why.as_deref(),
            );
            deps.alerts.publish(&alert).await?;
            ended.push(target.to_string());
        }
    }
    Ok((ended, decided, problems))
}

async fn targets_with_overrides<A: AlertSink>(
    deps: &Deps<A>,
) -> Result<(Vec<TargetRef>, Vec<String>)> {
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    let mut skip = |what: String, error: Error| -> Result<()> {
        if error.retryable() {
            return Err(error);
        }
        warn!(%error, "{what} skipped while looking for expired overrides");
        problems.push(format!("{what}: {error}"));
        Ok(())
    };
    for name in &deps.config.groups {
        match deps.clients.groups.describe(name).await {
            Ok(group) if group.tags.contains_key(contract::OVERRIDE) => {
                targets.push(TargetRef::Group { name: name.clone() })
            }
            Ok(_) => {}
            Err(error) => skip(format!("group {name}"), error)?,
        }
    }
    for cluster in &deps.config.clusters {
        let services = match deps.clients.ecs.list_services(cluster).await {
            Ok(arns) => deps.clients.ecs.describe_many(cluster, &arns).await,
            Err(error) => Err(error),
        };
        match services {
            Ok(services) => targets.extend(
                services
                    .into_iter()
                    .filter(|s| s.tags.contains_key(contract::OVERRIDE))
                    .map(|s| TargetRef::Service {
                        cluster: cluster.clone(),
                        service: s.name,
                    }),
            ),
            Err(error) => skip(format!("cluster {cluster}"), error)?,
        }
    }
    Ok((targets, problems))
}

async fn on_command<A: AlertSink>(command: Command, now: u64, deps: &Deps<A>) -> Result<Value> {
    match command.name.as_str() {
        "scale" => {
            let args: ScaleArgs = command.args_as()?;
            let invalid = |reason: String| CommandError::InvalidArgs {
                command: "scale".into(),
                reason,
            };
            let target = TargetRef::parse(&args.target).map_err(|e| invalid(e.to_string()))?;
            let seconds = parse_duration(&args.duration)
                .map_err(|e| invalid(format!("argument `for`: {e}")))?;
            if !deps.config.allows(&target) {
                return Err(Error::Refused(format!(
                    "{target} is not in AUTOSCALING_GROUPS / ECS_CLUSTERS of this function"
                )));
            }
            let by = command
                .requested_by
                .clone()
                .unwrap_or_else(|| "an unnamed chat user".into());
            let observed = target_view(&deps.clients, &target).await?;
            let (plan, manual) = decide_override(&observed, args.count, seconds, &by, now)
                .map_err(Error::Refused)?;
            let execution = run(plan, Mode::from_dry_run(command.dry_run), deps).await?;
            if execution.changed_anything() && execution.failed.is_none() {
                deps.alerts
                    .publish(&override_alert(
                        &deps.config.common.function_name,
                        &target,
                        &manual,
                        observed.desired,
                    ))
                    .await?;
            }
            Ok(answer(
                &execution,
                json!({ "target": target.to_string(), "override": manual }),
            ))
        }
        "status" => {
            let args: StatusArgs = command.args_as()?;
            let only = args
                .target
                .as_deref()
                .map(TargetRef::parse)
                .transpose()
                .map_err(|e| CommandError::InvalidArgs {
                    command: "status".into(),
                    reason: e.to_string(),
                })?;
            status(only, now, deps).await
        }
        "doctor" => Ok(doctor::conclude(
            &deps.config.common,
            crate::doctor::examine(&deps.config, &deps.clients).await,
            &deps.iam,
            &deps.alerts,
        )
        .await),
        _ => Ok(
            json!({ "status": "help", "help": COMMANDS.help(&deps.config.common.function_name) }),
        ),
    }
}

async fn status<A: AlertSink>(only: Option<TargetRef>, now: u64, deps: &Deps<A>) -> Result<Value> {
    let mut by_target: BTreeMap<TargetRef, Vec<Value>> = BTreeMap::new();
    let mut problems = Vec::new();
    for alarm in deps.clients.alarms.tagged(contract::TARGET, false).await? {
        let view = match alarm_view(&alarm) {
            Ok(view) => view,
            Err(error) => {
                problems.push(error.to_string());
                continue;
            }
        };
        if only.as_ref().is_some_and(|t| *t != view.policy.target)
            || !deps.config.allows(&view.policy.target)
        {
            continue;
        }
        let observed = target_view(&deps.clients, &view.policy.target).await?;
        let planned = decide_scaling(
            &view,
            &observed,
            Trigger::Reevaluation,
            now,
            deps.config.coexistence,
        );
        by_target.entry(view.policy.target.clone()).or_default().push(json!({
            "alarm": view.name,
            "state": alarm.state,
            "value": view.value,
            "threshold": view.threshold,
            "cooldown_seconds": view.policy.cooldown,
            "planned": planned.plan.changes.iter().map(|c| c.reason.clone()).collect::<Vec<_>>(),
            "holding": planned.plan.notes,
        }));
    }
    let mut targets = Vec::new();
    for (target, alarms) in by_target {
        let observed = target_view(&deps.clients, &target).await?;
        targets.push(json!({
            "target": target.to_string(),
            "desired": observed.desired,
            "min": observed.min,
            "max": observed.max,
            "last_scale_out": observed.memory.out_at.map(ops_core::time::utc_text),
            "last_scale_in": observed.memory.in_at.map(ops_core::time::utc_text),
            "override": observed.memory.manual,
            "scale_in_blocked_by": observed.busy,
            "native_scaling": observed.native,
            "alarms": alarms,
        }));
    }
    Ok(json!({ "status": "ok", "targets": targets, "problems": problems }))
}

/// Act on `plan` (or not, in dry-run). A failure that retrying can fix is returned as an error so
/// Lambda retries; any other is alerted.
async fn run<A: AlertSink>(
    plan: Plan<Action>,
    mode: Mode,
    deps: &Deps<A>,
) -> Result<Execution<Action>> {
    let execution = execute(plan, mode, |action| {
        let action = action.clone();
        async move { apply(&deps.clients, &action).await }
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
    Ok(execution)
}

fn answer(execution: &Execution<Action>, extra: Value) -> Value {
    let status = match execution.status {
        ops_core::plan::Status::NoChange => "no_change",
        ops_core::plan::Status::Planned => "planned",
        ops_core::plan::Status::Applied => "scaled",
        ops_core::plan::Status::Failed => "failed",
    };
    let mut body = json!({
        "status": status,
        "dry_run": execution.dry_run,
        "applied": execution.applied,
        "planned": if execution.dry_run { json!(execution.not_attempted) } else { json!([]) },
        "notes": execution.notes,
        "failed": execution.failed,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}
