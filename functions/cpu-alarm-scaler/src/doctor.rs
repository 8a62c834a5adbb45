//! `doctor`: what cpu-alarm-scaler will be asked to do in this account, and whether it can.
//!
//! It reads what its runs read: every alarm that opted in (`ops:scale-target`) and the target each
//! names, its Auto Scaling groups (capacity, native scaling) and the services of its ECS clusters
//! (bounds, native scaling). Then it lists the duties an alarm, the schedule or a chat command
//! brings: list alarms and read their tags, read groups, services and native scaling, set a
//! group's or a service's capacity, keep its own `ops:scale-*` tags on the target, and alert.
//! Nothing is changed.

use std::collections::{BTreeMap, BTreeSet};

use ops_core::aws::autoscaling::GroupState;
use ops_core::aws::ecs::ServiceState;
use ops_core::doctor::{arn_beside, Area, Duty, Examination};

use crate::config::ScalerConfig;
use crate::contract::{self, TargetRef};
use crate::decide::Coexistence;
use crate::observe::{alarm_view, service_bounds, Clients};

/// The tags the scaler writes on a target (its memory and the overrides from chat), which its
/// tagging grants must allow.
pub const RECORDED_TAGS: &[&str] = &[
    contract::OUT_AT,
    contract::IN_AT,
    contract::LAST,
    contract::OVERRIDE,
];

/// The tags the scaler removes from a target (an override that ended).
pub const FORGOTTEN_TAGS: &[&str] = &[contract::OVERRIDE];

/// Everything `doctor` checks before IAM and the alert path are asked.
pub async fn examine(config: &ScalerConfig, clients: &Clients) -> Examination {
    let mut exam = Examination::of(&config.common, "alerts every scaling and problem");
    let listed = |names: &[String]| {
        if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        }
    };
    exam.setting("AUTOSCALING_GROUPS", listed(&config.groups));
    exam.setting("ECS_CLUSTERS", listed(&config.clusters));
    exam.setting(
        "COEXISTENCE",
        match config.coexistence {
            Coexistence::Refuse => "refuse (a target with native scaling is left alone)",
            Coexistence::Warn => {
                "warn (a target with native scaling is scaled anyway, with a warning)"
            }
        },
    );

    let targets = examine_alarms(config, clients, &mut exam).await;
    for name in &config.groups {
        examine_group(config, clients, name, &mut exam).await;
    }
    for cluster in &config.clusters {
        examine_cluster(config, clients, cluster, &targets, &mut exam).await;
    }
    exam
}

/// The opted-in alarms, each checked as a run would read it; the targets they name (those the
/// configuration allows).
async fn examine_alarms(
    config: &ScalerConfig,
    clients: &Clients,
    exam: &mut Examination,
) -> BTreeMap<TargetRef, Vec<String>> {
    let every_alarm = arn_beside(&config.common.alert_topic_arn, "cloudwatch", "alarm:*");
    exam.duty(Duty::new(
        "cloudwatch:DescribeAlarms",
        &every_alarm,
        "lists the alarms to re-evaluate on schedule and to show in status",
    ));
    exam.duty(Duty::new(
        "cloudwatch:ListTagsForResource",
        &every_alarm,
        "reads every listed alarm's tags to find those that opted in",
    ));
    let mut targets: BTreeMap<TargetRef, Vec<String>> = BTreeMap::new();
    let alarms = match clients.alarms.tagged(contract::TARGET, false).await {
        Ok(alarms) => alarms,
        Err(error) => {
            exam.missing("CloudWatch alarms", error.to_string());
            return targets;
        }
    };
    for alarm in &alarms {
        let subject = format!("alarm {}", alarm.name);
        exam.duty(Duty::new(
            "cloudwatch:DescribeAlarms",
            &alarm.arn,
            format!("reads {} when it changes state", alarm.name),
        ));
        exam.duty(Duty::new(
            "cloudwatch:ListTagsForResource",
            &alarm.arn,
            format!("reads the scaling tags of {}", alarm.name),
        ));
        let view = match alarm_view(alarm) {
            Ok(view) => view,
            Err(error) => {
                exam.missing(subject, error.to_string());
                continue;
            }
        };
        let target = view.policy.target.clone();
        if !config.allows(&target) {
            exam.missing(
                subject,
                format!(
                    "targets {target}, which is not in AUTOSCALING_GROUPS / ECS_CLUSTERS: the scaler refuses it"
                ),
            );
            continue;
        }
        exam.found(
            subject,
            format!(
                "{}/{} {} {}, scales {target} (cooldown {} s), now {}",
                alarm.namespace,
                view.metric,
                if view.greater { ">" } else { "<" },
                view.threshold,
                view.policy.cooldown,
                alarm.state
            ),
        );
        targets.entry(target).or_default().push(alarm.name.clone());
    }
    if alarms.is_empty() {
        exam.undetermined(
            Area::Resource,
            "opted-in alarms",
            format!(
                "no metric alarm carries `{}`, so nothing scales yet",
                contract::TARGET
            ),
        );
    }
    targets
}

/// One configured Auto Scaling group: it exists, its native scaling, and the scaler's duties on it.
async fn examine_group(
    config: &ScalerConfig,
    clients: &Clients,
    name: &str,
    exam: &mut Examination,
) {
    let subject = format!("Auto Scaling group {name}");
    for (action, why) in [
        (
            "autoscaling:DescribeAutoScalingGroups",
            "reads capacity, instances and its own tags",
        ),
        (
            "autoscaling:DescribePolicies",
            "does not fight a group's native scaling policies",
        ),
        (
            "autoscaling:DescribeScheduledActions",
            "does not fight a group's scheduled actions",
        ),
    ] {
        exam.duty(Duty::new(action, "*", why));
    }
    let group = match clients.groups.describe(name).await {
        Ok(group) => group,
        Err(error) => {
            exam.missing(subject, error.to_string());
            return;
        }
    };
    exam.found(
        subject,
        format!(
            "desired {} (min {}, max {}), {} instance(s)",
            group.desired,
            group.min,
            group.max,
            group.instances.len()
        ),
    );
    match clients.groups.native_scaling(name).await {
        Ok(native) => native_scaling(config, &format!("asg:{name}"), &native, exam),
        Err(error) => exam.missing(format!("native scaling of asg:{name}"), error.to_string()),
    }
    for duty in group_duties(&group) {
        exam.duty(duty);
    }
}

/// The scaler's writes on a group: its capacity, and its own tags on it.
pub fn group_duties(group: &GroupState) -> Vec<Duty> {
    let why = |what: &str| format!("{what} asg:{}", group.name);
    let with_tags = |duty: Duty| {
        group.tags.iter().fold(duty, |duty, (key, value)| {
            duty.with_context(format!("autoscaling:ResourceTag/{key}"), value.clone())
                .with_context(format!("aws:ResourceTag/{key}"), value.clone())
        })
    };
    vec![
        with_tags(Duty::new(
            "autoscaling:SetDesiredCapacity",
            &group.arn,
            why("scales"),
        )),
        with_tags(
            Duty::new(
                "autoscaling:CreateOrUpdateTags",
                &group.arn,
                why("remembers cooldowns and overrides on"),
            )
            .with_context_list("aws:TagKeys", RECORDED_TAGS),
        ),
        with_tags(
            Duty::new(
                "autoscaling:DeleteTags",
                &group.arn,
                why("ends overrides on"),
            )
            .with_context_list("aws:TagKeys", FORGOTTEN_TAGS),
        ),
    ]
}

/// One configured ECS cluster: its services, the scalable ones checked as a run reads them, and
/// the scaler's duties on each.
async fn examine_cluster(
    config: &ScalerConfig,
    clients: &Clients,
    cluster: &str,
    targets: &BTreeMap<TargetRef, Vec<String>>,
    exam: &mut Examination,
) {
    let Some(services) = clients
        .ecs
        .examine_cluster(
            exam,
            &config.common.alert_topic_arn,
            cluster,
            "finds services with overrides",
        )
        .await
    else {
        return;
    };
    let named: BTreeSet<&str> = targets
        .keys()
        .filter_map(|t| match t {
            TargetRef::Service {
                cluster: c,
                service,
            } if c == cluster => Some(service.as_str()),
            _ => None,
        })
        .collect();
    let scalable: Vec<&ServiceState> = services
        .iter()
        .filter(|s| named.contains(s.name.as_str()) || is_scalable(s))
        .collect();
    exam.found(
        format!("ECS cluster {cluster}"),
        format!(
            "{} service(s), {} of them scaled by the scaler",
            services.len(),
            scalable.len()
        ),
    );
    for service in &services {
        // The schedule reads every service of the cluster, looking for overrides to end.
        exam.duty(
            Duty::new(
                "ecs:DescribeServices",
                &service.arn,
                format!("reads {}", service.qualified_name()),
            )
            .with_context("ecs:cluster", service.cluster_arn.clone()),
        );
    }
    for service in scalable {
        let target = format!("ecs:{}", service.qualified_name());
        let reference = TargetRef::Service {
            cluster: cluster.to_string(),
            service: service.name.clone(),
        };
        match service_bounds(&reference, service) {
            Ok((min, max)) => exam.found(
                format!("service {target}"),
                format!("desired {} (min {min}, max {max})", service.desired),
            ),
            Err(error) => exam.missing(format!("service {target}"), error.to_string()),
        }
        match clients
            .scalable
            .native_scaling_of_service(cluster, &service.name)
            .await
        {
            Ok(native) => native_scaling(config, &target, &native, exam),
            Err(error) => exam.missing(format!("native scaling of {target}"), error.to_string()),
        }
        for duty in service_duties(service) {
            exam.duty(duty);
        }
    }
    for service in named {
        if !services.iter().any(|s| s.name == service) {
            let alarms = targets
                .get(&TargetRef::Service {
                    cluster: cluster.to_string(),
                    service: service.to_string(),
                })
                .map(|a| a.join(", "))
                .unwrap_or_default();
            exam.missing(
                format!("service ecs:{cluster}/{service}"),
                format!("named by alarm {alarms}, but cluster {cluster} has no such service"),
            );
        }
    }
}

/// Whether a service carries the scaler's tags: its bounds, or an override or memory of the scaler.
fn is_scalable(service: &ServiceState) -> bool {
    [
        contract::SERVICE_MIN,
        contract::SERVICE_MAX,
        contract::OVERRIDE,
        contract::LAST,
    ]
    .iter()
    .any(|tag| service.tags.contains_key(*tag))
}

/// The scaler's duties on a service it scales: its desired count, its own tags on it, and its
/// native scaling (read, not to fight it).
pub fn service_duties(service: &ServiceState) -> Vec<Duty> {
    let name = service.qualified_name();
    let why = |what: &str| format!("{what} ecs:{name}");
    vec![
        Duty::new("ecs:UpdateService", &service.arn, why("scales"))
            .with_context("ecs:cluster", service.cluster_arn.clone())
            .with_resource_tags(&service.tags),
        Duty::new(
            "ecs:TagResource",
            &service.arn,
            why("remembers cooldowns and overrides on"),
        )
        .with_context_list("aws:TagKeys", RECORDED_TAGS)
        .with_resource_tags(&service.tags),
        Duty::new("ecs:UntagResource", &service.arn, why("ends overrides on"))
            .with_context_list("aws:TagKeys", FORGOTTEN_TAGS)
            .with_resource_tags(&service.tags),
        Duty::new(
            "application-autoscaling:DescribeScalingPolicies",
            "*",
            "does not fight a service's native scaling policies",
        ),
        Duty::new(
            "application-autoscaling:DescribeScheduledActions",
            "*",
            "does not fight a service's scheduled actions",
        ),
    ]
}

/// A target's native scaling: with `refuse`, the scaler leaves such a target alone.
fn native_scaling(config: &ScalerConfig, target: &str, native: &[String], exam: &mut Examination) {
    let subject = format!("native scaling of {target}");
    match (native.is_empty(), config.coexistence) {
        (true, _) => exam.found(subject, "none: the scaler is its only scaler"),
        (false, Coexistence::Refuse) => exam.missing(
            subject,
            format!(
                "{}: with COEXISTENCE=refuse the scaler leaves {target} alone",
                native.join(", ")
            ),
        ),
        (false, Coexistence::Warn) => exam.found(
            subject,
            format!(
                "{}: scaled anyway (COEXISTENCE=warn); they may work against each other",
                native.join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupState {
        GroupState {
            name: "workers".into(),
            arn: "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:0f1e:autoScalingGroupName/workers".into(),
            min: 1,
            max: 6,
            desired: 2,
            instances: BTreeMap::new(),
            tags: BTreeMap::from([("team".to_string(), "batch".to_string())]),
        }
    }

    fn service(tags: &[(&str, &str)]) -> ServiceState {
        ServiceState {
            arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/web".into(),
            name: "web".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            cluster: "prod".into(),
            status: "ACTIVE".into(),
            desired: 2,
            running: 2,
            task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1".into(),
            deployments: Vec::new(),
            target_groups: Vec::new(),
            deployment_controller: ops_core::aws::ecs::ECS_CONTROLLER.into(),
            placement: Default::default(),
            strategy: Default::default(),
            service_deployments: Vec::new(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn every_tag_the_scaler_writes_or_removes_is_one_of_its_own_scale_tags() {
        // sam/template.yaml scopes the scaler's ECS tagging to `aws:TagKeys` like `ops:scale-*`:
        // a tag it writes outside that would be denied.
        for key in RECORDED_TAGS.iter().chain(FORGOTTEN_TAGS) {
            assert!(key.starts_with("ops:scale-"), "{key}");
        }
        for key in [
            contract::OUT_AT,
            contract::IN_AT,
            contract::LAST,
            contract::OVERRIDE,
        ] {
            assert!(RECORDED_TAGS.contains(&key), "{key}");
        }
    }

    #[test]
    fn a_group_s_duties_name_its_arn_the_tag_keys_written_and_its_tags() {
        let duties = group_duties(&group());
        let actions: Vec<&str> = duties.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "autoscaling:SetDesiredCapacity",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:DeleteTags"
            ]
        );
        assert!(duties.iter().all(|d| d.resource == group().arn));
        let keys = |duty: &Duty| -> Vec<(String, Vec<String>)> {
            duty.context
                .iter()
                .map(|c| (c.key.clone(), c.values.clone()))
                .collect()
        };
        assert_eq!(
            keys(&duties[0]),
            [
                (
                    "autoscaling:ResourceTag/team".to_string(),
                    vec!["batch".to_string()]
                ),
                (
                    "aws:ResourceTag/team".to_string(),
                    vec!["batch".to_string()]
                ),
            ]
        );
        assert_eq!(
            keys(&duties[2])[0],
            (
                "aws:TagKeys".to_string(),
                vec!["ops:scale-override".to_string()]
            )
        );
    }

    #[test]
    fn a_service_s_duties_carry_its_cluster_and_its_tags() {
        let web = service(&[("ops:scale-min", "1"), ("ops:scale-max", "8")]);
        let duties = service_duties(&web);
        let update = &duties[0];
        assert_eq!(
            (update.action.as_str(), update.resource.as_str()),
            ("ecs:UpdateService", web.arn.as_str())
        );
        assert_eq!(update.context[0].key, "ecs:cluster");
        assert_eq!(update.context[0].values, [web.cluster_arn.as_str()]);
        assert!(update
            .context
            .iter()
            .any(|c| c.key == "aws:ResourceTag/ops:scale-max" && c.values == ["8"]));
        assert_eq!(duties[1].action, "ecs:TagResource");
        assert_eq!(duties[1].context[0].values.len(), RECORDED_TAGS.len());
        assert_eq!(
            duties.iter().filter(|d| d.resource == "*").count(),
            2,
            "Application Auto Scaling reads have no resource type"
        );
    }

    #[test]
    fn a_service_carrying_the_scaler_s_tags_is_one_it_scales() {
        assert!(is_scalable(&service(&[("ops:scale-min", "1")])));
        assert!(is_scalable(&service(&[("ops:scale-override", "x")])));
        assert!(!is_scalable(&service(&[("team", "web")])));
    }
}
