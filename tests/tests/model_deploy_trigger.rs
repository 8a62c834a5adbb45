//! Model-based event-sequence test of deploy-trigger (DESIGN.md, "Event order"; the function's
//! invariants I1 to I4 are in `functions/deploy-trigger/src/decide.rs`): random sequences of ECR
//! pushes of `web:release-1..N` to the opted-in service `prod/web`, a forged push of a digest ECR
//! does not have, ECS finishing the current rollout (COMPLETED, FAILED, FAILED with the circuit
//! breaker's rollback: a change in the world whose `ECS Deployment State Change` event is then
//! delivered), the 5-minute reconcile (`Scheduled Event` from `aws.events`), time passing across
//! the 120 s settlement lease, and chat `rollback`, `deploy` and `status` (tried once). Events are
//! delivered once, twice, late, never, or two at once, with the emulator failing one AWS call of a
//! delivery; asynchronous events are retried as Lambda does ([`ASYNC_ATTEMPTS`]). The handler runs
//! in-process with the real SNS publisher and one attempt per AWS call; alerts are read back from
//! the emulator's SNS outbox.
//!
//! Checked after every delivery round (safety):
//! - D1 (I1) never backwards by itself: in a round where no chat `deploy`/`rollback` was delivered
//!   the service's release does not go down, nor below the newest release deploy-trigger started a
//!   deployment of by itself since a person (or ECS's circuit breaker) last moved the service, and
//!   whatever it changes to was pushed to ECR. One exception, counted and printed rather than
//!   failed: two invocations at once that both start a deployment (seen with two pushes) race on
//!   UpdateService, last writer wins, and the older release can end up
//!   running. ECS has no conditional update; the template's `ReservedConcurrentExecutions: 1` keeps
//!   deploy-trigger's invocations from overlapping in production, so the floor is only raised from
//!   what actually runs after such a round.
//! - D2 (I3) a forged push changes nothing: a round delivering only forged pushes (and `status`)
//!   leaves the service's tags and revision as they were.
//! - D3 (I2) outcomes alerted truly and never twice: a `deployment.succeeded` alert names a
//!   deployment ECS finished COMPLETED, a `deployment.failed` one a deployment ECS finished FAILED;
//!   no deployment has two outcome alerts unless a fault fired in the round that published the
//!   first (the documented limit: a crash between the alert and its record repeats the alert once
//!   after the lease).
//! - D4 status never says verified for something not verified: a `status` answering `verified`
//!   names a deployment ECS finished, whose outcome was alerted as that outcome.
//!
//! After settling (liveness, I2): two reconcile ticks well after the lease, nothing failing; then
//! every deployment deploy-trigger started that ECS finished has been alerted (as its outcome, or as
//! unverified where ECS stopped listing it before any delivery read it), and D3 still holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use deploy_trigger::config::DeployConfig;
use deploy_trigger::handler::{function_handler, Deps, Invocation};
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::{EcsServices, ServiceState};
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sdk_config;
use ops_core::aws::sns::SnsAlerts;
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_core::Error;
use ops_e2e::events::scheduled;
use ops_e2e::fixtures::{self, ACCOUNT, REGISTRY};
use ops_e2e::model::{self, arm, schedule, steps, Delivery, Played, Step, ASYNC_ATTEMPTS};
use ops_e2e::redeliver::until_settled;
use ops_e2e::Emulator;
use proptest::prelude::*;
use serde_json::{json, Value};

const T0: u64 = 1_795_000_000;
/// A fault falls on one of a delivery's first this many AWS calls.
const CALLS: u8 = 16;

/// Figures over a run: deployments deploy-trigger started that ECS finished, how many of those were
/// alerted as their outcome or as unverified, outcome alerts repeated after a fault, and `status`
/// answers that said verified.
static FINISHED_OURS: AtomicU64 = AtomicU64::new(0);
static ALERTED_OUTCOME: AtomicU64 = AtomicU64::new(0);
static ALERTED_UNVERIFIED: AtomicU64 = AtomicU64::new(0);
static REPEATED: AtomicU64 = AtomicU64::new(0);
static STATUS_VERIFIED: AtomicU64 = AtomicU64::new(0);
/// Concurrent rounds in which two deployments were started and the older one ended up running.
static OVERLAP_OLDER_WON: AtomicU64 = AtomicU64::new(0);

/// What happens at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// The next release is pushed to ECR; ECR's push event is delivered.
    Push,
    /// A push event for a digest ECR does not have.
    Forged,
    /// ECS finishes the rollout in progress (if any); its state-change event is delivered.
    Finish { completed: bool, rollback: bool },
    /// The 5-minute reconcile.
    Tick,
    /// Time passes (seconds).
    Wait(u64),
    /// Chat `rollback`.
    Rollback,
    /// Chat `deploy` of `release-n` (if pushed; else of a tag ECR lacks).
    Deploy(u8),
    /// Chat `status`.
    Status,
}

impl Event {
    fn is_world_only(self) -> bool {
        matches!(self, Event::Wait(_))
    }
    fn is_chat(self) -> bool {
        matches!(self, Event::Rollback | Event::Deploy(_) | Event::Status)
    }
    fn moves_by_person(self) -> bool {
        matches!(self, Event::Rollback | Event::Deploy(_))
    }
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => Just(Event::Push),
        1 => Just(Event::Forged),
        3 => (any::<bool>(), any::<bool>())
            .prop_map(|(completed, rollback)| Event::Finish { completed, rollback }),
        2 => Just(Event::Tick),
        2 => prop_oneof![Just(30u64), Just(150u64)].prop_map(Event::Wait),
        1 => Just(Event::Rollback),
        1 => (1u8..=3).prop_map(Event::Deploy),
        1 => Just(Event::Status),
    ]
}

fn sequence() -> impl Strategy<Value = Vec<Step<Event>>> {
    steps(event(), 1..9, CALLS)
}

struct World<'a> {
    emulator: &'a Emulator,
    deps: Deps<SnsAlerts>,
    reader: EcsServices,
    topic: String,
}

impl<'a> World<'a> {
    async fn new(emulator: &'a Emulator) -> World<'a> {
        let sdk = emulator.sdk_config().await;
        let topic = aws_sdk_sns::Client::new(&sdk)
            .create_topic()
            .name("ops-alerts")
            .send()
            .await
            .expect("topic")
            .topic_arn
            .expect("topic arn");
        let once = sdk_config(&ops_core::aws::AwsSettings {
            max_attempts: 1,
            ..emulator.settings()
        })
        .await;
        let env = Env::from_pairs([
            ("ALERT_TOPIC_ARN", topic.clone()),
            ("ECS_CLUSTERS", "prod".to_string()),
        ]);
        let deps = Deps {
            ecs: EcsServices::new(&once)
                .reading_service_deployments_of(deploy_trigger::contract::REPOSITORY),
            iam: IamSimulator::new(&once),
            ecr: EcrImages::new(&once),
            alerts: SnsAlerts::new(&once, &topic),
            config: DeployConfig::from_env(&env).expect("config"),
        };
        let reader = EcsServices::new(&sdk);
        let ecs = reader.client().clone();
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .expect("cluster");
        EcrImages::new(&sdk)
            .client()
            .create_repository()
            .repository_name("web")
            .send()
            .await
            .expect("repository");
        let world = World {
            emulator,
            deps,
            reader,
            topic,
        };
        world.push("release-0");
        let definition = fixtures::register(
            &ecs,
            "web",
            &[("app", format!("{REGISTRY}/web:release-0").as_str())],
        )
        .await;
        let tags = [
            ("ops:deploy-repository", "web"),
            ("ops:deploy-tag-pattern", "release-+"),
        ];
        fixtures::service(&ecs, "prod", "web", &definition, &tags).await;
        world
    }

    fn push(&self, tag: &str) -> Value {
        self.emulator
            .control(
                "POST",
                "/_ops/ecr/push",
                Some(json!({"repository": "web", "tag": tag})),
            )
            .expect("push")["event"]
            .clone()
    }

    async fn service(&self) -> Result<ServiceState, String> {
        self.reader
            .describe("prod", "web")
            .await
            .map_err(|e| format!("describe: {e}"))
    }

    /// The release number the service's revision runs.
    async fn release(&self, service: &ServiceState) -> Result<i64, String> {
        self.release_of(&service.task_definition).await
    }

    /// The release number a revision runs.
    async fn release_of(&self, task_definition: &str) -> Result<i64, String> {
        let revision = self
            .reader
            .task_definition(task_definition)
            .await
            .map_err(|e| format!("task definition: {e}"))?;
        let image = revision.images().into_values().next().unwrap_or_default();
        let tail = image.split("release-").nth(1).unwrap_or("");
        let digits: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits
            .parse()
            .map_err(|_| format!("the service runs {image}, not a release"))
    }

    async fn handle(&self, payload: Value, now: u64) -> Result<Value, Error> {
        let invocation = Invocation {
            caller: Caller {
                account_id: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
            now,
        };
        function_handler(payload, &invocation, &self.deps).await
    }

    async fn deliver(&self, event: Event, payload: Value, now: u64) -> Result<Value, Error> {
        if event.is_chat() {
            self.handle(payload, now).await
        } else {
            until_settled(ASYNC_ATTEMPTS, || self.handle(payload.clone(), now)).await
        }
    }

    /// Outcome alerts so far: (event type, deployment id), oldest first.
    fn outcome_alerts(&self) -> Vec<(String, String)> {
        let published = self
            .emulator
            .control(
                "GET",
                &format!("/_ops/sns/published?topic_arn={}", self.topic),
                None,
            )
            .expect("read the SNS outbox");
        published["published"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let kind = p["attributes"]["event_type"].as_str()?.to_string();
                if !matches!(
                    kind.as_str(),
                    "deployment.succeeded" | "deployment.failed" | "deployment.unverified"
                ) {
                    return None;
                }
                let chat: Value =
                    serde_json::from_str(p["bodies"]["default"].as_str().unwrap_or("null"))
                        .unwrap_or(Value::Null);
                let id = chat["metadata"]["additionalContext"]["deployment_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                Some((kind, id))
            })
            .collect()
    }
}

fn chat(command: &str, args: Value) -> Value {
    json!({"command": command, "args": args, "requested_by": "alice"})
}

/// What the model knows.
#[derive(Default)]
struct Model {
    /// Deployments deploy-trigger started (appeared during a delivery round).
    ours: BTreeSet<String>,
    /// Every deployment id seen.
    seen: BTreeSet<String>,
    /// How ECS finished a deployment: true COMPLETED, false FAILED.
    finished: BTreeMap<String, bool>,
    /// Releases pushed to ECR.
    pushed: BTreeSet<i64>,
    /// Per deployment: outcome alerts counted so far, and whether a fault fired in the round that
    /// published the first.
    alerted: BTreeMap<String, (usize, bool)>,
}

impl Model {
    /// Remember the service's deployments; the new ones, with their revisions, are returned (and
    /// are deploy-trigger's when `ours`).
    fn note_deployments(&mut self, service: &ServiceState, ours: bool) -> Vec<String> {
        let mut new = Vec::new();
        for d in &service.deployments {
            if self.seen.insert(d.id.clone()) {
                new.push(d.task_definition.clone());
                if ours {
                    self.ours.insert(d.id.clone());
                }
            }
        }
        new
    }

    /// D3: every outcome alert is true, and none is repeated without a fault.
    fn check_alerts(&mut self, alerts: &[(String, String)], fault: bool) -> Result<(), String> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (kind, id) in alerts {
            *counts.entry(id.clone()).or_default() += 1;
            let finished = self.finished.get(id).copied();
            match kind.as_str() {
                "deployment.succeeded" if finished != Some(true) => {
                    return Err(format!(
                        "invariant D3 broke: deployment {id} alerted as succeeded, ECS finished it as {finished:?}"
                    ))
                }
                "deployment.failed" if finished != Some(false) => {
                    return Err(format!(
                        "invariant D3 broke: deployment {id} alerted as failed, ECS finished it as {finished:?}"
                    ))
                }
                _ => {}
            }
        }
        for (id, count) in counts {
            let entry = self.alerted.entry(id.clone()).or_insert((0, fault));
            if entry.0 == 0 {
                entry.1 = fault;
            }
            entry.0 = count;
            if count > 2 || (count == 2 && !entry.1) {
                return Err(format!(
                    "invariant D3 broke: deployment {id} has {count} outcome alerts (fault in the first's round: {})",
                    entry.1
                ));
            }
        }
        Ok(())
    }
}

/// Play one sequence on the reset emulator.
async fn play(emulator: &Emulator, sequence: &[Step<Event>]) -> Result<Played, String> {
    let world = World::new(emulator).await;
    let normalised: Vec<Step<Event>> = sequence
        .iter()
        .map(|s| Step {
            delivery: if s.event.is_world_only() {
                Delivery::Once
            } else {
                s.delivery
            },
            ..s.clone()
        })
        .collect();
    let rounds = schedule(&normalised);
    let mut model = Model {
        pushed: BTreeSet::from([0]),
        ..Model::default()
    };
    model.note_deployments(&world.service().await?, false);
    let mut played = Played::default();
    let mut clock = T0;
    let mut payloads: Vec<Option<Value>> = vec![None; sequence.len()];
    let mut releases = 0i64;
    let mut reached = 0usize;
    // The newest release deploy-trigger deployed by itself since a person (or ECS) last moved the
    // service: it must never run anything older.
    let mut floor = 0i64;

    // The world part of step `i`: push to ECR, finish the rollout, time passing; the payload it
    // delivers.
    macro_rules! happen {
        ($i:expr) => {{
            let i = $i;
            payloads[i] = match normalised[i].event {
                Event::Push => {
                    releases += 1;
                    model.pushed.insert(releases);
                    Some(world.push(&format!("release-{releases}")))
                }
                Event::Forged => {
                    let mut forged = world.push("forge-base");
                    forged["detail"]["image-digest"] = json!(format!("sha256:{}", "7".repeat(64)));
                    forged["detail"]["image-tag"] = json!("release-77");
                    Some(forged)
                }
                Event::Finish {
                    completed,
                    rollback,
                } => {
                    let service = world.service().await?;
                    let primary = service.primary().cloned();
                    match primary {
                        Some(p) if p.rollout_state.as_deref() == Some("IN_PROGRESS") => {
                            let body = json!({"cluster": "prod", "service": "web",
                                "state": if completed { "COMPLETED" } else { "FAILED" },
                                "rollback": rollback && !completed});
                            match emulator.control("POST", "/_ops/ecs/finish-deployment", Some(body)) {
                                Ok(answer) => {
                                    let id = answer["deploymentId"].as_str().unwrap_or_default();
                                    model.finished.insert(id.to_string(), completed);
                                    let now = world.service().await?;
                                    model.note_deployments(&now, false);
                                    if answer.get("rollbackDeploymentId").is_some() {
                                        // ECS's own rollback: what deploy-trigger deployed before
                                        // no longer binds it.
                                        floor = world.release(&now).await?;
                                    }
                                    Some(answer["event"].clone())
                                }
                                Err(_) => None,
                            }
                        }
                        _ => None,
                    }
                }
                Event::Tick => Some(scheduled(clock)),
                Event::Wait(seconds) => {
                    clock += seconds;
                    None
                }
                Event::Rollback => Some(chat("rollback", json!({"service": "prod/web"}))),
                Event::Deploy(n) => Some(chat(
                    "deploy",
                    json!({"service": "prod/web", "tag": format!("release-{n}")}),
                )),
                Event::Status => Some(chat("status", json!({"service": "prod/web"}))),
            };
        }};
    }

    for (r, round) in rounds.iter().enumerate() {
        clock += 1;
        let furthest = round.steps.iter().copied().max().unwrap_or(0);
        while reached <= furthest {
            happen!(reached);
            reached += 1;
        }
        let deliveries: Vec<usize> = round
            .steps
            .iter()
            .copied()
            .filter(|&i| payloads[i].is_some())
            .collect();
        if deliveries.is_empty() {
            continue;
        }
        let before = world.service().await?;
        let release_before = world.release(&before).await?;
        let mut armed = false;
        for &i in &deliveries {
            armed |= arm(emulator, normalised[i].fault);
        }
        let go = |i: usize| {
            world.deliver(
                normalised[i].event,
                payloads[i].clone().expect("a payload"),
                clock,
            )
        };
        let answers: Vec<(usize, Result<Value, Error>)> = match deliveries.as_slice() {
            [one] => vec![(*one, go(*one).await)],
            [a, b] => {
                let (x, y) = tokio::join!(go(*a), go(*b));
                vec![(*a, x), (*b, y)]
            }
            more => unreachable!("at most two deliveries at once: {more:?}"),
        };
        let fired = model::disarm(emulator, armed);
        played.deliveries += answers.len() as u64;
        played.faults += fired;
        let what: Vec<String> = answers
            .iter()
            .map(|(i, a)| {
                format!(
                    "step {i} {:?} -> {}",
                    normalised[*i].event,
                    match a {
                        Ok(v) => v.get("status").cloned().unwrap_or(Value::Null).to_string(),
                        Err(e) => format!("error: {e}"),
                    }
                )
            })
            .collect();
        let context = format!(" after round {r} ({})", what.join("; "));
        let after = world.service().await?;
        let started = model.note_deployments(&after, true);
        let release_after = world.release(&after).await?;
        let by_person = deliveries
            .iter()
            .any(|&i| normalised[i].event.moves_by_person());
        if by_person {
            floor = release_after;
        } else {
            let mut newest_started = floor;
            for revision in started {
                newest_started = newest_started.max(world.release_of(&revision).await?);
            }
            if deliveries.len() > 1 && newest_started > release_after {
                // Two invocations at once, both starting a deployment: ECS's UpdateService is last
                // writer wins. The template's reserved concurrency of 1 keeps deploy-trigger's
                // invocations from overlapping; counted, not failed (the known limit).
                OVERLAP_OLDER_WON.fetch_add(1, Ordering::Relaxed);
                newest_started = release_after.max(floor);
            }
            floor = newest_started;
            if release_after < floor {
                return Err(format!(
                    "invariant D1 broke{context}: the service runs release-{release_after}, deploy-trigger deployed release-{floor} by itself"
                ));
            }
        }
        // D1
        if !by_person && release_after < release_before {
            return Err(format!(
                "invariant D1 broke{context}: release-{release_before} -> release-{release_after} with no person asking"
            ));
        }
        if release_after != release_before && !model.pushed.contains(&release_after) {
            return Err(format!(
                "invariant D1 broke{context}: the service runs release-{release_after}, never pushed"
            ));
        }
        // D2
        if deliveries
            .iter()
            .all(|&i| matches!(normalised[i].event, Event::Forged | Event::Status))
            && (before.tags != after.tags || before.task_definition != after.task_definition)
        {
            return Err(format!(
                "invariant D2 broke{context}: a forged push changed the service: {:?} -> {:?}",
                before.tags, after.tags
            ));
        }
        // D3
        let alerts = world.outcome_alerts();
        model
            .check_alerts(&alerts, fired > 0)
            .map_err(|e| format!("{e}{context}"))?;
        // D4
        for (i, answer) in &answers {
            if normalised[*i].event != Event::Status {
                continue;
            }
            let Ok(answer) = answer else { continue };
            let verification = &answer["verification"];
            if verification["state"] != json!("verified") {
                continue;
            }
            let id = verification["deployment_id"].as_str().unwrap_or_default();
            let expected = match model.finished.get(id) {
                Some(true) => "deployment.succeeded",
                Some(false) => "deployment.failed",
                None => {
                    return Err(format!(
                        "invariant D4 broke{context}: status says {id} verified, ECS never finished it: {verification}"
                    ))
                }
            };
            STATUS_VERIFIED.fetch_add(1, Ordering::Relaxed);
            if !alerts.iter().any(|(k, d)| k == expected && d == id) {
                return Err(format!(
                    "invariant D4 broke{context}: status says {id} verified, no {expected} alert: {verification}"
                ));
            }
        }
    }
    while reached < normalised.len() {
        happen!(reached);
        reached += 1;
    }
    // Settle: two reconcile ticks well after the lease, nothing failing.
    for t in 0..2 {
        clock += 300;
        if let Err(error) = world.deliver(Event::Tick, scheduled(clock), clock).await {
            return Err(format!("liveness broke: settling tick {t} failed: {error}"));
        }
        let alerts = world.outcome_alerts();
        model
            .check_alerts(&alerts, false)
            .map_err(|e| format!("{e} (settling tick {t})"))?;
    }
    let end = world.release(&world.service().await?).await?;
    if end < floor {
        return Err(format!(
            "invariant D1 broke after settling: the service runs release-{end}, deploy-trigger deployed release-{floor} by itself"
        ));
    }
    let alerts = world.outcome_alerts();
    for (id, completed) in &model.finished {
        if !model.ours.contains(id) {
            continue;
        }
        let expected = if *completed {
            "deployment.succeeded"
        } else {
            "deployment.failed"
        };
        FINISHED_OURS.fetch_add(1, Ordering::Relaxed);
        if alerts.iter().any(|(k, d)| d == id && k == expected) {
            ALERTED_OUTCOME.fetch_add(1, Ordering::Relaxed);
        } else if alerts
            .iter()
            .any(|(k, d)| d == id && k == "deployment.unverified")
        {
            ALERTED_UNVERIFIED.fetch_add(1, Ordering::Relaxed);
        } else {
            return Err(format!(
                "liveness broke (I2): deployment {id} finished {} by ECS was never alerted; alerts: {alerts:?}",
                if *completed { "COMPLETED" } else { "FAILED" }
            ));
        }
    }
    REPEATED.fetch_add(
        model.alerted.values().filter(|(n, _)| *n > 1).count() as u64,
        Ordering::Relaxed,
    );
    Ok(played)
}

#[test]
fn random_event_sequences_keep_the_deploy_trigger_invariants() {
    let emulator = Emulator::start();
    let runtime = model::runtime();
    model::run(
        "deploy-trigger",
        &emulator,
        sequence(),
        |emulator, sequence| runtime.block_on(play(emulator, sequence)),
    );
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "model: deploy-trigger: {} deployments it started finished by ECS: {} alerted as their outcome, {} as unverified; {} outcome alerts repeated after a fault; {} status answers said verified; {} overlapping rounds where the older of two started deployments won",
        n(&FINISHED_OURS),
        n(&ALERTED_OUTCOME),
        n(&ALERTED_UNVERIFIED),
        n(&REPEATED),
        n(&STATUS_VERIFIED),
        n(&OVERLAP_OLDER_WON)
    );
}
