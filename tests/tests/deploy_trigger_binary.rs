//! deploy-trigger's real binary under the local Lambda Runtime API: wiring, config, errors.

use ops_core::aws::ecr::EcrImages;
use ops_e2e::blue_green::topic;
use ops_e2e::fixtures::{self, REGISTRY};
use ops_e2e::lambda::{built_binary, CountedChange};
use ops_e2e::{Emulator, InvokeError, LocalLambda};
use serde_json::json;

#[tokio::test]
async fn the_binary_deploys_a_push_and_answers_chat_errors_as_non_retryable() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    EcrImages::new(&sdk)
        .client()
        .create_repository()
        .repository_name("web")
        .send()
        .await
        .unwrap();
    let before = fixtures::register(
        &ecs,
        "web",
        &[("app", &format!("{REGISTRY}/web:release-41"))],
    )
    .await;
    fixtures::service(
        &ecs,
        "prod",
        "web",
        &before,
        &[
            ("ops:deploy-repository", "web"),
            ("ops:deploy-tag-pattern", "release-+"),
        ],
    )
    .await;
    let mut env = emulator.function_env();
    env.push((
        "ALERT_TOPIC_ARN".into(),
        topic(&emulator, "ops-alerts").await,
    ));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    let function = LocalLambda::start(&built_binary("deploy-trigger"), "deploy-trigger", &env);
    let pushed = emulator
        .control(
            "POST",
            "/_ops/ecr/push",
            Some(json!({"repository": "web", "tag": "release-42"})),
        )
        .unwrap();

    let answer = function
        .invoke(pushed["event"].clone())
        .expect("the push is handled");

    assert_eq!(answer["status"], "started", "{answer:#}");
    assert_eq!(answer["started"][0]["service"], "prod/web");
    assert_eq!(
        function.counted_changes(),
        [],
        "a started deployment is not counted yet"
    );
    let finished = emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "COMPLETED", "rollback": false})),
        )
        .unwrap();
    function
        .invoke(finished["event"].clone())
        .expect("ECS's completion is handled");
    // The dashboard's "Deployments per day" counts it (ops_e2e::dashboard).
    assert_eq!(
        function.counted_changes(),
        [CountedChange::one(
            "Deployments",
            "succeeded",
            "deploy-trigger"
        )]
    );
    let error = function
        .invoke(json!({"command": "deploy", "args": {"service": "prod/web"}}))
        .unwrap_err();
    match error {
        InvokeError::Function {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "NonRetryable.CommandError");
            assert_eq!(
                error_message,
                "command `deploy`: give a `tag` or a `digest` of the image to deploy"
            );
        }
        other => panic!("expected a function error, got {other}"),
    }
}

#[test]
fn the_binary_refuses_to_start_without_its_configuration() {
    let function = LocalLambda::start(&built_binary("deploy-trigger"), "deploy-trigger", &[]);

    let error = function.invoke(json!({"command": "help"})).unwrap_err();

    let InvokeError::NoAnswer(why, log) = error else {
        panic!("expected no answer")
    };
    assert!(why.starts_with("the process exited"), "{why}");
    assert!(
        log.contains("missing configuration: environment variable `ECS_CLUSTERS` is not set"),
        "{log}"
    );
}
