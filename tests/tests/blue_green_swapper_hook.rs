//! blue-green-swapper as ECS's lifecycle hook (issue "ECS as people run it", item 4): ECS walks a
//! canary deployment through its stages in the emulator, each configured stage's call (the payload
//! the developer guide's "Lambda hooks for Amazon ECS service deployments" documents) is handed
//! to the handler, and ECS's next move follows the answer: `IN_PROGRESS` waits while the new
//! revision's targets are not healthy, an alarm in ALARM answers `FAILED` (ECS rolls back), the
//! rollback's own calls always succeed, and a call that did not come from ECS is refused.

use blue_green_swapper::config::SwapperConfig;
use blue_green_swapper::handler::{function_handler, Deps, Invocation};
use blue_green_swapper::observe::Clients;
use ops_core::alert::{Alert, MemoryAlerts, Severity};
use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::elbv2::LoadBalancers;
use ops_core::aws::iam::IamSimulator;
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_core::Error;
use ops_e2e::fixtures::{self, Launch, ACCOUNT, REGISTRY};
use ops_e2e::Emulator;
use serde_json::{json, Value};

const NOW: u64 = 1_795_000_000;
const ALARM: &str = "web-5xx";
const SWAPPER: &str = "arn:aws:lambda:us-east-1:123456789012:function:opsstack-blue-green-swapper";
const HOOK_ROLE: &str = "arn:aws:iam::123456789012:role/opsstack-BlueGreenSwapperHookInvokeRole";

/// prod/web on Fargate, deployed by ECS as a CANARY (10%), its hooks pointing at the swapper at
/// POST_SCALE_UP, PRODUCTION_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT, gated on `web-5xx`.
struct Hooked {
    emulator: Emulator,
    deps: Deps<MemoryAlerts>,
    ecs: aws_sdk_ecs::Client,
    green: String,
}

impl Hooked {
    async fn new() -> Hooked {
        let emulator = Emulator::start();
        let sdk = emulator.sdk_config().await;
        let env = Env::from_pairs([
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:ops-alerts",
            ),
            ("ECS_CLUSTERS", "prod"),
            (
                "SWAP_ROUTES",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/2",
            ),
        ]);
        let deps = Deps {
            clients: Clients {
                lb: LoadBalancers::new(&sdk),
                ecs: EcsServices::new(&sdk),
                ecr: EcrImages::new(&sdk),
                alarms: CloudWatchAlarms::new(&sdk),
            },
            iam: IamSimulator::new(&sdk),
            alerts: MemoryAlerts::default(),
            config: SwapperConfig::from_env(&env).expect("swapper config"),
        };
        let ecs = deps.clients.ecs.client().clone();
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .expect("cluster");
        let first = fixtures::register_for(
            &ecs,
            "web",
            &[("app", &format!("{REGISTRY}/web:release-41"))],
            Launch::Fargate,
        )
        .await;
        let network = fixtures::task_network(&aws_sdk_ec2::Client::new(&sdk)).await;
        let awsvpc = network.awsvpc_configuration().expect("awsvpc");
        let made = emulator
            .control(
                "POST",
                "/_ops/ecs/strategy-service",
                Some(json!({
                    "cluster": "prod", "service": "web", "task_definition": first,
                    "strategy": "CANARY", "alarms": [ALARM],
                    "canary": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
                    "network": {"subnets": awsvpc.subnets(), "securityGroups": awsvpc.security_groups()},
                    "tags": {"ops:hook-alarms": ALARM, "ops:hook-health-timeout": "10m"},
                    "lifecycle_hooks": [{
                        "hookTargetArn": SWAPPER, "roleArn": HOOK_ROLE,
                        "lifecycleStages": ["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"],
                    }],
                })),
            )
            .expect("a canary service with hooks");
        let green = made["targetGroups"][1].as_str().unwrap().to_string();
        // ECS calls the hooks of the first deployment too; walked here without them (as if they
        // answered SUCCEEDED): finish-deployment refuses to skip hooks.
        let skipped = emulator
            .control(
                "POST",
                "/_ops/ecs/finish-deployment",
                Some(json!({"cluster": "prod", "service": "web", "state": "COMPLETED"})),
            )
            .unwrap_err();
        assert!(
            skipped.to_string().contains("Lambda lifecycle hooks ahead"),
            "{skipped}"
        );
        let first_deployment = emulator
            .control(
                "POST",
                "/_ops/ecs/advance-deployment",
                Some(json!({"cluster": "prod", "service": "web", "to": "CLEAN_UP"})),
            )
            .expect("the first deployment completes");
        let stages: Vec<Value> = calls(&first_deployment)
            .iter()
            .map(|c| c["lifecycleStage"].clone())
            .collect();
        assert_eq!(
            stages,
            [
                "POST_SCALE_UP",
                "PRODUCTION_TRAFFIC_SHIFT",
                "PRODUCTION_TRAFFIC_SHIFT",
                "POST_PRODUCTION_TRAFFIC_SHIFT"
            ],
            "the first deployment calls its hooks too, the production shift at each canary step"
        );
        Hooked {
            emulator,
            deps,
            ecs,
            green,
        }
    }

    async fn handle(&self, payload: Value, now: u64) -> Result<Value, Error> {
        let invocation = Invocation {
            caller: Caller {
                account_id: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
            now,
        };
        function_handler(payload, &invocation, &self.deps).await
    }

    /// A person deploys web:2 (UpdateService); ECS starts its canary deployment.
    async fn deploy(&self) {
        let second = fixtures::register_for(
            &self.ecs,
            "web",
            &[("app", &format!("{REGISTRY}/web:release-42"))],
            Launch::Fargate,
        )
        .await;
        self.ecs
            .update_service()
            .cluster("prod")
            .service("web")
            .task_definition(second)
            .send()
            .await
            .expect("deploy web:2");
    }

    /// ECS walks on to `stage`; the hook calls it makes on the way, for the swapper.
    fn advance(&self, stage: &str) -> Vec<Value> {
        let walked = self
            .emulator
            .control(
                "POST",
                "/_ops/ecs/advance-deployment",
                Some(json!({"cluster": "prod", "service": "web", "to": stage})),
            )
            .expect("advance");
        calls(&walked)
    }

    fn green_targets(&self, state: &str) {
        self.emulator
            .control(
                "POST",
                "/_ops/elbv2/target-health",
                Some(json!({"target_group_arn": self.green, "state": state})),
            )
            .expect("set green's target health");
    }

    async fn alarm(&self, state: aws_sdk_cloudwatch::types::StateValue) {
        aws_sdk_cloudwatch::Client::new(&self.emulator.sdk_config().await)
            .set_alarm_state()
            .alarm_name(ALARM)
            .state_value(state)
            .state_reason(
                "Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0)",
            )
            .send()
            .await
            .expect("set the alarm");
    }

    fn alerts(&self) -> Vec<Alert> {
        self.deps.alerts.sent()
    }
}

/// The payloads of the hook calls a control answered with, each for the swapper.
fn calls(answer: &Value) -> Vec<Value> {
    answer["hookCalls"]
        .as_array()
        .expect("hookCalls")
        .iter()
        .map(|call| {
            assert_eq!(call["hookTargetArn"], SWAPPER);
            call["payload"].clone()
        })
        .collect()
}

#[tokio::test]
async fn a_canary_is_held_until_healthy_and_an_alarm_at_the_production_shift_fails_it_and_the_rollback_passes(
) {
    let world = Hooked::new().await;
    world.deploy().await;

    // POST_SCALE_UP: green's targets are still starting: wait, with a call back.
    let scale_up = world.advance("POST_SCALE_UP");
    world.green_targets("initial");
    assert_eq!(scale_up.len(), 1);
    let waiting = world.handle(scale_up[0].clone(), NOW).await.unwrap();
    assert_eq!(waiting["hookStatus"], "IN_PROGRESS", "{waiting:#}");
    assert_eq!(waiting["callBackDelay"], 30);
    assert_eq!(waiting["hookDetails"]["opsWaitingSince"], NOW);
    assert!(
        waiting["reason"].as_str().unwrap().starts_with(
            "waiting for web:2 0/2 healthy, 2 not healthy at POST_SCALE_UP; fails at "
        ),
        "{waiting:#}"
    );
    // ECS calls again after the delay with the hookDetails it was given; green is healthy now.
    world.green_targets("healthy");
    let mut again = scale_up[0].clone();
    again["hookDetails"] = waiting["hookDetails"].clone();
    let passed = world.handle(again, NOW + 30).await.unwrap();
    assert_eq!(passed["hookStatus"], "SUCCEEDED", "{passed:#}");
    assert!(passed.get("callBackDelay").is_none());

    // The canary shift: 10% on green, and the alarm fires: FAILED, and ops are told why.
    let shift = world.advance("PRODUCTION_TRAFFIC_SHIFT");
    assert_eq!(shift.len(), 1, "{shift:#?}");
    assert_eq!(
        shift[0]["executionDetails"]["productionTrafficWeights"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_u64)
            .collect::<Vec<_>>()
            .iter()
            .sum::<u64>(),
        100
    );
    world
        .alarm(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    let failed = world.handle(shift[0].clone(), NOW + 400).await.unwrap();
    assert_eq!(failed["hookStatus"], "FAILED", "{failed:#}");
    assert_eq!(
        failed["reason"],
        "alarm in ALARM at PRODUCTION_TRAFFIC_SHIFT: web-5xx (Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0))"
    );
    let alerts = world.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.event_type, "hook.failed");
    assert_eq!(
        alert.title,
        "prod/web: deployment of web:2 stopped at PRODUCTION_TRAFFIC_SHIFT; ECS rolls back"
    );
    assert!(alert.why.contains("web-5xx"), "{}", alert.why);
    let thread = alert.thread_id.clone().unwrap();
    assert!(
        thread.starts_with("blue-green-swapper:prod/web:"),
        "{thread}"
    );

    // ECS rolls back, calling the production-shift hook again with green at 0: never held, even
    // with the alarm still firing.
    let rollback = world
        .emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "FAILED",
                        "reason": "Service deployment rolled back because a lifecycle hook failed."})),
        )
        .expect("ECS rolls back");
    let back = calls(&rollback);
    assert_eq!(back.len(), 1);
    let answered = world.handle(back[0].clone(), NOW + 430).await.unwrap();
    assert_eq!(answered["hookStatus"], "SUCCEEDED", "{answered:#}");
    assert!(answered["reason"]
        .as_str()
        .unwrap()
        .contains("never holds a rollback"));
    assert_eq!(
        world.alerts().len(),
        1,
        "the rollback's call alerts nothing more"
    );
}

#[tokio::test]
async fn targets_that_never_become_healthy_fail_the_stage_a_health_timeout_after_the_first_call() {
    let world = Hooked::new().await;
    world.deploy().await;
    let call = world.advance("POST_SCALE_UP").remove(0);
    world.green_targets("unhealthy");
    let mut details = world.handle(call.clone(), NOW).await.unwrap()["hookDetails"].clone();
    for (after, expected) in [(300, "IN_PROGRESS"), (599, "IN_PROGRESS"), (600, "FAILED")] {
        let mut again = call.clone();
        again["hookDetails"] = details.clone();
        let answer = world.handle(again, NOW + after).await.unwrap();
        assert_eq!(answer["hookStatus"], expected, "{after}: {answer:#}");
        if expected == "IN_PROGRESS" {
            details = answer["hookDetails"].clone();
        } else {
            assert_eq!(
                answer["reason"],
                "web:2 was not healthy within 10 minutes at POST_SCALE_UP (web:2 0/2 healthy, 2 not healthy)"
            );
        }
    }
    assert_eq!(world.alerts().len(), 1);
}

#[tokio::test]
async fn a_deployment_that_passes_every_gate_is_alerted_once_production_is_on_it() {
    let world = Hooked::new().await;
    world.deploy().await;
    let mut answers = Vec::new();
    for stage in [
        "POST_SCALE_UP",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
    ] {
        for call in world.advance(stage) {
            answers.push(world.handle(call, NOW).await.unwrap()["hookStatus"].clone());
        }
    }
    assert!(
        answers.iter().all(|a| a == "SUCCEEDED") && answers.len() >= 3,
        "{answers:?}"
    );
    let alerts = world.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_type, "hook.passed");
    assert_eq!(
        alerts[0].title,
        "prod/web: web:2 passed every gate; production traffic is on it"
    );
}

#[tokio::test]
async fn a_call_that_did_not_come_from_ecs_is_refused_and_alerts_nothing() {
    let world = Hooked::new().await;
    world.deploy().await;
    let real = world.advance("POST_SCALE_UP").remove(0);

    let mut unknown = real.clone();
    unknown["resourceArn"] = json!(
        "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/NotADeployment0000000"
    );
    let refused = world.handle(unknown, NOW).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("ECS does not know service deployment"),
        "{refused}"
    );

    let mut elsewhere = real.clone();
    elsewhere["executionDetails"]["serviceArn"] =
        json!("arn:aws:ecs:us-east-1:123456789012:service/prod/api");
    let refused = world.handle(elsewhere, NOW).await.unwrap_err();
    assert!(refused.to_string().contains("belongs to"), "{refused}");

    let malformed = world
        .handle(
            json!({"executionId": "x", "lifecycleStage": "POST_SCALE_UP"}),
            NOW,
        )
        .await
        .unwrap_err();
    assert!(malformed.to_string().contains("resourceArn"), "{malformed}");
    assert!(world.alerts().is_empty());
}
