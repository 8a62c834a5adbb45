//! ECR adapter: resolve a tag to its digest, or check that a digest exists, in one repository,
//! with the time ECR records for its push.

use aws_config::SdkConfig;
use aws_sdk_ecr::types::ImageIdentifier;
use serde::Serialize;
use tracing::instrument;

use super::aws_error;
use crate::error::{Error, Result};

/// Which image of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSelector {
    /// By tag, e.g. `release-42`.
    Tag(String),
    /// By digest, `sha256:<64 hex>`.
    Digest(String),
}

/// An image that exists in ECR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedImage {
    /// Its digest.
    pub digest: String,
    /// Every tag it carries now.
    pub tags: Vec<String>,
    /// When ECR says it was pushed, in epoch milliseconds (`imagePushedAt`): AWS's own record of
    /// the push, which an event's claim cannot change. `None` if ECR did not say.
    pub pushed_at_ms: Option<i64>,
}

/// Reads ECR repositories through the SDK.
#[derive(Debug, Clone)]
pub struct EcrImages {
    client: aws_sdk_ecr::Client,
}

impl EcrImages {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        EcrImages {
            client: aws_sdk_ecr::Client::new(config),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_ecr::Client {
        &self.client
    }

    /// Find one image in `repository` of registry `registry_id` (an account id);
    /// [`Error::NotFound`] names what was asked for when there is no such image or repository.
    #[instrument(skip(self), err)]
    pub async fn resolve(
        &self,
        registry_id: &str,
        repository: &str,
        selector: &ImageSelector,
    ) -> Result<ResolvedImage> {
        let (identifier, shown) = match selector {
            ImageSelector::Tag(tag) => (
                ImageIdentifier::builder().image_tag(tag).build(),
                format!("{repository}:{tag}"),
            ),
            ImageSelector::Digest(digest) => (
                ImageIdentifier::builder().image_digest(digest).build(),
                format!("{repository}@{digest}"),
            ),
        };
        let not_found = || Error::NotFound {
            kind: "ECR image",
            name: shown.clone(),
        };
        let answer = match self
            .client
            .describe_images()
            .registry_id(registry_id)
            .repository_name(repository)
            .image_ids(identifier)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                let error = aws_error("ecr", "DescribeImages", error);
                return Err(if error.is_not_found() {
                    not_found()
                } else {
                    Error::Aws(error)
                });
            }
        };
        let image = answer.image_details().first().ok_or_else(not_found)?;
        Ok(ResolvedImage {
            digest: image.image_digest().ok_or_else(not_found)?.to_string(),
            tags: image.image_tags().to_vec(),
            pushed_at_ms: image.image_pushed_at().and_then(|t| t.to_millis().ok()),
        })
    }
}
