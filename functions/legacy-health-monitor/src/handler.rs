//! The handler: each scheduled run observes (targets, states), checks, decides, stores, emits
//! metrics and alerts; chat can ask for the status or for one check now.
//!
//! **A run, step by step** (the invariants it keeps are in the crate docs):
//! 1. read the targets and their states (and the bookkeeping item);
//! 2. record its start ([`crate::meta::start`]): a duplicate or late delivery of the schedule
//!    stops counting here;
//! 3. check, within the deadline;
//! 4. decide each target and store the changed states in conditional writes, each new alert
//!    recorded in the state with a claim until the run's deadline ([`crate::act::store`]);
//! 5. send the alerts it owns one by one, then record what went out and give up its claim on
//!    what did not;
//! 6. record in the bookkeeping what it could not check, the config alert sent, the old key
//!    layout carried over.
//!
//! **Deadline.** A run ends inside its invocation's deadline (Lambda's `Context.deadline`, given
//! to [`function_handler_within`]) whatever the outage size. N targets with timeout T at
//! concurrency C need up to ceil(N/C)×T; the run keeps a margin for storing and alerting (a tenth
//! of the time left, [`MIN_MARGIN`] to [`MAX_MARGIN`]) and starts a check only if its whole
//! timeout fits before that. Timeouts are never shortened (a failure always means the target had
//! its full timeout, so hysteresis keeps its meaning); the targets left over are "not checked in
//! time": their stored state stands, and one `health.not-checked` alert names how many and which
//! (the first 25). The order makes that fair and useful: those the last run skipped first (kept
//! in `meta#config`), then those down or failing, then the rest. Concurrency is the operator's
//! `HEALTH_CONCURRENCY`, not raised here: it may be set low on purpose (sockets, fragile servers).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ops_core::alert::AlertSink;
use ops_core::aws::iam::IamSimulator;
use ops_core::command::{ArgSpec, Command, CommandSet, CommandSpec, DOCTOR};
use ops_core::doctor;
use ops_core::events::{
    bounded_event_time, classify, ignored_event, not_a_lifecycle_hook, refuse_unscheduled,
    EventError, Incoming, SCHEDULED_EVENT,
};
use ops_core::time::utc_text;
use ops_core::Result;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::act::{store, Write};
use crate::config::MonitorConfig;
use crate::decide::{counts, decide, Health, Notice, TargetState};
use crate::meta::{self, Meta};
use crate::metrics::{run_line, target_line, MetricSink, RunCounts};
use crate::observe::{self, state_key, state_of, Clients, Stored, TARGET_PREFIX};
use crate::probe::{self, tls::TlsConfigs};
use crate::report::{alerts_covering, config_alert, not_checked_alert, Change};
use crate::targets::Target;

/// status, check, doctor (and help).
pub const COMMANDS: CommandSet = CommandSet {
    commands: &[
        CommandSpec {
            name: "status",
            usage: "{target?}",
            summary: "what the monitor believes about each target (no check is run)",
            args: &[ArgSpec {
                name: "target",
                required: false,
                help: "one target's name; all when omitted",
            }],
        },
        CommandSpec {
            name: "check",
            usage: "{target}",
            summary:
                "check one target now and show what it answers (changes no state, sends no alert)",
            args: &[ArgSpec {
                name: "target",
                required: true,
                help: "the target's name",
            }],
        },
        CommandSpec {
            name: "mute",
            usage: "{target, for, reason}",
            summary: "hold back a target's alerts for a while (it is still checked and measured); one alert when it ends says what was held back",
            args: &[
                ArgSpec {
                    name: "target",
                    required: true,
                    help: "the target's name",
                },
                ArgSpec {
                    name: "for",
                    required: true,
                    help: "how long, like 30m or 2h (1m to 168h)",
                },
                ArgSpec {
                    name: "reason",
                    required: true,
                    help: "why, shown in status and in the alert when it ends",
                },
            ],
        },
        CommandSpec {
            name: "unmute",
            usage: "{target}",
            summary: "end a target's mute (or its open maintenance window) now",
            args: &[ArgSpec {
                name: "target",
                required: true,
                help: "the target's name",
            }],
        },
        DOCTOR,
    ],
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetArgs {
    target: Option<String>,
}

/// What the handler works with, built once at start.
pub struct Deps<A, M> {
    /// AWS adapters.
    pub clients: Clients,
    /// IAM's policy simulator, for `doctor`.
    pub iam: IamSimulator,
    /// Where alerts go.
    pub alerts: A,
    /// Where metric lines go.
    pub metrics: M,
    /// TLS setups for HTTPS checks.
    pub tls: Arc<TlsConfigs>,
    /// Configuration.
    pub config: MonitorConfig,
}

/// Per-invocation facts: the clock (a schedule carries its own time).
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// Now, in epoch seconds.
    pub now: u64,
}

/// Handle one invocation with no deadline known: every target is checked.
pub async fn function_handler<A: AlertSink, M: MetricSink>(
    payload: Value,
    invocation: &Invocation,
    deps: &Deps<A, M>,
) -> Result<Value> {
    function_handler_within(payload, invocation, None, deps).await
}

/// Handle one invocation that must end by `deadline_ms` (epoch milliseconds, Lambda's
/// `Context.deadline`); the JSON is what the caller sees. A scheduled run starts a check only
/// while it can finish before the deadline less a margin (see [`checks_until`]).
pub async fn function_handler_within<A: AlertSink, M: MetricSink>(
    payload: Value,
    invocation: &Invocation,
    deadline_ms: Option<u64>,
    deps: &Deps<A, M>,
) -> Result<Value> {
    match classify(payload)? {
        Incoming::Event {
            detail_type,
            source,
            raw,
        } if detail_type == SCHEDULED_EVENT => {
            // Only the schedule starts a run, and never from the future: a tick recorded as the
            // newest run would make every real run until its time a "late" one.
            refuse_unscheduled(&source, "a health run")?;
            let now = bounded_event_time(&raw, invocation.now, deps.config.common.schedule_lead)?;
            run(now, invocation.now, deadline_ms, deps).await
        }
        Incoming::Event { detail_type, .. } => {
            debug!(detail_type, "event type not handled");
            Ok(ignored_event("legacy-health-monitor", &detail_type))
        }
        Incoming::Command(raw) => {
            on_command(
                COMMANDS.parse(&deps.config.common.function_name, &raw)?,
                invocation.now,
                deps,
            )
            .await
        }
        Incoming::LifecycleHook(_) => Err(not_a_lifecycle_hook("legacy-health-monitor").into()),
        Incoming::AlarmAction(_) => Err(EventError::Unrecognised(
            "legacy-health-monitor does not handle CloudWatch alarm actions".into(),
        )
        .into()),
    }
}

/// The time left for checks: the invocation's deadline less a margin for what follows them
/// (state writes, alerts): a tenth of the time left, at least [`MIN_MARGIN`], at most
/// [`MAX_MARGIN`]. `None`: no deadline known (tests, local runs), every target is checked.
pub fn checks_until(deadline_ms: Option<u64>) -> Option<Instant> {
    let deadline_ms = deadline_ms?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    let margin = (left / 10).clamp(MIN_MARGIN, MAX_MARGIN);
    Some(Instant::now() + left.saturating_sub(margin))
}

/// The least time kept after the checks for state writes and alerts.
pub const MIN_MARGIN: Duration = Duration::from_millis(500);
/// The most time kept after the checks for state writes and alerts.
pub const MAX_MARGIN: Duration = Duration::from_secs(3);
/// How many names an alert about targets not checked lists; the rest are counted.
const NOT_CHECKED_LISTED: usize = 25;

/// The order targets are checked in when time may run short: first those the last run could not
/// check (so no target is skipped twice in a row while others are checked twice), then those down
/// or failing (an outage in progress, or a recovery), then the rest, each in configuration order.
fn check_order(targets: &[Target], stored: &Stored, meta: &Meta, now: u64) -> Vec<usize> {
    let mut order: Vec<(u8, usize)> = targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let (state, _) = state_of(stored, &target.name, now);
            let class = if meta.not_checked.contains(&target.name) {
                0
            } else if state.health == Health::Down || state.failures > 0 {
                1
            } else {
                2
            };
            (class, index)
        })
        .collect();
    order.sort();
    order.into_iter().map(|(_, index)| index).collect()
}

/// Until when (epoch seconds on the invocation's clock `wall`) a run owns what it records: its
/// deadline, or [`LEASE_WITHOUT_DEADLINE`] from now when none is known.
fn lease_until(wall: u64, deadline_ms: Option<u64>) -> u64 {
    match deadline_ms {
        Some(deadline_ms) => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default();
            wall + deadline_ms.saturating_sub(now_ms).div_ceil(1000)
        }
        None => wall + LEASE_WITHOUT_DEADLINE,
    }
}

/// How long a run with no known deadline owns what it records: Lambda's longest timeout.
pub const LEASE_WITHOUT_DEADLINE: u64 = 900;

/// One scheduled run at schedule time `now`, invoked at `wall` (epoch seconds), ending by
/// `deadline_ms`; checks start only while they can finish before the deadline less a margin.
async fn run<A: AlertSink, M: MetricSink>(
    now: u64,
    wall: u64,
    deadline_ms: Option<u64>,
    deps: &Deps<A, M>,
) -> Result<Value> {
    let until = checks_until(deadline_ms).map(tokio::time::Instant::from_std);
    let lease = lease_until(wall, deadline_ms);
    let started = Instant::now();
    let config = &deps.config;
    let loaded = observe::targets(config, &deps.clients).await?;
    let invalid: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    for error in &invalid {
        warn!(error = %error, "target entry skipped");
    }
    let names: Vec<String> = loaded.targets.iter().map(|t| t.name.clone()).collect();
    // The states come first: they decide which targets are checked first if time runs short.
    let stored = observe::read_states(&deps.clients.states, &names).await?;
    let start = meta::start(
        &deps.clients.states,
        stored.meta.as_ref(),
        &invalid,
        now,
        wall,
        lease,
        stored.migrating,
    )
    .await?;
    if !start.counts {
        info!(
            at = now,
            last_run = start.meta.last_run,
            "a run at this time or later already ran (a duplicate or late delivery): nothing is checked"
        );
    }
    // A target whose state a run at this time or later already changed is not checked again
    // (see `decide::counts`), nor is any target when the whole run is a duplicate or late; nor is
    // one whose alerts another run recorded and is sending (it is left to that run).
    let held = |state: &TargetState| !state.pending.is_empty() && state.claimed_until > wall;
    let counted: Vec<bool> = loaded
        .targets
        .iter()
        .map(|t| start.counts && counts(&state_of(&stored, &t.name, now).0, now))
        .collect();
    let order: Vec<usize> = check_order(&loaded.targets, &stored, &start.meta, now)
        .into_iter()
        .filter(|&index| {
            counted[index] && !held(&state_of(&stored, &loaded.targets[index].name, now).0)
        })
        .collect();
    let checking = Instant::now();
    let outcomes = probe::check_within(
        &loaded.targets,
        &order,
        deps.tls.clone(),
        config.concurrency,
        until,
    )
    .await;
    let check_ms = checking.elapsed().as_millis() as u64;

    let mut states: BTreeMap<String, (TargetState, Option<u64>)> = BTreeMap::new();
    let mut writes = Vec::new();
    let mut not_checked = Vec::new();
    let mut already_counted = Vec::new();
    let mut lost_races = Vec::new();
    let at_millis = now * 1000;
    for ((target, outcome), counts) in loaded.targets.iter().zip(&outcomes).zip(&counted) {
        let (previous, version) = state_of(&stored, &target.name, now);
        if held(&previous) {
            // Another run recorded alerts for it and is sending them: leave the target to it, so
            // the alerts go out once (this run's check, if any, is not counted).
            info!(target = %target.name, "another run is alerting this target; leaving it to that run");
            lost_races.push(target.name.clone());
            continue;
        }
        let mut next = if !counts {
            // Its state stands as stored (unsent alerts are still sent).
            already_counted.push(target.name.clone());
            previous.clone()
        } else if let Some(outcome) = outcome {
            deps.metrics.emit(target_line(
                &config.namespace,
                &target.name,
                outcome,
                at_millis,
            ));
            decide(target, &previous, outcome, now)
        } else {
            // Not checked in time: its state stands as stored (unsent alerts are still sent), but
            // a mute that is due ends: its end tells the health as last recorded, no check needed.
            not_checked.push(target.name.clone());
            let mut next = previous.clone();
            crate::mute::end_if_due(&target.maintenance, &target.source, &mut next, now);
            next
        };
        if version.is_none() && !(*counts && outcome.is_some()) {
            continue;
        }
        if !next.pending.is_empty() {
            // This run sends them, until its deadline: recorded with them, in the same write.
            next.claimed_until = lease;
        }
        if next != previous || version.is_none() {
            writes.push(Write {
                key: state_key(&target.name),
                document: serde_json::to_string(&next).expect("a state serializes"),
                expected: version,
            });
        }
        states.insert(target.name.clone(), (next, version));
    }
    if !not_checked.is_empty() {
        warn!(
            not_checked = not_checked.len(),
            of = loaded.targets.len(),
            "targets not checked: the invocation's deadline left no room for their timeouts"
        );
    }
    let name_of = |key: &str| key.strip_prefix(TARGET_PREFIX).unwrap_or(key).to_string();
    let mut retry = None;
    // The targets whose unsent alerts this run recorded (and so owns): only those it sends.
    let mut owned = std::collections::BTreeSet::new();
    for (key, result) in store(&deps.clients.states, writes).await {
        let name = name_of(&key);
        match result {
            Ok(Some(version)) => {
                if let Some(entry) = states.get_mut(&name) {
                    entry.1 = Some(version);
                    if !entry.0.pending.is_empty() {
                        owned.insert(name);
                    }
                }
            }
            Ok(None) => {
                // Another run stored this target first: its view stands, and it alerts.
                info!(target = %name, "another run updated this target first; leaving it to that run");
                states.remove(&name);
                lost_races.push(name);
            }
            Err(error) => {
                warn!(target = %name, %error, "state not stored");
                states.remove(&name);
                retry = Some(error);
            }
        }
    }

    let changes: Vec<(Change, String, usize)> = loaded
        .targets
        .iter()
        .filter(|t| owned.contains(&t.name))
        .filter_map(|t| states.get(&t.name).map(|(s, _)| (t, s)))
        .flat_map(|(target, state)| {
            state
                .pending
                .iter()
                .enumerate()
                .map(move |(position, notice)| {
                    (
                        Change {
                            target: target.name.clone(),
                            check: target.describe(),
                            source: target.source.clone(),
                            notice: notice.clone(),
                        },
                        target.name.clone(),
                        position,
                    )
                })
        })
        .collect();
    for (change, _, _) in &changes {
        if change.notice.is_down() {
            warn!(target = %change.target, notice = ?change.notice, "target down");
        } else {
            info!(target = %change.target, notice = ?change.notice, "target changed");
        }
    }
    let to_send: Vec<Change> = changes.iter().map(|(c, _, _)| c.clone()).collect();
    let function = &config.common.function_name;
    // Each alert with what it tells: changes (by index), the config, or this run's report.
    enum Tells {
        Changes(Vec<usize>),
        Config,
        Run,
    }
    let mut outgoing: Vec<(ops_core::alert::Alert, Tells)> =
        alerts_covering(function, &to_send, config.collate_above)
            .into_iter()
            .map(|(alert, covered)| (alert, Tells::Changes(covered)))
            .collect();
    if start.owns_config {
        outgoing.push((config_alert(function, &start.meta.errors), Tells::Config));
    }
    if !not_checked.is_empty() {
        outgoing.push((
            not_checked_alert(
                function,
                &not_checked,
                loaded.targets.len(),
                NOT_CHECKED_LISTED,
            ),
            Tells::Run,
        ));
    }
    // Send one by one; after a failure send no more, and record exactly what went out.
    let mut sent_changes = vec![false; changes.len()];
    let mut config_sent = false;
    let mut publish_failed = false;
    for (alert, tells) in &outgoing {
        if let Err(error) = deps.alerts.publish(alert).await {
            warn!(%error, event_type = %alert.event_type, "alert not sent; it and the ones after it are sent by a later run");
            retry = Some(error);
            publish_failed = true;
            break;
        }
        match tells {
            Tells::Changes(covered) => covered.iter().for_each(|&i| sent_changes[i] = true),
            Tells::Config => config_sent = true,
            Tells::Run => {}
        }
    }
    // Mark what was sent (and give up the claim on what was not, so the next run sends it).
    let released: Vec<Write> = owned
        .iter()
        .filter_map(|name| {
            let (state, version) = states.get(name)?;
            let unsent: Vec<Notice> = changes
                .iter()
                .zip(&sent_changes)
                .filter(|((_, owner, _), sent)| owner == name && !**sent)
                .map(|((_, _, position), _)| state.pending[*position].clone())
                .collect();
            let done = TargetState {
                pending: unsent,
                claimed_until: 0,
                ..state.clone()
            };
            Some(Write {
                key: state_key(name),
                document: serde_json::to_string(&done).expect("a state serializes"),
                expected: *version,
            })
        })
        .collect();
    for (key, result) in store(&deps.clients.states, released).await {
        match result {
            Ok(Some(_)) => {}
            Ok(None) => {
                warn!(key = %key, "the alert state changed under this run; it may be sent again")
            }
            Err(error) => {
                warn!(key = %key, %error, "alert sent but not marked as sent; it may be sent again");
                retry = Some(error);
            }
        }
    }
    // The bookkeeping: what this run could not check, the config alert sent (or its claim given
    // up), and (while migrating) the move done, only once every target's state is stored under
    // its new key.
    let all_stored = start.counts && retry.is_none() && not_checked.is_empty();
    let alerted_errors = start.meta.errors.clone();
    let finished = meta::finish(&deps.clients.states, &start, |m: &mut Meta| {
        let mut changed = false;
        if start.counts && m.last_run == Some(now) && m.not_checked != not_checked {
            m.not_checked = not_checked.clone();
            changed = true;
        }
        if start.owns_config && m.config_pending && m.errors == alerted_errors {
            m.config_pending = !config_sent;
            m.config_claimed_until = 0;
            changed = true;
        }
        if stored.migrating && all_stored && !m.migrated {
            m.migrated = true;
            changed = true;
        }
        changed
    })
    .await;
    if let Err(error) = finished {
        warn!(%error, "bookkeeping not stored; the config alert may be sent again");
        retry = Some(error);
    }
    if publish_failed {
        warn!("an alert could not be sent: the run fails so that it is retried");
    }

    let down: Vec<String> = states
        .iter()
        .filter(|(_, (s, _))| s.health == Health::Down)
        .map(|(name, _)| name.clone())
        .collect();
    let counts = RunCounts {
        checked: outcomes.iter().filter(|o| o.is_some()).count(),
        down: down.len(),
        invalid: invalid.len(),
        run_ms: started.elapsed().as_millis() as u64,
    };
    deps.metrics
        .emit(run_line(&config.namespace, &counts, at_millis));
    info!(
        checked = counts.checked,
        not_checked = not_checked.len(),
        already_counted = already_counted.len(),
        down = counts.down,
        invalid = counts.invalid,
        changes = changes.len(),
        run_ms = counts.run_ms,
        "run finished"
    );
    if let Some(error) = retry {
        return Err(error);
    }
    let mut answer = json!({
        "status": "checked",
        "checked": counts.checked,
        "not_checked_in_time": not_checked,
        "already_counted": already_counted,
        "healthy_now": outcomes.iter().flatten().filter(|o| o.healthy()).count(),
        "down": down,
        "changes": changes.iter().map(|(c, _, _)| json!({"target": c.target, "notice": c.notice})).collect::<Vec<_>>(),
        "invalid_entries": invalid,
        "left_to_another_run": lost_races,
        "check_ms": check_ms,
        "run_ms": counts.run_ms,
    });
    if !start.counts {
        answer["status"] = json!("ignored");
        answer["reason"] = json!(format!(
            "a run for {} or later already ran (this delivery is a duplicate or late): nothing was checked or counted again; unsent alerts were sent",
            start.meta.last_run.map(utc_text).unwrap_or_default()
        ));
    }
    Ok(answer)
}

async fn on_command<A: AlertSink, M: MetricSink>(
    command: Command,
    now: u64,
    deps: &Deps<A, M>,
) -> Result<Value> {
    if command.name == "help" {
        return Ok(
            json!({ "status": "help", "help": COMMANDS.help(&deps.config.common.function_name) }),
        );
    }
    if command.name == "doctor" {
        return Ok(doctor::conclude(
            &deps.config.common,
            crate::doctor::examine(&deps.config, &deps.clients).await,
            &deps.iam,
            &deps.alerts,
        )
        .await);
    }
    let loaded = observe::targets(&deps.config, &deps.clients).await?;
    match command.name.as_str() {
        "mute" => {
            return crate::mute_commands::mute(&command, &loaded.targets, &deps.clients, now).await
        }
        "unmute" => {
            return crate::mute_commands::unmute(&command, &loaded.targets, &deps.clients, now)
                .await
        }
        _ => {}
    }
    let args: TargetArgs = command.args_as()?;
    let chosen: Vec<&Target> = match &args.target {
        Some(name) => vec![crate::targets::find(&loaded.targets, name)?],
        None => loaded.targets.iter().collect(),
    };
    if command.name == "check" {
        let target = chosen[0];
        let outcome = probe::check(target, &deps.tls).await;
        return Ok(json!({
            "status": "checked",
            "target": target.name,
            "check": target.describe(),
            "healthy": outcome.healthy(),
            "outcome": outcome,
            "note": "a check from chat changes no state and sends no alert",
        }));
    }
    let names: Vec<String> = chosen.iter().map(|t| t.name.clone()).collect();
    let stored = observe::read_states(&deps.clients.states, &names).await?;
    let targets: Vec<Value> = chosen
        .iter()
        .map(|target| {
            let (state, version) = state_of(&stored, &target.name, now);
            json!({
                "target": target.name,
                "check": target.describe(),
                "health": if version.is_some() { json!(state.health) } else { json!("never checked") },
                "since": utc_text(state.since),
                "failures_in_a_row": state.failures,
                "successes_in_a_row": state.successes,
                "flapping_since": state.flapping_since.map(utc_text),
                "flapping_rule": match (&target.flap_off, crate::decide::flap_threshold(target)) {
                    (Some(why), _) => why.clone(),
                    (None, None) => "off (flap_share 0)".to_string(),
                    (None, Some(threshold)) => format!(
                        "{threshold} of {} runs failed ({}%)",
                        target.flap_window, target.flap_share
                    ),
                },
                "failed_in_window": if state.health == crate::decide::Health::Down {
                    "not counted while down".to_string()
                } else {
                    format!(
                        "{} of the last {} runs",
                        crate::decide::failed_in_window(target, &state),
                        crate::decide::runs_in_window(target, &state)
                    )
                },
                "muted": state.mute.as_ref().map(|m| json!({
                    "by": m.by,
                    "reason": m.reason,
                    "since": utc_text(m.since),
                    "until": utc_text(m.until),
                    "lifted_by": m.lifted_by,
                    "held_back": m.held_count,
                    "note": crate::mute::mute_note(&target.maintenance, &state, now),
                })),
                "maintenance": target.maintenance.iter().map(crate::mute::Window::describe).collect::<Vec<_>>(),
                "next_maintenance": crate::mute::next_window(&target.maintenance, now)
                    .map(|(start, end, _)| format!("{} to {}", utc_text(start), utc_text(end))),
                "configured_in": target.source,
            })
        })
        .collect();
    Ok(json!({
        "status": "ok",
        "targets": targets,
        "invalid_entries": loaded.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_samples_in_events_are_valid_commands() {
        for (file, name) in [
            ("chat-health-status.json", "status"),
            ("chat-health-check.json", "check"),
        ] {
            let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
            let sample: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let command = COMMANDS
                .parse("legacy-health-monitor", &sample)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(command.name, name);
            let args: TargetArgs = command.args_as().unwrap();
            assert_eq!(args.target.as_deref(), Some("billing"));
        }
        let path = format!(
            "{}/../../events/chat-health-mute.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let command = COMMANDS.parse("legacy-health-monitor", &sample).unwrap();
        assert_eq!(
            (command.name.as_str(), command.requested_by.as_deref()),
            ("mute", Some("alice"))
        );
        assert_eq!(command.args["for"], "2h");
    }

    #[test]
    fn check_needs_a_target_and_unknown_arguments_are_refused() {
        let error = COMMANDS
            .parse("legacy-health-monitor", &json!({"command": "check"}))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "command `check`: missing argument `target` (the target's name)"
        );
        let error = COMMANDS
            .parse(
                "legacy-health-monitor",
                &json!({"command": "status", "args": {"host": "x"}}),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "command `status`: unknown argument `host`; it takes target"
        );
    }
}
