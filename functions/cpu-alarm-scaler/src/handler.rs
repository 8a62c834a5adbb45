//! The handler: route alarm events, schedules and chat commands through observe, decide, act and
//! report.
//!
//! # Invariants
//!
//! Events arrive at least once, late, out of order, never, or two at once, and the process can die
//! at any AWS call (DESIGN.md, "Event order"). An alarm event only says "look at this alarm": the
//! decision reads the alarm's state from CloudWatch and uses the event's own time. Per target:
//!
//! 1. Capacity stays within min..max.
//! 2. Capacity never moves against the alarms in ALARM: never down while a scale-out alarm fires
//!    (an override ending under it goes no lower than the held capacity and what the alarm asks),
//!    never up while only a scale-in alarm fires (an override ending under it goes no higher than
//!    the held capacity), and with no alarm firing only an override's end moves it (to its revert).
//!    A person's `scale` command may move it either way.
//! 3. One invocation makes at most one capacity change per target (an override that ends is
//!    decided together with the alarms in ALARM, and the schedule leaves that target's alarms
//!    alone that tick).
//! 4. One step per trigger: an alarm state change (`<alarm>@<state time>`) or a tick's
//!    re-evaluation (`...+<tick time>`) moves capacity once however often it is delivered, and two
//!    steps in one direction are a cooldown apart in the events' own time (so a late event,
//!    carrying an old time, never acts after a newer step).
//! 5. An override holds capacity at its count until its time; then alarms scale again and the
//!    next tick ends it. A command that stopped half-way (recorded `pending`) is finished, held and
//!    alerted by the first tick once the command can no longer be at work.
//! 6. Every capacity change is alerted at least once, in order (each alert starts where the one
//!    before ended): a change is recorded before it is made and marked done only after its alert,
//!    so a crash anywhere leaves the alert to the retry or the next tick. Twice only after a crash
//!    between an alert and its mark, or when two invocations that overlap closely both act
//!    ([`Record`]): capacity has no conditional write, so the scaler prefers two alerts to none.
//! 7. A crash at any call converges on the retry or the next tick, with no override left behind.
//! 8. A target held at its max (or min) while an alarm asks past it is alerted once when that
//!    begins and once when it ends, in that order ([`crate::episode`]); the tick ends an episode no
//!    firing alarm looked at, so a lost OK event or a deleted alarm still ends it.
//!
//! Checked after every step of random event sequences by `tests/tests/model_cpu_alarm_scaler.rs`
//! (the model-based sequence test), and by the regression tests in
//! `tests/tests/cpu_alarm_scaler.rs`.

use std::collections::BTreeMap;

use ops_core::alert::AlertSink;
use ops_core::aws::cloudwatch::{Alarm, AlarmState};
use ops_core::aws::iam::IamSimulator;
use ops_core::command::{Command, CommandError};
use ops_core::doctor;
use ops_core::events::{
    acting_time, classify, ignored_event, not_a_lifecycle_hook, not_ahead, parse_alarm_action,
    parse_event, refuse_unscheduled, AlarmStateChange, EventError, Incoming, ALARM_STATE_CHANGE,
    SCHEDULED_EVENT,
};
use ops_core::plan::{execute, Execution, Mode, Plan};
use ops_core::{Error, Result};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::act::apply;
use crate::at_bound::follow_episode;
use crate::commands::{ScaleArgs, StatusArgs, COMMANDS};
use crate::config::ScalerConfig;
use crate::contract::{self, parse_duration, AtBound, CompositeAnswer, TargetRef};
use crate::decide::{
    decide_override, decide_override_expiry, decide_scaling, decide_unfinished_override,
    settle_override, Action, AlarmView, Record, TargetView, Trigger,
};
use crate::episode::{decide_episode, orphaned};
use crate::observe::{alarm_view, memory_of, target_view, Clients};
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
    let lead = deps.config.common.schedule_lead;
    match classify(payload)? {
        Incoming::Event {
            detail_type, raw, ..
        } if detail_type == ALARM_STATE_CHANGE => {
            let raw = detail_from_alarm_data(raw);
            // A late event acts now (see `acting_time`): its cooldown starts now.
            let now = acting_time(&raw, invocation.now, lead)?;
            let event = parse_event::<AlarmStateChange>(&raw)?;
            on_alarm(&event.detail.alarm_name, Trigger::StateChange, now, deps).await
        }
        Incoming::LifecycleHook(_) => Err(not_a_lifecycle_hook("cpu-alarm-scaler").into()),
        Incoming::AlarmAction(raw) => {
            let action = parse_alarm_action(&raw)?;
            on_alarm(
                &action.alarm_data.alarm_name,
                Trigger::StateChange,
                not_ahead(action.time.timestamp().max(0) as u64, invocation.now, lead)?
                    .max(invocation.now),
                deps,
            )
            .await
        }
        Incoming::Event {
            detail_type,
            source,
            raw,
        } if detail_type == SCHEDULED_EVENT => {
            refuse_unscheduled(&source, "the scaler's tick")?;
            // A backlog of late ticks delivered at once is one moment, not the hour it spans: no
            // cooldown is replayed in fast-forward.
            on_schedule(acting_time(&raw, invocation.now, lead)?, deps).await
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
    let (execution, acted) = match &decision.record {
        Some(record) => {
            match act_claimed(&observed, record, decision.plan, Guard::Unchanged, deps).await? {
                Claimed::Acted { execution, claim } => (*execution, Some((record, claim))),
                Claimed::Stood(reason) => {
                    info!(alarm = %alarm.name, target = %target, "{reason}");
                    (
                        run(Plan::new().note(reason), Mode::Apply, deps).await?,
                        None,
                    )
                }
            }
        }
        None => (run(decision.plan, Mode::Apply, deps).await?, None),
    };
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
    let scaling = decision.scaling.filter(|_| acted.is_some());
    if let (Some(scaling), Some((record, claim))) = (&scaling, &acted) {
        if execution.failed.is_none() {
            deps.alerts
                .publish(&scaling_alert(function, target, scaling))
                .await?;
            apply(&deps.clients, &record.alerted(&observed, claim)).await?;
        }
    }
    // The episode is decided on the target as this look left it.
    let mut after = observed.clone();
    if let Some(scaling) = scaling.as_ref().filter(|_| execution.failed.is_none()) {
        after.desired = scaling.to;
    }
    // A clamped scaling's alert already said it stopped at the bound: an episode it begins is
    // recorded as alerted, and only its end is alerted.
    let told = scaling.as_ref().is_some_and(|s| s.clamped_by.is_some())
        && execution.failed.is_none()
        && observed.memory.at_bound.is_none();
    let steps = decide_episode(&view, &after, now, deps.config.coexistence);
    follow_episode(&after, steps, None, told, now, deps).await?;
    Ok(answer(
        &execution,
        json!({ "alarm": alarm.name, "target": target.to_string(), "scaling": scaling }),
    ))
}

/// How acting under a claim ended.
enum Claimed {
    /// The claim held: the plan was executed (a failure retrying cannot fix is alerted by [`run`]);
    /// alert, then mark the record alerted under `claim`.
    Acted {
        execution: Box<Execution<Action>>,
        claim: String,
    },
    /// Another invocation claimed or changed the target first; nothing was done after the record.
    Stood(String),
}

impl Claimed {
    /// The execution and claim when the plan was acted on; when another invocation stood in the
    /// way, logs why for `target` and gives nothing (that invocation acts and alerts).
    fn acted(self, target: &impl std::fmt::Display) -> Option<(Execution<Action>, String)> {
        match self {
            Claimed::Acted { execution, claim } => Some((*execution, claim)),
            Claimed::Stood(reason) => {
                info!(target = %target, "{reason}");
                None
            }
        }
    }
}

/// What else than its claim an invocation must find unchanged before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// The capacity and the override as observed (the scaler's own decisions).
    Unchanged,
    /// Nothing else: a person's command acts on whatever capacity there is now.
    ClaimOnly,
}

/// Claim `observed`'s target for `record` ([`Record`]), re-read it, and execute `plan` only if the
/// claim is still there (and, with [`Guard::Unchanged`], the capacity and the override are still
/// as observed). An invocation that acted alerts what it did, even if another claimed the target
/// after it re-read: two that overlap that closely may both alert (never neither).
async fn act_claimed<A: AlertSink>(
    observed: &TargetView,
    record: &Record,
    plan: Plan<Action>,
    guard: Guard,
    deps: &Deps<A>,
) -> Result<Claimed> {
    let target = &observed.target;
    let claim = new_claim();
    apply(&deps.clients, &record.claim(observed, &claim)).await?;
    let mine = Some(record.claimed(&claim));
    let (desired, memory) = memory_of(&deps.clients, target).await?;
    if memory.last != mine {
        return Ok(Claimed::Stood(format!(
            "{target}: another invocation decided on it at the same time ({}); that one acts and alerts",
            memory.last.map(|l| l.key).unwrap_or_default()
        )));
    }
    if guard == Guard::Unchanged
        && (desired != observed.desired || memory.manual != observed.memory.manual)
    {
        // Nothing is owed for this record: a duplicate of its trigger must not alert it later.
        apply(&deps.clients, &record.alerted(observed, &claim)).await?;
        return Ok(Claimed::Stood(format!(
            "{target}: changed while this invocation decided (capacity {} then {desired}, override {:?} then {:?}); the next trigger decides again",
            observed.desired, observed.memory.manual, memory.manual
        )));
    }
    let execution = run(plan, Mode::Apply, deps).await?;
    Ok(Claimed::Acted {
        execution: Box::new(execution),
        claim,
    })
}

/// A claim no other invocation has: the process, the clock and a per-process counter, hashed with
/// the standard library's randomly keyed hasher.
pub(crate) fn new_claim() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}

async fn on_schedule<A: AlertSink>(now: u64, deps: &Deps<A>) -> Result<Value> {
    let firing = deps.clients.alarms.tagged(contract::TARGET, true).await?;
    // Overrides that ran out are ended first, together with the alarms in ALARM on their target,
    // and those targets are not re-evaluated again this tick: one tick, one change per target
    // (re-evaluating first scaled out, then the revert undid it under the new cooldown).
    let views: Vec<AlarmView> = firing.iter().filter_map(|a| alarm_view(a).ok()).collect();
    let (marked, problems) = marked_targets(deps).await?;
    let OverrideWork {
        ended: overrides,
        finished,
        decided,
        mut problems,
    } = expire_overrides(now, &views, &marked, problems, deps).await?;
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
    sweep_episodes(now, &views, &marked, &decided, &mut problems, deps).await?;
    Ok(
        json!({ "status": "reevaluated", "alarms": results, "overrides_ended": overrides, "overrides_finished": finished, "problems": problems }),
    )
}

/// End the at-bound episodes no alarm in ALARM looked at this tick: their alarm left ALARM and
/// its OK event was lost or is late, or the alarm no longer scales the target. Targets whose
/// override was decided this tick wait for the next.
async fn sweep_episodes<A: AlertSink>(
    now: u64,
    firing: &[AlarmView],
    marked: &[Marked],
    decided: &[TargetRef],
    problems: &mut Vec<String>,
    deps: &Deps<A>,
) -> Result<()> {
    let mut opted_in: Option<Vec<AlarmView>> = None;
    for (target, found) in marked
        .iter()
        .filter(|m| !decided.contains(&m.target))
        .filter_map(|m| Some((&m.target, m.episode.as_ref()?)))
    {
        let scales_it = |episode: &AtBound, view: &AlarmView| {
            episode.is_of(&view.name) && view.policy.target == *target
        };
        // An episode whose alarm this tick re-evaluated was looked at already: no read.
        if firing.iter().any(|view| scales_it(found, view)) {
            continue;
        }
        let observed = match target_view(&deps.clients, target).await {
            Ok(observed) => observed,
            Err(error) if !error.retryable() => {
                problems.push(format!("{target}: {error}"));
                continue;
            }
            Err(error) => return Err(error),
        };
        let Some(episode) = observed.memory.at_bound.clone() else {
            continue;
        };
        if firing.iter().any(|view| scales_it(&episode, view)) {
            continue;
        }
        if opted_in.is_none() {
            let all = deps.clients.alarms.tagged(contract::TARGET, false).await?;
            opted_in = Some(all.iter().filter_map(|a| alarm_view(a).ok()).collect());
        }
        let alarm = opted_in
            .iter()
            .flatten()
            .find(|view| scales_it(&episode, view));
        let steps = match alarm {
            Some(alarm) => decide_episode(alarm, &observed, now, deps.config.coexistence),
            None => vec![orphaned(&episode, &observed)],
        };
        follow_episode(&observed, steps, Some(firing), false, now, deps).await?;
    }
    Ok(())
}

/// What the schedule did with overrides.
struct OverrideWork {
    /// Targets whose override ended.
    ended: Vec<String>,
    /// Targets whose override a stopped command left unfinished, finished now.
    finished: Vec<String>,
    /// Every target whose override was decided on (the schedule leaves their alarms alone this
    /// tick).
    decided: Vec<TargetRef>,
    /// Groups, clusters or targets that could not be read.
    problems: Vec<String>,
}

/// Finish every override a stopped command left unalerted, then end every override that has run
/// out on a target the function may scale, deciding each with the alarms in ALARM (`firing`). A
/// group or cluster that cannot be read is reported and skipped (it must not stop the others); a
/// retryable failure is returned so the schedule event is retried.
///
/// Each step's alert goes out before it is recorded as done (the override settled, then
/// forgotten), so a run that stops anywhere leaves the rest to the next tick, which alerts it
/// once; only a stop between an alert and its record alerts twice.
async fn expire_overrides<A: AlertSink>(
    now: u64,
    firing: &[AlarmView],
    marked: &[Marked],
    problems: Vec<String>,
    deps: &Deps<A>,
) -> Result<OverrideWork> {
    let targets = marked.iter().filter(|m| m.manual).map(|m| m.target.clone());
    let function = &deps.config.common.function_name;
    let mut work = OverrideWork {
        ended: Vec::new(),
        finished: Vec::new(),
        decided: Vec::new(),
        problems,
    };
    for target in targets {
        let mut observed = match target_view(&deps.clients, &target).await {
            Ok(observed) => observed,
            Err(error) if !error.retryable() => {
                work.problems.push(format!("{target}: {error}"));
                continue;
            }
            Err(error) => return Err(error),
        };
        if let Some(unfinished) = decide_unfinished_override(&observed, now) {
            work.decided.push(target.clone());
            let Some((execution, claim)) = act_claimed(
                &observed,
                &unfinished.record,
                unfinished.plan,
                Guard::Unchanged,
                deps,
            )
            .await?
            .acted(&target) else {
                continue;
            };
            if execution.failed.is_some() {
                continue;
            }
            if unfinished.alert {
                deps.alerts
                    .publish(&override_alert(
                        function,
                        &target,
                        &unfinished.manual,
                        unfinished.from,
                    ))
                    .await?;
            }
            apply(
                &deps.clients,
                &settle_override(&observed, &unfinished.manual, &unfinished.record, &claim),
            )
            .await?;
            info!(target = %target, to = unfinished.to, "finished an override its command left unfinished");
            work.finished.push(target.to_string());
            observed.desired = unfinished.to;
            observed.memory.manual = Some(crate::contract::Override {
                pending: None,
                ..unfinished.manual
            });
        }
        let Some(expiry) = decide_override_expiry(&observed, firing, now, deps.config.coexistence)
        else {
            continue;
        };
        if !work.decided.contains(&target) {
            work.decided.push(target.clone());
        }
        for note in &expiry.plan.notes {
            info!(target = %target, "{note}");
        }
        let Some((execution, _)) = act_claimed(
            &observed,
            &expiry.record,
            expiry.plan,
            Guard::Unchanged,
            deps,
        )
        .await?
        .acted(&target) else {
            continue;
        };
        if execution.failed.is_none() {
            let alert = override_ended_alert(
                function,
                &target,
                &expiry.manual,
                expiry.from,
                expiry.to,
                expiry.why.as_deref(),
            );
            deps.alerts.publish(&alert).await?;
            apply(&deps.clients, &expiry.forget).await?;
            work.ended.push(target.to_string());
        }
    }
    Ok(work)
}

/// A target the scaler may scale that carries an override or an at-bound episode.
struct Marked {
    target: TargetRef,
    /// It has `ops:scale-override`.
    manual: bool,
    /// Its at-bound episode, as the tick found it.
    episode: Option<AtBound>,
}

impl Marked {
    fn of(target: TargetRef, tags: &BTreeMap<String, String>) -> Option<Marked> {
        let marked = Marked {
            target,
            manual: tags.contains_key(contract::OVERRIDE),
            episode: tags
                .get(contract::AT_BOUND)
                .and_then(|v| AtBound::decode(v)),
        };
        (marked.manual || marked.episode.is_some()).then_some(marked)
    }
}

/// Every target of this function with an override or an at-bound episode (one read per group and
/// per cluster), and what could not be read.
async fn marked_targets<A: AlertSink>(deps: &Deps<A>) -> Result<(Vec<Marked>, Vec<String>)> {
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    let mut skip = |what: String, error: Error| -> Result<()> {
        if error.retryable() {
            return Err(error);
        }
        warn!(%error, "{what} skipped while looking for overrides and at-bound episodes");
        problems.push(format!("{what}: {error}"));
        Ok(())
    };
    for name in &deps.config.groups {
        match deps.clients.groups.describe(name).await {
            Ok(group) => targets.extend(Marked::of(
                TargetRef::Group { name: name.clone() },
                &group.tags,
            )),
            Err(error) => skip(format!("group {name}"), error)?,
        }
    }
    for cluster in &deps.config.clusters {
        let services = match deps.clients.ecs.list_services(cluster).await {
            Ok(arns) => deps.clients.ecs.describe_many(cluster, &arns).await,
            Err(error) => Err(error),
        };
        match services {
            Ok(services) => targets.extend(services.into_iter().filter_map(|s| {
                Marked::of(
                    TargetRef::Service {
                        cluster: cluster.clone(),
                        service: s.name,
                    },
                    &s.tags,
                )
            })),
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
            let by = command.requester();
            let observed = target_view(&deps.clients, &target).await?;
            let (plan, mut manual, record) =
                decide_override(&observed, args.count, seconds, &by, now)
                    .map_err(Error::Refused)?;
            if command.dry_run {
                let execution = run(plan, Mode::DryRun, deps).await?;
                return Ok(answer(
                    &execution,
                    json!({ "target": target.to_string(), "override": manual }),
                ));
            }
            // Recorded as pending with this command's claim (the plan's first change), resized,
            // alerted, then settled: a stop before the end leaves the override to a later schedule
            // tick to finish and alert.
            let Plan { mut changes, notes } = plan;
            let recorded = changes.remove(0);
            let resize = Plan { changes, notes };
            let (execution, claim) = match act_claimed(
                &observed,
                &record,
                resize,
                Guard::ClaimOnly,
                deps,
            )
            .await?
            {
                Claimed::Acted {
                    mut execution,
                    claim,
                } => {
                    // The answer shows the override recorded as the command's first change.
                    execution.applied.insert(0, recorded);
                    if execution.status == ops_core::plan::Status::NoChange {
                        execution.status = ops_core::plan::Status::Applied;
                    }
                    (*execution, claim)
                }
                Claimed::Stood(reason) => {
                    info!(target = %target, "{reason}");
                    return Ok(json!({
                        "status": "pending",
                        "target": target.to_string(),
                        "override": manual,
                        "notes": [reason, "the override is recorded; the schedule finishes it (resize and alert) within two minutes, or send the command again"],
                    }));
                }
            };
            if execution.failed.is_none() {
                deps.alerts
                    .publish(&override_alert(
                        &deps.config.common.function_name,
                        &target,
                        &manual,
                        manual.pending.unwrap_or(observed.desired),
                    ))
                    .await?;
                apply(
                    &deps.clients,
                    &settle_override(&observed, &manual, &record, &claim),
                )
                .await?;
                manual.pending = None;
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
            "held_at_bound": observed.memory.at_bound.as_ref().map(|episode| {
                let mut held = json!({
                    "bound": episode.bound,
                    "at": episode.at,
                    "asked": episode.asked,
                    "since": ops_core::time::utc_text(episode.since),
                    "alarm": episode.alarm,
                });
                if let Some(manual) = observed.memory.manual.as_ref().filter(|m| m.until > now) {
                    held["ending"] = json!(format!(
                        "{}'s override holds it now; the next tick alerts the end",
                        manual.by
                    ));
                }
                held
            }),
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
