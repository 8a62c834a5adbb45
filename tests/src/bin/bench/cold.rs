//! Cold init: from process start to the first `GET /2018-06-01/runtime/invocation/next` on a local
//! Runtime API stub, which is the moment Lambda's init phase ends. The process is then killed.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to ask for its first invocation before the run counts as failed.
const LIMIT: Duration = Duration::from_secs(20);

/// A program to measure: what to run and with which environment.
#[derive(Debug, Clone)]
pub struct Program {
    /// Shown in the tables.
    pub label: String,
    /// The executable.
    pub program: std::path::PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment on top of what Lambda sets.
    pub env: Vec<(String, String)>,
}

/// One cold start: milliseconds to the first request for an invocation, and the resident memory
/// peak (KiB) at that moment.
pub fn once(program: &Program) -> Result<(f64, u64), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(false).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(&program.program)
        .args(&program.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &program.label)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .envs(program.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.program.display()))?;
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_ok()
                && line.starts_with("GET")
                && line.contains("/runtime/invocation/next")
            {
                let _ = sender.send(started.elapsed());
                // Keep the connection open so the process waits here, as in Lambda.
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
        }
    });
    let outcome = receiver.recv_timeout(LIMIT);
    let peak = crate::memory::peak_kib(pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    match outcome {
        Ok(elapsed) => Ok((elapsed.as_secs_f64() * 1000.0, peak)),
        Err(_) => Err(format!(
            "{} did not ask for an invocation within {LIMIT:?}",
            program.label
        )),
    }
}
