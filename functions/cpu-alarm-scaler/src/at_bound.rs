//! Act on at-bound episodes ([`crate::episode`] decides): record each step under a claim of this
//! invocation, alert it once, and record that it was alerted.
//!
//! A step is written to `ops:scale-at-bound` with the invocation's claim and re-read; only the
//! invocation whose claim is still there goes on. Then `ops:scale-at-bound-said` (the last start or
//! end alerted) decides whether the alert is still owed: an invocation that decided on an older
//! view and wrote its claim over an episode another one had already alerted finds the start (or
//! the end) said, and records it without alerting again. A start is marked alerted after its alert,
//! an end removes the episode after its alert, so a run that stops in between leaves the alert to
//! the next look. Only two invocations whose writes and re-reads all come before either alerts both
//! alert, as for scalings ([`crate::decide::Record`]).

use std::collections::BTreeMap;

use ops_core::alert::AlertSink;
use ops_core::Result;
use tracing::info;

use crate::act::apply;
use crate::contract::{self, AtBound, EpisodeState, Memory, Said};
use crate::decide::{Action, AlarmView, TargetView};
use crate::episode::{hand_over, EpisodeStep};
use crate::handler::{new_claim, Deps};
use crate::observe::{alarm_view, memory_of};
use crate::report::{at_bound_alert, at_bound_ended_alert};

/// Take `steps` for `target` (as this look left it). An episode that would end alone is handed
/// over instead when another alarm in ALARM (`firing`, read from CloudWatch when not given) still
/// holds the target at the same bound. With `told`, this look's scaling alert said the target
/// stopped at its bound, so an episode it begins is recorded as alerted without another alert.
pub async fn follow_episode<A: AlertSink>(
    target: &TargetView,
    steps: Vec<EpisodeStep>,
    firing: Option<&[AlarmView]>,
    told: bool,
    now: u64,
    deps: &Deps<A>,
) -> Result<()> {
    let steps = match &steps[..] {
        [EpisodeStep::End { episode, .. }] => {
            let read;
            let firing = match firing {
                Some(firing) => firing,
                None => {
                    let alarms = deps.clients.alarms.tagged(contract::TARGET, true).await?;
                    read = alarms
                        .iter()
                        .filter_map(|a| alarm_view(a).ok())
                        .collect::<Vec<_>>();
                    &read
                }
            };
            match hand_over(episode, firing, target, now, deps.config.coexistence) {
                Some(episode) => vec![EpisodeStep::Keep { episode }],
                None => steps,
            }
        }
        _ => steps,
    };
    for step in steps {
        take(target, step, told, now, deps).await?;
    }
    Ok(())
}

async fn take<A: AlertSink>(
    target: &TargetView,
    step: EpisodeStep,
    told: bool,
    now: u64,
    deps: &Deps<A>,
) -> Result<()> {
    let who = &target.target;
    let function = &deps.config.common.function_name;
    let claim = Some(new_claim());
    let mine = |episode: AtBound, state| AtBound {
        state,
        claim: claim.clone(),
        ..episode
    };
    match step {
        EpisodeStep::Begin { episode, scaling } => {
            let episode = mine(episode, EpisodeState::Open);
            let Some(memory) = claim_episode(target, &episode, deps).await? else {
                return Ok(());
            };
            let said = memory
                .said
                .filter(|said| !said.end && said.id == episode.id);
            let alerted = AtBound {
                state: EpisodeState::Alerted,
                since: said.as_ref().map_or(episode.since, |s| s.since),
                ..episode
            };
            if said.is_none() && !told {
                deps.alerts
                    .publish(&at_bound_alert(function, who, &alerted, &scaling))
                    .await?;
                info!(target = %who, alarm = %alerted.alarm, "held at its {}: alerted", alerted.bound.name());
            } else {
                info!(target = %who, alarm = %alerted.alarm, "held at its {}: alerted already (or by the scaling)", alerted.bound.name());
            }
            apply(
                &deps.clients,
                &remember(target, Some(&alerted), Some(alerted.started())),
            )
            .await?;
        }
        EpisodeStep::Keep { episode } => {
            info!(target = %who, alarm = %episode.alarm, at = episode.at, "still held at its {}", episode.bound.name());
            apply(
                &deps.clients,
                &remember(target, Some(&episode), Some(episode.started())),
            )
            .await?;
        }
        EpisodeStep::End {
            episode,
            alarm,
            why,
        } => {
            let episode = mine(episode, EpisodeState::Ending);
            let Some(memory) = claim_episode(target, &episode, deps).await? else {
                return Ok(());
            };
            if memory.said.as_ref() != Some(&episode.ended()) {
                deps.alerts
                    .publish(&at_bound_ended_alert(
                        function, who, &episode, &alarm, &why, now,
                    ))
                    .await?;
                apply(
                    &deps.clients,
                    &remember(target, None, Some(episode.ended())),
                )
                .await?;
                info!(target = %who, alarm = %alarm, "no longer held at its {}: {why}", episode.bound.name());
            }
            apply(
                &deps.clients,
                &Action::Forget {
                    target: who.clone(),
                    tag_resource: target.tag_resource.clone(),
                    keys: vec![contract::AT_BOUND.into()],
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Set the episode and what was said, whichever are given, in one call.
fn remember(target: &TargetView, episode: Option<&AtBound>, said: Option<Said>) -> Action {
    let mut tags = BTreeMap::new();
    if let Some(episode) = episode {
        tags.insert(contract::AT_BOUND.to_string(), episode.encode());
    }
    if let Some(said) = said {
        tags.insert(contract::AT_BOUND_SAID.to_string(), said.encode());
    }
    Action::Remember {
        target: target.target.clone(),
        tag_resource: target.tag_resource.clone(),
        tags,
    }
}

/// Write `episode` and re-read the target: its memory if this invocation's claim is still there.
async fn claim_episode<A: AlertSink>(
    target: &TargetView,
    episode: &AtBound,
    deps: &Deps<A>,
) -> Result<Option<Memory>> {
    apply(&deps.clients, &remember(target, Some(episode), None)).await?;
    let (_, memory) = memory_of(&deps.clients, &target.target).await?;
    if memory.at_bound.as_ref() == Some(episode) {
        return Ok(Some(memory));
    }
    info!(target = %target.target, "another invocation took the at-bound episode's step at the same time; that one alerts");
    Ok(None)
}
