//! Act: store target states, each only if no other run wrote it since it was read, up to a
//! hundred in one DynamoDB transaction: a mass outage changes every target twice in one run
//! (recorded with its alert, then marked sent), and 4,000 single writes would not fit in the
//! time a run keeps after its checks.

use ops_core::aws::dynamodb::VersionedDocuments;
use ops_core::Result;

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
/// wrote first (nothing stored), or the error; sorted by key.
pub async fn store(
    states: &VersionedDocuments,
    writes: Vec<Write>,
) -> Vec<(String, Result<Option<u64>>)> {
    let batch: Vec<(String, String, Option<u64>)> = writes
        .iter()
        .map(|w| (w.key.clone(), w.document.clone(), w.expected))
        .collect();
    let outcomes = states.put_all(&batch).await;
    let mut results: Vec<(String, Result<Option<u64>>)> = writes
        .into_iter()
        .zip(outcomes)
        .map(|(write, outcome)| {
            let stored = outcome.map(|won| won.then(|| write.expected.unwrap_or(0) + 1));
            (write.key, stored)
        })
        .collect();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}
