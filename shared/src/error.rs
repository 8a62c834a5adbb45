//! The one error type of the ops Lambdas, and how it maps to the Lambda runtime's `Diagnostic`.
//!
//! What matters to on-call is whether retrying can help. Bad input (a malformed event, an unknown
//! command, a config mistake) never gets better by retrying, so it is reported as non-retryable and
//! must change nothing in AWS; throttling, 5xx answers and lost connections are retryable.

use lambda_runtime::Diagnostic;

use crate::command::CommandError;
use crate::config::ConfigError;
use crate::events::EventError;
use crate::image::ImageRefError;

/// Shorthand for results across the ops Lambdas.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in an ops Lambda, with messages fit for a chat reply.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The function's own configuration is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A chat command that cannot be run as sent.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// An event that is not the shape its trigger promises.
    #[error(transparent)]
    Event(#[from] EventError),
    /// An image reference that does not parse.
    #[error(transparent)]
    Image(#[from] ImageRefError),
    /// A call to AWS failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Something the request names does not exist in AWS.
    #[error("{kind} `{name}` not found")]
    NotFound {
        /// What kind of resource, e.g. "ECS service".
        kind: &'static str,
        /// The name or ARN that was asked for.
        name: String,
    },
    /// The request is valid but the state of AWS forbids it now (e.g. a swap already in flight).
    #[error("refused: {0}")]
    Refused(String),
    /// A plan stopped part-way: some changes were applied, one failed, the rest were not tried.
    #[error("stopped after {applied} of {planned} planned changes: {message}")]
    Incomplete {
        /// Changes applied before the failure.
        applied: usize,
        /// Changes planned.
        planned: usize,
        /// The failure.
        message: String,
        /// Whether running again may finish the job.
        retryable: bool,
    },
}

/// A failed AWS call, classified for retrying.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation} failed: {code}: {message}")]
pub struct AwsError {
    /// The service, e.g. "ecs".
    pub service: &'static str,
    /// The operation, e.g. "UpdateService".
    pub operation: &'static str,
    /// The AWS error code, or the kind of transport failure.
    pub code: String,
    /// The service's message, or a description of the transport failure.
    pub message: String,
    /// Whether the same call may succeed later (throttling, 5xx, timeouts, lost connections).
    pub retryable: bool,
}

/// Error codes that mean "slow down", which AWS answers with a 4xx but which are worth retrying.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

impl AwsError {
    /// Classify an AWS error code and HTTP status (if an answer came back at all).
    pub fn classify(
        service: &'static str,
        operation: &'static str,
        code: Option<&str>,
        message: Option<&str>,
        status: Option<u16>,
    ) -> Self {
        let retryable = match (code, status) {
            (Some(code), _) if THROTTLING_CODES.contains(&code) => true,
            (_, Some(status)) => status >= 500,
            // No answer at all: a timeout or a dropped connection.
            (None, None) => true,
            (Some(_), None) => false,
        };
        AwsError {
            service,
            operation,
            code: code
                .unwrap_or(if status.is_some() {
                    "Unknown"
                } else {
                    "NoResponse"
                })
                .to_string(),
            message: message.unwrap_or("no message").to_string(),
            retryable,
        }
    }

    /// Whether AWS answered that the named resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code.contains("NotFound") || self.code == "ResourceNotFound"
    }
}

impl Error {
    /// Whether Lambda (or the caller) should retry the invocation.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Aws(aws) => aws.retryable,
            Error::Incomplete { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// A short, stable name for the kind of failure, used in `Diagnostic::error_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "ConfigError",
            Error::Command(_) => "CommandError",
            Error::Event(_) => "EventError",
            Error::Image(_) => "ImageReferenceError",
            Error::Aws(aws) if aws.retryable => "AwsTransientError",
            Error::Aws(_) => "AwsError",
            Error::NotFound { .. } => "NotFound",
            Error::Refused(_) => "Refused",
            Error::Incomplete { .. } => "Incomplete",
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(error: Error) -> Self {
        Diagnostic::from(&error)
    }
}

impl From<&Error> for Diagnostic {
    /// `error_type` is `Retryable.<Kind>` or `NonRetryable.<Kind>` so that dashboards, the
    /// on-failure destination and a caller's retry policy can tell them apart.
    fn from(error: &Error) -> Self {
        let class = if error.retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        Diagnostic {
            error_type: format!("{class}.{}", error.kind()),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: Option<&str>, status: Option<u16>) -> Error {
        Error::Aws(AwsError::classify(
            "ecs",
            "UpdateService",
            code,
            Some("m"),
            status,
        ))
    }

    #[test]
    fn throttling_and_server_errors_and_lost_connections_are_retryable() {
        assert!(aws(Some("ThrottlingException"), Some(400)).retryable());
        assert!(aws(Some("Throttling"), Some(400)).retryable());
        assert!(aws(Some("InternalFailure"), Some(500)).retryable());
        assert!(aws(None, None).retryable());
    }

    #[test]
    fn client_errors_and_bad_input_are_not_retryable() {
        assert!(!aws(Some("AccessDeniedException"), Some(400)).retryable());
        assert!(!aws(Some("ClientException"), Some(400)).retryable());
        let bad_input = Error::Refused("swap in flight".into());
        assert!(!bad_input.retryable());
    }

    #[test]
    fn diagnostic_error_type_says_whether_to_retry() {
        let throttled = Diagnostic::from(aws(Some("ThrottlingException"), Some(400)));
        assert_eq!(throttled.error_type, "Retryable.AwsTransientError");
        let denied = Diagnostic::from(aws(Some("AccessDeniedException"), Some(400)));
        assert_eq!(denied.error_type, "NonRetryable.AwsError");
        assert_eq!(
            denied.error_message,
            "ecs UpdateService failed: AccessDeniedException: m"
        );
    }
}
