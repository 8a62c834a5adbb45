//! End-to-end: ops-core's real SDK clients against the local emulator.
//!
//! Each test starts its own emulator (its own process and port) and stops it when it ends, also
//! when it fails, so the tests are isolated and run in parallel.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use aws_sdk_ecs::types::{ContainerDefinition, Tag};
use ops_core::alert::{Alert, AlertSink, Severity};
use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::sns::SnsAlerts;
use ops_core::Error;
use ops_e2e::{AlertInbox, Emulator};
use serde_json::json;

async fn create_service(ecs: &aws_sdk_ecs::Client, image: &str) -> String {
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("create cluster");
    let definition = ecs
        .register_task_definition()
        .family("web")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(image)
                .memory(512)
                .build(),
        )
        .send()
        .await
        .expect("register task definition")
        .task_definition
        .and_then(|d| d.task_definition_arn)
        .expect("task definition arn");
    ecs.create_service()
        .cluster("prod")
        .service_name("web")
        .task_definition(&definition)
        .desired_count(2)
        .tags(
            Tag::builder()
                .key("ops:deploy-repository")
                .value("web")
                .build(),
        )
        .send()
        .await
        .expect("create service");
    definition
}

#[tokio::test]
async fn an_ecs_service_created_through_the_sdk_reads_back_through_ops_core() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let ecs = EcsServices::new(&config);
    let definition = create_service(ecs.client(), "web:release-41").await;

    let service = ecs.describe("prod", "web").await.expect("describe");

    assert_eq!(service.name, "web");
    assert_eq!(service.desired, 2);
    assert_eq!(service.task_definition, definition);
    assert_eq!(
        service
            .tags
            .get("ops:deploy-repository")
            .map(String::as_str),
        Some("web")
    );
    let primary = service.primary().expect("a primary deployment");
    assert_eq!(primary.rollout_state.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(primary.running, 0);
}

#[tokio::test]
async fn a_missing_service_is_a_specific_not_found_error() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let ecs = EcsServices::new(&config);
    ecs.client()
        .create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("create cluster");

    let error = ecs.describe("prod", "nope").await.unwrap_err();

    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert_eq!(error.to_string(), "ECS service `prod/nope` not found");
    assert!(!error.retryable());
}

#[tokio::test]
async fn emulator_controls_move_a_rollout_to_completed_then_a_new_one_to_failed_with_rollback() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let ecs = EcsServices::new(&config);
    let first = create_service(ecs.client(), "web:release-41").await;

    let done = emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "COMPLETED"})),
        )
        .expect("complete");
    assert_eq!(
        done["event"]["detail"]["eventName"],
        "SERVICE_DEPLOYMENT_COMPLETED"
    );
    let service = ecs.describe("prod", "web").await.unwrap();
    assert_eq!(service.running, 2);
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(
        service.primary().unwrap().rollout_state.as_deref(),
        Some("COMPLETED")
    );

    let second = ecs
        .client()
        .register_task_definition()
        .family("web")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("web:release-42")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .and_then(|d| d.task_definition_arn)
        .unwrap();
    ecs.client()
        .update_service()
        .cluster("prod")
        .service("web")
        .task_definition(&second)
        .send()
        .await
        .unwrap();
    let rolling = ecs.describe("prod", "web").await.unwrap();
    assert_eq!(rolling.deployments.len(), 2, "{:?}", rolling.deployments);
    assert_eq!(rolling.primary().unwrap().task_definition, second);
    assert_eq!(
        rolling.primary().unwrap().rollout_state.as_deref(),
        Some("IN_PROGRESS")
    );
    assert_eq!(rolling.deployments[1].status, "ACTIVE");

    let failed = emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "FAILED", "rollback": true})),
        )
        .expect("fail");
    assert_eq!(
        failed["event"]["detail"]["eventName"],
        "SERVICE_DEPLOYMENT_FAILED"
    );
    let rolled_back = ecs.describe("prod", "web").await.unwrap();
    assert_eq!(
        rolled_back.task_definition, first,
        "the circuit breaker restores the earlier revision"
    );
    assert!(rolled_back
        .deployments
        .iter()
        .any(|d| d.rollout_state.as_deref() == Some("FAILED") && d.task_definition == second));
}

#[tokio::test]
async fn a_cloudwatch_alarm_set_to_alarm_reads_back_over_cbor() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let alarms = CloudWatchAlarms::new(&config);
    alarms
        .client()
        .put_metric_alarm()
        .alarm_name("workers-cpu-high")
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(
            Dimension::builder()
                .name("AutoScalingGroupName")
                .value("workers")
                .build(),
        )
        .statistic(Statistic::Average)
        .period(60)
        .evaluation_periods(5)
        .threshold(90.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("put alarm over CBOR");
    alarms
        .client()
        .set_alarm_state()
        .alarm_name("workers-cpu-high")
        .state_value(StateValue::Alarm)
        .state_reason("Threshold Crossed: 5 datapoints were greater than the threshold (90.0).")
        .send()
        .await
        .expect("set alarm state over CBOR");

    let alarm = alarms
        .describe("workers-cpu-high")
        .await
        .expect("describe over CBOR");

    assert_eq!(alarm.state, "ALARM");
    assert_eq!(
        alarm.reason,
        "Threshold Crossed: 5 datapoints were greater than the threshold (90.0)."
    );
    assert_eq!(alarm.threshold, Some(90.0));
    assert_eq!(alarm.comparison, "GreaterThanThreshold");
    assert_eq!(
        alarm
            .dimensions
            .get("AutoScalingGroupName")
            .map(String::as_str),
        Some("workers")
    );
    assert!(
        alarm.state_updated_epoch.is_some(),
        "timestamps survive the CBOR bridge"
    );
    assert_eq!(emulator.calls("monitoring", "DescribeAlarms"), 1);
    let missing = alarms.describe("no-such-alarm").await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "CloudWatch alarm `no-such-alarm` not found"
    );
}

#[tokio::test]
async fn an_alert_reaches_the_queue_as_chat_json_and_the_email_body_is_plain_text() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let (topic_arn, inbox) =
        AlertInbox::subscribe_new(&config, "ops-alerts", "ops-alerts-inbox").await;
    let alert = Alert::new(
        Severity::Critical,
        "deploy-trigger",
        "deployment.failed",
        "prod/web",
        "prod/web deployment failed",
    )
    .what("The rollout of web:8 failed; ECS rolled back to web:7.")
    .why("ECS deployment circuit breaker: tasks failed to start.")
    .change("web:7", "web:7 (web:8 failed)")
    .requested_by("alice")
    .undo(
        "@Amazon Q lambda invoke --function-name deploy-trigger --payload {\"command\":\"status\"}",
    );

    SnsAlerts::new(&config, &topic_arn)
        .publish(&alert)
        .await
        .expect("publish");

    let received = inbox.receive(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].chat, alert.chatbot_json());
    assert_eq!(
        received[0].subject.as_deref(),
        Some("[CRITICAL] prod/web deployment failed")
    );
    assert_eq!(received[0].attributes["severity"], "critical");
    assert_eq!(received[0].attributes["function"], "deploy-trigger");
    assert_eq!(received[0].attributes["resource"], "prod/web");
    let published = emulator
        .control("GET", "/_ops/sns/published", None)
        .unwrap();
    let email = published["published"][0]["bodies"]["email"]
        .as_str()
        .expect("an email body");
    assert_eq!(email, alert.email_text());
    assert!(email.starts_with(
        "[CRITICAL] prod/web deployment failed\n\nWhat happened: The rollout of web:8 failed"
    ));
}

#[tokio::test]
async fn a_call_succeeds_through_injected_throttling_by_retrying() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let ecs = EcsServices::new(&config);
    create_service(ecs.client(), "web:release-41").await;
    emulator.add_fault(json!({"service": "ecs", "operation": "DescribeServices", "kind": "throttle", "on_calls": [1, 2]}));

    let service = ecs
        .describe("prod", "web")
        .await
        .expect("the third attempt succeeds");

    assert_eq!(service.name, "web");
    assert_eq!(emulator.calls("ecs", "DescribeServices"), 3);
}

#[tokio::test]
async fn a_call_fails_cleanly_as_retryable_when_faults_outlast_the_retry_budget() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let ecs = EcsServices::new(&config);
    create_service(ecs.client(), "web:release-41").await;
    emulator.add_fault(
        json!({"service": "ecs", "operation": "DescribeServices", "kind": "throttle", "rate": 1.0}),
    );

    let error = ecs.describe("prod", "web").await.unwrap_err();

    assert_eq!(
        emulator.calls("ecs", "DescribeServices"),
        3,
        "three attempts, then give up"
    );
    assert!(error.retryable(), "{error}");
    assert_eq!(
        error.to_string(),
        "ecs DescribeServices failed: ThrottlingException: Rate exceeded (fault injected by the emulator)"
    );
    assert_eq!(
        lambda_runtime::Diagnostic::from(&error).error_type,
        "Retryable.AwsTransientError"
    );
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried_then_reported() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let ecs = EcsServices::new(&config);
    create_service(ecs.client(), "web:release-41").await;

    emulator.add_fault(json!({"service": "ecs", "operation": "DescribeServices", "kind": "error500", "on_calls": [1]}));
    emulator.add_fault(
        json!({"service": "ecs", "operation": "DescribeServices", "kind": "drop", "on_calls": [2]}),
    );
    ecs.describe("prod", "web")
        .await
        .expect("a 500 then a dropped connection, then success");
    assert_eq!(emulator.calls("ecs", "DescribeServices"), 3);

    emulator.control("DELETE", "/_ops/faults", None).unwrap();
    emulator.add_fault(json!({"service": "ecs", "operation": "DescribeServices", "kind": "drop"}));
    let error = ecs.describe("prod", "web").await.unwrap_err();
    assert!(error.retryable(), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("ecs DescribeServices failed: NoResponse:"),
        "{error}"
    );
}

#[tokio::test]
async fn a_bad_fault_rule_is_refused_with_the_field_named() {
    let emulator = Emulator::start();

    let error = emulator
        .control(
            "POST",
            "/_ops/faults",
            Some(json!({"service": "ecs", "kind": "explode"})),
        )
        .unwrap_err();

    assert!(
        error
            .to_string()
            .contains("field `kind` must be one of throttle, error500, latency, drop"),
        "{error}"
    );
    let rules = emulator.control("GET", "/_ops/faults", None).unwrap();
    assert_eq!(rules["rules"], json!([]), "nothing was installed");
}
