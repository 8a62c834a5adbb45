//! deploy-trigger end to end against the emulator: pushes, chat commands, verification, rollback,
//! faults and bad input. The handler is called in-process with a memory alert sink; the demo runs
//! the real binary.

use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType};
use aws_sdk_ecs::Client as Ecs;
use deploy_trigger::config::DeployConfig;
use deploy_trigger::handler::{function_handler, Deps, Invocation};
use ops_core::alert::{MemoryAlerts, Severity};
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::iam::IamSimulator;
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_core::Error;
use ops_e2e::events::scheduled;
use ops_e2e::fixtures::{self, Launch, ACCOUNT, MUTATING_ECS_OPERATIONS, REGISTRY};
use ops_e2e::on_each_launch;
use ops_e2e::redeliver::until_settled;
use ops_e2e::Emulator;
use serde_json::{json, Value};

const NOW: u64 = 1_795_000_000;
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";

struct World {
    emulator: Emulator,
    deps: Deps<MemoryAlerts>,
    ecs: Ecs,
    ec2: aws_sdk_ec2::Client,
    /// Where the services this world creates run.
    launch: Launch,
}

impl World {
    /// An emulator with cluster `prod` (managed) and `staging` (not managed), ECR repositories
    /// `web` and `api`; its services run on EC2.
    async fn new() -> World {
        World::on(Launch::Ec2).await
    }

    /// [`World::new`] whose services run on `launch`.
    async fn on(launch: Launch) -> World {
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
            ecs: EcsServices::new(&sdk),
            iam: IamSimulator::new(&sdk),
            ecr: EcrImages::new(&sdk),
            alerts: MemoryAlerts::default(),
            config: DeployConfig::from_env(&env).expect("config"),
        };
        let ecs = deps.ecs.client().clone();
        for cluster in ["prod", "staging"] {
            ecs.create_cluster()
                .cluster_name(cluster)
                .send()
                .await
                .expect("cluster");
        }
        for repository in ["web", "api"] {
            deps.ecr
                .client()
                .create_repository()
                .repository_name(repository)
                .send()
                .await
                .expect("repository");
        }
        World {
            emulator,
            deps,
            ecs,
            ec2: aws_sdk_ec2::Client::new(&sdk),
            launch,
        }
    }

    async fn handle(&self, payload: Value) -> Result<Value, Error> {
        self.handle_at(payload, NOW).await
    }

    /// Handle `payload` in an invocation whose clock says `now`.
    async fn handle_at(&self, payload: Value, now: u64) -> Result<Value, Error> {
        let invocation = Invocation {
            caller: Caller {
                account_id: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
            now,
        };
        function_handler(payload, &invocation, &self.deps).await
    }

    /// The reconcile tick EventBridge's schedule delivers at `at`.
    async fn tick(&self, at: u64) -> Value {
        self.handle_at(scheduled(at), at)
            .await
            .expect("tick handled")
    }

    /// Finish the service's rollout as `state` at the emulator and lose ECS's event: it is
    /// returned, not delivered.
    fn finish_lost(&self, service: &str, state: &str, rollback: bool) -> Value {
        let body =
            json!({"cluster": "prod", "service": service, "state": state, "rollback": rollback});
        self.emulator
            .control("POST", "/_ops/ecs/finish-deployment", Some(body))
            .expect("finish")["event"]
            .clone()
    }

    /// What chat `status` answers for `service`.
    async fn status(&self, service: &str) -> Value {
        self.handle(chat("status", json!({ "service": service })))
            .await
            .expect("status")
    }

    fn tag_writes(&self) -> u64 {
        self.emulator.calls("ecs", "TagResource")
    }

    /// Push `repository:tag` to ECR; returns (digest, push event).
    fn push(&self, repository: &str, tag: &str) -> (String, Value) {
        let pushed = self
            .emulator
            .control(
                "POST",
                "/_ops/ecr/push",
                Some(json!({"repository": repository, "tag": tag})),
            )
            .expect("push");
        (
            pushed["digest"].as_str().unwrap().to_string(),
            pushed["event"].clone(),
        )
    }

    /// A service `cluster/name` whose family `name` runs `containers`, tagged `tags`.
    async fn service(
        &self,
        cluster: &str,
        name: &str,
        containers: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> String {
        let definition = fixtures::register_for(&self.ecs, name, containers, self.launch).await;
        fixtures::service_for(
            &self.ecs,
            &self.ec2,
            cluster,
            name,
            &definition,
            tags,
            self.launch,
        )
        .await;
        definition
    }

    /// A service running `web:release-41`, opted in for pushes of `release-+` tags.
    async fn release_service(&self, cluster: &str, name: &str) -> String {
        let tags = [
            ("ops:deploy-repository", "web"),
            ("ops:deploy-tag-pattern", "release-+"),
        ];
        self.service(cluster, name, &[("app", &web("release-41"))], &tags)
            .await
    }

    /// Assert that prod/`name` still runs on this world's launch type, with its 2 tasks on
    /// `task_definition` (on Fargate, each with an address in one of the service's subnets).
    async fn assert_runs(&self, name: &str, task_definition: &str) {
        fixtures::assert_runs_on(
            &self.ecs,
            &self.ec2,
            ("prod", name),
            self.launch,
            task_definition,
            2,
        )
        .await;
    }

    async fn running(&self, cluster: &str, name: &str) -> String {
        self.deps
            .ecs
            .describe(cluster, name)
            .await
            .expect("describe")
            .task_definition
    }

    fn mutations(&self) -> u64 {
        MUTATING_ECS_OPERATIONS
            .iter()
            .map(|op| self.emulator.calls("ecs", op))
            .sum()
    }

    /// prod/web opted in; release-1 pushed, deployed and COMPLETED; release-2 pushed and its
    /// rollout started. Returns each release's (digest, push event).
    async fn release_1_done_and_release_2_started(&self) -> ((String, Value), (String, Value)) {
        self.release_service("prod", "web").await;
        let first = self.push("web", "release-1");
        self.handle(first.1.clone())
            .await
            .expect("release-1 deploys");
        self.finish("web", "COMPLETED", false).await;
        let second = self.push("web", "release-2");
        self.handle(second.1.clone())
            .await
            .expect("release-2 deploys");
        (first, second)
    }

    /// Finish the service's rollout as `state` at the emulator and feed ECS's event to the handler.
    async fn finish(&self, service: &str, state: &str, rollback: bool) -> Value {
        let body =
            json!({"cluster": "prod", "service": service, "state": state, "rollback": rollback});
        let finished = self
            .emulator
            .control("POST", "/_ops/ecs/finish-deployment", Some(body))
            .expect("finish");
        self.handle(finished["event"].clone())
            .await
            .expect("state change handled")
    }
}

fn web(tag: &str) -> String {
    format!("{REGISTRY}/web:{tag}")
}

fn chat(command: &str, args: Value) -> Value {
    json!({"command": command, "args": args, "requested_by": "alice"})
}

#[tokio::test]
async fn a_push_deploys_to_every_matching_opted_in_service_and_only_them() {
    let world = World::new().await;
    let web_before = world.release_service("prod", "web").await;
    let worker_before = world.release_service("prod", "worker").await;
    let api_before = world
        .service(
            "prod",
            "api",
            &[("app", &format!("{REGISTRY}/api:v1"))],
            &[("ops:deploy-repository", "api")],
        )
        .await;
    let legacy_before = world
        .service("prod", "legacy", &[("app", &web("release-41"))], &[])
        .await;
    let staging_before = world.release_service("staging", "web").await;
    let (digest, event) = world.push("web", "release-42");

    let answer = world.handle(event).await.expect("push handled");

    assert_eq!(answer["status"], "started", "{answer:#}");
    let mut deployed: Vec<&str> = answer["started"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    deployed.sort();
    assert_eq!(deployed, ["prod/web", "prod/worker"]);
    for (name, before) in [("web", &web_before), ("worker", &worker_before)] {
        let now = world.running("prod", name).await;
        assert_ne!(&now, before);
        let image = &fixtures::images(&world.ecs, &now).await["app"];
        assert_eq!(
            image,
            &format!("{REGISTRY}/web:release-42@{digest}"),
            "pinned by digest, tag kept for humans"
        );
    }
    assert_eq!(world.running("prod", "api").await, api_before);
    assert_eq!(
        world.running("prod", "legacy").await,
        legacy_before,
        "not opted in"
    );
    assert_eq!(
        world.running("staging", "web").await,
        staging_before,
        "cluster not managed"
    );
    assert!(
        world.deps.alerts.sent().is_empty(),
        "no alert before ECS verifies the rollout"
    );
}

#[tokio::test]
async fn the_same_push_a_hundred_times_registers_exactly_one_revision() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (_, event) = world.push("web", "release-42");

    for _ in 0..100 {
        world.handle(event.clone()).await.expect("push handled");
    }

    assert_eq!(
        fixtures::revisions(&world.ecs, "web").await.len(),
        2,
        "the original and one new revision"
    );
    assert_eq!(
        world.emulator.calls("ecs", "RegisterTaskDefinition"),
        2,
        "the fixture's and one by the function"
    );
    assert_eq!(world.emulator.calls("ecs", "UpdateService"), 1);
}

async fn a_multi_container_task_changes_only_the_named_container_and_keeps_every_other_field(
    launch: Launch,
) {
    let world = World::on(launch).await;
    let containers = [
        ("app", web("release-41")),
        ("migrations", web("release-41")),
        ("log-router", "fluent/fluent-bit:3".to_string()),
    ];
    let containers: Vec<(&str, &str)> = containers.iter().map(|(n, i)| (*n, i.as_str())).collect();
    let before = world
        .service(
            "prod",
            "web",
            &containers,
            &[
                ("ops:deploy-repository", "web"),
                ("ops:deploy-containers", "app"),
                ("ops:deploy-tag-pattern", "release-+"),
            ],
        )
        .await;
    let (digest, event) = world.push("web", "release-42");

    world.handle(event).await.expect("push handled");

    let after = world.running("prod", "web").await;
    let old = world
        .ecs
        .describe_task_definition()
        .task_definition(&before)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let new = world
        .ecs
        .describe_task_definition()
        .task_definition(&after)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let (old_td, new_td) = (
        old.task_definition.clone().unwrap(),
        new.task_definition.clone().unwrap(),
    );
    let new_images = fixtures::images(&world.ecs, &after).await;
    assert_eq!(
        new_images["app"],
        format!("{REGISTRY}/web:release-42@{digest}")
    );
    assert_eq!(
        new_images["migrations"],
        web("release-41"),
        "not named, not changed"
    );
    assert_eq!(new_images["log-router"], "fluent/fluent-bit:3");
    for (old_c, new_c) in old_td
        .container_definitions()
        .iter()
        .zip(new_td.container_definitions())
    {
        let mut expected = old_c.clone();
        expected.image = new_c.image.clone();
        assert_eq!(
            new_c,
            &expected,
            "container {:?} kept every field but the image",
            old_c.name()
        );
    }
    assert_eq!(new_td.task_role_arn(), old_td.task_role_arn());
    assert_eq!(new_td.execution_role_arn(), old_td.execution_role_arn());
    assert_eq!(
        (new_td.cpu(), new_td.memory()),
        (old_td.cpu(), old_td.memory())
    );
    assert_eq!(new_td.volumes(), old_td.volumes());
    assert_eq!(
        (new_td.network_mode(), new_td.requires_compatibilities()),
        (old_td.network_mode(), old_td.requires_compatibilities()),
        "where the task runs is kept"
    );
    assert_eq!(new_td.compatibilities(), old_td.compatibilities());
    assert!(
        new.tags()
            .iter()
            .any(|t| t.key() == Some("team") && t.value() == Some("payments")),
        "tags kept"
    );
    assert!(new
        .tags()
        .iter()
        .any(|t| t.key() == Some("ops:image-digest") && t.value() == Some(digest.as_str())));
}

on_each_launch!(
    a_multi_container_task_changes_only_the_named_container_and_keeps_every_other_field
);

#[tokio::test]
async fn a_tag_that_does_not_match_the_pattern_changes_nothing() {
    let world = World::new().await;
    let before = world.release_service("prod", "web").await;
    let (_, event) = world.push("web", "feature-login");
    let mutations_before = world.mutations();

    let answer = world.handle(event).await.expect("push handled");

    assert_eq!(answer["status"], "no_change");
    assert_eq!(
        answer["notes"][0],
        "prod/web: tag `feature-login` does not match its pattern `release-+`"
    );
    assert_eq!(world.running("prod", "web").await, before);
    assert_eq!(world.mutations(), mutations_before);
}

async fn a_completed_rollout_is_reported_once_with_everything_ops_need(launch: Launch) {
    let world = World::on(launch).await;
    world.release_service("prod", "web").await;
    let (digest, event) = world.push("web", "release-42");
    world.handle(event).await.unwrap();

    let answer = world.finish("web", "COMPLETED", false).await;
    world.finish("web", "COMPLETED", false).await; // ECS may deliver twice; the emulator re-sends
    world
        .assert_runs("web", &world.running("prod", "web").await)
        .await;

    assert_eq!(answer["outcome"]["succeeded"], true, "{answer:#}");
    let alerts = world.deps.alerts.sent();
    assert_eq!(
        alerts.len(),
        1,
        "one alert, however often the event arrives: {alerts:#?}"
    );
    let alert = &alerts[0];
    assert_eq!(alert.severity, Severity::Info);
    assert_eq!(alert.event_type, "deployment.succeeded");
    assert_eq!(
        alert.title,
        format!("prod/web now runs web:release-42@{}", &digest[..19])
    );
    assert_eq!(alert.before.as_deref(), Some("web:1 (app: web:release-41)"));
    assert!(
        alert
            .after
            .as_deref()
            .unwrap()
            .starts_with("web:2 (app: web:release-42@sha256:"),
        "{:?}",
        alert.after
    );
    assert!(
        alert.why.starts_with("Started by ECR push."),
        "{}",
        alert.why
    );
    assert_eq!(alert.context["duration"], "0m00s");
    // web:1 was never verified, so a rollback would be refused: the alert offers none (issue
    // "First day": a line that cannot work is not printed) and says how to replace the release.
    assert_eq!(alert.undo, None);
    assert!(
        alert.next_steps[0].ends_with(r#"to replace it, push or deploy another image (the deploy command: @Amazon Q lambda invoke --function-name deploy-trigger --payload {"command":"help"})"#),
        "{:?}",
        alert.next_steps
    );
    let refused = world
        .handle(json!({"command": "rollback", "args": {"service": "prod/web"}}))
        .await
        .expect_err("nothing to roll back to");
    assert!(
        refused
            .to_string()
            .contains("there is no earlier one to roll back to"),
        "{refused}"
    );
    let service = world.deps.ecs.describe("prod", "web").await.unwrap();
    assert_eq!(
        service.tag("ops:deploy-last-completed"),
        Some(service.task_definition.as_str())
    );
}

on_each_launch!(a_completed_rollout_is_reported_once_with_everything_ops_need);

async fn a_failed_rollout_is_a_failure_alert_and_never_claimed_as_success(launch: Launch) {
    let world = World::on(launch).await;
    let first = world.release_service("prod", "web").await;
    world.finish("web", "COMPLETED", false).await;
    let (_, event) = world.push("web", "release-42");
    world.handle(event).await.unwrap();

    let answer = world.finish("web", "FAILED", true).await;

    assert_eq!(answer["outcome"]["succeeded"], false);
    let alerts = world.deps.alerts.sent();
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.event_type == "deployment.succeeded")
            .count(),
        1,
        "only the first rollout"
    );
    let failed = alerts.last().unwrap();
    assert_eq!(failed.severity, Severity::Critical);
    assert_eq!(failed.event_type, "deployment.failed");
    assert_eq!(
        failed.title,
        "prod/web deployment of web:2 FAILED; ECS rolled back to web:1"
    );
    assert!(!failed.title.contains("now runs"));
    let service = world.deps.ecs.describe("prod", "web").await.unwrap();
    assert_eq!(
        service.tag("ops:deploy-last-completed"),
        Some(first.as_str()),
        "a failure is never recorded as good"
    );
    world.assert_runs("web", &first).await;
}

on_each_launch!(a_failed_rollout_is_a_failure_alert_and_never_claimed_as_success);

async fn rollback_lands_on_the_last_completed_revision_not_the_previous_number(launch: Launch) {
    let world = World::on(launch).await;
    world.release_service("prod", "web").await;
    world.finish("web", "COMPLETED", false).await; // web:1 verified
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    world.finish("web", "COMPLETED", false).await; // web:2 verified
    let verified = world.deps.alerts.sent();
    assert_eq!(
        verified[0].undo, None,
        "web:1 is the first verified: nothing to undo to"
    );
    assert_eq!(
        verified[1].undo.as_deref(),
        Some(
            r#"@Amazon Q lambda invoke --function-name deploy-trigger --payload {"args":{"service":"prod/web"},"command":"rollback"}"#
        ),
        "web:2 can be undone to web:1"
    );
    let good = world.running("prod", "web").await;
    world
        .handle(world.push("web", "release-43").1)
        .await
        .unwrap();
    world.finish("web", "FAILED", false).await; // web:3 failed and stays primary
    world
        .handle(world.push("web", "release-44").1)
        .await
        .unwrap(); // web:4 is rolling out
    assert!(world.running("prod", "web").await.ends_with("web:4"));

    let dry = world
        .handle(json!({"command": "rollback", "args": {"service": "prod/web"}, "dry_run": true}))
        .await
        .unwrap();
    assert_eq!(dry["status"], "planned");
    assert!(
        world.running("prod", "web").await.ends_with("web:4"),
        "dry-run changed nothing"
    );
    let answer = world
        .handle(chat("rollback", json!({"service": "web"})))
        .await
        .expect("rollback");

    assert_eq!(answer["status"], "started", "{answer:#}");
    assert_eq!(answer["rollback_to"], "web:2");
    assert_eq!(
        world.running("prod", "web").await,
        good,
        "web:2, the last COMPLETED; not web:3, the previous number"
    );
    world.finish("web", "COMPLETED", false).await;
    world.assert_runs("web", &good).await;
    let alert = world.deps.alerts.sent().pop().unwrap();
    assert!(
        alert.why.starts_with("Started by chat rollback by alice."),
        "{}",
        alert.why
    );
}

on_each_launch!(rollback_lands_on_the_last_completed_revision_not_the_previous_number);

#[tokio::test]
async fn a_chat_deploy_by_tag_resolves_the_digest_and_answers_how_to_follow_it() {
    let world = World::new().await;
    world
        .service(
            "prod",
            "web",
            &[("app", &web("release-41"))],
            &[("ops:deploy-repository", "web")],
        )
        .await;
    let (digest, _) = world.push("web", "hotfix-7");

    let dry = world.handle(json!({"command": "deploy", "args": {"service": "prod/web", "tag": "hotfix-7"}, "dry_run": true})).await.unwrap();
    assert_eq!(dry["status"], "planned");
    assert_eq!(
        world.emulator.calls("ecs", "UpdateService"),
        0,
        "dry-run changes nothing"
    );
    let answer = world
        .handle(chat(
            "deploy",
            json!({"service": "prod/web", "tag": "hotfix-7"}),
        ))
        .await
        .expect("deploy");

    assert_eq!(answer["status"], "started");
    assert_eq!(answer["image"], format!("{REGISTRY}/web:hotfix-7@{digest}"));
    assert!(answer["follow"][0]
        .as_str()
        .unwrap()
        .contains(r#""command":"status""#));
    let status = world
        .handle(chat("status", json!({"service": "prod/web"})))
        .await
        .unwrap();
    assert_eq!(status["rollout"]["state"], "IN_PROGRESS");
    assert_eq!(status["in_flight"]["trigger"]["requested_by"], "alice");
}

#[tokio::test]
async fn thirty_percent_throttling_still_ends_with_one_revision_deployed() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (digest, event) = world.push("web", "release-42");
    world
        .emulator
        .add_fault(json!({"service": "ecs", "kind": "throttle", "rate": 0.3}));

    // Lambda redelivers an event whose invocation failed with a retryable error.
    let outcome = until_settled(10, || world.handle(event.clone())).await;

    outcome.expect("the deploy went through despite throttling");
    let fired = world.emulator.faults_fired();
    assert!(
        fired >= 2,
        "throttling really happened ({fired} calls throttled)"
    );
    world
        .emulator
        .control("DELETE", "/_ops/faults", None)
        .unwrap();
    assert_eq!(
        fixtures::revisions(&world.ecs, "web").await.len(),
        2,
        "exactly one new revision"
    );
    let running = world.running("prod", "web").await;
    assert!(fixtures::images(&world.ecs, &running).await["app"].ends_with(&digest));
}

#[tokio::test]
async fn malformed_events_and_commands_get_specific_errors_and_change_nothing() {
    let world = World::new().await;
    world
        .service(
            "prod",
            "web",
            &[("app", &web("release-41"))],
            &[("ops:deploy-repository", "web")],
        )
        .await;
    world
        .service(
            "prod",
            "api",
            &[("app", &format!("{REGISTRY}/api:v1"))],
            &[],
        )
        .await;
    let (_, push) = world.push("web", "latest");
    let with = |path: &[&str], value: Value| {
        let mut event = push.clone();
        let mut target = &mut event;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        event
    };
    let foreign = with(&["account"], json!("999999999999"));
    let cases: Vec<(Value, &str)> = vec![
        (json!("deploy"), "unrecognised payload: the payload is not a JSON object"),
        (json!({"hello": 1}), "unrecognised payload: expected an EventBridge event"),
        (json!({"alarmData": {}}), "unrecognised payload: deploy-trigger does not handle CloudWatch alarm actions"),
        (with(&["detail", "repository-name"], json!(null)), "malformed `ECR Image Action` event: invalid type: null, expected a string"),
        (with(&["detail", "repository-name"], json!("Web")), "malformed `ECR Image Action` event: `repository-name` = `Web` is not an ECR repository name"),
        (with(&["detail", "image-digest"], json!("sha256:1234")), "sha256 digest has 4 hex digits; it must have 64"),
        (with(&["detail", "image-digest"], json!("md5:abc")), "digest algorithm `md5` is not supported"),
        (with(&["detail", "image-tag"], json!("-bad")), "tag `-bad` must be 1 to 128 letters"),
        (foreign, "refused: images from registry `999999999999.dkr.ecr.us-east-1.amazonaws.com` are not allowed"),
        (json!({"detail-type": "ECS Deployment State Change", "source": "aws.ecs", "resources": [], "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": "x", "updatedAt": "now"}}), "`resources` names no service ARN"),
        (json!({"detail-type": "ECS Deployment State Change", "source": "aws.ecs", "resources": ["arn:aws:ecs:us-east-1:1:cluster/prod"], "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": "x", "updatedAt": "now"}}), "is not a service ARN"),
        (json!({"command": "deploy", "args": {"service": "prod/web"}}), "command `deploy`: give a `tag` or a `digest` of the image to deploy"),
        (json!({"command": "deploy", "args": {"service": "prod/web", "tag": "a", "digest": "sha256:x"}}), "command `deploy`: give a `tag` or a `digest`, not both"),
        (json!({"command": "deploy", "args": {"service": "prod/web", "tag": "bad tag!"}}), "tag `bad tag!` must be 1 to 128 letters"),
        (json!({"command": "deploy", "args": {"service": "prod/web", "digest": "sha256:zz"}}), "sha256 digest must be lowercase hex digits, found `z`"),
        (json!({"command": "deploy", "args": {"service": "prod/api", "tag": "v2"}}), "refused: prod/api has not opted in to deploys: it has no `ops:deploy-repository` tag"),
        (json!({"command": "deploy", "args": {"service": "staging/web", "tag": "latest"}}), "refused: cluster `staging` is not one deploy-trigger manages (it manages prod)"),
        (json!({"command": "deploy", "args": {"service": "prod/nope", "tag": "latest"}}), "ECS service `prod/nope` not found"),
        (json!({"command": "deploy", "args": {"service": "prod/web", "tag": "never-pushed"}}), "ECR image `web:never-pushed` not found"),
        (json!({"command": "rollback", "args": {"service": "prod/web"}}), "refused: no deployment of prod/web has been verified COMPLETED yet"),
        (json!({"command": "deploy", "args": {"service": "prod/web", "tag": "latest"}, "dryrun": true}), "malformed command: unknown field `dryrun`"),
        (json!({"command": "deply", "args": {}}), "unknown command `deply` (did you mean `deploy`?)"),
        (json!({"command": "status", "args": {"service": 7}}), "command `status`: invalid type: integer `7`, expected a string"),
    ];
    assert!(cases.len() >= 15);
    let mutations_before = world.mutations();
    for (payload, expected) in &cases {
        let error = world
            .handle(payload.clone())
            .await
            .expect_err(&format!("{payload} should be rejected"));
        let message = error.to_string();
        assert!(
            message.contains(expected),
            "payload {payload}\n  got      {message}\n  expected {expected}"
        );
        assert!(!error.retryable(), "bad input is not retried: {message}");
    }
    assert_eq!(
        world.mutations(),
        mutations_before,
        "no bad input changed anything in ECS"
    );
    assert!(world.deps.alerts.sent().is_empty());
}

#[tokio::test]
async fn a_delete_or_failed_push_is_ignored() {
    let world = World::new().await;
    let (_, push) = world.push("web", "latest");
    world
        .service(
            "prod",
            "web",
            &[("app", &web("release-41"))],
            &[("ops:deploy-repository", "web")],
        )
        .await;
    let mutations_before = world.mutations();
    for (action, result) in [("DELETE", "SUCCESS"), ("PUSH", "FAILURE")] {
        let mut event = push.clone();
        event["detail"]["action-type"] = json!(action);
        event["detail"]["result"] = json!(result);
        let answer = world.handle(event).await.unwrap();
        assert_eq!(answer["status"], "ignored");
    }
    assert_eq!(world.mutations(), mutations_before);
}

#[tokio::test]
async fn an_opted_in_service_whose_tags_do_not_fit_gets_a_warning_and_the_others_still_deploy() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let broken_tags = [
        ("ops:deploy-repository", "web"),
        ("ops:deploy-tag-pattern", "release-+"),
        ("ops:deploy-containers", "server"),
    ];
    let broken_before = world
        .service(
            "prod",
            "broken",
            &[("app", &web("release-41"))],
            &broken_tags,
        )
        .await;
    let (_, event) = world.push("web", "release-42");

    let answer = world.handle(event).await.expect("push handled");

    assert_eq!(answer["started"][0]["service"], "prod/web");
    assert_eq!(world.running("prod", "broken").await, broken_before);
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].severity, Severity::Warning);
    assert_eq!(alerts[0].event_type, "deployment.not-started");
    assert_eq!(
        alerts[0].title,
        "prod/broken was not deployed web:release-42"
    );
    assert!(
        alerts[0].what.ends_with(
            "tag `ops:deploy-containers` names `server`, but broken:1 has no such container (it has app)"
        ),
        "{}",
        alerts[0].what
    );
}

#[tokio::test]
async fn a_colour_of_a_blue_green_app_is_not_deployed_in_place_and_ops_are_told_why() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let colour_before = world
        .service(
            "prod",
            "shop-blue",
            &[("app", &web("release-41"))],
            &[
                ("ops:deploy-repository", "web"),
                ("ops:deploy-tag-pattern", "release-+"),
                ("ops:swap-app", "shop"),
            ],
        )
        .await;
    let (_, event) = world.push("web", "release-42");

    let answer = world.handle(event).await.expect("push handled");

    assert_eq!(answer["started"][0]["service"], "prod/web");
    assert_eq!(world.running("prod", "shop-blue").await, colour_before);
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_type, "deployment.not-started");
    assert!(
        alerts[0]
            .what
            .contains("it is a colour of blue/green app `shop` (tag `ops:swap-app`), so it is never deployed in place"),
        "{}",
        alerts[0].what
    );
}

#[tokio::test]
async fn a_service_on_the_code_deploy_or_external_controller_is_refused_with_its_reason_and_never_half_changed(
) {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let opt_in = [
        ("ops:deploy-repository", "web"),
        ("ops:deploy-tag-pattern", "release-+"),
    ];
    let mut before = Vec::new();
    for (name, controller) in [
        ("legacy", DeploymentControllerType::CodeDeploy),
        ("tasksets", DeploymentControllerType::External),
    ] {
        let definition = fixtures::register(&world.ecs, name, &[("app", &web("release-41"))]).await;
        world
            .ecs
            .create_service()
            .cluster("prod")
            .service_name(name)
            .task_definition(&definition)
            .desired_count(2)
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(controller)
                    .build()
                    .expect("controller"),
            )
            .set_tags(Some(
                opt_in
                    .iter()
                    .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .send()
            .await
            .expect("create the service");
        before.push((name, definition));
    }
    let (_, event) = world.push("web", "release-42");
    let registered_before = world.emulator.calls("ecs", "RegisterTaskDefinition");

    let answer = world.handle(event).await.expect("push handled");

    assert_eq!(answer["started"].as_array().unwrap().len(), 1, "{answer:#}");
    assert_eq!(answer["started"][0]["service"], "prod/web");
    assert_eq!(
        world.emulator.calls("ecs", "RegisterTaskDefinition") - registered_before,
        1,
        "only prod/web's revision: nothing is registered for a service that cannot take it"
    );
    for (name, definition) in &before {
        assert_eq!(&world.running("prod", name).await, definition);
        assert_eq!(fixtures::revisions(&world.ecs, name).await.len(), 1);
    }
    let alerts = world.deps.alerts.sent();
    let refusals: Vec<(&str, &str)> = alerts
        .iter()
        .filter(|a| a.event_type == "deployment.not-started")
        .map(|a| (a.resource.as_str(), a.what.as_str()))
        .collect();
    assert_eq!(
        refusals.len(),
        2,
        "one alert per refused service: {alerts:#?}"
    );
    for (service, expected) in [
        ("prod/legacy", "it runs on the CODE_DEPLOY deployment controller: ECS takes a new task definition for it only through an AWS CodeDeploy deployment (UpdateService refuses one), so deploy-trigger never starts a deployment of it and changed nothing; deploy it with CodeDeploy"),
        ("prod/tasksets", "it runs on the EXTERNAL deployment controller: its tasks come from task sets your own deployment tool creates (CreateTaskSet)"),
    ] {
        let what = refusals
            .iter()
            .find(|(resource, _)| *resource == service)
            .map(|(_, what)| *what)
            .unwrap_or_else(|| panic!("no alert for {service}: {refusals:#?}"));
        assert!(what.contains(expected), "{expected}\nnot in\n{what}");
    }

    let mutations = world.mutations();
    for command in [
        json!({"command": "deploy", "args": {"service": "prod/legacy", "tag": "release-42"}}),
        json!({"command": "rollback", "args": {"service": "prod/tasksets"}}),
    ] {
        let refused = world.handle(command.clone()).await.expect_err("refused");
        assert!(
            refused.to_string().contains("deployment controller"),
            "{command}: {refused}"
        );
    }
    assert_eq!(
        world.mutations(),
        mutations,
        "a refused command changes nothing"
    );
    let status = world.status("prod/legacy").await;
    assert!(
        status
            .to_string()
            .contains("CODE_DEPLOY deployment controller"),
        "{status:#}"
    );
}

#[tokio::test]
async fn doctor_proves_each_duty_on_each_opted_in_service_and_changes_nothing() {
    let mut world = World::new().await;
    world.release_service("prod", "web").await;
    world
        .service("staging", "other", &[("app", &web("release-41"))], &[])
        .await;
    let iam = aws_sdk_iam::Client::new(&world.emulator.sdk_config().await);
    let role = fixtures::function_role(
        &iam,
        "opsstack-deploy-trigger-role",
        &fixtures::deploy_trigger_policy("prod", TOPIC),
    )
    .await;
    world.deps.config.common.role_arn = Some(role);
    let before = world.mutations();

    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");

    let rows = fixtures::doctor_table(&answer);
    assert_eq!(answer["ok"], true, "{rows:#?}");
    let service = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web");
    for duty in [
        format!("ecs:UpdateService on {service}"),
        format!("ecs:DescribeServices on {service}"),
        format!("ecs:TagResource on {service}"),
        "ecs:ListServices on *".to_string(),
        format!("iam:PassRole on arn:aws:iam::{ACCOUNT}:role/web-task"),
        format!("ecr:DescribeImages on arn:aws:ecr:us-east-1:{ACCOUNT}:repository/web"),
        "sns:Publish on arn:aws:sns:us-east-1:123456789012:ops-alerts".to_string(),
    ] {
        assert!(
            rows.iter().any(|row| row.starts_with("ok")
                && row.contains(&format!("permission  {duty} - allowed by"))),
            "no allowed row for {duty}: {rows:#?}"
        );
    }
    assert!(
        rows.iter().any(|row| row
            .contains("resource    service prod/web - opted in to pushes of repository `web`")),
        "{rows:#?}"
    );
    assert!(
        rows.iter().all(|row| !row.contains("staging")),
        "only managed clusters: {rows:#?}"
    );
    assert_eq!(world.mutations(), before, "doctor changes nothing in ECS");
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].event_type.as_str(), sent[0].severity),
        ("doctor", Severity::Info)
    );
}

#[tokio::test]
async fn doctor_names_the_action_and_resource_a_removed_grant_denies() {
    let mut world = World::new().await;
    world.release_service("prod", "web").await;
    let iam = aws_sdk_iam::Client::new(&world.emulator.sdk_config().await);
    let name = "opsstack-deploy-trigger-role";
    let role =
        fixtures::function_role(&iam, name, &fixtures::deploy_trigger_policy("prod", TOPIC)).await;
    let without = fixtures::without_statement(
        &fixtures::deploy_trigger_policy("prod", TOPIC),
        "ReadAndDeployServicesInManagedClusters",
    );
    fixtures::put_function_policy(&iam, name, &without).await;
    world.deps.config.common.role_arn = Some(role);

    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");

    let rows = fixtures::doctor_table(&answer);
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["summary"]["denied"], 2, "{rows:#?}");
    assert_eq!(
        rows[0],
        format!("DENIED       permission  ecs:DescribeServices on arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web - no statement of the role allows it: implicitly denied (reads prod/web)")
    );
    assert_eq!(
        rows[1],
        format!("DENIED       permission  ecs:UpdateService on arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web - no statement of the role allows it: implicitly denied (deploys to prod/web)")
    );
    let alert = &world.deps.alerts.sent()[0];
    assert_eq!(
        alert.title,
        "deploy-trigger: doctor found 2 thing(s) to look at"
    );
    assert!(
        alert.next_steps[1].starts_with("DENIED: ecs:UpdateService on"),
        "{:?}",
        alert.next_steps
    );
}

#[tokio::test]
async fn doctor_without_its_role_says_iam_was_not_asked() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");
    assert_eq!(answer["ok"], false);
    let rows = fixtures::doctor_table(&answer);
    assert_eq!(
        rows[0],
        "PROBLEM      config      OPS_ROLE_ARN - not set: the function does not know its role, so IAM cannot be asked about it"
    );
    assert!(
        rows[1].starts_with("undetermined permission  ")
            && rows[1].ends_with("OPS_ROLE_ARN is not set, so the function does not know its role and IAM was not asked"),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn doctor_never_calls_ok_what_a_deny_it_could_not_evaluate_may_forbid() {
    let mut world = World::new().await;
    world.release_service("prod", "web").await;
    let iam = aws_sdk_iam::Client::new(&world.emulator.sdk_config().await);
    let mut policy = fixtures::deploy_trigger_policy("prod", TOPIC);
    // A guardrail an account may carry: no deploys after a date. The simulator is given no
    // aws:CurrentTime, so it cannot know whether the Deny applies to the real call.
    policy["Statement"].as_array_mut().unwrap().push(json!({
        "Sid": "FreezeDeploys", "Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    }));
    let role = fixtures::function_role(&iam, "opsstack-deploy-trigger-frozen", &policy).await;
    world.deps.config.common.role_arn = Some(role);

    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");

    let rows = fixtures::doctor_table(&answer);
    assert_eq!(answer["ok"], false, "{rows:#?}");
    let update = rows
        .iter()
        .find(|row| {
            row.contains(&format!(
                "ecs:UpdateService on arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web"
            ))
        })
        .expect("an UpdateService row");
    assert!(update.starts_with("undetermined permission  "), "{update}");
    assert!(update.contains("aws:CurrentTime"), "{update}");
}

#[tokio::test]
async fn doctor_names_a_role_iam_does_not_know_once() {
    let mut world = World::new().await;
    world.release_service("prod", "web").await;
    world.deps.config.common.role_arn = Some(format!("arn:aws:iam::{ACCOUNT}:role/no-such-role"));

    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");

    let rows = fixtures::doctor_table(&answer);
    assert_eq!(answer["summary"]["problem"], 1, "{rows:#?}");
    assert!(
        rows[0].starts_with(&format!("PROBLEM      config      OPS_ROLE_ARN - IAM knows no role arn:aws:iam::{ACCOUNT}:role/no-such-role: ")),
        "{rows:#?}"
    );
    assert!(
        rows.iter().all(|row| !row.contains(" permission  ")),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn doctor_names_a_registry_policy_and_a_container_tag_that_would_refuse_every_push() {
    let mut world = World::new().await;
    world
        .service(
            "prod",
            "web",
            &[("app", &web("release-41"))],
            &[
                ("ops:deploy-repository", "web"),
                ("ops:deploy-containers", "ghost"),
            ],
        )
        .await;
    world.deps.config.registries.allowed = vec!["registry.example.com".into()];

    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");

    let rows = fixtures::doctor_table(&answer);
    assert!(rows.contains(&format!(
        "PROBLEM      config      ALLOWED_REGISTRIES - every push to this account's ECR ({REGISTRY}) would be refused: it is not in the list"
    )), "{rows:#?}");
    assert!(rows.contains(&"PROBLEM      resource    service prod/web - a push could not deploy here: tag `ops:deploy-containers` names `ghost`, but web:1 has no such container (it has app)".to_string()), "{rows:#?}");
    let (_, event) = world.push("web", "release-42");
    let refused = world
        .handle(event)
        .await
        .expect_err("the push is refused as doctor said");
    assert!(refused.to_string().contains("are not allowed"), "{refused}");
}

#[tokio::test]
async fn two_pushes_handled_at_once_end_on_the_newer_image_whichever_update_lands_last() {
    // Found in review of the model's blind spot (the template's reserved concurrency of 1 is what
    // kept two pushes apart): release-1 and release-2 are handled at once, and release-1's
    // UpdateService is held up so that it lands after release-2's. ECS has no conditional
    // update, so without a check after acting production stayed on release-1, and no later event
    // would put it right.
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (_, older) = world.push("web", "release-1");
    let (newer_digest, newer) = world.push("web", "release-2");
    world.emulator.add_fault(json!({"service": "ecs", "operation": "UpdateService", "kind": "latency", "latency_ms": 1500, "on_calls": [1]}));

    let newer_once_older_is_updating = async {
        for waited in 0.. {
            if world.emulator.calls("ecs", "UpdateService") > 0 {
                break;
            }
            assert!(waited < 500, "release-1 never reached UpdateService");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        world.handle(newer).await
    };
    let (older_answer, newer_answer) =
        tokio::join!(world.handle(older), newer_once_older_is_updating);
    let (older_answer, newer_answer) = (older_answer.unwrap(), newer_answer.unwrap());

    let runs = world.running("prod", "web").await;
    let images = fixtures::images(&world.ecs, &runs).await;
    assert_eq!(
        images["app"],
        format!("{REGISTRY}/web:release-2@{newer_digest}"),
        "production ends on the newer image: {older_answer:#}\n{newer_answer:#}"
    );
    assert_eq!(
        older_answer["restored"],
        json!(["prod/web: this push's deployment overtook the one of web:release-2, pushed after it; that one is deployed again, so production does not stay on the older image"]),
        "the older push's run says what it did: {older_answer:#}"
    );
    assert_eq!(newer_answer["restored"], json!([]), "{newer_answer:#}");
    assert_eq!(
        fixtures::revisions(&world.ecs, "web").await.len(),
        3,
        "release-2's revision is deployed again unchanged, not cloned"
    );
    let service = world.deps.ecs.describe("prod", "web").await.unwrap();
    assert!(
        service
            .tag("ops:deploy-newest-pushed")
            .is_some_and(|t| t.contains(&newer_digest)),
        "the newest image recorded is release-2: {:?}",
        service.tag("ops:deploy-newest-pushed")
    );
}

async fn a_late_redelivered_push_never_moves_production_back_and_says_why(launch: Launch) {
    let world = World::on(launch).await;
    let ((release_1, push_1), (release_2, push_2)) =
        world.release_1_done_and_release_2_started().await;
    world.finish("web", "COMPLETED", false).await;
    let runs = world.running("prod", "web").await;
    let registered = world.emulator.calls("ecs", "RegisterTaskDefinition");
    let updated = world.emulator.calls("ecs", "UpdateService");
    let alerts_before = world.deps.alerts.sent().len();

    // EventBridge redelivers the release-1 push.
    let answer = world
        .handle(push_1.clone())
        .await
        .expect("a late push is answered");

    assert_eq!(
        world.emulator.calls("ecs", "RegisterTaskDefinition"),
        registered,
        "no revision registered"
    );
    assert_eq!(
        world.emulator.calls("ecs", "UpdateService"),
        updated,
        "no UpdateService"
    );
    assert_eq!(world.running("prod", "web").await, runs);
    assert!(
        fixtures::images(&world.ecs, &runs).await["app"].ends_with(&release_2),
        "still runs release-2"
    );
    assert_eq!(
        answer["status"], "recorded",
        "only the refusal is remembered: {answer:#}"
    );
    let refused = &answer["refused"][0];
    assert_eq!(refused["service"], "prod/web", "{answer:#}");
    assert_eq!(refused["refused"], "web:release-1");
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("a late or redelivered push never moves a service back")
            && reason.contains(&format!("web:release-2@{}", &release_2[..19])),
        "{reason}"
    );
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), alerts_before + 1, "{alerts:#?}");
    let alert = alerts.last().unwrap();
    assert_eq!(alert.severity, Severity::Info);
    assert_eq!(alert.event_type, "deployment.refused");
    assert_eq!(
        alert.title,
        format!(
            "prod/web: late push of web:release-1 refused; it keeps running app: web:release-2@{}",
            &release_2[..19]
        )
    );
    assert!(!alert.title.contains("now runs"));
    assert_ne!(release_1, release_2);

    // Redelivered again, and again: refused each time, alerted no more.
    for _ in 0..2 {
        let again = world.handle(push_1.clone()).await.expect("refused again");
        assert_eq!(again["status"], "no_change", "{again:#}");
        assert_eq!(again["refused"][0]["repeat"], true, "{again:#}");
        assert!(
            again["notes"][0]
                .as_str()
                .unwrap()
                .ends_with("(refused and alerted before: not alerted again)"),
            "{again:#}"
        );
    }
    assert_eq!(
        world.deps.alerts.sent().len(),
        alerts_before + 1,
        "one alert per refused push"
    );
    println!(
        "late push of release-1, delivered 3 times: {} alert(s): {}",
        world.deps.alerts.sent().len() - alerts_before,
        alert.title
    );

    // The newest push redelivered is still "already deployed", with no alert, as before.
    let again = world.handle(push_2).await.expect("duplicate handled");
    assert_eq!(again["status"], "no_change", "{again:#}");
    assert_eq!(again["refused"], json!([]));
    assert_eq!(world.deps.alerts.sent().len(), alerts_before + 1);
    assert_eq!(world.emulator.calls("ecs", "UpdateService"), updated);
}

on_each_launch!(a_late_redelivered_push_never_moves_production_back_and_says_why);

#[tokio::test]
async fn a_new_tag_on_an_older_image_is_refused_and_the_refusal_says_it_is_a_retag_not_a_late_push()
{
    // Found by an independent test: `put-image` of release-1's manifest as release-3 (a genuine
    // new push, an hour later) was refused as "a late or redelivered push", which it is not.
    let world = World::new().await;
    let ((release_1, push_1), _) = world.release_1_done_and_release_2_started().await;
    world.finish("web", "COMPLETED", false).await;
    let ecr = world.deps.ecr.client();
    let manifest = ecr
        .batch_get_image()
        .repository_name("web")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&release_1)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_manifest()
        .unwrap()
        .to_string();
    ecr.put_image()
        .repository_name("web")
        .image_manifest(manifest)
        .image_tag("release-3")
        .send()
        .await
        .unwrap();
    // The emulator times a push event when it records the push: an hour later is a new push.
    let later = ops_core::time::iso8601(ops_core::time::now_epoch() + 3600);
    let mut retag = push_1;
    retag["id"] = json!("retag-release-3");
    retag["time"] = json!(later);
    retag["detail"]["image-tag"] = json!("release-3");

    let answer = world.handle(retag).await.expect("answered");

    let reason = answer["refused"][0]["reason"].as_str().unwrap();
    println!("{reason}");
    assert!(
        reason.contains("it put that tag on an image ECR already had")
            && reason.contains("to run that image again, ask for it from chat"),
        "{reason}"
    );
    assert!(!reason.contains("late or redelivered"), "{reason}");
}

#[tokio::test]
async fn a_person_may_deploy_an_older_image_and_a_late_push_still_cannot_undo_it() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (release_1, push_1) = world.push("web", "release-1");
    world.handle(push_1.clone()).await.unwrap();
    let (_, push_2) = world.push("web", "release-2");
    world.handle(push_2.clone()).await.unwrap();

    let answer = world
        .handle(chat(
            "deploy",
            json!({"service": "prod/web", "tag": "release-1"}),
        ))
        .await
        .expect("a person's deploy of an older image is not refused");
    assert_eq!(answer["status"], "started", "{answer:#}");
    let runs = world.running("prod", "web").await;
    assert!(fixtures::images(&world.ecs, &runs).await["app"].ends_with(&release_1));

    // Neither push, redelivered, moves the service away from what the person chose.
    for push in [push_1, push_2] {
        world.handle(push).await.unwrap();
    }
    assert_eq!(world.running("prod", "web").await, runs);
}

#[tokio::test]
async fn a_forged_push_of_a_digest_not_in_ecr_is_refused_and_changes_nothing() {
    let world = World::new().await;
    world
        .service(
            "prod",
            "api",
            &[("app", &format!("{REGISTRY}/api:v1"))],
            &[
                ("ops:deploy-repository", "api"),
                ("ops:deploy-tag-pattern", "release-+"),
            ],
        )
        .await;
    let (_, real) = world.push("api", "release-76");
    let forged_digest = format!("sha256:{}", "7".repeat(64));
    let mut forged = real.clone();
    forged["detail"]["image-digest"] = json!(forged_digest);
    forged["detail"]["image-tag"] = json!("release-77");
    let mutations = world.mutations();

    let error = world
        .handle(forged)
        .await
        .expect_err("a forged push is refused");

    let message = error.to_string();
    assert!(
        message.starts_with("refused: ")
            && message.contains(&format!(
                "ECR repository `api` (registry {ACCOUNT}) has no image {forged_digest}"
            ))
            && message.contains("forged or stale"),
        "{message}"
    );
    assert!(!error.retryable(), "{message}");
    assert_eq!(world.mutations(), mutations, "no AWS change");
    assert_eq!(
        world.emulator.calls("ecs", "RegisterTaskDefinition"),
        1,
        "the fixture's only"
    );
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].severity, Severity::Warning);
    assert_eq!(alerts[0].event_type, "deployment.refused");
    assert_eq!(
        alerts[0].title,
        "push of api:release-77@sha256:777777777777 refused: the image is not in ECR"
    );
}

#[tokio::test]
async fn a_push_claiming_a_tag_ecr_does_not_show_on_the_image_is_refused_and_changes_nothing() {
    // Found by an independent test: a real `dev-experiment` image, sent again as `release-99`
    // (which the service's pattern takes), was deployed to prod. The tag picks the services.
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (dev, dev_push) = world.push("web", "dev-experiment");
    world
        .handle(dev_push.clone())
        .await
        .expect("not a release tag: ignored");
    let runs = world.running("prod", "web").await;
    let mutations = world.mutations();
    let mut forged = dev_push;
    forged["detail"]["image-tag"] = json!("release-99");

    let error = world.handle(forged).await.expect_err("refused");

    let message = error.to_string();
    println!("{message}");
    assert_eq!(
        message,
        format!(
            "refused: ECR's image {dev} in `web` (registry {ACCOUNT}) carries the tags `dev-experiment`, not `release-99`: the push event claims a tag ECR does not show on that image, so it is forged or stale (the tag has since moved to another image, whose own push deploys it); nothing was deployed"
        )
    );
    assert!(!error.retryable());
    assert_eq!(world.mutations(), mutations, "no AWS change");
    assert_eq!(world.running("prod", "web").await, runs);
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_type, "deployment.refused");
    assert_eq!(
        alerts[0].title,
        format!(
            "push of web:release-99@{} refused: ECR does not show that tag on the image",
            &dev[..19]
        )
    );
}

#[tokio::test]
async fn a_push_whose_tag_moved_on_before_it_arrived_is_answered_quietly_and_the_newer_push_deploys(
) {
    // Found by a second independent test: CI pushed `release-5` twice within seconds and the first
    // event arrived after the tag had moved (and its image had expired): each delivery and each of
    // Lambda's retries failed and sent a "forged" warning, 6 in all for one ordinary race.
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (first, first_push) = world.push("web", "release-5");
    let (second, second_push) = world.push("web", "release-5");
    assert_ne!(first, second);
    let mutations = world.mutations();

    let moved = world.handle(first_push.clone()).await.expect("answered");
    world
        .deps
        .ecr
        .client()
        .batch_delete_image()
        .repository_name("web")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&first)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let expired = world.handle(first_push).await.expect("answered");

    println!("{moved:#}\n{expired:#}");
    for answer in [&moved, &expired] {
        assert_eq!(answer["status"], "ignored", "{answer:#}");
        assert!(
            answer["reason"].as_str().unwrap().contains(&format!(
                "is stale: ECR's `release-5` now names {}",
                &second[..19]
            )),
            "{answer:#}"
        );
    }
    assert_eq!(world.mutations(), mutations, "nothing changed");
    assert!(
        world.deps.alerts.sent().is_empty(),
        "{:#?}",
        world.deps.alerts.sent()
    );
    world
        .handle(second_push)
        .await
        .expect("the newer push deploys");
    assert!(world.running("prod", "web").await.ends_with(":2"));
}

#[tokio::test]
async fn a_late_push_of_the_release_ecs_is_rolling_back_to_is_refused_not_adopted() {
    // Found by an independent test: release-2 failed and ECS's circuit breaker is rolling back to
    // release-1 (a new PRIMARY deployment, in progress); the redelivered release-1 push then took
    // ECS's rollback as a rollout of its own and alerted its end as a deploy by push.
    let world = World::new().await;
    let ((_, push_1), _) = world.release_1_done_and_release_2_started().await;
    let failed = world.finish_lost("web", "FAILED", true);
    world.handle(failed).await.expect("failure alerted");
    let in_flight_before = world
        .deps
        .ecs
        .describe("prod", "web")
        .await
        .unwrap()
        .tags
        .get("ops:deploy-in-flight")
        .cloned();
    let alerts_before = world.deps.alerts.sent().len();

    let answer = world.handle(push_1).await.expect("answered");

    println!("{answer:#}");
    assert_eq!(
        answer["refused"][0]["refused"], "web:release-1",
        "{answer:#}"
    );
    assert!(
        answer["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("it is older than"),
        "{answer:#}"
    );
    let tags = world.deps.ecs.describe("prod", "web").await.unwrap().tags;
    assert_eq!(
        tags.get("ops:deploy-in-flight").cloned(),
        in_flight_before,
        "ECS's rollback is not recorded as a deploy by push"
    );
    let sent = world.deps.alerts.sent();
    assert!(
        sent[alerts_before..]
            .iter()
            .all(|a| a.event_type != "deployment.succeeded"),
        "{sent:#?}"
    );
}

#[tokio::test]
async fn a_state_change_of_a_deployment_the_service_does_not_have_pages_nobody() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (_, push) = world.push("web", "release-42");
    world.handle(push).await.unwrap();
    let tags_before = world.deps.ecs.describe("prod", "web").await.unwrap().tags;
    let tagged = world.emulator.calls("ecs", "TagResource");

    for id in ["", "ecs-svc/0000000000000000000"] {
        let event = json!({
            "version": "0", "id": "e1", "detail-type": "ECS Deployment State Change",
            "source": "aws.ecs", "account": ACCOUNT, "time": "2026-11-18T09:00:00Z",
            "region": "us-east-1",
            "resources": [format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web")],
            "detail": {"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED",
                       "deploymentId": id, "updatedAt": "2026-11-18T09:00:00Z",
                       "reason": "ECS deployment circuit breaker: tasks failed to start."}
        });

        let answer = world.handle(event).await.expect("answered");

        let shown = if id.is_empty() { "(empty id)" } else { id };
        assert_eq!(answer["status"], "ignored", "{answer:#}");
        assert_eq!(
            answer["reason"],
            format!("deployment {shown} is not one of prod/web's")
        );
    }
    assert!(world.deps.alerts.sent().is_empty(), "no page");
    assert_eq!(
        world.emulator.calls("ecs", "TagResource"),
        tagged,
        "no tag change"
    );
    assert_eq!(
        world.deps.ecs.describe("prod", "web").await.unwrap().tags,
        tags_before
    );
}

// Lost ECS events (DESIGN.md "Event order", item 4): the scheduled reconcile settles what ECS
// finished, alerting each outcome once, whichever of it and the event comes first.

const RECONCILED: &str =
    "reconcile of ECS's own deployment state (no ECS Deployment State Change event had arrived)";

#[tokio::test]
async fn a_completed_rollout_whose_event_is_lost_is_alerted_once_by_the_reconcile_and_the_late_event_is_quiet(
) {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    let (digest, push) = world.push("web", "release-42");
    world.handle(push).await.expect("release-42 deploys");
    let lost = world.finish_lost("web", "COMPLETED", false);
    let before = world.status("prod/web").await;
    println!(
        "before the tick: status: {}",
        before["verification"]["says"]
    );
    assert!(world.deps.alerts.sent().is_empty(), "nothing verified yet");

    let tick = world.tick(NOW + 300).await;

    assert_eq!(tick["status"], "settled", "{tick:#}");
    assert_eq!(tick["settled"][0]["succeeded"], true, "{tick:#}");
    assert_eq!(tick["settled"][0]["seen_by"], "reconcile", "{tick:#}");
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.severity, Severity::Info);
    assert_eq!(alert.event_type, "deployment.succeeded");
    assert_eq!(
        alert.title,
        format!("prod/web now runs web:release-42@{}", &digest[..19])
    );
    assert_eq!(alert.before.as_deref(), Some("web:1 (app: web:release-41)"));
    assert!(
        alert.why.starts_with("Started by ECR push."),
        "{}",
        alert.why
    );
    assert_eq!(alert.context["seen_by"], RECONCILED);
    println!(
        "tick at +300 s: {} | before: {} | after: {} | seen by: {}",
        alert.title,
        alert.before.as_deref().unwrap_or("-"),
        alert.after.as_deref().unwrap_or("-"),
        alert.context["seen_by"]
    );
    let service = world.deps.ecs.describe("prod", "web").await.unwrap();
    assert_eq!(
        service.tag("ops:deploy-last-completed"),
        Some(service.task_definition.as_str()),
        "recorded as the last known-good revision, as the event would"
    );

    let tag_writes = world.tag_writes();
    let again = world.tick(NOW + 600).await;
    assert_eq!(again["status"], "no_change", "{again:#}");
    println!("tick at +600 s: {}", again["notes"][0]);
    let late = world
        .handle(lost)
        .await
        .expect("the late event is answered");
    assert_eq!(late["status"], "no_change", "{late:#}");
    assert!(
        late["notes"][0]
            .as_str()
            .unwrap()
            .ends_with("was already reported"),
        "{late:#}"
    );
    println!("the lost event, delivered late: {}", late["notes"][0]);
    assert_eq!(world.deps.alerts.sent().len(), 1, "one alert in all");
    assert_eq!(world.tag_writes(), tag_writes, "neither wrote a tag");
}

#[tokio::test]
async fn a_failed_rollout_ecs_rolled_back_whose_event_is_lost_is_alerted_once_as_a_failure_naming_the_rollback(
) {
    let world = World::new().await;
    let first = world.release_service("prod", "web").await;
    world.finish("web", "COMPLETED", false).await; // web:1 verified, by its event
    let (_, push) = world.push("web", "release-42");
    world.handle(push).await.expect("release-42 deploys");
    let lost = world.finish_lost("web", "FAILED", true);
    println!(
        "before the tick: status: {}",
        world.status("prod/web").await["verification"]["says"]
    );

    let tick = world.tick(NOW + 300).await;

    assert_eq!(tick["settled"][0]["succeeded"], false, "{tick:#}");
    let alerts = world.deps.alerts.sent();
    assert_eq!(
        alerts.len(),
        2,
        "web:1's success, then this failure: {alerts:#?}"
    );
    let failed = &alerts[1];
    assert_eq!(failed.severity, Severity::Critical);
    assert_eq!(failed.event_type, "deployment.failed");
    assert_eq!(
        failed.title,
        "prod/web deployment of web:2 FAILED; ECS rolled back to web:1"
    );
    assert_eq!(
        failed.after.as_deref(),
        Some("web:1 (app: web:release-41); web:2 failed and was rolled back")
    );
    assert!(
        failed
            .why
            .starts_with("Started by ECR push. ECS says: ECS deployment circuit breaker"),
        "{}",
        failed.why
    );
    assert_eq!(failed.context["seen_by"], RECONCILED);
    println!(
        "tick at +300 s: {} | why: {} | after: {}",
        failed.title,
        failed.why,
        failed.after.as_deref().unwrap_or("-")
    );
    let service = world.deps.ecs.describe("prod", "web").await.unwrap();
    assert_eq!(
        service.tag("ops:deploy-last-completed"),
        Some(first.as_str()),
        "a failure is never recorded as good"
    );

    let again = world.tick(NOW + 600).await;
    assert_eq!(again["status"], "no_change", "{again:#}");
    let late = world
        .handle(lost)
        .await
        .expect("the late event is answered");
    assert_eq!(late["status"], "no_change", "{late:#}");
    println!("the lost event, delivered late: {}", late["notes"][0]);
    assert_eq!(
        world.deps.alerts.sent().len(),
        2,
        "the failure alerted once"
    );
    let after = world.status("prod/web").await;
    println!("after: status: {}", after["verification"]["says"]);
    assert_eq!(after["verification"]["state"], "verified", "{after:#}");
}

#[tokio::test]
async fn when_the_event_arrives_first_the_reconcile_is_quiet() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    world.emulator.reset_calls();
    world.finish("web", "COMPLETED", false).await;
    println!(
        "the state-change event: {} AWS calls (read, claim, re-read, 2 revisions, record; plus the SNS publish, here a memory sink)",
        world.emulator.total_calls()
    );
    assert_eq!(world.deps.alerts.sent().len(), 1);
    assert_eq!(
        world.deps.alerts.sent()[0].context["seen_by"],
        "ECS Deployment State Change event"
    );
    let tag_writes = world.tag_writes();

    let tick = world.tick(NOW + 300).await;

    assert_eq!(tick["status"], "no_change", "{tick:#}");
    assert!(
        tick["notes"][0]
            .as_str()
            .unwrap()
            .ends_with("is already settled"),
        "{tick:#}"
    );
    println!("event first, then the tick: {}", tick["notes"][0]);
    assert_eq!(world.deps.alerts.sent().len(), 1, "one alert");
    assert_eq!(world.tag_writes(), tag_writes);
}

#[tokio::test]
async fn an_event_and_a_tick_at_the_same_time_alert_once() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    let event = world.finish_lost("web", "COMPLETED", false);

    let (by_event, by_tick) = tokio::join!(world.handle(event), world.handle(scheduled(NOW)));

    let (by_event, by_tick) = (by_event.unwrap(), by_tick.unwrap());
    println!(
        "at once: event -> {} {}, tick -> {} {}",
        by_event["status"], by_event["notes"], by_tick["status"], by_tick["notes"]
    );
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_type, "deployment.succeeded");
}

async fn status_says_unverified_exactly_while_ecs_has_finished_and_nothing_verified_it(
    launch: Launch,
) {
    let world = World::on(launch).await;
    world.release_service("prod", "web").await;
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();

    let rolling = world.status("prod/web").await;
    world.finish_lost("web", "COMPLETED", false);
    let finished = world.status("prod/web").await;
    world.tick(NOW + 300).await;
    let settled = world.status("prod/web").await;

    for (when, status) in [
        ("rolling out", &rolling),
        ("ECS finished, event lost", &finished),
        ("after the tick", &settled),
    ] {
        println!(
            "{when}: rollout {} | {}",
            status["rollout"]["state"], status["verification"]["says"]
        );
    }
    let says = |status: &Value| status["verification"]["says"].as_str().unwrap().to_string();
    assert_eq!(rolling["verification"]["state"], "in_progress");
    assert!(
        says(&rolling).starts_with("web:2 (app: web:release-42@sha256:")
            && says(&rolling)
                .contains(": rolling out (ECS says IN_PROGRESS, 0 of 2 tasks running)")
            && !says(&rolling).contains("unverified"),
        "{}",
        says(&rolling)
    );
    assert_eq!(finished["rollout"]["state"], "COMPLETED", "ECS's own word");
    assert_eq!(finished["verification"]["state"], "unverified");
    assert_eq!(finished["verification"]["ecs_says"], "COMPLETED");
    assert!(
        says(&finished).ends_with(
            ": ECS says COMPLETED, not yet verified by deploy-trigger (unverified; the next reconcile settles it)"
        ),
        "{}",
        says(&finished)
    );
    assert_eq!(settled["verification"]["state"], "verified");
    assert!(
        says(&settled).contains(": verified COMPLETED by deploy-trigger (deployment ecs-svc/")
            && !says(&settled).contains("unverified"),
        "{}",
        says(&settled)
    );
}

on_each_launch!(status_says_unverified_exactly_while_ecs_has_finished_and_nothing_verified_it);

#[tokio::test]
async fn after_the_reconcile_a_rollback_goes_to_the_release_that_completed_not_past_it() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world.finish("web", "COMPLETED", false).await; // web:1 verified
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    world.finish_lost("web", "COMPLETED", false); // web:2 completed; its event is lost
    let release_42 = world.running("prod", "web").await;
    let before = world.status("prod/web").await;

    world.tick(NOW + 300).await;
    world
        .handle(world.push("web", "release-43").1)
        .await
        .unwrap(); // web:3 rolling out
    let after = world.status("prod/web").await;

    println!(
        "before the tick: rollback would go to {} (last verified: {})",
        before["rollback_would_go_to"], before["last_completed"]
    );
    println!(
        "after the tick and a push of release-43: rollback would go to {} (last verified: {})",
        after["rollback_would_go_to"], after["last_completed"]
    );
    assert_eq!(
        after["rollback_would_go_to"],
        json!(release_42),
        "{after:#}"
    );
    let answer = world
        .handle(chat("rollback", json!({"service": "prod/web"})))
        .await
        .expect("rollback");
    assert_eq!(answer["rollback_to"], "web:2", "{answer:#}");
    assert_eq!(world.running("prod", "web").await, release_42);
}

#[tokio::test]
async fn a_push_that_replaces_a_finished_unverified_deployment_settles_it_first() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world.finish("web", "COMPLETED", false).await; // web:1 verified
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    world.finish_lost("web", "COMPLETED", false); // web:2 completed; its event is lost
    let release_42 = world.running("prod", "web").await;

    // No tick came in between: the next push settles web:2 before replacing its record.
    world
        .handle(world.push("web", "release-43").1)
        .await
        .unwrap();

    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert_eq!(alerts[1].event_type, "deployment.succeeded");
    assert!(
        alerts[1]
            .title
            .starts_with("prod/web now runs web:release-42@"),
        "{}",
        alerts[1].title
    );
    println!("the push of release-43 first settled: {}", alerts[1].title);
    let dry = world
        .handle(json!({"command": "rollback", "args": {"service": "prod/web"}, "dry_run": true}))
        .await
        .unwrap();
    assert_eq!(dry["rollback_to"], "web:2", "{dry:#}");
    assert_eq!(
        world.status("prod/web").await["rollback_would_go_to"],
        json!(release_42)
    );
    assert_eq!(world.tick(NOW + 300).await["status"], "no_change");
    assert_eq!(world.deps.alerts.sent().len(), 2);
}

#[tokio::test]
async fn a_scheduled_event_not_sent_by_eventbridge_is_refused_and_changes_nothing() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    world.finish_lost("web", "COMPLETED", false);
    let tags = world.deps.ecs.describe("prod", "web").await.unwrap().tags;
    world.emulator.reset_calls();

    let mut forged = scheduled(NOW + 300);
    forged["source"] = json!("custom.ops");
    let error = world
        .handle_at(forged, NOW + 300)
        .await
        .expect_err("refused");
    let mut foreign = scheduled(NOW + 300);
    foreign["account"] = json!("999999999999");
    let foreign_error = world
        .handle_at(foreign, NOW + 300)
        .await
        .expect_err("refused");

    println!("forged source: {error}");
    println!("foreign account: {foreign_error}");
    assert_eq!(
        error.to_string(),
        "refused: a `Scheduled Event` from source `custom.ops` does not start the reconcile: only the EventBridge schedule (source `aws.events`) does; nothing was read or changed"
    );
    assert!(!error.retryable() && !foreign_error.retryable());
    assert!(
        foreign_error
            .to_string()
            .contains("of account `999999999999` is not from this function's account 123456789012"),
        "{foreign_error}"
    );
    assert_eq!(world.emulator.total_calls(), 0, "not one AWS call");
    assert!(world.deps.alerts.sent().is_empty(), "no page");
    assert_eq!(
        world.deps.ecs.describe("prod", "web").await.unwrap().tags,
        tags
    );
    assert_eq!(
        world.status("prod/web").await["verification"]["state"],
        "unverified",
        "still for a genuine tick to settle"
    );
}

#[tokio::test]
async fn a_tick_while_the_rollout_is_in_progress_changes_nothing_and_alerts_nothing() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    let tags = world.deps.ecs.describe("prod", "web").await.unwrap().tags;
    let mutations = world.mutations();

    let tick = world.tick(NOW + 300).await;

    println!("tick during the rollout: {}", tick["notes"][0]);
    assert_eq!(tick["status"], "no_change", "{tick:#}");
    assert!(
        tick["notes"][0]
            .as_str()
            .unwrap()
            .contains("is IN_PROGRESS (0 of 2 tasks running); nothing to settle yet"),
        "{tick:#}"
    );
    assert!(world.deps.alerts.sent().is_empty());
    assert_eq!(world.mutations(), mutations);
    assert_eq!(
        world.deps.ecs.describe("prod", "web").await.unwrap().tags,
        tags
    );
}

#[tokio::test]
async fn a_reconcile_that_dies_after_claiming_is_finished_once_by_a_later_tick_after_the_lease() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    world.finish_lost("web", "COMPLETED", false);
    // The tick reads the services (DescribeServices 1), reads web again before claiming (2),
    // claims, and re-reads (3): that re-read fails on every attempt, as if the function died.
    world.emulator.add_fault(json!({
        "service": "ecs", "operation": "DescribeServices", "kind": "error500",
        "on_calls": [3, 4, 5], "times": 3
    }));

    let died = world
        .handle_at(scheduled(NOW + 300), NOW + 300)
        .await
        .expect_err("the re-read fails");
    world
        .emulator
        .control("DELETE", "/_ops/faults", None)
        .unwrap();
    assert!(died.retryable(), "{died}");
    assert!(world.deps.alerts.sent().is_empty());
    let claim = world.deps.ecs.describe("prod", "web").await.unwrap();
    println!(
        "died after claiming: ops:deploy-settlement = {}",
        claim.tag("ops:deploy-settlement").unwrap()
    );

    // Lambda retries the failed tick a minute later: the claim's lease still runs, so it is quiet.
    let retried = world.tick(NOW + 360).await;
    assert_eq!(retried["status"], "no_change", "{retried:#}");
    assert!(
        retried["notes"][0]
            .as_str()
            .unwrap()
            .contains("is being settled by invocation inv-"),
        "{retried:#}"
    );
    assert!(world.deps.alerts.sent().is_empty());
    // The next tick finds the lease run out and finishes the job.
    let next = world.tick(NOW + 600).await;
    assert_eq!(next["status"], "settled", "{next:#}");
    assert_eq!(world.tick(NOW + 900).await["status"], "no_change");

    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    println!(
        "retry at +360 s: {}; tick at +600 s alerted: {}",
        retried["notes"][0], alerts[0].title
    );
    let settled = world.deps.ecs.describe("prod", "web").await.unwrap();
    println!(
        "settled: ops:deploy-settlement = {}",
        settled.tag("ops:deploy-settlement").unwrap()
    );
    assert!(settled
        .tag("ops:deploy-settlement")
        .unwrap()
        .ends_with(" outcome=completed"));
}

#[tokio::test]
async fn a_push_never_replaces_a_record_another_invocation_is_still_settling() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    world.finish_lost("web", "COMPLETED", false);
    let release_42 = world.running("prod", "web").await;
    // A tick claims web:2's settlement and dies before alerting (its re-read fails).
    world.emulator.add_fault(json!({
        "service": "ecs", "operation": "DescribeServices", "kind": "error500",
        "on_calls": [3, 4, 5], "times": 3
    }));
    world
        .handle_at(scheduled(NOW + 300), NOW + 300)
        .await
        .expect_err("the tick dies");
    world
        .emulator
        .control("DELETE", "/_ops/faults", None)
        .unwrap();
    let (_, push_43) = world.push("web", "release-43");

    // Within the claim's lease, the push must not replace web:2's record: it would never be alerted.
    let held = world
        .handle_at(push_43.clone(), NOW + 360)
        .await
        .expect_err("retried later");

    println!("push within the lease: {held}");
    assert!(held.retryable(), "{held}");
    assert!(
        held.to_string()
            .contains("is being settled by invocation inv-"),
        "{held}"
    );
    assert_eq!(
        world.running("prod", "web").await,
        release_42,
        "not replaced"
    );
    // Lambda's retry after the lease: the push settles web:2 (one alert), then deploys.
    let answer = world
        .handle_at(push_43, NOW + 480)
        .await
        .expect("the retried push deploys");
    assert_eq!(answer["status"], "started", "{answer:#}");
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(alerts[0]
        .title
        .starts_with("prod/web now runs web:release-42@"));
    println!(
        "retried after the lease: alerted {}, then {}",
        alerts[0].title, answer["started"][0]["to"]
    );
}

#[tokio::test]
async fn a_deployment_ecs_dropped_before_any_tick_read_it_is_alerted_once_as_unverified_never_as_good(
) {
    let world = World::new().await;
    let first = world.release_service("prod", "web").await;
    world.finish("web", "COMPLETED", false).await; // web:1 verified
    world
        .handle(world.push("web", "release-42").1)
        .await
        .unwrap();
    // web:2 fails, ECS rolls back to web:1 and finishes that too: both events are lost, and ECS
    // lists only the rollback deployment now.
    world.finish_lost("web", "FAILED", true);
    world.finish_lost("web", "COMPLETED", false);
    let early = world.tick(NOW + 300).await;
    let status_before = world.status("prod/web").await;

    let tick = world.tick(NOW + 900).await;

    println!("tick at +300 s: {}", early["notes"][0]);
    println!("before: status: {}", status_before["verification"]["says"]);
    assert_eq!(
        early["status"], "no_change",
        "ECS may not list a new deployment at once"
    );
    assert_eq!(status_before["verification"]["state"], "unverified");
    assert_eq!(tick["status"], "settled", "{tick:#}");
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let alert = &alerts[1];
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.event_type, "deployment.unverified");
    assert_eq!(alert.title, "prod/web deployment of web:2 ended unverified");
    assert!(
        alert
            .what
            .contains("ECS no longer lists deployment ecs-svc/")
            && alert
                .what
                .contains("ECS's circuit breaker most likely rolled web:2 back"),
        "{}",
        alert.what
    );
    println!("tick at +900 s: {} | {}", alert.title, alert.what);
    let service = world.deps.ecs.describe("prod", "web").await.unwrap();
    assert_eq!(
        service.tag("ops:deploy-last-completed"),
        Some(first.as_str()),
        "never recorded as good"
    );
    let after = world.status("prod/web").await;
    println!("after: status: {}", after["verification"]["says"]);
    assert_eq!(
        after["verification"]["state"], "unverified",
        "still the truth"
    );
    assert_eq!(world.tick(NOW + 1200).await["status"], "no_change");
    assert_eq!(world.deps.alerts.sent().len(), 2, "alerted once");
}

/// Found by the model test (`model_deploy_trigger`): a push's deployment FAILED, ECS's circuit
/// breaker rolled back and the rollback COMPLETED (draining the failed deployment), the FAILED
/// event was lost, and the next push came within the 600 s grace for a deployment ECS does not
/// list: the push replaced the in-flight record without settling it, so the failed deployment was
/// never alerted. Replacing the record now settles a deployment ECS no longer lists as unverified.
#[tokio::test]
async fn a_push_replacing_a_failed_deploy_ecs_already_drained_still_alerts_it_once() {
    let world = World::new().await;
    world.release_service("prod", "web").await;
    // The service's first rollout completed: the circuit breaker rolls back to it.
    let _settled = world.finish_lost("web", "COMPLETED", false);
    let (_, first) = world.push("web", "release-42");
    world.handle(first).await.expect("first push");
    let _lost = world.finish_lost("web", "FAILED", true);
    world.finish("web", "COMPLETED", false).await;
    let (_, second) = world.push("web", "release-43");
    world.handle(second.clone()).await.expect("second push");
    world.handle(second).await.expect("second push again");
    world.tick(NOW + 1_000).await;
    let unverified = world
        .deps
        .alerts
        .sent()
        .into_iter()
        .filter(|a| a.event_type == "deployment.unverified")
        .count();
    assert_eq!(
        unverified, 1,
        "the failed deployment is alerted once, as unverified"
    );
}
