//! The Lambda runtime loop every function's `main` ends in.

use std::future::Future;
use std::pin::Pin;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::echo;
use crate::error::Error;

/// A handler's future, borrowing the function's dependencies.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>;

/// Run the Lambda runtime loop with `deps` built at init. A failed init is logged in its
/// readable form (the runtime itself prints only `Debug`, which on-call should not have to decode)
/// and ends the process; handler errors reach Lambda as `Retryable.*` / `NonRetryable.*`. What
/// leaves is cut to chat size: no answer or error repeats a caller's megabyte.
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
        // Answers and errors quote their input: both leave here cut to chat size (see `echo`).
        match handler(event, deps).await {
            Ok(answer) => Ok(echo::cap_answer(answer)),
            Err(error) => {
                let mut diagnostic = Diagnostic::from(error);
                diagnostic.error_message =
                    echo::cut_runs(&diagnostic.error_message, echo::MAX_ERROR_CHARS);
                Err(diagnostic)
            }
        }
    }))
    .await
}
