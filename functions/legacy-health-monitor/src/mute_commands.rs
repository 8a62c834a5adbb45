//! `mute` and `unmute` from chat: read the target's state, set or lift its mute ([`crate::mute`]),
//! and write it back only if no run wrote it since (read again and retried when one did).
//!
//! A run that has recorded alerts for the target and is sending them owns its state until its
//! deadline; a command then is answered with when to send it again, not queued: writing under
//! that run would make it unable to record its alerts as sent, and they would go out twice. A
//! target no run has recorded yet is refused too: its first state, and the time it was first
//! seen, are a run's to write.

use ops_core::command::{Command, CommandError};
use ops_core::time::{duration_text, parse_duration, utc_text};
use ops_core::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::info;

use crate::decide::TargetState;
use crate::mute::{self, check_reason, MAX_MUTE, MIN_MUTE};
use crate::observe::{self, state_key, state_of, Clients};
use crate::targets::{find, Target};

/// Writes tried when runs keep writing the target's state between the read and the write.
const ATTEMPTS: usize = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteArgs {
    target: Value,
    #[serde(rename = "for")]
    duration: Value,
    reason: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnmuteArgs {
    target: Value,
}

/// Argument `name` of `command` as text, or an error that names it.
fn text_arg<'v>(command: &str, name: &str, value: &'v Value, like: &str) -> Result<&'v str> {
    value.as_str().ok_or_else(|| {
        CommandError::InvalidArgs {
            command: command.into(),
            reason: format!("argument `{name}` must be text, like {like}; got {value}"),
        }
        .into()
    })
}

/// `mute {target, for, reason}`.
pub async fn mute(
    command: &Command,
    targets: &[Target],
    clients: &Clients,
    now: u64,
) -> Result<Value> {
    let args: MuteArgs = command.args_as()?;
    let invalid = |reason: String| CommandError::InvalidArgs {
        command: "mute".into(),
        reason,
    };
    let target = find(
        targets,
        text_arg("mute", "target", &args.target, "\"billing\"")?,
    )?;
    let duration = text_arg("mute", "for", &args.duration, "\"2h\"")?;
    let seconds = parse_duration(duration, MIN_MUTE, MAX_MUTE)
        .map_err(|e| invalid(format!("argument `for`: {e}")))?;
    let reason = text_arg("mute", "reason", &args.reason, "\"db migration\"")?;
    let reason = check_reason(reason).map_err(|e| invalid(format!("argument `reason`: {e}")))?;
    let by = command.requester();
    let (before, after) = write_with(target, clients, now, command.dry_run, |state| {
        Ok(mute::mute_from_chat(state, &by, &reason, seconds, now))
    })
    .await?;
    let set = after.mute.as_ref().expect("a mute was just set");
    // Alerts recorded and not sent (their run could not send them) are held back with the rest:
    // said here, so the person muting knows what they hold.
    let unsent: Vec<String> = before
        .pending
        .iter()
        .map(|notice| {
            let kind = serde_json::to_value(notice).expect("a notice serializes")["kind"].clone();
            kind.as_str().unwrap_or_default().to_string()
        })
        .collect();
    Ok(json!({
        "status": if command.dry_run { "dry_run" } else { "muted" },
        "target": target.name,
        "muted": set.describe(),
        "until": utc_text(set.until),
        "for": duration_text(seconds),
        "health": mute::health_now(before.health, before.since, before.flapping_since),
        "held_back": set.held_count,
        "unsent_alerts_held": (!unsent.is_empty()).then(|| format!(
            "{} alert(s) about {} were recorded and not yet sent ({}: a run could not send them); they are held back with the rest and told when the mute ends",
            unsent.len(),
            target.name,
            unsent.join(", ")
        )),
        "replaces": before.mute.as_ref().map(mute::Mute::describe),
        "note": format!(
            "{} is still checked and its metrics go on; its alerts are held back until {}, then one alert says who muted it, why, what was held back and how it is (`unmute` ends it sooner)",
            target.name,
            utc_text(set.until)
        ),
    }))
}

/// `unmute {target}`: a mute ends at the next run; a maintenance window open now is skipped to
/// its end (also when no run has begun its mute yet).
pub async fn unmute(
    command: &Command,
    targets: &[Target],
    clients: &Clients,
    now: u64,
) -> Result<Value> {
    let args: UnmuteArgs = command.args_as()?;
    let target = find(
        targets,
        text_arg("unmute", "target", &args.target, "\"billing\"")?,
    )?;
    let by = command.requester();
    let (before, _) = write_with(target, clients, now, command.dry_run, |state| {
        if let Some(lifted_by) = state.mute.as_ref().and_then(|m| m.lifted_by.as_ref()) {
            return Err(Error::Refused(format!(
                "{}'s mute was already lifted by {lifted_by}; the next run alerts its end",
                target.name
            )));
        }
        mute::unmute_from_chat(state, &target.maintenance, &by, now).ok_or_else(|| {
            Error::Refused(format!(
                "{} is not muted and no maintenance window of it is open",
                target.name
            ))
        })
    })
    .await?;
    let window = mute::window_covering(&target.maintenance, now)
        .map(|(end, _)| {
            format!(
                "; the maintenance window open now stays lifted until it ends at {}",
                utc_text(end)
            )
        })
        .unwrap_or_default();
    let status = if command.dry_run {
        "dry_run"
    } else {
        "unmuted"
    };
    Ok(match before.mute.as_ref() {
        Some(lifted) => json!({
            "status": status,
            "target": target.name,
            "lifted": lifted.describe(),
            "held_back": lifted.held_count,
            "note": format!(
                "alerts for {} are sent as usual from the next run (within a minute), which first sends one alert with what was held back and how it is{window}",
                target.name
            ),
        }),
        // A window is open and no run has begun its mute yet: nothing was held back.
        None => json!({
            "status": status,
            "target": target.name,
            "lifted": "the maintenance window open now (no run had muted it yet)",
            "held_back": 0,
            "note": format!("alerts for {} are sent as usual{window}", target.name),
        }),
    })
}

/// Read `target`'s state, change it with `change`, and write it back if no run wrote it since;
/// the state before and after. `dry_run`: nothing is written.
async fn write_with(
    target: &Target,
    clients: &Clients,
    now: u64,
    dry_run: bool,
    change: impl Fn(&TargetState) -> Result<TargetState>,
) -> Result<(TargetState, TargetState)> {
    let names = [target.name.clone()];
    for _ in 0..ATTEMPTS {
        let stored = observe::read_states(&clients.states, &names).await?;
        if !stored.targets.contains_key(&target.name) {
            return Err(Error::Refused(format!(
                "{} has not been checked yet; its first run (within a minute) records it, then send the command again",
                target.name
            )));
        }
        let (state, version) = state_of(&stored, &target.name, now);
        if !state.pending.is_empty() && state.claimed_until > now {
            return Err(Error::Refused(format!(
                "a health run is sending {}'s alerts until {} at the latest; send the command again after that",
                target.name,
                utc_text(state.claimed_until)
            )));
        }
        let next = change(&state)?;
        if dry_run {
            return Ok((state, next));
        }
        let document = serde_json::to_string(&next).expect("a state serializes");
        if clients
            .states
            .put(&state_key(&target.name), &document, version)
            .await?
        {
            return Ok((state, next));
        }
        info!(target = %target.name, "a run wrote the target's state meanwhile; reading it again");
    }
    Err(Error::Refused(format!(
        "health runs kept writing {}'s state while this command tried {ATTEMPTS} times; send it again",
        target.name
    )))
}
