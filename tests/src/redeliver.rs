//! What Lambda does with an asynchronous event whose invocation failed with a retryable error:
//! deliver it again. Tests use it to show that faults end in the right state, not a half-done one.

use std::future::Future;

use ops_core::Error;

/// Run `invoke` until it succeeds or fails with an error retrying cannot fix, at most `times` times;
/// the last outcome is returned.
pub async fn until_settled<T, F, Fut>(times: usize, mut invoke: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut outcome = invoke().await;
    for _ in 1..times {
        match &outcome {
            Err(error) if error.retryable() => outcome = invoke().await,
            _ => break,
        }
    }
    outcome
}
