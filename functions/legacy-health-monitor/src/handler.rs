//! The handler: each scheduled run observes (targets, states), checks, decides, stores, emits
//! metrics and alerts; chat can ask for the status or for one check now.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ops_core::alert::AlertSink;
use ops_core::aws::iam::IamSimulator;
use ops_core::command::{ArgSpec, Command, CommandSet, CommandSpec, DOCTOR};
use ops_core::doctor;
use ops_core::events::{
    classify, event_time, ignored_event, EventError, Incoming, SCHEDULED_EVENT,
};
use ops_core::time::utc_text;
use ops_core::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::act::{store, Write};
use crate::config::MonitorConfig;
use crate::decide::{decide, Health, TargetState};
use crate::metrics::{run_line, target_line, MetricSink, RunCounts};
use crate::observe::{self, state_of, Clients, CONFIG_KEY};
use crate::probe::{self, tls::TlsConfigs};
use crate::report::{alerts, config_alert, Change};
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

/// Handle one invocation; the JSON is what the caller sees.
pub async fn function_handler<A: AlertSink, M: MetricSink>(
    payload: Value,
    invocation: &Invocation,
    deps: &Deps<A, M>,
) -> Result<Value> {
    match classify(payload)? {
        Incoming::Event {
            detail_type, raw, ..
        } if detail_type == SCHEDULED_EVENT => {
            let now = event_time(&raw, invocation.now)?;
            run(now, deps).await
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

/// One scheduled run.
async fn run<A: AlertSink, M: MetricSink>(now: u64, deps: &Deps<A, M>) -> Result<Value> {
    let started = Instant::now();
    let config = &deps.config;
    let loaded = observe::targets(config, &deps.clients).await?;
    let invalid: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    for error in &invalid {
        warn!(error = %error, "target entry skipped");
    }
    let mut keys: Vec<String> = loaded.targets.iter().map(|t| t.name.clone()).collect();
    keys.push(CONFIG_KEY.to_string());
    // The stored states are read while the checks run: neither needs the other.
    let checks = async {
        let checking = Instant::now();
        let outcomes =
            probe::check_all(&loaded.targets, deps.tls.clone(), config.concurrency).await;
        (outcomes, checking.elapsed().as_millis() as u64)
    };
    let (stored, (outcomes, check_ms)) = tokio::join!(deps.clients.states.get_many(&keys), checks);
    let stored = stored?;

    let mut states: BTreeMap<String, (TargetState, Option<u64>)> = BTreeMap::new();
    let mut writes = Vec::new();
    let at_millis = now * 1000;
    for (target, outcome) in loaded.targets.iter().zip(&outcomes) {
        deps.metrics.emit(target_line(
            &config.namespace,
            &target.name,
            outcome,
            at_millis,
        ));
        let (previous, version) = state_of(&stored, &target.name, now);
        let next = decide(target, &previous, outcome, now);
        if next != previous || version.is_none() {
            writes.push(Write {
                key: target.name.clone(),
                document: serde_json::to_string(&next).expect("a state serializes"),
                expected: version,
            });
        }
        states.insert(target.name.clone(), (next, version));
    }
    let mut retry = None;
    let mut lost_races = Vec::new();
    for (key, result) in store(&deps.clients.states, writes).await {
        match result {
            Ok(Some(version)) => {
                if let Some(entry) = states.get_mut(&key) {
                    entry.1 = Some(version);
                }
            }
            Ok(None) => {
                // Another run stored this target first: its view stands, and it alerts.
                info!(target = %key, "another run updated this target first; leaving it to that run");
                states.remove(&key);
                lost_races.push(key);
            }
            Err(error) => {
                warn!(target = %key, %error, "state not stored");
                states.remove(&key);
                retry = Some(error);
            }
        }
    }

    let config_changed = config_errors_changed(&stored, &invalid);
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
    for alert in alerts(&config.common.function_name, &to_send, config.collate_above) {
        deps.alerts.publish(&alert).await?;
    }
    if config_changed {
        deps.alerts
            .publish(&config_alert(&config.common.function_name, &invalid))
            .await?;
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
                key: name,
                document: serde_json::to_string(&done).expect("a state serializes"),
                expected: *version,
            })
        })
        .collect();
    if config_changed {
        cleared.push(Write {
            key: CONFIG_KEY.into(),
            document: json!({ "errors": invalid }).to_string(),
            expected: stored.get(CONFIG_KEY).map(|v| v.version),
        });
    }
    for (key, result) in store(&deps.clients.states, cleared).await {
        if let Err(error) = result {
            warn!(target = %key, %error, "alert sent but not marked as sent; it may be sent again");
            retry = Some(error);
        }
    }

    let down: Vec<String> = states
        .iter()
        .filter(|(_, (s, _))| s.health == Health::Down)
        .map(|(name, _)| name.clone())
        .collect();
    let counts = RunCounts {
        checked: loaded.targets.len(),
        down: down.len(),
        invalid: invalid.len(),
        run_ms: started.elapsed().as_millis() as u64,
    };
    deps.metrics
        .emit(run_line(&config.namespace, &counts, at_millis));
    info!(
        checked = counts.checked,
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
        "healthy_now": outcomes.iter().filter(|o| o.healthy()).count(),
        "down": down,
        "changes": changes.iter().map(|(c, _)| json!({"target": c.target, "notice": c.notice})).collect::<Vec<_>>(),
        "invalid_entries": invalid,
        "left_to_another_run": lost_races,
        "check_ms": check_ms,
        "run_ms": counts.run_ms,
    }))
}

/// Whether the invalid entries differ from those last alerted.
fn config_errors_changed(
    stored: &BTreeMap<String, ops_core::aws::dynamodb::Versioned>,
    invalid: &[String],
) -> bool {
    let last: Vec<String> = stored
        .get(CONFIG_KEY)
        .and_then(|v| serde_json::from_str::<Value>(&v.document).ok())
        .and_then(|d| serde_json::from_value(d["errors"].clone()).ok())
        .unwrap_or_default();
    last != invalid
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
    let keys: Vec<String> = chosen.iter().map(|t| t.name.clone()).collect();
    let stored = deps.clients.states.get_many(&keys).await?;
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
