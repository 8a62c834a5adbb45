//! Model-based event sequences for bastion-eip-associator (DESIGN.md, "Event order"): one or two
//! bastion groups sharing a pool of one or two Elastic IPs; launches held at the launch lifecycle
//! hook whose `EC2 Instance-launch Lifecycle Action` events are delivered once, twice, late, never
//! or two at once (two launches competing for one address); bastions stopped or terminated through
//! the EC2 API while events are in flight; a hook timing out (Auto Scaling completes the action
//! with the hook's default result, ABANDON); the reconcile schedule; a forged `Scheduled Event`
//! sent from chat; `doctor`; and the emulator failing one AWS call of a delivery. The function runs
//! in-process with one attempt per AWS call and alerts through the real SNS adapter, read back
//! from the emulator's outbox. After every round, and after a settling phase at the end, it checks:
//!
//! 1. A launch's lifecycle action is completed at most once, with one result: the function
//!    completes it at most once, never one the hook's timeout ended, and never CONTINUE without a
//!    pool address (its answer names the address it secured).
//! 2. A bastion whose launch the function completed with CONTINUE holds that address (read back
//!    from EC2) while it is pending or running; if it is stopped, it still holds it or an alert
//!    names it as the one the address was taken from (`taken_from`: `eip.taken-over`, or
//!    `eip.freed` when the run that freed it failed before it could take it); terminated, EC2
//!    freed it. So no address is ever claimed by two CONTINUEd bastions without an alerted
//!    takeover.
//! 3. An address leaves an instance that still exists only with such an alert, and never leaves a
//!    pending or running instance.
//! 4. No address is held by a terminated instance, and a stopped instance holds only the address
//!    it held when it stopped (unless it was stopped while a delivery ran: EC2 lets an address be
//!    associated with a stopped instance, and the function read it running just before).
//! 5. Every launch the function completed is alerted exactly once by an alert carrying its result
//!    (`launch_result`), of a kind that fits it (CONTINUE: `eip.associated` / `eip.taken-over`;
//!    ABANDON: `eip.pool-exhausted` / `eip.launch-abandoned`); a launch it did not complete (the
//!    hook timed out) has no such alert. Every address the reconcile gave an in-service bastion is
//!    alerted exactly once (`eip.drift-repaired` or `eip.taken-over`), or at most twice when two
//!    ticks ran at the same time (EC2 accepts re-associating an address with the instance already
//!    holding it, so it refuses neither run; see the handler's docs).
//! 6. A launch event delivered after its action was completed touches no address and completes
//!    nothing (checked by call counts when it is delivered alone).
//! 7. Every genuine event (launch, schedule tick) settles within Lambda's three attempts; a forged
//!    `Scheduled Event` is refused naming `aws.events` and makes no AWS call at all; `doctor`
//!    changes nothing.
//!
//! Settling (liveness): every hook still open times out, then one clean schedule tick runs; every
//! in-service running bastion then holds a pool address, or every address is held by a pending or
//! running instance and that tick alerted `eip.pool-exhausted` for it; the safety checks run again.
//!
//! The hook's timeout: the emulator has none, so the model plays Auto Scaling and completes the
//! action with the hook's default result (ABANDON) (`HookTimeout` steps, and every hook still open
//! when the sequence settles).
//!
//! What the model cannot show: the process dying between a change (CompleteLifecycleAction, an
//! association, a DisassociateAddress) and the Publish of its alert. The injected fault is an
//! error answer: the function tells what it changed before it returns the error, and retries a
//! failed Publish in-process (`OUTCOME_PUBLISH_TRIES`); a process that dies there loses that alert
//! (at most once, never twice; see the function's handler docs).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bastion_eip_associator::config::AssociatorConfig;
use bastion_eip_associator::handler::{function_handler, Deps};
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::Error;
use ops_e2e::events::scheduled;
use ops_e2e::fixtures;
use ops_e2e::model::{self, Delivery, Played, Step, ASYNC_ATTEMPTS};
use ops_e2e::redeliver::until_settled;
use ops_e2e::Emulator;
use proptest::prelude::*;
use serde_json::{json, Value};

const POOL: &str = "bastion";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";
const GROUPS: [&str; 2] = ["bastion-a", "bastion-b"];
const T0: u64 = 1_795_000_000;
/// AWS calls a delivery makes, at most, for the fault to fall on.
const CALLS: u8 = 10;

/// What happens in one step.
#[derive(Debug, Clone)]
enum Op {
    /// The account at the start (always the first step, delivered once): `groups` groups with a
    /// launch hook, `initial` in-service instances each (no address yet), `pool` addresses.
    World {
        groups: usize,
        pool: usize,
        initial: [bool; 2],
    },
    /// A group scales out by one; the new instance is held at the launch hook and EventBridge
    /// delivers its lifecycle action.
    Launch { group: usize },
    /// Someone stops the `target`-th known instance (the EC2 API, no event to the function).
    Stop { target: usize },
    /// Someone terminates the `target`-th known instance.
    Terminate { target: usize },
    /// The `launch`-th launch's hook times out: Auto Scaling completes it with ABANDON.
    HookTimeout { launch: usize },
    /// The reconcile schedule fires.
    Tick,
    /// A person sends a `Scheduled Event` from chat (source not `aws.events`).
    ForgedTick,
    /// A person asks `doctor`.
    Doctor,
}

fn world() -> impl Strategy<Value = Op> {
    (1usize..=2, 1usize..=2, any::<[bool; 2]>()).prop_map(|(groups, pool, initial)| Op::World {
        groups,
        pool,
        initial,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0usize..2).prop_map(|group| Op::Launch { group }),
        1 => (0usize..4).prop_map(|target| Op::Stop { target }),
        1 => (0usize..4).prop_map(|target| Op::Terminate { target }),
        1 => (0usize..4).prop_map(|launch| Op::HookTimeout { launch }),
        2 => Just(Op::Tick),
        1 => Just(Op::ForgedTick),
        1 => Just(Op::Doctor),
    ]
}

/// A world, then 1 to 9 steps.
fn sequence() -> impl Strategy<Value = Vec<Step<Op>>> {
    (world(), model::steps(op(), 1..10, CALLS)).prop_map(|(world, mut steps)| {
        steps.insert(
            0,
            Step {
                event: world,
                delivery: Delivery::Once,
                fault: None,
            },
        );
        steps
    })
}

#[test]
fn random_event_sequences_keep_the_bastion_eip_associator_invariants() {
    let emulator = Emulator::start();
    let runtime = model::runtime();
    let clients = runtime.block_on(async {
        Clients {
            world: emulator.sdk_config().await,
            one_attempt: sdk_config(&AwsSettings {
                max_attempts: 1,
                ..emulator.settings()
            })
            .await,
        }
    });
    let started = Instant::now();
    let played = std::sync::atomic::AtomicU64::new(0);
    model::run(
        "bastion-eip-associator",
        &emulator,
        sequence(),
        |emulator, steps| {
            played.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            runtime.block_on(play(emulator, &clients, steps))
        },
    );
    let n = played.load(std::sync::atomic::Ordering::Relaxed).max(1);
    println!(
        "model: bastion-eip-associator: {:.2} s per sequence played (its world set up on a reset emulator; shrinking counted when it ran)",
        started.elapsed().as_secs_f64() / n as f64
    );
}

/// One launch the model made.
#[derive(Debug, Clone)]
struct Launched {
    instance: String,
    group: String,
    hook: String,
    token: String,
    event: Value,
}

/// One alert read back from SNS.
#[derive(Debug, Clone)]
struct Sent {
    event_type: String,
    instance: String,
    taken_from: Option<String>,
    /// The result of the launch whose completion it tells, if it does.
    launch_result: Option<String>,
    /// What started it: the text of its `Why`.
    why: String,
}

impl Sent {
    fn by_reconcile(&self) -> bool {
        self.why.starts_with("The reconcile schedule")
    }
}

/// AWS as the checks read it.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// allocation id -> holder.
    holders: BTreeMap<String, Option<String>>,
    /// instance -> EC2 state.
    states: BTreeMap<String, String>,
    /// instance -> (group, lifecycle state).
    lifecycle: BTreeMap<String, (String, String)>,
    /// instance -> result of its launch's lifecycle action (None: still open).
    results: BTreeMap<String, Option<String>>,
    alerts: Vec<Sent>,
}

impl Seen {
    fn holds(&self, instance: &str) -> Option<&String> {
        self.holders
            .iter()
            .find(|(_, h)| h.as_deref() == Some(instance))
            .map(|(a, _)| a)
    }
    fn alive(&self, instance: &str) -> bool {
        matches!(
            self.states.get(instance).map(String::as_str),
            Some("pending" | "running")
        )
    }
}

/// One sequence being played.
struct Sim<'a> {
    emulator: &'a Emulator,
    /// The function's dependencies: one attempt per AWS call.
    deps: Deps<SnsAlerts>,
    /// The world's own clients (standard retries), for changes and checks.
    ec2: Ec2,
    groups: AutoScalingGroups,
    group_names: Vec<String>,
    /// Instances in the order the model came to know them (targets of Stop and Terminate).
    known: Vec<String>,
    launches: Vec<Launched>,
    /// step index -> its launch (None: the group was at its max size).
    launch_of: BTreeMap<usize, Option<usize>>,
    /// Launches whose hook the model timed out (the action completed by Auto Scaling).
    timed_out: BTreeSet<String>,
    /// instance -> function answers that completed its launch: (result, allocation claimed).
    completed: BTreeMap<String, Vec<(String, Option<String>)>>,
    /// Stopped instances: the address each held right after it stopped, and whether a delivery
    /// ran at the same time.
    stopped: BTreeMap<String, (Option<String>, bool)>,
    /// Whether two schedule ticks ran at the same time.
    concurrent_ticks: bool,
    /// The previous reading, to see addresses move.
    last: Seen,
    played: Played,
}

/// SDK configurations built once: the world's (standard retries) and the function's (one attempt
/// per call, so an injected fault fails the invocation as the process dying there would).
struct Clients {
    world: aws_config::SdkConfig,
    one_attempt: aws_config::SdkConfig,
}

async fn play(
    emulator: &Emulator,
    clients: &Clients,
    steps: &[Step<Op>],
) -> Result<Played, String> {
    let Op::World {
        groups,
        pool,
        initial,
    } = steps[0].event.clone()
    else {
        return Err("the first step must be the world".into());
    };
    let mut sim = Sim::new(emulator, clients, groups, pool, initial).await;
    let rounds = model::schedule(steps);
    for (r, round) in rounds.iter().enumerate() {
        let upto = *round.steps.iter().max().expect("a round has a step");
        sim.happen_launches(steps, upto).await;
        sim.round(steps, &round.steps)
            .await
            .map_err(|e| format!("invariant {e} after round {r} (steps {:?})", round.steps))?;
    }
    sim.happen_launches(steps, steps.len()).await;
    sim.settle()
        .await
        .map_err(|e| format!("invariant {e} after settling"))?;
    Ok(sim.played)
}

impl<'a> Sim<'a> {
    async fn new(
        emulator: &'a Emulator,
        clients: &Clients,
        groups: usize,
        pool: usize,
        initial: [bool; 2],
    ) -> Sim<'a> {
        let world = &clients.world;
        let ec2 = Ec2::new(world);
        let asg = AutoScalingGroups::new(world);
        let group_names: Vec<String> = GROUPS[..groups].iter().map(|g| g.to_string()).collect();
        for (g, name) in group_names.iter().enumerate() {
            let desired = i32::from(initial[g]);
            fixtures::group(asg.client(), name, (0, desired, 8), Some(POOL)).await;
        }
        fixtures::pool_addresses(ec2.client(), POOL, pool).await;
        aws_sdk_sns::Client::new(world)
            .create_topic()
            .name("ops-alerts")
            .send()
            .await
            .expect("the alert topic");
        let mut known = Vec::new();
        for name in &group_names {
            known.extend(
                asg.describe(name)
                    .await
                    .expect("group")
                    .instances
                    .into_keys(),
            );
        }
        let one = &clients.one_attempt;
        let env = Env::from_pairs([
            ("ALERT_TOPIC_ARN", TOPIC.to_string()),
            ("BASTION_GROUPS", group_names.join(",")),
            ("ASSOCIATE_RETRY_DELAY_MS", "0".to_string()),
        ]);
        let deps = Deps {
            ec2: Ec2::new(one),
            groups: AutoScalingGroups::new(one),
            iam: IamSimulator::new(one),
            alerts: SnsAlerts::new(one, TOPIC),
            config: AssociatorConfig::from_env(&env).expect("config"),
        };
        emulator.reset_calls();
        Sim {
            emulator,
            deps,
            ec2,
            groups: asg,
            group_names,
            known,
            launches: Vec::new(),
            launch_of: BTreeMap::new(),
            timed_out: BTreeSet::new(),
            completed: BTreeMap::new(),
            stopped: BTreeMap::new(),
            concurrent_ticks: false,
            last: Seen::default(),
            played: Played::default(),
        }
    }

    /// Launches of steps up to `upto` happen in step order, whenever their event is delivered (a
    /// late or lost event does not delay the launch itself).
    async fn happen_launches(&mut self, steps: &[Step<Op>], upto: usize) {
        for (index, step) in steps.iter().enumerate().take(upto + 1) {
            let Op::Launch { group } = step.event else {
                continue;
            };
            if self.launch_of.contains_key(&index) {
                continue;
            }
            let name = self.group_names[group % self.group_names.len()].clone();
            let launched = self.emulator.control(
                "POST",
                "/_ops/autoscaling/launch",
                Some(json!({ "group": name })),
            );
            let made = launched.ok().map(|launched| {
                let event = launched["event"].clone();
                let instance = launched["instance_id"].as_str().unwrap().to_string();
                self.known.push(instance.clone());
                self.launches.push(Launched {
                    instance,
                    group: name.clone(),
                    hook: event["detail"]["LifecycleHookName"]
                        .as_str()
                        .unwrap()
                        .into(),
                    token: event["detail"]["LifecycleActionToken"]
                        .as_str()
                        .unwrap()
                        .into(),
                    event,
                });
                self.launches.len() - 1
            });
            self.launch_of.insert(index, made);
        }
    }

    fn target(&self, n: usize) -> Option<String> {
        (!self.known.is_empty()).then(|| self.known[n % self.known.len()].clone())
    }

    /// One round: its steps at once, each delivery with its fault armed; then every check.
    async fn round(&mut self, steps: &[Step<Op>], indexes: &[usize]) -> Result<(), String> {
        // Nothing changed since the last reading but launches held at the hook (open actions).
        let before = self.last.clone();
        let (calls_before, total_before) = self.calls();
        let mut armed = false;
        for &i in indexes {
            armed |= model::arm(self.emulator, steps[i].fault);
        }
        let alone = indexes.len() == 1;
        self.concurrent_ticks |= indexes
            .iter()
            .filter(|&&i| matches!(steps[i].event, Op::Tick))
            .count()
            > 1;
        let concurrent = !alone;
        let outcomes = match indexes {
            [a] => vec![self.step(steps, *a, concurrent).await],
            [a, b] => {
                let (x, y) = tokio::join!(
                    self.step(steps, *a, concurrent),
                    self.step(steps, *b, concurrent)
                );
                vec![x, y]
            }
            _ => unreachable!("a round has one or two steps"),
        };
        let fired = if armed {
            self.emulator.faults_fired()
        } else {
            0
        };
        model::disarm(self.emulator, armed);
        let faulted = fired > 0;
        self.played.faults += fired;
        let (calls_after, total_after) = self.calls();
        // Bookkeeping of what happened, then the checks.
        for (&i, outcome) in indexes.iter().zip(&outcomes) {
            match (&steps[i].event, outcome) {
                (Op::Stop { .. }, Outcome::Stopped(Some(instance))) => {
                    let held = self
                        .ec2
                        .addresses_tagged("ops:eip-pool", Some(POOL))
                        .await
                        .expect("read the pool")
                        .into_iter()
                        .find(|a| a.instance_id.as_deref() == Some(instance.as_str()))
                        .map(|a| a.allocation_id);
                    self.stopped.insert(instance.clone(), (held, concurrent));
                }
                (Op::HookTimeout { .. }, Outcome::TimedOut(Some(instance))) => {
                    self.timed_out.insert(instance.clone());
                }
                (Op::Launch { .. }, Outcome::Delivered(Ok(answer)))
                    if answer["status"] == "completed" =>
                {
                    let instance = answer["instance"].as_str().unwrap_or_default().to_string();
                    let claimed = answer["secured"]["address"]["allocation_id"]
                        .as_str()
                        .map(String::from);
                    self.completed.entry(instance).or_default().push((
                        answer["result"].as_str().unwrap_or_default().to_string(),
                        claimed,
                    ));
                }
                _ => {}
            }
        }
        for (&i, outcome) in indexes.iter().zip(&outcomes) {
            self.check_delivery(
                &steps[i].event,
                i,
                outcome,
                &before,
                alone,
                faulted,
                (calls_before, calls_after),
                total_after - total_before,
            )?;
        }
        let now = self.read().await;
        self.check(&now)?;
        self.last = now;
        Ok(())
    }

    /// (AssociateAddress, DisassociateAddress and CompleteLifecycleAction calls, all AWS calls)
    /// so far, in one reading.
    fn calls(&self) -> (u64, u64) {
        let calls = self
            .emulator
            .control("GET", "/_ops/calls", None)
            .expect("read call counts")["calls"]
            .clone();
        let n = |service: &str, operation: &str| calls[service][operation].as_u64().unwrap_or(0);
        let mutations = n("ec2", "AssociateAddress")
            + n("ec2", "DisassociateAddress")
            + n("autoscaling", "CompleteLifecycleAction");
        let total = calls
            .as_object()
            .map(|services| {
                services
                    .values()
                    .flat_map(|ops| ops.as_object().cloned().unwrap_or_default())
                    .filter_map(|(_, n)| n.as_u64())
                    .sum()
            })
            .unwrap_or(0);
        (mutations, total)
    }

    async fn step(&self, steps: &[Step<Op>], index: usize, concurrent: bool) -> Outcome {
        let _ = concurrent;
        match &steps[index].event {
            Op::World { .. } => Outcome::Nothing,
            Op::Launch { .. } => match self.launch_of.get(&index).copied().flatten() {
                Some(l) => {
                    let event = self.launches[l].event.clone();
                    Outcome::Delivered(
                        until_settled(ASYNC_ATTEMPTS, || {
                            function_handler(event.clone(), &self.deps)
                        })
                        .await,
                    )
                }
                None => Outcome::Nothing,
            },
            Op::Tick => Outcome::Delivered(
                until_settled(ASYNC_ATTEMPTS, || {
                    function_handler(scheduled(T0 + index as u64 * 300), &self.deps)
                })
                .await,
            ),
            Op::ForgedTick => {
                let mut forged = scheduled(T0 + index as u64 * 300);
                forged["source"] = json!("chat.forged");
                Outcome::Delivered(function_handler(forged, &self.deps).await)
            }
            Op::Doctor => {
                Outcome::Delivered(function_handler(json!({"command": "doctor"}), &self.deps).await)
            }
            Op::Stop { target } => match self.target(*target) {
                Some(instance) => {
                    let _ = self
                        .ec2
                        .client()
                        .stop_instances()
                        .instance_ids(&instance)
                        .send()
                        .await;
                    Outcome::Stopped(Some(instance))
                }
                None => Outcome::Stopped(None),
            },
            Op::Terminate { target } => {
                if let Some(instance) = self.target(*target) {
                    let _ = self
                        .ec2
                        .client()
                        .terminate_instances()
                        .instance_ids(&instance)
                        .send()
                        .await;
                }
                Outcome::Nothing
            }
            Op::HookTimeout { launch } => {
                if self.launches.is_empty() {
                    return Outcome::TimedOut(None);
                }
                let l = &self.launches[launch % self.launches.len()];
                let ended = self
                    .groups
                    .complete_lifecycle_action(&l.group, &l.hook, &l.token, &l.instance, "ABANDON")
                    .await
                    .unwrap_or(false);
                Outcome::TimedOut(ended.then(|| l.instance.clone()))
            }
        }
    }

    /// What one delivery must have done.
    #[allow(clippy::too_many_arguments)]
    fn check_delivery(
        &mut self,
        op: &Op,
        index: usize,
        outcome: &Outcome,
        before: &Seen,
        alone: bool,
        faulted: bool,
        (calls_before, calls_after): (u64, u64),
        calls: u64,
    ) -> Result<(), String> {
        let Outcome::Delivered(result) = outcome else {
            return Ok(());
        };
        self.played.deliveries += 1;
        match op {
            Op::Launch { .. } | Op::Tick => {
                let answer = result.as_ref().map_err(|e| {
                    format!("7 (a genuine event settles): step {index} ended in an error: {e}")
                })?;
                if let Op::Launch { .. } = op {
                    let l = &self.launches[self.launch_of[&index].expect("delivered")];
                    let done_before = before.results.get(&l.instance).cloned().flatten().is_some();
                    if done_before {
                        if answer["status"] != "already_completed" {
                            return Err(format!("6 (a redelivered event for a completed launch changes nothing): step {index} answered {answer}"));
                        }
                        if alone && calls_after != calls_before {
                            return Err(format!("6 (a redelivered event for a completed launch touches no address): step {index} made {} Associate/Disassociate/CompleteLifecycleAction calls", calls_after - calls_before));
                        }
                    }
                    if answer["status"] == "completed" {
                        let outcome = answer["secured"]["outcome"].as_str().unwrap_or_default();
                        if answer["result"] == "CONTINUE"
                            && !matches!(outcome, "associated" | "took_over" | "already_held")
                        {
                            return Err(format!(
                                "1 (never CONTINUE without an address): step {index} answered {answer}"
                            ));
                        }
                    }
                }
            }
            Op::ForgedTick => match result {
                Err(Error::Refused(message)) if message.contains("aws.events") => {
                    if alone && calls != 0 {
                        return Err(format!("7 (a forged schedule event changes nothing): step {index} made {calls} AWS calls"));
                    }
                }
                other => {
                    return Err(format!(
                        "7 (a forged schedule event is refused): step {index} got {other:?}"
                    ))
                }
            },
            Op::Doctor => {
                if let Err(e) = result {
                    if !faulted {
                        return Err(format!("7 (doctor answers): step {index} failed: {e}"));
                    }
                }
                if alone && calls_after != calls_before {
                    return Err(format!(
                        "7 (doctor changes nothing): step {index} made {} mutating calls",
                        calls_after - calls_before
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Read AWS: addresses, instances, groups, lifecycle actions, alerts.
    async fn read(&self) -> Seen {
        let holders = self
            .ec2
            .addresses_tagged("ops:eip-pool", Some(POOL))
            .await
            .expect("read the pool")
            .into_iter()
            .map(|a| (a.allocation_id, a.instance_id))
            .collect();
        let mut states = BTreeMap::new();
        let described = self
            .ec2
            .client()
            .describe_instances()
            .send()
            .await
            .expect("describe instances");
        for reservation in described.reservations() {
            for instance in reservation.instances() {
                states.insert(
                    instance.instance_id().unwrap_or_default().to_string(),
                    instance
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                );
            }
        }
        let mut lifecycle = BTreeMap::new();
        for name in &self.group_names {
            for (id, state) in self.groups.describe(name).await.expect("group").instances {
                lifecycle.insert(id, (name.clone(), state));
            }
        }
        let actions = self
            .emulator
            .control("GET", "/_ops/autoscaling/lifecycle-actions", None)
            .expect("lifecycle actions");
        let results = actions["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["instance_id"].as_str().unwrap().to_string(),
                    a["result"].as_str().map(String::from),
                )
            })
            .collect();
        let published = self
            .emulator
            .control(
                "GET",
                &format!("/_ops/sns/published?topic_arn={TOPIC}"),
                None,
            )
            .expect("published alerts");
        let alerts = published["published"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| {
                let body: Value = serde_json::from_str(p["bodies"]["default"].as_str()?).ok()?;
                let context = &body["metadata"]["additionalContext"];
                let description = body["content"]["description"].as_str().unwrap_or_default();
                let why = description
                    .lines()
                    .find_map(|l| l.strip_prefix("*Why:* "))
                    .unwrap_or_default()
                    .to_string();
                Some(Sent {
                    event_type: body["metadata"]["eventType"].as_str()?.to_string(),
                    instance: context["instance"].as_str().unwrap_or_default().to_string(),
                    taken_from: context["taken_from"].as_str().map(String::from),
                    launch_result: context["launch_result"].as_str().map(String::from),
                    why,
                })
            })
            .collect();
        Seen {
            holders,
            states,
            lifecycle,
            results,
            alerts,
        }
    }

    /// The invariants over what AWS holds now.
    fn check(&mut self, now: &Seen) -> Result<(), String> {
        // Newly known instances (Auto Scaling may start some itself).
        for id in now.states.keys() {
            if !self.known.contains(id) {
                self.known.push(id.clone());
            }
        }
        let taken_from = |instance: &str| {
            now.alerts
                .iter()
                .any(|a| a.taken_from.as_deref() == Some(instance))
        };
        // 1: completions.
        for (instance, result) in &now.results {
            let by_function = self.completed.get(instance).map(Vec::len).unwrap_or(0);
            if by_function > 1 {
                return Err(format!("1 (completed at most once): the function completed the launch of {instance} {by_function} times"));
            }
            if self.timed_out.contains(instance) && by_function > 0 {
                return Err(format!("1 (one result): the function completed the launch of {instance}, whose hook had timed out"));
            }
            if let (Some(result), Some(answers)) = (result, self.completed.get(instance)) {
                if answers.iter().any(|(r, _)| r != result) {
                    return Err(format!("1 (one result): {instance} ended {result} but the function answered {answers:?}"));
                }
            }
        }
        // 2: a CONTINUEd bastion holds its address.
        for (instance, result) in &now.results {
            if result.as_deref() != Some("CONTINUE") || self.timed_out.contains(instance) {
                continue;
            }
            let claimed = self
                .completed
                .get(instance)
                .and_then(|a| a.first())
                .and_then(|(_, c)| c.clone());
            let held = now.holds(instance);
            let state = now
                .states
                .get(instance)
                .map(String::as_str)
                .unwrap_or("unknown");
            match state {
                "pending" | "running" => {
                    if held.is_none() {
                        return Err(format!("2 (a CONTINUEd bastion holds its address): {instance} is {state} and holds no pool address"));
                    }
                    if let (Some(claimed), Some(held)) = (&claimed, held) {
                        if claimed != held {
                            return Err(format!("2 (a CONTINUEd bastion holds the address it was given): {instance} was given {claimed} and holds {held}"));
                        }
                    }
                }
                "stopped" | "stopping" if held.is_none() && !taken_from(instance) => {
                    return Err(format!("2 (an address leaves a CONTINUEd bastion only by an alerted takeover): {instance} is {state}, holds nothing, and no alert names it taken (`taken_from`)"));
                }
                _ => {}
            }
        }
        // 3: addresses move off existing instances only by an alerted takeover, never off live ones.
        for (allocation, holder) in &self.last.holders {
            let Some(previous) = holder else { continue };
            if now.holders.get(allocation) == Some(holder) {
                continue;
            }
            if now.alive(previous) {
                return Err(format!("3 (never taken from a live bastion): {allocation} left {previous}, which is {}", now.states[previous]));
            }
            let state = now
                .states
                .get(previous)
                .map(String::as_str)
                .unwrap_or("unknown");
            if state != "terminated" && !taken_from(previous) {
                return Err(format!("3 (a takeover is alerted): {allocation} left {previous} ({state}) with no eip.taken-over naming it"));
            }
        }
        // 4: nothing held by a terminated instance; a stopped one holds only what it held.
        for (allocation, holder) in &now.holders {
            let Some(holder) = holder else { continue };
            match now.states.get(holder).map(String::as_str) {
                Some("terminated" | "shutting-down") | None => {
                    return Err(format!("4 (no address on a terminated instance): {allocation} is held by {holder}, which is {}", now.states.get(holder).map(String::as_str).unwrap_or("unknown to EC2")));
                }
                Some("stopped" | "stopping") => {
                    let (held, racing) = self.stopped.get(holder).cloned().unwrap_or((None, false));
                    if held.as_deref() != Some(allocation.as_str()) && !racing {
                        return Err(format!("4 (no address associated with a stopped instance): {allocation} is on {holder}, stopped while holding {held:?}"));
                    }
                }
                _ => {}
            }
        }
        // 5: each launch the function completed is alerted exactly once, fitting its result.
        for (instance, result) in &now.results {
            let told: Vec<&Sent> = now
                .alerts
                .iter()
                .filter(|a| a.instance == *instance && a.launch_result.is_some())
                .collect();
            let by_function = result.is_some() && !self.timed_out.contains(instance);
            match (by_function, told.len()) {
                (false, 0) => {}
                (false, n) => {
                    return Err(format!("5 (only completed launches are alerted): the launch of {instance} ({result:?}, timed out: {}) was alerted {n} times", self.timed_out.contains(instance)));
                }
                (true, 1) => {
                    if told[0].launch_result != *result {
                        return Err(format!("5 (the alert tells the result): {instance} ended {result:?}, alerted as {:?}", told[0].launch_result));
                    }
                    let fits = match result.as_deref() {
                        Some("CONTINUE") => ["eip.associated", "eip.taken-over"]
                            .contains(&told[0].event_type.as_str()),
                        _ => ["eip.pool-exhausted", "eip.launch-abandoned"]
                            .contains(&told[0].event_type.as_str()),
                    };
                    if !fits {
                        return Err(format!("5 (the alert fits the result): {instance} ended {result:?} and was alerted {}", told[0].event_type));
                    }
                }
                (true, n) => {
                    return Err(format!("5 (each completed launch alerted exactly once): the launch of {instance} ended {result:?} and was alerted {n} times"));
                }
            }
        }
        // 5: each address the reconcile gave an in-service bastion is alerted exactly once.
        for instance in now.holders.values().flatten() {
            if now.results.contains_key(instance) {
                continue; // a launch's instance: its launch alert says it.
            }
            let repairs = now
                .alerts
                .iter()
                .filter(|a| {
                    a.instance == *instance
                        && a.by_reconcile()
                        && ["eip.drift-repaired", "eip.taken-over"].contains(&a.event_type.as_str())
                })
                .count();
            // Two reconciles at once may both associate it (EC2 accepts re-associating an address
            // with the instance already holding it) and both report it.
            let allowed = if self.concurrent_ticks { 1..=2 } else { 1..=1 };
            if !allowed.contains(&repairs) {
                return Err(format!("5 (each repair alerted exactly once): {instance} holds a pool address the reconcile gave it; repair alerts: {repairs}"));
            }
        }
        Ok(())
    }

    /// The end: every open hook times out, one clean schedule tick, then liveness and safety.
    async fn settle(&mut self) -> Result<(), String> {
        for l in self.launches.clone() {
            if self
                .groups
                .complete_lifecycle_action(&l.group, &l.hook, &l.token, &l.instance, "ABANDON")
                .await
                .unwrap_or(false)
            {
                self.timed_out.insert(l.instance.clone());
            }
        }
        let before = self.read().await;
        self.check(&before)?;
        self.last = before.clone();
        let alerts_before = before.alerts.len();
        let tick = function_handler(scheduled(T0 + 100_000), &self.deps)
            .await
            .map_err(|e| format!("7 (the settling tick settles): {e}"))?;
        self.played.deliveries += 1;
        let now = self.read().await;
        self.check(&now)?;
        let exhausted = now
            .holders
            .values()
            .all(|h| h.as_ref().is_some_and(|h| now.alive(h)));
        for (instance, (_, lifecycle)) in &now.lifecycle {
            if lifecycle != "InService" || !now.alive(instance) || now.holds(instance).is_some() {
                continue;
            }
            let alerted = now.alerts[alerts_before..]
                .iter()
                .any(|a| a.instance == *instance && a.event_type == "eip.pool-exhausted");
            if !(exhausted && alerted) {
                return Err(format!("liveness (every in-service bastion holds a pool address or the exhausted pool is alerted): {instance} holds none; pool {:?}; tick answered {tick}", now.holders));
            }
        }
        Ok(())
    }
}

/// What one step did.
#[derive(Debug)]
enum Outcome {
    Nothing,
    Delivered(Result<Value, Error>),
    Stopped(Option<String>),
    TimedOut(Option<String>),
}
