//! Run a function's real binary under a local Lambda Runtime API and invoke it.
//!
//! The binary is started as Lambda starts it (`AWS_LAMBDA_RUNTIME_API` and the other variables the
//! runtime reads), polls `GET /2018-06-01/runtime/invocation/next`, and answers through
//! `.../response` or `.../error`. Each [`LocalLambda`] is its own process on its own port and is
//! stopped when dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::emulator::workspace_root;
use crate::fixtures::ACCOUNT;

/// How long one invocation may take before [`LocalLambda::invoke`] gives up.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an invocation did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function returned an error (`errorType`, `errorMessage`).
    #[error("{error_type}: {error_message}")]
    Function {
        /// `errorType`, e.g. `NonRetryable.CommandError`.
        error_type: String,
        /// `errorMessage`.
        error_message: String,
    },
    /// The process exited or never answered; its log says why.
    #[error("the function did not answer ({0}); log: {1}")]
    NoAnswer(String, String),
}

struct Invocation {
    id: String,
    payload: Value,
    reply: Sender<Result<Value, Value>>,
}

#[derive(Default)]
struct Waiting {
    replies: HashMap<String, Sender<Result<Value, Value>>>,
}

/// One change a function counted for the dashboard (one metric line of `Ops/Changes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedChange {
    /// `Deployments`, `Swaps` or `Scalings`.
    pub metric: String,
    /// The `Outcome` dimension.
    pub outcome: String,
    /// The `FunctionName` dimension.
    pub function: String,
    /// How many it adds.
    pub value: u64,
}

impl CountedChange {
    /// One `metric` of `outcome` counted by `function`.
    pub fn one(metric: &str, outcome: &str, function: &str) -> CountedChange {
        CountedChange {
            metric: metric.into(),
            outcome: outcome.into(),
            function: function.into(),
            value: 1,
        }
    }
}

/// A function binary running under the local Runtime API.
pub struct LocalLambda {
    child: Mutex<Child>,
    queue: Sender<Invocation>,
    next_id: Mutex<u64>,
    /// The function's stdout and stderr.
    pub log_path: PathBuf,
}

impl LocalLambda {
    /// Start `binary` as function `name` with `env` added to what Lambda sets.
    pub fn start(binary: &Path, name: &str, env: &[(String, String)]) -> LocalLambda {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the runtime API");
        let address = listener.local_addr().expect("runtime API address");
        let (queue, pending) = mpsc::channel::<Invocation>();
        let pending = Arc::new(Mutex::new(pending));
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let function_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}");
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (pending, waiting, arn) =
                    (pending.clone(), waiting.clone(), function_arn.clone());
                std::thread::spawn(move || serve(stream, &pending, &waiting, &arn));
            }
        });
        let log_dir = workspace_root().join("target/function-logs");
        std::fs::create_dir_all(&log_dir).expect("create target/function-logs");
        let log_path = log_dir.join(format!("{name}-{}.log", address.port()));
        let log = File::create(&log_path).expect("create function log");
        let child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        LocalLambda {
            child: Mutex::new(child),
            queue,
            next_id: Mutex::new(0),
            log_path,
        }
    }

    /// Invoke synchronously, as `aws lambda invoke` (or AWS Chatbot) does.
    pub fn invoke(&self, payload: Value) -> Result<Value, InvokeError> {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            format!("local-{next:06}")
        };
        let (reply, answer) = mpsc::channel();
        self.queue
            .send(Invocation { id, payload, reply })
            .expect("runtime API is running");
        let deadline = Instant::now() + INVOKE_TIMEOUT;
        loop {
            match answer.recv_timeout(Duration::from_millis(200)) {
                Ok(Ok(result)) => return Ok(result),
                Ok(Err(error)) => {
                    return Err(InvokeError::Function {
                        error_type: error["errorType"].as_str().unwrap_or_default().to_string(),
                        error_message: error["errorMessage"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.no_answer("the runtime API closed"))
                }
                Err(RecvTimeoutError::Timeout) => {
                    let exited = self
                        .child
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .try_wait()
                        .ok()
                        .flatten();
                    if let Some(status) = exited {
                        return Err(self.no_answer(&format!("the process exited: {status}")));
                    }
                    if Instant::now() > deadline {
                        return Err(self.no_answer(&format!("no answer within {INVOKE_TIMEOUT:?}")));
                    }
                }
            }
        }
    }

    /// The CloudWatch Embedded Metric Format lines the function printed so far, parsed: what
    /// CloudWatch Logs would turn into metrics.
    pub fn emitted_metrics(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line.get("_aws").is_some())
            .collect()
    }

    /// The changes the function counted for the dashboard, from its metric lines in the
    /// `Ops/Changes` namespace, one per line, in order.
    pub fn counted_changes(&self) -> Vec<CountedChange> {
        self.emitted_metrics()
            .iter()
            .filter(|line| {
                line["_aws"]["CloudWatchMetrics"][0]["Namespace"]
                    == ops_core::metrics::CHANGES_NAMESPACE
            })
            .map(|line| {
                let metric = line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                CountedChange {
                    value: line[metric.as_str()].as_u64().unwrap_or(0),
                    outcome: line["Outcome"].as_str().unwrap_or_default().to_string(),
                    function: line["FunctionName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    metric,
                }
            })
            .collect()
    }

    /// The function process's id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|p| p.into_inner()).id()
    }

    fn no_answer(&self, why: &str) -> InvokeError {
        InvokeError::NoAnswer(
            why.to_string(),
            std::fs::read_to_string(&self.log_path).unwrap_or_default(),
        )
    }
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Serve one keep-alive connection from the runtime client.
fn serve(
    stream: TcpStream,
    pending: &Mutex<Receiver<Invocation>>,
    waiting: &Mutex<Waiting>,
    function_arn: &str,
) {
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        let reply =
            |writer: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]| {
                let mut head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                writer
                    .write_all(head.as_bytes())
                    .and_then(|_| writer.write_all(body))
            };
        let outcome = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let next = pending.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(invocation) = next else { return };
            waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replies
                .insert(invocation.id.clone(), invocation.reply);
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                + INVOKE_TIMEOUT;
            let headers = [
                (
                    "Lambda-Runtime-Aws-Request-Id".to_string(),
                    invocation.id.clone(),
                ),
                (
                    "Lambda-Runtime-Deadline-Ms".to_string(),
                    deadline.as_millis().to_string(),
                ),
                (
                    "Lambda-Runtime-Invoked-Function-Arn".to_string(),
                    function_arn.to_string(),
                ),
                (
                    "Lambda-Runtime-Trace-Id".to_string(),
                    format!("Root=1-00000000-{}", invocation.id),
                ),
            ];
            reply(
                &mut writer,
                "200 OK",
                &headers,
                invocation.payload.to_string().as_bytes(),
            )
        } else if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
            let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
            let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(sender) = waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replies
                .remove(id)
            {
                let _ = sender.send(if kind == "response" {
                    Ok(parsed)
                } else {
                    Err(parsed)
                });
            }
            reply(&mut writer, "202 Accepted", &[], b"{}")
        } else {
            // init/error: the process is about to exit; invoke() sees that and reports the log.
            reply(&mut writer, "202 Accepted", &[], b"{}")
        };
        if outcome.is_err() {
            return;
        }
    }
}

/// Read one HTTP/1.1 request: method, path and body (by Content-Length).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

/// Build the functions' binaries (a no-op when they are up to date, so a test never runs a stale
/// one) and return the path of `name`'s. Runs cargo once per process, for the whole workspace with
/// all features: the same feature set as `make test`'s build, so its compiled SDK crates are reused
/// instead of being built again for one package's narrower features.
pub fn built_binary(name: &str) -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    if !*built {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--all-features",
                "--bins",
            ])
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|e| panic!("could not run cargo to build the function binaries: {e}"));
        assert!(status.success(), "building the function binaries failed");
        *built = true;
    }
    target.join("debug").join(name)
}
