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
use ops_e2e::fixtures::{self, ACCOUNT, REGISTRY};
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
            ecs: EcsServices::new(&sdk)
                .reading_service_deployments_of(deploy_trigger::contract::REPOSITORY),
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
        let mut spec = json!({
            "strategy": strategy, "alarms": [ALARM],
            "tags": {"ops:deploy-repository": "web", "ops:deploy-tag-pattern": "release-+"},
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (first, _) = fixtures::strategy_service(
            &emulator,
            "web",
            &format!("{REGISTRY}/web:release-41"),
            spec,
            true,
        )
        .await;
        Strategic {
            emulator,
            deps,
            first,
        }
    }

    /// Give deploy-trigger the role `sam/template.yaml` grants it (for cluster `prod`), so its
    /// `doctor` asks IAM about exactly the template's statements.
    async fn with_the_templates_role(&mut self) -> fixtures::TemplateRole {
        let deployment = fixtures::Deployment {
            parameters: [("EcsClusterNames".to_string(), "prod".to_string())].into(),
            refs: [
                (
                    "AlertTopic".to_string(),
                    "arn:aws:sns:us-east-1:123456789012:ops-alerts".to_string(),
                ),
                ("HealthStateTable".to_string(), "health".to_string()),
            ]
            .into(),
            arns: [(
                "HealthStateTable.Arn".to_string(),
                format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/health"),
            )]
            .into(),
        };
        let iam = aws_sdk_iam::Client::new(&self.emulator.sdk_config().await);
        let role =
            fixtures::template_roles(&iam, &deployment).await["DeployTriggerFunction"].clone();
        self.deps.config.common.role_arn = Some(role.arn.clone());
        role
    }

    async fn try_handle_at(&self, payload: Value, now: u64) -> Result<Value, ops_core::Error> {
        let invocation = Invocation {
            caller: Caller {
                account_id: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
            now,
        };
        function_handler(payload, &invocation, &self.deps).await
    }

    async fn handle_at(&self, payload: Value, now: u64) -> Value {
        self.try_handle_at(payload, now).await.expect("handled")
    }

    /// Push `release-42` and hand its event to deploy-trigger.
    async fn push(&self) -> Value {
        self.push_tag("release-42", NOW).await
    }

    /// Push `web:<tag>` to ECR; ECR's push event, not yet delivered.
    fn pushed(&self, tag: &str) -> Value {
        self.emulator
            .control(
                "POST",
                "/_ops/ecr/push",
                Some(json!({"repository": "web", "tag": tag})),
            )
            .expect("push")["event"]
            .clone()
    }

    /// An ECS deployment control of the emulator for prod/web, with `how` added to its body.
    fn deployment_control(&self, path: &str, how: Value) -> Value {
        let mut body = json!({"cluster": "prod", "service": "web"});
        body.as_object_mut()
            .unwrap()
            .extend(how.as_object().unwrap().clone());
        self.emulator
            .control("POST", path, Some(body))
            .expect("deployment control")
    }

    /// Walk ECS's deployment at the emulator (`{"to": stage}` or `{"stages": n}`).
    fn advance(&self, how: Value) -> Value {
        self.deployment_control("/_ops/ecs/advance-deployment", how)
    }

    /// End ECS's deployment at the emulator; ECS's event is returned, not delivered.
    fn finish(&self, how: Value) -> Value {
        self.deployment_control("/_ops/ecs/finish-deployment", how)["event"].clone()
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
    // ECS calls the PRE_PRODUCTION_TRAFFIC_SHIFT hooks before each step, then shifts.
    let second_step = world.advance(json!({"stages": 2}));
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
    world.with_the_templates_role().await;

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

impl Strategic {
    /// Push `tag` of repository `web` and hand its event to deploy-trigger at `now`.
    async fn push_tag(&self, tag: &str, now: u64) -> Value {
        self.handle_at(self.pushed(tag), now).await
    }

    /// What an on-call engineer does to recycle tasks: `update-service --force-new-deployment`.
    async fn force_new_deployment(&self) {
        self.deps
            .ecs
            .client()
            .update_service()
            .cluster("prod")
            .service("web")
            .force_new_deployment(true)
            .send()
            .await
            .expect("force new deployment");
    }

    async fn primary_id(&self) -> String {
        let service = self.deps.ecs.describe("prod", "web").await.unwrap();
        service.primary().expect("a primary").id.clone()
    }

    fn summary(&self) -> Vec<String> {
        self.alerts()
            .iter()
            .map(|a| {
                format!(
                    "{} [{:?}] {} (deployment {})",
                    a.event_type,
                    a.severity,
                    a.title,
                    a.context.get("deployment_id").cloned().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// The `ECS Deployment State Change` event ECS would send (shape of the developer guide's
/// "Amazon ECS service deployment state change events" example).
fn state_change(deployment_id: &str, name: &str, reason: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("forged-{deployment_id}-{name}"),
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": "2026-12-01T04:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web")],
        "detail": {
            "eventType": if name == "SERVICE_DEPLOYMENT_FAILED" { "ERROR" } else { "INFO" },
            "eventName": name,
            "deploymentId": deployment_id,
            "updatedAt": "2026-12-01T04:00:00Z",
            "reason": reason,
        }
    })
}

// --- 1. the same task definition in two service deployments ----------------------------------

/// ECS completes deploy-trigger's blue/green deployment of web:2; its COMPLETED event is delivered
/// late (EventBridge retries; ECS events are best effort). Meanwhile on-call recycles the tasks with
/// `update-service --force-new-deployment`, which ECS runs as a new service deployment of the same
/// task definition (developer guide, "View service history using Amazon ECS service deployments":
/// a new service deployment is created when a user "updates the service and uses the force new
/// deployment option"). The late COMPLETED event must still verify web:2: its own service
/// deployment is SUCCESSFUL.
#[tokio::test]
async fn a_late_completed_event_still_verifies_its_deployment_after_a_forced_redeploy_of_the_same_revision(
) {
    let world = Strategic::new("BLUE_GREEN", json!({})).await;
    let started = world.push().await;
    assert_eq!(started["status"], "started", "{started:#}");
    let ours = world.primary_id().await;
    let late = world.finish(json!({"state": "COMPLETED"}));
    assert_eq!(late["detail"]["deploymentId"], ours.as_str());

    world.force_new_deployment().await;
    let answer = world.handle_at(late, NOW + 600).await;
    // The forced redeploy then completes too; its event and the reconcile ticks run.
    let forced_done = world.finish(json!({"state": "COMPLETED"}));
    world.handle_at(forced_done, NOW + 900).await;
    world.handle_at(scheduled(NOW + 1200), NOW + 1200).await;
    world.handle_at(scheduled(NOW + 1500), NOW + 1500).await;
    let summary = world.summary();
    assert!(
        summary
            .iter()
            .any(|a| a.starts_with("deployment.succeeded") && a.contains(&ours)),
        "ECS's service deployment of web:2 started by the push ({ours}) is SUCCESSFUL and its event said so; it is never alerted as succeeded: {summary:#?}\n{answer:#}"
    );
}

/// Same start, and the forced redeploy of web:2 is then rolled back by the deployment's alarm
/// (ECS goes back to blue, web:2). The reconcile must not page deploy-trigger's deployment of web:2
/// as FAILED: ECS reports its own service deployment SUCCESSFUL. Only the forced one failed.
#[tokio::test]
async fn a_forced_redeploy_rolled_back_by_alarm_never_pages_the_earlier_successful_deployment_of_its_revision(
) {
    let world = Strategic::new("BLUE_GREEN", json!({})).await;
    world.push().await;
    let ours = world.primary_id().await;
    let _lost = world.finish(json!({"state": "COMPLETED"}));
    world.force_new_deployment().await;
    let forced = world.primary_id().await;
    assert_ne!(forced, ours);
    let failed = world.finish(json!({"state": "FAILED", "alarm": ALARM}));
    assert_eq!(failed["detail"]["deploymentId"], forced.as_str());

    world.handle_at(failed, NOW + 400).await;
    let tick = world.handle_at(scheduled(NOW + 600), NOW + 600).await;
    let summary = world.summary();
    assert!(
        !summary
            .iter()
            .any(|a| a.starts_with("deployment.failed") && a.contains(&ours)),
        "the reconcile settled deploy-trigger's deployment {ours} (ECS: SUCCESSFUL) as FAILED: {summary:#?}\n{tick:#}"
    );
    assert_eq!(
        world.last_completed().await.as_deref(),
        Some("web:2"),
        "web:2 was verified SUCCESSFUL by ECS and should be the last known-good revision"
    );
}

/// web:2 then web:3 verified COMPLETED (rollback would go to web:2). A forced redeploy of web:3 is
/// rolled back by ECS's alarm to web:3 (blue). `status` and chat `rollback` must still go to web:2,
/// the previous verified revision; they must not offer web:3, which is what runs.
#[tokio::test]
async fn after_a_failed_forced_redeploy_chat_rollback_still_goes_to_the_previous_verified_revision()
{
    let world = Strategic::new("BLUE_GREEN", json!({})).await;
    world.push_tag("release-42", NOW).await;
    let event = world.finish(json!({"state": "COMPLETED"}));
    world.handle_at(event, NOW + 100).await;
    world.push_tag("release-43", NOW + 200).await;
    let event = world.finish(json!({"state": "COMPLETED"}));
    world.handle_at(event, NOW + 300).await;
    assert_eq!(world.last_completed().await.as_deref(), Some("web:3"));
    let before = world.status().await;
    assert_eq!(
        before["rollback_would_go_to"]
            .as_str()
            .map(short_task_definition)
            .as_deref(),
        Some("web:2"),
        "{before:#}"
    );

    world.force_new_deployment().await;
    let failed = world.finish(json!({"state": "FAILED", "alarm": ALARM}));
    world.handle_at(failed, NOW + 400).await;
    let status = world.status().await;
    let rollback = world
        .handle_at(
            json!({"command": "rollback", "args": {"service": "prod/web"}, "dry_run": true, "requested_by": "alice"}),
            NOW + 500,
        )
        .await;
    assert_eq!(world.runs().await, "web:3");
    assert_eq!(
        status["rollback_would_go_to"]
            .as_str()
            .map(short_task_definition)
            .as_deref(),
        Some("web:2"),
        "rollback would go to web:3, which runs; the primary is shown {}: {status:#}",
        status["rollout"]["state"]
    );
    assert!(
        rollback.to_string().contains("web:2"),
        "chat rollback should plan web:2: {rollback:#}"
    );
}

// --- 2. a push superseding a deployment mid-stage ---------------------------------------------

/// A push of release-43 while release-42's CANARY deployment is at 10% of production: ECS stops the
/// first (STOPPED) and starts the second. A SERVICE_DEPLOYMENT_FAILED event for the stopped one (a
/// forged event, or one ECS sends for the stop) must not page "FAILED; ECS rolled back to web:3":
/// ECS reports the service deployment STOPPED, no rollback happened, and web:3 is the newer push
/// still in progress, not a rollback target. Then web:3 completes and is alerted once.
#[tokio::test]
async fn a_failed_event_for_a_deployment_a_newer_push_stopped_pages_nobody() {
    let world = Strategic::new(
        "CANARY",
        json!({"canary": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5}}),
    )
    .await;
    world.push_tag("release-42", NOW).await;
    let first = world.primary_id().await;
    world.advance(json!({"to": "PRODUCTION_TRAFFIC_SHIFT"}));
    let second_push = world.push_tag("release-43", NOW + 120).await;
    assert_eq!(second_push["status"], "started", "{second_push:#}");
    let second = world.primary_id().await;

    let answer = world
        .handle_at(
            state_change(
                &first,
                "SERVICE_DEPLOYMENT_FAILED",
                "ECS deployment circuit breaker: task failed to start.",
            ),
            NOW + 180,
        )
        .await;
    assert!(
        answer.to_string().contains("shows it STOPPED"),
        "a FAILED event of a deployment ECS stopped for a newer one is quiet: {answer:#}"
    );
    let done = world.finish(json!({"state": "COMPLETED"}));
    assert_eq!(done["detail"]["deploymentId"], second.as_str());
    world.handle_at(done, NOW + 900).await;
    world.handle_at(scheduled(NOW + 1200), NOW + 1200).await;
    let summary = world.summary();
    assert!(
        !summary.iter().any(|a| a.contains("rolled back to web:3")),
        "ECS never rolled anything back to web:3 (it stopped web:2's deployment for the newer push): {summary:#?}"
    );
    assert_eq!(
        summary
            .iter()
            .filter(|a| a.starts_with("deployment.succeeded"))
            .count(),
        1,
        "{summary:#?}"
    );
    assert_eq!(world.last_completed().await.as_deref(), Some("web:3"));
}

// --- 3. checks that held up (kept as passing tests) -------------------------------------------

/// Forged or early events while ECS's service deployment is IN_PROGRESS are quiet; a rollback by
/// alarm whose event is lost is settled once by the reconcile, never recorded as good; the lost
/// event arriving afterwards, twice, is quiet.
#[tokio::test]
async fn forged_events_mid_stage_are_quiet_and_a_lost_alarm_rollback_settles_once() {
    let world = Strategic::new(
        "LINEAR",
        json!({"linear": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1}}),
    )
    .await;
    world.push().await;
    let ours = world.primary_id().await;
    world.advance(json!({"to": "TEST_TRAFFIC_SHIFT"}));
    let status = world.status().await;
    assert_eq!(
        status["service_deployment"]["production_traffic"],
        json!([
            {"task_definition": "web:2", "percent": "0"},
            {"task_definition": "web:1", "percent": "100"},
        ]),
        "{status:#}"
    );
    for name in ["SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"] {
        let answer = world
            .handle_at(state_change(&ours, name, "forged"), NOW + 60)
            .await;
        assert!(answer.to_string().contains("not reported"), "{answer:#}");
    }
    assert!(world.alerts().is_empty(), "{:#?}", world.summary());
    world.advance(json!({"to": "PRODUCTION_TRAFFIC_SHIFT"}));
    let lost = world.finish(json!({"state": "FAILED", "alarm": ALARM}));
    world.handle_at(scheduled(NOW + 300), NOW + 300).await;
    world.handle_at(scheduled(NOW + 600), NOW + 600).await;
    world.handle_at(lost.clone(), NOW + 700).await;
    world.handle_at(lost, NOW + 86_000).await;
    let summary = world.summary();
    assert_eq!(summary.len(), 1, "{summary:#?}");
    assert!(
        summary[0].starts_with("deployment.failed [Critical]"),
        "{summary:#?}"
    );
    assert_eq!(world.last_completed().await, None);
    let status = world.status().await;
    assert_eq!(status["runs"], "web:1", "{status:#}");
}

// --- 4. IAM: doctor proves one of the two resource types the SAR requires -----------------------

/// Service Authorization Reference, Amazon ECS: `ecs:DescribeServiceDeployments` requires resource
/// types `service*` AND `service-deployment*`; `ecs:DescribeServiceRevisions` requires `service*` AND
/// `service-revision*`. A role whose policy refuses these two actions on the service ARN cannot read
/// them, whatever it allows on service-deployment/service-revision ARNs. doctor must then report a
/// problem; it proves only the service-deployment / service-revision ARN.
#[tokio::test]
async fn doctor_reports_a_service_deployment_read_that_the_service_resource_type_denies() {
    let mut world = Strategic::new("BLUE_GREEN", json!({})).await;
    let role = world.with_the_templates_role().await;
    let iam = aws_sdk_iam::Client::new(&world.emulator.sdk_config().await);
    iam.put_role_policy()
        .role_name(&role.name)
        .policy_name("deny-reads-on-the-service")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Deny",
                "Action": ["ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions"],
                "Resource": "arn:aws:ecs:*:*:service/*"
            }]})
            .to_string(),
        )
        .send()
        .await
        .expect("put the deny");

    let answer = world.handle_at(json!({"command": "doctor"}), NOW).await;
    let rows = fixtures::doctor_table(&answer);
    let mentions: Vec<&String> = rows
        .iter()
        .filter(|r| {
            r.contains("ecs:DescribeServiceDeployments")
                || r.contains("ecs:DescribeServiceRevisions")
        })
        .collect();
    assert!(
        mentions.iter().any(|r| !r.starts_with("ok")),
        "the role cannot call DescribeServiceDeployments/DescribeServiceRevisions on prod/web (explicit Deny on the service resource type), yet doctor says: {mentions:#?}"
    );
}

// --- 5. ECS's rollback still running, or failed (states the emulator cannot produce) -------------

mod rollback_states {
    use deploy_trigger::contract::{self, InFlight, Trigger};
    use deploy_trigger::decide::decide_reconcile;
    use deploy_trigger::report::{outcome_alert, RevisionImages};
    use ops_core::aws::ecs::{DeploymentState, ServiceState};
    use ops_core::aws::service_deployments::{
        settle_rollouts, ServiceDeploymentView, Strategy, TrafficWeight,
    };

    fn td(name: &str) -> String {
        format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{name}")
    }

    fn legacy(id: &str, status: &str, name: &str) -> DeploymentState {
        DeploymentState {
            id: id.into(),
            status: status.into(),
            rollout_state: None, // API reference, Deployment: only for rolling updates
            rollout_reason: None,
            task_definition: td(name),
            desired: 2,
            running: 2,
            failed: 0,
            created_at: None,
        }
    }

    /// prod/web on BLUE_GREEN: deploy-trigger's deployment ecs-svc/2 (web:2) failed on alarm
    /// web-5xx, and ECS's service deployment is in `status` (its rollback to web:1 started).
    fn rolling_back(status: &str, tags: &[(String, String)]) -> ServiceState {
        let record = InFlight {
            deployment_id: "ecs-svc/2".into(),
            trigger: Trigger::EcrPush,
            started_at: 1_000,
            from: "web:1".into(),
            to: "web:2".into(),
        };
        let mut service = ServiceState {
            arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/web".into(),
            name: "web".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            cluster: "prod".into(),
            status: "ACTIVE".into(),
            desired: 2,
            running: 4,
            task_definition: td("web:2"),
            deployments: vec![
                legacy("ecs-svc/2", "PRIMARY", "web:2"),
                legacy("ecs-svc/1", "ACTIVE", "web:1"),
            ],
            target_groups: vec![],
            deployment_controller: "ECS".into(),
            placement: Default::default(),
            strategy: Strategy {
                name: "BLUE_GREEN".into(),
                plan: "all production traffic at once".into(),
                alarms: vec!["web-5xx".into()],
                ..Default::default()
            },
            service_deployments: vec![
                ServiceDeploymentView {
                    arn: "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/B".into(),
                    status: status.into(),
                    reason: Some(
                        "Service deployment rolled back because the CloudWatch alarm web-5xx is in ALARM state."
                            .into(),
                    ),
                    stage: Some("PRODUCTION_TRAFFIC_SHIFT".into()),
                    target: Some(td("web:2")),
                    target_revision: None,
                    weights: vec![
                        TrafficWeight {
                            task_definition: "web:2".into(),
                            percent: "100".into(),
                        },
                        TrafficWeight {
                            task_definition: "web:1".into(),
                            percent: "0".into(),
                        },
                    ],
                    triggered_alarms: vec!["web-5xx".into()],
                    rollback_reason: Some(
                        "Service deployment rolled back because the CloudWatch alarm web-5xx is in ALARM state."
                            .into(),
                    ),
                    rolled_back_to: Some(td("web:1")),
                    created_at: Some(2),
                    target_weight: None,
                    hooks: vec![],
                },
                ServiceDeploymentView {
                    arn: "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/A".into(),
                    status: "SUCCESSFUL".into(),
                    reason: None,
                    stage: Some("CLEAN_UP".into()),
                    target: Some(td("web:1")),
                    target_revision: None,
                    weights: vec![],
                    triggered_alarms: vec![],
                    rollback_reason: None,
                    rolled_back_to: None,
                    created_at: Some(1),
                    target_weight: None,
                    hooks: vec![],
                },
            ],
            tags: [(contract::IN_FLIGHT.to_string(), record.encode())]
                .into_iter()
                .chain(tags.iter().cloned())
                .collect(),
        };
        settle_rollouts(&mut service);
        service
    }

    /// Developer guide, "View service history using Amazon ECS service deployments": ROLLBACK_REQUESTED
    /// and ROLLBACK_IN_PROGRESS are "Ongoing"; ROLLBACK_FAILED is a completed state of its own. A
    /// rollback still running is not settled yet (found by an independent test: it was paged "ECS
    /// rolled back to web:1" at once, and the ROLLBACK_FAILED that followed was never alerted).
    #[test]
    fn a_rollback_still_in_progress_is_not_settled_and_its_failure_is_alerted() {
        for early in ["ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"] {
            let decision = decide_reconcile(&rolling_back(early, &[]), 1_300);
            assert!(decision.outcome.is_none(), "{early}: {decision:?}");
        }
        let verified = [(contract::LAST_COMPLETED.to_string(), td("web:1"))];
        let outcome = decide_reconcile(&rolling_back("ROLLBACK_FAILED", &verified), 1_600)
            .outcome
            .expect("a rollback that failed is settled");
        assert!(!outcome.succeeded);
        assert_eq!(outcome.rolled_back_to, None);
        let alert = outcome_alert("deploy-trigger", &outcome, &RevisionImages::new());
        assert_eq!(alert.title, "prod/web deployment of web:2 FAILED");
        assert!(
            alert
                .why
                .contains("ECS's rollback FAILED too (ROLLBACK_FAILED)"),
            "{}",
            alert.why
        );
        assert!(
            alert
                .next_steps
                .iter()
                .any(|s| s.starts_with("Go back to the last verified deployment (web:1)")),
            "ECS could not go back, so the alert offers the way back: {:?}",
            alert.next_steps
        );
    }

    /// API reference, Deployment.rolloutState: "only returned for services that use the rolling
    /// update (ECS) deployment type that aren't behind a Classic Load Balancer" - BLUE_GREEN,
    /// CANARY and LINEAR services are on the ECS deployment controller too, and the page does not
    /// say they lack it. The emulator always strips it; if ECS does return one (e.g. COMPLETED once
    /// green's tasks are steady, before the production shift), `settle_rollouts` keeps it and
    /// ignores the service deployment, so deploy-trigger verifies and records as good a deployment
    /// ECS is still shifting traffic to (and may yet roll back).
    #[test]
    fn the_service_deployment_wins_over_a_legacy_rollout_state() {
        let mut service = rolling_back("IN_PROGRESS", &[]);
        let sd = &mut service.service_deployments[0];
        sd.rolled_back_to = None;
        sd.rollback_reason = None;
        sd.triggered_alarms.clear();
        sd.reason = None;
        sd.weights[0].percent = "10".into();
        sd.weights[1].percent = "90".into();
        for deployment in &mut service.deployments {
            deployment.rollout_state = None;
        }
        service.deployments[0].rollout_state = Some("COMPLETED".into());
        settle_rollouts(&mut service);
        let decision = decide_reconcile(&service, 1_300);
        let outcome = decision.outcome.clone();
        assert!(
            outcome.as_ref().is_none_or(|o| !o.succeeded),
            "ECS's service deployment is IN_PROGRESS at PRODUCTION_TRAFFIC_SHIFT (10%), yet the reconcile verifies it: {outcome:#?}"
        );
    }

    /// A service deployment that ended ROLLBACK_FAILED is titled "ECS rolled back to web:1".
    #[test]
    fn a_failed_rollback_is_never_titled_as_a_rollback_that_happened() {
        let failed = rolling_back("ROLLBACK_FAILED", &[]);
        let outcome = decide_reconcile(&failed, 1_300).outcome.expect("settled");
        let alert = outcome_alert("deploy-trigger", &outcome, &RevisionImages::new());
        assert!(
            !alert.title.contains("ECS rolled back to web:1"),
            "ECS says ROLLBACK_FAILED, the title says: {}",
            alert.title
        );
    }
}

// --- 6. concurrency: two pushes at once on a BLUE_GREEN service ---------------------------------

/// The rolling suite's race (deploy_trigger.rs, two_pushes_handled_at_once_...) on BLUE_GREEN:
/// release-42's UpdateService is held so that it lands after release-43's; ECS stops release-43's
/// service deployment for it; the older push restores release-43's revision (a third service
/// deployment, of the same task definition as the stopped one). Production must end on
/// release-43, alerted once as succeeded, with nothing paged about the superseded ones.
#[tokio::test]
async fn two_pushes_at_once_on_blue_green_end_on_the_newer_image_alerted_once() {
    let world = Strategic::new("BLUE_GREEN", json!({})).await;
    let older = world.pushed("release-42");
    let newer = world.pushed("release-43");
    world.emulator.add_fault(json!({"service": "ecs", "operation": "UpdateService", "kind": "latency", "latency_ms": 1500, "on_calls": [1]}));
    let newer_once_older_is_updating = async {
        for waited in 0.. {
            if world.emulator.calls("ecs", "UpdateService") > 0 {
                break;
            }
            assert!(waited < 500, "release-42 never reached UpdateService");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        world.handle_at(newer, NOW + 1).await
    };
    let (older_answer, newer_answer) =
        tokio::join!(world.handle_at(older, NOW), newer_once_older_is_updating);
    for answer in [&older_answer, &newer_answer] {
        assert_ne!(answer["status"], "failed", "{answer:#}");
    }

    let done = world.finish(json!({"state": "COMPLETED"}));
    world.handle_at(done, NOW + 600).await;
    world.handle_at(scheduled(NOW + 900), NOW + 900).await;
    world.handle_at(scheduled(NOW + 1800), NOW + 1800).await;
    let summary = world.summary();
    assert_eq!(world.runs().await, "web:3");
    assert_eq!(world.last_completed().await.as_deref(), Some("web:3"));
    assert_eq!(
        summary
            .iter()
            .filter(|a| a.starts_with("deployment.succeeded"))
            .count(),
        1,
        "{summary:#?}"
    );
    assert!(
        !summary.iter().any(|a| a.starts_with("deployment.failed")),
        "{summary:#?}"
    );
}

// --- 7. blast radius of the new reads ---------------------------------------------------------

/// prod has `api`, a ROLLING Fargate service opted in for pushes of `web`, and `web`, a BLUE_GREEN
/// service that has NOT opted in. A reconcile tick reads no service deployments, and a push for
/// `api` deploys even while every ListServiceDeployments fails (found by an independent test: the
/// reads covered every such service, opted in or not, and one failing read failed the push).
#[tokio::test]
async fn a_service_that_did_not_opt_in_is_never_read_and_a_failing_read_never_fails_another_push() {
    let world = Strategic::new("BLUE_GREEN", json!({"tags": {}})).await;
    let sdk = world.emulator.sdk_config().await;
    let network = fixtures::task_network(&aws_sdk_ec2::Client::new(&sdk)).await;
    world
        .deps
        .ecs
        .client()
        .create_service()
        .cluster("prod")
        .service_name("api")
        .task_definition(&world.first)
        .desired_count(2)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(network)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("ops:deploy-repository")
                .value("web")
                .build(),
        )
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("ops:deploy-tag-pattern")
                .value("release-+")
                .build(),
        )
        .send()
        .await
        .expect("api");
    world
        .emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "api", "state": "COMPLETED"})),
        )
        .expect("api's first deployment completes");

    let before = world.emulator.calls("ecs", "ListServiceDeployments");
    world.handle_at(scheduled(NOW), NOW).await;
    let per_tick = world.emulator.calls("ecs", "ListServiceDeployments") - before;

    world.emulator.add_fault(json!({"service": "ecs", "operation": "ListServiceDeployments", "kind": "error500", "rate": 1.0}));
    let answer = world
        .try_handle_at(world.pushed("release-42"), NOW + 60)
        .await;
    let api = world
        .deps
        .ecs
        .client()
        .describe_services()
        .cluster("prod")
        .services("api")
        .send()
        .await
        .unwrap();
    let runs = short_task_definition(api.services()[0].task_definition().unwrap());
    assert_eq!(
        per_tick, 0,
        "a tick with nothing in flight and no opted-in native service read {per_tick} service-deployment lists"
    );
    assert!(
        answer.is_ok() && runs != short_task_definition(&world.first),
        "the push for the rolling service api failed because a service that did not opt in could not be read: {answer:?}; api runs {runs}"
    );
}

// --- 8. a duplicate delivered far apart -------------------------------------------------------

/// DESIGN "Event order" 1: the same event twice, far apart, alerts once. release-42 COMPLETED and
/// alerted; release-43 then fails on its alarm and ECS rolls back to blue, which is release-42's
/// own deployment (still listed: blue/green keeps blue). EventBridge then redelivers release-42's
/// COMPLETED event (it retries for 24 hours).
#[tokio::test]
async fn a_completed_event_redelivered_after_the_next_deployment_rolled_back_is_quiet() {
    let world = Strategic::new("BLUE_GREEN", json!({})).await;
    world.push_tag("release-42", NOW).await;
    let first = world.finish(json!({"state": "COMPLETED"}));
    world.handle_at(first.clone(), NOW + 100).await;
    world.push_tag("release-43", NOW + 200).await;
    world.advance(json!({"to": "PRODUCTION_TRAFFIC_SHIFT"}));
    let failed = world.finish(json!({"state": "FAILED", "alarm": ALARM}));
    world.handle_at(failed, NOW + 300).await;
    let again = world.handle_at(first, NOW + 3_600).await;
    assert!(again.to_string().contains("already reported"), "{again:#}");
    let summary = world.summary();
    assert_eq!(
        summary
            .iter()
            .filter(|a| a.starts_with("deployment.succeeded"))
            .count(),
        1,
        "release-42's COMPLETED was alerted twice: {summary:#?}"
    );
}
