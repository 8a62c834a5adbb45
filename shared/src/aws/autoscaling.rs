//! Auto Scaling adapter: a group's capacity, instances, tags and native scaling, and the changes
//! the scaler makes (desired capacity, its own tags).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_autoscaling::types::Tag;
use serde::Serialize;
use tracing::instrument;

use super::aws_error;
use crate::error::{Error, Result};

/// An Auto Scaling group at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupState {
    /// Group name.
    pub name: String,
    /// Group ARN.
    pub arn: String,
    /// Minimum size.
    pub min: i32,
    /// Maximum size.
    pub max: i32,
    /// Desired capacity.
    pub desired: i32,
    /// Instance id → lifecycle state (`InService`, `Pending`, `Terminating`, ...).
    pub instances: BTreeMap<String, String>,
    /// The group's tags.
    pub tags: BTreeMap<String, String>,
}

/// Reads and sizes Auto Scaling groups through the SDK.
#[derive(Debug, Clone)]
pub struct AutoScalingGroups {
    client: aws_sdk_autoscaling::Client,
}

impl AutoScalingGroups {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        AutoScalingGroups {
            client: aws_sdk_autoscaling::Client::new(config),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_autoscaling::Client {
        &self.client
    }

    /// Describe one group; [`Error::NotFound`] if there is none.
    #[instrument(skip(self), err)]
    pub async fn describe(&self, name: &str) -> Result<GroupState> {
        let answer = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| aws_error("autoscaling", "DescribeAutoScalingGroups", e))?;
        let group = answer
            .auto_scaling_groups()
            .first()
            .ok_or_else(|| Error::NotFound {
                kind: "Auto Scaling group",
                name: name.to_string(),
            })?;
        Ok(GroupState {
            name: group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .to_string(),
            arn: group
                .auto_scaling_group_arn()
                .unwrap_or_default()
                .to_string(),
            min: group.min_size().unwrap_or_default(),
            max: group.max_size().unwrap_or_default(),
            desired: group.desired_capacity().unwrap_or_default(),
            instances: group
                .instances()
                .iter()
                .filter_map(|i| {
                    Some((
                        i.instance_id()?.to_string(),
                        i.lifecycle_state()?.as_str().to_string(),
                    ))
                })
                .collect(),
            tags: group
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

    /// Names of the group's native scaling policies and scheduled actions, which the scaler must
    /// not fight.
    #[instrument(skip(self), err)]
    pub async fn native_scaling(&self, name: &str) -> Result<Vec<String>> {
        let policies = self
            .client
            .describe_policies()
            .auto_scaling_group_name(name)
            .send()
            .await
            .map_err(|e| aws_error("autoscaling", "DescribePolicies", e))?;
        let scheduled = self
            .client
            .describe_scheduled_actions()
            .auto_scaling_group_name(name)
            .send()
            .await
            .map_err(|e| aws_error("autoscaling", "DescribeScheduledActions", e))?;
        let mut found: Vec<String> = policies
            .scaling_policies()
            .iter()
            .filter_map(|p| p.policy_name().map(|n| format!("scaling policy `{n}`")))
            .collect();
        found.extend(
            scheduled
                .scheduled_update_group_actions()
                .iter()
                .filter_map(|a| {
                    a.scheduled_action_name()
                        .map(|n| format!("scheduled action `{n}`"))
                }),
        );
        Ok(found)
    }

    /// Set the desired capacity (not honouring native cooldowns: the scaler keeps its own).
    #[instrument(skip(self), err)]
    pub async fn set_desired(&self, name: &str, desired: i32) -> Result<()> {
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(name)
            .desired_capacity(desired)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| aws_error("autoscaling", "SetDesiredCapacity", e))?;
        Ok(())
    }

    /// Complete a lifecycle action with `CONTINUE` or `ABANDON`. `Ok(false)` when AWS no longer
    /// has that action open (already completed, e.g. by a duplicate event, or timed out).
    #[instrument(skip(self, token), err)]
    pub async fn complete_lifecycle_action(
        &self,
        group: &str,
        hook: &str,
        token: &str,
        instance_id: &str,
        result: &str,
    ) -> Result<bool> {
        match self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .lifecycle_action_token(token)
            .instance_id(instance_id)
            .lifecycle_action_result(result)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error) => {
                let error = aws_error("autoscaling", "CompleteLifecycleAction", error);
                if error.code == "ValidationError"
                    && error.message.contains("No active Lifecycle Action")
                {
                    Ok(false)
                } else {
                    Err(Error::Aws(error))
                }
            }
        }
    }

    /// Set tags on the group (not propagated to instances).
    #[instrument(skip(self, tags), err)]
    pub async fn tag(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags = tags
            .iter()
            .map(|(k, v)| group_tag(name, k).value(v).build());
        self.client
            .create_or_update_tags()
            .set_tags(Some(tags.collect()))
            .send()
            .await
            .map_err(|e| aws_error("autoscaling", "CreateOrUpdateTags", e))?;
        Ok(())
    }

    /// Remove tags from the group.
    #[instrument(skip(self), err)]
    pub async fn untag(&self, name: &str, keys: &[String]) -> Result<()> {
        let tags = keys.iter().map(|k| group_tag(name, k).build());
        self.client
            .delete_tags()
            .set_tags(Some(tags.collect()))
            .send()
            .await
            .map_err(|e| aws_error("autoscaling", "DeleteTags", e))?;
        Ok(())
    }
}

fn group_tag(group: &str, key: &str) -> aws_sdk_autoscaling::types::builders::TagBuilder {
    Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(key)
        .propagate_at_launch(false)
}
