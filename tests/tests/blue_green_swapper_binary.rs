//! blue-green-swapper's real binary under the local Lambda Runtime API: requests sent at the same
//! moment start one swap, which the schedule then finishes and the binary counts for the dashboard;
//! a rollback held until the old colour is healthy is counted once; and the binary needs its
//! configuration.

use std::sync::Arc;

use ops_e2e::blue_green::{
    app_command, deploy_command, finish_rollout, observe, push, set_health, topic, App,
};
use ops_e2e::events::scheduled;
use ops_e2e::lambda::{built_binary, CountedChange};
use ops_e2e::{Emulator, InvokeError, LocalLambda};
use serde_json::json;

#[tokio::test]
async fn requests_sent_at_once_start_one_swap_and_the_others_are_told_what_is_in_flight() {
    let emulator = Emulator::start();
    let topic = topic(&emulator, "ops-alerts").await;
    let app = App::create(&emulator, json!({"app": "shop", "termination_wait": "1m"}));
    let images: Vec<String> = ["v2", "v3", "v4"]
        .iter()
        .map(|tag| push(&emulator, &app, tag))
        .collect();
    let mut env = emulator.function_env();
    env.push(("ALERT_TOPIC_ARN".into(), topic));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    env.push(("SWAP_ROUTES".into(), app.routes().join(",")));
    // The schedule is played up to a quarter of an hour ahead of the clock.
    env.push(("SCHEDULE_LEAD_SECONDS".into(), "3600".into()));
    // One process: Lambda runs the function one invocation at a time (ReservedConcurrentExecutions: 1).
    let function = Arc::new(LocalLambda::start(
        &built_binary("blue-green-swapper"),
        "blue-green-swapper",
        &env,
    ));

    emulator.reset_calls();
    let senders: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let function = function.clone();
            let payload = json!({"command": "deploy", "args": {"app": "shop", "image": image}, "requested_by": format!("engineer-{i}")});
            std::thread::spawn(move || function.invoke(payload))
        })
        .collect();
    let answers: Vec<_> = senders.into_iter().map(|s| s.join().unwrap()).collect();

    let started: Vec<_> = answers.iter().filter(|a| a.is_ok()).collect();
    assert_eq!(started.len(), 1, "{answers:?}");
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        let InvokeError::Function {
            error_type,
            error_message,
        } = refused
        else {
            panic!("expected a function error, got {refused}");
        };
        assert_eq!(error_type, "NonRetryable.Refused");
        assert!(
            error_message.starts_with("refused: a swap of shop is in flight"),
            "{error_message}"
        );
    }
    let seen = observe(&emulator, &app).await;
    assert_eq!(
        seen.green,
        ("shop:2".to_string(), 2),
        "one revision, one swap"
    );
    assert_eq!(seen.phase().as_deref(), Some("deploying"));
    assert_eq!(emulator.calls("ecs", "RegisterTaskDefinition"), 1);
    assert!(
        function.emitted_metrics().is_empty(),
        "nothing has ended yet"
    );

    // The schedule takes the swap to its end; the dashboard's "Swaps per day" counts it once.
    finish_rollout(&emulator, &app, "green", "COMPLETED");
    let start = ops_core::time::now_epoch();
    for minute in [1, 6, 8, 10] {
        function
            .invoke(scheduled(start + minute * 60))
            .expect("tick");
    }
    let seen = observe(&emulator, &app).await;
    assert_eq!(seen.percent, (0, 100), "all traffic on green");
    assert_eq!(
        function.counted_changes(),
        [CountedChange::one(
            "Swaps",
            "completed",
            "blue-green-swapper"
        )]
    );
}

#[tokio::test]
async fn a_rollback_alerted_as_held_and_again_when_it_moves_is_counted_once() {
    // Given shop promoted to green, then both colours unhealthy: the rollback is held.
    let emulator = Emulator::start();
    let topic = topic(&emulator, "ops-alerts").await;
    let app = App::create(
        &emulator,
        json!({"app": "shop", "strategy": "all-at-once", "launch_type": "EC2"}),
    );
    let image = push(&emulator, &app, "v2");
    let mut env = emulator.function_env();
    env.push(("ALERT_TOPIC_ARN".into(), topic));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    env.push(("SWAP_ROUTES".into(), app.routes().join(",")));
    env.push(("SCHEDULE_LEAD_SECONDS".into(), "3600".into()));
    let function = LocalLambda::start(
        &built_binary("blue-green-swapper"),
        "blue-green-swapper",
        &env,
    );
    function
        .invoke(deploy_command("shop", &image, "alice"))
        .expect("deploy");
    finish_rollout(&emulator, &app, "green", "COMPLETED");
    function
        .invoke(app_command("promote", "shop", "bob"))
        .expect("promote");
    assert_eq!(observe(&emulator, &app).await.percent, (0, 100));
    set_health(&emulator, &app, "green", "unhealthy");
    set_health(&emulator, &app, "blue", "unhealthy");
    let start = ops_core::time::now_epoch();
    function.invoke(scheduled(start + 60)).expect("tick");
    function.invoke(scheduled(start + 120)).expect("tick");
    assert_eq!(
        observe(&emulator, &app).await.phase().as_deref(),
        Some("rolling-back")
    );
    assert_eq!(function.counted_changes(), [], "held: nothing moved yet");

    // When blue is healthy again and the schedule moves traffic back.
    set_health(&emulator, &app, "blue", "healthy");
    function.invoke(scheduled(start + 180)).expect("tick");
    function.invoke(scheduled(start + 240)).expect("tick");

    // Then one rollback is counted, for the move.
    let end = observe(&emulator, &app).await;
    assert_eq!(
        (end.phase().as_deref(), end.percent),
        (Some("rolled-back"), (100, 0))
    );
    assert_eq!(
        function.counted_changes(),
        [CountedChange::one(
            "Swaps",
            "rolled-back",
            "blue-green-swapper"
        )]
    );
}

#[test]
fn the_binary_refuses_to_start_without_the_routes_it_may_change() {
    let function = LocalLambda::start(
        &built_binary("blue-green-swapper"),
        "blue-green-swapper",
        &[
            (
                "ALERT_TOPIC_ARN".into(),
                "arn:aws:sns:us-east-1:123456789012:ops-alerts".into(),
            ),
            ("ECS_CLUSTERS".into(), "prod".into()),
        ],
    );

    let InvokeError::NoAnswer(why, log) = function.invoke(json!({"command": "help"})).unwrap_err()
    else {
        panic!("expected no answer")
    };
    assert!(why.starts_with("the process exited"), "{why}");
    assert!(
        log.contains("missing configuration: environment variable `SWAP_ROUTES` is not set"),
        "{log}"
    );
}
