//! The deploy peer: `ecs-deploy` (PyPI), the CLI ops use today, against deploy-trigger handling an
//! ECR push, on the same emulator and the same service. Fire-and-forget (both start the rollout
//! and return), and verified (both until ECS reports the rollout COMPLETED: ecs-deploy polls,
//! deploy-trigger is told by the ECS state-change event).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ops_e2e::fixtures::REGISTRY;
use ops_e2e::{Emulator, LocalLambda};
use serde_json::json;

use crate::stats::median;

/// How long the emulated rollout takes in the verified comparison.
pub const ROLLOUT: Duration = Duration::from_secs(3);

/// One tool's figures.
#[derive(Debug, Clone)]
pub struct PeerFigures {
    /// Which tool, how.
    pub label: String,
    /// Wall time per deploy, ms.
    pub wall_ms: Vec<f64>,
    /// AWS calls per deploy.
    pub calls: Vec<u64>,
}

impl PeerFigures {
    /// Median wall time.
    pub fn wall(&self) -> f64 {
        median(&self.wall_ms)
    }

    /// Median calls.
    pub fn calls(&self) -> f64 {
        median(&self.calls.iter().map(|c| *c as f64).collect::<Vec<_>>())
    }
}

fn push(emulator: &Emulator, tag: &str) -> serde_json::Value {
    emulator
        .control(
            "POST",
            "/_ops/ecr/push",
            Some(json!({"repository": "web", "tag": tag})),
        )
        .expect("push")
}

fn ecs_deploy(ecs: &Path, emulator: &Emulator, tag: &str, wait: bool) -> (f64, u64) {
    let image = format!("{REGISTRY}/web:{tag}");
    emulator.reset_calls();
    let started = Instant::now();
    let status = Command::new(ecs)
        .args(["deploy", "prod", "web", "--image", "app", &image])
        .args([
            "--region",
            "us-east-1",
            "--access-key-id",
            "testing",
            "--secret-access-key",
            "testing",
        ])
        .args(["--timeout", if wait { "60" } else { "-1" }, "--no-diff"])
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run ecs-deploy");
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    if !status.success() {
        eprintln!("ecs-deploy exited with {status}");
    }
    (elapsed, emulator.total_calls())
}

/// Finish prod/web's rollout after [`ROLLOUT`], in the background; the state-change event.
fn finish_later(emulator: &Emulator) -> std::thread::JoinHandle<serde_json::Value> {
    let endpoint = emulator.endpoint.clone();
    std::thread::spawn(move || {
        std::thread::sleep(ROLLOUT);
        let authority = endpoint.trim_start_matches("http://").to_string();
        ops_e2e::http::request(
            &authority,
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(&json!({"cluster": "prod", "service": "web", "state": "COMPLETED"})),
        )
        .expect("finish the rollout")["event"]
            .clone()
    })
}

/// Run both tools `runs` times each way on the seeded `prod/web`.
pub fn compare(
    emulator: &Emulator,
    ecs: &Path,
    deploy_trigger: &Path,
    env: &[(String, String)],
    runs: usize,
) -> Vec<PeerFigures> {
    let function = LocalLambda::start(deploy_trigger, "deploy-trigger", env);
    let mut figures = vec![
        PeerFigures {
            label: "ecs-deploy, fire and forget (`--timeout -1`)".into(),
            wall_ms: vec![],
            calls: vec![],
        },
        PeerFigures {
            label: "deploy-trigger, push event (warm)".into(),
            wall_ms: vec![],
            calls: vec![],
        },
        PeerFigures {
            label: format!(
                "ecs-deploy, waits until deployed ({} s rollout, polls every 1 s)",
                ROLLOUT.as_secs()
            ),
            wall_ms: vec![],
            calls: vec![],
        },
        PeerFigures {
            label: format!(
                "deploy-trigger, push + ECS state-change event ({} s rollout)",
                ROLLOUT.as_secs()
            ),
            wall_ms: vec![],
            calls: vec![],
        },
    ];
    // The first push makes the function's connections; it is not counted.
    let warmup = push(emulator, "bench-warmup");
    let _ = tokio::task::block_in_place(|| function.invoke(warmup["event"].clone()));
    for i in 0..runs {
        let (wall, calls) = ecs_deploy(ecs, emulator, &format!("peer-cli-{i}"), false);
        figures[0].wall_ms.push(wall);
        figures[0].calls.push(calls);

        let pushed = push(emulator, &format!("peer-fn-{i}"));
        emulator.reset_calls();
        let started = Instant::now();
        let _ = tokio::task::block_in_place(|| function.invoke(pushed["event"].clone()));
        figures[1]
            .wall_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        figures[1].calls.push(emulator.total_calls());

        let finisher = finish_later(emulator);
        let (wall, calls) = ecs_deploy(ecs, emulator, &format!("peer-cli-wait-{i}"), true);
        finisher.join().expect("finisher");
        figures[2].wall_ms.push(wall);
        figures[2].calls.push(calls);

        let pushed = push(emulator, &format!("peer-fn-wait-{i}"));
        emulator.reset_calls();
        let started = Instant::now();
        let _ = tokio::task::block_in_place(|| function.invoke(pushed["event"].clone()));
        let event = finish_later(emulator).join().expect("finisher");
        let _ = tokio::task::block_in_place(|| function.invoke(event));
        figures[3]
            .wall_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        figures[3].calls.push(emulator.total_calls());
    }
    figures
}
