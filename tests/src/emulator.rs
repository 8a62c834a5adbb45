//! Start and stop the local AWS emulator (moto's server behind `tests/emulator/ops_emulator`).
//!
//! Each [`Emulator`] is its own process on its own free loopback port, so tests are isolated and
//! can run in parallel. It stops when the value is dropped (also when a test panics).
//!
//! Emulators are forked by one zygote per test process (`python -m ops_emulator --zygote`),
//! started with the first emulator: it pays moto's imports (about 2.5 s of CPU) once instead of
//! once per emulator, and a test run starts hundreds. Each fork starts from the freshly imported
//! state, so emulators share nothing. The zygote exits when our end of its stdin closes (this
//! process ended, however it ended), and each emulator exits when its zygote is gone, so even a
//! killed test run leaves no emulator behind.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::SdkConfig;
use ops_core::aws::{sdk_config, AwsSettings};
use serde_json::{json, Value};

use crate::http::{self, HttpError};

/// The region every emulator-backed test and the demo use.
pub const REGION: &str = "us-east-1";
/// How long the zygote may take to import moto and fork an emulator that binds its port.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long stopping an emulator may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

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
    pid: u32,
    authority: String,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// Where the emulator's stderr goes, for debugging a failed test.
    pub log_path: PathBuf,
}

/// The requests waiting for the zygote's answers, by request id.
type Waiting = Arc<Mutex<HashMap<String, mpsc::Sender<String>>>>;

/// The process that forks emulators, and the requests waiting for its answers.
struct Zygote {
    stdin: Mutex<ChildStdin>,
    waiting: Waiting,
    log_path: PathBuf,
    // Kept so the process is not reaped early; it exits when this process's end of stdin closes.
    _child: Child,
}

impl Zygote {
    /// Start the zygote (it imports moto, then waits for requests), and its stdout to read
    /// the answers from.
    fn start() -> (Zygote, ChildStdout) {
        let python = emulator_python();
        if !python.exists() {
            panic!(
                "the local AWS emulator is not installed ({} is missing): run `make setup` first",
                python.display()
            );
        }
        let log_path = log_file("zygote");
        let log = File::create(&log_path).expect("create the zygote's log file");
        let mut child = Command::new(&python)
            .args(["-m", "ops_emulator", "--zygote", "--region", REGION])
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
        let stdin = child.stdin.take().expect("stdin is piped");
        let zygote = Zygote {
            stdin: Mutex::new(stdin),
            waiting: Waiting::default(),
            log_path,
            _child: child,
        };
        (zygote, stdout)
    }

    /// Send `request` (naming `id`) and wait up to `timeout` for the answer to `id`.
    fn ask(&self, id: &str, request: &str, timeout: Duration) -> Result<String, String> {
        let (tx, rx) = mpsc::channel();
        self.waiting
            .lock()
            .expect("the waiting list")
            .insert(id.to_string(), tx);
        {
            let mut stdin = self.stdin.lock().expect("the zygote's stdin");
            writeln!(stdin, "{request}")
                .and_then(|()| stdin.flush())
                .map_err(|e| format!("the zygote is gone ({e})"))?;
        }
        rx.recv_timeout(timeout).map_err(|_| {
            self.waiting.lock().expect("the waiting list").remove(id);
            format!("no answer within {timeout:?}")
        })
    }
}

/// This process's zygote, started on first use, with the thread that hands out its answers.
fn zygote() -> &'static Zygote {
    static ZYGOTE: OnceLock<Zygote> = OnceLock::new();
    ZYGOTE.get_or_init(|| {
        let (zygote, stdout) = Zygote::start();
        let waiting = Arc::clone(&zygote.waiting);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Some((id, answer)) = line.split_once(' ') else {
                    continue;
                };
                match waiting.lock().expect("the waiting list").remove(id) {
                    Some(tx) => {
                        let _ = tx.send(answer.to_string());
                    }
                    // Said, so that a garbled or late answer shows in the failing test's output.
                    None => eprintln!(
                        "the emulator zygote answered a request no one waits for: `{line}`"
                    ),
                }
            }
        });
        zygote
    })
}

/// A new log file under `target/emulator-logs`.
fn log_file(kind: &str) -> PathBuf {
    let log_dir = workspace_root().join("target/emulator-logs");
    std::fs::create_dir_all(&log_dir).expect("create target/emulator-logs");
    log_dir.join(format!(
        "{kind}-{}-{}.log",
        std::process::id(),
        unique_suffix()
    ))
}

impl Emulator {
    /// Start a fresh emulator and wait until it accepts calls. Panics with the fix if it cannot.
    pub fn start() -> Emulator {
        let zygote = zygote();
        let log_path = log_file("emulator");
        let id = format!("e{}", unique_suffix());
        let answer = zygote
            .ask(
                &id,
                &format!("spawn {id} {}", log_path.display()),
                START_TIMEOUT,
            )
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(&zygote.log_path).unwrap_or_default();
                panic!("the emulator did not start: {e}; the zygote's log:\n{log}")
            });
        // `READY <pid> <url>`
        let mut words = answer.split_whitespace();
        let (Some("READY"), Some(pid), Some(endpoint), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            panic!("the zygote answered `{answer}` to spawn {id}");
        };
        let port = endpoint
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok());
        if !endpoint.starts_with("http://") || port.is_none() {
            panic!("the zygote answered `{answer}` to spawn {id}: not a `http://<host>:<port>` endpoint");
        }
        let pid: u32 = pid.parse().expect("the emulator's pid");
        let endpoint = endpoint.to_string();
        let authority = endpoint.trim_start_matches("http://").to_string();
        Emulator {
            pid,
            authority,
            endpoint,
            log_path,
        }
    }

    /// The emulator's process id.
    pub fn pid(&self) -> u32 {
        self.pid
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
    /// Stop the emulator and wait until it is gone (the zygote reaps it before it answers).
    fn drop(&mut self) {
        let id = format!("k{}", unique_suffix());
        let _ = zygote().ask(&id, &format!("kill {id} {}", self.pid), STOP_TIMEOUT);
    }
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
