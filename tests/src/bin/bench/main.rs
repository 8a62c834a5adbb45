//! `make bench`: measures every function's release binary side by side with a hello-world
//! `lambda_runtime` binary, a Python boto3 function and `ecs-deploy`, in one run on this machine,
//! and writes `BENCHMARKS.md` from what it measured.
//!
//! Inputs (the Makefile sets them): `OPS_BENCH_RELEASE` (the release binaries' folder),
//! `OPS_BENCH_LAMBDA` (cargo lambda's output with the arm64 zips), `OPS_BENCH_ECS_DEPLOY` (the
//! `ecs` CLI), `OPS_BENCH_RUNS` (cold starts per program, default 30), `OPS_BENCH_OUT` (the report).

mod cold;
mod fanout;
mod invoke;
mod memory;
mod outage;
mod peers;
mod report;
mod stats;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::types::StateValue;
use ops_e2e::emulator::{emulator_python, workspace_root};
use ops_e2e::events::{alarm_state_change, scheduled};
use ops_e2e::health::create_state_table;
use ops_e2e::servers::{Reply, TestServer};
use ops_e2e::Emulator;
use serde_json::json;

use crate::cold::Program;

/// `HEALTH_CONCURRENCY` of the outage runs: the default, and the most the monitor allows.
const OUTAGE_CONCURRENCY: [usize; 2] = [256, 1000];

/// The functions, as their binaries are named.
const FUNCTIONS: &[&str] = &[
    "deploy-trigger",
    "blue-green-swapper",
    "cpu-alarm-scaler",
    "legacy-health-monitor",
    "bastion-eip-associator",
];

fn path_from(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let release = path_from("OPS_BENCH_RELEASE", "target/release");
    let lambda = path_from("OPS_BENCH_LAMBDA", "target/lambda");
    let ecs_deploy = path_from("OPS_BENCH_ECS_DEPLOY", ".venv/bench/bin/ecs");
    let out = path_from("OPS_BENCH_OUT", "BENCHMARKS.md");
    let runs: usize = std::env::var("OPS_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    if std::env::args().nth(1).as_deref() == Some("outage") {
        let binary = release.join("legacy-health-monitor");
        assert!(binary.exists(), "{} is missing", binary.display());
        let emulator = Emulator::start();
        let topic = ops_e2e::blue_green::topic(&emulator, "ops-alerts").await;
        let mut runs = Vec::new();
        for concurrency in OUTAGE_CONCURRENCY {
            eprintln!(
                "bench: health monitor outage, {} targets hanging, concurrency {concurrency}",
                outage::TARGETS
            );
            runs.push(outage::measure(&emulator, &binary, &topic, concurrency).await);
        }
        println!("{}", outage::render(&runs, &binary.display().to_string()));
        return;
    }
    for name in FUNCTIONS.iter().chain(&["hello-lambda"]) {
        let binary = release.join(name);
        assert!(
            binary.exists(),
            "{} is missing: run `make bench` (it builds the release binaries)",
            binary.display()
        );
    }

    eprintln!("bench: starting the emulator and seeding the demo account");
    let emulator = Emulator::start();
    let inventory = emulator.seed_demo();
    let topic = inventory["alert_topic_arn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let shop_route = inventory["blue_green_apps"][0]["live_route"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    create_state_table(&emulator, "bench-state").await;
    let loopback = TestServer::http(Reply::healthy()).await;
    let small_document = json!({"targets": (0..20).map(|i| json!({"name": format!("app-{i:02}"), "http": loopback.url(&format!("/health/{i}"))})).collect::<Vec<_>>()}).to_string();
    let env_of = |function: &str| -> Vec<(String, String)> {
        let mut env = emulator.function_env();
        env.push(("ALERT_TOPIC_ARN".into(), topic.clone()));
        env.push(("ECS_CLUSTERS".into(), "prod".into()));
        let own: Vec<(&str, String)> = match function {
            "blue-green-swapper" => vec![("SWAP_ROUTES", shop_route.clone())],
            "cpu-alarm-scaler" => vec![("AUTOSCALING_GROUPS", "workers".into())],
            "legacy-health-monitor" => vec![
                ("HEALTH_STATE_TABLE", "bench-state".into()),
                ("HEALTH_TARGETS", small_document.clone()),
            ],
            "bastion-eip-associator" => vec![("BASTION_GROUPS", "bastion".into())],
            _ => vec![],
        };
        env.extend(own.into_iter().map(|(k, v)| (k.to_string(), v)));
        env
    };

    eprintln!("bench: cold init, {runs} runs of each program, interleaved");
    let mut programs: Vec<Program> = vec![Program {
        label: "hello-world (lambda_runtime)".into(),
        program: release.join("hello-lambda"),
        args: vec![],
        env: emulator.function_env(),
    }];
    programs.extend(FUNCTIONS.iter().map(|f| Program {
        label: f.to_string(),
        program: release.join(f),
        args: vec![],
        env: env_of(f),
    }));
    programs.push(Program {
        label: "Python 3 + boto3 (reference, bench/python)".into(),
        program: emulator_python(),
        args: vec![workspace_root()
            .join("bench/python/bootstrap.py")
            .display()
            .to_string()],
        env: emulator
            .function_env()
            .into_iter()
            .chain([("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string())])
            .collect(),
    });
    let mut cold: Vec<(Vec<f64>, u64)> = vec![(Vec::new(), 0); programs.len()];
    for round in 0..runs {
        for (i, program) in programs.iter().enumerate() {
            match cold::once(program) {
                Ok((ms, peak)) => {
                    cold[i].0.push(ms);
                    cold[i].1 = cold[i].1.max(peak);
                }
                Err(error) => eprintln!("cold run {round}: {error}"),
            }
        }
    }

    eprintln!("bench: first and warm invocations, AWS calls per event, peak memory");
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&emulator.sdk_config().await);
    cloudwatch
        .set_alarm_state()
        .alarm_name("workers-cpu-high")
        .state_value(StateValue::Alarm)
        .state_reason("CPUUtilization average 97%")
        .state_reason_data(json!({"version": "1.0", "recentDatapoints": [97.0]}).to_string())
        .send()
        .await
        .expect("set the alarm");
    let warm = 20;
    let mut invoked = Vec::new();
    invoked.push(invoke::measure(
        &emulator,
        &release.join("deploy-trigger"),
        "deploy-trigger",
        &env_of("deploy-trigger"),
        "ECR push of a new tag to 2 opted-in services",
        warm,
        |i| {
            emulator
                .control(
                    "POST",
                    "/_ops/ecr/push",
                    Some(json!({"repository": "web", "tag": format!("release-{}", 100 + i)})),
                )
                .expect("push")["event"]
                .clone()
        },
    ));
    invoked.push(invoke::measure(
        &emulator,
        &release.join("blue-green-swapper"),
        "blue-green-swapper",
        &env_of("blue-green-swapper"),
        "chat `status` of app shop (routes, both colours, health, alarms)",
        warm,
        |_| json!({"command": "status", "args": {"app": "shop"}, "requested_by": "bench"}),
    ));
    invoked.push(invoke::measure(
        &emulator,
        &release.join("cpu-alarm-scaler"),
        "cpu-alarm-scaler",
        &env_of("cpu-alarm-scaler"),
        "CloudWatch alarm state change (ALARM), 400 s apart",
        warm,
        |i| alarm_state_change("workers-cpu-high", "ALARM", started + 400 * i as u64),
    ));
    invoked.push(invoke::measure(
        &emulator,
        &release.join("legacy-health-monitor"),
        "legacy-health-monitor",
        &env_of("legacy-health-monitor"),
        "schedule: 20 HTTP targets on loopback",
        warm,
        // A minute apart and never in the future (the monitor refuses an event from the future).
        |i| scheduled(started - 60 * (warm - i) as u64),
    ));
    invoked.push(invoke::measure(
        &emulator,
        &release.join("bastion-eip-associator"),
        "bastion-eip-associator",
        &env_of("bastion-eip-associator"),
        "schedule: reconcile the bastion group's addresses",
        warm,
        |i| scheduled(started + 300 * i as u64),
    ));

    let peers = if ecs_deploy.exists() {
        eprintln!("bench: ecs-deploy against deploy-trigger");
        Some(peers::compare(
            &emulator,
            &ecs_deploy,
            &release.join("deploy-trigger"),
            &env_of("deploy-trigger"),
            5,
        ))
    } else {
        eprintln!(
            "bench: {} is missing: the peer comparison is skipped",
            ecs_deploy.display()
        );
        None
    };

    eprintln!("bench: health monitor fan-out, {} targets", fanout::TARGETS);
    let (fanout_runs, fanout_peak) =
        fanout::measure(&emulator, &release.join("legacy-health-monitor"), &topic, 5).await;

    let mut outage_runs = Vec::new();
    for concurrency in OUTAGE_CONCURRENCY {
        eprintln!(
            "bench: health monitor outage, {} targets hanging, concurrency {concurrency}",
            outage::TARGETS
        );
        outage_runs.push(
            outage::measure(
                &emulator,
                &release.join("legacy-health-monitor"),
                &topic,
                concurrency,
            )
            .await,
        );
    }

    let sizes: Vec<(String, Option<u64>)> = FUNCTIONS
        .iter()
        .map(|f| {
            let zip = lambda.join(f).join("bootstrap.zip");
            (f.to_string(), std::fs::metadata(&zip).ok().map(|m| m.len()))
        })
        .collect();

    let document = report::render(&report::Inputs {
        started,
        runs,
        programs: &programs,
        cold: &cold,
        invoked: &invoked,
        sizes: &sizes,
        peers: peers.as_deref(),
        fanout: &fanout_runs,
        fanout_peak_kib: fanout_peak,
        outage: &outage::render(&outage_runs, "release"),
    });
    std::fs::write(&out, document).expect("write the report");
    eprintln!("bench: wrote {}", out.display());
    drop(loopback);
}
