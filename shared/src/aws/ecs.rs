//! ECS adapter: read a service and its deployments into a snapshot the decide step can use.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_ecs::types::ServiceField;
use serde::Serialize;
use tracing::instrument;

use super::aws_error;
use crate::error::{Error, Result};

/// One ECS deployment of a service, as ECS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentState {
    /// Deployment id, e.g. `ecs-svc/1234`.
    pub id: String,
    /// `PRIMARY` (the newest), `ACTIVE` (draining or being replaced) or `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED` (absent for non-ECS controllers).
    pub rollout_state: Option<String>,
    /// Why it is in that state, e.g. the circuit breaker's reason.
    pub rollout_reason: Option<String>,
    /// The task definition ARN this deployment runs.
    pub task_definition: String,
    /// Desired, running and failed task counts.
    pub desired: i32,
    /// Tasks running now.
    pub running: i32,
    /// Tasks that failed to start.
    pub failed: i32,
}

/// An ECS service at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceState {
    /// Service ARN.
    pub arn: String,
    /// Service name.
    pub name: String,
    /// ARN of the cluster it runs in.
    pub cluster_arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// Desired task count.
    pub desired: i32,
    /// Running task count.
    pub running: i32,
    /// Task definition ARN of the primary deployment.
    pub task_definition: String,
    /// Deployments, newest first.
    pub deployments: Vec<DeploymentState>,
    /// The service's tags.
    pub tags: BTreeMap<String, String>,
}

impl ServiceState {
    /// The newest deployment, the one ECS is rolling out or has rolled out.
    pub fn primary(&self) -> Option<&DeploymentState> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
}

/// Reads ECS services through the SDK.
#[derive(Debug, Clone)]
pub struct EcsServices {
    client: aws_sdk_ecs::Client,
}

impl EcsServices {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        EcsServices {
            client: aws_sdk_ecs::Client::new(config),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_ecs::Client {
        &self.client
    }

    /// Describe one service with its tags; [`Error::NotFound`] if ECS does not know it.
    #[instrument(skip(self), err)]
    pub async fn describe(&self, cluster: &str, service: &str) -> Result<ServiceState> {
        let answer = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(|e| aws_error("ecs", "DescribeServices", e))?;
        let found = answer
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
            .ok_or_else(|| Error::NotFound {
                kind: "ECS service",
                name: format!("{cluster}/{service}"),
            })?;
        Ok(ServiceState {
            arn: found.service_arn().unwrap_or_default().to_string(),
            name: found.service_name().unwrap_or_default().to_string(),
            cluster_arn: found.cluster_arn().unwrap_or_default().to_string(),
            status: found.status().unwrap_or_default().to_string(),
            desired: found.desired_count(),
            running: found.running_count(),
            task_definition: found.task_definition().unwrap_or_default().to_string(),
            deployments: found
                .deployments()
                .iter()
                .map(|d| DeploymentState {
                    id: d.id().unwrap_or_default().to_string(),
                    status: d.status().unwrap_or_default().to_string(),
                    rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
                    rollout_reason: d.rollout_state_reason().map(String::from),
                    task_definition: d.task_definition().unwrap_or_default().to_string(),
                    desired: d.desired_count(),
                    running: d.running_count(),
                    failed: d.failed_tasks(),
                })
                .collect(),
            tags: found
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
        })
    }
}
