//! Health monitor fan-out: 1,000 targets on loopback, a tenth hanging past the timeout, checked by
//! the release binary in one invocation: wall time as a multiple of the timeout, and peak memory.

use std::path::Path;
use std::time::Instant;

use ops_e2e::events::scheduled;
use ops_e2e::health::create_state_table;
use ops_e2e::servers::{Reply, TestServer};
use ops_e2e::{Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::memory::peak_kib;

/// Targets in the run.
pub const TARGETS: usize = 1_000;
/// Of which hang.
pub const HANGING: usize = 100;
/// Per-check timeout, seconds.
pub const TIMEOUT_S: u64 = 2;

/// One run's figures.
#[derive(Debug, Clone)]
pub struct FanoutRun {
    /// Whole invocation, ms.
    pub wall_ms: f64,
    /// The checking phase, ms (as the function reports it).
    pub check_ms: f64,
    /// Targets healthy in this run.
    pub healthy: u64,
    /// AWS calls the run made (state reads and writes, alerts), counted at the emulator.
    pub calls: u64,
}

/// `runs` scheduled runs of 1,000 targets; the runs and the process's peak memory (KiB).
pub async fn measure(
    emulator: &Emulator,
    binary: &Path,
    topic: &str,
    runs: usize,
) -> (Vec<FanoutRun>, u64) {
    let healthy = TestServer::http(Reply::healthy()).await;
    let hanging = TestServer::http(Reply::Hang).await;
    let targets: Vec<Value> = (0..TARGETS)
        .map(|i| {
            let server = if i < HANGING { &hanging } else { &healthy };
            json!({"name": format!("legacy-{i:04}"), "http": server.url(&format!("/health/{i}"))})
        })
        .collect();
    let document =
        json!({"defaults": {"timeout": format!("{TIMEOUT_S}s")}, "targets": targets}).to_string();
    create_state_table(emulator, "bench-health-state").await;
    let mut env = emulator.function_env();
    env.extend([
        ("ALERT_TOPIC_ARN".to_string(), topic.to_string()),
        (
            "HEALTH_STATE_TABLE".to_string(),
            "bench-health-state".to_string(),
        ),
        ("HEALTH_TARGETS".to_string(), document),
    ]);
    let function = LocalLambda::start(binary, "legacy-health-monitor", &env);
    let start = 1_795_000_000u64;
    let mut measured = Vec::new();
    for i in 0..runs {
        emulator.reset_calls();
        let began = Instant::now();
        let answer =
            tokio::task::block_in_place(|| function.invoke(scheduled(start + i as u64 * 60)))
                .unwrap_or_else(|e| panic!("fan-out run {i}: {e}"));
        measured.push(FanoutRun {
            wall_ms: began.elapsed().as_secs_f64() * 1000.0,
            check_ms: answer["check_ms"].as_f64().unwrap_or(0.0),
            healthy: answer["healthy_now"].as_u64().unwrap_or(0),
            calls: emulator.total_calls(),
        });
    }
    let peak = peak_kib(function.pid()).unwrap_or(0);
    (measured, peak)
}
