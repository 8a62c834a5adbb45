//! Pure decisions: how far an alarm is past its threshold, which step that selects, what capacity
//! follows, and whether cooldowns, warm-up, deployments or a manual override hold it back.
//! No I/O and no clock: the time is an input.

use std::collections::BTreeMap;

use ops_core::plan::Plan;
use ops_core::time::utc_text;
use serde::Serialize;

use crate::contract::{
    self, AdjustmentKind, Bound, LastAction, Memory, Override, Policy, Step, TargetRef,
};

/// An alarm as observed, with its policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmView {
    /// Alarm name.
    pub name: String,
    /// Whether it is in ALARM now.
    pub in_alarm: bool,
    /// When its state last changed, epoch milliseconds (part of the idempotency key).
    pub state_millis: u64,
    /// Metric name, for the alert.
    pub metric: String,
    /// Threshold.
    pub threshold: f64,
    /// Whether it fires above the threshold (otherwise below).
    pub greater: bool,
    /// The newest datapoint, if CloudWatch said.
    pub value: Option<f64>,
    /// Its scaling policy.
    pub policy: Policy,
}

/// A target as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetView {
    /// What it is.
    pub target: TargetRef,
    /// Where its tags live: the group name, or the service ARN.
    pub tag_resource: String,
    /// Desired capacity now.
    pub desired: i32,
    /// Lower bound.
    pub min: i32,
    /// Upper bound.
    pub max: i32,
    /// Why scale-in must wait (a deployment or swap in flight, instances launching or terminating).
    pub busy: Option<String>,
    /// Instances still warming up (groups): no scale-in, and re-evaluations do not add more.
    pub warming: bool,
    /// Native scaling on the same target (policies, scheduled actions).
    pub native: Vec<String>,
    /// What the scaler remembers on it.
    pub memory: Memory,
}

/// Why the function was asked to look at an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The alarm changed state (EventBridge or the alarm's own action).
    StateChange,
    /// The schedule looks again at an alarm still in ALARM.
    Reevaluation,
}

/// What to do when the target also has native scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coexistence {
    /// Do nothing to it, and say so.
    Refuse,
    /// Scale it anyway, and say so.
    Warn,
}

/// Everything the scaler may do to AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Set tags on the target.
    Remember {
        /// The target.
        target: TargetRef,
        /// Group name or service ARN.
        tag_resource: String,
        /// Tags to set.
        tags: BTreeMap<String, String>,
    },
    /// Set the target's desired capacity.
    SetCapacity {
        /// The target.
        target: TargetRef,
        /// Capacity before.
        from: i32,
        /// Capacity after.
        to: i32,
    },
    /// Remove tags from the target.
    Forget {
        /// The target.
        target: TargetRef,
        /// Group name or service ARN.
        tag_resource: String,
        /// Tag keys to remove.
        keys: Vec<String>,
    },
}

/// The arithmetic behind a scaling, for the alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scaling {
    /// The alarm.
    pub alarm: String,
    /// Metric name.
    pub metric: String,
    /// The datapoint, if known.
    pub value: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// `>` or `<`.
    pub operator: &'static str,
    /// How far past the threshold.
    pub breach: f64,
    /// The step selected.
    pub step: Step,
    /// The adjustment kind.
    pub kind: AdjustmentKind,
    /// Capacity before.
    pub from: i32,
    /// Capacity the step asked for.
    pub computed: i32,
    /// Capacity after the min/max clamp.
    pub to: i32,
    /// Which bound clamped it, if one did.
    pub clamped_by: Option<String>,
}

impl Scaling {
    /// The bound that clamped the step's ask, if one did: the max when it asked for more.
    pub fn clamped_at(&self) -> Option<Bound> {
        match self.computed.cmp(&self.to) {
            std::cmp::Ordering::Greater => Some(Bound::Max),
            std::cmp::Ordering::Less => Some(Bound::Min),
            std::cmp::Ordering::Equal => None,
        }
    }
}

/// A decision about one alarm and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What to change.
    pub plan: Plan<Action>,
    /// The scaling the plan makes, for the alert (none when nothing changes).
    pub scaling: Option<Scaling>,
    /// Something ops must hear about even if nothing changes (native scaling on the target).
    pub warning: Option<String>,
    /// What the invocation records, and claims the target with, before it acts on `plan`; after
    /// the alert it is marked alerted (so a run that stopped before alerting leaves the alert to
    /// the next, and one that alerted never alerts again). None when nothing is to be done.
    pub record: Option<Record>,
}

impl Decision {
    fn hold(note: String) -> Self {
        Decision {
            plan: Plan::new().note(note),
            scaling: None,
            warning: None,
            record: None,
        }
    }
}

/// A change recorded on the target (`ops:scale-last`, and the cooldown of its direction) before it
/// is made, claimed by the invocation that makes it.
///
/// Auto Scaling and ECS have no conditional write for a capacity, so two invocations that decide
/// at once (an alarm's event and the schedule, an event delivered twice at once) would both act
/// and both alert. Each writes the record with a claim of its own, re-reads the target, and acts
/// (then alerts) only if its claim is still there and the target is as it decided on: of two that
/// overlap, the one that re-reads after the other acted or claimed stands back. Only two whose
/// claims and re-reads all come before either resizes both act (the same change, when they decided
/// on the same state) and both alert it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record, without a claim.
    pub last: LastAction,
    /// The cooldown tag the change starts, set to the decision's time.
    pub stamp: Option<(&'static str, u64)>,
    /// Further tags written in the same call (a chat command's override).
    pub also: BTreeMap<String, String>,
}

impl Record {
    fn new(last: LastAction, stamp: Option<(&'static str, u64)>) -> Self {
        Record {
            last: LastAction {
                claim: None,
                alerted: false,
                ..last
            },
            stamp,
            also: BTreeMap::new(),
        }
    }

    /// The record as invocation `claim` writes it.
    pub fn claimed(&self, claim: &str) -> LastAction {
        LastAction {
            claim: Some(claim.to_string()),
            ..self.last.clone()
        }
    }

    /// Write the record under `claim` on `target` (with the cooldown stamp).
    pub fn claim(&self, target: &TargetView, claim: &str) -> Action {
        let mut tags = self.also.clone();
        tags.insert(contract::LAST.to_string(), self.claimed(claim).encode());
        if let Some((tag, at)) = self.stamp {
            tags.insert(tag.to_string(), at.to_string());
        }
        Action::Remember {
            target: target.target.clone(),
            tag_resource: target.tag_resource.clone(),
            tags,
        }
    }

    /// Mark the record alerted, once the alert is out.
    pub fn alerted(&self, target: &TargetView, claim: &str) -> Action {
        Action::Remember {
            target: target.target.clone(),
            tag_resource: target.tag_resource.clone(),
            tags: BTreeMap::from([(
                contract::LAST.to_string(),
                LastAction {
                    alerted: true,
                    ..self.claimed(claim)
                }
                .encode(),
            )]),
        }
    }
}

/// Decide what `alarm` asks of `target` at `now`.
pub fn decide_scaling(
    alarm: &AlarmView,
    target: &TargetView,
    trigger: Trigger,
    now: u64,
    coexistence: Coexistence,
) -> Decision {
    let who = &target.target;
    if !alarm.in_alarm {
        return Decision::hold(format!(
            "{}: alarm {} is no longer in ALARM",
            who, alarm.name
        ));
    }
    if let Some(manual) = target.memory.manual.as_ref().filter(|m| m.until > now) {
        return Decision::hold(format!(
            "{who}: held at {} by {}'s manual override until {}",
            manual.count,
            manual.by,
            utc_text(manual.until)
        ));
    }
    let mut warning = None;
    if !target.native.is_empty() {
        let found = format!(
            "{who} also has native scaling ({})",
            target.native.join(", ")
        );
        match coexistence {
            Coexistence::Refuse => {
                return Decision {
                    plan: Plan::new().note(format!("{found}; not scaling it (COEXISTENCE=refuse)")),
                    scaling: None,
                    warning: Some(format!(
                        "{found}. cpu-alarm-scaler does not fight it and left {who} alone."
                    )),
                    record: None,
                }
            }
            Coexistence::Warn => {
                warning = Some(format!(
                "{found}; scaling it anyway (COEXISTENCE=warn), they may work against each other."
            ))
            }
        }
    }
    let key = match trigger {
        Trigger::StateChange => format!("{}@{}", alarm.name, alarm.state_millis),
        Trigger::Reevaluation => format!("{}@{}+{}", alarm.name, alarm.state_millis, now),
    };
    // The scaling recorded for this trigger, for an alert that has yet to go out.
    let recorded = |last: &LastAction| Scaling {
        from: last.from,
        to: last.to,
        ..compute(alarm, target)
    };
    if let Some(last) = target.memory.last.as_ref().filter(|l| l.key == key) {
        let finished = target.desired == last.to && last.from != last.to;
        if finished && !last.alerted {
            // A run scaled and stopped before alerting: alert now.
            return Decision {
                plan: Plan::new().note(format!(
                    "{who}: {key} scaled to {} before; alerting it",
                    last.to
                )),
                scaling: Some(recorded(last)),
                warning,
                record: Some(Record::new(last.clone(), None)),
            };
        }
        if target.desired != last.from || last.from == last.to {
            return Decision {
                warning,
                ..Decision::hold(format!(
                    "{who}: already acted on {key} (to {}); now at {}",
                    last.to, target.desired
                ))
            };
        }
        // A run recorded its intent and stopped before changing the capacity, which is still where
        // it was: finish it. (Capacity changed since by anyone else is left alone, above.)
        let plan = Plan::new().change(
            Action::SetCapacity {
                target: who.clone(),
                from: target.desired,
                to: last.to,
            },
            format!("finish the scaling to {} recorded for {key}", last.to),
        );
        return Decision {
            plan,
            scaling: Some(recorded(last)),
            warning,
            record: Some(Record::new(last.clone(), None)),
        };
    }
    let scaling = compute(alarm, target);
    if scaling.to == target.desired {
        let bound = scaling
            .clamped_by
            .as_deref()
            .map(|b| format!(" ({b})"))
            .unwrap_or_default();
        return Decision {
            warning,
            ..Decision::hold(format!("{who}: stays at {}{bound}", target.desired))
        };
    }
    let out = scaling.to > target.desired;
    let (last_at, direction, state_tag) = if out {
        (target.memory.out_at, "scale-out", contract::OUT_AT)
    } else {
        (target.memory.in_at, "scale-in", contract::IN_AT)
    };
    if let Some(until) = last_at
        .map(|at| at + alarm.policy.cooldown)
        .filter(|until| *until > now)
    {
        return Decision {
            warning,
            ..Decision::hold(format!(
                "{who}: {direction} cooldown until {}",
                utc_text(until)
            ))
        };
    }
    if !out {
        if let Some(busy) = &target.busy {
            return Decision {
                warning,
                ..Decision::hold(format!("{who}: no scale-in while {busy}"))
            };
        }
    }
    if target.warming && (!out || trigger == Trigger::Reevaluation) {
        return Decision {
            warning,
            ..Decision::hold(format!("{who}: instances are still warming up"))
        };
    }
    let last = LastAction {
        key: key.clone(),
        from: target.desired,
        to: scaling.to,
        alerted: false,
        claim: None,
    };
    let reason = format!(
        "{} is {} {} {} (step {}), so {who} goes from {} to {}",
        alarm.name,
        scaling
            .value
            .map(|v| format!("{v}"))
            .unwrap_or_else(|| "in ALARM at".into()),
        scaling.operator,
        scaling.threshold,
        step_text(&scaling.step),
        scaling.from,
        scaling.to
    );
    let plan = Plan::new()
        .note(format!("{who}: {key} is recorded before acting"))
        .change(
            Action::SetCapacity {
                target: who.clone(),
                from: target.desired,
                to: scaling.to,
            },
            reason,
        );
    Decision {
        plan,
        scaling: Some(scaling),
        warning,
        record: Some(Record::new(last, Some((state_tag, now)))),
    }
}

/// What `alarm`'s step asks of `target` now, clamped to its bounds.
pub(crate) fn compute(alarm: &AlarmView, target: &TargetView) -> Scaling {
    let breach = alarm
        .value
        .map(|v| {
            if alarm.greater {
                v - alarm.threshold
            } else {
                alarm.threshold - v
            }
        })
        .map(|b| b.max(0.0))
        .unwrap_or(0.0);
    let step = alarm
        .policy
        .steps
        .iter()
        .find(|s| breach >= s.lower && s.upper.is_none_or(|u| breach < u))
        .or(alarm.policy.steps.last())
        .cloned()
        .expect("a policy has at least one step");
    let computed = match alarm.policy.kind {
        AdjustmentKind::Change => target.desired.saturating_add(step.adjustment),
        AdjustmentKind::Exact => step.adjustment,
        AdjustmentKind::Percent => target.desired.saturating_add(percent_delta(
            target.desired,
            step.adjustment,
            alarm.policy.min_step,
        )),
    };
    let to = computed.clamp(target.min, target.max);
    let clamped_by = match to.cmp(&computed) {
        std::cmp::Ordering::Less => Some(format!(
            "clamped to its maximum {} (asked for {computed})",
            target.max
        )),
        std::cmp::Ordering::Greater => Some(format!(
            "clamped to its minimum {} (asked for {computed})",
            target.min
        )),
        std::cmp::Ordering::Equal => None,
    };
    Scaling {
        alarm: alarm.name.clone(),
        metric: alarm.metric.clone(),
        value: alarm.value,
        threshold: alarm.threshold,
        operator: if alarm.greater { ">" } else { "<" },
        breach,
        step,
        kind: alarm.policy.kind,
        from: target.desired,
        computed,
        to,
        clamped_by,
    }
}

/// Percent of current capacity, truncated toward zero, at least `min_step` in magnitude.
fn percent_delta(current: i32, percent: i32, min_step: i32) -> i32 {
    if percent == 0 {
        return 0;
    }
    let delta = (i64::from(current) * i64::from(percent) / 100) as i32;
    if delta.abs() < min_step {
        min_step * percent.signum()
    } else {
        delta
    }
}

/// How an override that has run out ends: at most one capacity change, and the override forgotten.
#[derive(Debug, Clone, PartialEq)]
pub struct Expiry {
    /// What to change.
    pub plan: Plan<Action>,
    /// The override that ended.
    pub manual: Override,
    /// Capacity before (the held capacity).
    pub from: i32,
    /// Capacity after.
    pub to: i32,
    /// Why capacity did not simply go back to the override's `revert` (an alarm in ALARM), for
    /// the alert; none when it went back as asked.
    pub why: Option<String>,
    /// Recorded (and claimed) before the plan is acted on: key `override-end@<until>`, from and
    /// to, and the cooldown an alarm-shaped change starts.
    pub record: Record,
    /// Applied once the alert is out: the override forgotten. Until then the override stays, so a
    /// run that stops after resizing (or after failing to alert) leaves the end to the next tick,
    /// which finishes it from the record and alerts it.
    pub forget: Action,
}

/// The tag key recorded for the end of `manual`, so a run that stopped between recording and
/// resizing is finished, once, by the next schedule tick.
fn expiry_key(manual: &Override) -> String {
    format!("override-end@{}", manual.until)
}

/// An override that has run out, decided together with the alarms in ALARM on the same target
/// (DESIGN.md "Event order" 8, expiry under load), so one tick makes one change:
///
/// - a scale-out alarm (one that fires on a high metric, whatever its adjustment asks) firing:
///   capacity never goes below what its step asks from the held
///   capacity (the held capacity itself while its scale-out cooldown or warm-up holds it back),
///   nor below `revert` if that is higher;
/// - only a scale-in alarm firing: the lower of `revert` and what it asks when it is free to act;
///   held back (cooldown, a deployment, warm-up), down to `revert` if that is lower, never up;
/// - no alarm firing: back to `revert`, as asked.
///
/// Always within min/max. A change an alarm shaped starts the cooldown of its direction only.
/// Every change is recorded first (`ops:scale-last`, key `override-end@<until>`) and the override
/// is forgotten only after the alert ([`Expiry::forget`]), so a crash between recording, resizing,
/// alerting and forgetting is finished by the next tick, which resizes only if the capacity is
/// still where the record started and alerts the recorded change. Alarms on other targets are
/// ignored; with native scaling and `COEXISTENCE=refuse`, alarms do not scale the target, so the
/// override simply reverts.
pub fn decide_override_expiry(
    target: &TargetView,
    alarms: &[AlarmView],
    now: u64,
    coexistence: Coexistence,
) -> Option<Expiry> {
    let manual = target.memory.manual.clone().filter(|m| m.until <= now)?;
    let who = &target.target;
    let desired = target.desired;
    let revert = manual.revert.clamp(target.min, target.max);
    let key = expiry_key(&manual);
    let forget = Action::Forget {
        target: who.clone(),
        tag_resource: target.tag_resource.clone(),
        keys: vec![contract::OVERRIDE.into()],
    };
    let ended = format!(
        "{}'s override of {who} ended at {}",
        manual.by,
        utc_text(manual.until)
    );
    if let Some(last) = target.memory.last.as_ref().filter(|l| l.key == key) {
        // A run decided this end, recorded it and stopped: finish it while the capacity is still
        // where it started; if anyone moved it since, leave it where it is.
        let to = if desired == last.from {
            last.to
        } else {
            desired
        };
        let mut plan = Plan::new();
        if to != desired {
            plan = plan.change(
                Action::SetCapacity {
                    target: who.clone(),
                    from: desired,
                    to,
                },
                format!("{ended}; finish the change to {to} recorded for it"),
            );
        }
        // The alert tells the recorded change when capacity is where it ended (resized now or by
        // the run that stopped); capacity someone moved since is only said where it is.
        let from = if to == last.to { last.from } else { desired };
        let why = (last.to != revert).then(|| {
            format!(
                "this end was decided before as {} to {}, with an alarm in ALARM",
                last.from, last.to
            )
        });
        return Some(Expiry {
            plan,
            manual,
            from,
            to,
            why,
            record: Record::new(last.clone(), None),
            forget,
        });
    }
    let firing: Vec<(&AlarmView, Scaling)> = alarms
        .iter()
        .filter(|a| a.in_alarm && a.policy.target == *who)
        .filter(|_| target.native.is_empty() || coexistence == Coexistence::Warn)
        .map(|a| (a, compute(a, target)))
        .collect();
    let cooling = |at: Option<u64>, alarm: &AlarmView| {
        at.map(|at| at + alarm.policy.cooldown)
            .filter(|until| *until > now)
    };
    let asked = |alarm: &AlarmView, scaling: &Scaling| {
        format!(
            "{} is in ALARM ({} {} {}, step {}) and asks for {} from the held {desired}{}",
            alarm.name,
            scaling
                .value
                .map(|v| v.to_string())
                .unwrap_or_else(|| "no datapoint".into()),
            scaling.operator,
            scaling.threshold,
            step_text(&scaling.step),
            scaling.to,
            scaling
                .clamped_by
                .as_deref()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default()
        )
    };
    // An alarm's direction is its comparison (a high metric asks for capacity), not how its ask
    // compares with the held capacity: an `exact` scale-out alarm asking for 4 from a held 6 still
    // puts a floor of 4 under the end of the override.
    let out = firing
        .iter()
        .filter(|(a, _)| a.greater)
        .max_by_key(|(_, s)| s.to);
    let scale_in = firing
        .iter()
        .filter(|(a, _)| !a.greater)
        .min_by_key(|(_, s)| s.to);
    let (to, why) = if let Some((alarm, scaling)) = out {
        let held = match cooling(target.memory.out_at, alarm) {
            Some(until) => Some(format!("scale-out cooldown until {}", utc_text(until))),
            None if target.warming => Some("instances are still warming up".to_string()),
            None => None,
        };
        let floor = if held.is_some() { desired } else { scaling.to };
        let to = revert.max(floor);
        let outcome = if to == revert {
            format!("back to {to}, the override's revert, which is at least that")
        } else if to > desired {
            format!("so it rose to {to} instead of going back to {revert}")
        } else if to < desired {
            format!("so it went down only to {to} instead of back to {revert}")
        } else {
            format!("so it stays at {to} instead of going back to {revert}")
        };
        let held = held.map(|h| format!(" ({h})")).unwrap_or_default();
        (
            to,
            Some(format!("{}{held}; {outcome}", asked(alarm, scaling))),
        )
    } else if let Some((alarm, scaling)) = scale_in {
        let held = match cooling(target.memory.in_at, alarm) {
            Some(until) => Some(format!("scale-in cooldown until {}", utc_text(until))),
            None => match (&target.busy, target.warming) {
                (Some(busy), _) => Some(format!("no scale-in while {busy}")),
                (None, true) => Some("instances are still warming up".to_string()),
                (None, false) => None,
            },
        };
        match held {
            // The scale-in may not act: the override goes back down as asked, nothing more, and
            // never up while the alarm asks for less.
            Some(_) if revert <= desired => (revert, None),
            Some(held) => (
                desired,
                Some(format!(
                    "{} ({held}); so it stays at {desired} instead of going back up to {revert}",
                    asked(alarm, scaling)
                )),
            ),
            None => {
                let to = revert.min(scaling.to);
                (
                    to,
                    Some(format!(
                        "{}; back to {to}, the lower of the override's revert {revert} and that",
                        asked(alarm, scaling)
                    )),
                )
            }
        }
    } else {
        (revert, None)
    };
    let mut plan = Plan::new().note(format!("{who}: {key} is recorded before acting"));
    let stamp = match (why.is_some(), to.cmp(&desired)) {
        (true, std::cmp::Ordering::Greater) => Some((contract::OUT_AT, now)),
        (true, std::cmp::Ordering::Less) => Some((contract::IN_AT, now)),
        _ => None,
    };
    let record = Record::new(
        LastAction {
            key: key.clone(),
            from: desired,
            to,
            alerted: false,
            claim: None,
        },
        stamp,
    );
    if to != desired {
        let reason = match &why {
            Some(why) => format!("{ended}; {why}"),
            None => format!("{ended}; back to {to}"),
        };
        plan = plan.change(
            Action::SetCapacity {
                target: who.clone(),
                from: desired,
                to,
            },
            reason,
        );
    } else if let Some(why) = &why {
        plan = plan.note(format!("{ended}; {why}"));
    }
    Some(Expiry {
        plan,
        manual,
        from: desired,
        to,
        why,
        record,
        forget,
    })
}

/// Hold `target` at `count` for `seconds`, then go back. `count` must be inside min..max.
///
/// The plan shows the whole command (the override recorded, then the resize); applied, the
/// override is written with the command's claim ([`Record`], key `override-set@<until>`) and the
/// resize follows from the plan's second change on. The override stays `pending` until its alert
/// is out ([`settle_override`]).
pub fn decide_override(
    target: &TargetView,
    count: i32,
    seconds: u64,
    by: &str,
    now: u64,
) -> Result<(Plan<Action>, Override, Record), String> {
    if count < target.min || count > target.max {
        return Err(format!(
            "{} can hold {} to {}; {count} is outside (change its bounds first if you mean it)",
            target.target, target.min, target.max
        ));
    }
    // A new override keeps the capacity from before the first one, so expiry returns there.
    let revert = target
        .memory
        .manual
        .as_ref()
        .map(|m| m.revert)
        .unwrap_or(target.desired);
    // Its alert starts where ops last heard: an override whose alert never went out was not heard.
    let pending = target
        .memory
        .manual
        .as_ref()
        .and_then(|m| m.pending)
        .unwrap_or(target.desired);
    let manual = Override {
        count,
        until: now + seconds,
        revert,
        by: by.to_string(),
        pending: Some(pending),
        set_at: now,
    };
    let tags = BTreeMap::from([(contract::OVERRIDE.to_string(), manual.encode())]);
    let record = Record {
        also: tags.clone(),
        ..Record::new(
            LastAction {
                key: format!("override-set@{}", manual.until),
                from: target.desired,
                to: count,
                alerted: false,
                claim: None,
            },
            None,
        )
    };
    let mut plan = Plan::new().change(
        Action::Remember {
            target: target.target.clone(),
            tag_resource: target.tag_resource.clone(),
            tags,
        },
        format!(
            "{by} holds {} at {count} until {}",
            target.target,
            utc_text(manual.until)
        ),
    );
    if count != target.desired {
        plan = plan.change(
            Action::SetCapacity {
                target: target.target.clone(),
                from: target.desired,
                to: count,
            },
            format!("manual override by {by}"),
        );
    }
    Ok((plan, manual, record))
}

/// The override as it is once its alert is out (no longer `pending`), and its record marked
/// alerted under `claim`: written after the alert.
pub fn settle_override(
    target: &TargetView,
    manual: &Override,
    record: &Record,
    claim: &str,
) -> Action {
    let settled = Override {
        pending: None,
        ..manual.clone()
    };
    let alerted = LastAction {
        alerted: true,
        ..record.claimed(claim)
    };
    Action::Remember {
        target: target.target.clone(),
        tag_resource: target.tag_resource.clone(),
        tags: BTreeMap::from([
            (contract::OVERRIDE.to_string(), settled.encode()),
            (contract::LAST.to_string(), alerted.encode()),
        ]),
    }
}

/// An override whose command stopped before its alert went out, as the schedule finishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    /// The resize the command did not make (none when capacity is at the count, or the override
    /// has run out: then its end decides).
    pub plan: Plan<Action>,
    /// The override.
    pub manual: Override,
    /// The alert's "before": the capacity ops last heard of.
    pub from: i32,
    /// Capacity once the plan is applied.
    pub to: i32,
    /// Whether to alert the override (always while it lasts; once run out, only if capacity did
    /// move to its count).
    pub alert: bool,
    /// Recorded (and claimed) before the plan: key `override-set@<until>`; after the alert the
    /// override is settled with it ([`settle_override`]).
    pub record: Record,
}

/// How long one invocation of the function can run (the template's `Timeout`): a pending override
/// younger than this may belong to a command still at work.
pub const IN_FLIGHT_SECONDS: u64 = 60;

/// Finish an override whose command recorded it and stopped (before resizing or before alerting;
/// the person saw an error): while it lasts, hold the target at its count as the command meant,
/// then alert it once from where ops last heard. `None` for an override whose alert is out, or
/// one recorded less than [`IN_FLIGHT_SECONDS`] ago (its command may still be at work).
pub fn decide_unfinished_override(target: &TargetView, now: u64) -> Option<Unfinished> {
    let manual = target.memory.manual.clone()?;
    let from = manual.pending?;
    if manual.set_at + IN_FLIGHT_SECONDS > now {
        return None;
    }
    let lasting = manual.until > now;
    let desired = target.desired;
    let mut plan = Plan::new();
    let to = if lasting { manual.count } else { desired };
    if to != desired {
        plan = plan.change(
            Action::SetCapacity {
                target: target.target.clone(),
                from: desired,
                to,
            },
            format!(
                "{}'s override was recorded but not applied: hold {} at {to} until {}",
                manual.by,
                target.target,
                utc_text(manual.until)
            ),
        );
    }
    Some(Unfinished {
        plan,
        alert: lasting || (to == manual.count && to != from),
        record: Record::new(
            LastAction {
                key: format!("override-set@{}", manual.until),
                from: desired,
                to,
                alerted: false,
                claim: None,
            },
            None,
        ),
        manual,
        from,
        to,
    })
}

/// `0..10: +1` style text for a step.
pub fn step_text(step: &Step) -> String {
    let upper = step
        .upper
        .map(|u| u.to_string())
        .unwrap_or_else(|| "∞".into());
    format!("{}..{upper}: {:+}", step.lower, step.adjustment)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::contract::parse_steps;

    const NOW: u64 = 1_795_000_000;

    /// `workers-cpu-high` (> 90) at `value`, scaling group `workers` by `steps` of `kind`.
    pub(crate) fn alarm(value: f64, steps: &str, kind: AdjustmentKind) -> AlarmView {
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
                steps: parse_steps(steps).unwrap(),
                kind,
                min_step: 1,
                cooldown: 300,
            },
        }
    }

    /// Group `workers` (1..6) at `desired`, remembering nothing.
    pub(crate) fn group(desired: i32) -> TargetView {
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
            memory: Memory::default(),
        }
    }

    fn to(decision: &Decision) -> Option<i32> {
        decision.plan.changes.iter().find_map(|c| match c.action {
            Action::SetCapacity { to, .. } => Some(to),
            _ => None,
        })
    }

    #[test]
    fn the_step_is_chosen_by_how_far_the_metric_is_past_the_threshold() {
        let steps = "0:5:+1 5:10:+2 10::+3";
        for (value, expected) in [
            (90.5, 3),
            (94.9, 3),
            (95.0, 4),
            (99.9, 4),
            (100.0, 5),
            (140.0, 5),
        ] {
            let decision = decide_scaling(
                &alarm(value, steps, AdjustmentKind::Change),
                &group(2),
                Trigger::StateChange,
                NOW,
                Coexistence::Refuse,
            );
            assert_eq!(to(&decision), Some(expected), "value {value}");
        }
    }

    #[test]
    fn percent_and_exact_adjustments() {
        let percent = alarm(95.0, "0::+50", AdjustmentKind::Percent);
        assert_eq!(
            to(&decide_scaling(
                &percent,
                &group(4),
                Trigger::StateChange,
                NOW,
                Coexistence::Refuse
            )),
            Some(6)
        );
        assert_eq!(
            to(&decide_scaling(
                &percent,
                &group(1),
                Trigger::StateChange,
                NOW,
                Coexistence::Refuse
            )),
            Some(2),
            "at least min-step"
        );
        let exact = alarm(95.0, "0::+5", AdjustmentKind::Exact);
        assert_eq!(
            to(&decide_scaling(
                &exact,
                &group(2),
                Trigger::StateChange,
                NOW,
                Coexistence::Refuse
            )),
            Some(5)
        );
    }

    #[test]
    fn capacity_is_clamped_to_min_and_max_and_says_so() {
        let decision = decide_scaling(
            &alarm(95.0, "0::+10", AdjustmentKind::Change),
            &group(3),
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert_eq!(to(&decision), Some(6));
        assert_eq!(
            decision.scaling.unwrap().clamped_by.as_deref(),
            Some("clamped to its maximum 6 (asked for 13)")
        );
        let mut low = alarm(50.0, "0::-10", AdjustmentKind::Change);
        low.greater = false;
        low.threshold = 70.0;
        let decision = decide_scaling(
            &low,
            &group(3),
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert_eq!(to(&decision), Some(1));
        let at_max = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &group(6),
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert!(at_max.plan.is_empty());
        assert_eq!(
            at_max.plan.notes,
            ["asg:workers: stays at 6 (clamped to its maximum 6 (asked for 7))"]
        );
    }

    #[test]
    fn cooldowns_are_separate_so_a_scale_in_cooldown_never_blocks_scale_out() {
        let mut target = group(3);
        target.memory.in_at = Some(NOW - 10);
        let out = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert_eq!(
            to(&out),
            Some(4),
            "scale-out is not blocked by the recent scale-in"
        );
        target.memory.out_at = Some(NOW - 10);
        let blocked = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &target,
            Trigger::Reevaluation,
            NOW,
            Coexistence::Refuse,
        );
        assert!(blocked.plan.is_empty());
        assert!(
            blocked.plan.notes[0].starts_with("asg:workers: scale-out cooldown until"),
            "{:?}",
            blocked.plan.notes
        );
    }

    #[test]
    fn scale_in_waits_for_a_deployment_in_flight() {
        let mut low = alarm(50.0, "0::-1", AdjustmentKind::Change);
        low.greater = false;
        low.threshold = 70.0;
        let mut target = group(3);
        target.busy = Some("deployment ecs-svc/1 is IN_PROGRESS".into());
        let decision = decide_scaling(
            &low,
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert_eq!(
            decision.plan.notes,
            ["asg:workers: no scale-in while deployment ecs-svc/1 is IN_PROGRESS"]
        );
    }

    #[test]
    fn the_same_trigger_acts_once_and_a_half_finished_run_is_completed() {
        let high = alarm(95.0, "0::+1", AdjustmentKind::Change);
        let key = format!("workers-cpu-high@{}", (NOW - 60) * 1000);
        let mut target = group(3);
        target.memory.last = Some(LastAction {
            key: key.clone(),
            from: 2,
            to: 3,
            alerted: true,
            claim: None,
        });
        target.memory.out_at = Some(NOW - 5);
        let again = decide_scaling(
            &high,
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert!(again.plan.is_empty(), "{:?}", again.plan);
        target.desired = 2;
        let resumed = decide_scaling(
            &high,
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert_eq!(
            to(&resumed),
            Some(3),
            "intent recorded, capacity untouched: finish it"
        );
        target.desired = 5;
        let changed_since = decide_scaling(
            &high,
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert!(
            changed_since.plan.is_empty(),
            "someone else changed it since: a stale duplicate leaves it alone"
        );
    }

    #[test]
    fn native_scaling_is_refused_or_warned_about() {
        let mut target = group(2);
        target.native = vec!["scaling policy `cpu-target`".into()];
        let refused = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert!(refused.plan.is_empty());
        assert!(refused.warning.unwrap().contains("does not fight it"));
        let warned = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Warn,
        );
        assert_eq!(to(&warned), Some(3));
        assert!(warned.warning.is_some());
    }

    #[test]
    fn an_override_holds_then_reverts_to_what_was_before() {
        let mut target = group(2);
        let (plan, manual, _) = decide_override(&target, 5, 3600, "alice", NOW).unwrap();
        assert_eq!(plan.changes.len(), 2);
        assert_eq!((manual.revert, manual.until), (2, NOW + 3600));
        assert!(decide_override(&target, 9, 3600, "alice", NOW)
            .unwrap_err()
            .contains("can hold 1 to 6; 9 is outside"));
        target.desired = 5;
        target.memory.manual = Some(manual);
        let held = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &target,
            Trigger::StateChange,
            NOW + 60,
            Coexistence::Refuse,
        );
        assert!(
            held.plan.notes[0].contains("manual override"),
            "{:?}",
            held.plan.notes
        );
        assert!(decide_override_expiry(&target, &[], NOW + 3599, Coexistence::Refuse).is_none());
        let expiry = decide_override_expiry(&target, &[], NOW + 3600, Coexistence::Refuse).unwrap();
        assert_eq!(capacity_changes(&expiry.plan), [(5, 2)]);
        assert_eq!(
            remembered(&expiry).into_keys().collect::<Vec<_>>(),
            [contract::LAST],
            "a plain revert is recorded before it resizes, and starts no cooldown"
        );
        assert!(forgets_the_override(&expiry), "after the alert");
        assert_eq!(expiry.why, None);
    }

    #[test]
    fn warming_instances_block_scale_in_and_more_scale_out_from_reevaluation() {
        let mut target = group(3);
        target.warming = true;
        let first = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &target,
            Trigger::StateChange,
            NOW,
            Coexistence::Refuse,
        );
        assert_eq!(
            to(&first),
            Some(4),
            "a new alarm state change still scales out"
        );
        let again = decide_scaling(
            &alarm(95.0, "0::+1", AdjustmentKind::Change),
            &target,
            Trigger::Reevaluation,
            NOW,
            Coexistence::Refuse,
        );
        assert_eq!(
            again.plan.notes,
            ["asg:workers: instances are still warming up"]
        );
    }

    /// Group `workers` held at 6 by alice's override (revert 3) that ended at `NOW`, max 10.
    fn held_at_six(revert: i32) -> TargetView {
        let mut target = group(6);
        target.max = 10;
        target.memory.manual = Some(Override {
            count: 6,
            until: NOW,
            revert,
            by: "alice".into(),
            pending: None,
            set_at: 0,
        });
        target
    }

    fn capacity_changes(plan: &Plan<Action>) -> Vec<(i32, i32)> {
        plan.changes
            .iter()
            .filter_map(|c| match c.action {
                Action::SetCapacity { from, to, .. } => Some((from, to)),
                _ => None,
            })
            .collect()
    }

    /// The tags an expiry records before it acts.
    fn remembered(expiry: &Expiry) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([(contract::LAST.to_string(), expiry.record.last.encode())]);
        if let Some((tag, at)) = expiry.record.stamp {
            tags.insert(tag.to_string(), at.to_string());
        }
        tags
    }

    fn forgets_the_override(expiry: &Expiry) -> bool {
        matches!(
            &expiry.forget,
            Action::Forget { keys, .. } if keys == &[contract::OVERRIDE.to_string()]
        ) && !expiry
            .plan
            .changes
            .iter()
            .any(|c| matches!(c.action, Action::Forget { .. }))
    }

    #[test]
    fn an_override_ending_under_a_scale_out_alarm_scales_out_once_and_never_reverts_below_it() {
        let target = held_at_six(3);
        let high = alarm(95.0, "0::+1", AdjustmentKind::Change);

        let expiry = decide_override_expiry(
            &target,
            std::slice::from_ref(&high),
            NOW + 30,
            Coexistence::Refuse,
        )
        .unwrap();

        assert_eq!(
            capacity_changes(&expiry.plan),
            [(6, 7)],
            "one change, no 7 to 3"
        );
        assert_eq!((expiry.from, expiry.to), (6, 7));
        let tags = remembered(&expiry);
        assert_eq!(tags.get(contract::OUT_AT), Some(&(NOW + 30).to_string()));
        assert!(
            !tags.contains_key(contract::IN_AT),
            "only its own direction's cooldown"
        );
        assert_eq!(
            LastAction::decode(&tags[contract::LAST]).map(|l| (l.key, l.from, l.to)),
            Some((format!("override-end@{NOW}"), 6, 7))
        );
        assert!(forgets_the_override(&expiry));
        let why = expiry.why.unwrap();
        assert!(
            why.contains("workers-cpu-high is in ALARM")
                && why.contains("rose to 7 instead of going back to 3"),
            "{why}"
        );

        // The next tick, inside the scale-out cooldown, the override is gone and nothing reverts.
        let mut after = target.clone();
        after.desired = 7;
        after.memory.manual = None;
        after.memory.out_at = Some(NOW + 30);
        let next = decide_scaling(
            &high,
            &after,
            Trigger::Reevaluation,
            NOW + 90,
            Coexistence::Refuse,
        );
        assert!(next.plan.is_empty(), "{:?}", next.plan);
        assert!(decide_override_expiry(&after, &[high], NOW + 90, Coexistence::Refuse).is_none());
    }

    #[test]
    fn an_override_ending_under_a_scale_out_alarm_clamped_at_max_stays_where_it_is() {
        let mut target = held_at_six(3);
        target.max = 6;

        let expiry = decide_override_expiry(
            &target,
            &[alarm(95.0, "0::+1", AdjustmentKind::Change)],
            NOW,
            Coexistence::Refuse,
        )
        .unwrap();

        assert!(capacity_changes(&expiry.plan).is_empty());
        assert!(
            expiry.plan.changes.is_empty(),
            "nothing to change: only the override is forgotten, after the alert"
        );
        assert!(forgets_the_override(&expiry));
        assert_eq!(expiry.to, 6);
        assert!(expiry
            .why
            .unwrap()
            .contains("stays at 6 instead of going back to 3"));
    }

    #[test]
    fn an_override_ending_inside_the_scale_out_cooldown_keeps_the_held_capacity() {
        let mut target = held_at_six(3);
        target.memory.out_at = Some(NOW - 100);

        let expiry = decide_override_expiry(
            &target,
            &[alarm(95.0, "0::+1", AdjustmentKind::Change)],
            NOW,
            Coexistence::Refuse,
        )
        .unwrap();

        assert!(capacity_changes(&expiry.plan).is_empty());
        assert_eq!(expiry.to, 6);
        assert!(expiry.why.unwrap().contains("scale-out cooldown until"));
    }

    #[test]
    fn an_override_ending_with_a_higher_revert_goes_back_to_it_under_a_scale_out_alarm() {
        let mut target = held_at_six(8);
        target.desired = 2;
        target.memory.manual.as_mut().unwrap().count = 2;

        let expiry = decide_override_expiry(
            &target,
            &[alarm(95.0, "0::+1", AdjustmentKind::Change)],
            NOW,
            Coexistence::Refuse,
        )
        .unwrap();

        assert_eq!(capacity_changes(&expiry.plan), [(2, 8)]);
        assert!(remembered(&expiry).contains_key(contract::OUT_AT));
    }

    #[test]
    fn an_override_ending_with_no_alarm_firing_reverts_as_asked() {
        let target = held_at_six(3);
        let mut calm = alarm(95.0, "0::+1", AdjustmentKind::Change);
        calm.in_alarm = false;
        let mut elsewhere = alarm(95.0, "0::+1", AdjustmentKind::Change);
        elsewhere.policy.target = TargetRef::Group {
            name: "other".into(),
        };

        let expiry =
            decide_override_expiry(&target, &[calm, elsewhere], NOW, Coexistence::Refuse).unwrap();

        assert_eq!(capacity_changes(&expiry.plan), [(6, 3)]);
        let tags = remembered(&expiry);
        assert!(
            !tags.contains_key(contract::OUT_AT) && !tags.contains_key(contract::IN_AT),
            "no cooldown, as before"
        );
        assert_eq!(expiry.why, None);
    }

    #[test]
    fn an_override_ending_under_an_exact_scale_out_alarm_never_goes_below_its_ask() {
        // Found by an independent test: held at 6, revert 2, a `>` alarm asking for exactly 4.
        let exact = alarm(95.0, "0::4", AdjustmentKind::Exact);
        let target = held_at_six(2);

        let expiry = decide_override_expiry(
            &target,
            std::slice::from_ref(&exact),
            NOW,
            Coexistence::Refuse,
        )
        .unwrap();

        assert_eq!(
            capacity_changes(&expiry.plan),
            [(6, 4)],
            "one change, to the alarm's 4"
        );
        assert!(
            expiry
                .why
                .as_deref()
                .unwrap()
                .contains("so it went down only to 4 instead of back to 2"),
            "{:?}",
            expiry.why
        );
        let mut cooling = held_at_six(2);
        cooling.memory.out_at = Some(NOW - 10);
        let expiry = decide_override_expiry(&cooling, &[exact], NOW, Coexistence::Refuse).unwrap();
        assert!(
            capacity_changes(&expiry.plan).is_empty(),
            "held by the scale-out cooldown: stays at the held 6"
        );
    }

    #[test]
    fn an_override_ending_under_a_scale_in_alarm_goes_to_the_lower_of_revert_and_its_ask() {
        let mut low = alarm(50.0, "0::+2", AdjustmentKind::Exact);
        low.greater = false;
        low.threshold = 70.0;
        let target = held_at_six(3);

        let expiry =
            decide_override_expiry(&target, &[low.clone()], NOW, Coexistence::Refuse).unwrap();

        assert_eq!(capacity_changes(&expiry.plan), [(6, 2)], "one change");
        let tags = remembered(&expiry);
        assert!(tags.contains_key(contract::IN_AT) && !tags.contains_key(contract::OUT_AT));
        assert!(expiry
            .why
            .unwrap()
            .contains("the lower of the override's revert 3"));

        let mut mild = low.clone();
        mild.policy.kind = AdjustmentKind::Change;
        mild.policy.steps = parse_steps("0::-1").unwrap();
        let expiry = decide_override_expiry(&target, &[mild], NOW, Coexistence::Refuse).unwrap();
        assert_eq!(
            capacity_changes(&expiry.plan),
            [(6, 3)],
            "6-1 is above the revert"
        );

        let mut below = held_at_six(8);
        below.memory.in_at = Some(NOW - 10);
        let expiry =
            decide_override_expiry(&below, std::slice::from_ref(&low), NOW, Coexistence::Refuse)
                .unwrap();
        assert!(
            capacity_changes(&expiry.plan).is_empty(),
            "a scale-in alarm held by its cooldown never lets the end go back up to 8"
        );
        assert_eq!(expiry.to, 6);
        assert!(expiry
            .why
            .unwrap()
            .contains("stays at 6 instead of going back up to 8"));

        let mut busy = target.clone();
        busy.busy = Some("deployment ecs-svc/1 is IN_PROGRESS".into());
        let expiry = decide_override_expiry(&busy, &[low], NOW, Coexistence::Refuse).unwrap();
        assert_eq!(
            capacity_changes(&expiry.plan),
            [(6, 3)],
            "a held scale-in: revert as asked"
        );
        assert_eq!(
            remembered(&expiry).into_keys().collect::<Vec<_>>(),
            [contract::LAST],
            "no cooldown"
        );
    }

    #[test]
    fn an_override_end_recorded_before_a_crash_is_finished_once() {
        let high = alarm(95.0, "0::+1", AdjustmentKind::Change);
        let mut target = held_at_six(3);
        target.memory.last = Some(LastAction {
            key: format!("override-end@{NOW}"),
            from: 6,
            to: 7,
            alerted: false,
            claim: None,
        });
        target.memory.out_at = Some(NOW + 30);

        let resumed = decide_override_expiry(
            &target,
            std::slice::from_ref(&high),
            NOW + 90,
            Coexistence::Refuse,
        )
        .unwrap();
        assert_eq!(
            capacity_changes(&resumed.plan),
            [(6, 7)],
            "recorded, not resized: finish it"
        );

        target.desired = 7;
        let done = decide_override_expiry(
            &target,
            std::slice::from_ref(&high),
            NOW + 90,
            Coexistence::Refuse,
        )
        .unwrap();
        assert!(
            capacity_changes(&done.plan).is_empty(),
            "resized before: only forget"
        );
        assert!(forgets_the_override(&done));
        assert_eq!(
            (done.from, done.to),
            (6, 7),
            "the alert tells the change the stopped run made"
        );

        target.desired = 9;
        let moved =
            decide_override_expiry(&target, &[high], NOW + 90, Coexistence::Refuse).unwrap();
        assert!(
            capacity_changes(&moved.plan).is_empty(),
            "moved since by someone else: left"
        );
        assert_eq!((moved.from, moved.to), (9, 9));
    }

    #[test]
    fn a_plain_revert_recorded_before_a_crash_is_alerted_from_the_held_capacity() {
        let mut target = held_at_six(3);
        target.memory.last = Some(LastAction {
            key: format!("override-end@{NOW}"),
            from: 6,
            to: 3,
            alerted: false,
            claim: None,
        });
        target.desired = 3;

        let resumed = decide_override_expiry(&target, &[], NOW + 60, Coexistence::Refuse).unwrap();

        assert!(capacity_changes(&resumed.plan).is_empty());
        assert_eq!(
            (resumed.from, resumed.to, resumed.why.as_deref()),
            (6, 3, None)
        );
        assert!(forgets_the_override(&resumed));
    }

    #[test]
    fn an_override_is_pending_until_alerted_and_an_unfinished_one_is_held_then_alerted() {
        let mut target = group(2);
        let (_, manual, _) = decide_override(&target, 5, 600, "alice", NOW).unwrap();
        assert_eq!(manual.pending, Some(2), "its alert starts at 2");
        assert!(
            decide_unfinished_override(&target, NOW).is_none(),
            "no override"
        );

        // The command recorded the override and stopped before resizing.
        target.memory.manual = Some(manual.clone());
        let unfinished = decide_unfinished_override(&target, NOW + 60).unwrap();
        assert_eq!(capacity_changes(&unfinished.plan), [(2, 5)]);
        assert_eq!(
            (unfinished.from, unfinished.to, unfinished.alert),
            (2, 5, true)
        );
        assert!(matches!(
            settle_override(&target, &unfinished.manual, &unfinished.record, "c1"),
            Action::Remember { tags, .. } if !tags[contract::OVERRIDE].contains("pending")
                && tags[contract::LAST].ends_with("claim=c1 alerted")
        ));

        // It resized and stopped before alerting: alert only.
        target.desired = 5;
        let unfinished = decide_unfinished_override(&target, NOW + 60).unwrap();
        assert!(unfinished.plan.is_empty());
        assert_eq!((unfinished.from, unfinished.to), (2, 5));

        // A second command on top of it still starts its alert where ops last heard: 2.
        let (_, again, _) = decide_override(&target, 4, 600, "bob", NOW + 60).unwrap();
        assert_eq!((again.pending, again.revert), (Some(2), 2));

        // Run out before anyone finished it: no resize; alerted only if capacity moved.
        let late = decide_unfinished_override(&target, NOW + 600).unwrap();
        assert!(late.plan.is_empty());
        assert!(late.alert);
        target.desired = 2;
        let never_applied = decide_unfinished_override(&target, NOW + 600).unwrap();
        assert!(!never_applied.alert);

        target.memory.manual = Some(Override {
            pending: None,
            ..manual
        });
        assert!(decide_unfinished_override(&target, NOW + 60).is_none());
    }
}
