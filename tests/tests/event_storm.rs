//! An event storm through the real binaries: over 500 events (ECR pushes, CPU alarm state changes
//! and schedule ticks, bastion launches) with a tenth delivered twice, sent from many threads at
//! once, against one emulator. Each intended action must happen exactly once: one revision and one
//! deployment per push, one scaling step per alarm state change and per tick past the cooldown,
//! one address and one CONTINUE per launch. Throughput and the slowest event are printed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_e2e::events::{alarm_state_change, scheduled};
use ops_e2e::fixtures::{self, REGISTRY};
use ops_e2e::lambda::built_binary;
use ops_e2e::{Emulator, LocalLambda};
use serde_json::{json, Value};

const T0: u64 = 1_795_000_000;
const REPOSITORIES: usize = 30;
const PUSHES_EACH: usize = 12;
const GROUPS: usize = 10;
/// Schedule ticks while every alarm stays in ALARM, 400 s apart (past the 300 s cooldown).
const TICKS: usize = 10;
/// The first tick's time ahead of the clock read before the storm. The state changes scale at the
/// real time they are handled (they are late), so the first tick must be past their cooldown
/// however slowly a loaded machine handles them: this leaves them 1,200 - 300 s.
const FIRST_TICK_AHEAD: u64 = 1_200;
const BASTION_GROUPS: usize = 10;
const LAUNCHES_EACH: usize = 10;

/// Events for one thing (a service, a group), delivered in order; a tenth of them twice in a row.
type Stream = Vec<Value>;

fn with_duplicates(events: Vec<Value>, every: usize, offset: usize) -> Stream {
    let mut stream = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        stream.push(event.clone());
        if (i + offset) % every == 0 {
            stream.push(event);
        }
    }
    stream
}

/// Deliver every stream to `function` from `threads` threads at once, each stream in order.
/// Returns each delivery's latency.
fn storm(function: Arc<LocalLambda>, streams: Vec<Stream>, threads: usize) -> Vec<Duration> {
    let queue = Arc::new(Mutex::new(streams.into_iter().collect::<VecDeque<_>>()));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (queue, latencies, function) = (queue.clone(), latencies.clone(), function.clone());
            std::thread::spawn(move || loop {
                let Some(stream) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                for event in stream {
                    let started = Instant::now();
                    if let Err(error) = function.invoke(event) {
                        panic!("an event failed: {error}");
                    }
                    latencies.lock().unwrap().push(started.elapsed());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a delivery thread panicked");
    }
    Arc::try_unwrap(latencies).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_mixed_and_duplicated_events_acts_exactly_once_per_event() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    let topic = "arn:aws:sns:us-east-1:123456789012:ops-alerts".to_string();
    aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name("ops-alerts")
        .send()
        .await
        .unwrap();

    // deploy-trigger: one opted-in service per repository.
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let ecr = ops_core::aws::ecr::EcrImages::new(&sdk);
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    let mut push_streams = Vec::new();
    for r in 0..REPOSITORIES {
        let repo = format!("repo{r:02}");
        ecr.client()
            .create_repository()
            .repository_name(&repo)
            .send()
            .await
            .unwrap();
        let first = fixtures::register(
            &ecs,
            &repo,
            &[("app", &format!("{REGISTRY}/{repo}:release-0"))],
        )
        .await;
        fixtures::service(
            &ecs,
            "prod",
            &repo,
            &first,
            &[
                ("ops:deploy-repository", repo.as_str()),
                ("ops:deploy-tag-pattern", "release-+"),
            ],
        )
        .await;
        let pushes = (1..=PUSHES_EACH)
            .map(|n| {
                emulator
                    .control(
                        "POST",
                        "/_ops/ecr/push",
                        Some(json!({"repository": repo, "tag": format!("release-{n}")})),
                    )
                    .unwrap()["event"]
                    .clone()
            })
            .collect();
        push_streams.push(with_duplicates(pushes, 10, r));
    }

    // cpu-alarm-scaler: one group and one alarm per group; each alarm goes to ALARM (one state
    // change each), then the schedule re-evaluates them every 400 s while they stay there.
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    let mut state_changes = Vec::new();
    for g in 0..GROUPS {
        let group = format!("workers{g}");
        fixtures::group(&asg, &group, (1, 1, 30), None).await;
        let alarm = format!("{group}-cpu");
        fixtures::cpu_alarm_in_alarm(&cloudwatch, &alarm, &format!("asg:{group}")).await;
        state_changes.push(alarm_state_change(&alarm, "ALARM", T0));
    }
    // The ticks play the schedule ahead of the real clock (a late tick acts now, so ticks from the
    // past would be one moment); the scaler is started with a lead that allows it.
    let clock = ops_core::time::now_epoch();
    let ticks: Vec<Value> = (0..TICKS)
        .map(|i| scheduled(clock + FIRST_TICK_AHEAD + 400 * i as u64))
        .collect();
    // One stream, in time order: Lambda runs the scaler one invocation at a time.
    let alarm_streams = vec![[
        with_duplicates(state_changes, 10, 0),
        with_duplicates(ticks, 10, 3),
    ]
    .concat()];

    // bastion-eip-associator: groups with a launch hook and a pool of addresses each.
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let mut launch_streams = Vec::new();
    for b in 0..BASTION_GROUPS {
        let group = format!("bastion{b}");
        fixtures::group(&asg, &group, (0, 0, 20), Some(&group)).await;
        fixtures::pool_addresses(&ec2, &group, LAUNCHES_EACH).await;
        let launches = (0..LAUNCHES_EACH)
            .map(|_| {
                emulator
                    .control(
                        "POST",
                        "/_ops/autoscaling/launch",
                        Some(json!({"group": group})),
                    )
                    .unwrap()["event"]
                    .clone()
            })
            .collect();
        launch_streams.push(with_duplicates(launches, 10, b));
    }

    let events: usize = [&push_streams, &alarm_streams, &launch_streams]
        .iter()
        .map(|s| s.iter().map(Vec::len).sum::<usize>())
        .sum();
    let unique = REPOSITORIES * PUSHES_EACH + GROUPS + TICKS + BASTION_GROUPS * LAUNCHES_EACH;
    assert!(
        events >= 500 && events - unique >= unique / 10,
        "{events} events, {unique} unique"
    );

    let mut env = emulator.function_env();
    env.push(("ALERT_TOPIC_ARN".into(), topic));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    let groups: Vec<String> = (0..GROUPS).map(|g| format!("workers{g}")).collect();
    let bastions: Vec<String> = (0..BASTION_GROUPS).map(|b| format!("bastion{b}")).collect();
    let deploy = Arc::new(LocalLambda::start(
        &built_binary("deploy-trigger"),
        "deploy-trigger",
        &env,
    ));
    let mut scaler_env = env.clone();
    scaler_env.push(("AUTOSCALING_GROUPS".into(), groups.join(",")));
    scaler_env.push((
        "SCHEDULE_LEAD_SECONDS".into(),
        (FIRST_TICK_AHEAD + 400 * (TICKS as u64 + 2)).to_string(),
    ));
    let scaler = Arc::new(LocalLambda::start(
        &built_binary("cpu-alarm-scaler"),
        "cpu-alarm-scaler",
        &scaler_env,
    ));
    let mut bastion_env = env.clone();
    bastion_env.push(("BASTION_GROUPS".into(), bastions.join(",")));
    bastion_env.push(("ASSOCIATE_RETRY_DELAY_MS".into(), "0".into()));
    let associator = Arc::new(LocalLambda::start(
        &built_binary("bastion-eip-associator"),
        "bastion-eip-associator",
        &bastion_env,
    ));

    emulator.reset_calls();
    let started = Instant::now();
    let latencies = tokio::task::spawn_blocking(move || {
        let threads = [
            std::thread::spawn(move || storm(deploy, push_streams, 8)),
            std::thread::spawn(move || storm(scaler, alarm_streams, 8)),
            std::thread::spawn(move || storm(associator, launch_streams, 8)),
        ];
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("storm"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();

    assert_eq!(
        emulator.calls("ecs", "RegisterTaskDefinition"),
        (REPOSITORIES * PUSHES_EACH) as u64,
        "one revision per push"
    );
    assert_eq!(
        emulator.calls("ecs", "UpdateService"),
        (REPOSITORIES * PUSHES_EACH) as u64,
        "one deployment per push"
    );
    for r in 0..REPOSITORIES {
        let repo = format!("repo{r:02}");
        assert_eq!(
            fixtures::revisions(&ecs, &repo).await.len(),
            PUSHES_EACH + 1,
            "{repo}"
        );
    }
    assert_eq!(
        emulator.calls("autoscaling", "SetDesiredCapacity"),
        (GROUPS * (1 + TICKS)) as u64,
        "one step per alarm state change and per tick"
    );
    for group in &groups {
        let found = fixtures::described_group(&asg, group).await;
        assert_eq!(found.desired_capacity, Some(2 + TICKS as i32), "{group}");
    }
    let actions = emulator
        .control("GET", "/_ops/autoscaling/lifecycle-actions", None)
        .unwrap();
    let results: Vec<&str> = actions["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["result"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(results.len(), BASTION_GROUPS * LAUNCHES_EACH);
    assert!(results.iter().all(|r| *r == "CONTINUE"), "{results:?}");
    let addresses = ec2
        .describe_addresses()
        .send()
        .await
        .unwrap()
        .addresses
        .unwrap_or_default();
    let mut holders: Vec<String> = addresses
        .iter()
        .filter_map(|a| a.instance_id.clone())
        .collect();
    let held = holders.len();
    holders.sort();
    holders.dedup();
    assert_eq!(
        (held, holders.len()),
        (
            BASTION_GROUPS * LAUNCHES_EACH,
            BASTION_GROUPS * LAUNCHES_EACH
        ),
        "one address per bastion, none shared"
    );
    assert_eq!(
        emulator.calls("ec2", "AssociateAddress"),
        (BASTION_GROUPS * LAUNCHES_EACH) as u64
    );

    let slowest = latencies.iter().max().copied().unwrap_or_default();
    println!(
        "event storm: {events} events ({unique} unique, {} duplicates) in {:.1} s: {:.1} events/s; slowest event {} ms",
        events - unique,
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        slowest.as_millis()
    );
}
