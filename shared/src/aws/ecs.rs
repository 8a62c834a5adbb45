//! ECS adapter: services and their deployments as snapshots, task definitions, and the few
//! mutations the functions make (register a revision, point a service at it, tag it).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{ServiceField, Tag, TaskDefinition, TaskDefinitionField};
use serde::Serialize;
use tracing::{instrument, warn};

use super::aws_error;
use super::service_deployments::{self, ServiceDeploymentView, Strategy};
use crate::doctor::{arn_beside, Duty, Examination};
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
    /// When ECS created it, epoch milliseconds (pairs it with its service deployment).
    pub created_at: Option<i64>,
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
    /// Name of the cluster it runs in.
    pub cluster: String,
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
    /// ARNs of the load balancer target groups its tasks are registered in.
    pub target_groups: Vec<String>,
    /// Who runs its deployments: `ECS` (also when ECS names none), `CODE_DEPLOY` or `EXTERNAL`.
    pub deployment_controller: String,
    /// Where its tasks run: its launch type (`EC2`, `FARGATE`, `EXTERNAL`), or the capacity
    /// providers of its strategy, and whether it gives them `awsvpc` network interfaces.
    pub placement: Placement,
    /// How ECS runs its deployments: rolling, or ECS's own blue/green, canary or linear.
    pub strategy: Strategy,
    /// For a blue/green, canary or linear service read with
    /// [`EcsServices::reading_service_deployments_of`]: its newest service deployments, newest first.
    pub service_deployments: Vec<ServiceDeploymentView>,
    /// The service's tags.
    pub tags: BTreeMap<String, String>,
}

/// Where a service's tasks run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Its launch type, when it has one (not with a capacity provider strategy).
    pub launch_type: Option<String>,
    /// The capacity providers of its strategy, in order.
    pub capacity_providers: Vec<String>,
    /// Whether it has an `awsvpc` network configuration (each task its own network interface).
    pub awsvpc: bool,
}

impl Placement {
    /// Whether its tasks run on Fargate (launch type FARGATE, or a FARGATE / FARGATE_SPOT provider).
    pub fn fargate(&self) -> bool {
        self.launch_type.as_deref() == Some("FARGATE")
            || self
                .capacity_providers
                .first()
                .is_some_and(|p| p == "FARGATE" || p == "FARGATE_SPOT")
    }

    /// Why a service placed like this cannot run `definition` (ECS would refuse the update, or
    /// start no task), if it cannot: a Fargate service needs a revision registered for FARGATE,
    /// and the revision's network mode must be `awsvpc` exactly when the service has an `awsvpc`
    /// network configuration (API reference, CreateService / UpdateService: networkConfiguration
    /// "is required for task definitions that use the awsvpc network mode ... and it isn't
    /// supported for other network modes").
    pub fn cannot_run(&self, definition: &TaskDefinition) -> Option<String> {
        let mode = definition
            .network_mode()
            .map_or("the default (bridge)", |m| m.as_str());
        let fargate_ready = definition
            .compatibilities()
            .iter()
            .any(|c| c.as_str() == "FARGATE");
        if self.fargate() && !fargate_ready {
            return Some(
                "the service runs on Fargate and the revision is not registered for it (its requiresCompatibilities has no FARGATE)".into(),
            );
        }
        match (self.awsvpc, mode == "awsvpc") {
            (true, false) => Some(format!(
                "the service gives its tasks awsvpc network interfaces and the revision's network mode is {mode}"
            )),
            (false, true) => Some(
                "the revision's network mode is awsvpc and the service has no awsvpc network configuration for it".into(),
            ),
            _ => None,
        }
    }
}

/// The deployment controller of a service whose deployments ECS itself runs (rolling, or ECS's own
/// blue/green, canary and linear strategies).
pub const ECS_CONTROLLER: &str = "ECS";

impl ServiceState {
    /// The newest deployment, the one ECS is rolling out or has rolled out.
    pub fn primary(&self) -> Option<&DeploymentState> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }

    /// `cluster/service`, how ops name a service.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.cluster, self.name)
    }

    /// The service deployment that stands for `deployment_id` on a blue/green, canary or linear
    /// service (see [`service_deployments::pair`]).
    pub fn service_deployment_of(&self, deployment_id: &str) -> Option<&ServiceDeploymentView> {
        let deployment = self.deployments.iter().find(|d| d.id == deployment_id)?;
        service_deployments::pair(deployment, &self.service_deployments)
    }

    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// Tag on a revision a function registered: the image digest it pins.
pub const IMAGE_DIGEST_TAG: &str = "ops:image-digest";
/// Tag on a revision a function registered: the ARN of the revision it was cloned from.
pub const DERIVED_FROM_TAG: &str = "ops:derived-from";

/// A task definition revision with its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinitionState {
    /// Everything ECS returned about the revision.
    pub definition: TaskDefinition,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl TaskDefinitionState {
    /// The revision's ARN.
    pub fn arn(&self) -> &str {
        self.definition.task_definition_arn().unwrap_or_default()
    }

    /// `family:revision`, how humans name a revision.
    pub fn short_name(&self) -> String {
        short_task_definition(self.arn())
    }

    /// The tags for a revision cloned from this one to pin `digest`: this one's own tags plus
    /// where it came from, so a retry can find it (see [`TaskDefinitionState::is_derived`]).
    pub fn derived_tags(&self, digest: &str) -> BTreeMap<String, String> {
        let mut tags = self.tags.clone();
        tags.insert(IMAGE_DIGEST_TAG.into(), digest.into());
        tags.insert(DERIVED_FROM_TAG.into(), self.arn().into());
        tags
    }

    /// Whether this revision was cloned from `base_arn` to pin `digest`: one an earlier,
    /// interrupted run registered, to be reused rather than registered again.
    pub fn is_derived(&self, base_arn: &str, digest: &str) -> bool {
        self.arn() != base_arn
            && self.tags.get(DERIVED_FROM_TAG).map(String::as_str) == Some(base_arn)
            && self.tags.get(IMAGE_DIGEST_TAG).map(String::as_str) == Some(digest)
    }

    /// Container name to image.
    pub fn images(&self) -> BTreeMap<String, String> {
        self.definition
            .container_definitions()
            .iter()
            .filter_map(|c| Some((c.name()?.to_string(), c.image()?.to_string())))
            .collect()
    }
}

/// What cloning `revision` takes, for `doctor`: register a revision of its family (tagged as it is
/// registered, so `ecs:CreateAction` is in the request) and pass its task and execution roles to
/// ECS tasks. `of` says for what, e.g. `prod/web`. The new revision's number is not known before
/// it exists, so the base revision's ARN stands for it: both fit the same `task-definition/*` grant.
pub fn clone_duties(revision: &TaskDefinitionState, of: &str) -> Vec<Duty> {
    let arn = revision.arn().to_string();
    let base = revision.short_name();
    let mut duties = vec![
        Duty::new(
            "ecs:RegisterTaskDefinition",
            &arn,
            format!("registers revisions of {of} cloned from {base}"),
        ),
        Duty::new(
            "ecs:TagResource",
            &arn,
            format!("tags the revisions of {of} it clones from {base} as it registers them"),
        )
        .with_context("ecs:CreateAction", "RegisterTaskDefinition"),
    ];
    let roles = [
        revision.definition.task_role_arn(),
        revision.definition.execution_role_arn(),
    ];
    for role in roles.into_iter().flatten() {
        duties.push(
            Duty::new(
                "iam:PassRole",
                role,
                format!("passes the role of {base} to the ECS tasks of {of}"),
            )
            .with_context("iam:PassedToService", "ecs-tasks.amazonaws.com"),
        );
    }
    duties
}

/// `family:revision` from a task definition ARN (or the input, if it is not an ARN).
pub fn short_task_definition(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// `(cluster, service)` of a service ARN in its long form,
/// `arn:<partition>:ecs:<region>:<account>:service/<cluster>/<service>`; `None` for anything else.
pub fn cluster_and_service_of(arn: &str) -> Option<(&str, &str)> {
    let (_, path) = arn.split_once(":service/")?;
    let (cluster, service) = path.split_once('/')?;
    (!cluster.is_empty() && !service.is_empty() && !service.contains('/'))
        .then_some((cluster, service))
}

/// The cluster name from a cluster ARN (`arn:...:cluster/<name>`) or a bare name.
pub fn cluster_name(cluster: &str) -> String {
    cluster.rsplit('/').next().unwrap_or(cluster).to_string()
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Reads ECS services through the SDK.
#[derive(Debug, Clone)]
pub struct EcsServices {
    client: aws_sdk_ecs::Client,
    /// Read the service deployments of blue/green, canary and linear services carrying this tag.
    service_deployments_of: Option<&'static str>,
}

impl EcsServices {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        EcsServices {
            client: aws_sdk_ecs::Client::new(config),
            service_deployments_of: None,
        }
    }

    /// The adapter that also reads the service deployments of every blue/green, canary or linear
    /// service it describes that carries the tag `tag` (a function's opt-in: at least three more
    /// calls per such service), and gives their legacy deployments the rollout state those report
    /// (see [`service_deployments::settle_rollouts`]). A read that fails leaves that service
    /// without them (logged), so one service's trouble never fails the others' work.
    pub fn reading_service_deployments_of(mut self, tag: &'static str) -> Self {
        self.service_deployments_of = Some(tag);
        self
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_ecs::Client {
        &self.client
    }

    /// For `doctor`: the ListServices duty of `cluster` (`finds` says what the listing finds) and
    /// its services, described; `None`, the cluster recorded as missing, when they cannot be read.
    /// `topic` is an ARN in the function's account and region (its alert topic).
    pub async fn examine_cluster(
        &self,
        exam: &mut Examination,
        topic: &str,
        cluster: &str,
        finds: &str,
    ) -> Option<Vec<ServiceState>> {
        let cluster_arn = arn_beside(topic, "ecs", &format!("cluster/{cluster}"));
        exam.duty(
            Duty::new("ecs:ListServices", "*", format!("{finds} in {cluster}"))
                .with_context("ecs:cluster", cluster_arn),
        );
        let services = match self.list_services(cluster).await {
            Ok(arns) => self.describe_many(cluster, &arns).await,
            Err(error) => Err(error),
        };
        services
            .map_err(|error| exam.missing(format!("ECS cluster {cluster}"), error.to_string()))
            .ok()
    }

    /// Describe one service with its tags; [`Error::NotFound`] if ECS does not know it.
    #[instrument(skip(self), err)]
    pub async fn describe(&self, cluster: &str, service: &str) -> Result<ServiceState> {
        self.describe_many(cluster, &[service.to_string()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound {
                kind: "ECS service",
                name: format!("{cluster}/{service}"),
            })
    }

    /// Describe services (names or ARNs) with their tags, ten per call; unknown ones are left out.
    #[instrument(skip(self, services), fields(count = services.len()), err)]
    pub async fn describe_many(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<ServiceState>> {
        let mut found = Vec::with_capacity(services.len());
        for batch in services.chunks(10) {
            let answer = self
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.to_vec()))
                .include(ServiceField::Tags)
                .send()
                .await
                .map_err(|e| aws_error("ecs", "DescribeServices", e))?;
            found.extend(
                answer
                    .services()
                    .iter()
                    .filter(|s| s.status() != Some("INACTIVE"))
                    .map(service_state),
            );
        }
        if let Some(tag) = self.service_deployments_of {
            for service in found
                .iter_mut()
                .filter(|s| s.strategy.native() && s.tags.contains_key(tag))
            {
                match service_deployments::read(&self.client, service).await {
                    Ok(read) => {
                        service.service_deployments = read;
                        service_deployments::settle_rollouts(service);
                    }
                    Err(error) => warn!(
                        service = %service.qualified_name(),
                        %error,
                        "service deployments not read; its rollout state stays unknown this time"
                    ),
                }
            }
        }
        Ok(found)
    }

    /// Every service ARN in a cluster.
    #[instrument(skip(self), err)]
    pub async fn list_services(&self, cluster: &str) -> Result<Vec<String>> {
        let mut arns = Vec::new();
        let mut next = None;
        loop {
            let answer = self
                .client
                .list_services()
                .cluster(cluster)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| aws_error("ecs", "ListServices", e))?;
            arns.extend(answer.service_arns().iter().cloned());
            next = answer.next_token().map(String::from);
            if next.is_none() {
                return Ok(arns);
            }
        }
    }

    /// A task definition (ARN, or `family` for its latest ACTIVE revision) with its tags.
    #[instrument(skip(self), err)]
    pub async fn task_definition(&self, task_definition: &str) -> Result<TaskDefinitionState> {
        let answer = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| aws_error("ecs", "DescribeTaskDefinition", e))?;
        let definition = answer
            .task_definition()
            .cloned()
            .ok_or_else(|| Error::NotFound {
                kind: "task definition",
                name: task_definition.to_string(),
            })?;
        Ok(TaskDefinitionState {
            definition,
            tags: from_tags(answer.tags()),
        })
    }

    /// Register a new revision of `base`'s family: every field of `base` kept, container images
    /// replaced as `images` (container name → image) says, and `tags` set. Returns the new ARN.
    #[instrument(skip(self, base, images, tags), fields(family = base.family()), err)]
    pub async fn register_revision(
        &self,
        base: &TaskDefinition,
        images: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let containers = base
            .container_definitions()
            .iter()
            .map(
                |container| match container.name().and_then(|name| images.get(name)) {
                    Some(image) => {
                        let mut changed = container.clone();
                        changed.image = Some(image.clone());
                        changed
                    }
                    None => container.clone(),
                },
            )
            .collect();
        let answer = self
            .client
            .register_task_definition()
            .set_family(base.family.clone())
            .set_task_role_arn(base.task_role_arn.clone())
            .set_execution_role_arn(base.execution_role_arn.clone())
            .set_network_mode(base.network_mode.clone())
            .set_container_definitions(Some(containers))
            .set_volumes(base.volumes.clone())
            .set_placement_constraints(base.placement_constraints.clone())
            .set_requires_compatibilities(base.requires_compatibilities.clone())
            .set_cpu(base.cpu.clone())
            .set_memory(base.memory.clone())
            .set_pid_mode(base.pid_mode.clone())
            .set_ipc_mode(base.ipc_mode.clone())
            .set_proxy_configuration(base.proxy_configuration.clone())
            .set_ephemeral_storage(base.ephemeral_storage.clone())
            .set_runtime_platform(base.runtime_platform.clone())
            .set_enable_fault_injection(base.enable_fault_injection)
            .set_tags(Some(to_tags(tags)).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| aws_error("ecs", "RegisterTaskDefinition", e))?;
        answer
            .task_definition()
            .and_then(|d| d.task_definition_arn())
            .map(String::from)
            .ok_or_else(|| Error::NotFound {
                kind: "registered task definition",
                name: base.family().unwrap_or_default().into(),
            })
    }

    /// Point a service at a task definition; returns the id of the deployment ECS started.
    #[instrument(skip(self), err)]
    pub async fn update_task_definition(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<String> {
        let answer = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| aws_error("ecs", "UpdateService", e))?;
        let deployment = answer
            .service()
            .and_then(|s| {
                s.deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
            })
            .and_then(|d| d.id())
            .unwrap_or_default();
        Ok(deployment.to_string())
    }

    /// Point a service at a task definition and set its desired count in one call.
    #[instrument(skip(self), err)]
    pub async fn deploy(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
        desired: i32,
    ) -> Result<()> {
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .desired_count(desired)
            .send()
            .await
            .map_err(|e| aws_error("ecs", "UpdateService", e))?;
        Ok(())
    }

    /// Set a service's desired count.
    #[instrument(skip(self), err)]
    pub async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> Result<()> {
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired)
            .send()
            .await
            .map_err(|e| aws_error("ecs", "UpdateService", e))?;
        Ok(())
    }

    /// Remove tags from an ECS resource.
    #[instrument(skip(self), err)]
    pub async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("ecs", "UntagResource", e))?;
        Ok(())
    }

    /// Set tags on an ECS resource (service, task definition), overwriting those keys.
    #[instrument(skip(self, tags), err)]
    pub async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map_err(|e| aws_error("ecs", "TagResource", e))?;
        Ok(())
    }
}

fn service_state(found: &aws_sdk_ecs::types::Service) -> ServiceState {
    let cluster_arn = found.cluster_arn().unwrap_or_default().to_string();
    ServiceState {
        arn: found.service_arn().unwrap_or_default().to_string(),
        name: found.service_name().unwrap_or_default().to_string(),
        cluster: cluster_name(&cluster_arn),
        cluster_arn,
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
                created_at: d.created_at().and_then(|t| t.to_millis().ok()),
            })
            .collect(),
        target_groups: found
            .load_balancers()
            .iter()
            .filter_map(|b| b.target_group_arn().map(String::from))
            .collect(),
        strategy: Strategy::of(found.deployment_configuration()),
        service_deployments: Vec::new(),
        deployment_controller: found
            .deployment_controller()
            .map_or(ECS_CONTROLLER, |c| c.r#type().as_str())
            .to_string(),
        placement: Placement {
            launch_type: found.launch_type().map(|l| l.as_str().to_string()),
            capacity_providers: found
                .capacity_provider_strategy()
                .iter()
                .map(|item| item.capacity_provider().to_string())
                .collect(),
            awsvpc: found
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .is_some(),
        },
        tags: from_tags(found.tags()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Compatibility, NetworkMode};

    fn revision(mode: Option<NetworkMode>, compatibilities: &[Compatibility]) -> TaskDefinition {
        TaskDefinition::builder()
            .set_network_mode(mode)
            .set_compatibilities(Some(compatibilities.to_vec()))
            .build()
    }

    #[test]
    fn a_service_arn_names_its_cluster_and_service_only_in_its_long_form() {
        let cases = [
            (
                "arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service",
                Some(("my-cluster", "my-service")),
            ),
            (
                "arn:aws-cn:ecs:cn-north-1:123456789012:service/prod/web",
                Some(("prod", "web")),
            ),
            // The old short form names no cluster.
            (
                "arn:aws:ecs:us-west-2:123456789012:service/my-service",
                None,
            ),
            ("arn:aws:ecs:us-west-2:123456789012:service/prod/", None),
            ("arn:aws:ecs:us-west-2:123456789012:service//web", None),
            (
                "arn:aws:ecs:us-west-2:123456789012:service/prod/web/extra",
                None,
            ),
            ("arn:aws:ecs:us-west-2:123456789012:cluster/prod", None),
            ("", None),
        ];
        for (arn, expected) in cases {
            assert_eq!(cluster_and_service_of(arn), expected, "{arn}");
        }
    }

    #[test]
    fn a_service_runs_only_revisions_its_launch_type_and_network_take() {
        let fargate = Placement {
            launch_type: None,
            capacity_providers: vec!["FARGATE_SPOT".into(), "FARGATE".into()],
            awsvpc: true,
        };
        let ec2 = Placement {
            launch_type: Some("EC2".into()),
            ..Placement::default()
        };
        let fargate_revision = revision(
            Some(NetworkMode::Awsvpc),
            &[Compatibility::Ec2, Compatibility::Fargate],
        );
        let ec2_awsvpc = revision(Some(NetworkMode::Awsvpc), &[Compatibility::Ec2]);
        let bridge = revision(None, &[Compatibility::Ec2]);
        assert_eq!(fargate.cannot_run(&fargate_revision), None);
        assert!(fargate
            .cannot_run(&ec2_awsvpc)
            .is_some_and(|why| why.contains("not registered for it")));
        assert!(fargate
            .cannot_run(&bridge)
            .is_some_and(|why| why.contains("not registered for it")));
        assert_eq!(ec2.cannot_run(&bridge), None);
        assert_eq!(
            ec2.cannot_run(&fargate_revision).as_deref(),
            Some("the revision's network mode is awsvpc and the service has no awsvpc network configuration for it")
        );
        let ec2_awsvpc_service = Placement {
            awsvpc: true,
            ..ec2.clone()
        };
        assert_eq!(
            ec2_awsvpc_service.cannot_run(&bridge).as_deref(),
            Some("the service gives its tasks awsvpc network interfaces and the revision's network mode is the default (bridge)")
        );
        assert_eq!(ec2_awsvpc_service.cannot_run(&ec2_awsvpc), None);
    }
}
