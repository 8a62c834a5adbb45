//! A minimal HTTP/1.1 client for the emulator's JSON controls on loopback.
//!
//! The controls are a handful of small JSON requests to 127.0.0.1; a full HTTP client crate would
//! cost more compile time than the whole harness.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// A control request that failed: transport, status or body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Could not talk to the emulator.
    #[error("emulator control {0}: {1}")]
    Io(String, std::io::Error),
    /// The emulator answered with an error status; the body says why.
    #[error("emulator control {request} answered {status}: {body}")]
    Status {
        /// Method and path.
        request: String,
        /// HTTP status.
        status: u16,
        /// The answer's body.
        body: String,
    },
    /// The answer was not JSON.
    #[error("emulator control {0} answered with something that is not JSON: {1}")]
    NotJson(String, String),
}

/// Send one JSON request to `host:port` and parse the JSON answer.
pub fn request(
    authority: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, HttpError> {
    let label = format!("{method} {path}");
    let io = |e| HttpError::Io(label.clone(), e);
    let mut stream = TcpStream::connect(authority).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(io)?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(payload.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if !(200..300).contains(&status) {
        return Err(HttpError::Status {
            request: label,
            status,
            body: body.to_string(),
        });
    }
    serde_json::from_str(body)
        .map_err(|_| HttpError::NotJson(label, body.chars().take(200).collect()))
}
