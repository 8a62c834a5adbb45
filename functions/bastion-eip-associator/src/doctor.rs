//! `doctor`: what bastion-eip-associator will be asked to do in this account, and whether it can.
//!
//! It reads its Auto Scaling groups (`BASTION_GROUPS`) with their launch lifecycle hook and the
//! Elastic IP pool each names, every pool of tagged addresses with the addresses in it, and the
//! standalone bastions of those pools, and lists the duties a launch, a standalone bastion starting
//! and the reconcile bring: read groups, addresses and instances; associate a pool address with a
//! bastion (the address's side, scoped by its `ops:eip-pool` tag, and the instance's side); end a
//! departed bastion's association with a pool address, to take the address over (the address's
//! side, scoped by the same tag); complete the group's lifecycle action; and alert. Nothing is
//! changed.

use std::collections::BTreeMap;

use ops_core::aws::autoscaling::{AutoScalingGroups, GroupState};
use ops_core::aws::aws_error;
use ops_core::aws::ec2::{AddressState, Ec2};
use ops_core::doctor::{arn_beside, Duty, Examination};

use crate::config::{AssociatorConfig, FREEING_TAG, GROUP_TAG, POOL_TAG};

/// The lifecycle transition of the hook that holds a launch until the bastion has its address.
const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

/// Everything `doctor` checks before IAM and the alert path are asked.
pub async fn examine(
    config: &AssociatorConfig,
    ec2: &Ec2,
    groups: &AutoScalingGroups,
) -> Examination {
    let topic = &config.common.alert_topic_arn;
    let mut exam = Examination::of(
        &config.common,
        "alerts every address given, taken over or not to be had",
    );
    settings(config, &mut exam);
    exam.duty(Duty::new(
        "ec2:DescribeAddresses",
        "*",
        "reads the Elastic IP pools and verifies each association",
    ));
    exam.duty(Duty::new(
        "ec2:DescribeInstances",
        "*",
        "reads bastions and the holders of pool addresses",
    ));

    // Pool → the groups that name it; and the bastions an address may be associated with.
    let mut pools_of_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bastions: Vec<String> = Vec::new();
    if !config.groups.is_empty() {
        exam.duty(Duty::new(
            "autoscaling:DescribeAutoScalingGroups",
            "*",
            "reads the bastion groups, their pool tag and instances",
        ));
        exam.duty(Duty::new(
            "autoscaling:DescribeLifecycleHooks",
            "*",
            "doctor reads each group's launch lifecycle hook",
        ));
    }
    for name in &config.groups {
        let subject = format!("Auto Scaling group {name}");
        let group = match groups.describe(name).await {
            Ok(group) => group,
            Err(error) => {
                exam.missing(subject, error.to_string());
                continue;
            }
        };
        exam.duty(group_duty(&group));
        let instances = if group.instances.is_empty() {
            "no instances".to_string()
        } else {
            group
                .instances
                .iter()
                .map(|(id, state)| format!("{id} {state}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match group.tags.get(POOL_TAG) {
            Some(pool) => {
                pools_of_groups
                    .entry(pool.clone())
                    .or_default()
                    .push(name.clone());
                exam.found(
                    subject,
                    format!(
                        "pool {pool}; desired {} (min {}, max {}); {instances}",
                        group.desired, group.min, group.max
                    ),
                );
            }
            None => exam.missing(
                subject,
                format!(
                    "has no `{POOL_TAG}` tag naming its Elastic IP pool, so its launches are refused ({instances})"
                ),
            ),
        }
        bastions.extend(group.instances.keys().cloned());
        launch_hook(groups, name, &mut exam).await;
    }

    match ec2.addresses_tagged(POOL_TAG, None).await {
        Ok(addresses) => {
            let mut pools: BTreeMap<String, Vec<AddressState>> = BTreeMap::new();
            for address in addresses {
                if let Some(pool) = address.tags.get(POOL_TAG) {
                    pools.entry(pool.clone()).or_default().push(address);
                }
            }
            for (pool, names) in &pools_of_groups {
                if !pools.contains_key(pool) {
                    exam.missing(
                        format!("Elastic IP pool {pool}"),
                        format!(
                            "no Elastic IP carries `{POOL_TAG}` = `{pool}`, so launches of {} are abandoned",
                            names.join(", ")
                        ),
                    );
                }
            }
            for (pool, addresses) in &pools {
                examine_pool(
                    topic,
                    ec2,
                    pool,
                    addresses,
                    pools_of_groups.get(pool),
                    &mut bastions,
                    &mut exam,
                )
                .await;
            }
        }
        Err(error) => exam.missing("Elastic IP pools", error.to_string()),
    }

    bastions.sort();
    bastions.dedup();
    if bastions.is_empty() {
        // No bastion runs yet: the instance side of the association is asked for any instance.
        exam.duty(instance_duty(topic, "*"));
    }
    for instance in &bastions {
        exam.duty(instance_duty(topic, instance));
    }
    exam
}

/// The configuration as parsed.
fn settings(config: &AssociatorConfig, exam: &mut Examination) {
    exam.setting(
        "AWS_LAMBDA_FUNCTION_NAME",
        config.common.function_name.clone(),
    );
    exam.setting(
        "BASTION_GROUPS",
        if config.groups.is_empty() {
            format!("(none: only standalone bastions tagged `{POOL_TAG}` get addresses)")
        } else {
            config.groups.join(", ")
        },
    );
    exam.setting("ASSOCIATE_ATTEMPTS", config.attempts.to_string());
    exam.setting(
        "ASSOCIATE_RETRY_DELAY_MS",
        config.retry_delay.as_millis().to_string(),
    );
}

/// The group's launch lifecycle hook, which holds a new bastion until it has its address.
async fn launch_hook(groups: &AutoScalingGroups, name: &str, exam: &mut Examination) {
    let answer = groups
        .client()
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(name)
        .send()
        .await
        .map_err(|e| aws_error("autoscaling", "DescribeLifecycleHooks", e));
    let hooks = match answer {
        Ok(answer) => answer.lifecycle_hooks().to_vec(),
        Err(error) => {
            exam.missing(
                format!("launch lifecycle hook of {name}"),
                error.to_string(),
            );
            return;
        }
    };
    let launching: Vec<_> = hooks
        .iter()
        .filter(|h| h.lifecycle_transition() == Some(LAUNCHING))
        .collect();
    if launching.is_empty() {
        exam.missing(
            format!("launch lifecycle hook of {name}"),
            format!(
                "group {name} has no `{LAUNCHING}` hook: its bastions enter service before they have their address, which only the reconcile gives them later"
            ),
        );
    }
    for hook in launching {
        exam.found(
            format!(
                "launch lifecycle hook {} of {name}",
                hook.lifecycle_hook_name().unwrap_or_default()
            ),
            format!(
                "default result {}, heartbeat timeout {}s",
                hook.default_result().unwrap_or("unknown"),
                hook.heartbeat_timeout()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ),
        );
    }
}

/// One pool: its addresses (each a duty: the address side of the association) and the
/// standalone bastions that name it.
async fn examine_pool(
    topic: &str,
    ec2: &Ec2,
    pool: &str,
    addresses: &[AddressState],
    groups: Option<&Vec<String>>,
    bastions: &mut Vec<String>,
    exam: &mut Examination,
) {
    let free = addresses.iter().filter(|a| a.instance_id.is_none()).count();
    exam.found(
        format!("Elastic IP pool {pool}"),
        format!(
            "{} address(es), {free} free; named by {}",
            addresses.len(),
            match groups {
                Some(names) => format!("group(s) {}", names.join(", ")),
                None => "no listed group (standalone bastions only)".to_string(),
            }
        ),
    );
    for address in addresses {
        exam.found(
            format!(
                "Elastic IP {} ({})",
                address.public_ip, address.allocation_id
            ),
            format!(
                "pool {pool}, {}",
                address
                    .instance_id
                    .as_deref()
                    .map(|i| format!("held by {i}"))
                    .unwrap_or_else(|| "free".into())
            ),
        );
        exam.duty(address_duty(topic, address));
        exam.duty(takeover_duty(topic, address));
        for duty in mark_duties(topic, address) {
            exam.duty(duty);
        }
    }
    match ec2.running_tagged(POOL_TAG, pool).await {
        Ok(instances) => {
            for instance in instances
                .into_iter()
                .filter(|i| !i.tags.contains_key(GROUP_TAG))
            {
                exam.found(
                    format!("standalone bastion {}", instance.id),
                    format!("pool {pool}, {}", instance.state),
                );
                bastions.push(instance.id);
            }
        }
        Err(error) => exam.missing(
            format!("standalone bastions of pool {pool}"),
            error.to_string(),
        ),
    }
}

/// The address side of `AssociateAddress`: the policy lets only addresses of a pool move.
pub fn address_duty(topic: &str, address: &AddressState) -> Duty {
    Duty::new(
        "ec2:AssociateAddress",
        arn_beside(
            topic,
            "ec2",
            &format!("elastic-ip/{}", address.allocation_id),
        ),
        format!(
            "associates {} with a bastion of its pool",
            address.public_ip
        ),
    )
    .with_resource_tags(&address.tags)
}

/// `DisassociateAddress` on a pool address: a takeover first ends the departed holder's association
/// by its id (and a launch whose action ended meanwhile gives its address back the same way). The
/// policy lets only addresses of a pool be freed.
pub fn takeover_duty(topic: &str, address: &AddressState) -> Duty {
    Duty::new(
        "ec2:DisassociateAddress",
        arn_beside(
            topic,
            "ec2",
            &format!("elastic-ip/{}", address.allocation_id),
        ),
        format!(
            "frees {} from a stopped or terminated bastion to take it over",
            address.public_ip
        ),
    )
    .with_resource_tags(&address.tags)
}

/// `CreateTags` and `DeleteTags` of the freeing mark on a pool address: a takeover marks the address
/// before it frees it and removes the mark once the address is settled. The policy lets only that
/// tag key be written, and only on addresses of a pool.
pub fn mark_duties(topic: &str, address: &AddressState) -> Vec<Duty> {
    let arn = arn_beside(
        topic,
        "ec2",
        &format!("elastic-ip/{}", address.allocation_id),
    );
    [
        ("ec2:CreateTags", "marks"),
        ("ec2:DeleteTags", "clears the mark on"),
    ]
    .into_iter()
    .map(|(action, verb)| {
        Duty::new(
            action,
            arn.clone(),
            format!(
                "{verb} {} while taking it over ({FREEING_TAG})",
                address.public_ip
            ),
        )
        .with_resource_tags(&address.tags)
        .with_context_list("aws:TagKeys", &[FREEING_TAG])
    })
    .collect()
}

/// The instance side of `AssociateAddress` (`*`: any instance, before a bastion runs).
pub fn instance_duty(topic: &str, instance: &str) -> Duty {
    Duty::new(
        "ec2:AssociateAddress",
        arn_beside(topic, "ec2", &format!("instance/{instance}")),
        "associates a pool address with this bastion",
    )
}

/// Completing a launch held at the group's lifecycle hook.
pub fn group_duty(group: &GroupState) -> Duty {
    Duty::new(
        "autoscaling:CompleteLifecycleAction",
        &group.arn,
        format!("completes launches of {} held at its hook", group.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";

    #[test]
    fn an_address_is_asked_about_with_the_pool_tag_the_policy_tests() {
        let address = AddressState {
            allocation_id: "eipalloc-0123456789abcdef0".into(),
            public_ip: "203.0.113.10".into(),
            instance_id: None,
            association_id: None,
            tags: BTreeMap::from([(POOL_TAG.to_string(), "bastion".to_string())]),
        };
        for (duty, action) in [
            (address_duty(TOPIC, &address), "ec2:AssociateAddress"),
            (takeover_duty(TOPIC, &address), "ec2:DisassociateAddress"),
        ] {
            assert_eq!(duty.action, action);
            assert_eq!(
                duty.resource,
                "arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-0123456789abcdef0"
            );
            assert_eq!(duty.context[0].key, "aws:ResourceTag/ops:eip-pool");
            assert_eq!(duty.context[0].values, ["bastion"]);
        }
    }

    #[test]
    fn the_instance_side_and_the_lifecycle_action_name_their_resources() {
        assert_eq!(
            instance_duty(TOPIC, "i-0abcdef1234567890").resource,
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0abcdef1234567890"
        );
        let group = GroupState {
            name: "bastion".into(),
            arn: "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:5c6e1f3a-0000-4000-8000-000000000000:autoScalingGroupName/bastion".into(),
            min: 1,
            max: 3,
            desired: 1,
            instances: BTreeMap::new(),
            tags: BTreeMap::new(),
        };
        let duty = group_duty(&group);
        assert_eq!(
            (duty.action.as_str(), duty.resource.as_str()),
            ("autoscaling:CompleteLifecycleAction", group.arn.as_str())
        );
    }
}
