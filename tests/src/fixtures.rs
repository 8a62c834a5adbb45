//! Resources the end-to-end tests and the demo create in the emulator.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    ContainerDefinition, KeyValuePair, MountPoint, PortMapping, Tag, TransportProtocol, Volume,
};

/// The emulator's account.
pub const ACCOUNT: &str = "123456789012";
/// The ECR registry host of the emulator's account.
pub const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// Register a task definition with the given containers (name, image), with the fields a clone must
/// keep: environment, ports, mounts, a volume, roles, cpu/memory and a tag.
pub async fn register(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
    containers: &[(&str, &str)],
) -> String {
    let definitions = containers.iter().map(|(name, image)| {
        ContainerDefinition::builder()
            .name(*name)
            .image(*image)
            .memory(256)
            .cpu(128)
            .essential(*name == containers[0].0)
            .environment(
                KeyValuePair::builder()
                    .name("APP_ENV")
                    .value("prod")
                    .build(),
            )
            .port_mappings(
                PortMapping::builder()
                    .container_port(8080)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .mount_points(
                MountPoint::builder()
                    .source_volume("scratch")
                    .container_path("/scratch")
                    .build(),
            )
            .build()
    });
    ecs.register_task_definition()
        .family(family)
        .set_container_definitions(Some(definitions.collect()))
        .volumes(Volume::builder().name("scratch").build())
        .task_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{family}-task"))
        .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{family}-execution"))
        .cpu("512")
        .memory("1024")
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .expect("register task definition")
        .task_definition
        .and_then(|d| d.task_definition_arn)
        .expect("task definition arn")
}

/// Create a service running `task_definition` with `tags`.
pub async fn service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    task_definition: &str,
    tags: &[(&str, &str)],
) -> String {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build());
    ecs.create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(task_definition)
        .desired_count(2)
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .expect("create service")
        .service
        .and_then(|s| s.service_arn)
        .expect("service arn")
}

/// ACTIVE revisions of a family, oldest first.
pub async fn revisions(ecs: &aws_sdk_ecs::Client, family: &str) -> Vec<String> {
    ecs.list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .expect("list task definitions")
        .task_definition_arns
        .unwrap_or_default()
        .into_iter()
        .filter(|arn| arn.rsplit('/').next().and_then(|r| r.split(':').next()) == Some(family))
        .collect()
}

/// Container name → image of a task definition.
pub async fn images(ecs: &aws_sdk_ecs::Client, task_definition: &str) -> BTreeMap<String, String> {
    ecs.describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .expect("describe task definition")
        .task_definition
        .map(|d| d.container_definitions.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| Some((c.name?, c.image?)))
        .collect()
}

/// Operations that change AWS, counted at the emulator to prove that bad input changed nothing.
pub const MUTATING_ECS_OPERATIONS: &[&str] = &[
    "RegisterTaskDefinition",
    "DeregisterTaskDefinition",
    "UpdateService",
    "TagResource",
    "UntagResource",
    "CreateService",
    "DeleteService",
];
