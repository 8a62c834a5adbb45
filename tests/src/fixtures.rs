//! Resources the end-to-end tests and the demo create in the emulator.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, KeyValuePair,
    LaunchType, MountPoint, NetworkConfiguration, NetworkMode, PortMapping, Tag, TransportProtocol,
    Volume,
};

/// The emulator's account.
pub const ACCOUNT: &str = "123456789012";
/// The ECR registry host of the emulator's account.
pub const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// Where a service's tasks run: on EC2 (the task definition's default network mode), or on Fargate
/// (`awsvpc`, FARGATE-compatible, each task with a network interface in the service's subnets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// The EC2 launch type.
    Ec2,
    /// The FARGATE launch type.
    Fargate,
}

/// Run an end-to-end scenario, `async fn name(launch: Launch)`, once on an EC2 service and once
/// on a Fargate service: the tests `name::ec2` and `name::fargate`.
#[macro_export]
macro_rules! on_each_launch {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn ec2() {
                super::$scenario($crate::fixtures::Launch::Ec2).await
            }

            #[tokio::test]
            async fn fargate() {
                super::$scenario($crate::fixtures::Launch::Fargate).await
            }
        }
    };
}

/// Register a task definition with the given containers (name, image), with the fields a clone must
/// keep: environment, ports, mounts, a volume, roles, cpu/memory and a tag.
pub async fn register(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
    containers: &[(&str, &str)],
) -> String {
    register_for(ecs, family, containers, Launch::Ec2).await
}

/// [`register`] for `launch`: for Fargate, network mode `awsvpc` and `requiresCompatibilities`
/// FARGATE besides.
pub async fn register_for(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
    containers: &[(&str, &str)],
    launch: Launch,
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
    let fargate = launch == Launch::Fargate;
    ecs.register_task_definition()
        .family(family)
        .set_network_mode(fargate.then_some(NetworkMode::Awsvpc))
        .set_requires_compatibilities(fargate.then(|| vec![Compatibility::Fargate]))
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
    create_service(ecs, cluster, name, task_definition, tags, None).await
}

/// A VPC of its own with two subnets in two zones and a security group, where a Fargate service's
/// tasks get their network interfaces.
pub async fn task_network(ec2: &aws_sdk_ec2::Client) -> NetworkConfiguration {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.50.0.0/16")
        .send()
        .await
        .expect("create the VPC")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("vpc id");
    let mut subnets = Vec::new();
    for (octet, zone) in [(1, "a"), (2, "b")] {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.50.{octet}.0/24"))
            .availability_zone(format!("us-east-1{zone}"))
            .send()
            .await
            .expect("create a subnet")
            .subnet
            .and_then(|s| s.subnet_id)
            .expect("subnet id");
        subnets.push(subnet);
    }
    let group = ec2
        .create_security_group()
        .group_name(format!("tasks-{vpc}"))
        .description("the service's tasks")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("create the security group")
        .group_id
        .expect("group id");
    let awsvpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(subnets))
        .security_groups(group)
        .assign_public_ip(AssignPublicIp::Disabled)
        .build()
        .expect("awsvpc configuration");
    NetworkConfiguration::builder()
        .awsvpc_configuration(awsvpc)
        .build()
}

/// [`service`] on `launch`: a Fargate service gets its own [`task_network`].
pub async fn service_for(
    ecs: &aws_sdk_ecs::Client,
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    name: &str,
    task_definition: &str,
    tags: &[(&str, &str)],
    launch: Launch,
) -> String {
    let network = match launch {
        Launch::Ec2 => None,
        Launch::Fargate => Some(task_network(ec2).await),
    };
    create_service(ecs, cluster, name, task_definition, tags, network).await
}

async fn create_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    task_definition: &str,
    tags: &[(&str, &str)],
    network: Option<NetworkConfiguration>,
) -> String {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build());
    let launch_type = if network.is_some() {
        LaunchType::Fargate
    } else {
        LaunchType::Ec2
    };
    ecs.create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(task_definition)
        .desired_count(2)
        .launch_type(launch_type)
        .set_network_configuration(network)
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

/// An Auto Scaling group in `us-east-1a` with its own launch configuration; with `pool`, tagged
/// `ops:eip-pool` = `pool` and held at a launch lifecycle hook `<name>-launch` (a bastion group).
pub async fn group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    (min, desired, max): (i32, i32, i32),
    pool: Option<&str>,
) {
    asg.create_launch_configuration()
        .launch_configuration_name(name)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("launch configuration");
    let tags = pool.map(|pool| {
        aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(name)
            .resource_type("auto-scaling-group")
            .key("ops:eip-pool")
            .value(pool)
            .propagate_at_launch(false)
            .build()
    });
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(name)
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones("us-east-1a")
        .set_tags(tags.map(|t| vec![t]))
        .send()
        .await
        .expect("group");
    if pool.is_some() {
        asg.put_lifecycle_hook()
            .auto_scaling_group_name(name)
            .lifecycle_hook_name(format!("{name}-launch"))
            .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
            .default_result("ABANDON")
            .send()
            .await
            .expect("lifecycle hook");
    }
}

/// Group `name` as Auto Scaling describes it now.
pub async fn described_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    asg.describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("describe the group")
        .auto_scaling_groups
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("group {name} does not exist"))
}

/// `count` Elastic IPs in pool `pool`.
pub async fn pool_addresses(ec2: &aws_sdk_ec2::Client, pool: &str, count: usize) {
    for _ in 0..count {
        let allocation = ec2
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .send()
            .await
            .expect("allocate")
            .allocation_id
            .expect("allocation id");
        ec2.create_tags()
            .resources(allocation)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("ops:eip-pool")
                    .value(pool)
                    .build(),
            )
            .send()
            .await
            .expect("tag the address");
    }
}

/// A CPU alarm (greater than 90) that scales `target` (`asg:<group>`), put in ALARM at 95%.
pub async fn cpu_alarm_in_alarm(cloudwatch: &aws_sdk_cloudwatch::Client, name: &str, target: &str) {
    cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(5)
        .threshold(90.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .tags(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key("ops:scale-target")
                .value(target)
                .build(),
        )
        .send()
        .await
        .expect("put the alarm");
    cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("95%")
        .state_reason_data(
            serde_json::json!({"version": "1.0", "recentDatapoints": [95.0]}).to_string(),
        )
        .send()
        .await
        .expect("set the alarm state");
}

/// The role a function runs as, in the emulator (made if need be), with one inline policy
/// (`document`, an IAM policy JSON): what `doctor` asks IAM about. Returns the role's ARN.
pub async fn function_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    document: &serde_json::Value,
) -> String {
    let arn = match iam.get_role().role_name(name).send().await {
        Ok(found) => found.role.expect("role").arn,
        Err(_) => {
            let trust = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
            });
            iam.create_role()
                .role_name(name)
                .assume_role_policy_document(trust.to_string())
                .send()
                .await
                .expect("create the function's role")
                .role
                .expect("role")
                .arn
        }
    };
    put_function_policy(iam, name, document).await;
    arn
}

/// Replace the inline policy of a role [`function_role`] made (to take a grant away, say).
pub async fn put_function_policy(
    iam: &aws_sdk_iam::Client,
    name: &str,
    document: &serde_json::Value,
) {
    iam.put_role_policy()
        .role_name(name)
        .policy_name("function")
        .policy_document(document.to_string())
        .send()
        .await
        .expect("put the role's policy");
}

/// The rows of a `doctor` answer's table, worst first, as the function prints them.
pub fn doctor_table(answer: &serde_json::Value) -> Vec<String> {
    answer["table"]
        .as_array()
        .expect("a doctor answer has a table")
        .iter()
        .map(|row| row.as_str().expect("a row is text").to_string())
        .collect()
}

/// The permission findings of a `doctor` answer: (subject, verdict).
pub fn doctor_permissions(answer: &serde_json::Value) -> Vec<(String, String)> {
    answer["findings"]
        .as_array()
        .expect("a doctor answer has findings")
        .iter()
        .filter(|f| f["area"] == "permission")
        .map(|f| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (text(&f["subject"]), text(&f["verdict"]))
        })
        .collect()
}

/// `document` without the statement whose `Sid` is `sid` (which must be there).
pub fn without_statement(document: &serde_json::Value, sid: &str) -> serde_json::Value {
    let mut document = document.clone();
    let statements = document["Statement"]
        .as_array_mut()
        .expect("Statement is a list");
    let before = statements.len();
    statements.retain(|statement| statement["Sid"] != sid);
    assert_eq!(statements.len(), before - 1, "no statement {sid}");
    document
}

/// deploy-trigger's policy as sam/template.yaml grants it, for a stack managing `cluster` and
/// alerting to `topic` in the emulator's account (TaskRoleNamePattern left at its default `*`): the role `doctor` checks.
pub fn deploy_trigger_policy(cluster: &str, topic: &str) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "FindServicesInManagedClusters", "Effect": "Allow", "Action": "ecs:ListServices", "Resource": "*",
             "Condition": {"StringLike": {"ecs:cluster": [format!("*:cluster/{cluster}")]}}},
            {"Sid": "ReadAndDeployServicesInManagedClusters", "Effect": "Allow",
             "Action": ["ecs:DescribeServices", "ecs:UpdateService"], "Resource": [format!("arn:aws:ecs:*:*:service/{cluster}/*")]},
            {"Sid": "RecordDeploymentStateInItsOwnServiceTags", "Effect": "Allow", "Action": "ecs:TagResource",
             "Resource": [format!("arn:aws:ecs:*:*:service/{cluster}/*")],
             "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["ops:deploy-*"]}}},
            {"Sid": "TagRevisionsOnlyWhileRegisteringThem", "Effect": "Allow", "Action": "ecs:TagResource",
             "Resource": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/*"),
             "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}},
            {"Sid": "ReadTaskDefinitions", "Effect": "Allow", "Action": "ecs:DescribeTaskDefinition", "Resource": "*"},
            {"Sid": "RegisterRevisions", "Effect": "Allow", "Action": "ecs:RegisterTaskDefinition",
             "Resource": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/*")},
            {"Sid": "PassTaskRolesToEcsOnly", "Effect": "Allow", "Action": "iam:PassRole",
             "Resource": format!("arn:aws:iam::{ACCOUNT}:role/*"),
             "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
            {"Sid": "ResolveImagesInOwnRegistry", "Effect": "Allow", "Action": "ecr:DescribeImages",
             "Resource": format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*")},
            {"Sid": "Alert", "Effect": "Allow", "Action": "sns:Publish",
             "Resource": topic},
        ]
    })
}

/// Where a deployment of sam/template.yaml is, for [`template_roles`]: the parameter values, and
/// the values of the template's own resources that its policies name (`Ref` and `Fn::GetAtt`).
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// Template parameters (defaults fill the rest), e.g. `EcsClusterNames` = `prod`.
    pub parameters: BTreeMap<String, String>,
    /// `Ref` of the template's resources, e.g. `AlertTopic` = its ARN.
    pub refs: BTreeMap<String, String>,
    /// `Fn::GetAtt` of the template's resources, as `Logical.Attribute`, e.g. `HealthStateTable.Arn`.
    pub arns: BTreeMap<String, String>,
}

/// A function's role as [`template_roles`] made it.
#[derive(Debug, Clone)]
pub struct TemplateRole {
    /// The role's name.
    pub name: String,
    /// Its ARN, the function's `OPS_ROLE_ARN`.
    pub arn: String,
    /// The one inline policy it holds: every statement the template grants the function.
    pub document: serde_json::Value,
}

/// The stack name [`template_roles`] deploys under.
pub const STACK: &str = "opsstack";

/// Make, in the emulator, the role of every function `sam/template.yaml` deploys for `deployment`
/// (stack [`STACK`]), holding exactly the statements the template grants it, resolved by the
/// emulator's `template_grants` module. Returns function logical id → its role: what `doctor` asks
/// IAM about, so its answer proves the template grants what the code calls.
pub async fn template_roles(
    iam: &aws_sdk_iam::Client,
    deployment: &Deployment,
) -> BTreeMap<String, TemplateRole> {
    const FUNCTIONS: &[&str] = &[
        "DeployTriggerFunction",
        "CpuAlarmScalerFunction",
        "BlueGreenSwapperFunction",
        "BlueGreenSwapperHookFunction",
        "LegacyHealthMonitorFunction",
        "BastionEipAssociatorFunction",
    ];
    let mut refs: BTreeMap<String, String> = deployment.refs.clone();
    let mut arns: BTreeMap<String, String> = deployment.arns.clone();
    for function in FUNCTIONS {
        let role = format!("{STACK}-{function}Role");
        refs.entry(format!("{function}Role"))
            .or_insert(role.clone());
        arns.entry(format!("{function}Role.Arn"))
            .or_insert(format!("arn:aws:iam::{ACCOUNT}:role/{role}"));
    }
    let request = serde_json::json!({
        "region": "us-east-1", "account": ACCOUNT, "stack": STACK,
        "parameters": deployment.parameters, "refs": refs, "arns": arns,
    });
    let root = crate::emulator::workspace_root();
    let output = std::process::Command::new(crate::emulator::emulator_python())
        .args(["-m", "ops_emulator.template_grants"])
        .arg(root.join("sam/template.yaml"))
        .arg(request.to_string())
        .current_dir(root.join("tests/emulator"))
        .output()
        .expect("run the emulator's template_grants");
    assert!(
        output.status.success(),
        "template_grants failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let documents: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("template_grants prints JSON");
    let mut roles = BTreeMap::new();
    for (function, document) in documents {
        let name = refs[&format!("{function}Role")].clone();
        let arn = function_role(iam, &name, &document).await;
        roles.insert(
            function,
            TemplateRole {
                name,
                arn,
                document,
            },
        );
    }
    roles
}

/// A running task of a service as ECS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTask {
    /// Its task definition's ARN.
    pub task_definition: String,
    /// FARGATE or EC2.
    pub launch_type: Option<String>,
    /// For an awsvpc task: its network interface's subnet and private IPv4 address.
    pub interface: Option<(String, std::net::Ipv4Addr)>,
}

/// The RUNNING tasks of `cluster/service`.
pub async fn running_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Vec<RunningTask> {
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .send()
        .await
        .expect("list tasks")
        .task_arns
        .unwrap_or_default();
    if arns.is_empty() {
        return Vec::new();
    }
    let described = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("describe tasks")
        .tasks
        .unwrap_or_default();
    // The emulator's ListTasks, as moto's, does not filter by service: keep this service's tasks.
    let group = format!("service:{service}");
    described
        .into_iter()
        .filter(|t| t.group() == Some(group.as_str()) && t.last_status() == Some("RUNNING"))
        .map(|t| {
            let detail = |name: &str| {
                t.attachments()
                    .iter()
                    .filter(|a| a.r#type() == Some("ElasticNetworkInterface"))
                    .flat_map(|a| a.details())
                    .find(|d| d.name() == Some(name))
                    .and_then(|d| d.value().map(String::from))
            };
            let address = detail("privateIPv4Address").and_then(|ip| ip.parse().ok());
            RunningTask {
                task_definition: t.task_definition_arn().unwrap_or_default().to_string(),
                launch_type: t.launch_type().map(|l| l.as_str().to_string()),
                interface: detail("subnetId").zip(address),
            }
        })
        .collect()
}

/// Whether `address` lies in `subnet`, as EC2 describes the subnet's IPv4 CIDR block.
pub async fn in_subnet(
    ec2: &aws_sdk_ec2::Client,
    subnet: &str,
    address: std::net::Ipv4Addr,
) -> bool {
    let cidr = ec2
        .describe_subnets()
        .subnet_ids(subnet)
        .send()
        .await
        .expect("describe the subnet")
        .subnets
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|s| s.cidr_block)
        .unwrap_or_else(|| panic!("subnet {subnet} has no CIDR block"));
    let (network, bits) = cidr.split_once('/').expect("a CIDR block");
    let (network, bits): (std::net::Ipv4Addr, u32) = (
        network.parse().expect("an IPv4 network"),
        bits.parse().expect("a prefix length"),
    );
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(address) & mask == u32::from(network) & mask
}

/// Assert that `cluster/service` is still a service of `launch` (a Fargate one keeps its launch type
/// and network configuration), and that it runs `count` tasks of `task_definition`, each of a
/// Fargate service with a network interface whose address lies in one of the service's subnets.
pub async fn assert_runs_on(
    ecs: &aws_sdk_ecs::Client,
    ec2: &aws_sdk_ec2::Client,
    (cluster, service): (&str, &str),
    launch: Launch,
    task_definition: &str,
    count: usize,
) {
    let described = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .expect("describe the service")
        .services
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no service {cluster}/{service}"));
    let subnets: Vec<String> = described
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .map(|a| a.subnets().to_vec())
        .unwrap_or_default();
    let expected_launch = match launch {
        Launch::Ec2 => LaunchType::Ec2,
        Launch::Fargate => LaunchType::Fargate,
    };
    assert_eq!(
        described.launch_type(),
        Some(&expected_launch),
        "{service}'s launch type"
    );
    assert_eq!(
        subnets.len(),
        if launch == Launch::Fargate { 2 } else { 0 },
        "{service}'s network configuration: {:?}",
        described.network_configuration()
    );
    let tasks = running_tasks(ecs, cluster, service).await;
    assert_eq!(tasks.len(), count, "{service}'s running tasks: {tasks:#?}");
    for task in &tasks {
        assert_eq!(task.task_definition, task_definition, "{task:#?}");
        assert_eq!(task.launch_type.as_deref(), Some(expected_launch.as_str()));
        match (launch, &task.interface) {
            (Launch::Ec2, None) => {}
            (Launch::Fargate, Some((subnet, address))) => {
                assert!(
                    subnets.contains(subnet),
                    "{subnet} is not one of {subnets:?}"
                );
                assert!(
                    in_subnet(ec2, subnet, *address).await,
                    "{address} not in {subnet}"
                );
            }
            (launch, interface) => panic!("a task on {launch:?} with interface {interface:?}"),
        }
    }
}

/// A Fargate service `prod/<service>` that ECS deploys with its own strategy, made by the
/// emulator's `/_ops/ecs/strategy-service` control (an ALB rule, two `ip` target groups, alarms),
/// its family `<service>` first registered with `first_image`, on a [`task_network`] of its own.
/// `spec` adds to or overrides the control's fields (`strategy`, `alarms`, `tags`, `canary`,
/// `lifecycle_hooks`, ...). With `walk_first`, its first deployment is walked to its end (any hook
/// calls of it taken as SUCCEEDED); else it is left at its first stage for the caller to walk.
/// Returns the first revision's ARN and the control's answer.
pub async fn strategy_service(
    emulator: &crate::Emulator,
    service: &str,
    first_image: &str,
    spec: serde_json::Value,
    walk_first: bool,
) -> (String, serde_json::Value) {
    let sdk = emulator.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let first = register_for(&ecs, service, &[("app", first_image)], Launch::Fargate).await;
    let network = task_network(&aws_sdk_ec2::Client::new(&sdk)).await;
    let awsvpc = network.awsvpc_configuration().expect("awsvpc");
    let mut request = serde_json::json!({
        "cluster": "prod", "service": service, "task_definition": first,
        "network": {"subnets": awsvpc.subnets(), "securityGroups": awsvpc.security_groups()},
    });
    request
        .as_object_mut()
        .expect("an object")
        .extend(spec.as_object().expect("spec is an object").clone());
    let made = emulator
        .control("POST", "/_ops/ecs/strategy-service", Some(request))
        .expect("a service of the strategy");
    if walk_first {
        // Stage by stage to the end, continuing each pause ECS makes on the way.
        loop {
            let walked = emulator
                .control(
                    "POST",
                    "/_ops/ecs/advance-deployment",
                    Some(serde_json::json!({"cluster": "prod", "service": service, "stages": 1})),
                )
                .expect("its first deployment walks on");
            for pause in walked["awaiting"].as_array().into_iter().flatten() {
                ecs.continue_service_deployment()
                    .service_deployment_arn(
                        walked["serviceDeploymentArn"].as_str().unwrap_or_default(),
                    )
                    .hook_id(pause["hookId"].as_str().unwrap_or_default())
                    .send()
                    .await
                    .expect("its first deployment's pause continued");
            }
            if walked["status"] == "SUCCESSFUL" {
                break;
            }
        }
    }
    (first, made)
}

/// The demo's canary: prod/checkout on Fargate behind an ALB rule, deployed by ECS as a CANARY (10%
/// for 5 minutes), opted in to pushes of its repository, gated by its alarm, its lifecycle hooks
/// calling blue-green-swapper's hook function; its first deployment not walked.
pub const CHECKOUT: &str = "checkout";
/// The alarm that gates prod/checkout.
pub const CHECKOUT_ALARM: &str = "checkout-5xx";

/// Make prod/checkout (see [`CHECKOUT`]) with its ECR repository and first image: the emulator's
/// answer (target groups, listener rule).
pub async fn checkout_canary(emulator: &crate::Emulator) -> serde_json::Value {
    let sdk = emulator.sdk_config().await;
    aws_sdk_ecr::Client::new(&sdk)
        .create_repository()
        .repository_name(CHECKOUT)
        .send()
        .await
        .expect("create the repository");
    let (_, made) = strategy_service(
        emulator,
        CHECKOUT,
        &format!("{REGISTRY}/{CHECKOUT}:release-1"),
        serde_json::json!({
            "strategy": "CANARY", "alarms": [CHECKOUT_ALARM],
            "canary": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
            "tags": {
                "ops:deploy-repository": CHECKOUT, "ops:deploy-tag-pattern": "release-+",
                "ops:hook-alarms": CHECKOUT_ALARM,
            },
            "lifecycle_hooks": [{
                "hookTargetArn": format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{STACK}-blue-green-swapper-hook"),
                "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{STACK}-BlueGreenSwapperHookInvokeRole"),
                "lifecycleStages": ["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"],
            }],
        }),
        false,
    )
    .await;
    made
}
