//! `BENCHMARKS.md`: a table per measurement, each figure beside its budget, the machine, the date
//! and the commands, all from this run.

use std::fmt::Write;
use std::process::Command;

use crate::cold::Program;
use crate::fanout::{FanoutRun, HANGING, TARGETS, TIMEOUT_S};
use crate::invoke::Measured;
use crate::peers::{PeerFigures, ROLLOUT};
use crate::stats::{median, percentile};

/// Budgets from DESIGN.md.
const COLD_RATIO_BUDGET: f64 = 1.5;
const MEMORY_BUDGET_MIB: f64 = 32.0;
const ZIP_BUDGET_MB: f64 = 3.0;
const FANOUT_BUDGET: f64 = 1.3;

/// Everything measured.
pub struct Inputs<'a> {
    pub started: u64,
    pub runs: usize,
    pub programs: &'a [Program],
    pub cold: &'a [(Vec<f64>, u64)],
    pub invoked: &'a [Measured],
    pub sizes: &'a [(String, Option<u64>)],
    pub peers: Option<&'a [PeerFigures]>,
    pub fanout: &'a [FanoutRun],
    pub fanout_peak_kib: u64,
    /// The outage section, rendered by `outage::render`.
    pub outage: &'a str,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "within budget"
    } else {
        "**over budget**"
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "{cores} cores ({cpu}), Linux {}, {}",
        command_line("uname", &["-r"]),
        command_line("rustc", &["--version"])
    )
}

/// The report.
pub fn render(inputs: &Inputs) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `make bench` on {} on this machine: {}. Every figure below comes from that one \
         run; absolute times on a shared 2-core machine are context, the ratios measured side by side \
         are the claims. Rust programs are release builds with the workspace's profile (`opt-level = \"z\"`, \
         LTO, one codegen unit, stripped), for this machine's architecture; package sizes are the \
         arm64 zips `cargo lambda build --release --arm64` makes.\n",
        ops_core::time::utc_text(inputs.started),
        machine()
    );

    let _ = writeln!(md, "## Cold init\n");
    let _ = writeln!(
        md,
        "Process start to the first `GET /2018-06-01/runtime/invocation/next` on a local Runtime API \
         stub (the end of Lambda's init phase), {} runs of each program, interleaved. Budget: within \
         {COLD_RATIO_BUDGET}x of the hello-world binary.\n",
        inputs.runs
    );
    let _ = writeln!(
        md,
        "| program | median ms | p90 ms | vs hello-world | peak memory at init | budget |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
    let hello = median(&inputs.cold[0].0);
    for (program, (runs, peak)) in inputs.programs.iter().zip(inputs.cold) {
        let ratio = median(runs) / hello;
        let budget = if program.label.starts_with("hello") {
            "baseline".to_string()
        } else if program.label.starts_with("Python") {
            "reference".to_string()
        } else {
            verdict(ratio <= COLD_RATIO_BUDGET).to_string()
        };
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.2} | {:.2}x | {:.1} MiB | {budget} |",
            program.label,
            median(runs),
            percentile(runs, 90.0),
            ratio,
            mib(*peak)
        );
    }

    let _ = writeln!(md, "\n## Invocations: handler time, AWS calls, memory\n");
    let _ = writeln!(
        md,
        "Each release binary under the local Runtime API against the emulator's demo account: the \
         first invocation after start (the SDK opens its connections here), then 20 warm ones. AWS \
         calls are counted at the emulator. Peak memory is the process's `VmHWM` after all of them. \
         Budget: under {MEMORY_BUDGET_MIB} MiB.\n"
    );
    let _ = writeln!(md, "| function | event | first ms | warm median ms | warm p90 ms | AWS calls (first / warm) | peak memory | budget |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---|");
    for m in inputs.invoked {
        let warm_calls = median(&m.warm_calls.iter().map(|c| *c as f64).collect::<Vec<_>>());
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} / {} | {:.1} MiB | {} |",
            m.label,
            m.event,
            m.first_ms,
            median(&m.warm_ms),
            percentile(&m.warm_ms, 90.0),
            m.first_calls,
            warm_calls,
            mib(m.peak_kib),
            verdict(mib(m.peak_kib) < MEMORY_BUDGET_MIB)
        );
    }

    let _ = writeln!(md, "\n## Package size\n");
    let _ = writeln!(md, "`cargo lambda build --release --arm64 --output-format zip`. Budget: under {ZIP_BUDGET_MB} MB each.\n");
    let _ = writeln!(md, "| function | zip | budget |");
    let _ = writeln!(md, "|---|---:|---|");
    for (function, size) in inputs.sizes {
        match size {
            Some(bytes) => {
                let mb = *bytes as f64 / 1_000_000.0;
                let _ = writeln!(
                    md,
                    "| {function} | {mb:.2} MB ({bytes} bytes) | {} |",
                    verdict(mb < ZIP_BUDGET_MB)
                );
            }
            None => {
                let _ = writeln!(md, "| {function} | not built in this run | - |");
            }
        }
    }
    let _ = writeln!(
        md,
        "\nWhat each release-profile setting buys (opt-level, LTO, codegen units), measured one \
         clean build per variant: [bench/PROFILES.md](bench/PROFILES.md) (`make bench-profiles`)."
    );

    let _ = writeln!(
        md,
        "\n## Deploying a new image: deploy-trigger and ecs-deploy\n"
    );
    match inputs.peers {
        None => {
            let _ = writeln!(
                md,
                "Not measured in this run: `ecs-deploy` was not installed."
            );
        }
        Some(peers) => {
            let _ = writeln!(
                md,
                "The same service (`prod/web`, two containers), the same emulator, 5 deploys each, \
                 medians. `ecs-deploy` 1.17.0 from PyPI is run as ops run it today (a new image for \
                 container `app`; by default it also deregisters the old revision). deploy-trigger \
                 handles the ECR push event EventBridge delivers (warm). In the verified rows the \
                 emulator completes the rollout after {} s: ecs-deploy polls until it sees that, \
                 deploy-trigger is handed ECS's state-change event.\n",
                ROLLOUT.as_secs()
            );
            let _ = writeln!(md, "| tool | wall ms | AWS calls |");
            let _ = writeln!(md, "|---|---:|---:|");
            for peer in peers {
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | {:.0} |",
                    peer.label,
                    peer.wall(),
                    peer.calls()
                );
            }
        }
    }

    let _ = writeln!(md, "\n## Health monitor fan-out\n");
    let _ = writeln!(
        md,
        "{TARGETS} HTTP targets on loopback, {HANGING} of them on a server that accepts and never \
         answers, per-check timeout {TIMEOUT_S} s, concurrency 256, checked by the release binary in \
         one invocation each minute. The first run writes every target's first state and the \
         hanging ones are counted down over the first three; from the fourth, a run changes \
         nothing. Budget: one invocation within {FANOUT_BUDGET}x the timeout.\n"
    );
    let _ = writeln!(
        md,
        "| run | checks, s (x timeout) | whole invocation, s (x timeout) | AWS calls | outside the checks, s | healthy | budget |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---|");
    for (i, run) in inputs.fanout.iter().enumerate() {
        let timeout_ms = TIMEOUT_S as f64 * 1000.0;
        let _ = writeln!(
            md,
            "| {} | {:.2} ({:.2}x) | {:.2} ({:.2}x) | {} | {:.2} | {} | {} |",
            i + 1,
            run.check_ms / 1000.0,
            run.check_ms / timeout_ms,
            run.wall_ms / 1000.0,
            run.wall_ms / timeout_ms,
            run.calls,
            (run.wall_ms - run.check_ms).max(0.0) / 1000.0,
            run.healthy,
            verdict(run.wall_ms / timeout_ms <= FANOUT_BUDGET)
        );
    }
    if let Some(busiest) = inputs.fanout.iter().max_by_key(|run| run.calls) {
        let per_call = (busiest.wall_ms - busiest.check_ms).max(0.0) / busiest.calls.max(1) as f64;
        let _ = writeln!(
            md,
            "\nThe time outside the checks is the state read and written: in the busiest run, {} AWS \
             calls at {per_call:.1} ms each on average. The monitor writes changed states in DynamoDB \
             transactions of up to 100 conditional puts (`TransactWriteItems`, which needs only \
             `dynamodb:PutItem`); the emulator (moto, one Python process) serves them one at a time. \
             Runs in which nothing changes write only the bookkeeping item (the run's time, so a \
             duplicate or late delivery of the schedule is not counted again).",
            busiest.calls
        );
    }
    let _ = writeln!(
        md,
        "\nPeak memory of the monitor over the fan-out runs: {:.1} MiB ({}).",
        mib(inputs.fanout_peak_kib),
        verdict(mib(inputs.fanout_peak_kib) < MEMORY_BUDGET_MIB)
    );

    md.push_str(inputs.outage);

    let _ = writeln!(md, "\n## How to reproduce\n");
    let _ = writeln!(md, "```sh\nmake bench\n```\n");
    let _ = writeln!(
        md,
        "It builds the release binaries (`cargo build --release -p <each function> -p hello-lambda`) \
         and the arm64 zips (`cargo lambda build --release --arm64 --output-format zip`), installs \
         `ecs-deploy` into `.venv/bench` (pinned in `bench/requirements.txt`), starts the emulator, \
         runs `target/debug/bench` (source: `tests/src/bin/bench/`) and writes this file. \
         `OPS_BENCH_RUNS` sets the cold-start runs (default 30). The outage section alone: \
         `OPS_BENCH_RELEASE=target/release target/debug/bench outage` (about two minutes; it \
         prints the section)."
    );
    md
}
