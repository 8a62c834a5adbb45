//! Model-based sequence test of legacy-health-monitor (DESIGN.md, "Event order"): random sequences
//! of scheduled runs (on time, twice, late with their old `time`, lost, two at once, with a
//! deadline that leaves no room for a check), of the targets' real state changing between runs
//! (up, failing, hanging past the timeout), of the target list changing under the function (an SSM
//! document deleted and put back, an invalid document added and removed) and of chat `status`,
//! with the emulator failing one AWS call of a delivery (SSM, DynamoDB, SNS), checked after every
//! round against the monitor's invariants, then settled by on-time runs and checked for liveness.
//!
//! The function runs in-process (its real handler, real SNS and DynamoDB adapters, one attempt per
//! AWS call so an injected failure is not hidden by the SDK's retries) against real servers on
//! loopback. Alerts are read back from the emulator's SNS outbox.
//!
//! Invariants (safety, after every round):
//! 1. One alert per state change of a target: its `health.down` and `health.recovered` alerts
//!    alternate and the first is a `down` (never a recovery without a prior down alert). The same
//!    alert twice in a row is allowed only when a state write (not the publish) failed in the round
//!    that sent the first copy: SNS has no conditional publish, so after a crash between the alert
//!    and the record of it being sent, the next run sends it again (at least once; twice only
//!    with a fault in between).
//! 2. Flapping is alerted once per episode: a target's `health.flapping` and `health.settled`
//!    alerts alternate and the first is a `flapping` (a `health.down` ends the episode: the target
//!    stops flapping when it goes down), under the same duplicate rule.
//! 3. A certificate's expiry is alerted at most once (the certificate is never renewed here), the
//!    config alerts alternate invalid / valid starting with invalid, under the same duplicate rule;
//!    no alert kind outside the model appears (no reminders are configured, and few enough targets
//!    change at once that nothing is collated); `health.not-checked` only from a run whose deadline
//!    left no room for checks.
//! 4. A late or duplicated run never counts again, nor reverts a newer recorded state: in a round,
//!    a target's failures (or successes) in a row grow by at most the number of the round's ticks
//!    not yet counted for it (a tick is counted for a target once a delivery of it answered
//!    `checked` without naming the target as left to another run, not checked in time or already
//!    counted), and its recorded `since` and `at` never go back.
//! 5. State keys never collide with user target names: every item of the table is `meta#config` or
//!    `target#<name>` of a configured name (one of them is called `meta#config`), and every target
//!    document reads back.
//! 6. A run whose deadline leaves no room for a check checks nothing (and says so); `status`
//!    answers what is stored, and changes nothing and alerts nothing.
//! 7. A mute holds back, never loses: once a chat `mute` of a target was accepted (in an earlier
//!    round), no alert about it but `health.unmuted` is sent until that one; a `health.unmuted`
//!    comes only after a `mute` was sent (twice only under invariant 1's duplicate rule), and the
//!    health it tells carries invariant 1 on (a recovery after it needs it to say DOWN); a
//!    certificate warning it held back counts as alerted.
//!
//! Liveness (after the sequence: every document restored, the invalid one removed, then on-time
//! runs with no faults): each target's recorded health is its real one, nothing is left pending,
//! the last transition alert of each target says its real health (down, or recovered / none when
//! up), no target is left flapping (the window of `web`, 4 runs, is inside the settling runs) or
//! muted (the settling runs last the mute's three minutes longer), the expiring certificate was
//! alerted exactly once, and the config alerts end with "valid".
//!
//! Sequences take 2 to 3 s each on two cores (measured: 300 in 567 to 868 s): the 10,000 of
//! `make soak` take six to eight hours.
//!
//! Concurrent deliveries of a round are invoked together; Lambda's retries of a failed scheduled
//! run come after them, each a minute later on the simulated wall clock (as Lambda waits a minute
//! before retrying), with the same event `time`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use legacy_health_monitor::config::MonitorConfig;
use legacy_health_monitor::handler::{function_handler, function_handler_within, Deps, Invocation};
use legacy_health_monitor::metrics::MemoryMetrics;
use legacy_health_monitor::observe::{state_key, Clients, META_KEY};
use legacy_health_monitor::probe::tls::TlsConfigs;
use ops_core::aws::dynamodb::VersionedDocuments;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::ssm::Parameters;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_e2e::blue_green::{alerts, topic, Published};
use ops_e2e::events::scheduled;
use ops_e2e::health::create_state_table;
use ops_e2e::model::{self, Played, Step, ASYNC_ATTEMPTS};
use ops_e2e::redeliver::until_settled;
use ops_e2e::servers::{Reply, TestCert, TestServer};
use ops_e2e::Emulator;
use proptest::prelude::*;
use serde_json::{json, Value};

const T0: u64 = 1_795_000_000;
const TABLE: &str = "health-state";
const TOPIC: &str = "ops-alerts";
const PATH: &str = "/ops/health/";
const BROKEN: &str = "/ops/health/zz-broken";
/// A run's deadline: far more than its checks need, so only `ShortTick` leaves targets unchecked.
const DEADLINE: Duration = Duration::from_secs(20);
/// A deadline shorter than the margin plus one check's timeout: nothing can be checked.
const SHORT_DEADLINE: Duration = Duration::from_millis(700);
/// How long a chat `mute` holds a target's alerts back.
const MUTE_FOR: &str = "3m";
/// Its length in schedule ticks.
const MUTE_TICKS: u64 = 3;
/// On-time runs after the sequence: enough for any hysteresis here (2) to settle, and more.
const SETTLE_TICKS: u64 = 4;

/// The targets, each in its own SSM document: name, document parameter, hysteresis.
const TARGETS: [(&str, &str); 3] = [
    ("web", "/ops/health/web"),
    // Named like the monitor's bookkeeping item: it must be stored like any other target.
    ("meta#config", "/ops/health/meta-config"),
    // HTTPS with a certificate that expires in 5 days.
    ("intranet", "/ops/health/intranet"),
];

/// What a target really does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Real {
    /// Answers 200 ok.
    Up,
    /// Answers 503.
    Failing,
    /// Answers after the check's timeout.
    Hanging,
}

/// One thing that happens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// The schedule fires (EventBridge `Scheduled Event`, its `time` the step's minute).
    Tick,
    /// The schedule fires, and the invocation's deadline leaves no room for any check.
    ShortTick,
    /// A target's real state changes.
    Set(usize, Real),
    /// A target's SSM document is deleted (the target leaves the list).
    Remove(usize),
    /// A target's SSM document is put back.
    Restore(usize),
    /// An SSM document with an invalid entry appears.
    BreakConfig,
    /// It is deleted.
    FixConfig,
    /// A person asks `status` in chat.
    Status,
    /// A person mutes a target from chat for three minutes.
    Mute(usize),
    /// A person lifts a target's mute from chat.
    Unmute(usize),
}

impl Event {
    fn is_schedule(&self) -> bool {
        matches!(self, Event::Tick | Event::ShortTick)
    }

    fn is_world(&self) -> bool {
        !matches!(
            self,
            Event::Tick | Event::ShortTick | Event::Status | Event::Mute(_) | Event::Unmute(_)
        )
    }
}

fn event() -> impl Strategy<Value = Event> {
    let real = prop_oneof![Just(Real::Up), Just(Real::Failing), Just(Real::Hanging)];
    prop_oneof![
        6 => Just(Event::Tick),
        1 => Just(Event::ShortTick),
        // Only `web` hangs: a hanging check costs its whole timeout.
        4 => (0..TARGETS.len(), real).prop_map(|(i, r)| Event::Set(i, if i == 0 { r } else if r == Real::Hanging { Real::Failing } else { r })),
        1 => (0..TARGETS.len()).prop_map(Event::Remove),
        1 => (0..TARGETS.len()).prop_map(Event::Restore),
        1 => Just(Event::BreakConfig),
        1 => Just(Event::FixConfig),
        1 => Just(Event::Status),
        2 => (0..TARGETS.len()).prop_map(Event::Mute),
        1 => (0..TARGETS.len()).prop_map(Event::Unmute),
    ]
}

/// Changes in the world simply happen, in order: only the function's events are delivered late,
/// twice, never or together, and only they meet faults.
fn sequence() -> impl Strategy<Value = Vec<Step<Event>>> {
    model::steps(event(), 1..12, 12).prop_map(|mut steps| {
        for step in &mut steps {
            if step.event.is_world() {
                step.delivery = model::Delivery::Once;
                step.fault = None;
            }
        }
        steps
    })
}

/// The loopback servers behind the targets, kept across sequences.
struct Servers {
    web: TestServer,
    meta: TestServer,
    intranet: TestServer,
}

impl Servers {
    fn server(&self, i: usize) -> &TestServer {
        [&self.web, &self.meta, &self.intranet][i]
    }

    fn set(&self, i: usize, real: Real) {
        self.server(i).set(match real {
            Real::Up => Reply::healthy(),
            Real::Failing => Reply::error(503, "unavailable"),
            Real::Hanging => Reply::Slow {
                delay: Duration::from_secs(3),
                status: 200,
                body: "ok".into(),
            },
        });
    }

    fn document(&self, i: usize) -> String {
        let target = match i {
            0 => {
                json!({"name": "web", "http": self.web.url("/health"), "down_after": 3, "up_after": 2,
                        "flap_window": 4, "flap_share": 50})
            }
            1 => {
                json!({"name": "meta#config", "http": self.meta.url("/health"), "down_after": 1, "up_after": 1})
            }
            _ => {
                json!({"name": "intranet", "http": self.intranet.url("/health"), "verify_tls": false,
                         "cert_warn_days": 14, "down_after": 2, "up_after": 1})
            }
        };
        json!({"defaults": {"timeout": "1s"}, "targets": [target]}).to_string()
    }
}

/// What the model knows of the world and of what was alerted.
struct Model {
    real: [Real; 3],
    listed: [bool; 3],
    broken: bool,
    /// Alerts read so far.
    seen: usize,
    /// Per target: its transition alerts (`down` true / `recovered` false) with whether a state
    /// write failed in the round that sent it.
    transitions: [Vec<(bool, bool)>; 3],
    /// Per target: its last flapping alert (`flapping` true / `settled` false) with whether a state
    /// write failed in its round; none before any, or after a down alert ended the episode.
    flaps: [Option<(bool, bool)>; 3],
    /// Per target: certificate alerts, same shape.
    certs: [Vec<bool>; 3],
    /// Config alerts: (invalid?, a state write failed in its round).
    config: Vec<(bool, bool)>,
    /// Per target: a chat `mute` of it was accepted in an earlier round, and its end not yet
    /// alerted.
    muted: [bool; 3],
    /// Per target: a chat `mute` of it was delivered (its answer may have been lost to a fault).
    mute_tried: [bool; 3],
    /// Per target: whether a state write failed in the round of its last `health.unmuted` alert.
    last_unmuted_excused: [Option<bool>; 3],
    /// (target, tick): a delivery of the tick ended well having checked and counted the target.
    spent: BTreeSet<(usize, u64)>,
    /// The table after the last round.
    table: BTreeMap<String, (u64, Value)>,
}

/// One delivery's outcome.
struct Delivered {
    step: usize,
    event: Event,
    tick: u64,
    answer: Result<Value, String>,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

async fn deps_for(emulator: &Emulator, topic_arn: &str) -> Deps<SnsAlerts, MemoryMetrics> {
    let sdk = sdk_config(&AwsSettings {
        max_attempts: 1,
        ..emulator.settings()
    })
    .await;
    let pairs = [
        ("ALERT_TOPIC_ARN", topic_arn),
        ("HEALTH_STATE_TABLE", TABLE),
        ("HEALTH_CONFIG_PATH", PATH),
        ("HEALTH_COLLATE_ABOVE", "10"),
    ];
    let config = MonitorConfig::from_env(&Env::from_pairs(
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    ))
    .expect("monitor config");
    Deps {
        clients: Clients {
            parameters: Parameters::new(&sdk),
            ec2: Ec2::new(&sdk),
            states: VersionedDocuments::new(&sdk, TABLE),
        },
        iam: IamSimulator::new(&sdk),
        alerts: SnsAlerts::new(&sdk, topic_arn),
        metrics: MemoryMetrics::default(),
        tls: Arc::new(TlsConfigs::new(&[])),
        config,
    }
}

/// One invocation: a scheduled run at `tick` (short deadline or not) or a `status` command.
async fn invoke(
    deps: &Deps<SnsAlerts, MemoryMetrics>,
    event: &Event,
    tick: u64,
    wall: u64,
) -> Result<Value, ops_core::Error> {
    let invocation = Invocation { now: wall };
    match event {
        Event::Status => function_handler(json!({"command": "status"}), &invocation, deps).await,
        Event::Mute(i) => {
            let args = json!({"target": TARGETS[*i].0, "for": MUTE_FOR, "reason": "model"});
            function_handler(
                json!({"command": "mute", "args": args, "requested_by": "model"}),
                &invocation,
                deps,
            )
            .await
        }
        Event::Unmute(i) => {
            let args = json!({"target": TARGETS[*i].0});
            function_handler(
                json!({"command": "unmute", "args": args, "requested_by": "model"}),
                &invocation,
                deps,
            )
            .await
        }
        Event::ShortTick => {
            let deadline = epoch_ms() + SHORT_DEADLINE.as_millis() as u64;
            function_handler_within(scheduled(tick), &invocation, Some(deadline), deps).await
        }
        _ => {
            let deadline = epoch_ms() + DEADLINE.as_millis() as u64;
            function_handler_within(scheduled(tick), &invocation, Some(deadline), deps).await
        }
    }
}

/// Deliver `events` (step, event, tick) together; then Lambda's retries of the scheduled runs that
/// failed, each a minute later. A chat command is tried once.
async fn deliver(
    deps: &Deps<SnsAlerts, MemoryMetrics>,
    events: &[(usize, Event, u64)],
    wall: &AtomicU64,
) -> Vec<Delivered> {
    // The invocation's clock: a minute on, and never behind the newest schedule time delivered
    // (a schedule fires at its time; only late deliveries carry an older one).
    let newest = events.iter().map(|e| e.2).max().unwrap_or(0);
    let now = wall.fetch_add(60, Ordering::SeqCst) + 60;
    let now = if now < newest {
        wall.fetch_max(newest, Ordering::SeqCst);
        newest
    } else {
        now
    };
    let first: Vec<Result<Value, ops_core::Error>> = match events {
        [a] => vec![invoke(deps, &a.1, a.2, now).await],
        [a, b] => {
            let (x, y) = tokio::join!(invoke(deps, &a.1, a.2, now), invoke(deps, &b.1, b.2, now));
            vec![x, y]
        }
        _ => unreachable!("a round delivers one or two events"),
    };
    let mut delivered = Vec::new();
    for ((step, event, tick), outcome) in events.iter().cloned().zip(first) {
        let outcome = match outcome {
            Err(error) if error.retryable() && event.is_schedule() => {
                until_settled(ASYNC_ATTEMPTS - 1, || {
                    let at = wall.fetch_add(60, Ordering::SeqCst) + 60;
                    let event = event.clone();
                    async move { invoke(deps, &event, tick, at).await }
                })
                .await
            }
            other => other,
        };
        delivered.push(Delivered {
            step,
            event,
            tick,
            answer: outcome.map_err(|e| e.to_string()),
        });
    }
    delivered
}

async fn read_table(client: &aws_sdk_dynamodb::Client) -> BTreeMap<String, (u64, Value)> {
    let mut items = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(TABLE)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the state table");
        for item in page.items() {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(s)) => s.clone(),
                Some(AttributeValue::N(n)) => n.clone(),
                _ => String::new(),
            };
            let document = serde_json::from_str(&text("document")).unwrap_or(Value::Null);
            items.insert(
                text("key"),
                (text("version").parse().unwrap_or(0), document),
            );
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return items,
        }
    }
}

fn number(state: &Value, field: &str) -> u64 {
    state[field].as_u64().unwrap_or(0)
}

/// Everything one sequence needs.
struct Sequence<'a> {
    emulator: &'a Emulator,
    runtime: &'a tokio::runtime::Runtime,
    servers: &'a Servers,
    deps: &'a Deps<SnsAlerts, MemoryMetrics>,
    ssm: aws_sdk_ssm::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    topic: String,
    wall: AtomicU64,
    model: Model,
    played: Played,
}

impl Sequence<'_> {
    fn put_document(&self, name: &str, value: String) {
        self.runtime.block_on(async {
            self.ssm
                .put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .expect("put a targets document");
        });
    }

    fn delete_document(&self, name: &str) {
        self.runtime.block_on(async {
            let _ = self.ssm.delete_parameter().name(name).send().await;
        });
    }

    /// A change in the world.
    fn apply(&mut self, event: &Event) {
        match *event {
            Event::Set(i, real) => {
                self.servers.set(i, real);
                self.model.real[i] = real;
            }
            Event::Remove(i) => {
                self.delete_document(TARGETS[i].1);
                self.model.listed[i] = false;
            }
            Event::Restore(i) => {
                self.put_document(TARGETS[i].1, self.servers.document(i));
                self.model.listed[i] = true;
            }
            Event::BreakConfig => {
                self.put_document(
                    BROKEN,
                    json!({"targets": [{"name": "broken", "tcp": "no-port"}]}).to_string(),
                );
                self.model.broken = true;
            }
            Event::FixConfig => {
                self.delete_document(BROKEN);
                self.model.broken = false;
            }
            Event::Tick | Event::ShortTick | Event::Status | Event::Mute(_) | Event::Unmute(_) => {}
        }
    }

    /// Deliver a round's events with their faults armed; check the invariants after it.
    fn round(
        &mut self,
        label: &str,
        events: &[(usize, Event, u64)],
        faults: &[Option<model::Fault>],
    ) -> Result<(), String> {
        self.emulator.reset_calls();
        let armed = faults
            .iter()
            .fold(false, |armed, f| model::arm(self.emulator, *f) | armed);
        let delivered = self
            .runtime
            .block_on(deliver(self.deps, events, &self.wall));
        let fired_rules = if armed {
            self.emulator.faults_fired()
        } else {
            0
        };
        model::disarm(self.emulator, armed);
        // A failed Publish is counted by the emulator but publishes nothing.
        let publish_calls = self.emulator.calls("sns", "Publish");
        self.played.deliveries += delivered.len() as u64;
        self.played.faults += fired_rules;
        self.check(label, &delivered, fired_rules, publish_calls)
    }

    /// The safety invariants after a round.
    fn check(
        &mut self,
        label: &str,
        delivered: &[Delivered],
        fired: u64,
        publish_calls: u64,
    ) -> Result<(), String> {
        let fail = |what: String| Err(format!("{label}: {what}"));
        let sent = alerts(self.emulator, &self.topic);
        let new: Vec<Published> = sent[self.model.seen..].to_vec();
        self.model.seen = sent.len();
        let failed_publishes = publish_calls.saturating_sub(new.len() as u64);
        // A fault that did not fall on a Publish fell on SSM or DynamoDB (a read or a write).
        let write_may_have_failed = fired > failed_publishes;
        let short = delivered.iter().any(|d| d.event == Event::ShortTick);

        // 1, 2, 3, 7: the alerts.
        for alert in &new {
            let target = TARGETS.iter().position(|(name, _)| *name == alert.resource);
            if let Some(i) = target {
                if self.model.muted[i] && alert.event_type != "health.unmuted" {
                    return fail(format!(
                        "{} is muted (a chat mute was accepted and its end not yet alerted) but {} was sent: {}",
                        alert.resource, alert.event_type, alert.subject
                    ));
                }
            }
            match (alert.event_type.as_str(), target) {
                ("health.unmuted", Some(i)) => {
                    if !self.model.muted[i]
                        && !self.model.mute_tried[i]
                        && self.model.last_unmuted_excused[i] != Some(true)
                    {
                        return fail(format!(
                            "{}: a mute's end was alerted with no mute sent (or twice with no failed state write between): {}",
                            alert.resource, alert.subject
                        ));
                    }
                    self.model.muted[i] = false;
                    self.model.mute_tried[i] = false;
                    self.model.last_unmuted_excused[i] = Some(write_may_have_failed);
                    // The end tells the health as it stands: the transitions go on from it.
                    let down = alert.subject.ends_with("it is DOWN");
                    self.model.transitions[i].push((down, write_may_have_failed));
                    let flapping = alert.subject.ends_with("it is FLAPPING");
                    if flapping || self.model.flaps[i].is_some() {
                        self.model.flaps[i] = Some((flapping, write_may_have_failed));
                    }
                    let description = alert.chat["content"]["description"].to_string();
                    if description.contains("CERTIFICATE ") {
                        self.model.certs[i].push(write_may_have_failed);
                    }
                }
                (kind @ ("health.down" | "health.recovered"), Some(i)) => {
                    let down = kind == "health.down";
                    let list = &mut self.model.transitions[i];
                    match list.last() {
                        None if !down => {
                            return fail(format!(
                                "{} recovered without a prior down alert: {}",
                                alert.resource, alert.subject
                            ))
                        }
                        Some(&(last, excused)) if last == down && !excused => {
                            return fail(format!(
                                "{} alerted `{kind}` twice in a row with no failed state write between: {}",
                                alert.resource, alert.subject
                            ))
                        }
                        _ => {}
                    }
                    list.push((down, write_may_have_failed));
                    if down {
                        self.model.flaps[i] = None;
                    }
                }
                (kind @ ("health.flapping" | "health.settled"), Some(i)) => {
                    let flapping = kind == "health.flapping";
                    match self.model.flaps[i] {
                        Some((last, false)) if last == flapping => {
                            return fail(format!(
                                "{} alerted `{kind}` twice in a row with no failed state write between: {}",
                                alert.resource, alert.subject
                            ))
                        }
                        None if !flapping => {
                            return fail(format!(
                                "{} settled without a flapping alert before it: {}",
                                alert.resource, alert.subject
                            ))
                        }
                        _ => {}
                    }
                    self.model.flaps[i] = Some((flapping, write_may_have_failed));
                }
                ("health.cert-expiring", Some(i)) => {
                    let list = &mut self.model.certs[i];
                    if list.last().is_some_and(|excused| !excused) {
                        return fail(format!(
                            "{}: certificate expiry alerted twice: {}",
                            alert.resource, alert.subject
                        ));
                    }
                    list.push(write_may_have_failed);
                }
                (kind @ ("health.config-invalid" | "health.config-valid"), _) => {
                    let invalid = kind == "health.config-invalid";
                    match self.model.config.last() {
                        None if !invalid => {
                            return fail(format!("config alerted valid before any invalid alert: {}", alert.subject))
                        }
                        Some(&(last, excused)) if last == invalid && !excused => {
                            return fail(format!(
                                "config alert `{kind}` twice in a row with no failed state write between"
                            ))
                        }
                        _ => {}
                    }
                    self.model.config.push((invalid, write_may_have_failed));
                }
                ("health.not-checked", _) if short => {}
                (kind, _) => {
                    return fail(format!(
                        "an alert the model does not expect: {kind} {}: {}",
                        alert.resource, alert.subject
                    ))
                }
            }
        }

        // 6: a run with no room for checks checks nothing.
        for d in delivered {
            if let (Event::ShortTick, Ok(answer)) = (&d.event, &d.answer) {
                if answer["checked"].as_u64() != Some(0) {
                    return fail(format!(
                        "step {} (tick {}): a run with no room for any check checked some: {answer}",
                        d.step, d.tick
                    ));
                }
            }
        }

        // 5: the table's keys.
        let before = std::mem::take(&mut self.model.table);
        let after = self.runtime.block_on(read_table(&self.dynamodb));
        let allowed: BTreeSet<String> = TARGETS
            .iter()
            .map(|(name, _)| state_key(name))
            .chain([META_KEY.to_string()])
            .collect();
        for (key, (_, document)) in &after {
            if !allowed.contains(key) {
                return fail(format!(
                    "an item under a key no target or bookkeeping owns: `{key}`"
                ));
            }
            if key != META_KEY && document.get("health").is_none() {
                return fail(format!("`{key}` is not a target state: {document}"));
            }
        }

        // 4: no double counting, nothing moves back.
        for (i, (name, _)) in TARGETS.iter().enumerate() {
            let fresh: BTreeSet<u64> = delivered
                .iter()
                .filter(|d| d.event.is_schedule() && !self.model.spent.contains(&(i, d.tick)))
                .map(|d| d.tick)
                .collect();
            let key = state_key(name);
            let (Some((_, old)), Some((_, new))) = (before.get(&key), after.get(&key)) else {
                continue;
            };
            for counter in ["failures", "successes"] {
                let (b, a) = (number(old, counter), number(new, counter));
                if a > b && a - b > fresh.len() as u64 {
                    return fail(format!(
                        "{name}: {counter} in a row went from {b} to {a} in a round with {} tick(s) never delivered well before ({fresh:?}): a duplicate or late run counted again\nbefore: {old}\nafter: {new}",
                        fresh.len()
                    ));
                }
            }
            for field in ["since", "at"] {
                if number(new, field) < number(old, field) {
                    return fail(format!(
                        "{name}: recorded `{field}` went back from {} to {}: a late run reverted a newer state\nbefore: {old}\nafter: {new}",
                        number(old, field),
                        number(new, field)
                    ));
                }
            }
        }

        // 6: status answers what is stored and changes nothing.
        if let [only] = delivered {
            if only.event == Event::Status {
                if !new.is_empty() {
                    return fail("status sent an alert".into());
                }
                let versions = |t: &BTreeMap<String, (u64, Value)>| {
                    t.iter()
                        .map(|(k, (v, _))| (k.clone(), *v))
                        .collect::<Vec<_>>()
                };
                if fired == 0 && versions(&before) != versions(&after) {
                    return fail("status wrote to the state table".into());
                }
                if let Ok(answer) = &only.answer {
                    for entry in answer["targets"].as_array().cloned().unwrap_or_default() {
                        let name = entry["target"].as_str().unwrap_or_default();
                        let told = entry["health"].as_str().unwrap_or_default();
                        let stored = after
                            .get(&state_key(name))
                            .map(|(_, s)| s["health"].as_str().unwrap_or_default().to_string())
                            .unwrap_or_else(|| "never checked".into());
                        if told != stored {
                            return fail(format!(
                                "status says {name} is {told}, the table {stored}"
                            ));
                        }
                    }
                }
            }
        }

        for d in delivered {
            let Ok(answer) = &d.answer else { continue };
            if d.event != Event::Tick || answer["status"] != "checked" {
                continue;
            }
            for (i, (name, _)) in TARGETS.iter().enumerate() {
                let named = |field: &str| {
                    answer[field]
                        .as_array()
                        .is_some_and(|names| names.iter().any(|n| n == name))
                };
                let skipped = [
                    "left_to_another_run",
                    "not_checked_in_time",
                    "already_counted",
                ]
                .iter()
                .any(|field| named(field));
                if self.model.listed[i] && !skipped {
                    self.model.spent.insert((i, d.tick));
                }
            }
        }
        // 7: a mute accepted this round holds alerts back from the next round on.
        for d in delivered {
            match (&d.event, &d.answer) {
                (Event::Mute(i), Ok(answer)) if answer["status"] == "muted" => {
                    self.model.muted[*i] = true;
                    self.model.mute_tried[*i] = true;
                }
                (Event::Mute(i), _) => self.model.mute_tried[*i] = true,
                _ => {}
            }
        }
        self.model.table = after;
        Ok(())
    }

    /// Liveness: after settling, what is recorded and alerted is the truth.
    fn settled(&self) -> Result<(), String> {
        let fail = |what: String| Err(format!("after settling: {what}"));
        for (i, (name, _)) in TARGETS.iter().enumerate() {
            let Some((_, state)) = self.model.table.get(&state_key(name)) else {
                return fail(format!("{name} has no recorded state"));
            };
            let real_down = self.model.real[i] != Real::Up;
            let health = state["health"].as_str().unwrap_or_default();
            let want = if real_down { "down" } else { "up" };
            if health != want {
                return fail(format!(
                    "{name} is really {:?} but recorded {health}: {state}",
                    self.model.real[i]
                ));
            }
            if state["pending"].as_array().is_some_and(|p| !p.is_empty()) {
                return fail(format!("{name} still has alerts pending: {state}"));
            }
            if self.model.muted[i] || state.get("mute").is_some_and(|m| !m.is_null()) {
                return fail(format!(
                    "{name} is still muted after settling runs: {state}"
                ));
            }
            if let Some((true, _)) = self.model.flaps[i] {
                return fail(format!(
                    "{name} is still flapping after settling runs: {state}"
                ));
            }
            let last = self.model.transitions[i].last().map(|(down, _)| *down);
            if real_down && last != Some(true) {
                return fail(format!(
                    "{name} is down but its last transition alert is {last:?} (Some(true) = down)"
                ));
            }
            if !real_down && last == Some(true) {
                return fail(format!(
                    "{name} is up again but its recovery was never alerted"
                ));
            }
        }
        // Copies after the first were checked to be excused duplicates round by round.
        if self.model.certs[2].is_empty() {
            return fail("the expiring certificate was never alerted".into());
        }
        if let Some((_, meta)) = self.model.table.get(META_KEY) {
            if meta["config_pending"].as_bool() == Some(true) {
                return fail(format!("a config alert is still pending: {meta}"));
            }
        }
        if self
            .model
            .config
            .last()
            .is_some_and(|(invalid, _)| *invalid)
        {
            return fail("the config is valid again but the last config alert says invalid".into());
        }
        Ok(())
    }
}

fn play(
    emulator: &Emulator,
    runtime: &tokio::runtime::Runtime,
    servers: &Servers,
    deps: &Deps<SnsAlerts, MemoryMetrics>,
    steps: &[Step<Event>],
) -> Result<Played, String> {
    let sdk = runtime.block_on(emulator.sdk_config());
    let topic_arn = runtime.block_on(async {
        create_state_table(emulator, TABLE).await;
        topic(emulator, TOPIC).await
    });
    assert_eq!(
        topic_arn, deps.config.common.alert_topic_arn,
        "the topic is the one the monitor publishes to"
    );
    let mut sequence = Sequence {
        emulator,
        runtime,
        servers,
        deps,
        ssm: aws_sdk_ssm::Client::new(&sdk),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        topic: topic_arn,
        wall: AtomicU64::new(T0),
        model: Model {
            real: [Real::Up; 3],
            listed: [true; 3],
            broken: false,
            seen: 0,
            transitions: Default::default(),
            flaps: Default::default(),
            certs: Default::default(),
            config: Vec::new(),
            muted: [false; 3],
            mute_tried: [false; 3],
            last_unmuted_excused: [None; 3],
            spent: BTreeSet::new(),
            table: BTreeMap::new(),
        },
        played: Played::default(),
    };
    for (i, (_, parameter)) in TARGETS.iter().enumerate() {
        servers.set(i, Real::Up);
        sequence.put_document(parameter, servers.document(i));
    }
    let tick_of = |index: usize| T0 + 60 * (index as u64 + 1);
    for (r, round) in model::schedule(steps).iter().enumerate() {
        let mut events = Vec::new();
        let mut faults = Vec::new();
        for &index in &round.steps {
            let step = &steps[index];
            if step.event.is_world() {
                sequence.apply(&step.event);
            } else {
                events.push((index, step.event.clone(), tick_of(index)));
                faults.push(step.fault);
            }
        }
        if events.is_empty() {
            continue;
        }
        sequence.round(
            &format!("round {r} (steps {:?})", round.steps),
            &events,
            &faults,
        )?;
    }
    // Settle: every document back, the invalid one gone, on-time runs with no faults.
    for i in 0..TARGETS.len() {
        if !sequence.model.listed[i] {
            sequence.apply(&Event::Restore(i));
        }
    }
    if sequence.model.broken {
        sequence.apply(&Event::FixConfig);
    }
    // From the invocation clock on (retries move it ahead of the schedule), long enough for a
    // mute sent last to end and for the hysteresis to settle after it.
    let settle_from = tick_of(steps.len()).max(sequence.wall.load(Ordering::SeqCst));
    for k in 0..SETTLE_TICKS + MUTE_TICKS {
        let tick = settle_from + 60 * k;
        sequence.round(
            &format!("settling run {k}"),
            &[(usize::MAX, Event::Tick, tick)],
            &[None],
        )?;
    }
    sequence.settled()?;
    Ok(sequence.played)
}

#[test]
fn random_event_sequences_keep_the_legacy_health_monitor_invariants() {
    let emulator = Emulator::start();
    let runtime = model::runtime();
    let cert = TestCert::self_signed(5);
    let servers = runtime.block_on(async {
        Servers {
            web: TestServer::http(Reply::healthy()).await,
            meta: TestServer::http(Reply::healthy()).await,
            intranet: TestServer::https(Reply::healthy(), &cert).await,
        }
    });
    let topic_arn = format!(
        "arn:aws:sns:us-east-1:{}:{TOPIC}",
        ops_e2e::fixtures::ACCOUNT
    );
    let deps = runtime.block_on(deps_for(&emulator, &topic_arn));
    model::run(
        "legacy-health-monitor",
        &emulator,
        sequence(),
        |emulator, steps| play(emulator, &runtime, &servers, &deps, steps),
    );
}
