//! deploy-trigger on services that ECS deploys itself with its blue/green, canary and linear
//! strategies (issue "ECS as people run it", item 3): a push starts ECS's deployment, `status`
//! shows the lifecycle stage and the production traffic weights from the service deployment, and
//! the outcome, including a rollback by one of the deployment's alarms, is alerted once from ECS's
//! own state (API reference: ListServiceDeployments, DescribeServiceDeployments, ServiceDeployment).

use deploy_trigger::config::DeployConfig;
use deploy_trigger::handler::{function_handler, Deps, Invocation};
use ops_core::alert::{Alert, MemoryAlerts, Severity};
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::{short_task_definition, EcsServices};
use ops_core::aws::iam::IamSimulator;
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_e2e::events::scheduled;
use ops_e2e::fixtures::{self, Launch, ACCOUNT, REGISTRY};
use ops_e2e::Emulator;
use serde_json::{json, Value};

const NOW: u64 = 1_795_000_000;
const ALARM: &str = "web-5xx";

/// prod/web on Fargate behind an ALB rule, deployed by ECS with `strategy`, opted in for pushes of
/// `release-+` tags of repository `web`, its first deployment (web:1) SUCCESSFUL.
struct Strategic {
    emulator: Emulator,
    deps: Deps<MemoryAlerts>,
    first: String,
}

impl Strategic {
    async fn new(strategy: &str, extra: Value) -> Strategic {
        let emulator = Emulator::start();
        let sdk = emulator.sdk_config().await;
        let env = Env::from_pairs([
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:ops-alerts",
            ),
            ("ECS_CLUSTERS", "prod"),
        ]);
        let deps = Deps {
            ecs: EcsServices::new(&sdk).reading_service_deployments(),
            iam: IamSimulator::new(&sdk),
            ecr: EcrImages::new(&sdk),
            alerts: MemoryAlerts::default(),
            config: DeployConfig::from_env(&env).expect("config"),
        };
        let ecs = deps.ecs.client().clone();
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .expect("cluster");
        deps.ecr
            .client()
            .create_repository()
            .repository_name("web")
            .send()
            .await
            .expect("repository");
        let first = fixtures::register_for(
            &ecs,
            "web",
            &[("app", &format!("{REGISTRY}/web:release-41"))],
            Launch::Fargate,
        )
        .await;
        let network = fixtures::task_network(&aws_sdk_ec2::Client::new(&sdk)).await;
        let awsvpc = network.awsvpc_configuration().expect("awsvpc");
        let mut spec = json!({
            "cluster": "prod", "service": "web", "task_definition": first, "strategy": strategy,
            "alarms": [ALARM],
            "network": {"subnets": awsvpc.subnets(), "securityGroups": awsvpc.security_groups()},
            "tags": {"ops:deploy-repository": "web", "ops:deploy-tag-pattern": "release-+"},
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        emulator
            .control("POST", "/_ops/ecs/strategy-service", Some(spec))
            .expect("a service of the strategy");
        emulator
            .control(
                "POST",
                "/_ops/ecs/finish-deployment",
                Some(json!({"cluster": "prod", "service": "web", "state": "COMPLETED"})),
            )
            .expect("the first deployment completes");
        Strategic {
            emulator,
            deps,
            first,
        }
    }

    async fn handle_at(&self, payload: Value, now: u64) -> Value {
        let invocation = Invocation {
            caller: Caller {
                account_id: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
            now,
        };
        function_handler(payload, &invocation, &self.deps)
            .await
            .expect("handled")
    }

    /// Push `release-42` and hand its event to deploy-trigger.
    async fn push(&self) -> Value {
        let pushed = self
            .emulator
            .control(
                "POST",
                "/_ops/ecr/push",
                Some(json!({"repository": "web", "tag": "release-42"})),
            )
            .expect("push");
        self.handle_at(pushed["event"].clone(), NOW).await
    }

    /// Walk ECS's deployment at the emulator (`{"to": stage}` or `{"stages": n}`).
    fn advance(&self, how: Value) -> Value {
        let mut body = json!({"cluster": "prod", "service": "web"});
        body.as_object_mut()
            .unwrap()
            .extend(how.as_object().unwrap().clone());
        self.emulator
            .control("POST", "/_ops/ecs/advance-deployment", Some(body))
            .expect("advance")
    }

    /// End ECS's deployment at the emulator; ECS's event is returned, not delivered.
    fn finish(&self, how: Value) -> Value {
        let mut body = json!({"cluster": "prod", "service": "web"});
        body.as_object_mut()
            .unwrap()
            .extend(how.as_object().unwrap().clone());
        self.emulator
            .control("POST", "/_ops/ecs/finish-deployment", Some(body))
            .expect("finish")["event"]
            .clone()
    }

    async fn status(&self) -> Value {
        self.handle_at(
            json!({"command": "status", "args": {"service": "prod/web"}, "requested_by": "alice"}),
            NOW + 60,
        )
        .await
    }

    fn alerts(&self) -> Vec<Alert> {
        self.deps.alerts.sent()
    }

    async fn runs(&self) -> String {
        short_task_definition(
            &self
                .deps
                .ecs
                .describe("prod", "web")
                .await
                .unwrap()
                .task_definition,
        )
    }

    async fn last_completed(&self) -> Option<String> {
        let service = self.deps.ecs.describe("prod", "web").await.unwrap();
        service
            .tag("ops:deploy-last-completed")
            .map(short_task_definition)
    }
}

#[tokio::test]
async fn a_push_to_a_canary_service_shows_its_stage_and_weights_and_is_verified_when_ecs_succeeds()
{
    let world = Strategic::new(
        "CANARY",
        json!({"canary": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5}}),
    )
    .await;
    let started = world.push().await;
    assert_eq!(started["status"], "started", "{started:#}");
    assert_eq!(started["started"][0]["to"], "web:2");

    world.advance(json!({"to": "PRODUCTION_TRAFFIC_SHIFT"}));
    let status = world.status().await;
    assert_eq!(status["strategy"]["name"], "CANARY", "{status:#}");
    assert_eq!(
        status["strategy"]["plan"],
        "10% first for 5 min, then the rest; blue is kept 5 min after the shift"
    );
    assert_eq!(
        status["service_deployment"]["stage"],
        "PRODUCTION_TRAFFIC_SHIFT"
    );
    assert_eq!(
        status["service_deployment"]["production_traffic"],
        json!([
            {"task_definition": "web:2", "percent": "10"},
            {"task_definition": "web:1", "percent": "90"},
        ])
    );
    let says = status["verification"]["says"].as_str().unwrap();
    assert!(
        says.contains("ECS's CANARY deployment is IN_PROGRESS (stage PRODUCTION_TRAFFIC_SHIFT, production traffic web:2 10% / web:1 90%)"),
        "{says}"
    );
    assert_eq!(status["verification"]["state"], "in_progress");
    assert!(
        world.alerts().is_empty(),
        "nothing is alerted mid-deployment"
    );

    let event = world.finish(json!({"state": "COMPLETED"}));
    world.handle_at(event.clone(), NOW + 600).await;
    world.handle_at(event, NOW + 601).await; // EventBridge delivers at least once
    let alerts = world.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.severity, Severity::Info);
    assert_eq!(alert.event_type, "deployment.succeeded");
    assert!(
        alert.what.starts_with("ECS's CANARY deployment ecs-svc/")
            && alert.what.contains(
                "of web:2 to prod/web is SUCCESSFUL: 10% first for 5 min, then the rest; blue is kept 5 min after the shift, every stage passed (ended at stage CLEAN_UP, production traffic web:2 100% / web:1 0%)."
            ),
        "{}",
        alert.what
    );
    assert_eq!(alert.context["strategy"], "CANARY");
    assert_eq!(alert.context["stage"], "CLEAN_UP");
    assert!(
        alert
            .related_resources
            .iter()
            .any(|r| r.contains(":service-deployment/prod/web/")),
        "{:?}",
        alert.related_resources
    );
    assert_eq!(world.last_completed().await.as_deref(), Some("web:2"));
    assert_eq!(world.runs().await, "web:2");
}

#[tokio::test]
async fn an_alarm_that_rolls_back_a_linear_deployment_pages_once_naming_the_alarm_and_where_ecs_went(
) {
    let world = Strategic::new(
        "LINEAR",
        json!({"linear": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1}}),
    )
    .await;
    world.push().await;
    world.advance(json!({"to": "PRODUCTION_TRAFFIC_SHIFT"}));
    let second_step = world.advance(json!({"stages": 1}));
    assert_eq!(second_step["lifecycleStage"], "PRODUCTION_TRAFFIC_SHIFT");
    let status = world.status().await;
    assert!(
        status["verification"]["says"]
            .as_str()
            .unwrap()
            .contains("production traffic web:2 50% / web:1 50%"),
        "{status:#}"
    );

    let event = world.finish(json!({"state": "FAILED", "alarm": ALARM}));
    let answer = world.handle_at(event.clone(), NOW + 300).await;
    assert_eq!(answer["outcome"]["succeeded"], false, "{answer:#}");
    world.handle_at(event, NOW + 301).await;
    world.handle_at(scheduled(NOW + 360), NOW + 360).await;

    let alerts = world.alerts();
    assert_eq!(alerts.len(), 1, "one page, however it arrives: {alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(
        alert.title,
        "prod/web deployment of web:2 FAILED; ECS rolled back to web:1"
    );
    assert!(
        alert.what.contains("ECS's LINEAR deployment ecs-svc/")
            && alert
                .what
                .contains("FAILED at stage PRODUCTION_TRAFFIC_SHIFT")
            && alert.what.ends_with("ECS ended it as ROLLBACK_SUCCESSFUL."),
        "{}",
        alert.what
    );
    assert!(alert.why.contains(ALARM), "{}", alert.why);
    assert!(
        alert
            .next_steps
            .iter()
            .any(|s| s.contains("describe-alarm-history --alarm-name web-5xx")),
        "{:?}",
        alert.next_steps
    );
    assert_eq!(world.runs().await, short_task_definition(&world.first));
    assert_eq!(
        world.last_completed().await,
        None,
        "a rolled-back deployment is never recorded as good"
    );
}

#[tokio::test]
async fn a_blue_green_deployment_whose_event_is_lost_is_settled_by_the_reconcile_from_the_service_deployment(
) {
    let world = Strategic::new("BLUE_GREEN", json!({})).await;
    world.push().await;
    let lost = world.finish(json!({"state": "COMPLETED"}));
    let status = world.status().await;
    assert!(
        status["verification"]["says"]
            .as_str()
            .unwrap()
            .contains("ECS says COMPLETED, not yet verified by deploy-trigger (unverified"),
        "{status:#}"
    );
    assert_eq!(status["service_deployment"]["status"], "SUCCESSFUL");

    let settled = world.handle_at(scheduled(NOW + 300), NOW + 300).await;
    assert_eq!(settled["settled"][0]["succeeded"], true, "{settled:#}");
    world.handle_at(lost, NOW + 900).await; // the event arrives after all: quiet
    let alerts = world.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_type, "deployment.succeeded");
    assert!(alerts[0].context["seen_by"].starts_with("reconcile"));
    assert!(
        alerts[0].what.starts_with("ECS's BLUE_GREEN deployment"),
        "{}",
        alerts[0].what
    );
    assert_eq!(world.last_completed().await.as_deref(), Some("web:2"));
}

#[tokio::test]
async fn doctor_proves_the_template_lets_deploy_trigger_read_the_service_deployments_it_reports() {
    let mut world = Strategic::new("BLUE_GREEN", json!({})).await;
    let sdk = world.emulator.sdk_config().await;
    let topic = "arn:aws:sns:us-east-1:123456789012:ops-alerts";
    let deployment = fixtures::Deployment {
        parameters: [("EcsClusterNames".to_string(), "prod".to_string())].into(),
        refs: [
            ("AlertTopic".to_string(), topic.to_string()),
            ("HealthStateTable".to_string(), "health".to_string()),
        ]
        .into(),
        arns: [(
            "HealthStateTable.Arn".to_string(),
            format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/health"),
        )]
        .into(),
    };
    let roles = fixtures::template_roles(&aws_sdk_iam::Client::new(&sdk), &deployment).await;
    world.deps.config.common.role_arn = Some(roles["DeployTriggerFunction"].arn.clone());

    let answer = world.handle_at(json!({"command": "doctor"}), NOW).await;

    let rows = fixtures::doctor_table(&answer);
    let service = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web");
    for duty in [
        format!("ecs:ListServiceDeployments on {service}"),
        format!("ecs:DescribeServiceDeployments on arn:aws:ecs:us-east-1:{ACCOUNT}:service-deployment/prod/web/*"),
        format!("ecs:DescribeServiceRevisions on arn:aws:ecs:us-east-1:{ACCOUNT}:service-revision/prod/web/*"),
    ] {
        assert!(
            rows.iter().any(|row| row.starts_with("ok")
                && row.contains(&format!("permission  {duty} - allowed by"))),
            "no allowed row for {duty}: {rows:#?}"
        );
    }
}
