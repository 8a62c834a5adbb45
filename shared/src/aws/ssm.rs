//! SSM Parameter Store adapter: the documents under a path, decrypted.

use aws_config::SdkConfig;
use tracing::instrument;

use super::aws_error;
use crate::error::Result;

/// Reads parameters through the SDK.
#[derive(Debug, Clone)]
pub struct Parameters {
    client: aws_sdk_ssm::Client,
}

impl Parameters {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        Parameters {
            client: aws_sdk_ssm::Client::new(config),
        }
    }

    /// Every parameter under `path` (recursively), as (name, value), in name order. SecureString
    /// values are decrypted: callers must never log them.
    #[instrument(skip(self), err)]
    pub async fn under_path(&self, path: &str) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        let mut next = None;
        loop {
            let answer = self
                .client
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .with_decryption(true)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| aws_error("ssm", "GetParametersByPath", e))?;
            found.extend(answer.parameters().iter().filter_map(|p| {
                Some((
                    p.name()?.to_string(),
                    p.value().unwrap_or_default().to_string(),
                ))
            }));
            next = answer.next_token().map(String::from);
            if next.is_none() {
                found.sort();
                return Ok(found);
            }
        }
    }
}
