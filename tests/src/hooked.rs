//! A canary ECS service in cluster `prod` whose lifecycle hooks are blue-green-swapper, with the
//! swapper's handler wired to the emulator: the world of the hook's and the chat gate's suites.

use aws_sdk_cloudwatch::types::StateValue;
use blue_green_swapper::config::SwapperConfig;
use blue_green_swapper::handler::{function_handler, Deps, Invocation};
use blue_green_swapper::observe::Clients;
use ops_core::alert::{Alert, AlertSink, MemoryAlerts};
use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::elbv2::LoadBalancers;
use ops_core::aws::iam::IamSimulator;
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_core::Error;
use serde_json::{json, Value};

use crate::fixtures::{self, Launch, ACCOUNT, REGISTRY};
use crate::Emulator;

/// The alarm that gates the service's deployments (in its `ops:hook-alarms` and ECS's own alarms).
pub const ALARM: &str = "web-5xx";
/// The alert topic.
pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";
/// The swapper's hook function's ARN, the hooks' target.
pub const SWAPPER: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:opsstack-blue-green-swapper-hook";
/// The role ECS assumes to call it.
pub const HOOK_ROLE: &str =
    "arn:aws:iam::123456789012:role/opsstack-BlueGreenSwapperHookInvokeRole";

/// The tests' clock, fixed for the run: the emulator stamps service deployments with the wall clock,
/// and a hook's wait never counts from before its deployment was created.
pub fn now() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs()
    })
}

/// The swapper's Lambda hook at `stages`, as a service names it.
pub fn lambda_hook(stages: &[&str]) -> Value {
    json!({"hookTargetArn": SWAPPER, "roleArn": HOOK_ROLE, "lifecycleStages": stages})
}

/// The emulator, the swapper's handler on it, and prod/web: CANARY 10% for 5 minutes, its first
/// deployment (web:1) done.
pub struct World<A: AlertSink> {
    /// The emulator.
    pub emulator: Emulator,
    /// The swapper's dependencies.
    pub deps: Deps<A>,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// The green (alternate) target group.
    pub green: String,
}

/// The swapper's dependencies on the emulator, deployed to serve `serves` (`SWAPPER_SERVES`): the
/// swapper is `blue-green-swapper`, its hook function `blue-green-swapper-hook`.
fn deps_of<A: AlertSink>(sdk: &aws_config::SdkConfig, alerts: A, serves: &str) -> Deps<A> {
    let name = if serves == "lifecycle-hooks" {
        "blue-green-swapper-hook"
    } else {
        "blue-green-swapper"
    };
    let env = Env::from_pairs([
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("ALERT_TOPIC_ARN", TOPIC),
        ("ECS_CLUSTERS", "prod"),
        (
            "SWAP_ROUTES",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/2",
        ),
        ("SWAPPER_SERVES", serves),
        ("SWAPPER_FUNCTION_NAME", "blue-green-swapper"),
    ]);
    Deps {
        clients: Clients {
            lb: LoadBalancers::new(sdk),
            ecs: EcsServices::new(sdk),
            ecr: EcrImages::new(sdk),
            alarms: CloudWatchAlarms::new(sdk),
        },
        iam: IamSimulator::new(sdk),
        alerts,
        config: SwapperConfig::from_env(&env).expect("swapper config"),
    }
}

/// prod/web with `desired` tasks, the given lifecycle hooks and extra service tags (beside
/// `ops:hook-alarms` and a 10-minute `ops:hook-health-timeout`), alerting through `sink`.
pub async fn world_of<A: AlertSink>(
    desired: i32,
    hooks: Value,
    tags: Value,
    sink: impl FnOnce(&aws_config::SdkConfig) -> A,
) -> World<A> {
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name("ops-alerts")
        .send()
        .await
        .expect("topic");
    let deps = deps_of(&sdk, sink(&sdk), "everything");
    let ecs = deps.clients.ecs.client().clone();
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("cluster");
    let mut service_tags = json!({"ops:hook-alarms": ALARM, "ops:hook-health-timeout": "10m"});
    service_tags
        .as_object_mut()
        .expect("an object")
        .extend(tags.as_object().cloned().unwrap_or_default());
    let (_, made) = fixtures::strategy_service(
        &emulator,
        "web",
        &format!("{REGISTRY}/web:release-41"),
        json!({
            "strategy": "CANARY", "alarms": [ALARM], "desired": desired,
            "canary": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
            "tags": service_tags,
            "lifecycle_hooks": hooks,
        }),
        true,
    )
    .await;
    let green = made["targetGroups"][1].as_str().unwrap().to_string();
    World {
        emulator,
        deps,
        ecs,
        green,
    }
}

impl World<MemoryAlerts> {
    /// The alerts sent so far.
    pub fn alerts(&self) -> Vec<Alert> {
        self.deps.alerts.sent()
    }
}

impl<A: AlertSink> World<A> {
    /// Invoke the swapper with `payload` at `now`.
    pub async fn handle(&self, payload: Value, now: u64) -> Result<Value, Error> {
        self.handle_with(&self.deps, payload, now).await
    }

    /// The swapper's hook function (`SWAPPER_SERVES=lifecycle-hooks`) on the same emulator, with
    /// alerts of its own.
    pub async fn hook_function(&self) -> Deps<MemoryAlerts> {
        deps_of(
            &self.emulator.sdk_config().await,
            MemoryAlerts::default(),
            "lifecycle-hooks",
        )
    }

    /// Invoke the function deployed with `deps` with `payload` at `now`.
    pub async fn handle_with<B: AlertSink>(
        &self,
        deps: &Deps<B>,
        payload: Value,
        now: u64,
    ) -> Result<Value, Error> {
        let invocation = Invocation {
            caller: Caller {
                account_id: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
            now,
        };
        function_handler(payload, &invocation, deps).await
    }

    /// Deploy web:2 (image release-42) with UpdateService, as deploy-trigger or a person would.
    pub async fn deploy(&self) {
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

    /// Walk the deployment in flight to `stage`: the emulator's whole answer.
    pub fn walk(&self, stage: &str) -> Value {
        self.emulator
            .control(
                "POST",
                "/_ops/ecs/advance-deployment",
                Some(json!({"cluster": "prod", "service": "web", "to": stage})),
            )
            .expect("advance")
    }

    /// Walk the deployment in flight to `stage`: the hook calls ECS makes on the way.
    pub fn advance(&self, stage: &str) -> Vec<Value> {
        calls(&self.walk(stage))
    }

    /// Walk on to `stage` as ECS does, one stage at a time: each hook call on the way is delivered
    /// while ECS is at its stage and must pass (ECS goes on only then); the calls made at `stage`.
    pub async fn pass_to(&self, stage: &str) -> Vec<Value> {
        for _ in 0..32 {
            let answer = self
                .emulator
                .control(
                    "POST",
                    "/_ops/ecs/advance-deployment",
                    Some(json!({"cluster": "prod", "service": "web", "stages": 1})),
                )
                .expect("advance one stage");
            let made = calls(&answer);
            if answer["lifecycleStage"] == stage
                || made.iter().any(|c| c["lifecycleStage"] == stage)
            {
                return made;
            }
            for call in made {
                let passed = self
                    .handle(call, now())
                    .await
                    .expect("a hook call on the way");
                assert_eq!(
                    passed["hookStatus"], "SUCCEEDED",
                    "on the way to {stage}: {passed:#}"
                );
            }
        }
        panic!("the deployment did not reach {stage} in 32 stages");
    }

    /// Set the health of every target of the green target group.
    pub fn green_targets(&self, state: &str) {
        self.emulator
            .control(
                "POST",
                "/_ops/elbv2/target-health",
                Some(json!({"target_group_arn": self.green, "state": state})),
            )
            .expect("set green's target health");
    }

    /// Set the gating alarm's state.
    pub async fn alarm(&self, state: StateValue) {
        aws_sdk_cloudwatch::Client::new(&self.emulator.sdk_config().await)
            .set_alarm_state()
            .alarm_name(ALARM)
            .state_value(state)
            .state_reason("Threshold Crossed")
            .send()
            .await
            .expect("set the alarm");
    }

    /// The newest service deployment of prod/web, as ECS describes it.
    pub async fn service_deployment(&self) -> aws_sdk_ecs::types::ServiceDeployment {
        let listed = self
            .ecs
            .list_service_deployments()
            .cluster("prod")
            .service("web")
            .send()
            .await
            .expect("list service deployments");
        let arn = listed.service_deployments()[0]
            .service_deployment_arn()
            .expect("an ARN")
            .to_string();
        self.ecs
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .expect("describe the service deployment")
            .service_deployments()[0]
            .clone()
    }
}

/// The payloads of the hook calls in an emulator answer.
pub fn calls(answer: &Value) -> Vec<Value> {
    answer["hookCalls"]
        .as_array()
        .expect("hookCalls")
        .iter()
        .map(|call| call["payload"].clone())
        .collect()
}
