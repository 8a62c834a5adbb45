//! Start and stop the local AWS emulator (moto's server behind `tests/emulator/ops_emulator`).
//!
//! Each [`Emulator`] is its own process on its own free loopback port, so tests are isolated and
//! can run in parallel. It stops when the value is dropped (also when a test panics), and the
//! launcher itself exits when our end of its stdin closes, so even a killed test run leaves no
//! emulator behind.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_config::SdkConfig;
use ops_core::aws::{sdk_config, AwsSettings};
use serde_json::{json, Value};

use crate::http::{self, HttpError};

/// The region every emulator-backed test and the demo use.
pub const REGION: &str = "us-east-1";
/// How long the launcher may take to import moto and bind its port.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The project's root folder (the workspace).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The emulator virtualenv's python: `OPS_EMULATOR_PYTHON`, else `.venv/emulator/bin/python`.
pub fn emulator_python() -> PathBuf {
    std::env::var_os("OPS_EMULATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/emulator/bin/python"))
}

/// A running emulator; dropping it stops the process.
pub struct Emulator {
    child: Child,
    stdin: Option<ChildStdin>,
    authority: String,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// Where the launcher's stderr goes, for debugging a failed test.
    pub log_path: PathBuf,
}

impl Emulator {
    /// Start a fresh emulator and wait until it accepts calls. Panics with the fix if it cannot.
    pub fn start() -> Emulator {
        let python = emulator_python();
        if !python.exists() {
            panic!(
                "the local AWS emulator is not installed ({} is missing): run `make setup` first",
                python.display()
            );
        }
        let log_dir = workspace_root().join("target/emulator-logs");
        std::fs::create_dir_all(&log_dir).expect("create target/emulator-logs");
        let log_path = log_dir.join(format!(
            "emulator-{}-{}.log",
            std::process::id(),
            unique_suffix()
        ));
        let log = File::create(&log_path).expect("create emulator log file");
        let mut child = Command::new(&python)
            .args(["-m", "ops_emulator", "--region", REGION])
            .current_dir(workspace_root().join("tests/emulator"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start the emulator with {}: {e}",
                    python.display()
                )
            });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("READY ") {
                    let _ = ready_tx.send(url.trim().to_string());
                }
            }
        });
        let stdin = child.stdin.take();
        let endpoint = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!(
                    "the emulator did not become ready within {START_TIMEOUT:?}; its log:\n{log}"
                );
            }
        };
        let authority = endpoint.trim_start_matches("http://").to_string();
        Emulator {
            child,
            stdin,
            authority,
            endpoint,
            log_path,
        }
    }

    /// The launcher's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Settings that point ops-core's SDK clients at this emulator.
    pub fn settings(&self) -> AwsSettings {
        AwsSettings::emulator(&self.endpoint, REGION)
    }

    /// The shared SDK config for this emulator, built by ops-core's own `sdk_config`.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.settings()).await
    }

    /// Environment for a function binary (or any SDK user) run against this emulator.
    pub fn function_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("OPS_AWS_INITIAL_BACKOFF_MS", "50"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Call a control (`/_ops/...`); see tests/emulator/README.md for the list.
    pub fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, HttpError> {
        http::request(&self.authority, method, path, body.as_ref())
    }

    /// Install a fault rule, e.g. `json!({"service": "ecs", "kind": "throttle", "on_calls": [1, 2]})`.
    pub fn add_fault(&self, rule: Value) -> Value {
        self.control("POST", "/_ops/faults", Some(rule))
            .expect("install fault rule")
    }

    /// How many calls of `operation` on `service` (signing name, e.g. `monitoring`) it answered.
    pub fn calls(&self, service: &str, operation: &str) -> u64 {
        let calls = self
            .control("GET", "/_ops/calls", None)
            .expect("read call counts");
        calls["calls"][service][operation].as_u64().unwrap_or(0)
    }

    /// Start counting AWS calls from zero.
    pub fn reset_calls(&self) {
        self.control("DELETE", "/_ops/calls", None)
            .expect("reset the call counts");
    }

    /// Every AWS call it answered since the counts were last reset ([`Emulator::reset_calls`]).
    pub fn total_calls(&self) -> u64 {
        let calls = self
            .control("GET", "/_ops/calls", None)
            .expect("read call counts");
        calls["calls"]
            .as_object()
            .map(|services| {
                services
                    .values()
                    .flat_map(|ops| ops.as_object().cloned().unwrap_or_default())
                    .filter_map(|(_, n)| n.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// How many calls the installed fault rules have failed or delayed so far.
    pub fn faults_fired(&self) -> u64 {
        let rules = self
            .control("GET", "/_ops/faults", None)
            .expect("read fault rules");
        rules["rules"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["fired"].as_u64()).sum())
            .unwrap_or(0)
    }

    /// Forget every resource, fault rule, call count and published alert: a fresh account in the
    /// same process (see `POST /_ops/reset` in tests/emulator/README.md).
    pub fn reset(&self) {
        self.control("POST", "/_ops/reset", None)
            .expect("reset the emulator");
    }

    /// Create the demo account (see `ops_emulator/seed.py`) and return its inventory.
    pub fn seed_demo(&self) -> Value {
        self.control("POST", "/_ops/seed/demo", Some(json!({})))
            .expect("seed the demo account")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
