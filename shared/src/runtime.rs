//! The Lambda runtime loop every function's `main` ends in.

use std::future::Future;
use std::pin::Pin;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::error::Error;

/// A handler's future, borrowing the function's dependencies.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>;

/// Run the Lambda runtime loop with `deps` built at init. A failed init is logged in its
/// readable form (the runtime itself prints only `Debug`, which on-call should not have to decode)
/// and ends the process; handler errors reach Lambda as `Retryable.*` / `NonRetryable.*`.
pub async fn serve<D, H>(
    function: &str,
    deps: Result<D, Error>,
    handler: H,
) -> Result<(), lambda_runtime::Error>
where
    D: Sync,
    H: for<'a> Fn(LambdaEvent<Value>, &'a D) -> HandlerFuture<'a>,
{
    let deps = deps.inspect_err(|error| tracing::error!("{function} cannot start: {error}"))?;
    let (deps, handler) = (&deps, &handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler(event, deps).await.map_err(Diagnostic::from)
    }))
    .await
}
