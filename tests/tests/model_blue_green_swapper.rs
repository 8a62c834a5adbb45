//! Model-based event-sequence test of blue-green-swapper (DESIGN.md, "Event order"): random
//! sequences of chat commands (deploy with a strategy, promote, abort, rollback, status), schedule
//! ticks and changes in the world (time passing, target health of either colour, the gate alarm,
//! ECS finishing or failing a rollout), delivered once, twice, late (a tick keeps its own old
//! time), never, or two at once, with the emulator failing one AWS call of a delivery, checked
//! after every round against the swapper's invariants, and after a settling phase (the schedule
//! ticking every minute, no faults) against what must have happened in the end. The handler runs
//! in-process with the real SNS publisher, one attempt per AWS call; alerts are read back from the
//! emulator's SNS outbox.
//!
//! Time: the model clock moves one second per round, by each `Wait`, and by a minute at each tick
//! (the schedule runs every minute; a lost tick's minute passes too); a chat command runs at the
//! clock; a tick carries the time it was sent (a late one, an old time) while Lambda's own clock
//! (`Invocation.now`) is the model clock, as in production.
//!
//! Invariants checked after every delivery round (safety):
//! - S1 weights on the plan: the live route forwards only to the two colours; with no swap ever
//!   recorded all traffic is on blue; with one, the new colour's exact share is 0% or one of the
//!   plan's steps.
//! - S2 weights say the state: after a lone delivery that succeeded (other than `status`), the
//!   weights and the in-flight marks are what the recorded state asks for (a rollback held
//!   because the old colour has no healthy targets leaves them as they were) and the state is
//!   alerted (`r == v`).
//! - S3 traffic only onto health: a colour's share grows in a round only if, when the round began,
//!   it was ready (the new colour: running the plan's revision, rollout COMPLETED, every target
//!   healthy) and no gate alarm was in ALARM; traffic going back goes only to a colour with
//!   healthy targets.
//! - S4 forward along the plan, one step per elapsed wait: the recorded state moves forward to the
//!   plan's next state only, and out of a timed state (testing, a step, warm) only when the model
//!   clock has passed its wait since the round it was entered in, unless a promote was delivered.
//! - S5 backwards only by going back: the new colour's share falls only when the state is rolling
//!   back (or aborting, or ended so); once a swap goes back it never goes forward again, nor does
//!   its traffic.
//! - S6 one swap at a time: a deploy answered as started is the swap recorded; the services' marks
//!   name the recorded swap.
//! - S7 alerts at most once: the same transition alert twice only when a fault fired in the round
//!   that first published it (a run that dies between Publish and recording it), or two runs ran
//!   at once there and both had passed their last check before publishing (ELB tags and SNS
//!   standard topics have no conditional write; `ReservedConcurrentExecutions: 1` rules this out
//!   in production). The figures line counts them. Nothing here changes a route outside the
//!   swapper, so a `swap.route-changed` alert is always a false one.
//! - S8 status shows the real weights: a `status` answered alone shows the listener's weights.
//!
//! After settling (liveness; a rollback held for an old colour without healthy targets sees that
//! colour recover first): the swap is over and alerted, traffic and services are where its end
//! says (done: all on the new colour, the old one at 0; rolled back or aborted: all on the old
//! colour, the new one as the swap found it), nothing is marked, every state observed in effect
//! (the swap started, went back, or the routes were as the state says) was alerted, every swap
//! alerted as started was alerted as ended, and one more tick changes nothing.
//!
//! Figures: the harness prints its `model:` line; a second one says how many swaps reached each
//! state, how many rounds ran two invocations at once, how many ticks came with an old time, and
//! how many alerts went out twice (each excused by a fault or a race, as S7 says).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use blue_green_swapper::contract::{Colour, Phase, SwapPlan};
use blue_green_swapper::handler::Deps;
use blue_green_swapper::observe;
use blue_green_swapper::traffic::Split;
use blue_green_swapper::view::AppView;
use ops_core::aws::sns::SnsAlerts;
use ops_e2e::blue_green::{alerts, deps, finish_rollout, handle, push, set_health, topic, App};
use ops_e2e::events::scheduled;
use ops_e2e::model::{self, arm, schedule, steps, Delivery, Played, Step, ASYNC_ATTEMPTS};
use ops_e2e::redeliver::until_settled;
use ops_e2e::Emulator;
use proptest::prelude::*;
use serde_json::{json, Value};

const T0: u64 = 1_795_000_000;
const APP: &str = "shop";
const ALARM: &str = "shop-5xx";
/// The app's waits, as created: `test_wait` 1m, `termination_wait` 2m, `health_timeout` 3m.
const TEST_WAIT: u64 = 60;
const TERMINATION_WAIT: u64 = 120;
/// Settling: the schedule every minute, at most this many times.
const SETTLE_TICKS: usize = 20;
/// A fault falls on one of a delivery's first this many AWS calls (a deploy makes about 25).
const CALLS: u8 = 24;

/// Figures over a run, printed after the harness's own line: how far the swaps got, and how
/// often the nastiest deliveries happened.
static REACHED: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];
static CONCURRENT_ROUNDS: AtomicU64 = AtomicU64::new(0);
static OLD_TICKS: AtomicU64 = AtomicU64::new(0);
static DUPLICATES: AtomicU64 = AtomicU64::new(0);
const PHASES: [Phase; 9] = [
    Phase::Deploying,
    Phase::Testing,
    Phase::Shifting,
    Phase::Warm,
    Phase::Done,
    Phase::RollingBack,
    Phase::Aborting,
    Phase::RolledBack,
    Phase::Aborted,
];

/// How a deploy moves traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    AllAtOnce,
    Canary,
    Linear,
}

impl Way {
    fn text(self) -> &'static str {
        match self {
            Way::AllAtOnce => "all-at-once",
            Way::Canary => "canary 20 2m",
            Way::Linear => "linear 40 1m",
        }
    }
}

/// What happens at one step: a chat command, a schedule tick, or a change in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// `deploy` of image v2 (0) or v3 (1).
    Deploy {
        image: usize,
        way: Way,
    },
    Promote,
    Abort,
    Rollback,
    Status,
    /// The schedule.
    Tick,
    /// Time passes (seconds).
    Wait(u64),
    /// Every target of a colour becomes healthy or unhealthy.
    Health {
        colour: Colour,
        healthy: bool,
    },
    /// The gate alarm goes to ALARM or back to OK.
    Alarm {
        firing: bool,
    },
    /// ECS finishes every rollout in progress, COMPLETED or FAILED.
    Rollout {
        completed: bool,
    },
    /// How the app is made (the first step of every sequence): with a test route and a test
    /// wait of 1m, or with none.
    Setup {
        test_route: bool,
    },
}

impl Event {
    fn is_world(self) -> bool {
        matches!(
            self,
            Event::Wait(_)
                | Event::Health { .. }
                | Event::Alarm { .. }
                | Event::Rollout { .. }
                | Event::Setup { .. }
        )
    }
}

fn deploy() -> impl Strategy<Value = Event> {
    let way = prop_oneof![Just(Way::AllAtOnce), Just(Way::Canary), Just(Way::Linear)];
    (0usize..2, way).prop_map(|(image, way)| Event::Deploy { image, way })
}

fn event() -> impl Strategy<Value = Event> {
    let colour = prop_oneof![Just(Colour::Blue), Just(Colour::Green)];
    prop_oneof![
        2 => deploy(),
        1 => Just(Event::Promote),
        1 => Just(Event::Abort),
        1 => Just(Event::Rollback),
        1 => Just(Event::Status),
        8 => Just(Event::Tick),
        2 => prop_oneof![Just(30u64), Just(60), Just(120), Just(300)].prop_map(Event::Wait),
        2 => (colour, any::<bool>()).prop_map(|(colour, healthy)| Event::Health { colour, healthy }),
        2 => any::<bool>().prop_map(|firing| Event::Alarm { firing }),
        6 => prop_oneof![4 => Just(true), 1 => Just(false)].prop_map(|completed| Event::Rollout { completed }),
    ]
}

/// A sequence: the app's setup, a deploy (so that most sequences have a swap to disturb), then
/// up to 9 steps.
fn sequence() -> impl Strategy<Value = Vec<Step<Event>>> {
    let setup = any::<bool>().prop_map(|test_route| Step {
        event: Event::Setup { test_route },
        delivery: Delivery::Once,
        fault: None,
    });
    (
        setup,
        steps(deploy(), 1..2, CALLS),
        steps(event(), 0..10, CALLS),
    )
        .prop_map(|(setup, first, rest)| {
            let mut all = vec![setup];
            all.extend(first);
            all.extend(rest);
            all
        })
}

/// One sequence's world: the app, the images, the function's and the checker's dependencies.
struct World<'a> {
    emulator: &'a Emulator,
    app: App,
    topic: String,
    images: Vec<String>,
    /// The function: one attempt per AWS call, so an injected fault is a failed invocation.
    function: Deps<SnsAlerts>,
    /// The checker's own clients (faults are never armed while it reads).
    reader: Deps<SnsAlerts>,
}

/// What one delivery did.
#[derive(Debug)]
struct Delivered {
    step: usize,
    event: Event,
    answer: Result<Value, String>,
}

impl World<'_> {
    async fn new(emulator: &Emulator, test_route: bool) -> World<'_> {
        let topic = topic(emulator, "ops-alerts").await;
        let app = App::create(
            emulator,
            json!({"app": APP, "alarms": [ALARM], "test_listener": test_route, "test_wait": "1m",
                   "termination_wait": "2m", "health_timeout": "3m"}),
        );
        let images = ["v2", "v3"]
            .iter()
            .map(|tag| push(emulator, &app, tag))
            .collect();
        let function = deps(emulator, &topic, &app.routes(), 1).await;
        let reader = deps(emulator, &topic, &app.routes(), 3).await;
        World {
            emulator,
            app,
            topic,
            images,
            function,
            reader,
        }
    }

    /// The app as AWS has it now, through the swapper's own reading of it.
    async fn view(&self) -> Result<AppView, String> {
        let entries = observe::apps(&self.reader.clients.lb, &self.reader.config.routes)
            .await
            .map_err(|e| format!("the routes cannot be read: {e}"))?;
        let entry = observe::find(&entries, APP).map_err(|e| e.to_string())?;
        observe::app_view(&self.reader.clients, entry, &self.reader.config.clusters)
            .await
            .map_err(|e| format!("the app cannot be read: {e}"))
    }

    async fn change(&self, event: Event) {
        match event {
            Event::Health { colour, healthy } => set_health(
                self.emulator,
                &self.app,
                colour.as_str(),
                if healthy { "healthy" } else { "unhealthy" },
            ),
            Event::Alarm { firing } => {
                let cloudwatch = aws_sdk_cloudwatch::Client::new(&self.emulator.sdk_config().await);
                cloudwatch
                    .set_alarm_state()
                    .alarm_name(ALARM)
                    .state_value(if firing {
                        aws_sdk_cloudwatch::types::StateValue::Alarm
                    } else {
                        aws_sdk_cloudwatch::types::StateValue::Ok
                    })
                    .state_reason(if firing {
                        "Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0)"
                    } else {
                        "Threshold Crossed: no datapoint above the threshold"
                    })
                    .send()
                    .await
                    .expect("set the alarm state");
            }
            Event::Rollout { completed } => {
                for colour in ["blue", "green"] {
                    let service = self
                        .reader
                        .clients
                        .ecs
                        .describe(&self.app.cluster(), &self.app.service(colour))
                        .await
                        .expect("read the service");
                    let in_progress = service
                        .primary()
                        .is_some_and(|p| p.rollout_state.as_deref() == Some("IN_PROGRESS"));
                    if in_progress {
                        let state = if completed { "COMPLETED" } else { "FAILED" };
                        finish_rollout(self.emulator, &self.app, colour, state);
                    }
                }
            }
            Event::Wait(_) | Event::Setup { .. } => {}
            _ => unreachable!("{event:?} is delivered, not a change in the world"),
        }
    }

    fn payload(&self, event: Event, sent: u64) -> Value {
        let command =
            |name: &str| json!({"command": name, "args": {"app": APP}, "requested_by": "bob"});
        match event {
            Event::Deploy { image, way } => json!({
                "command": "deploy",
                "args": {"app": APP, "image": self.images[image], "strategy": way.text()},
                "requested_by": "alice"
            }),
            Event::Promote => command("promote"),
            Event::Abort => command("abort"),
            Event::Rollback => command("rollback"),
            Event::Status => command("status"),
            Event::Tick => scheduled(sent),
            _ => unreachable!("{event:?} is a change in the world"),
        }
    }

    /// Deliver one event as Lambda does: a tick (asynchronous) until it settles, a person's
    /// command once. Lambda's clock is `now`; a tick carries its own `sent` time.
    async fn deliver(&self, step: usize, event: Event, sent: u64, now: u64) -> Delivered {
        let payload = self.payload(event, sent);
        let answer = match event {
            Event::Tick => {
                until_settled(ASYNC_ATTEMPTS, || {
                    handle(&self.function, payload.clone(), now)
                })
                .await
            }
            _ => handle(&self.function, payload, now).await,
        };
        Delivered {
            step,
            event,
            answer: answer.map_err(|e| e.to_string()),
        }
    }
}

/// The identity of a transition alert: swap, event type, phase and the weights it leaves.
type AlertKey = (String, String, String, String);

fn alert_key(alert: &ops_e2e::blue_green::Published) -> Option<AlertKey> {
    if !alert.event_type.starts_with("swap.")
        || matches!(alert.event_type.as_str(), "swap.refused" | "swap.error")
    {
        return None;
    }
    let context = &alert.chat["metadata"]["additionalContext"];
    let field = |name: &str| context[name].as_str().unwrap_or_default().to_string();
    Some((
        field("swap_id"),
        alert.event_type.clone(),
        field("phase"),
        field("weights"),
    ))
}

/// The alert a recorded state is announced by.
fn expected_alert(id: &str, plan: &SwapPlan, phase: Phase, step: usize) -> AlertKey {
    let steps = plan.strategy.steps();
    let (event_type, alerted_phase, percent) = match phase {
        Phase::Deploying => ("swap.started", Phase::Deploying, 0),
        Phase::Testing => ("swap.testing", Phase::Testing, 0),
        Phase::Shifting => (
            "swap.shifting",
            Phase::Shifting,
            steps[step.min(steps.len() - 1)],
        ),
        Phase::Warm => ("swap.traffic-moved", Phase::Warm, 100),
        Phase::Done => ("swap.completed", Phase::Done, 100),
        Phase::RollingBack | Phase::RolledBack => ("swap.rolled-back", Phase::RollingBack, 0),
        Phase::Aborting | Phase::Aborted => ("swap.aborted", Phase::Aborting, 0),
    };
    (
        id.to_string(),
        event_type.to_string(),
        alerted_phase.as_str().to_string(),
        Split::at_percent(plan.to, percent).weights_text(plan.from()),
    )
}

/// Whether the recorded swap is rolling back onto an old colour that has no healthy targets, so
/// that traffic stays where it is until it has.
fn held(view: &AppView) -> bool {
    view.swap.as_ref().is_some_and(|swap| {
        swap.state.phase == Phase::RollingBack
            && view.colour(swap.plan.from()).healthy() == 0
            && !view.split().is_at(swap.plan.to, 0)
    })
}

/// The new colour's share a state asks for.
fn target_percent(plan: &SwapPlan, phase: Phase, step: usize) -> u32 {
    let steps = plan.strategy.steps();
    match phase {
        Phase::Shifting => steps[step.min(steps.len() - 1)],
        Phase::Warm | Phase::Done => 100,
        _ => 0,
    }
}

fn going_back(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::RollingBack | Phase::Aborting | Phase::RolledBack | Phase::Aborted
    )
}

/// Where a forward state stands in its plan, and how long it must last (its wait).
fn rank(plan: &SwapPlan, phase: Phase, step: usize, test_route: bool) -> Option<(usize, u64)> {
    let last = plan.strategy.steps().len() - 1;
    let testing = usize::from(test_route);
    match phase {
        Phase::Deploying => Some((0, 0)),
        Phase::Testing => Some((1, TEST_WAIT)),
        Phase::Shifting => Some((1 + testing + step, plan.strategy.wait())),
        Phase::Warm => Some((1 + testing + last, TERMINATION_WAIT)),
        Phase::Done => Some((2 + testing + last, 0)),
        _ => None,
    }
}

/// What the checker remembers of one swap across rounds.
#[derive(Debug)]
struct Tracked {
    plan: SwapPlan,
    /// The last recorded (phase, step) seen, and the clock of the round it was first seen after.
    last: (Phase, usize),
    since: u64,
    /// Every (phase, step) seen recorded, and whether it was seen in effect (it must be alerted).
    seen: BTreeMap<(String, usize), bool>,
    went_back: bool,
}

/// The checker's memory of a sequence.
#[derive(Default)]
struct Checker {
    swaps: BTreeMap<String, Tracked>,
    /// Alert key -> (round first published, whether a fault fired or two runs raced in it).
    alerted: BTreeMap<AlertKey, (usize, bool)>,
    published: usize,
}

/// A round as the checker sees it.
struct RoundFacts<'a> {
    index: usize,
    clock: u64,
    before: &'a AppView,
    after: &'a AppView,
    delivered: &'a [Delivered],
    fault_fired: bool,
}

fn split_text(split: &Split) -> String {
    format!(
        "blue={} green={} of {}",
        split.blue, split.green, split.total
    )
}

impl Checker {
    fn check(&mut self, world: &World, round: &RoundFacts) -> Result<(), String> {
        let after = round.after;
        let before = round.before;
        let r = round.index;
        let split = after.split();
        // S1: weights on the colours, and on the plan.
        if !after.foreign_targets().is_empty() || split.total == 0 {
            return Err(format!(
                "S1 broke after round {r}: the live route forwards to {} ({}), not only to the colours",
                after.foreign_targets().join(", "),
                split_text(&split)
            ));
        }
        match &after.swap {
            None => {
                if !split.is_at(Colour::Green, 0) {
                    return Err(format!(
                        "S1 broke after round {r}: no swap recorded, yet traffic is {}",
                        split_text(&split)
                    ));
                }
            }
            Some(swap) => {
                let steps = swap.plan.strategy.steps();
                let allowed = std::iter::once(0).chain(steps.iter().copied());
                if !allowed.clone().any(|p| split.is_at(swap.plan.to, p)) {
                    return Err(format!(
                        "S1 broke after round {r}: swap {} to {} by {:?} ({} step {}) left traffic {}, not 0% or a step of {:?}",
                        swap.plan.id, swap.plan.to, swap.plan.strategy, swap.state.phase, swap.state.step,
                        split_text(&split), steps
                    ));
                }
            }
        }
        let alone = round.delivered.len() == 1;
        let promoted = round.delivered.iter().any(|d| d.event == Event::Promote);
        // S2: a lone delivery that succeeded leaves AWS as the recorded state says, alerted.
        if let (true, Some(swap)) = (alone, &after.swap) {
            let delivered = &round.delivered[0];
            let acted = delivered.answer.is_ok() && delivered.event != Event::Status;
            if acted {
                let state = &swap.state;
                let want = target_percent(&swap.plan, state.phase, state.step);
                // A rollback onto an old colour without healthy targets holds traffic (and the
                // new colour, and the marks) where they are until it has some.
                let held = held(after);
                if !held && !split.is_at(swap.plan.to, want) {
                    return Err(format!(
                        "S2 broke after round {r}: {:?} succeeded, the state is {} step {} ({want}% on {}), yet traffic is {}",
                        delivered.event, state.phase, state.step, swap.plan.to, split_text(&split)
                    ));
                }
                if state.reported != state.version {
                    return Err(format!(
                        "S2 broke after round {r}: {:?} succeeded, yet state v{} ({}) is not alerted (r{})",
                        delivered.event, state.version, state.phase, state.reported
                    ));
                }
                let in_flight = !state.phase.is_terminal() && !going_back(state.phase);
                let mark = format!("{APP}:{}", swap.plan.id);
                for colour in [&after.blue, &after.green].into_iter().filter(|_| !held) {
                    let marked = colour.service.tag("ops:swap-in-flight");
                    let right = if in_flight {
                        marked == Some(mark.as_str())
                    } else {
                        marked.is_none()
                    };
                    if !right {
                        return Err(format!(
                            "S2 broke after round {r}: {:?} succeeded, the swap is {}, yet {} is marked {marked:?}",
                            delivered.event, state.phase, colour.colour
                        ));
                    }
                }
            }
        }
        // S6: marks name the recorded swap; a deploy answered as started is the recorded swap.
        for colour in [&after.blue, &after.green] {
            if let Some(mark) = colour.service.tag("ops:swap-in-flight") {
                let recorded = after.swap.as_ref().map(|s| format!("{APP}:{}", s.plan.id));
                if recorded.as_deref() != Some(mark) {
                    return Err(format!(
                        "S6 broke after round {r}: {} is marked {mark}, but the swap recorded is {recorded:?}",
                        colour.colour
                    ));
                }
            }
        }
        for delivered in round.delivered {
            if let (Event::Deploy { image, .. }, Ok(answer)) = (delivered.event, &delivered.answer)
            {
                if answer["dry_run"] == json!(true) {
                    continue;
                }
                let digest = world.images[image].rsplit('@').next().unwrap_or_default();
                let recorded = after
                    .swap
                    .as_ref()
                    .map(|s| s.image.clone())
                    .unwrap_or_default();
                if !recorded.ends_with(digest) {
                    return Err(format!(
                        "S6 broke after round {r}: deploy of {} (step {}) was answered {}, but the swap recorded deploys {recorded}",
                        world.images[image], delivered.step, answer["status"]
                    ));
                }
            }
        }
        // S8: status shows the real weights.
        if alone {
            if let (Event::Status, Ok(answer)) =
                (round.delivered[0].event, &round.delivered[0].answer)
            {
                let app = &answer["apps"][0];
                let shown = (
                    app["blue"]["weight"].as_u64(),
                    app["green"]["weight"].as_u64(),
                );
                if shown != (Some(split.blue), Some(split.green)) {
                    return Err(format!(
                        "S8 broke after round {r}: status shows weights {shown:?}, the listener has {}",
                        split_text(&split)
                    ));
                }
            }
        }
        // S3: traffic grows only on a ready colour (the new one) or a healthy one (going back).
        let before_split = before.split();
        for colour in [Colour::Blue, Colour::Green] {
            let (was, now) = (before_split.share(colour), split.share(colour));
            // Shares compared exactly: weight / total.
            let grew = u128::from(now.weight) * u128::from(was.total.max(1))
                > u128::from(was.weight) * u128::from(now.total.max(1));
            if !grew {
                continue;
            }
            let seen = before.colour(colour);
            let new = after.swap.as_ref().filter(|s| s.plan.to == colour);
            let ready = match new {
                Some(swap) => seen.ready(&swap.plan.task_definition),
                None => seen.healthy() > 0,
            };
            if !ready {
                return Err(format!(
                    "S3 broke after round {r}: traffic on {colour} grew ({} -> {}) although, when the round began, it was not ready ({} targets: {}; rollout {}, {})",
                    split_text(&before_split), split_text(&split), seen.targets.len(), seen.targets_text(),
                    seen.rollout(), seen.task_definition()
                ));
            }
            if new.is_some() && !before.firing_alarms().is_empty() {
                return Err(format!(
                    "S3 broke after round {r}: traffic on {colour} grew ({} -> {}) while {} was in ALARM",
                    split_text(&before_split), split_text(&split), before.firing_alarms().join("; ")
                ));
            }
        }
        // S4, S5: the state moves along the plan, and back only by going back.
        if let Some(swap) = &after.swap {
            let id = swap.plan.id.clone();
            let state = &swap.state;
            let key = (state.phase, state.step);
            let test_route = after.test_route.is_some();
            let tracked = self.swaps.entry(id.clone()).or_insert_with(|| Tracked {
                plan: swap.plan.clone(),
                last: key,
                since: round.clock,
                seen: BTreeMap::new(),
                went_back: false,
            });
            if tracked.plan != swap.plan {
                return Err(format!(
                    "S6 broke after round {r}: swap {id} was recorded as {:?} and is now {:?}",
                    tracked.plan, swap.plan
                ));
            }
            // A state took effect when the swap started, went back, or its routes are as it says.
            let routes_in_place = split.is_at(
                swap.plan.to,
                target_percent(&swap.plan, state.phase, state.step),
            ) && after.test_route.as_ref().is_none_or(|test| {
                let serves = if going_back(state.phase) {
                    swap.plan.from()
                } else {
                    swap.plan.to
                };
                Split::of_route(test, &after.blue.target_group, &after.green.target_group)
                    .is_at(serves, 100)
            });
            let in_effect =
                state.phase == Phase::Deploying || going_back(state.phase) || routes_in_place;
            let entry = tracked
                .seen
                .entry((state.phase.as_str().to_string(), state.step));
            if matches!(entry, std::collections::btree_map::Entry::Vacant(_)) {
                if let Some(i) = PHASES.iter().position(|p| *p == state.phase) {
                    REACHED[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            *entry.or_default() |= in_effect;
            if tracked.last != key {
                let (from, to) = (tracked.last, key);
                if tracked.went_back && !going_back(to.0) {
                    return Err(format!(
                        "S5 broke after round {r}: swap {id} went back, and is now {} step {} again",
                        to.0, to.1
                    ));
                }
                if going_back(to.0) {
                    tracked.went_back = true;
                } else if let (Some((a, wait)), Some((b, _))) = (
                    rank(&swap.plan, from.0, from.1, test_route),
                    rank(&swap.plan, to.0, to.1, test_route),
                ) {
                    if !promoted {
                        if b != a + 1 {
                            return Err(format!(
                                "S4 broke after round {r}: swap {id} jumped from {} step {} to {} step {} without a promote",
                                from.0, from.1, to.0, to.1
                            ));
                        }
                        if round.clock < tracked.since + wait {
                            return Err(format!(
                                "S4 broke after round {r}: swap {id} left {} step {} {} s after entering it (clock {}), before its wait of {wait} s",
                                from.0, from.1, round.clock - tracked.since, round.clock
                            ));
                        }
                    } else if b < a {
                        return Err(format!(
                            "S4 broke after round {r}: swap {id} went from {} step {} back to {} step {}",
                            from.0, from.1, to.0, to.1
                        ));
                    }
                } else if !going_back(to.0) {
                    return Err(format!(
                        "S5 broke after round {r}: swap {id} went from {} step {} to {} step {}",
                        from.0, from.1, to.0, to.1
                    ));
                }
                tracked.last = key;
                tracked.since = round.clock;
            }
            // S5: the new colour's traffic falls only by going back, and never rises after it.
            if before.swap.as_ref().map(|s| &s.plan.id) == Some(&id) {
                let (was, now) = (before_split.share(swap.plan.to), split.share(swap.plan.to));
                let fell = u128::from(now.weight) * u128::from(was.total.max(1))
                    < u128::from(was.weight) * u128::from(now.total.max(1));
                let rose = u128::from(now.weight) * u128::from(was.total.max(1))
                    > u128::from(was.weight) * u128::from(now.total.max(1));
                if fell && !going_back(state.phase) {
                    return Err(format!(
                        "S5 broke after round {r}: traffic on {} fell ({} -> {}) while swap {id} is {}",
                        swap.plan.to, split_text(&before_split), split_text(&split), state.phase
                    ));
                }
                let was_back = before
                    .swap
                    .as_ref()
                    .is_some_and(|s| going_back(s.state.phase));
                if rose && (tracked.went_back && was_back) {
                    return Err(format!(
                        "S5 broke after round {r}: traffic on {} rose ({} -> {}) after swap {id} went back",
                        swap.plan.to, split_text(&before_split), split_text(&split)
                    ));
                }
            }
        }
        // S7: alerts at most once, but for a fault in the round that first sent it.
        let all = alerts(world.emulator, &world.topic);
        for alert in &all[self.published..] {
            if alert.event_type == "swap.error" {
                return Err(format!(
                    "S7 broke after round {r}: a swap step failed for good: {}",
                    alert.chat["content"]["description"]
                ));
            }
            // Nothing outside the swapper changes a route here: a crash, a retry or two runs at
            // once must never be taken for a person's change.
            if alert.event_type == "swap.route-changed" {
                return Err(format!(
                    "S7 broke after round {r}: a false `traffic was changed outside the swapper`: {}",
                    alert.chat["content"]["description"]
                ));
            }
            let Some(key) = alert_key(alert) else {
                continue;
            };
            match self.alerted.get(&key) {
                None => {
                    let excused = round.fault_fired || round.delivered.len() > 1;
                    self.alerted.insert(key, (r, excused));
                }
                Some((first, excused)) => {
                    if !excused {
                        return Err(format!(
                            "S7 broke after round {r}: {key:?} was alerted again (first in round {first}, which had neither a fault nor two runs at once)"
                        ));
                    }
                    DUPLICATES.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.published = all.len();
        Ok(())
    }

    /// After settling: the swap is over, AWS says its end, every state seen was alerted.
    fn check_end(&self, end: &AppView) -> Result<(), String> {
        if let Some(swap) = &end.swap {
            let state = &swap.state;
            if !state.phase.is_terminal() || state.reported != state.version {
                return Err(format!(
                    "liveness broke: after settling, swap {} is {} v{} r{}",
                    swap.plan.id, state.phase, state.version, state.reported
                ));
            }
            let want = target_percent(&swap.plan, state.phase, state.step);
            let split = end.split();
            if !split.is_at(swap.plan.to, want) {
                return Err(format!(
                    "liveness broke: swap {} ended {} but traffic is {}",
                    swap.plan.id,
                    state.phase,
                    split_text(&split)
                ));
            }
            let (new, old) = (end.colour(swap.plan.to), end.colour(swap.plan.from()));
            let services_right = match state.phase {
                Phase::Done => {
                    old.service.desired == 0
                        && new.task_definition() == swap.plan.task_definition
                        && new.service.desired >= 1
                }
                _ => {
                    new.task_definition() == swap.plan.was_task_definition
                        && new.service.desired == swap.plan.was_desired
                }
            };
            if !services_right {
                return Err(format!(
                    "liveness broke: swap {} ended {} but {} runs {} x{} and {} runs {} x{}",
                    swap.plan.id,
                    state.phase,
                    new.colour,
                    new.task_definition(),
                    new.service.desired,
                    old.colour,
                    old.task_definition(),
                    old.service.desired
                ));
            }
            if let Some(test) = &end.test_route {
                let serves = if state.phase == Phase::Done {
                    swap.plan.to
                } else {
                    swap.plan.from()
                };
                let test_split =
                    Split::of_route(test, &end.blue.target_group, &end.green.target_group);
                if !test_split.is_at(serves, 100) {
                    return Err(format!(
                        "liveness broke: swap {} ended {} but the test route sends {}",
                        swap.plan.id,
                        state.phase,
                        split_text(&test_split)
                    ));
                }
            }
        }
        for colour in [&end.blue, &end.green] {
            if let Some(mark) = colour.service.tag("ops:swap-in-flight") {
                return Err(format!(
                    "liveness broke: after settling, {} is still marked {mark}",
                    colour.colour
                ));
            }
        }
        for (id, tracked) in &self.swaps {
            for ((phase, step), _) in tracked.seen.iter().filter(|(_, in_effect)| **in_effect) {
                let phase = PHASES
                    .into_iter()
                    .find(|p| p.as_str() == phase)
                    .expect("a phase");
                let key = expected_alert(id, &tracked.plan, phase, *step);
                // Going back is alerted with the weights it leaves: a held rollback's are not 0%.
                let found = if going_back(phase) {
                    self.alerted
                        .keys()
                        .any(|k| (&k.0, &k.1, &k.2) == (&key.0, &key.1, &key.2))
                } else {
                    self.alerted.contains_key(&key)
                };
                if !found {
                    return Err(format!(
                        "liveness broke: swap {id} was recorded {phase} step {step}, but {key:?} was never alerted; alerts: {:?}",
                        self.alerted.keys().collect::<Vec<_>>()
                    ));
                }
            }
        }
        let ended: BTreeSet<&String> = self
            .alerted
            .keys()
            .filter(|k| {
                matches!(
                    k.1.as_str(),
                    "swap.completed" | "swap.rolled-back" | "swap.aborted"
                )
            })
            .map(|k| &k.0)
            .collect();
        for key in self.alerted.keys().filter(|k| k.1 == "swap.started") {
            if !ended.contains(&key.0) {
                return Err(format!(
                    "liveness broke: swap {} was alerted as started and never as ended",
                    key.0
                ));
            }
        }
        Ok(())
    }
}

/// Play one sequence on the reset emulator.
async fn play(emulator: &Emulator, sequence: &[Step<Event>]) -> Result<Played, String> {
    let test_route = matches!(
        sequence.first(),
        Some(Step {
            event: Event::Setup { test_route: true },
            ..
        })
    );
    let world = World::new(emulator, test_route).await;
    // Changes in the world simply happen, in order.
    let normalised: Vec<Step<Event>> = sequence
        .iter()
        .map(|s| Step {
            delivery: if s.event.is_world() {
                Delivery::Once
            } else {
                s.delivery
            },
            ..s.clone()
        })
        .collect();
    let rounds = schedule(&normalised);
    let mut played = Played::default();
    let mut checker = Checker::default();
    let mut clock = T0;
    let mut sent: Vec<Option<u64>> = vec![None; sequence.len()];
    let mut reached = 0usize;
    for (r, round) in rounds.iter().enumerate() {
        clock += 1;
        // Time passes as the sequence reaches each step (whether or not it is delivered now): by
        // a `Wait`, and by the minute between two runs of the schedule for a tick.
        let furthest = round.steps.iter().copied().max().unwrap_or(0);
        while reached <= furthest {
            match normalised[reached].event {
                Event::Wait(seconds) => clock += seconds,
                Event::Tick => clock += 60,
                _ => {}
            }
            sent[reached] = Some(clock);
            reached += 1;
        }
        for &i in &round.steps {
            if normalised[i].event.is_world() {
                world.change(normalised[i].event).await;
            }
        }
        let deliveries: Vec<usize> = round
            .steps
            .iter()
            .copied()
            .filter(|&i| !normalised[i].event.is_world())
            .collect();
        if deliveries.is_empty() {
            continue;
        }
        let before = world.view().await.map_err(|e| format!("round {r}: {e}"))?;
        let mut armed = false;
        for &i in &deliveries {
            armed |= arm(emulator, normalised[i].fault);
        }
        let at = |i: usize| sent[i].unwrap_or(clock);
        if deliveries.len() > 1 {
            CONCURRENT_ROUNDS.fetch_add(1, Ordering::Relaxed);
        }
        for &i in &deliveries {
            if normalised[i].event == Event::Tick && at(i) + 1 < clock {
                OLD_TICKS.fetch_add(1, Ordering::Relaxed);
            }
        }
        let delivered: Vec<Delivered> = match deliveries.as_slice() {
            [one] => vec![
                world
                    .deliver(*one, normalised[*one].event, at(*one), clock)
                    .await,
            ],
            [a, b] => {
                let (x, y) = tokio::join!(
                    world.deliver(*a, normalised[*a].event, at(*a), clock),
                    world.deliver(*b, normalised[*b].event, at(*b), clock)
                );
                vec![x, y]
            }
            more => unreachable!("at most two deliveries at once: {more:?}"),
        };
        let fired = model::disarm(emulator, armed);
        played.deliveries += delivered.len() as u64;
        played.faults += fired;
        let after = world
            .view()
            .await
            .map_err(|e| format!("invariant S1 broke after round {r} ({delivered:?}): {e}"))?;
        checker
            .check(
                &world,
                &RoundFacts {
                    index: r,
                    clock,
                    before: &before,
                    after: &after,
                    delivered: &delivered,
                    fault_fired: fired > 0,
                },
            )
            .map_err(|e| format!("{e}\n  round {r} delivered: {delivered:?}"))?;
    }
    // Settle: the schedule every minute, nothing failing, until the swap is over and alerted.
    let mut ended = None;
    let mut previous: Option<AppView> = None;
    for t in 0..SETTLE_TICKS {
        clock += 60;
        let before = match previous.take() {
            Some(view) => view,
            None => world.view().await?,
        };
        let tick = world.deliver(usize::MAX, Event::Tick, clock, clock).await;
        if let Err(error) = &tick.answer {
            return Err(format!("liveness broke: settling tick {t} failed: {error}"));
        }
        let after = world.view().await?;
        let index = rounds.len() + t;
        checker
            .check(
                &world,
                &RoundFacts {
                    index,
                    clock,
                    before: &before,
                    after: &after,
                    delivered: std::slice::from_ref(&tick),
                    fault_fired: false,
                },
            )
            .map_err(|e| format!("{e} (settling)"))?;
        let over = after.swap.as_ref().is_none_or(|s| !s.needs_work());
        previous = Some(after.clone());
        if held(&after) {
            // The old colour recovers: the held rollback must then finish on its own.
            let old = after.swap.as_ref().map(|s| s.plan.from()).expect("a swap");
            set_health(emulator, &world.app, old.as_str(), "healthy");
            previous = None;
        }
        if !over {
            continue;
        }
        match &ended {
            None => ended = Some((checker.published, after.split(), after.swap.clone())),
            Some((published, split, swap)) => {
                if *published != checker.published || *split != after.split() || *swap != after.swap
                {
                    return Err(format!(
                        "liveness broke: a tick after the end changed something: alerts {published} -> {}, traffic {} -> {}",
                        checker.published,
                        split_text(split),
                        split_text(&after.split())
                    ));
                }
                checker.check_end(&after)?;
                return Ok(played);
            }
        }
    }
    let end = world.view().await?;
    Err(format!(
        "liveness broke: the swap did not end within {SETTLE_TICKS} ticks: {:?}",
        end.swap.map(|s| (s.plan.id, s.state))
    ))
}

#[test]
fn random_event_sequences_keep_the_blue_green_swapper_invariants() {
    let emulator = Emulator::start();
    let runtime = model::runtime();
    model::run(
        "blue-green-swapper",
        &emulator,
        sequence(),
        |emulator, sequence| runtime.block_on(play(emulator, sequence)),
    );
    let reached: Vec<String> = PHASES
        .iter()
        .zip(&REACHED)
        .map(|(phase, n)| format!("{phase} {}", n.load(Ordering::Relaxed)))
        .collect();
    println!(
        "model: blue-green-swapper: states reached (swap x state): {}; {} concurrent rounds, {} ticks delivered with an old time, {} alerts sent twice (after a fault or two runs at once)",
        reached.join(", "),
        CONCURRENT_ROUNDS.load(Ordering::Relaxed),
        OLD_TICKS.load(Ordering::Relaxed),
        DUPLICATES.load(Ordering::Relaxed)
    );
}
