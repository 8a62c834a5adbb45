//! Crash-point convergence of the functions that change AWS (blue-green-swapper has its own suite):
//! for every k, the k-th AWS call of an operation fails and is not retried by the SDK (as if the
//! function died there), Lambda delivers the event again until it settles, and the end state must
//! be the one a clean run gives: one revision and one deployment per push, one scaling step per
//! alarm (alerted, at least once), one address and one CONTINUE per launch.

use std::future::Future;

use ops_core::alert::MemoryAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_e2e::events::alarm_state_change;
use ops_e2e::fixtures::{self, Launch, ACCOUNT, REGISTRY};
use ops_e2e::on_each_launch;
use ops_e2e::redeliver::until_settled;
use ops_e2e::Emulator;
use serde_json::{json, Value};

const T0: u64 = 1_795_000_000;

/// Settings that try each AWS call once: a failed call fails the invocation.
async fn one_attempt(emulator: &Emulator) -> aws_config::SdkConfig {
    sdk_config(&AwsSettings {
        max_attempts: 1,
        ..emulator.settings()
    })
    .await
}

/// Run `scenario` clean to count its calls, then once more for every k failing the k-th call,
/// each on a fresh emulator; every outcome must equal the clean one. The matrix row is printed.
async fn matrix<S, F>(function: &str, scenario: S)
where
    S: Fn(Option<u64>) -> F,
    F: Future<Output = (String, u64)>,
{
    let (clean, total) = scenario(None).await;
    assert!(total > 0);
    let mut row = Vec::new();
    for k in 1..=total {
        let (outcome, _) = scenario(Some(k)).await;
        assert_eq!(
            outcome, clean,
            "{function}: a failure at call {k} of {total} did not converge"
        );
        row.push(k);
    }
    println!(
        "crash-point matrix: {function}, {total} AWS calls, k = 1..={total}: all {} converged to: {clean}",
        row.len()
    );
}

/// Arm the fault after the setup's own calls: the k-th call from now fails once.
fn arm(emulator: &Emulator, fault_at: Option<u64>) {
    emulator.reset_calls();
    if let Some(k) = fault_at {
        emulator
            .add_fault(json!({"service": "*", "kind": "error500", "on_calls": [k], "times": 1}));
    }
}

/// Check the armed fault fired (when there was one) and stop it before reading the end state.
fn disarm(emulator: &Emulator, fault_at: Option<u64>) -> u64 {
    let made = emulator.total_calls();
    if fault_at.is_some() {
        assert_eq!(
            emulator.faults_fired(),
            1,
            "the fault at call {fault_at:?} fired"
        );
        emulator.control("DELETE", "/_ops/faults", None).unwrap();
    }
    made
}

async fn deploy_trigger_converges_from_a_failure_at_any_call_of_a_push(launch: Launch) {
    use deploy_trigger::config::DeployConfig;
    use deploy_trigger::handler::{function_handler, Deps, Invocation};
    use ops_core::aws::ecr::EcrImages;
    use ops_core::aws::ecs::EcsServices;
    use ops_core::aws::iam::IamSimulator;

    let function = format!("deploy-trigger (ECR push to an opted-in {launch:?} service)");
    matrix(&function, |fault_at| async move {
        let emulator = Emulator::start();
        let setup = emulator.sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&setup);
        ecs.create_cluster().cluster_name("prod").send().await.unwrap();
        EcrImages::new(&setup).client().create_repository().repository_name("web").send().await.unwrap();
        let first = fixtures::register_for(&ecs, "web", &[("app", &format!("{REGISTRY}/web:release-41"))], launch).await;
        let ec2 = aws_sdk_ec2::Client::new(&setup);
        fixtures::service_for(&ecs, &ec2, "prod", "web", &first, &[("ops:deploy-repository", "web"), ("ops:deploy-tag-pattern", "release-+")], launch).await;
        let pushed = emulator.control("POST", "/_ops/ecr/push", Some(json!({"repository": "web", "tag": "release-42"}))).unwrap();
        let sdk = one_attempt(&emulator).await;
        let env = Env::from_pairs([("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:ops-alerts"), ("ECS_CLUSTERS", "prod")]);
        let deps = Deps { ecs: EcsServices::new(&sdk), iam: IamSimulator::new(&sdk), ecr: EcrImages::new(&sdk), alerts: MemoryAlerts::default(), config: DeployConfig::from_env(&env).unwrap() };
        let invocation = Invocation { caller: Caller { account_id: ACCOUNT.into(), region: "us-east-1".into() }, now: T0 };
        arm(&emulator, fault_at);
        until_settled(20, || function_handler(pushed["event"].clone(), &invocation, &deps)).await.expect("the push settles");
        let made = disarm(&emulator, fault_at);
        let service = ecs.describe_services().cluster("prod").services("web").include(aws_sdk_ecs::types::ServiceField::Tags).send().await.unwrap().services.unwrap().remove(0);
        let runs = service.task_definition.clone().unwrap();
        let image = fixtures::images(&ecs, &runs).await["app"].clone();
        let deployments = service.deployments.unwrap_or_default().len();
        let in_flight = service.tags.unwrap_or_default().iter().any(|t| t.key() == Some("ops:deploy-in-flight"));
        let revisions = fixtures::revisions(&ecs, "web").await.len();
        let outcome = format!(
            "runs {}, image {image}, {deployments} deployments, in-flight recorded: {in_flight}, {revisions} revisions",
            runs.rsplit('/').next().unwrap()
        );
        (outcome.replace(pushed["digest"].as_str().unwrap(), "<pushed digest>"), made)
    })
    .await;
}

on_each_launch!(deploy_trigger_converges_from_a_failure_at_any_call_of_a_push);

/// Deliver the ALARM of `alarm` to cpu-alarm-scaler, configured by `env`, until it settles, every
/// AWS call tried once and the `fault_at`-th failing; the AWS calls made and the alerts sent, which
/// are at most two (at least once: a run that dies between alerting and recording it alerts again).
async fn scale_out_settles(
    emulator: &Emulator,
    env: &[(&str, &str)],
    alarm: &str,
    fault_at: Option<u64>,
) -> (u64, usize) {
    use cpu_alarm_scaler::config::ScalerConfig;
    use cpu_alarm_scaler::handler::{function_handler, Deps, Invocation};
    use cpu_alarm_scaler::observe::Clients;
    use ops_core::aws::appscaling::ScalableTargets;
    use ops_core::aws::autoscaling::AutoScalingGroups;
    use ops_core::aws::cloudwatch::CloudWatchAlarms;
    use ops_core::aws::ecs::EcsServices;

    let sdk = one_attempt(emulator).await;
    let env = Env::from_pairs(
        [(
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:ops-alerts",
        )]
        .into_iter()
        .chain(env.iter().copied()),
    );
    let deps = Deps {
        clients: Clients {
            alarms: CloudWatchAlarms::new(&sdk),
            groups: AutoScalingGroups::new(&sdk),
            ecs: EcsServices::new(&sdk),
            scalable: ScalableTargets::new(&sdk),
        },
        iam: ops_core::aws::iam::IamSimulator::new(&sdk),
        alerts: MemoryAlerts::default(),
        config: ScalerConfig::from_env(&env).unwrap(),
    };
    let event = alarm_state_change(alarm, "ALARM", T0);
    arm(emulator, fault_at);
    until_settled(20, || {
        function_handler(event.clone(), &Invocation { now: T0 }, &deps)
    })
    .await
    .expect("the alarm settles");
    let made = disarm(emulator, fault_at);
    let scalings = deps.alerts.sent().len();
    assert!(
        scalings <= 2,
        "a failure at call {fault_at:?} sent {scalings} alerts"
    );
    (made, scalings)
}

/// The `ops:scale*` tag keys among `keys`, sorted.
fn scale_tags<'a>(keys: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    let mut tags: Vec<String> = keys
        .flatten()
        .filter(|k| k.starts_with("ops:scale"))
        .map(String::from)
        .collect();
    tags.sort();
    tags
}

#[tokio::test]
async fn cpu_alarm_scaler_converges_from_a_failure_at_any_call_of_a_scale_out() {
    matrix(
        "cpu-alarm-scaler (alarm to ALARM, one step out of a group)",
        |fault_at| async move {
            let emulator = Emulator::start();
            let setup = emulator.sdk_config().await;
            let asg = aws_sdk_autoscaling::Client::new(&setup);
            fixtures::group(&asg, "workers", (1, 2, 6), None).await;
            let cloudwatch = aws_sdk_cloudwatch::Client::new(&setup);
            fixtures::cpu_alarm_in_alarm(&cloudwatch, "workers-cpu-high", "asg:workers").await;
            let env = [("AUTOSCALING_GROUPS", "workers")];
            let (made, scalings) =
                scale_out_settles(&emulator, &env, "workers-cpu-high", fault_at).await;
            let group = fixtures::described_group(&asg, "workers").await;
            let tags = scale_tags(group.tags().iter().map(|t| t.key()));
            (
                format!(
                    "desired {}, tags {tags:?}, scaling alerted: {}",
                    group.desired_capacity.unwrap(),
                    scalings >= 1
                ),
                made,
            )
        },
    )
    .await;
}

async fn cpu_alarm_scaler_converges_from_a_failure_at_any_call_of_a_service_scale_out(
    launch: Launch,
) {
    let function =
        format!("cpu-alarm-scaler (alarm to ALARM, one step out of a {launch:?} service)");
    matrix(&function, |fault_at| async move {
        let emulator = Emulator::start();
        let setup = emulator.sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&setup);
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .unwrap();
        let definition =
            fixtures::register_for(&ecs, "web", &[("app", "nginx:1.27")], launch).await;
        let ec2 = aws_sdk_ec2::Client::new(&setup);
        let limits = [("ops:scale-min", "1"), ("ops:scale-max", "6")];
        fixtures::service_for(&ecs, &ec2, "prod", "web", &definition, &limits, launch).await;
        emulator
            .control(
                "POST",
                "/_ops/ecs/finish-deployment",
                Some(json!({"cluster": "prod", "service": "web", "state": "COMPLETED"})),
            )
            .unwrap();
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&setup);
        fixtures::cpu_alarm_in_alarm(&cloudwatch, "web-cpu-high", "ecs:prod/web").await;
        let env = [("ECS_CLUSTERS", "prod")];
        let (made, scalings) = scale_out_settles(&emulator, &env, "web-cpu-high", fault_at).await;
        let service = ecs
            .describe_services()
            .cluster("prod")
            .services("web")
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .unwrap()
            .services
            .unwrap()
            .remove(0);
        let tags = scale_tags(service.tags().iter().map(|t| t.key()));
        let placed = (
            service.launch_type().map(|l| l.as_str().to_string()),
            service
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .is_some(),
        );
        (
            format!(
                "desired {}, tags {tags:?}, scaling alerted: {}, placement {placed:?}",
                service.desired_count,
                scalings >= 1
            ),
            made,
        )
    })
    .await;
}

on_each_launch!(cpu_alarm_scaler_converges_from_a_failure_at_any_call_of_a_service_scale_out);

#[tokio::test]
async fn bastion_eip_associator_converges_from_a_failure_at_any_call_of_a_launch() {
    use bastion_eip_associator::config::AssociatorConfig;
    use bastion_eip_associator::handler::{function_handler, Deps};
    use ops_core::aws::autoscaling::AutoScalingGroups;
    use ops_core::aws::ec2::Ec2;

    matrix(
        "bastion-eip-associator (a launch held at its hook)",
        |fault_at| async move {
            let emulator = Emulator::start();
            let setup = emulator.sdk_config().await;
            let asg = aws_sdk_autoscaling::Client::new(&setup);
            fixtures::group(&asg, "bastion", (0, 0, 2), Some("bastion")).await;
            let ec2 = aws_sdk_ec2::Client::new(&setup);
            fixtures::pool_addresses(&ec2, "bastion", 2).await;
            let launched = emulator
                .control(
                    "POST",
                    "/_ops/autoscaling/launch",
                    Some(json!({"group": "bastion"})),
                )
                .unwrap();
            let instance = launched["instance_id"].as_str().unwrap().to_string();
            let sdk = one_attempt(&emulator).await;
            let env = Env::from_pairs([
                (
                    "ALERT_TOPIC_ARN",
                    "arn:aws:sns:us-east-1:123456789012:ops-alerts",
                ),
                ("BASTION_GROUPS", "bastion"),
                ("ASSOCIATE_RETRY_DELAY_MS", "0"),
            ]);
            let deps = Deps {
                ec2: Ec2::new(&sdk),
                groups: AutoScalingGroups::new(&sdk),
                iam: ops_core::aws::iam::IamSimulator::new(&sdk),
                alerts: MemoryAlerts::default(),
                config: AssociatorConfig::from_env(&env).unwrap(),
            };
            arm(&emulator, fault_at);
            until_settled(20, || function_handler(launched["event"].clone(), &deps))
                .await
                .expect("the launch settles");
            let made = disarm(&emulator, fault_at);
            let held: Vec<String> = ec2
                .describe_addresses()
                .send()
                .await
                .unwrap()
                .addresses
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    if a.instance_id.as_deref() == Some(instance.as_str()) {
                        "the new bastion".to_string()
                    } else {
                        a.instance_id.unwrap_or_else(|| "free".into())
                    }
                })
                .collect();
            let actions = emulator
                .control("GET", "/_ops/autoscaling/lifecycle-actions", None)
                .unwrap();
            let results: Vec<Value> = actions["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["result"].clone())
                .collect();
            let mut held = held;
            held.sort();
            (
                format!("addresses {held:?}, lifecycle results {results:?}"),
                made,
            )
        },
    )
    .await;
}
