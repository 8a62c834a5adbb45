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
//! it ([`crate::at_bound`] acts, and keeps the last alert sent apart so a stale invocation does
//! not send it again). An episode still `open` is ended with an alert too: its start may have
//! gone out before the run stopped, and an end no one needed is better than an episode ops never
//! hear ended.

use ops_core::time::utc_text;

use crate::contract::{alarm_id, episode_alarm, AtBound, Bound, EpisodeState};
use crate::decide::{compute, AlarmView, Coexistence, Scaling, TargetView};

/// What a look at an alarm asks of its target's episode.
#[derive(Debug, Clone, PartialEq)]
pub enum EpisodeStep {
    /// Record the episode and alert its start (unless it was alerted already).
    Begin {
        /// The episode, as it is to be recorded.
        episode: AtBound,
        /// What the alarm asks, for the alert.
        scaling: Scaling,
    },
    /// Rewrite the episode without an alert: the target is still held at the same bound, which
    /// moved (a max lowered with the capacity, or raised with a scaling that reached it again), or
    /// another firing alarm holds it there now that the episode's alarm does not.
    Keep {
        /// The episode as it is now.
        episode: AtBound,
    },
    /// Alert the episode's end (unless it was alerted already), then forget it.
    End {
        /// The episode.
        episode: AtBound,
        /// The alarm's name as the alert shows it (its full name when it was looked at).
        alarm: String,
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
    if !alarm.in_alarm
        || alarm.policy.target != target.target
        || overridden(target, now)
        || stands_back(target, coexistence)
    {
        return None;
    }
    let scaling = compute(alarm, target);
    if scaling.to != target.desired {
        return None;
    }
    Some((scaling.clamped_at()?, scaling))
}

/// What this look at `alarm` means for `target`'s episode (`target` as this look left it, after
/// any scaling it made): begin one, keep or end the one it holds, end another alarm's episode at
/// the other bound, or nothing.
pub fn decide_episode(
    alarm: &AlarmView,
    target: &TargetView,
    now: u64,
    coexistence: Coexistence,
) -> Vec<EpisodeStep> {
    let who = &target.target;
    let held = held_at_bound(alarm, target, now, coexistence);
    let begin = |(bound, scaling): (Bound, Scaling)| EpisodeStep::Begin {
        episode: AtBound {
            alarm: episode_alarm(&alarm.name),
            id: alarm_id(&alarm.name),
            bound,
            at: target.desired,
            asked: scaling.computed,
            since: now,
            state: EpisodeState::Open,
            claim: None,
        },
        scaling,
    };
    let end = |episode: &AtBound, alarm: &str, why: String| EpisodeStep::End {
        episode: episode.clone(),
        alarm: alarm.to_string(),
        why,
    };
    let Some(episode) = &target.memory.at_bound else {
        return held.map(begin).into_iter().collect();
    };
    if !episode.is_of(&alarm.name) {
        // Another alarm's episode: it stays, unless this alarm holds the target at the other
        // bound, which means it is over (unless min and max are one: then both alarms hold it).
        return match held {
            Some((bound, scaling)) if bound != episode.bound && target.min != target.max => vec![
                end(
                    episode,
                    &episode.alarm,
                    format!(
                        "{who} is now held at its {} by {}",
                        bound.name(),
                        alarm.name
                    ),
                ),
                begin((bound, scaling)),
            ],
            _ => Vec::new(),
        };
    }
    let Some((bound, scaling)) = held else {
        return vec![end(
            episode,
            &alarm.name,
            ended_because(alarm, target, now, coexistence),
        )];
    };
    match episode.state {
        // A run recorded the start and stopped: alert it (unless it went out), as it is now.
        EpisodeState::Open if bound == episode.bound => vec![EpisodeStep::Begin {
            episode: AtBound {
                at: target.desired,
                asked: scaling.computed,
                ..episode.clone()
            },
            scaling,
        }],
        EpisodeState::Ending => vec![
            end(
                episode,
                &alarm.name,
                "an earlier look found it over and stopped while alerting that (this may repeat it)"
                    .into(),
            ),
            begin((bound, scaling)),
        ],
        _ if bound != episode.bound => vec![
            end(
                episode,
                &alarm.name,
                format!("{who} is now held at its {} instead", bound.name()),
            ),
            begin((bound, scaling)),
        ],
        _ if target.desired != episode.at => vec![EpisodeStep::Keep {
            episode: AtBound {
                at: target.desired,
                asked: scaling.computed,
                claim: None,
                ..episode.clone()
            },
        }],
        _ => Vec::new(),
    }
}

/// The episode handed to another alarm in `firing` that holds `target` at the same bound, now that
/// its own alarm does not: the target is still held, so the episode has not ended.
pub fn hand_over(
    episode: &AtBound,
    firing: &[AlarmView],
    target: &TargetView,
    now: u64,
    coexistence: Coexistence,
) -> Option<AtBound> {
    firing
        .iter()
        .filter(|alarm| !episode.is_of(&alarm.name))
        .find_map(|alarm| {
            let (bound, scaling) = held_at_bound(alarm, target, now, coexistence)?;
            (bound == episode.bound).then(|| AtBound {
                alarm: episode_alarm(&alarm.name),
                id: alarm_id(&alarm.name),
                at: target.desired,
                asked: scaling.computed,
                state: EpisodeState::Alerted,
                claim: None,
                ..episode.clone()
            })
        })
}

/// The end of an episode whose alarm no longer scales the target (deleted, retargeted, or its
/// tags no longer read).
pub fn orphaned(episode: &AtBound, target: &TargetView) -> EpisodeStep {
    EpisodeStep::End {
        episode: episode.clone(),
        alarm: episode.alarm.clone(),
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
    use crate::contract::{AdjustmentKind, Override};
    use crate::decide::tests::{alarm, group as workers};

    const NOW: u64 = 1_795_000_000;

    fn high(value: f64) -> AlarmView {
        alarm(value, "0::+1", AdjustmentKind::Change)
    }

    fn low() -> AlarmView {
        AlarmView {
            name: "workers-cpu-low".into(),
            threshold: 20.0,
            greater: false,
            value: Some(3.0),
            ..alarm(0.0, "0::-1", AdjustmentKind::Change)
        }
    }

    fn group(desired: i32, episode: Option<AtBound>) -> TargetView {
        let mut group = workers(desired);
        group.memory.at_bound = episode;
        group
    }

    fn begun(steps: Vec<EpisodeStep>) -> AtBound {
        match &steps[..] {
            [EpisodeStep::Begin { episode, .. }] => episode.clone(),
            other => panic!("expected a beginning, got {other:?}"),
        }
    }

    fn ended(steps: Vec<EpisodeStep>) -> (AtBound, String) {
        match steps.into_iter().next() {
            Some(EpisodeStep::End { episode, why, .. }) => (episode, why),
            other => panic!("expected an end, got {other:?}"),
        }
    }

    fn alerted_at_max(since: u64) -> AtBound {
        AtBound {
            state: EpisodeState::Alerted,
            ..begun(decide_episode(
                &high(97.0),
                &group(6, None),
                since,
                Coexistence::Refuse,
            ))
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
        assert!(episode.is_of("workers-cpu-high"));
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
            decide_episode(alarm, target, NOW, coexistence).is_empty()
        };
        assert!(none(&high(97.0), &group(5, None), Coexistence::Refuse));
        let mut ok = high(50.0);
        ok.in_alarm = false;
        assert!(none(&ok, &group(6, None), Coexistence::Refuse));
        let mut held = group(6, None);
        held.memory.manual = Some(Override {
            count: 6,
            until: NOW + 60,
            revert: 2,
            by: "ana".into(),
            pending: None,
            set_at: NOW - 60,
        });
        assert!(none(&high(97.0), &held, Coexistence::Refuse));
        let mut native = group(6, None);
        native.native = vec!["policy cpu-target".into()];
        assert!(none(&high(97.0), &native, Coexistence::Refuse));
        assert!(!none(&high(97.0), &native, Coexistence::Warn));
    }

    #[test]
    fn an_alerted_episode_stays_quiet_while_held_and_ends_once_it_is_not() {
        let at_max = group(6, Some(alerted_at_max(NOW - 600)));
        assert!(decide_episode(&high(99.0), &at_max, NOW, Coexistence::Refuse).is_empty());
        let mut ok = high(40.0);
        ok.in_alarm = false;
        let (episode, why) = ended(decide_episode(&ok, &at_max, NOW, Coexistence::Refuse));
        assert_eq!(episode.since, NOW - 600);
        assert_eq!(why, "workers-cpu-high is no longer in ALARM");
        // The max raised to 10 and this look scaled to 7: the reason is the target as it is now.
        let mut raised = group(7, Some(alerted_at_max(NOW - 600)));
        raised.max = 10;
        let (_, why) = ended(decide_episode(
            &high(97.0),
            &raised,
            NOW,
            Coexistence::Refuse,
        ));
        assert_eq!(
            why,
            "workers-cpu-high asks for 8 and asg:workers is at 7 within its bounds 1..10"
        );
        // Another alarm's look at the same bound leaves this episode alone.
        let mut very_high = high(99.0);
        very_high.name = "workers-cpu-very-high".into();
        assert!(decide_episode(&very_high, &at_max, NOW, Coexistence::Refuse).is_empty());
    }

    #[test]
    fn the_bound_moving_with_the_target_still_held_keeps_the_episode_without_an_alert() {
        // The max lowered to 4 and the capacity with it; or raised to 7 and reached by a scaling.
        for (desired, max) in [(4, 4), (7, 7)] {
            let mut moved = group(desired, Some(alerted_at_max(NOW - 600)));
            moved.max = max;
            match &decide_episode(&high(97.0), &moved, NOW, Coexistence::Refuse)[..] {
                [EpisodeStep::Keep { episode }] => {
                    assert_eq!(
                        (episode.at, episode.since, episode.state),
                        (desired, NOW - 600, EpisodeState::Alerted)
                    )
                }
                other => panic!("expected the episode kept, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_episode_passes_to_another_alarm_holding_the_same_bound_and_ends_at_the_other_bound() {
        let episode = alerted_at_max(NOW - 600);
        let at_max = group(6, Some(episode.clone()));
        let mut very_high = high(99.0);
        very_high.name = "workers-cpu-very-high".into();
        let mut ok = high(40.0);
        ok.in_alarm = false;
        let handed = hand_over(
            &episode,
            &[ok.clone(), very_high.clone()],
            &at_max,
            NOW,
            Coexistence::Refuse,
        )
        .unwrap();
        assert!(handed.is_of("workers-cpu-very-high"));
        assert_eq!((handed.since, handed.bound), (NOW - 600, Bound::Max));
        assert_eq!(
            hand_over(&episode, &[ok], &at_max, NOW, Coexistence::Refuse),
            None
        );
        // Held at the min by the low alarm: the max episode is over, and a min one begins.
        let steps = decide_episode(
            &low(),
            &group(1, Some(episode.clone())),
            NOW,
            Coexistence::Refuse,
        );
        assert!(
            matches!(&steps[..], [EpisodeStep::End { why, .. }, EpisodeStep::Begin { episode, .. }]
                if why == "asg:workers is now held at its minimum by workers-cpu-low" && episode.bound == Bound::Min),
            "{steps:?}"
        );
        // Unless min and max are one (a pinned group): both alarms hold it, the episode stays.
        let mut pinned = group(6, Some(episode));
        pinned.min = 6;
        assert!(decide_episode(&low(), &pinned, NOW, Coexistence::Refuse).is_empty());
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
            ..alerted_at_max(NOW - 60)
        };
        let steps = decide_episode(
            &high(97.0),
            &group(6, Some(ending)),
            NOW,
            Coexistence::Refuse,
        );
        assert!(
            matches!(
                &steps[..],
                [EpisodeStep::End { .. }, EpisodeStep::Begin { .. }]
            ),
            "{steps:?}"
        );
    }

    #[test]
    fn an_episode_tag_round_trips_and_names_alike_in_a_tag_stay_apart() {
        let name = format!("cpu high (prod), {}", "x".repeat(230));
        let episode = AtBound {
            alarm: episode_alarm(&name),
            id: alarm_id(&name),
            bound: Bound::Min,
            at: 1,
            asked: -3,
            since: NOW,
            state: EpisodeState::Ending,
            claim: Some("0123abcd0123abcd".into()),
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
        for alike in [
            format!("cpu_high _prod__ {}", "x".repeat(230)),
            format!("{name}-other"),
            "cpu high (prod)".to_string(),
        ] {
            assert_eq!(
                (episode_alarm(&alike) == episode.alarm, back.is_of(&alike)),
                (alike.len() > 200, false),
                "{alike}"
            );
        }
        assert_eq!(alarm_id("workers-cpu-high"), alarm_id("workers-cpu-high"));
        let said = episode.ended();
        assert_eq!(crate::contract::Said::decode(&said.encode()), Some(said));
    }
}
