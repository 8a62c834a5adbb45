//! blue-green-swapper as ECS's lifecycle hook (issue "ECS as people run it", item 4): ECS walks a
//! canary deployment through its stages in the emulator, each configured stage's call (the payload
//! the developer guide's "Lambda hooks for Amazon ECS service deployments" documents) is handed
//! to the handler, and ECS's next move follows the answer: `IN_PROGRESS` waits while the new
//! revision's targets are not healthy, an alarm in ALARM answers `FAILED` (ECS rolls back), the
//! rollback's own calls always succeed, a service's test URL holds `POST_TEST_TRAFFIC_SHIFT` until
//! it answers as named, and a call that did not come from ECS is refused.
//! The event-order and safety cases come from an independent test of the first version.

use ops_core::alert::{Alert, AlertSink, MemoryAlerts, Severity};
use ops_core::aws::sns::SnsAlerts;
use ops_e2e::hooked::{calls, lambda_hook, now, world_of, World, TOPIC};
use ops_e2e::servers::{Reply, TestServer};
use serde_json::{json, Value};

const STAGES: &[&str] = &[
    "POST_SCALE_UP",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];

async fn world_with<A: AlertSink>(
    desired: i32,
    stages: &[&str],
    sink: impl FnOnce(&aws_config::SdkConfig) -> A,
) -> World<A> {
    world_of(desired, json!([lambda_hook(stages)]), json!({}), sink).await
}

async fn world() -> World<MemoryAlerts> {
    world_with(2, STAGES, |_| MemoryAlerts::default()).await
}

fn alerts(world: &World<MemoryAlerts>) -> Vec<Alert> {
    world.alerts()
}

/// ECS: "If your function doesn't return a valid hookStatus, or if it fails, Amazon ECS rolls back
/// the deployment." A deployment passes every gate while SNS throttles the hook.passed alert: the
/// answer is still SUCCEEDED (found by an independent test: the invocation failed, so ECS rolled
/// back a deployment that passed).
#[tokio::test]
async fn an_alert_that_cannot_be_sent_never_changes_the_answer_to_ecs() {
    let world = world_with(2, STAGES, |sdk| SnsAlerts::new(sdk, TOPIC)).await;
    world.deploy().await;
    world.green_targets("healthy");
    for stage in &STAGES[..2] {
        for call in world.advance(stage) {
            let answer = world.handle(call, now()).await.expect("answered");
            assert_eq!(answer["hookStatus"], "SUCCEEDED", "{stage}: {answer:#}");
        }
    }
    // The canary's second step (100%) passes on the way; its POST_PRODUCTION call is the last.
    let last = world.pass_to("POST_PRODUCTION_TRAFFIC_SHIFT").await;
    world
        .emulator
        .control(
            "POST",
            "/_ops/faults",
            Some(json!({"service": "sns", "operation": "Publish", "kind": "throttle"})),
        )
        .expect("SNS throttles");
    let answered = world.handle(last[0].clone(), now()).await;
    eprintln!(
        "answered {answered:?}; faults {:#}; calls {:#}",
        world.emulator.control("GET", "/_ops/faults", None).unwrap(),
        world.emulator.control("GET", "/_ops/calls", None).unwrap()["calls"]["sns"]
    );
    match answered {
        Ok(answer) => assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}"),
        Err(error) => panic!(
            "every gate passed, but the invocation FAILED (ECS rolls the deployment back): {error}"
        ),
    }
}

/// A call of a stage redelivered (or forged from chat) after ECS rolled the deployment back is
/// refused and pages nothing: the deployment is no longer under way (found by an independent test:
/// it was gated again and paged a second critical hook.failed).
#[tokio::test]
async fn a_call_after_ecs_finished_its_rollback_is_refused_and_pages_nobody() {
    let world = world().await;
    world.deploy().await;
    world.green_targets("healthy");
    for call in world.advance("POST_SCALE_UP") {
        world.handle(call, now()).await.unwrap();
    }
    let shift = world.advance("PRODUCTION_TRAFFIC_SHIFT").remove(0);
    world
        .alarm(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    let failed = world.handle(shift.clone(), now() + 60).await.unwrap();
    assert_eq!(failed["hookStatus"], "FAILED");
    assert_eq!(alerts(&world).len(), 1);
    let rollback = world
        .emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "FAILED"})),
        )
        .expect("ECS rolls back");
    for call in calls(&rollback) {
        world.handle(call, now() + 90).await.unwrap();
    }
    let status = world
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(shift["resourceArn"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .service_deployments()[0]
        .status()
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(status, "ROLLBACK_SUCCESSFUL");
    // The first call's answer was lost and it arrives again, late.
    let late = world.handle(shift, now() + 600).await;
    let sent = alerts(&world);
    assert!(
        late.is_err() && sent.len() == 1,
        "a call for a deployment that ended must be refused, alerting nothing; got {late:?} and {} alerts: {:#?}",
        sent.len(),
        sent.iter().map(|a| (&a.event_type, &a.title)).collect::<Vec<_>>()
    );
}

/// DESIGN.md "Event order": the same hook call (same executionId) answered FAILED and delivered
/// again (a Lambda retry, or ECS calling again after a lost answer) pages once.
#[tokio::test]
async fn the_same_failed_hook_call_delivered_twice_pages_once() {
    let world = world().await;
    world.deploy().await;
    world.green_targets("healthy");
    let call = world.advance("POST_SCALE_UP").remove(0);
    world
        .alarm(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    let first = world.handle(call.clone(), now()).await.unwrap();
    let second = world.handle(call, now() + 5).await.unwrap();
    assert_eq!(first["hookStatus"], "FAILED");
    assert_eq!(second["hookStatus"], "FAILED");
    let failed: Vec<Alert> = alerts(&world)
        .into_iter()
        .filter(|a| a.event_type == "hook.failed")
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "one hook execution, one page: {:#?}",
        failed.iter().map(|a| &a.title).collect::<Vec<_>>()
    );
}

/// A read that fails for good (here the new revision's target group is gone, TargetGroupNotFound;
/// in AWS also AccessDenied) answers FAILED, so ECS rolls back, and pages why (found by an
/// independent test: nobody was paged).
#[tokio::test]
async fn a_read_error_a_retry_cannot_fix_answers_failed_and_pages() {
    let world = world().await;
    world.deploy().await;
    let call = world.advance("POST_SCALE_UP").remove(0);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&world.emulator.sdk_config().await);
    let deleted = elb
        .delete_target_group()
        .target_group_arn(&world.green)
        .send()
        .await;
    let call = if deleted.is_ok() {
        call
    } else {
        // Fallback: a revision ECS rejects (InvalidParameterException, non-retryable).
        let mut call = call;
        call["executionDetails"]["targetServiceRevisionArn"] = json!("not-an-arn");
        call
    };
    let answer = world.handle(call, now()).await.unwrap();
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    eprintln!(
        "deleted target group: {}; answer: {answer:#}",
        deleted.is_ok()
    );
    assert_eq!(
        alerts(&world).len(),
        1,
        "ECS rolls back on this FAILED; ops must be told why"
    );
}

/// A service scaled to 0 (desiredCount 0) deploys a new revision: no tasks, so no targets to wait
/// for; the stage passes (found by an independent test: it waited for one healthy target, then
/// failed and rolled back a deployment with nothing wrong).
#[tokio::test]
async fn a_service_at_desired_count_zero_passes_post_scale_up() {
    let world = world_with(0, STAGES, |_| MemoryAlerts::default()).await;
    world.deploy().await;
    let call = world.advance("POST_SCALE_UP").remove(0);
    let answer = world.handle(call.clone(), now()).await.unwrap();
    let mut after = call;
    if let Some(details) = answer.get("hookDetails") {
        after["hookDetails"] = details.clone();
    }
    let late = world.handle(after, now() + 601).await.unwrap();
    assert_eq!(
        (answer["hookStatus"].clone(), late["hookStatus"].clone()),
        (json!("SUCCEEDED"), json!("SUCCEEDED")),
        "desired 0: first {answer:#}, after the timeout {late:#}; alerts {:#?}",
        alerts(&world).iter().map(|a| &a.title).collect::<Vec<_>>()
    );
}

/// A payload invoked from chat with a real, running service deployment but another revision as
/// `targetServiceRevisionArn` (here the blue one, healthy) is refused: the gates would read the
/// wrong revision (found by an independent test: a hook.passed naming web:1 was posted while ECS
/// deployed web:2 to unhealthy targets).
#[tokio::test]
async fn a_call_naming_another_revision_than_the_deployments_is_refused() {
    let world = world().await;
    world.deploy().await;
    world.green_targets("unhealthy");
    let call = world.advance("POST_SCALE_UP").remove(0);
    let deployment = world
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(call["resourceArn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let blue = deployment.service_deployments()[0].source_service_revisions()[0]
        .arn()
        .unwrap()
        .to_string();
    let mut forged = call.clone();
    forged["lifecycleStage"] = json!("POST_PRODUCTION_TRAFFIC_SHIFT");
    forged["executionDetails"]["targetServiceRevisionArn"] = json!(blue);
    let answered = world.handle(forged, now()).await;
    let sent = alerts(&world);
    assert!(
        answered.is_err() && sent.is_empty(),
        "a call whose target revision is not the deployment's must be refused; got {answered:?}, alerts {:#?}",
        sent.iter().map(|a| (&a.event_type, &a.title, &a.thread_id)).collect::<Vec<_>>()
    );
}

/// A wait is read only from the hook's own record for this deployment and stage, never from before
/// the deployment: a first call whose hookDetails claim an old wait still waits (found by an
/// independent test: `opsWaitingSince: 0` failed a stage whose targets were merely starting).
#[tokio::test]
async fn a_first_call_claiming_an_old_wait_in_hook_details_still_waits() {
    let world = world().await;
    world.deploy().await;
    let mut call = world.advance("POST_SCALE_UP").remove(0);
    world.green_targets("initial");
    call["hookDetails"] = json!({"opsWaitingSince": 0});
    let answer = world.handle(call, now()).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer:#}");
}

/// While ECS rolls back it calls the TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks again,
/// the new revision at 0%; both calls pass, even with the alarm that caused the rollback still
/// firing (found by an independent test: the test-shift call, its weights in testTrafficWeights,
/// was gated and answered FAILED).
#[tokio::test]
async fn the_rollbacks_test_traffic_shift_call_passes() {
    let world = world_with(
        2,
        &[
            "POST_SCALE_UP",
            "TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT",
        ],
        |_| MemoryAlerts::default(),
    )
    .await;
    world.deploy().await;
    world.green_targets("healthy");
    for stage in ["POST_SCALE_UP", "TEST_TRAFFIC_SHIFT"] {
        for call in world.advance(stage) {
            let answer = world.handle(call, now()).await.unwrap();
            assert_eq!(answer["hookStatus"], "SUCCEEDED", "{stage}: {answer:#}");
        }
    }
    let shift = world.advance("PRODUCTION_TRAFFIC_SHIFT").remove(0);
    world
        .alarm(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .await;
    assert_eq!(
        world.handle(shift, now() + 60).await.unwrap()["hookStatus"],
        "FAILED"
    );
    let rollback = world
        .emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "FAILED"})),
        )
        .expect("ECS rolls back");
    let mut answers = Vec::new();
    for call in calls(&rollback) {
        let stage = call["lifecycleStage"].clone();
        let weights = (
            call["executionDetails"]["testTrafficWeights"].clone(),
            call["executionDetails"]["productionTrafficWeights"].clone(),
        );
        let answer = world.handle(call, now() + 90).await.unwrap();
        answers.push((
            stage,
            answer["hookStatus"].clone(),
            answer["reason"].clone(),
            weights,
        ));
    }
    assert!(
        answers.iter().all(|a| a.1 == "SUCCEEDED") && alerts(&world).len() == 1,
        "a rollback's calls must all succeed and page nothing more: {answers:#?}; alerts: {:#?}",
        alerts(&world).iter().map(|a| &a.title).collect::<Vec<_>>()
    );
}

/// Held up: a throttled read answers IN_PROGRESS (ECS calls again) rather than FAILED, and pages
/// nothing.
#[tokio::test]
async fn a_throttled_read_answers_in_progress() {
    let world = world().await;
    world.deploy().await;
    let call = world.advance("POST_SCALE_UP").remove(0);
    world
        .emulator
        .control(
            "POST",
            "/_ops/faults",
            Some(json!({"service": "ecs", "operation": "DescribeServiceDeployments", "kind": "throttle"})),
        )
        .unwrap();
    let answer = world.handle(call, now()).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer:#}");
    assert_eq!(answer["callBackDelay"], 30);
    assert!(alerts(&world).is_empty());
}

/// While a read keeps failing (ELB throttles), the stage waits only until its health timeout from
/// the first call runs out, then fails (found by an independent test: it answered IN_PROGRESS for
/// hours, until ECS's own 24-hour stage limit).
#[tokio::test]
async fn a_read_that_keeps_failing_fails_the_stage_once_the_wait_runs_out() {
    let world = world().await;
    world.deploy().await;
    let call = world.advance("POST_SCALE_UP").remove(0);
    world.green_targets("unhealthy");
    let first = world.handle(call.clone(), now()).await.unwrap();
    assert_eq!(first["hookStatus"], "IN_PROGRESS");
    world
        .emulator
        .control(
            "POST",
            "/_ops/faults",
            Some(json!({"service": "elasticloadbalancing", "operation": "DescribeTargetHealth", "kind": "throttle"})),
        )
        .unwrap();
    let mut again = call;
    again["hookDetails"] = first["hookDetails"].clone();
    let late = world.handle(again, now() + 3 * 3600).await.unwrap();
    assert_eq!(
        late["hookStatus"], "FAILED",
        "3 h after a 10 m health timeout: {late:#}"
    );
}

#[tokio::test]
async fn a_canary_is_held_until_healthy_and_an_alarm_at_the_production_shift_fails_it_and_the_rollback_passes(
) {
    let world = world().await;
    world.deploy().await;

    // POST_SCALE_UP: green's targets are still starting: wait, with a call back.
    let scale_up = world.advance("POST_SCALE_UP");
    world.green_targets("initial");
    assert_eq!(scale_up.len(), 1);
    let waiting = world.handle(scale_up[0].clone(), now()).await.unwrap();
    assert_eq!(waiting["hookStatus"], "IN_PROGRESS", "{waiting:#}");
    assert_eq!(waiting["callBackDelay"], 30);
    assert_eq!(waiting["hookDetails"]["opsWait"]["since"], now());
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
    let passed = world.handle(again, now() + 30).await.unwrap();
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
    let failed = world.handle(shift[0].clone(), now() + 400).await.unwrap();
    assert_eq!(failed["hookStatus"], "FAILED", "{failed:#}");
    assert_eq!(
        failed["reason"],
        "alarm in ALARM at PRODUCTION_TRAFFIC_SHIFT: web-5xx (Threshold Crossed)"
    );
    let sent = alerts(&world);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let alert = &sent[0];
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
    let answered = world.handle(back[0].clone(), now() + 430).await.unwrap();
    assert_eq!(answered["hookStatus"], "SUCCEEDED", "{answered:#}");
    assert!(answered["reason"]
        .as_str()
        .unwrap()
        .contains("never holds a rollback"));
    assert_eq!(
        alerts(&world).len(),
        1,
        "the rollback's call alerts nothing more"
    );
}

/// Deliver `call`, then again as ECS calls back 300, 599 and 600 s later with the `hookDetails` it
/// got each time: waiting until the 10-minute health timeout, then FAILED. The last answer.
async fn waited_out(world: &World<MemoryAlerts>, call: &Value) -> Value {
    let mut answer = world.handle(call.clone(), now()).await.unwrap();
    for (after, expected) in [(300, "IN_PROGRESS"), (599, "IN_PROGRESS"), (600, "FAILED")] {
        let mut again = call.clone();
        again["hookDetails"] = answer["hookDetails"].clone();
        answer = world.handle(again, now() + after).await.unwrap();
        assert_eq!(answer["hookStatus"], expected, "{after}: {answer:#}");
    }
    answer
}

#[tokio::test]
async fn targets_that_never_become_healthy_fail_the_stage_a_health_timeout_after_the_first_call() {
    let world = world().await;
    world.deploy().await;
    let call = world.advance("POST_SCALE_UP").remove(0);
    world.green_targets("unhealthy");
    let failed = waited_out(&world, &call).await;
    assert_eq!(
        failed["reason"],
        "web:2 was not healthy within 10 minutes at POST_SCALE_UP (web:2 0/2 healthy, 2 not healthy)"
    );
    assert_eq!(alerts(&world).len(), 1);
}

#[tokio::test]
async fn a_deployment_that_passes_every_gate_is_alerted_once_production_is_on_it() {
    let world = world().await;
    world.deploy().await;
    let mut answers = Vec::new();
    // The canary's production shift is called at each step: 10%, then 100%.
    for stage in [
        "POST_SCALE_UP",
        "PRODUCTION_TRAFFIC_SHIFT",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
    ] {
        for call in world.advance(stage) {
            answers.push(world.handle(call, now()).await.unwrap()["hookStatus"].clone());
        }
    }
    assert_eq!(answers, ["SUCCEEDED"; 4]);
    let alerts = alerts(&world);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_type, "hook.passed");
    assert_eq!(
        alerts[0].title,
        "prod/web: web:2 passed every gate; production traffic is on it"
    );
}

#[tokio::test]
async fn a_call_that_did_not_come_from_ecs_is_refused_and_alerts_nothing() {
    let world = world().await;
    world.deploy().await;
    let real = world.advance("POST_SCALE_UP").remove(0);

    let mut unknown = real.clone();
    unknown["resourceArn"] = json!(
        "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/NotADeployment0000000"
    );
    let refused = world.handle(unknown, now()).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("ECS does not know service deployment"),
        "{refused}"
    );

    let mut elsewhere = real.clone();
    elsewhere["executionDetails"]["serviceArn"] =
        json!("arn:aws:ecs:us-east-1:123456789012:service/prod/api");
    let refused = world.handle(elsewhere, now()).await.unwrap_err();
    assert!(refused.to_string().contains("belongs to"), "{refused}");

    let malformed = world
        .handle(
            json!({"executionId": "x", "lifecycleStage": "POST_SCALE_UP"}),
            now(),
        )
        .await
        .unwrap_err();
    assert!(malformed.to_string().contains("resourceArn"), "{malformed}");
    assert!(alerts(&world).is_empty());
}

#[tokio::test]
async fn the_emulator_never_skips_a_hook_ecs_would_call() {
    let world = world().await;
    world.deploy().await;
    let skipped = world
        .emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "COMPLETED"})),
        )
        .unwrap_err();
    assert!(
        skipped.to_string().contains(
            "has lifecycle hooks ahead (POST_PRODUCTION_TRAFFIC_SHIFT, POST_SCALE_UP, PRODUCTION_TRAFFIC_SHIFT)"
        ),
        "{skipped}"
    );
}

/// prod/web with hooks at POST_SCALE_UP, POST_TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT and
/// a test URL tag (`test_url`, settings included); green's targets healthy and the deployment at
/// POST_TEST_TRAFFIC_SHIFT: its hook call. At that stage "the green service revision handles 100%
/// of the test traffic" (developer guide, "How Amazon ECS blue/green deployments work"): the test
/// server stands in for the test listener in front of it.
async fn at_post_test_traffic_shift(test_url: &str) -> (World<MemoryAlerts>, Value) {
    let world = world_of(
        2,
        json!([lambda_hook(&[
            "POST_SCALE_UP",
            "POST_TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT"
        ])]),
        json!({ "ops:hook-test-url": test_url }),
        |_| MemoryAlerts::default(),
    )
    .await;
    world.deploy().await;
    world.green_targets("healthy");
    for call in world.advance("POST_SCALE_UP") {
        let answer = world.handle(call, now()).await.unwrap();
        assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    }
    let mut calls = world.advance("POST_TEST_TRAFFIC_SHIFT");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    (world, calls.remove(0))
}

#[tokio::test]
async fn the_test_url_holds_post_test_traffic_shift_until_it_answers_as_named() {
    let server = TestServer::http(Reply::error(503, "warming up")).await;
    let url = server.url("/health");
    let (world, call) = at_post_test_traffic_shift(&format!("{url} contains=ok")).await;

    let waiting = world.handle(call.clone(), now()).await.unwrap();
    assert_eq!(waiting["hookStatus"], "IN_PROGRESS", "{waiting:#}");
    assert_eq!(waiting["callBackDelay"], 30);
    let reason = waiting["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "waiting for the test URL to pass at POST_TEST_TRAFFIC_SHIFT (test URL {url} failed (status): HTTP 503 (expected 200-299); body: warming up); fails at "
        )),
        "{reason}"
    );

    // It answers 200 without the text it must contain: still waiting, and saying why.
    server.set(Reply::Answer {
        status: 200,
        body: "starting".into(),
    });
    let mut again = call.clone();
    again["hookDetails"] = waiting["hookDetails"].clone();
    let body = world.handle(again.clone(), now() + 30).await.unwrap();
    assert_eq!(body["hookStatus"], "IN_PROGRESS", "{body:#}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("failed (body): the body does not contain `ok`; body: starting"),
        "{body:#}"
    );

    // Then it passes, and ECS goes on to the production shift.
    server.set(Reply::healthy());
    again["hookDetails"] = body["hookDetails"].clone();
    let passed = world.handle(again, now() + 60).await.unwrap();
    assert_eq!(passed["hookStatus"], "SUCCEEDED", "{passed:#}");
    assert_eq!(
        passed["reason"],
        format!("web:2 2/2 healthy, test URL {url} answered HTTP 200 and no gating alarm in ALARM at POST_TEST_TRAFFIC_SHIFT")
    );
    assert_eq!(world.advance("PRODUCTION_TRAFFIC_SHIFT").len(), 1);
    assert!(
        alerts(&world).is_empty(),
        "waiting and passing a stage alert nothing: {:#?}",
        alerts(&world)
    );
}

#[tokio::test]
async fn a_test_url_that_never_passes_fails_the_stage_at_the_health_timeout_and_pages_why() {
    let server = TestServer::http(Reply::error(500, "NullPointerException in /health")).await;
    let url = server.url("/health");
    let (world, call) = at_post_test_traffic_shift(&url).await;
    let failed = waited_out(&world, &call).await;
    assert_eq!(
        failed["reason"],
        format!("test URL {url} failed (status): HTTP 500 (expected 200-299); body: NullPointerException in /health: it did not pass within 10 minutes at POST_TEST_TRAFFIC_SHIFT")
    );
    let sent = alerts(&world);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].event_type, "hook.failed");
    assert_eq!(sent[0].severity, Severity::Critical);
    assert_eq!(
        sent[0].title,
        "prod/web: deployment of web:2 stopped at POST_TEST_TRAFFIC_SHIFT; ECS rolls back"
    );
    assert!(sent[0].why.contains(&url), "{}", sent[0].why);
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_a_timeout_and_the_hook_still_answers_ecs() {
    let server = TestServer::http(Reply::Hang).await;
    let url = server.url("/health");
    let (world, call) = at_post_test_traffic_shift(&url).await;
    let answer = world.handle(call, now()).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer:#}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("test URL {url} failed (timeout): ")),
        "{answer:#}"
    );
}

/// A gate that cannot be read is never skipped: the deployment's first hook call fails, before
/// any test traffic, naming the tag and what is wrong with it.
#[tokio::test]
async fn a_test_url_tag_that_cannot_be_used_fails_the_first_stage_naming_the_tag() {
    let world = world_of(
        2,
        json!([lambda_hook(&["POST_SCALE_UP", "POST_TEST_TRAFFIC_SHIFT"])]),
        json!({ "ops:hook-test-url": "http://alb.internal:8080/health retries=3" }),
        |_| MemoryAlerts::default(),
    )
    .await;
    world.deploy().await;
    world.green_targets("healthy");
    let call = world.advance("POST_SCALE_UP").remove(0);
    let answer = world.handle(call, now()).await.unwrap();
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    assert_eq!(
        answer["reason"],
        "tag `ops:hook-test-url` = `http://alb.internal:8080/health retries=3`: `retries=3` is not a setting (status=<code or low-high>, contains=<text without spaces>, tls=unverified)"
    );
    assert_eq!(alerts(&world).len(), 1);
}

/// A test URL on a service that does not call the hook function at POST_TEST_TRAFFIC_SHIFT would
/// never be checked: the hook function's doctor says so, naming the stages it is called at.
#[tokio::test]
async fn the_hook_functions_doctor_names_a_test_url_its_stages_never_check() {
    let hook_here = json!({
        "hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:blue-green-swapper-hook",
        "roleArn": "arn:aws:iam::123456789012:role/opsstack-BlueGreenSwapperHookInvokeRole",
        "lifecycleStages": ["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT"],
    });
    let world = world_of(
        2,
        json!([hook_here]),
        json!({ "ops:hook-test-url": "http://alb.internal:8080/health" }),
        |_| MemoryAlerts::default(),
    )
    .await;
    let hook = world.hook_function().await;
    let doctor = world
        .handle_with(&hook, json!({"command": "doctor"}), now())
        .await
        .unwrap();
    let finding = doctor["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "service prod/web: ops:hook-test-url")
        .unwrap_or_else(|| panic!("{doctor:#}"))
        .clone();
    assert_eq!(finding["verdict"], "problem", "{finding:#}");
    assert_eq!(
        finding["detail"],
        "`http://alb.internal:8080/health` is never checked: the service calls blue-green-swapper-hook at POST_SCALE_UP, PRODUCTION_TRAFFIC_SHIFT, not at POST_TEST_TRAFFIC_SHIFT; add POST_TEST_TRAFFIC_SHIFT to that lifecycle hook's stages"
    );
    assert_eq!(doctor["ok"], false);
}

/// AWS's own payload of a hook call (events/, verbatim from the developer guide's "Lambda hooks for
/// Amazon ECS service deployments") parses, and names a cluster the swapper does not manage: the
/// stage fails with that reason, checks nothing in it, and pages once.
#[tokio::test]
async fn aws_sample_hook_call_for_an_unmanaged_cluster_fails_naming_the_cluster() {
    let world = world().await;
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/ecs-lifecycle-hook-post-test-traffic-shift.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let answer = world.handle(sample, now()).await.unwrap();
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .starts_with("cluster `my-cluster` is not one blue-green-swapper manages"),
        "{answer:#}"
    );
    assert_eq!(alerts(&world).len(), 1);
}
