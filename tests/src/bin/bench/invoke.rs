//! Handler time and AWS calls per event: each function's release binary under the local Runtime
//! API against the emulator's seeded demo account, a first invocation and warm ones, with the API
//! calls counted at the emulator and the process's peak memory read at the end.

use std::path::Path;
use std::time::Instant;

use ops_e2e::{Emulator, LocalLambda};
use serde_json::Value;

use crate::memory::peak_kib;

/// One function's figures.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The function.
    pub label: String,
    /// The event, for the table.
    pub event: String,
    /// The first invocation after start, ms (the SDK's connections are made here).
    pub first_ms: f64,
    /// Warm invocations, ms.
    pub warm_ms: Vec<f64>,
    /// AWS calls of the first invocation.
    pub first_calls: u64,
    /// AWS calls of each warm invocation.
    pub warm_calls: Vec<u64>,
    /// Peak resident memory of the process over all of it, KiB.
    pub peak_kib: u64,
}

/// Start `binary` as `label` with `env`, invoke it `1 + warm` times with the events `event` makes
/// (called before the calls are counted, so what it does at the emulator is not counted).
pub fn measure(
    emulator: &Emulator,
    binary: &Path,
    label: &str,
    env: &[(String, String)],
    description: &str,
    warm: usize,
    mut event: impl FnMut(usize) -> Value,
) -> Measured {
    let function = LocalLambda::start(binary, label, env);
    let mut timings = Vec::new();
    let mut calls = Vec::new();
    for i in 0..=warm {
        let payload = event(i);
        emulator.reset_calls();
        let started = Instant::now();
        let answer = tokio::task::block_in_place(|| function.invoke(payload));
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if let Err(error) = &answer {
            eprintln!("{label}: invocation {i} failed: {error}");
        }
        timings.push(elapsed);
        calls.push(emulator.total_calls());
    }
    let peak = peak_kib(function.pid()).unwrap_or(0);
    Measured {
        label: label.to_string(),
        event: description.to_string(),
        first_ms: timings[0],
        warm_ms: timings[1..].to_vec(),
        first_calls: calls[0],
        warm_calls: calls[1..].to_vec(),
        peak_kib: peak,
    }
}
