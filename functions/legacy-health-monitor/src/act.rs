//! Act: store target states (each only if no other run wrote it since it was read), many at once.

use std::sync::Arc;

use ops_core::aws::dynamodb::VersionedDocuments;
use ops_core::Result;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// State writes at once.
pub const WRITES_AT_ONCE: usize = 32;

/// A state to store: key, document, and the version it was read at (`None`: new).
#[derive(Debug, Clone)]
pub struct Write {
    /// The target (or record) name.
    pub key: String,
    /// The document.
    pub document: String,
    /// The version read.
    pub expected: Option<u64>,
}

/// Store every write; for each, `Ok(Some(version))` when stored, `Ok(None)` when another run
/// wrote first (nothing stored), or the error.
pub async fn store(
    states: &VersionedDocuments,
    writes: Vec<Write>,
) -> Vec<(String, Result<Option<u64>>)> {
    let permits = Arc::new(Semaphore::new(WRITES_AT_ONCE));
    let mut running = JoinSet::new();
    for write in writes {
        let (states, permits) = (states.clone(), permits.clone());
        running.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let stored = states
                .put(&write.key, &write.document, write.expected)
                .await
                .map(|won| won.then(|| write.expected.unwrap_or(0) + 1));
            (write.key, stored)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = running.join_next().await {
        match done {
            Ok(result) => results.push(result),
            Err(error) => tracing::error!(%error, "a state write task failed"),
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}
