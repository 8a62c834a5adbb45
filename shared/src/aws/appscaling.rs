//! Application Auto Scaling adapter: does an ECS service already have native scaling?

use aws_config::SdkConfig;
use aws_sdk_applicationautoscaling::types::ServiceNamespace;
use tracing::instrument;

use super::aws_error;
use crate::error::Result;

/// Reads Application Auto Scaling through the SDK.
#[derive(Debug, Clone)]
pub struct ScalableTargets {
    client: aws_sdk_applicationautoscaling::Client,
}

impl ScalableTargets {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        ScalableTargets {
            client: aws_sdk_applicationautoscaling::Client::new(config),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_applicationautoscaling::Client {
        &self.client
    }

    /// Names of the native scaling policies and scheduled actions on an ECS service's desired count.
    #[instrument(skip(self), err)]
    pub async fn native_scaling_of_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<String>> {
        let resource = format!("service/{cluster}/{service}");
        let policies = self
            .client
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .send()
            .await
            .map_err(|e| aws_error("application-autoscaling", "DescribeScalingPolicies", e))?;
        let scheduled = self
            .client
            .describe_scheduled_actions()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .send()
            .await
            .map_err(|e| aws_error("application-autoscaling", "DescribeScheduledActions", e))?;
        let mut found: Vec<String> = policies
            .scaling_policies()
            .iter()
            .map(|p| format!("scaling policy `{}`", p.policy_name()))
            .collect();
        found.extend(
            scheduled
                .scheduled_actions()
                .iter()
                .map(|a| format!("scheduled action `{}`", a.scheduled_action_name())),
        );
        Ok(found)
    }
}
