//! Decide: each target's state across runs (pure, the time an input). Down after N failed runs in
//! a row, up after M good ones, a reminder while it stays down, a warning when its certificate
//! nears expiry, and flapping: a target that is not down but failed `flap_share` percent of its
//! last `flap_window` runs is alerted once as flapping, and once when it settles (its failures in
//! the window down to half that many or fewer). A target that goes down stops flapping: the down
//! alert says it was, and its outage's runs never count toward flapping after it recovers. While
//! the target is muted ([`crate::mute`]) all of that goes on, and what it would alert is held back
//! in the mute, told when the mute ends. What must be alerted is kept in the state until the alert
//! is out, so a run that dies after recording a change still gets it alerted by the next one.
//!
//! **Runs count once, in time order.** EventBridge delivers a scheduled event at least once, and a
//! failed run is delivered again with the same `time`, up to hours late. A state records the
//! schedule time of the run that last changed it ([`TargetState::at`]); a run whose time is not
//! after that ([`counts`] is false) changes nothing: counting it would count one minute twice
//! (down after two ticks instead of three) or move `since` back to an older time.

use serde::{Deserialize, Serialize};

use crate::mute::{self, Mute};
use crate::probe::{Failure, Outcome};
use crate::targets::{flap_failures, Probe, Target};

/// What the monitor believes about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not yet enough checks in a row either way.
    Unknown,
    /// Up.
    Up,
    /// Down.
    Down,
}

/// A failed check as an alert tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Why it failed.
    pub failure: Failure,
    /// The address it resolved to, if it got that far.
    pub address: Option<String>,
    /// The HTTP status, if any.
    pub status: Option<u16>,
    /// How long the check took, in milliseconds.
    pub latency_ms: u64,
    /// Attempts made (2 after the quick retry).
    pub attempts: u8,
}

impl Seen {
    fn of(outcome: &Outcome) -> Option<Seen> {
        Some(Seen {
            failure: outcome.failure.clone()?,
            address: outcome.address.clone(),
            status: outcome.status,
            latency_ms: outcome.latency_ms,
            attempts: outcome.attempts,
        })
    }
}

/// Something ops must be told about a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Notice {
    /// It went down.
    Down {
        /// The check that failed last.
        seen: Seen,
        /// Failed runs in a row.
        failures: u32,
        /// Since when it had been flapping, if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flapping_since: Option<u64>,
    },
    /// It is still down (a reminder).
    StillDown {
        /// The latest failed check.
        seen: Seen,
        /// Down since, epoch seconds.
        since: u64,
    },
    /// It recovered.
    Recovered {
        /// Down since, epoch seconds.
        since: u64,
        /// Seconds it was down.
        downtime: u64,
        /// Good runs in a row.
        successes: u32,
    },
    /// Its certificate expires soon.
    CertExpiring {
        /// Days left.
        days: i64,
    },
    /// It fails often without failing enough runs in a row to be down.
    Flapping {
        /// The check that failed this run.
        seen: Seen,
        /// Runs failed in the window.
        failed: u32,
        /// Runs in the window (fewer than `flap_window` while it fills).
        window: u32,
    },
    /// Its mute ended: who muted it and why, what was held back, and how it is now.
    Unmuted {
        /// The mute that ended.
        mute: Box<Mute>,
        /// Its health when the mute ended (before the check of the run that ended it).
        health: Health,
        /// Since when it has had that health, epoch seconds.
        health_since: u64,
        /// Since when it has been flapping, if it is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flapping_since: Option<u64>,
        /// The schedule time of the last run that changed its state (what the health is as of).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checked_at: Option<u64>,
    },
    /// It stopped flapping, or is no longer watched for it.
    Settled {
        /// Flapping since, epoch seconds.
        since: u64,
        /// Flapping alerts were turned off for it while it flapped (it may flap still).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        turned_off: bool,
        /// Runs failed in the window now.
        failed: u32,
        /// Runs in the window.
        window: u32,
    },
}

impl Notice {
    /// Whether it is about a target being down.
    pub fn is_down(&self) -> bool {
        matches!(
            self,
            Notice::Down { .. }
                | Notice::StillDown { .. }
                | Notice::Unmuted {
                    health: Health::Down,
                    ..
                }
        )
    }
}

/// A target's state, stored between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    /// Up, down or not yet known.
    pub health: Health,
    /// Failed runs in a row (stops counting once down).
    pub failures: u32,
    /// Good runs in a row (stops counting once up).
    pub successes: u32,
    /// When the health last changed (or the target was first seen), epoch seconds.
    pub since: u64,
    /// When ops were last told it is down, epoch seconds.
    pub last_alert: u64,
    /// Whether its certificate's expiry was alerted (until it is renewed).
    pub cert_warned: bool,
    /// Alerts decided but not yet sent.
    pub pending: Vec<Notice>,
    /// The schedule time (epoch seconds) of the run that last changed this state; `None` before
    /// any (and in states stored before this field existed). Runs at or before it count nothing.
    #[serde(default)]
    pub at: Option<u64>,
    /// The last runs that counted while it was not down, newest in bit 0, a set bit a failed
    /// run; kept to the target's `flap_window` bits (so a target that stays good or stays down
    /// writes nothing) and cleared when it goes down.
    #[serde(default)]
    pub recent_failures: u64,
    /// How many runs `recent_failures` holds (up to the target's `flap_window`).
    #[serde(default)]
    pub recent_runs: u32,
    /// Since when it has been flapping, epoch seconds.
    #[serde(default)]
    pub flapping_since: Option<u64>,
    /// Its alerts are held back until then (see [`crate::mute`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute: Option<Mute>,
    /// A maintenance window a person lifted (`unmute`) mutes nothing before this time, epoch
    /// seconds: the end of that window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub window_skipped_until: u64,
    /// Until when (epoch seconds, the invocation's clock) the run that recorded `pending` owns
    /// sending it: its deadline. Another run leaves the target alone until then (so an alert is
    /// never sent by two runs at once), and takes the alerts over after it (the owner died).
    #[serde(default)]
    pub claimed_until: u64,
}

impl TargetState {
    /// A target seen for the first time.
    pub fn new(now: u64) -> TargetState {
        TargetState {
            health: Health::Unknown,
            failures: 0,
            successes: 0,
            since: now,
            last_alert: 0,
            cert_warned: false,
            pending: Vec::new(),
            at: None,
            recent_failures: 0,
            recent_runs: 0,
            flapping_since: None,
            mute: None,
            window_skipped_until: 0,
            claimed_until: 0,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many failed runs of its `flap_window` make `target` flapping: `flap_share` percent of
/// them, rounded up; none when `flap_share` is 0.
pub fn flap_threshold(target: &Target) -> Option<u32> {
    (target.flap_share > 0).then(|| flap_failures(target.flap_window, target.flap_share))
}

/// Runs failed among `state`'s last `target.flap_window` that count toward flapping.
pub fn failed_in_window(target: &Target, state: &TargetState) -> u32 {
    (state.recent_failures & window_mask(target)).count_ones()
}

/// How many of `state`'s last runs the window holds: its `flap_window`, or fewer since the
/// target was first seen or last went down.
pub fn runs_in_window(target: &Target, state: &TargetState) -> u32 {
    state.recent_runs.min(target.flap_window)
}

fn window_mask(target: &Target) -> u64 {
    match target.flap_window {
        64.. => u64::MAX,
        bits => (1u64 << bits) - 1,
    }
}

/// Whether a run at `now` may count a check against `previous`: only if no run at the same time
/// or later has changed it already (a duplicate or late delivery of the schedule counts nothing).
pub fn counts(previous: &TargetState, now: u64) -> bool {
    previous.at.is_none_or(|at| now > at)
}

/// The state after this run's `outcome` for `target`, with what to alert in `pending`; the state
/// unchanged if the run does not count ([`counts`]). A changed state records `now` as its `at`; an
/// unchanged one is not written, so a target that stays as it is costs no write.
pub fn decide(target: &Target, previous: &TargetState, outcome: &Outcome, now: u64) -> TargetState {
    if !counts(previous, now) {
        return previous.clone();
    }
    let mut next = previous.clone();
    mute::before_check(&target.maintenance, &target.source, &mut next, now);
    let first_new = next.pending.len();
    let seen = Seen::of(outcome);
    if next.health != Health::Down {
        next.recent_failures =
            ((next.recent_failures << 1) | u64::from(seen.is_some())) & window_mask(target);
        next.recent_runs = (next.recent_runs + 1).min(target.flap_window);
    }
    match seen.clone() {
        None => {
            next.failures = 0;
            if next.health != Health::Up {
                next.successes = (next.successes + 1).min(target.up_after);
                if next.successes >= target.up_after {
                    if next.health == Health::Down {
                        next.pending.push(Notice::Recovered {
                            since: next.since,
                            downtime: now.saturating_sub(next.since),
                            successes: next.successes,
                        });
                    }
                    next.health = Health::Up;
                    next.since = now;
                }
            }
        }
        Some(seen) => {
            next.successes = 0;
            if next.health != Health::Down {
                next.failures = (next.failures + 1).min(target.down_after);
                if next.failures >= target.down_after {
                    next.pending.push(Notice::Down {
                        seen,
                        failures: next.failures,
                        flapping_since: next.flapping_since.take(),
                    });
                    next.health = Health::Down;
                    next.since = now;
                    next.last_alert = now;
                    next.recent_failures = 0;
                    next.recent_runs = 0;
                }
            } else if let Some(every) = target.reminder {
                if now.saturating_sub(next.last_alert) >= every {
                    next.pending.push(Notice::StillDown {
                        seen,
                        since: next.since,
                    });
                    next.last_alert = now;
                }
            }
        }
    }
    if next.health != Health::Down {
        if let Some(threshold) = flap_threshold(target) {
            let failed = failed_in_window(target, &next);
            match (next.flapping_since, &seen) {
                (None, Some(seen)) if failed >= threshold => {
                    next.pending.push(Notice::Flapping {
                        seen: seen.clone(),
                        failed,
                        window: runs_in_window(target, &next),
                    });
                    next.flapping_since = Some(now);
                }
                (Some(since), _) if failed <= threshold / 2 => {
                    next.pending.push(Notice::Settled {
                        since,
                        turned_off: false,
                        failed,
                        window: runs_in_window(target, &next),
                    });
                    next.flapping_since = None;
                }
                _ => {}
            }
        } else if let Some(since) = next.flapping_since.take() {
            // Flapping alerts were turned off while it flapped: say it is no longer watched.
            next.pending.push(Notice::Settled {
                since,
                turned_off: true,
                failed: failed_in_window(target, &next),
                window: runs_in_window(target, &next),
            });
        }
    }
    let warn_days = match &target.probe {
        Probe::Http(http) => i64::from(http.cert_warn_days),
        Probe::Tcp { .. } => 0,
    };
    match outcome.cert_days_left {
        Some(days) if days < warn_days && !next.cert_warned => {
            next.pending.push(Notice::CertExpiring { days });
            next.cert_warned = true;
        }
        Some(days) if days >= warn_days => next.cert_warned = false,
        _ => {}
    }
    mute::after_check(&mut next, first_new, now);
    if next != *previous {
        next.at = Some(now);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::FailureKind;
    use crate::targets::parse_document;

    fn target() -> Target {
        let (mut targets, _) = parse_document(
            "env",
            r#"{"targets": [{"name": "billing", "http": "https://billing/", "down_after": 3, "up_after": 2, "reminder": "30m", "cert_warn_days": 14}]}"#,
        );
        targets.remove(0)
    }

    fn ok() -> Outcome {
        Outcome {
            failure: None,
            status: Some(200),
            latency_ms: 12,
            address: Some("10.0.0.5:443".into()),
            cert_days_left: Some(90),
            attempts: 1,
        }
    }

    fn failed() -> Outcome {
        Outcome {
            failure: Some(Failure::new(
                FailureKind::Refused,
                "connection refused by 10.0.0.5:443",
            )),
            status: None,
            latency_ms: 3,
            address: Some("10.0.0.5:443".into()),
            cert_days_left: None,
            attempts: 2,
        }
    }

    fn run(state: TargetState, outcomes: &[(Outcome, u64)]) -> TargetState {
        outcomes.iter().fold(state, |s, (o, at)| {
            let mut next = decide(&target(), &s, o, *at);
            next.pending.clear();
            next
        })
    }

    #[test]
    fn down_after_three_failures_in_a_row_and_only_once() {
        let mut state = run(TargetState::new(0), &[(ok(), 0), (ok(), 60)]);
        assert_eq!(state.health, Health::Up);
        for (i, at) in [120, 180].iter().enumerate() {
            state = decide(&target(), &state, &failed(), *at);
            assert!(
                state.pending.is_empty(),
                "failure {} is not yet down",
                i + 1
            );
        }
        state = decide(&target(), &state, &failed(), 240);
        assert_eq!(state.health, Health::Down);
        assert!(
            matches!(&state.pending[..], [Notice::Down { failures: 3, seen, flapping_since: None }] if seen.failure.kind == FailureKind::Refused && seen.attempts == 2)
        );
        state.pending.clear();
        let again = decide(&target(), &state, &failed(), 300);
        assert!(again.pending.is_empty());
        assert_eq!(again, state, "a target that stays down writes nothing");
    }

    #[test]
    fn one_good_check_between_failures_resets_the_count() {
        let state = run(
            TargetState::new(0),
            &[
                (ok(), 0),
                (ok(), 60),
                (failed(), 120),
                (failed(), 180),
                (ok(), 240),
                (failed(), 300),
            ],
        );
        assert_eq!((state.health, state.failures), (Health::Up, 1));
    }

    #[test]
    fn recovery_after_two_good_checks_says_how_long_it_was_down() {
        let down = run(
            TargetState::new(0),
            &[(failed(), 0), (failed(), 60), (failed(), 120)],
        );
        assert_eq!((down.health, down.since), (Health::Down, 120));
        let half = decide(&target(), &down, &ok(), 540);
        assert!(half.pending.is_empty() && half.health == Health::Down);
        let up = decide(&target(), &half, &ok(), 600);
        assert_eq!(up.health, Health::Up);
        assert_eq!(
            up.pending,
            [Notice::Recovered {
                since: 120,
                downtime: 480,
                successes: 2
            }]
        );
    }

    #[test]
    fn a_reminder_comes_every_thirty_minutes_while_down() {
        let down = run(
            TargetState::new(0),
            &[(failed(), 0), (failed(), 60), (failed(), 120)],
        );
        assert!(decide(&target(), &down, &failed(), 120 + 1799)
            .pending
            .is_empty());
        let reminded = decide(&target(), &down, &failed(), 120 + 1800);
        assert!(matches!(
            &reminded.pending[..],
            [Notice::StillDown { since: 120, .. }]
        ));
        assert_eq!(reminded.last_alert, 1920);
    }

    #[test]
    fn a_certificate_near_expiry_is_alerted_once_until_renewed() {
        let expiring = Outcome {
            cert_days_left: Some(5),
            ..ok()
        };
        let warned = decide(&target(), &TargetState::new(0), &expiring, 0);
        assert_eq!(warned.pending, [Notice::CertExpiring { days: 5 }]);
        let mut quiet = warned.clone();
        quiet.pending.clear();
        assert!(decide(&target(), &quiet, &expiring, 60).pending.is_empty());
        let renewed = decide(&target(), &quiet, &ok(), 120);
        assert!(!renewed.cert_warned);
    }

    /// `pattern` as runs a minute apart from `start` (`x` a failure, `.` a good check), each
    /// run's alerts kept, with the state after.
    fn play(state: TargetState, start: u64, pattern: &str) -> (TargetState, Vec<(u64, Notice)>) {
        play_for(&target(), state, start, pattern)
    }

    /// [`play`] for `target`.
    fn play_for(
        target: &Target,
        state: TargetState,
        start: u64,
        pattern: &str,
    ) -> (TargetState, Vec<(u64, Notice)>) {
        let mut notices = Vec::new();
        let state = pattern.chars().enumerate().fold(state, |s, (i, c)| {
            let at = start + 60 * i as u64;
            let outcome = if c == 'x' { failed() } else { ok() };
            let mut next = decide(target, &s, &outcome, at);
            notices.extend(next.pending.drain(..).map(|n| (at, n)));
            next
        });
        (state, notices)
    }

    fn kinds(notices: &[(u64, Notice)]) -> Vec<&'static str> {
        notices
            .iter()
            .map(|(_, n)| match n {
                Notice::Down { .. } => "down",
                Notice::StillDown { .. } => "still-down",
                Notice::Recovered { .. } => "recovered",
                Notice::CertExpiring { .. } => "cert",
                Notice::Flapping { .. } => "flapping",
                Notice::Settled { .. } => "settled",
                Notice::Unmuted { .. } => "unmuted",
            })
            .collect()
    }

    #[test]
    fn failing_a_quarter_of_twenty_runs_never_three_in_a_row_is_flapping_once_then_settles_once() {
        // Defaults: a window of 20 runs, 25 % of them (5) failed is flapping; the alert counts
        // the 10 runs there have been.
        assert_eq!(flap_threshold(&target()), Some(5));
        let (state, notices) = play(TargetState::new(0), 0, "..xx.xx..x");
        assert_eq!(state.health, Health::Up);
        assert_eq!(kinds(&notices), ["flapping"]);
        assert!(matches!(
            &notices[0],
            (
                540,
                Notice::Flapping {
                    failed: 5,
                    window: 10,
                    ..
                }
            )
        ));
        assert_eq!(state.flapping_since, Some(540));
        // Still failing now and then: nothing more.
        let (state, notices) = play(state, 600, "x..x....");
        assert!(notices.is_empty(), "{notices:?}");
        // Once no more than 2 of the last 20 fail, it settles, once.
        let (state, notices) = play(state, 1080, "....................");
        assert_eq!(kinds(&notices), ["settled"]);
        assert!(matches!(
            &notices[0],
            (
                _,
                Notice::Settled {
                    since: 540,
                    turned_off: false,
                    failed: 2,
                    window: 20
                }
            )
        ));
        assert_eq!(state.flapping_since, None);
    }

    #[test]
    fn an_outage_is_down_not_flapping_and_its_failures_never_count_after_recovery() {
        let (state, notices) = play(TargetState::new(0), 0, "..xxxxxxxx..........");
        assert_eq!(kinds(&notices), ["down", "recovered"]);
        assert_eq!((state.health, state.recent_failures), (Health::Up, 0));
    }

    #[test]
    fn a_flapping_target_that_goes_down_says_so_in_the_down_alert_and_stops_flapping() {
        let (state, notices) = play(TargetState::new(0), 0, "xx.xx.x.xxx");
        assert_eq!(kinds(&notices), ["flapping", "down"]);
        assert!(
            matches!(&notices[1], (_, Notice::Down { flapping_since: Some(at), .. }) if *at == notices[0].0)
        );
        assert_eq!(state.flapping_since, None);
    }

    #[test]
    fn a_target_that_stays_good_or_stays_down_writes_nothing_once_its_window_is_clean() {
        let (good, _) = play(TargetState::new(0), 0, &".".repeat(25));
        assert_eq!(decide(&target(), &good, &ok(), 25 * 60), good);
        let (down, _) = play(TargetState::new(0), 0, "xxxx");
        assert_eq!(decide(&target(), &down, &failed(), 300), down);
    }

    #[test]
    fn flap_share_zero_never_flaps_and_turning_it_off_mid_episode_settles_it() {
        let mut quiet = target();
        quiet.flap_share = 0;
        let mut state = TargetState::new(0);
        for (i, c) in "xx.xx.xx.xx.".chars().enumerate() {
            let outcome = if c == 'x' { failed() } else { ok() };
            state = decide(&quiet, &state, &outcome, 60 * i as u64);
            assert!(state.pending.is_empty(), "{:?}", state.pending);
        }
        let (flapping, _) = play(TargetState::new(0), 0, "xx.xx.x");
        assert!(flapping.flapping_since.is_some());
        let settled = decide(&quiet, &flapping, &ok(), 3600);
        assert!(matches!(
            &settled.pending[..],
            [Notice::Settled {
                turned_off: true,
                ..
            }]
        ));
        assert_eq!(settled.flapping_since, None);
    }

    #[test]
    fn a_state_stored_before_flapping_existed_still_reads() {
        let old = r#"{"health":"up","failures":0,"successes":2,"since":0,"last_alert":0,"cert_warned":false,"pending":[{"kind":"down","seen":{"failure":{"kind":"refused","detail":"x","snippet":null},"address":null,"status":null,"latency_ms":1,"attempts":2},"failures":3}],"at":60}"#;
        let state: TargetState = serde_json::from_str(old).unwrap();
        assert_eq!((state.recent_failures, state.flapping_since), (0, None));
        assert!(matches!(
            &state.pending[..],
            [Notice::Down {
                flapping_since: None,
                ..
            }]
        ));
    }

    /// The mute a run's end alert carries, with the health it tells.
    fn ended(notice: &Notice) -> (&crate::mute::Mute, Health) {
        match notice {
            Notice::Unmuted { mute, health, .. } => (mute, *health),
            other => panic!("not a mute's end: {other:?}"),
        }
    }

    #[test]
    fn a_chat_mute_holds_back_an_outage_and_its_end_says_what_was_held_and_that_it_is_still_down() {
        let (up, _) = play(TargetState::new(0), 0, "..");
        let muted = crate::mute::mute_from_chat(&up, "alice", "db migration", 600, 120);
        // Down at the third failure, at 240: held back, and the state follows the checks.
        let (state, notices) = play(muted, 120, "xxxxxxxxx");
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(state.health, Health::Down);
        assert_eq!(state.since, 240);
        let mute = state.mute.clone().unwrap();
        assert_eq!(
            mute.held_count, 1,
            "a reminder every 30 min has not come yet"
        );
        assert!(matches!(
            mute.held[0],
            crate::mute::Held {
                at: 240,
                notice: Notice::Down { .. }
            }
        ));
        // The first run at or after 720 ends it and tells the state as it stood: down.
        let (state, notices) = play(state, 720, "x.");
        assert_eq!(kinds(&notices), ["unmuted"]);
        let (mute, health) = ended(&notices[0].1);
        assert_eq!(health, Health::Down);
        assert_eq!(
            (mute.by.as_str(), mute.reason.as_str()),
            ("alice", "db migration")
        );
        assert_eq!(
            (mute.since, mute.until, mute.lifted_by.as_deref()),
            (120, 720, None)
        );
        assert!(state.mute.is_none());
        // From then on the target alerts as usual: its recovery is alerted.
        let (_, notices) = play(state, 840, ".");
        assert_eq!(kinds(&notices), ["recovered"]);
    }

    #[test]
    fn a_mute_ends_only_at_a_run_that_counts_and_a_late_run_changes_nothing() {
        let (up, _) = play(TargetState::new(0), 0, "..");
        let muted = crate::mute::mute_from_chat(&up, "alice", "deploy", 300, 120);
        let (state, _) = play(muted, 120, ".....");
        assert!(state.mute.is_some());
        // A late delivery of an old tick after the mute's time counts nothing and ends nothing.
        let late = decide(&target(), &state, &ok(), 300);
        assert_eq!(late, state);
        let (state, notices) = play(state, 420, ".");
        assert_eq!(kinds(&notices), ["unmuted"]);
        assert_eq!(ended(&notices[0].1).1, Health::Up);
        assert!(state.mute.is_none());
    }

    fn patched() -> Target {
        let (mut targets, errors) = parse_document(
            "ssm:/ops/health/billing",
            r#"{"targets": [{"name": "billing", "http": "https://billing/", "maintenance": [{"days": "daily", "start_utc": "02:00", "for": "1h", "reason": "nightly patching"}]}]}"#,
        );
        assert_eq!(errors, []);
        targets.remove(0)
    }

    const TWO_AM: u64 = 86_400 + 2 * 3600;

    #[test]
    fn a_maintenance_window_mutes_from_its_first_run_to_its_end_and_is_alerted_once_as_it_ends() {
        let (up, notices) = play_for(&patched(), TargetState::new(0), TWO_AM - 120, "..");
        assert!(notices.is_empty() && up.mute.is_none());
        let (state, notices) = play_for(&patched(), up, TWO_AM, &"x".repeat(60));
        assert!(notices.is_empty(), "{notices:?}");
        let mute = state.mute.clone().unwrap();
        assert!(mute.window);
        assert_eq!(mute.by, "maintenance window (ssm:/ops/health/billing)");
        assert_eq!((mute.since, mute.until), (TWO_AM, TWO_AM + 3600));
        let (state, notices) = play_for(&patched(), state, TWO_AM + 3600, "..");
        assert_eq!(
            kinds(&notices),
            ["unmuted", "recovered"],
            "the end tells it down, then its recovery"
        );
        assert_eq!(ended(&notices[0].1).1, Health::Down);
        assert_eq!(ended(&notices[0].1).0.held_count, 1);
        // The next night's window mutes it again.
        let (state, _) = play_for(&patched(), state, TWO_AM + 86_400, ".");
        assert!(state
            .mute
            .as_ref()
            .is_some_and(|m| m.since == TWO_AM + 86_400));
    }

    #[test]
    fn a_chat_mute_ending_inside_a_window_goes_on_as_the_windows_and_unmute_skips_the_rest_of_it() {
        let (up, _) = play_for(&patched(), TargetState::new(0), TWO_AM - 600, ".");
        let muted = crate::mute::mute_from_chat(&up, "alice", "early start", 900, TWO_AM - 540);
        // Alice's mute runs out at 02:06, inside the window: no alert, the window's mute goes on.
        let (state, notices) = play_for(&patched(), muted, TWO_AM - 480, &"x".repeat(20));
        assert!(notices.is_empty(), "{notices:?}");
        let mute = state.mute.clone().unwrap();
        assert!(mute.window, "{mute:?}");
        assert_eq!(
            mute.since,
            TWO_AM + 360,
            "the window's mute took over at 02:06"
        );
        assert_eq!(
            mute.earlier,
            [format!(
                "muted by alice since {} until {}: early start",
                ops_core::time::utc_text(TWO_AM - 540),
                ops_core::time::utc_text(TWO_AM + 360)
            )]
        );
        assert_eq!(mute.held_count, 1);
        // Bob lifts it at 02:20: the next run ends it, and the window does not mute it again.
        let lifted =
            crate::mute::unmute_from_chat(&state, &patched().maintenance, "bob", TWO_AM + 1200)
                .unwrap();
        assert_eq!(lifted.window_skipped_until, TWO_AM + 3600);
        let (state, notices) = play_for(&patched(), lifted, TWO_AM + 1260, "xx");
        assert_eq!(kinds(&notices), ["unmuted"]);
        assert_eq!(ended(&notices[0].1).0.lifted_by.as_deref(), Some("bob"));
        assert!(state.mute.is_none());
        // Alerts flow again: its recovery at the end is alerted; the next night mutes again.
        let (state, notices) = play_for(&patched(), state, TWO_AM + 1380, "..");
        assert_eq!(kinds(&notices), ["recovered"]);
        let (state, _) = play_for(&patched(), state, TWO_AM + 86_400, ".");
        assert!(state.mute.is_some());
        assert!(crate::mute::unmute_from_chat(&TargetState::new(0), &[], "bob", 0).is_none());
    }

    #[test]
    fn a_mute_keeps_the_first_held_alerts_and_counts_the_rest() {
        let (up, _) = play(TargetState::new(0), 0, "..");
        let muted = crate::mute::mute_from_chat(&up, "alice", "chaos day", 86_400, 120);
        // Down and up again and again: 20 changes.
        let (state, notices) = play(muted, 120, &"xxx..".repeat(10));
        assert!(notices.is_empty());
        let mute = state.mute.unwrap();
        assert_eq!(mute.held_count, 20);
        assert_eq!(mute.held.len(), crate::mute::MAX_HELD);
        assert!(matches!(mute.held[0].notice, Notice::Down { .. }));
    }

    #[test]
    fn a_mute_holds_back_alerts_recorded_and_not_yet_sent() {
        let (up, _) = play(TargetState::new(0), 0, "..");
        let down = decide(
            &target(),
            &run(up, &[(failed(), 120), (failed(), 180)]),
            &failed(),
            240,
        );
        assert_eq!(kinds(&[(240, down.pending[0].clone())]), ["down"]);
        let muted = crate::mute::mute_from_chat(&down, "alice", "on it", 600, 250);
        assert!(muted.pending.is_empty());
        let mute = muted.mute.unwrap();
        assert_eq!(mute.held_count, 1);
        assert!(matches!(
            mute.held[0],
            crate::mute::Held {
                at: 240,
                notice: Notice::Down { .. }
            }
        ));
    }

    #[test]
    fn a_windows_mute_follows_its_window_as_the_document_has_it_now() {
        let (up, _) = play_for(&patched(), TargetState::new(0), TWO_AM - 120, "..");
        let (state, _) = play_for(&patched(), up, TWO_AM, "x");
        assert_eq!(state.mute.as_ref().unwrap().until, TWO_AM + 3600);
        // The window is cut to 10 minutes: the mute ends with it.
        let short = {
            let (mut targets, _) = parse_document(
                "ssm:/ops/health/billing",
                r#"{"targets": [{"name": "billing", "http": "https://billing/", "maintenance": [{"start_utc": "02:00", "for": "10m", "reason": "nightly patching"}]}]}"#,
            );
            targets.remove(0)
        };
        let (cut, notices) = play_for(&short, state.clone(), TWO_AM + 60, "x");
        assert!(notices.is_empty());
        assert_eq!(cut.mute.as_ref().unwrap().until, TWO_AM + 600);
        // Removed from the document: the next run ends the mute, and says why.
        let (gone, notices) = play_for(&target(), state, TWO_AM + 120, "x");
        assert_eq!(kinds(&notices), ["unmuted"]);
        let (mute, health) = ended(&notices[0].1);
        assert!(mute.window_gone);
        assert_eq!((mute.until, health), (TWO_AM + 120, Health::Up));
        assert!(gone.mute.is_none());
    }

    #[test]
    fn a_mute_lifted_before_a_window_opens_lets_the_window_mute_at_its_first_run() {
        let (up, _) = play_for(&patched(), TargetState::new(0), TWO_AM - 300, ".");
        let muted = crate::mute::mute_from_chat(&up, "alice", "prep", 3600, TWO_AM - 290);
        let lifted =
            crate::mute::unmute_from_chat(&muted, &patched().maintenance, "bob", TWO_AM - 230)
                .unwrap();
        let (state, notices) = play_for(&patched(), lifted, TWO_AM + 40, "x");
        assert_eq!(
            kinds(&notices),
            ["unmuted"],
            "the lift is told, the failure held"
        );
        let mute = state.mute.unwrap();
        assert!(mute.window);
        assert_eq!(mute.held_count, 0, "one failure is not yet down");
    }
}
