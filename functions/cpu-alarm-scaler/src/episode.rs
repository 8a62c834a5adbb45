//! At-bound episodes: a target held at its max (or min) while an alarm in ALARM asks past it.
//! Pure decisions, like [`crate::decide`]: the time is an input.
//!
//! The clamp alone is only in a decision's notes, and a re-evaluation every minute would say it
//! every minute. So the scaler keeps one episode per target (`ops:scale-at-bound`,
//! [`AtBound`]): alerted once when it begins, and once when it ends, whichever look at the alarm
//! sees that first (its state change, a tick's re-evaluation, or the tick's sweep of episodes
//! whose alarm is no longer in ALARM, so a lost OK event still ends it).
//!
//! A start is recorded (`open`, with the invocation's claim) before its alert and marked
//! `alerted` after it; an end is recorded (`ending`) before its alert and the tag removed after
//! it. An episode still `open` is ended with an alert too: its start may have gone out before the
//! run stopped, and an end no one needed is better than an episode ops never hear ended.

use ops_core::time::utc_text;

use crate::contract::{episode_alarm, AtBound, Bound, EpisodeState};
use crate::decide::{compute, AlarmView, Coexistence, Scaling, TargetView};

/// What a look at an alarm asks of its target's episode.
#[derive(Debug, Clone, PartialEq)]
pub enum EpisodeStep {
    /// Record the episode and alert its start (again, when a run stopped before marking it
    /// alerted).
    Begin {
        /// The episode, as it is to be recorded.
        episode: AtBound,
        /// What the alarm asks, for the alert.
        scaling: Scaling,
    },
    /// Alert the episode's end, then forget it.
    End {
        /// The episode.
        episode: AtBound,
        /// Why it ended, for the alert.
        why: String,
    },
}

/// The bound `alarm` holds `target` at now, with what it asks: the alarm is in ALARM and free to
/// scale the target (no override holds it, native scaling does not make the scaler stand back),
/// and its step asks past the bound the target is already at.
pub fn held_at_bound(
    alarm: &AlarmView,
    target: &TargetView,
    now: u64,
    coexistence: Coexistence,
) -> Option<(Bound, Scaling)> {
    if !alarm.in_alarm || overridden(target, now) || stands_back(target, coexistence) {
        return None;
    }
    let scaling = compute(alarm, target);
    if scaling.to != target.desired {
        return None;
    }
    match scaling.computed.cmp(&scaling.to) {
        std::cmp::Ordering::Greater => Some((Bound::Max, scaling)),
        std::cmp::Ordering::Less => Some((Bound::Min, scaling)),
        std::cmp::Ordering::Equal => None,
    }
}

/// What this look at `alarm` means for `target`'s episode: begin one, end the one it opened, or
/// nothing (no episode and none to begin, the episode is another alarm's, or its start is out and
/// it still holds).
pub fn decide_episode(
    alarm: &AlarmView,
    target: &TargetView,
    now: u64,
    coexistence: Coexistence,
) -> Option<EpisodeStep> {
    let held = held_at_bound(alarm, target, now, coexistence);
    let Some(episode) = &target.memory.at_bound else {
        let (bound, scaling) = held?;
        return Some(EpisodeStep::Begin {
            episode: AtBound {
                alarm: episode_alarm(&alarm.name),
                bound,
                at: target.desired,
                asked: scaling.computed,
                since: now,
                state: EpisodeState::Open,
                claim: None,
            },
            scaling,
        });
    };
    if !episode.is_of(&alarm.name) {
        return None;
    }
    match (episode.state, held) {
        (EpisodeState::Alerted, Some(_)) => None,
        (EpisodeState::Open, Some((_, scaling))) => Some(EpisodeStep::Begin {
            episode: episode.clone(),
            scaling,
        }),
        // Ending (a run stopped before removing it), or no longer held.
        _ => Some(EpisodeStep::End {
            episode: episode.clone(),
            why: ended_because(alarm, target, now, coexistence),
        }),
    }
}

/// The end of an episode whose alarm no longer scales the target (deleted, retargeted, or its
/// tags no longer read).
pub fn orphaned(episode: &AtBound, target: &TargetView) -> EpisodeStep {
    EpisodeStep::End {
        episode: episode.clone(),
        why: format!(
            "alarm {} no longer scales {} (deleted, retargeted, or its tags no longer read)",
            episode.alarm, target.target
        ),
    }
}

fn overridden(target: &TargetView, now: u64) -> bool {
    target.memory.manual.as_ref().is_some_and(|m| m.until > now)
}

fn stands_back(target: &TargetView, coexistence: Coexistence) -> bool {
    !target.native.is_empty() && coexistence == Coexistence::Refuse
}

fn ended_because(
    alarm: &AlarmView,
    target: &TargetView,
    now: u64,
    coexistence: Coexistence,
) -> String {
    let who = &target.target;
    if !alarm.in_alarm {
        return format!("{} is no longer in ALARM", alarm.name);
    }
    if let Some(manual) = target
        .memory
        .manual
        .as_ref()
        .filter(|_| overridden(target, now))
    {
        return format!(
            "{}'s manual override holds it at {} until {}",
            manual.by,
            manual.count,
            utc_text(manual.until)
        );
    }
    if stands_back(target, coexistence) {
        return format!(
            "{who} has native scaling now ({}), which the scaler leaves it to",
            target.native.join(", ")
        );
    }
    let scaling = compute(alarm, target);
    format!(
        "{} asks for {} and {who} is at {} within its bounds {}..{}",
        alarm.name, scaling.computed, target.desired, target.min, target.max
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{parse_steps, AdjustmentKind, Memory, Override, Policy, TargetRef};

    const NOW: u64 = 1_795_000_000;

    fn high(value: f64) -> AlarmView {
        AlarmView {
            name: "workers-cpu-high".into(),
            in_alarm: true,
            state_millis: (NOW - 60) * 1000,
            metric: "CPUUtilization".into(),
            threshold: 90.0,
            greater: true,
            value: Some(value),
            policy: Policy {
                target: TargetRef::Group {
                    name: "workers".into(),
                },
                steps: parse_steps("0::+1").unwrap(),
                kind: AdjustmentKind::Change,
                min_step: 1,
                cooldown: 300,
            },
        }
    }

    fn low() -> AlarmView {
        AlarmView {
            name: "workers-cpu-low".into(),
            threshold: 20.0,
            greater: false,
            value: Some(3.0),
            policy: Policy {
                steps: parse_steps("0::-1").unwrap(),
                ..high(0.0).policy
            },
            ..high(0.0)
        }
    }

    fn group(desired: i32, episode: Option<AtBound>) -> TargetView {
        TargetView {
            target: TargetRef::Group {
                name: "workers".into(),
            },
            tag_resource: "workers".into(),
            desired,
            min: 1,
            max: 6,
            busy: None,
            warming: false,
            native: vec![],
            memory: Memory {
                at_bound: episode,
                ..Memory::default()
            },
        }
    }

    fn begun(step: Option<EpisodeStep>) -> AtBound {
        match step {
            Some(EpisodeStep::Begin { episode, .. }) => episode,
            other => panic!("expected a beginning, got {other:?}"),
        }
    }

    fn ended(step: Option<EpisodeStep>) -> (AtBound, String) {
        match step {
            Some(EpisodeStep::End { episode, why }) => (episode, why),
            other => panic!("expected an end, got {other:?}"),
        }
    }

    #[test]
    fn an_alarm_asking_past_the_max_the_target_is_at_begins_an_episode_at_max_or_min() {
        let episode = begun(decide_episode(
            &high(97.0),
            &group(6, None),
            NOW,
            Coexistence::Refuse,
        ));
        assert_eq!(
            (episode.bound, episode.at, episode.asked, episode.since),
            (Bound::Max, 6, 7, NOW)
        );
        assert_eq!(episode.state, EpisodeState::Open);
        let episode = begun(decide_episode(
            &low(),
            &group(1, None),
            NOW,
            Coexistence::Refuse,
        ));
        assert_eq!(
            (episode.bound, episode.at, episode.asked),
            (Bound::Min, 1, 0)
        );
    }

    #[test]
    fn no_episode_below_the_bound_nor_when_the_scaler_may_not_act() {
        let none = |alarm: &AlarmView, target: &TargetView, coexistence| {
            decide_episode(alarm, target, NOW, coexistence)
        };
        assert_eq!(
            none(&high(97.0), &group(5, None), Coexistence::Refuse),
            None
        );
        let mut ok = high(50.0);
        ok.in_alarm = false;
        assert_eq!(none(&ok, &group(6, None), Coexistence::Refuse), None);
        let mut held = group(6, None);
        held.memory.manual = Some(Override {
            count: 6,
            until: NOW + 60,
            revert: 2,
            by: "ana".into(),
            pending: None,
            set_at: NOW - 60,
        });
        assert_eq!(none(&high(97.0), &held, Coexistence::Refuse), None);
        let mut native = group(6, None);
        native.native = vec!["policy cpu-target".into()];
        assert_eq!(none(&high(97.0), &native, Coexistence::Refuse), None);
        assert!(none(&high(97.0), &native, Coexistence::Warn).is_some());
    }

    #[test]
    fn an_alerted_episode_stays_quiet_while_held_and_ends_once_it_is_not() {
        let alerted = AtBound {
            state: EpisodeState::Alerted,
            since: NOW - 600,
            ..begun(decide_episode(
                &high(97.0),
                &group(6, None),
                NOW - 600,
                Coexistence::Refuse,
            ))
        };
        let at_max = group(6, Some(alerted.clone()));
        assert_eq!(
            decide_episode(&high(99.0), &at_max, NOW, Coexistence::Refuse),
            None
        );
        let mut ok = high(40.0);
        ok.in_alarm = false;
        let (episode, why) = ended(decide_episode(&ok, &at_max, NOW, Coexistence::Refuse));
        assert_eq!(episode.since, NOW - 600);
        assert_eq!(why, "workers-cpu-high is no longer in ALARM");
        let mut raised = group(6, Some(alerted.clone()));
        raised.max = 10;
        let (_, why) = ended(decide_episode(
            &high(97.0),
            &raised,
            NOW,
            Coexistence::Refuse,
        ));
        assert_eq!(
            why,
            "workers-cpu-high asks for 7 and asg:workers is at 6 within its bounds 1..10"
        );
        // Another alarm's look leaves this episode alone.
        assert_eq!(
            decide_episode(&low(), &at_max, NOW, Coexistence::Refuse),
            None
        );
    }

    #[test]
    fn a_start_a_run_left_unmarked_is_alerted_again_while_held_and_ended_when_not() {
        let open = begun(decide_episode(
            &high(97.0),
            &group(6, None),
            NOW - 60,
            Coexistence::Refuse,
        ));
        let again = begun(decide_episode(
            &high(97.0),
            &group(6, Some(open.clone())),
            NOW,
            Coexistence::Refuse,
        ));
        assert_eq!(again.since, NOW - 60, "the episode keeps its start");
        let mut ok = high(40.0);
        ok.in_alarm = false;
        ended(decide_episode(
            &ok,
            &group(6, Some(open)),
            NOW,
            Coexistence::Refuse,
        ));
    }

    #[test]
    fn an_end_a_run_left_half_done_is_finished_even_if_the_bound_holds_again() {
        let ending = AtBound {
            state: EpisodeState::Ending,
            ..begun(decide_episode(
                &high(97.0),
                &group(6, None),
                NOW - 60,
                Coexistence::Refuse,
            ))
        };
        ended(decide_episode(
            &high(97.0),
            &group(6, Some(ending)),
            NOW,
            Coexistence::Refuse,
        ));
    }

    #[test]
    fn an_episode_tag_round_trips_and_a_long_odd_alarm_name_still_matches() {
        let name = format!("cpu high (prod), {}", "x".repeat(300));
        let episode = AtBound {
            alarm: episode_alarm(&name),
            bound: Bound::Min,
            at: 1,
            asked: -3,
            since: NOW,
            state: EpisodeState::Ending,
            claim: Some("0123abcd".into()),
        };
        let value = episode.encode();
        assert!(
            value.len() <= 256,
            "a tag value holds at most 256: {}",
            value.len()
        );
        assert!(value
            .chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c)));
        let back = AtBound::decode(&value).unwrap();
        assert_eq!(back, episode);
        assert!(back.is_of(&name));
        assert!(!back.is_of("cpu high (prod)"));
    }
}
