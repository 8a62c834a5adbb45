//! One check of a server: an HTTP(S) request or a TCP connect, within a timeout (a quick retry
//! included), and what it found, for the health monitor's targets and the swapper's test URL.
//! TLS reads the server's certificate (its expiry is always known) and verifies it unless the
//! probe opts out.

pub mod cert;
mod http;
mod net;
pub mod tls;

use std::time::Duration;

use hyper::{Method, Uri};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

pub use tls::TlsConfigs;

/// How a target is checked.
#[derive(Debug, Clone)]
pub enum Probe {
    /// An HTTP or HTTPS request.
    Http(Box<HttpProbe>),
    /// A TCP connect.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

/// An HTTP(S) check and what counts as healthy.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    /// The URL.
    pub url: Uri,
    /// The `User-Agent` it sends: which tool is asking, for the server's logs.
    pub user_agent: &'static str,
    /// Method (default GET).
    pub method: Method,
    /// Extra request headers. Values may be secrets: they are never logged or alerted.
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<String>,
    /// Status codes that count as healthy (default 200-299).
    pub expect_status: StatusSet,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// A pattern the body must match.
    pub body_regex: Option<regex_lite::Regex>,
    /// Slower than this is unhealthy.
    pub max_latency: Option<Duration>,
    /// Verify the server's certificate (default true).
    pub verify_tls: bool,
    /// Warn when the certificate expires within this many days.
    pub cert_warn_days: u32,
    /// Read at most this much of the body.
    pub max_body: usize,
}

/// Largest response body a check reads by default.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024;

/// Read an HTTP(S) URL a check may call: `http://` or `https://`, a host, and no credentials (a
/// check's URL is shown in alerts and logs).
pub fn parse_url(text: &str) -> Result<Uri, String> {
    let url: Uri = text
        .parse()
        .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        return Err(format!("`{text}` must start with http:// or https://"));
    }
    if url.host().is_none_or(str::is_empty) {
        return Err(format!("`{text}` names no host"));
    }
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("a URL must not carry credentials (user:password@)".into());
    }
    // The URL type accepts any port text and reads one it cannot parse as none, which would
    // quietly become the scheme's default port.
    let authority = url.authority().map(|a| a.as_str()).unwrap_or_default();
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, rest)| rest);
    if let Some((_, port)) = after_host.rsplit_once(':') {
        if !matches!(port.parse::<u16>(), Ok(1..)) {
            return Err(format!("`{text}`: `{port}` is not a port (1 to 65535)"));
        }
    }
    Ok(url)
}

impl HttpProbe {
    /// A plain `GET` of `url` sent as `user_agent`: healthy on 200-299, TLS verified, no header, no
    /// body check.
    pub fn get(url: Uri, user_agent: &'static str) -> HttpProbe {
        HttpProbe {
            url,
            user_agent,
            method: Method::GET,
            headers: Vec::new(),
            body: None,
            expect_status: StatusSet(vec![(200, 299)]),
            body_contains: None,
            body_regex: None,
            max_latency: None,
            verify_tls: true,
            cert_warn_days: 0,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl Probe {
    /// What is checked, for people: the URL, or `tcp host:port`. Never includes headers.
    pub fn describe(&self) -> String {
        match self {
            Probe::Http(http) => format!("{} {}", http.method, http.url),
            Probe::Tcp { host, port } => format!("tcp {host}:{port}"),
        }
    }
}

/// A set of HTTP status codes, as ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }

    /// Parse `200`, `"200-299,304"` or `[200, "301-302"]`.
    pub fn parse(value: &Value) -> Result<StatusSet, String> {
        let items: Vec<String> = match value {
            Value::Number(n) => vec![n.to_string()],
            Value::String(s) => s
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::Number(n) => Ok(n.to_string()),
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("`{other}` is not a status code")),
                })
                .collect::<Result<_, _>>()?,
            other => return Err(format!("`{other}` is not a status code, range or list")),
        };
        let code = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("`{s}` is not an HTTP status code (100 to 599)"))
        };
        let mut ranges = Vec::new();
        for item in &items {
            let range = match item.split_once('-') {
                Some((low, high)) => (code(low)?, code(high)?),
                None => (code(item)?, code(item)?),
            };
            if range.0 > range.1 {
                return Err(format!("`{item}` is an empty range"));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err("names no status code".into());
        }
        Ok(StatusSet(ranges))
    }
}

impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(l, h)| {
                if l == h {
                    l.to_string()
                } else {
                    format!("{l}-{h}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Pause before the one quick retry of a failed check.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What kind of failure a check met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The name does not resolve.
    Dns,
    /// Nothing listens: the connection was refused.
    Refused,
    /// No connection, handshake, answer or body before the timeout.
    Timeout,
    /// The connection failed or dropped.
    Network,
    /// The TLS handshake failed (certificate untrusted, expired, wrong name, ...).
    Tls,
    /// The server did not speak HTTP.
    Protocol,
    /// An HTTP status outside the expected set.
    Status,
    /// The body lacks the expected text or pattern.
    Body,
    /// It answered, but slower than the limit.
    Latency,
    /// It redirected to another host, which is never followed.
    Redirect,
}

impl FailureKind {
    /// A short name for alerts: `refused`, `timeout`, `TLS`, ...
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Dns => "DNS",
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Network => "network",
            FailureKind::Tls => "TLS",
            FailureKind::Protocol => "protocol",
            FailureKind::Status => "status",
            FailureKind::Body => "body",
            FailureKind::Latency => "latency",
            FailureKind::Redirect => "redirect",
        }
    }

    /// Whether a second try may pass at once. A timeout already used the whole budget, and a
    /// TLS or redirect failure gives the same answer again.
    fn worth_retrying(self) -> bool {
        !matches!(
            self,
            FailureKind::Timeout | FailureKind::Tls | FailureKind::Redirect
        )
    }
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// What happened, for people.
    pub detail: String,
    /// The start of the body, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl Failure {
    /// A failure without a body snippet.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
            snippet: None,
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Why it failed; `None` when healthy.
    pub failure: Option<Failure>,
    /// The HTTP status, for HTTP checks that got one.
    pub status: Option<u16>,
    /// How long the last attempt took, in milliseconds.
    pub latency_ms: u64,
    /// The address the name resolved to and was connected to.
    pub address: Option<String>,
    /// Days until the server's certificate expires (negative: expired), for HTTPS.
    pub cert_days_left: Option<i64>,
    /// Attempts made: 1, or 2 after a quick retry.
    pub attempts: u8,
}

impl Outcome {
    /// Whether the target passed.
    pub fn healthy(&self) -> bool {
        self.failure.is_none()
    }
}

/// Run one check within `timeout`: one attempt, and one quick retry if it failed in a way that
/// may pass at once and the timeout leaves room.
pub async fn check(probe: &Probe, timeout: Duration, tls: &TlsConfigs) -> Outcome {
    let deadline = Instant::now() + timeout;
    let first = attempt(probe, tls, deadline).await;
    let retry = first
        .failure
        .as_ref()
        .is_some_and(|f| f.kind.worth_retrying())
        && deadline.saturating_duration_since(Instant::now()) > RETRY_PAUSE * 2;
    if !retry {
        return first;
    }
    tokio::time::sleep(RETRY_PAUSE).await;
    Outcome {
        attempts: 2,
        ..attempt(probe, tls, deadline).await
    }
}

async fn attempt(probe: &Probe, tls: &TlsConfigs, deadline: Instant) -> Outcome {
    let started = Instant::now();
    match probe {
        Probe::Http(probe) => http::check(probe, tls, deadline, started).await,
        Probe::Tcp { host, port } => {
            let (failure, address) = match net::connect(host, *port, deadline).await {
                Ok((_, address)) => (None, Some(address)),
                Err((failure, address)) => (Some(failure), address),
            };
            Outcome {
                failure,
                status: None,
                latency_ms: started.elapsed().as_millis() as u64,
                address: address.map(|a| a.to_string()),
                cert_days_left: None,
                attempts: 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_http_or_https_with_a_host_a_real_port_and_no_credentials() {
        for good in [
            "http://alb.internal/health",
            "https://alb.internal:8443/health?full=1",
            "http://[::1]:8080/",
            "http://10.0.0.5:65535/",
        ] {
            assert!(parse_url(good).is_ok(), "{good}");
        }
        let cases = [
            ("ftp://alb/", "must start with http:// or https://"),
            ("http:///x", "is not a URL"),
            ("http://user:pw@alb/", "must not carry credentials"),
            ("http://alb:99999/", "`99999` is not a port (1 to 65535)"),
            ("http://alb:808O/", "`808O` is not a port"),
            ("http://alb:0/", "`0` is not a port"),
            ("http://[::1]:x/", "`x` is not a port"),
        ];
        for (bad, expected) in cases {
            let error = parse_url(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }
}
