//! The model-based sequence test of cpu-alarm-scaler (DESIGN.md, "Event order"): random sequences
//! of its events and commands, delivered twice, late, out of order, never or two at once, with the
//! emulator failing a random AWS call of a delivery, checked after every round against the
//! invariants below; a failing sequence is shrunk to a minimal one (`ops_e2e::model`).
//!
//! The world: group `asg:workers` (min 1, desired 2, max 6) and service `ecs:prod/web` (min 1,
//! desired 2, max 5), each with a scale-out alarm (`> 90`) and a scale-in alarm (`< 30`) that opted
//! in with `ops:scale-target`. What happens in a sequence:
//! - an alarm's real state changes in CloudWatch (to ALARM with a datapoint, or to OK; the other
//!   alarm of the target goes OK with a scale-out alarm firing and back), and CloudWatch emits the
//!   `CloudWatch Alarm State Change` event, which is delivered as the step says (it carries the time
//!   it happened, so a late one is old); a state that does not change emits nothing;
//! - the 1-minute schedule ticks (an EventBridge `Scheduled Event` at the current time);
//! - a person types `scale` in chat (hold a target at a count for 2, 5 or 10 minutes), tried once;
//! - time passes (30 s to 15 min), across cooldowns (120 s and 180 s) and overrides' ends.
//!
//! Events are asynchronous: Lambda retries a failed one twice ([`ASYNC_ATTEMPTS`]). Alerts go
//! through the real SNS adapter and are read back from the emulator, so a failed Publish is part of
//! the model. Every AWS call is tried once by the SDK, so an injected fault is the process dying
//! there.
//!
//! Invariants, per target, after every round (safety):
//! 1. **Bounds**: min <= desired <= max.
//! 2. **Direction**: in a round without a chat command for the target, capacity never goes down
//!    while its scale-out alarm is in ALARM (also when an override ends: never below what the
//!    held capacity was), never goes up while only its scale-in alarm is (also when an override
//!    ends: never back up to its revert), and only an override's end moves it while no alarm is
//!    (back to the override's revert).
//! 3. **One change per invocation**: no attempt of a delivery resizes a target twice (so never two
//!    opposite changes).
//! 4. **Once per trigger**: an alarm's trigger (its state change, or a tick's re-evaluation)
//!    whose scaling is done never moves capacity again; the recorded change for a trigger never changes;
//!    two alarm steps in one direction are a cooldown apart in the events' own time; a step never
//!    records a time after the current one.
//! 5. **Override holds**: while an override lasts (until its time, by the events' own time) and
//!    no command changes it, capacity does not move (from its time on, alarms scale the target
//!    again even before the schedule ends the override); an override set by a command that succeeded holds exactly its count, and one whose
//!    command stopped half-way (recorded `pending`) is at its count, alerted, after the first tick
//!    that succeeds once the command can no longer be at work (60 s, the function's timeout).
//! 6. **Events settle**: Lambda's retries of an event end in success or in an answer retrying
//!    cannot change (never a transient error after the last attempt).
//! 7. **Alerts tell the story**: read in order, each capacity alert of a target starts where the one
//!    before ended (none missing in between, none twice; a repeat straight after is tolerated only
//!    after a fault fired, the crash between publishing and recording it, or in a round of two
//!    deliveries at once: with no conditional write for a capacity, two invocations whose claims
//!    and re-reads all come before either resizes both act and alert, which the scaler prefers to
//!    neither alerting).
//!
//! After a settling phase (time passes past every override's end, the schedule ticks twice, no
//! faults) (liveness):
//! 8. every capacity change was alerted: the alerts' story ends at the capacity AWS has;
//! 9. no override is left and every override that ended was alerted as ended at least once (exactly
//!    once without a fault or two deliveries at once);
//! 10. no alarm's scaling is left recorded but not alerted (an override's end is done when the
//!     override is forgotten, 9).
//! 11. **At-bound episodes tell their story**: a target's at-bound alerts (`scaling.at-max`,
//!     `scaling.at-min` and their `-ended`; a clamped scaling's alert is a start when none is
//!     open) alternate, a start then its end (checked after every
//!     round; a start or an end repeated, or an end without its start, is tolerated only after a
//!     fault fired or in a round of two deliveries at once); after settling, a target that records
//!     an episode has it alerted and its last at-bound alert is a start, and one that records none
//!     has no start left without its end.

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic, Tag};
use cpu_alarm_scaler::config::ScalerConfig;
use cpu_alarm_scaler::contract::Memory;
use cpu_alarm_scaler::decide::IN_FLIGHT_SECONDS;
use cpu_alarm_scaler::handler::{function_handler, Deps, Invocation};
use cpu_alarm_scaler::observe::Clients;
use ops_core::aws::appscaling::ScalableTargets;
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::Error;
use ops_e2e::events::{alarm_state_change, scheduled};
use ops_e2e::fixtures;
use ops_e2e::model::{self, Played, Step, ASYNC_ATTEMPTS};
use ops_e2e::Emulator;
use proptest::prelude::*;
use serde_json::{json, Value};

const T0: u64 = 1_795_000_000;
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";
/// AWS calls a delivery makes at most, roughly (a tick with an override ending and an alarm firing
/// on each target); faults fall on one of the first this many.
const CALLS: u8 = 12;

/// What the scaler scales in this world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Group,
    Service,
}

const TARGETS: [Target; 2] = [Target::Group, Target::Service];

impl Target {
    fn text(self) -> &'static str {
        match self {
            Target::Group => "asg:workers",
            Target::Service => "ecs:prod/web",
        }
    }

    fn bounds(self) -> (i32, i32) {
        match self {
            Target::Group => (1, 6),
            Target::Service => (1, 5),
        }
    }

    /// The scale-out (`high`) or scale-in alarm of the target.
    fn alarm(self, high: bool) -> &'static str {
        match (self, high) {
            (Target::Group, true) => "workers-cpu-high",
            (Target::Group, false) => "workers-cpu-low",
            (Target::Service, true) => "web-cpu-high",
            (Target::Service, false) => "web-cpu-low",
        }
    }

    /// The alarm's cooldown tag, seconds.
    fn cooldown(self, high: bool) -> u64 {
        if high {
            120
        } else {
            180
        }
    }

    /// The alarm's scaling tags.
    fn tags(self, high: bool) -> Vec<(&'static str, String)> {
        let mut tags = vec![
            ("ops:scale-target", self.text().to_string()),
            ("ops:scale-cooldown", self.cooldown(high).to_string()),
        ];
        match (self, high) {
            (Target::Group, true) => tags.push(("ops:scale-steps", "0:10:+1 10::+2".into())),
            (Target::Service, true) => {
                tags.push(("ops:scale-steps", "0::+50".into()));
                tags.push(("ops:scale-adjustment", "percent".into()));
            }
            (_, false) => {}
        }
        tags
    }
}

/// One thing that happens.
#[derive(Debug, Clone)]
enum Event {
    /// An alarm's real state changes in CloudWatch (ALARM with a datapoint `value` past its
    /// threshold, or OK), and CloudWatch emits its state change event.
    Alarm {
        target: Target,
        high: bool,
        firing: bool,
        value: u8,
    },
    /// The 1-minute schedule.
    Tick,
    /// A person holds `target` at `count` for `minutes` from chat.
    Scale {
        target: Target,
        count: i32,
        minutes: u8,
    },
    /// Time passes.
    Wait { seconds: u64 },
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Group), Just(Target::Service)]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (target(), any::<bool>(), prop::bool::weighted(0.7), 0u8..25).prop_map(
            |(target, high, firing, value)| Event::Alarm { target, high, firing, value }
        ),
        3 => Just(Event::Tick),
        1 => (target(), 1i32..=6, prop_oneof![Just(2u8), Just(5), Just(10)])
            .prop_map(|(target, count, minutes)| Event::Scale { target, count, minutes }),
        3 => prop_oneof![30u64..=90, 100u64..=400, 500u64..=900]
            .prop_map(|seconds| Event::Wait { seconds }),
    ]
}

/// A target as read after a round.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    desired: i32,
    memory: Memory,
}

/// A capacity alert as ops received it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    event_type: String,
    resource: String,
    summary: String,
    before: Option<i32>,
    after: Option<i32>,
    /// A scaling min/max clamped (its alert begins an at-bound episode).
    clamped: bool,
}

/// What one delivery did.
#[derive(Debug)]
struct Delivered {
    step: usize,
    outcome: Result<Value, Error>,
    attempts: usize,
    /// Most resizes of one target in one attempt (only counted when the delivery was alone).
    most_resizes: u64,
}

/// Everything the model knows while it plays one sequence.
struct Model<'a> {
    emulator: &'a Emulator,
    deps: &'a Deps<SnsAlerts>,
    clock: u64,
    /// Whether each alarm is in ALARM in CloudWatch.
    firing: BTreeMap<(Target, bool), bool>,
    /// The event each step emitted (none for time passing, or a state that did not change).
    payloads: Vec<Option<Value>>,
    seen: BTreeMap<Target, Seen>,
    /// Recorded triggers whose scaling was done at the end of a round: key -> (from, to).
    done: BTreeMap<String, (i32, i32)>,
    /// The capacity the alerts' story has reached, and the last capacity alert.
    story: BTreeMap<Target, (i32, Option<(i32, i32)>)>,
    alerts_read: usize,
    ended_alerts: BTreeMap<Target, u64>,
    ended: BTreeMap<Target, u64>,
    /// Whether each target's last at-bound alert was a start (none read yet: absent).
    at_bound_started: BTreeMap<Target, bool>,
    /// The time of each step's event (ticks and alarm changes).
    times: Vec<Option<u64>>,
    faults: u64,
    /// Rounds with two deliveries at once.
    concurrent: u64,
    deliveries: u64,
    log: Vec<String>,
}

impl<'a> Model<'a> {
    fn new(emulator: &'a Emulator, deps: &'a Deps<SnsAlerts>, steps: usize) -> Self {
        let mut firing = BTreeMap::new();
        for target in TARGETS {
            firing.insert((target, true), false);
            firing.insert((target, false), false);
        }
        Model {
            emulator,
            deps,
            clock: T0,
            firing,
            payloads: vec![None; steps],
            times: vec![None; steps],
            seen: BTreeMap::new(),
            done: BTreeMap::new(),
            story: TARGETS.iter().map(|t| (*t, (2, None))).collect(),
            alerts_read: 0,
            ended_alerts: BTreeMap::new(),
            ended: BTreeMap::new(),
            at_bound_started: BTreeMap::new(),
            faults: 0,
            concurrent: 0,
            deliveries: 0,
            log: Vec::new(),
        }
    }

    async fn setup(&mut self) {
        let clients = &self.deps.clients;
        fixtures::group(clients.groups.client(), "workers", (1, 2, 6), None).await;
        let ecs = clients.ecs.client();
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .expect("cluster");
        let definition = fixtures::register(ecs, "web", &[("app", "nginx:1.27")]).await;
        fixtures::service(
            ecs,
            "prod",
            "web",
            &definition,
            &[("ops:scale-min", "1"), ("ops:scale-max", "5")],
        )
        .await;
        self.emulator
            .control(
                "POST",
                "/_ops/ecs/finish-deployment",
                Some(json!({"cluster": "prod", "service": "web", "state": "COMPLETED"})),
            )
            .expect("finish the service's first deployment");
        aws_sdk_sns::Client::new(&self.emulator.sdk_config().await)
            .create_topic()
            .name("ops-alerts")
            .send()
            .await
            .expect("topic");
        for target in TARGETS {
            for high in [true, false] {
                let tags = target
                    .tags(high)
                    .into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build());
                clients
                    .alarms
                    .client()
                    .put_metric_alarm()
                    .alarm_name(target.alarm(high))
                    .namespace("AWS/EC2")
                    .metric_name("CPUUtilization")
                    .statistic(Statistic::Average)
                    .period(60)
                    .evaluation_periods(3)
                    .threshold(if high { 90.0 } else { 30.0 })
                    .comparison_operator(if high {
                        ComparisonOperator::GreaterThanThreshold
                    } else {
                        ComparisonOperator::LessThanThreshold
                    })
                    .set_tags(Some(tags.collect()))
                    .send()
                    .await
                    .expect("alarm");
                self.set_alarm(target, high, false, 0).await;
            }
        }
        for target in TARGETS {
            let seen = self.observe(target).await;
            self.seen.insert(target, seen);
        }
    }

    async fn set_alarm(&self, target: Target, high: bool, firing: bool, value: u8) {
        let datapoint = match (high, firing) {
            (true, true) => 91.0 + f64::from(value),
            (false, true) => 29.0 - f64::from(value),
            _ => 60.0,
        };
        self.deps
            .clients
            .alarms
            .client()
            .set_alarm_state()
            .alarm_name(target.alarm(high))
            .state_value(if firing {
                StateValue::Alarm
            } else {
                StateValue::Ok
            })
            .state_reason(format!("datapoint {datapoint}"))
            .state_reason_data(
                json!({"version": "1.0", "recentDatapoints": [datapoint]}).to_string(),
            )
            .send()
            .await
            .expect("set alarm state");
    }

    async fn observe(&self, target: Target) -> Seen {
        let clients = &self.deps.clients;
        match target {
            Target::Group => {
                let group = clients.groups.describe("workers").await.expect("group");
                Seen {
                    desired: group.desired,
                    memory: Memory::from_tags(&group.tags),
                }
            }
            Target::Service => {
                let service = clients.ecs.describe("prod", "web").await.expect("service");
                Seen {
                    desired: service.desired,
                    memory: Memory::from_tags(&service.tags),
                }
            }
        }
    }

    /// The world changes as step `index` says; its event (if any) is kept for its deliveries.
    async fn happen(&mut self, index: usize, event: &Event) {
        match event {
            Event::Wait { seconds } => {
                self.clock += seconds;
                self.log
                    .push(format!("step {index}: time is now T0+{}", self.clock - T0));
            }
            Event::Tick => {
                self.payloads[index] = Some(scheduled(self.clock));
                self.times[index] = Some(self.clock);
            }
            Event::Scale {
                target,
                count,
                minutes,
            } => {
                self.payloads[index] = Some(json!({
                    "command": "scale",
                    "args": {"target": target.text(), "count": count, "for": format!("{minutes}m")},
                    "requested_by": "alice"
                }))
            }
            Event::Alarm {
                target,
                high,
                firing,
                value,
            } => {
                if self.firing[&(*target, *high)] == *firing {
                    self.log.push(format!(
                        "step {index}: {} unchanged, no event",
                        target.alarm(*high)
                    ));
                    return;
                }
                if *firing && self.firing[&(*target, !*high)] {
                    // One metric: the other alarm of the target goes OK first (its event is lost).
                    self.set_alarm(*target, !*high, false, 0).await;
                    self.firing.insert((*target, !*high), false);
                }
                self.set_alarm(*target, *high, *firing, *value).await;
                self.firing.insert((*target, *high), *firing);
                let state = if *firing { "ALARM" } else { "OK" };
                self.log.push(format!(
                    "step {index}: {} goes {state} at T0+{}",
                    target.alarm(*high),
                    self.clock - T0
                ));
                self.payloads[index] =
                    Some(alarm_state_change(target.alarm(*high), state, self.clock));
                self.times[index] = Some(self.clock);
            }
        }
    }

    fn resizes(&self) -> [u64; 2] {
        [
            self.emulator.calls("autoscaling", "SetDesiredCapacity"),
            self.emulator.calls("ecs", "UpdateService"),
        ]
    }

    /// Deliver step `index`'s event: an event until Lambda gives up retrying, a command once.
    async fn deliver(&self, index: usize, chat: bool, alone: bool) -> Delivered {
        let payload = self.payloads[index]
            .clone()
            .expect("a delivered step has an event");
        let tries = if chat { 1 } else { ASYNC_ATTEMPTS };
        let mut most = 0;
        let mut attempts = 0;
        let mut outcome;
        loop {
            let before = if alone { self.resizes() } else { [0, 0] };
            let invocation = Invocation { now: self.clock };
            outcome = function_handler(payload.clone(), &invocation, self.deps).await;
            attempts += 1;
            if alone {
                let after = self.resizes();
                most = most.max((after[0] - before[0]).max(after[1] - before[1]));
            }
            match &outcome {
                Err(error) if error.retryable() && attempts < tries => continue,
                _ => break,
            }
        }
        Delivered {
            step: index,
            outcome,
            attempts,
            most_resizes: most,
        }
    }

    /// Play one round: its deliveries (together if more than one), then check the invariants.
    async fn round(
        &mut self,
        number: usize,
        indexes: &[usize],
        steps: &[Step<Event>],
    ) -> Result<(), String> {
        let live: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|&i| self.payloads[i].is_some())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let chat = |i: usize| matches!(steps[i].event, Event::Scale { .. });
        let armed: Vec<bool> = live
            .iter()
            .map(|&i| model::arm(self.emulator, steps[i].fault))
            .collect();
        let alone = live.len() == 1;
        let results = if alone {
            vec![self.deliver(live[0], chat(live[0]), true).await]
        } else {
            let (a, b) = tokio::join!(
                self.deliver(live[0], chat(live[0]), false),
                self.deliver(live[1], chat(live[1]), false)
            );
            vec![a, b]
        };
        let fired = if armed.iter().any(|a| *a) {
            let fired = self.emulator.faults_fired();
            model::disarm(self.emulator, true);
            fired
        } else {
            0
        };
        self.faults += fired;
        self.deliveries += live.len() as u64;
        for result in &results {
            let outcome = match &result.outcome {
                Ok(answer) => format!("ok {}", answer["status"]),
                Err(error) => format!("error ({}) {error}", error.kind()),
            };
            self.log.push(format!(
                "round {number}: step {} at T0+{} ({} attempt(s), fault fired: {}): {outcome}",
                result.step,
                self.clock - T0,
                result.attempts,
                fired > 0
            ));
        }
        let broke = |what: String| format!("invariant {what} broke after round {number}");
        // 6. Events settle.
        for result in &results {
            if let Err(error) = &result.outcome {
                if chat(result.step) {
                    continue;
                }
                if error.retryable() {
                    return Err(broke(format!(
                        "6 (events settle): step {} still failed after {} attempts: {error}",
                        result.step, result.attempts
                    )));
                }
                return Err(broke(format!(
                    "6 (events settle): step {} was refused: {error}",
                    result.step
                )));
            }
            // 3. One change per invocation.
            if result.most_resizes > 1 {
                return Err(broke(format!(
                    "3 (one change per invocation): step {} resized a target {} times in one attempt",
                    result.step, result.most_resizes
                )));
            }
        }
        // The latest tick of the round that succeeded, by its event's time.
        // The latest event time of the round (the time its decisions are made at).
        let latest = results.iter().filter_map(|r| self.times[r.step]).max();
        let ticked = results
            .iter()
            .filter(|r| matches!(steps[r.step].event, Event::Tick) && r.outcome.is_ok())
            .filter_map(|r| self.times[r.step])
            .max();
        for target in TARGETS {
            let before = self.seen[&target].clone();
            let after = self.observe(target).await;
            let commands: Vec<&Delivered> = results
                .iter()
                .filter(|r| matches!(steps[r.step].event, Event::Scale { target: t, .. } if t == target))
                .collect();
            self.check_target(
                target,
                &before,
                &after,
                &commands,
                (ticked, latest),
                alone,
                fired,
                steps,
            )
            .map_err(|what| broke(format!("{what} ({})", target.text())))?;
            self.seen.insert(target, after);
        }
        if !alone {
            self.concurrent += 1;
        }
        self.read_alerts(alone).map_err(broke)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn check_target(
        &mut self,
        target: Target,
        before: &Seen,
        after: &Seen,
        commands: &[&Delivered],
        (ticked, latest): (Option<u64>, Option<u64>),
        alone: bool,
        fired: u64,
        steps: &[Step<Event>],
    ) -> Result<(), String> {
        let (min, max) = target.bounds();
        // 1. Bounds.
        if after.desired < min || after.desired > max {
            return Err(format!(
                "1 (bounds): desired {} is outside {min}..{max}",
                after.desired
            ));
        }
        let (from, to) = (before.desired, after.desired);
        let high = self.firing[&(target, true)];
        let low = self.firing[&(target, false)];
        let ended = match (&before.memory.manual, &after.memory.manual) {
            (Some(old), None) => Some(old.clone()),
            _ => None,
        };
        if ended.is_some() {
            *self.ended.entry(target).or_default() += 1;
        }
        if commands.is_empty() {
            // 2. Direction.
            if high && to < from {
                return Err(format!(
                    "2 (direction): {from} to {to} while its scale-out alarm is in ALARM"
                ));
            }
            if low && !high && to > from {
                return Err(format!(
                    "2 (direction): {from} to {to} while its scale-in alarm is in ALARM"
                ));
            }
            if !low && !high && to != from {
                let revert = ended.as_ref().map(|m| m.revert.clamp(min, max));
                if revert != Some(to) {
                    return Err(format!(
                        "2 (direction): {from} to {to} with no alarm in ALARM (override ended: {ended:?})"
                    ));
                }
            }
            // 5. Override holds (until its time; from then on alarms may act before the schedule
            // ends it).
            let lasting = before
                .memory
                .manual
                .as_ref()
                .is_some_and(|m| latest.is_none_or(|at| at < m.until));
            if lasting && before.memory.manual == after.memory.manual && to != from {
                return Err(format!(
                    "5 (override holds): {from} to {to} during {:?}",
                    after.memory.manual
                ));
            }
        } else {
            for command in commands {
                let Event::Scale { count, .. } = steps[command.step].event else {
                    unreachable!()
                };
                let applied = command
                    .outcome
                    .as_ref()
                    .is_ok_and(|answer| answer["status"] != "pending");
                if applied && alone && fired == 0 && to != count {
                    return Err(format!(
                        "5 (override holds): the command to hold {count} succeeded, capacity is {to}"
                    ));
                }
            }
        }
        // 5. A command that stopped half-way (its override pending) is finished by the first tick
        // that comes after it can no longer be at work.
        if let (Some(old), Some(tick)) = (&before.memory.manual, ticked) {
            let finishable = old.pending.is_some()
                && tick >= old.set_at + IN_FLIGHT_SECONDS
                && commands.is_empty();
            if let Some(now) = after.memory.manual.as_ref().filter(|m| m.until > tick) {
                if finishable && (now.pending.is_some() || to != now.count) {
                    return Err(format!(
                        "5 (override holds): a tick at T0+{} left {now:?} at {to}",
                        tick - T0
                    ));
                }
            }
        }
        // 4. Once per trigger.
        if let Some(last) = &after.memory.last {
            if let Some(&(f, t)) = self.done.get(&last.key) {
                if (f, t) != (last.from, last.to) {
                    return Err(format!(
                        "4 (once per trigger): {} was recorded as {f} to {t}, now {} to {}",
                        last.key, last.from, last.to
                    ));
                }
                if to != from
                    && commands.is_empty()
                    && ended.is_none()
                    && before.memory.last.as_ref().map(|l| &l.key) == Some(&last.key)
                {
                    return Err(format!(
                        "4 (once per trigger): {from} to {to} again for {}, done before",
                        last.key
                    ));
                }
            }
        }
        if to != from && commands.is_empty() && ended.is_none() {
            let fresh = after
                .memory
                .last
                .as_ref()
                .filter(|l| l.to == to && !self.done.contains_key(&l.key));
            if fresh.is_none() {
                return Err(format!(
                    "4 (once per trigger): {from} to {to} with no new trigger recorded (last: {:?})",
                    after.memory.last
                ));
            }
            let (stamp_before, stamp_after, high_side) = if to > from {
                (before.memory.out_at, after.memory.out_at, true)
            } else {
                (before.memory.in_at, after.memory.in_at, false)
            };
            let cooldown = target.cooldown(high_side);
            match (stamp_before, stamp_after) {
                (_, None) => {
                    return Err(format!(
                        "4 (once per trigger): an alarm step {from} to {to} started no cooldown"
                    ))
                }
                (_, Some(at)) if at > self.clock => {
                    return Err(format!(
                        "4 (once per trigger): a step recorded T0+{}, after now (T0+{})",
                        at - T0,
                        self.clock - T0
                    ))
                }
                (Some(old), Some(new)) if alone && new < old + cooldown => {
                    return Err(format!(
                        "4 (once per trigger): steps at T0+{} and T0+{}, closer than the {cooldown} s cooldown",
                        old - T0,
                        new - T0
                    ))
                }
                _ => {}
            }
        }
        if let Some(last) = after
            .memory
            .last
            .as_ref()
            .filter(|l| !l.key.starts_with("override-"))
        {
            if after.desired == last.to && last.from != last.to {
                self.done.insert(last.key.clone(), (last.from, last.to));
            }
        }
        Ok(())
    }

    fn published(&self) -> Vec<Received> {
        let answer = self
            .emulator
            .control(
                "GET",
                &format!("/_ops/sns/published?topic_arn={TOPIC}"),
                None,
            )
            .expect("read published alerts");
        let list = answer
            .as_array()
            .cloned()
            .or_else(|| answer["published"].as_array().cloned())
            .unwrap_or_default();
        list.iter()
            .map(|p| {
                let chat: Value =
                    serde_json::from_str(p["bodies"]["default"].as_str().unwrap_or("{}"))
                        .unwrap_or(Value::Null);
                let description = chat["content"]["description"].as_str().unwrap_or_default();
                let field = |name: &str| {
                    description
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("*{name}:* `")))
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|n| n.parse().ok())
                };
                Received {
                    event_type: chat["metadata"]["eventType"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    resource: chat["metadata"]["additionalContext"]["resource"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    clamped: chat["metadata"]["additionalContext"]["clamped"]
                        .as_str()
                        .is_some_and(|c| c != "no"),
                    summary: chat["metadata"]["summary"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    before: field("Before"),
                    after: field("After"),
                }
            })
            .collect()
    }

    /// 7. Alerts tell the story: follow the new alerts.
    fn read_alerts(&mut self, alone: bool) -> Result<(), String> {
        let all = self.published();
        for alert in &all[self.alerts_read..] {
            let Some(target) = TARGETS.iter().copied().find(|t| t.text() == alert.resource) else {
                continue;
            };
            if alert.event_type == "scaling.override-ended" {
                *self.ended_alerts.entry(target).or_default() += 1;
            }
            if alert.clamped && !self.at_bound_started.get(&target).copied().unwrap_or(false) {
                // A clamped scaling's alert begins the episode at its bound.
                self.at_bound_started.insert(target, true);
            }
            if alert.event_type.starts_with("scaling.at-") {
                let start = !alert.event_type.ends_with("-ended");
                let was_started = self.at_bound_started.get(&target).copied().unwrap_or(false);
                if start == was_started {
                    if self.faults > 0 || !alone {
                        self.log.push(format!(
                            "at-bound alert repeated after a fault: {}",
                            alert.summary
                        ));
                    } else {
                        return Err(format!(
                            "11 (at-bound episodes): `{}` ({}) follows a {} of {}",
                            alert.summary,
                            alert.event_type,
                            if was_started {
                                "start"
                            } else {
                                "end (or nothing)"
                            },
                            target.text()
                        ));
                    }
                }
                self.at_bound_started.insert(target, start);
                continue;
            }
            let (Some(before), Some(after)) = (alert.before, alert.after) else {
                continue;
            };
            if before == after {
                continue;
            }
            let (at, last) = self.story[&target];
            if before == at {
                self.story.insert(target, (after, Some((before, after))));
            } else if last == Some((before, after)) && (self.faults > 0 || !alone) {
                self.log
                    .push(format!("alert repeated after a fault: {}", alert.summary));
            } else {
                return Err(format!(
                    "7 (alerts tell the story): `{}` ({}) follows alerts that left {} at {at}",
                    alert.summary,
                    alert.event_type,
                    target.text()
                ));
            }
        }
        self.alerts_read = all.len();
        Ok(())
    }

    /// Time passes past every override's end, the schedule ticks twice; then the liveness checks.
    async fn settle(&mut self, number: usize, steps: &mut Vec<Step<Event>>) -> Result<(), String> {
        let latest = self
            .seen
            .values()
            .filter_map(|s| s.memory.manual.as_ref().map(|m| m.until))
            .max()
            .unwrap_or(self.clock);
        self.clock = self.clock.max(latest) + 60;
        for extra in 0..2 {
            let index = steps.len();
            steps.push(Step {
                event: Event::Tick,
                delivery: model::Delivery::Once,
                fault: None,
            });
            self.payloads.push(None);
            self.times.push(None);
            self.happen(index, &Event::Tick).await;
            self.round(number + extra, &[index], steps).await?;
            self.clock += 60;
        }
        let broke = |what: String| format!("invariant {what} broke after settling");
        for target in TARGETS {
            let seen = &self.seen[&target];
            let (at, _) = self.story[&target];
            if at != seen.desired {
                return Err(broke(format!(
                    "8 (every change alerted): the alerts left {} at {at}, it is at {}",
                    target.text(),
                    seen.desired
                )));
            }
            if let Some(manual) = &seen.memory.manual {
                return Err(broke(format!(
                    "9 (overrides end): {} still has {manual:?}",
                    target.text()
                )));
            }
            let (ended, alerted) = (
                self.ended.get(&target).copied().unwrap_or(0),
                self.ended_alerts.get(&target).copied().unwrap_or(0),
            );
            if alerted < ended || (self.faults + self.concurrent == 0 && alerted != ended) {
                return Err(broke(format!(
                    "9 (overrides end): {} overrides of {} ended, {alerted} ended alerts",
                    ended,
                    target.text()
                )));
            }
            let started = self.at_bound_started.get(&target).copied().unwrap_or(false);
            let recorded = seen.memory.at_bound.as_ref();
            let alerted =
                recorded.map(|e| e.state == cpu_alarm_scaler::contract::EpisodeState::Alerted);
            if (recorded.is_some() && (alerted != Some(true) || !started))
                || (recorded.is_none() && started)
            {
                return Err(broke(format!(
                    "11 (at-bound episodes): {} records {recorded:?}, its last at-bound alert {}",
                    target.text(),
                    if started {
                        "is a start"
                    } else {
                        "is an end or none"
                    }
                )));
            }
            if let Some(last) = seen.memory.last.as_ref().filter(|l| {
                // An override's end is done when the override is forgotten (checked above).
                !l.key.starts_with("override-end@")
                    && !l.alerted
                    && l.to == seen.desired
                    && l.from != l.to
            }) {
                return Err(broke(format!(
                    "10 (nothing left unalerted): {} records {last:?}",
                    target.text()
                )));
            }
        }
        Ok(())
    }
}

fn play(
    runtime: &tokio::runtime::Runtime,
    deps: &Deps<SnsAlerts>,
    emulator: &Emulator,
    steps: &[Step<Event>],
) -> Result<Played, String> {
    runtime.block_on(async {
        let mut model = Model::new(emulator, deps, steps.len());
        model.setup().await;
        let rounds = model::schedule(steps);
        let mut happened = 0;
        let outcome = async {
            for (number, round) in rounds.iter().enumerate() {
                let top = round.steps.iter().copied().max().unwrap_or(0);
                while happened <= top {
                    model.happen(happened, &steps[happened].event).await;
                    happened += 1;
                }
                model.round(number, &round.steps, steps).await?;
            }
            while happened < steps.len() {
                model.happen(happened, &steps[happened].event).await;
                happened += 1;
            }
            let mut all = steps.to_vec();
            model.settle(rounds.len(), &mut all).await
        }
        .await;
        match outcome {
            Ok(()) => Ok(Played {
                deliveries: model.deliveries,
                faults: model.faults,
            }),
            Err(broken) => Err(format!(
                "{broken}\nwhat happened:\n  {}",
                model.log.join("\n  ")
            )),
        }
    })
}

#[test]
fn random_event_sequences_keep_the_cpu_alarm_scaler_invariants() {
    let runtime = model::runtime();
    let emulator = Emulator::start();
    let deps = runtime.block_on(async {
        // Every AWS call tried once: an injected fault is the process dying at that call.
        let sdk = sdk_config(&AwsSettings {
            max_attempts: 1,
            ..emulator.settings()
        })
        .await;
        let env = Env::from_pairs([
            ("ALERT_TOPIC_ARN", TOPIC),
            ("AUTOSCALING_GROUPS", "workers"),
            ("ECS_CLUSTERS", "prod"),
        ]);
        let config = ScalerConfig::from_env(&env).expect("config");
        Deps {
            clients: Clients {
                alarms: CloudWatchAlarms::new(&sdk),
                groups: AutoScalingGroups::new(&sdk),
                ecs: EcsServices::new(&sdk),
                scalable: ScalableTargets::new(&sdk),
            },
            iam: IamSimulator::new(&sdk),
            alerts: SnsAlerts::new(&sdk, TOPIC),
            config,
        }
    });
    let started = Instant::now();
    model::run(
        "cpu-alarm-scaler",
        &emulator,
        model::steps(event(), 1..10, CALLS),
        |emulator, steps| play(&runtime, &deps, emulator, steps),
    );
    let sequences = model::sequences().max(1);
    println!(
        "model: cpu-alarm-scaler: {:.2} s per sequence",
        started.elapsed().as_secs_f64() / f64::from(sequences)
    );
}
