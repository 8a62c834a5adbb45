//! Checking targets: each check within its own timeout (a quick retry included), all of them
//! concurrently up to a limit, so a run takes about one timeout however many targets hang; with a
//! deadline ([`check_within`]), only checks that can finish before it are started. One check is
//! ops-core's [`ops_core::probe::check`].

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use ops_core::probe::{check as check_probe, tls, Failure, FailureKind, Outcome, TlsConfigs};

use crate::targets::Target;

/// Check one target within its timeout.
pub async fn check(target: &Target, tls: &TlsConfigs) -> Outcome {
    check_probe(&target.probe, target.timeout, tls).await
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
