//! Checking targets: each check within its own timeout (a quick retry included), all of them
//! concurrently up to a limit, so a run takes about one timeout however many targets hang; with a
//! deadline ([`check_within`]), only checks that can finish before it are started.

pub mod http;
mod net;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::targets::{Probe, Target};
use tls::TlsConfigs;

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

/// Check one target: one attempt, and one quick retry if it failed in a way that may pass at
/// once and the timeout leaves room.
pub async fn check(target: &Target, tls: &TlsConfigs) -> Outcome {
    let deadline = Instant::now() + target.timeout;
    let first = attempt(target, tls, deadline).await;
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
        ..attempt(target, tls, deadline).await
    }
}

async fn attempt(target: &Target, tls: &TlsConfigs, deadline: Instant) -> Outcome {
    let started = Instant::now();
    match &target.probe {
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

/// Check every target, at most `concurrency` at a time; outcomes in the targets' order.
pub async fn check_all(
    targets: &[Target],
    tls: Arc<TlsConfigs>,
    concurrency: usize,
) -> Vec<Outcome> {
    let order: Vec<usize> = (0..targets.len()).collect();
    check_within(targets, &order, tls, concurrency, None)
        .await
        .into_iter()
        .map(|o| o.expect("with no deadline every target is checked"))
        .collect()
}

/// Check the targets in the order of the indexes in `order` (the others are not checked), at most
/// `concurrency` at a time, and only those that can finish by `until`: a check starts only if its
/// whole timeout fits before `until` (so a failure always means the target had its full timeout),
/// and a check still running at `until` is abandoned. Outcomes in the targets' order; `None`: not
/// checked (not in `order`, or not in time).
pub async fn check_within(
    targets: &[Target],
    order: &[usize],
    tls: Arc<TlsConfigs>,
    concurrency: usize,
    until: Option<Instant>,
) -> Vec<Option<Outcome>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut running = JoinSet::new();
    // Per target: `Some(None)` not checked (not in `order`, or not in time), `None` while its check
    // runs, `Some(Some(_))` checked.
    let mut outcomes: Vec<Option<Option<Outcome>>> = vec![Some(None); targets.len()];
    // Permits are taken here, in priority order, so the most important targets start first.
    for &index in order {
        let target = targets[index].clone();
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        if until.is_some_and(|until| Instant::now() + target.timeout > until) {
            continue;
        }
        outcomes[index] = None;
        let tls = tls.clone();
        running.spawn(async move {
            let _permit = permit;
            let outcome = match until {
                Some(until) => tokio::time::timeout_at(until, check(&target, &tls))
                    .await
                    .ok(),
                None => Some(check(&target, &tls).await),
            };
            (index, outcome)
        });
    }
    while let Some(done) = running.join_next().await {
        match done {
            Ok((index, outcome)) => outcomes[index] = Some(outcome),
            Err(error) => tracing::error!(%error, "a check task failed"),
        }
    }
    outcomes
        .into_iter()
        .map(|o| match o {
            Some(outcome) => outcome,
            // Its task failed: that counts as a failure.
            None => Some(Outcome {
                failure: Some(Failure::new(
                    FailureKind::Network,
                    "the check did not complete (its task failed)",
                )),
                status: None,
                latency_ms: 0,
                address: None,
                cert_days_left: None,
                attempts: 1,
            }),
        })
        .collect()
}
