//! Health monitor outage: 2,000 targets, every one on a server that accepts and never answers,
//! a 10 s per-target timeout, checked by the monitor's binary in one invocation under the local
//! runtime's 60 s deadline (Lambda's `Context.deadline`): how long the run took, what it alerted,
//! and what it said it could not check. Targets are configured to be down after one failed run, so
//! the one run shows what an outage alerts; they come from SSM documents of 50 targets each, as
//! 2,000 targets would (a Lambda's environment holds 4 KB).
//!
//! `bench outage` runs this alone and prints the section; `make bench` includes it in BENCHMARKS.md.

use std::path::Path;
use std::time::Instant;

use ops_e2e::blue_green::alerts;
use ops_e2e::events::scheduled;
use ops_e2e::health::create_state_table;
use ops_e2e::servers::{Reply, TestServer};
use ops_e2e::{Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::memory::peak_kib;

/// Targets in the run.
pub const TARGETS: usize = 2_000;
/// Per-check timeout, seconds.
pub const TIMEOUT_S: u64 = 10;
/// The invocation's deadline, seconds (the local runtime gives every invocation 60 s).
pub const DEADLINE_S: u64 = 60;
/// Targets per SSM document.
const PER_DOCUMENT: usize = 50;

/// One alert as ops read it.
#[derive(Debug, Clone)]
pub struct Told {
    /// The subject.
    pub subject: String,
    /// The first line of the chat description.
    pub first_line: String,
}

/// One run's figures.
#[derive(Debug, Clone)]
pub struct OutageRun {
    /// `HEALTH_CONCURRENCY`.
    pub concurrency: usize,
    /// The whole invocation, ms.
    pub wall_ms: f64,
    /// The checking phase, ms (as the function reports it).
    pub check_ms: f64,
    /// Targets checked.
    pub checked: u64,
    /// Targets named as not checked in time.
    pub not_checked: u64,
    /// Targets the run recorded as down.
    pub down: u64,
    /// AWS calls the run made, counted at the emulator.
    pub calls: u64,
    /// What it alerted, in order.
    pub alerts: Vec<Told>,
    /// Peak memory of the process, KiB.
    pub peak_kib: u64,
    /// Why there is no answer, if the invocation failed or overran.
    pub error: Option<String>,
}

impl OutageRun {
    /// Whether it answered inside its deadline.
    pub fn in_time(&self) -> bool {
        self.error.is_none() && self.wall_ms < (DEADLINE_S * 1000) as f64
    }
}

/// One invocation of `binary` over 2,000 hanging targets at `concurrency` checks at once, each on
/// a fresh state table (no history: every target is new).
pub async fn measure(
    emulator: &Emulator,
    binary: &Path,
    topic: &str,
    concurrency: usize,
) -> OutageRun {
    let hanging = TestServer::http(Reply::Hang).await;
    let path = format!("/bench/outage-{concurrency}/");
    let ssm = aws_sdk_ssm::Client::new(&emulator.sdk_config().await);
    for (part, chunk) in (0..TARGETS)
        .collect::<Vec<_>>()
        .chunks(PER_DOCUMENT)
        .enumerate()
    {
        let targets: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"name": format!("legacy-{i:04}"), "http": hanging.url(&format!("/{i}"))}))
            .collect();
        let document = json!({"defaults": {"timeout": format!("{TIMEOUT_S}s"), "down_after": 1},
                              "targets": targets});
        ssm.put_parameter()
            .name(format!("{path}part-{part:02}"))
            .value(document.to_string())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put a targets document");
    }
    let table = format!("bench-outage-{concurrency}");
    create_state_table(emulator, &table).await;
    let mut env = emulator.function_env();
    env.extend([
        ("ALERT_TOPIC_ARN".to_string(), topic.to_string()),
        ("HEALTH_STATE_TABLE".to_string(), table),
        ("HEALTH_CONFIG_PATH".to_string(), path),
        ("HEALTH_CONCURRENCY".to_string(), concurrency.to_string()),
    ]);
    let function = LocalLambda::start(binary, "legacy-health-monitor", &env);
    let before = alerts(emulator, topic).len();
    emulator.reset_calls();
    let began = Instant::now();
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let answer = tokio::task::block_in_place(|| function.invoke(scheduled(at)));
    let wall_ms = began.elapsed().as_secs_f64() * 1000.0;
    let calls = emulator.total_calls();
    let told = alerts(emulator, topic)
        .into_iter()
        .skip(before)
        .map(|a| Told {
            subject: a.subject,
            first_line: a.chat["content"]["description"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    let count =
        |answer: &Value, field: &str| answer[field].as_array().map_or(0, |a| a.len() as u64);
    let (answer, error) = match answer {
        Ok(answer) => (answer, None),
        Err(error) => (Value::Null, Some(error.to_string())),
    };
    OutageRun {
        concurrency,
        wall_ms,
        check_ms: answer["check_ms"].as_f64().unwrap_or(0.0),
        checked: answer["checked"].as_u64().unwrap_or(0),
        not_checked: count(&answer, "not_checked_in_time"),
        down: count(&answer, "down"),
        calls,
        alerts: told,
        peak_kib: peak_kib(function.pid()).unwrap_or(0),
        error,
    }
}

/// The section for BENCHMARKS.md.
pub fn render(runs: &[OutageRun], binary: &str) -> String {
    let mut md = String::new();
    md.push_str("\n## Health monitor, a 2,000-target outage under a 60 s deadline\n\n");
    md.push_str(&format!(
        "{TARGETS} HTTP targets on loopback, every one on a server that accepts the connection and \
         never answers, per-check timeout {TIMEOUT_S} s, down after one failed run, configured in \
         SSM documents of {PER_DOCUMENT}; one scheduled invocation of the {binary} binary under the \
         local runtime's {DEADLINE_S} s deadline (`Lambda-Runtime-Deadline-Ms`), on a fresh state \
         table. The run starts a check only if its whole timeout fits before the deadline less a \
         margin for storing and alerting, so it checks ceil(time / timeout) waves of \
         `HEALTH_CONCURRENCY` targets and names the rest. Budget: the invocation answers inside its \
         deadline, alerts what it found and says what it could not check.\n\n"
    ));
    md.push_str("| concurrency | whole invocation, s | checks, s | checked | not checked (named) | recorded down | AWS calls | peak memory, MiB | budget |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for run in runs {
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} | {} | {} | {} | {} | {:.1} | {} |\n",
            run.concurrency,
            run.wall_ms / 1000.0,
            run.check_ms / 1000.0,
            run.checked,
            run.not_checked,
            run.down,
            run.calls,
            run.peak_kib as f64 / 1024.0,
            match (&run.error, run.in_time()) {
                (Some(error), _) => format!(
                    "**no answer**: {}",
                    error.lines().next().unwrap_or_default()
                ),
                (None, true) => "within budget".to_string(),
                (None, false) => "**over the deadline**".to_string(),
            }
        ));
    }
    for run in runs {
        md.push_str(&format!(
            "\nAlerts of the run at concurrency {} ({}):\n\n",
            run.concurrency,
            run.alerts.len()
        ));
        for told in &run.alerts {
            md.push_str(&format!("- **{}**: {}\n", told.subject, told.first_line));
        }
    }
    md
}
