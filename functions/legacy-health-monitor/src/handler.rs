//! The handler: each scheduled run observes (targets, states), checks, decides, stores, emits
//! metrics and alerts; chat can ask for the status or for one check now.
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
    classify, event_time, ignored_event, EventError, Incoming, SCHEDULED_EVENT,
};
use ops_core::time::utc_text;
use ops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::act::{store, Write};
use crate::config::MonitorConfig;
use crate::decide::{decide, Health, TargetState};
use crate::metrics::{run_line, target_line, MetricSink, RunCounts};
use crate::observe::{self, state_key, state_of, Clients, Stored, META_KEY, TARGET_PREFIX};
use crate::probe::{self, tls::TlsConfigs};
use crate::report::{alerts, config_alert, not_checked_alert, Change};
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
    let until = checks_until(deadline_ms).map(tokio::time::Instant::from_std);
    match classify(payload)? {
        Incoming::Event {
            detail_type, raw, ..
        } if detail_type == SCHEDULED_EVENT => {
            let now = event_time(&raw, invocation.now)?;
            run(now, until, deps).await
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
        Incoming::AlarmAction(_) => Err(EventError::Unrecognised(
            "legacy-health-monitor does not handle CloudWatch alarm actions".into(),
        )
        .into()),
    }
}

/// The bookkeeping document (item `meta#config`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    /// The invalid entries last alerted.
    #[serde(default)]
    errors: Vec<String>,
    /// The targets the last run could not check in time: the next run checks them first.
    #[serde(default)]
    not_checked: Vec<String>,
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

/// One scheduled run; checks start only while they can finish by `until`.
async fn run<A: AlertSink, M: MetricSink>(
    now: u64,
    until: Option<tokio::time::Instant>,
    deps: &Deps<A, M>,
) -> Result<Value> {
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
    let meta: Meta = stored
        .meta
        .as_ref()
        .and_then(|m| serde_json::from_str(&m.document).ok())
        .unwrap_or_default();
    let order = check_order(&loaded.targets, &stored, &meta, now);
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
    let at_millis = now * 1000;
    for (target, outcome) in loaded.targets.iter().zip(&outcomes) {
        let (previous, version) = state_of(&stored, &target.name, now);
        let Some(outcome) = outcome else {
            // Not checked in time: its state stands as stored (unsent alerts are still sent).
            not_checked.push(target.name.clone());
            if version.is_some() {
                states.insert(target.name.clone(), (previous, version));
            }
            continue;
        };
        deps.metrics.emit(target_line(
            &config.namespace,
            &target.name,
            outcome,
            at_millis,
        ));
        let next = decide(target, &previous, outcome, now);
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
    let mut lost_races = Vec::new();
    for (key, result) in store(&deps.clients.states, writes).await {
        let name = name_of(&key);
        match result {
            Ok(Some(version)) => {
                if let Some(entry) = states.get_mut(&name) {
                    entry.1 = Some(version);
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

    let config_changed = meta.errors != invalid;
    let changes: Vec<(Change, String)> = loaded
        .targets
        .iter()
        .filter_map(|t| states.get(&t.name).map(|(s, _)| (t, s)))
        .flat_map(|(target, state)| {
            state.pending.iter().map(move |notice| {
                (
                    Change {
                        target: target.name.clone(),
                        check: target.describe(),
                        source: target.source.clone(),
                        notice: notice.clone(),
                    },
                    target.name.clone(),
                )
            })
        })
        .collect();
    for (change, _) in &changes {
        if change.notice.is_down() {
            warn!(target = %change.target, notice = ?change.notice, "target down");
        } else {
            info!(target = %change.target, notice = ?change.notice, "target changed");
        }
    }
    let to_send: Vec<Change> = changes.iter().map(|(c, _)| c.clone()).collect();
    let function = &config.common.function_name;
    let mut outgoing = alerts(function, &to_send, config.collate_above);
    if config_changed {
        outgoing.push(config_alert(function, &invalid));
    }
    if !not_checked.is_empty() {
        outgoing.push(not_checked_alert(
            function,
            &not_checked,
            loaded.targets.len(),
            NOT_CHECKED_LISTED,
        ));
    }
    for alert in &outgoing {
        deps.alerts.publish(alert).await?;
    }
    // Everything alerted: clear what was pending, and remember the invalid entries alerted.
    let mut cleared: Vec<Write> = changes
        .iter()
        .map(|(_, name)| name.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|name| {
            let (state, version) = states.get(&name)?;
            let done = TargetState {
                pending: Vec::new(),
                ..state.clone()
            };
            Some(Write {
                key: state_key(&name),
                document: serde_json::to_string(&done).expect("a state serializes"),
                expected: *version,
            })
        })
        .collect();
    let next_meta = Meta {
        errors: invalid.clone(),
        not_checked: not_checked.clone(),
    };
    // While migrating, `meta#config` marks the move done: only once every state is stored.
    let migrated = stored.migrating && retry.is_none();
    if next_meta != meta || migrated {
        cleared.push(Write {
            key: META_KEY.into(),
            document: serde_json::to_string(&next_meta).expect("bookkeeping serializes"),
            expected: stored.meta.as_ref().and_then(|m| m.version),
        });
    }
    for (key, result) in store(&deps.clients.states, cleared).await {
        match result {
            Err(error) => {
                warn!(key = %key, %error, "alert sent but not marked as sent; it may be sent again");
                retry = Some(error);
            }
            Ok(None) if key == META_KEY => {
                info!("another run updated the bookkeeping first");
            }
            _ => {}
        }
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
        down = counts.down,
        invalid = counts.invalid,
        changes = changes.len(),
        run_ms = counts.run_ms,
        "run finished"
    );
    if let Some(error) = retry {
        return Err(error);
    }
    Ok(json!({
        "status": "checked",
        "checked": counts.checked,
        "not_checked_in_time": not_checked,
        "healthy_now": outcomes.iter().flatten().filter(|o| o.healthy()).count(),
        "down": down,
        "changes": changes.iter().map(|(c, _)| json!({"target": c.target, "notice": c.notice})).collect::<Vec<_>>(),
        "invalid_entries": invalid,
        "left_to_another_run": lost_races,
        "check_ms": check_ms,
        "run_ms": counts.run_ms,
    }))
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
    let args: TargetArgs = command.args_as()?;
    let loaded = observe::targets(&deps.config, &deps.clients).await?;
    let chosen: Vec<&Target> = match &args.target {
        Some(name) => vec![loaded
            .targets
            .iter()
            .find(|t| t.name == name.trim())
            .ok_or_else(|| Error::NotFound {
                kind: "health target",
                name: name.clone(),
            })?],
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
