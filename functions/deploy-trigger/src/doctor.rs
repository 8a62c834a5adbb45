//! `doctor`: what deploy-trigger will be asked to do in this account, and whether it can.
//!
//! It reads its managed clusters and every service in them that opted in to deploys, and lists the
//! duties a push, a reconcile tick or a chat command brings for each: find and describe the
//! service, register a revision of its family (tagging it as it registers it), pass the revision's
//! roles to ECS, update the service, record its state in the service's own `ops:deploy-*` tags
//! (the reconcile's claims and settlements among them), resolve images in the repository, and
//! alert. Nothing is changed.

use ops_core::aws::ecs::{clone_duties, EcsServices};
use ops_core::doctor::{arn_beside, Area, Duty, Examination};
use ops_core::registry::Caller;

use crate::config::DeployConfig;
use crate::contract::{self, service_opt_in};
use crate::decide::select_containers;

/// The tags deploy-trigger writes on a service, which its `ecs:TagResource` grant must allow.
const RECORDED_TAGS: &[&str] = &[
    contract::IN_FLIGHT,
    contract::LAST_COMPLETED,
    contract::PREVIOUS_COMPLETED,
    contract::LAST_REPORTED,
    contract::SETTLEMENT,
    contract::NEWEST_PUSHED,
    contract::REFUSED,
];

/// Everything `doctor` checks before IAM and the alert path are asked; `caller` is the account and
/// region the function runs in, whose ECR registry pushes come from.
pub async fn examine(config: &DeployConfig, caller: &Caller, ecs: &EcsServices) -> Examination {
    let topic = &config.common.alert_topic_arn;
    let registry = caller.own_registry();
    let mut exam = Examination::of(&config.common, "alerts every outcome");
    exam.setting("ECS_CLUSTERS", config.clusters.join(", "));
    exam.setting(
        "ALLOWED_REGISTRIES",
        if config.registries.allowed.is_empty() {
            "(the account's own registry only)".to_string()
        } else {
            config.registries.allowed.join(", ")
        },
    );
    if !config.registries.allows(&registry, caller) {
        exam.config_problem(
            "ALLOWED_REGISTRIES",
            format!("every push to this account's ECR ({registry}) would be refused: it is not in the list"),
        );
    }
    exam.duty(Duty::new(
        "ecs:DescribeTaskDefinition",
        "*",
        "reads revisions to clone and to report",
    ));
    let mut opted_in = 0;
    for cluster in &config.clusters {
        let Some(services) = ecs
            .examine_cluster(&mut exam, topic, cluster, "finds opted-in services")
            .await
        else {
            continue;
        };
        exam.found(
            format!("ECS cluster {cluster}"),
            format!("{} service(s)", services.len()),
        );
        for service in services {
            let name = service.qualified_name();
            let opt_in = match service_opt_in(&service) {
                None => continue,
                Some(Err(error)) => {
                    exam.missing(
                        format!("service {name}"),
                        format!("opt-in tags unusable: {error}"),
                    );
                    continue;
                }
                Some(Ok(opt_in)) => opt_in,
            };
            opted_in += 1;
            exam.found(
                format!("service {name}"),
                format!("opted in to pushes of repository `{}`", opt_in.repository),
            );
            let why = |what: &str| format!("{what} {name}");
            exam.duty(
                Duty::new("ecs:DescribeServices", &service.arn, why("reads"))
                    .with_context("ecs:cluster", service.cluster_arn.clone()),
            );
            if service.strategy.native() {
                // The SAR requires `service` for all three, and `service-deployment` or
                // `service-revision` too for the two Describe calls: each is a duty of its own.
                let beside =
                    |kind: &str| service.arn.replacen(":service/", &format!(":{kind}/"), 1) + "/*";
                for (action, resource) in [
                    ("ecs:ListServiceDeployments", service.arn.clone()),
                    ("ecs:DescribeServiceDeployments", service.arn.clone()),
                    (
                        "ecs:DescribeServiceDeployments",
                        beside("service-deployment"),
                    ),
                    ("ecs:DescribeServiceRevisions", service.arn.clone()),
                    ("ecs:DescribeServiceRevisions", beside("service-revision")),
                ] {
                    exam.duty(
                        Duty::new(
                            action,
                            resource,
                            format!("reads the {} deployments of {name}", service.strategy.name),
                        )
                        .with_context("ecs:cluster", service.cluster_arn.clone()),
                    );
                }
            }
            exam.duty(
                Duty::new("ecs:UpdateService", &service.arn, why("deploys to"))
                    .with_context("ecs:cluster", service.cluster_arn.clone())
                    .with_resource_tags(&service.tags),
            );
            exam.duty(
                Duty::new(
                    "ecs:TagResource",
                    &service.arn,
                    why("records deployments on"),
                )
                .with_context_list("aws:TagKeys", RECORDED_TAGS),
            );
            exam.duty(Duty::new(
                "ecr:DescribeImages",
                arn_beside(topic, "ecr", &format!("repository/{}", opt_in.repository)),
                why("resolves pushed images for"),
            ));
            match ecs.task_definition(&service.task_definition).await {
                Ok(revision) => {
                    if let Err(problem) =
                        select_containers(&opt_in, &revision, &registry, &opt_in.repository)
                    {
                        exam.missing(
                            format!("service {name}"),
                            format!("a push could not deploy here: {problem}"),
                        );
                    }
                    for duty in clone_duties(&revision, &name) {
                        exam.duty(duty);
                    }
                }
                Err(error) => exam.missing(
                    format!("revision {} of {name}", service.task_definition),
                    error.to_string(),
                ),
            }
        }
    }
    if opted_in == 0 {
        exam.undetermined(
            Area::Resource,
            "opted-in services",
            format!(
                "no service in {} carries `{}`, so a push deploys nowhere yet",
                config.clusters.join(", "),
                contract::REPOSITORY
            ),
        );
    }
    exam
}
