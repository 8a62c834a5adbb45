//! The person's gate on ECS's own deployments (issue "ECS as people run it", item 4): a canary of
//! prod/web held at POST_TEST_TRAFFIC_SHIFT by a pause hook (developer guide, "Pause hooks for
//! Amazon ECS service deployments") or by the swapper's own manual gate (`ops:hook-approval`),
//! released from chat with `promote`, rolled back with `abort`, and shown by `status`. ECS's
//! `HOOK_AWAITING_ACTION` event is alerted once, with the commands that answer it; a late or forged
//! one is quiet; a command that cannot act changes nothing in ECS.

use aws_sdk_cloudwatch::types::StateValue;
use ops_core::alert::{MemoryAlerts, Severity};
use ops_e2e::hooked::{calls, lambda_hook, now, world_of, World};
use ops_e2e::servers::{Reply, TestServer};
use serde_json::{json, Value};

/// ECS pauses at POST_TEST_TRAFFIC_SHIFT until someone continues it (the pause-hooks page's own
/// example configuration), and calls the swapper at POST_SCALE_UP and at each production shift.
fn pause_hook() -> Value {
    json!({"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
           "timeoutConfiguration": {"timeoutInMinutes": 10, "action": "ROLLBACK"}})
}

async fn paused_world() -> World<MemoryAlerts> {
    world_of(
        2,
        json!([
            lambda_hook(&["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT"]),
            pause_hook()
        ]),
        json!({}),
        |_| MemoryAlerts::default(),
    )
    .await
}

async fn approval_world() -> World<MemoryAlerts> {
    world_of(
        2,
        json!([lambda_hook(&[
            "POST_SCALE_UP",
            "POST_TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT"
        ])]),
        json!({"ops:hook-approval": "POST_TEST_TRAFFIC_SHIFT"}),
        |_| MemoryAlerts::default(),
    )
    .await
}

fn chat(command: &str, app: &str, by: &str) -> Value {
    json!({"command": command, "args": {"app": app}, "requested_by": by})
}

/// Deploy web:2 and walk it to POST_TEST_TRAFFIC_SHIFT, answering the hook's calls on the way
/// (every gate passes): the emulator's answer at the pause.
async fn to_the_pause(world: &World<MemoryAlerts>) -> Value {
    world.deploy().await;
    for call in world.advance("POST_SCALE_UP") {
        let answer = world.handle(call, now()).await.unwrap();
        assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    }
    world.walk("POST_TEST_TRAFFIC_SHIFT")
}

async fn hook_status(world: &World<MemoryAlerts>) -> (String, Vec<String>) {
    let deployment = world.service_deployment().await;
    (
        deployment.status().unwrap().as_str().to_string(),
        deployment
            .lifecycle_hook_details()
            .iter()
            .map(|h| h.status().unwrap().as_str().to_string())
            .collect(),
    )
}

#[tokio::test]
async fn a_pause_is_alerted_once_and_released_by_chat_promote() {
    let world = paused_world().await;
    let paused = to_the_pause(&world).await;
    let events = paused["hookEvents"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{paused:#}");
    assert_eq!(events[0]["detail"]["eventName"], "HOOK_AWAITING_ACTION");

    // The event, delivered twice (EventBridge delivers at least once): one alert.
    let first = world.handle(events[0].clone(), now()).await.unwrap();
    assert_eq!(first["alerted"], true, "{first:#}");
    let again = world.handle(events[0].clone(), now() + 5).await.unwrap();
    assert_eq!(again["alerted"], false, "{again:#}");
    let sent = world.alerts();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let alert = &sent[0];
    assert_eq!(
        (alert.severity, alert.event_type.as_str()),
        (Severity::Warning, "hook.paused")
    );
    assert_eq!(
        alert.title,
        "prod/web: web:2 paused at POST_TEST_TRAFFIC_SHIFT, waits for your go"
    );
    assert!(
        alert
            .why
            .starts_with("gates now: SUCCEEDED (web:2 2/2 healthy"),
        "{}",
        alert.why
    );
    let steps = alert.next_steps.join("\n");
    // Each line is pinned to this deployment: sent after another replaced it, it changes nothing.
    let id = events[0]["resources"][0]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    for command in ["promote", "abort"] {
        let line = format!(
            r#"--payload {{"args":{{"app":"prod/web","deployment":"{id}"}},"command":"{command}"}}"#
        );
        assert!(steps.contains(&line), "{steps}");
    }

    // status says what it waits for.
    let status = world
        .handle(chat("status", "prod/web", "alice"), now())
        .await
        .unwrap();
    let shown = &status["services"][0];
    assert_eq!(shown["deployment"]["stage"], "POST_TEST_TRAFFIC_SHIFT");
    assert_eq!(shown["strategy"]["name"], "CANARY");
    let waiting = shown["waiting_for"].as_str().unwrap();
    assert!(
        waiting.starts_with("a person: pause hook ecs-pause-")
            && waiting.contains("awaits promote or abort; at ")
            && waiting.ends_with("ECS will roll it back"),
        "{waiting}"
    );

    // promote: ECS continues; the pause is SUCCEEDED; ops are told who did it.
    let promoted = world
        .handle(chat("promote", "prod/web", "alice"), now() + 60)
        .await
        .unwrap();
    assert_eq!(promoted["status"], "applied", "{promoted:#}");
    assert_eq!(
        hook_status(&world).await,
        ("IN_PROGRESS".into(), vec!["SUCCEEDED".into()])
    );
    let sent = world.alerts();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].event_type, "hook.promoted");
    assert_eq!(
        sent[1].title,
        "prod/web: alice promoted web:2 at POST_TEST_TRAFFIC_SHIFT"
    );
    assert_eq!(sent[1].requested_by.as_deref(), Some("alice"));
    assert_eq!(sent[1].thread_id, sent[0].thread_id);

    // The pause event arriving late, after the promote, is not news.
    let late = world.handle(events[0].clone(), now() + 90).await.unwrap();
    assert_eq!(late["status"], "ignored", "{late:#}");
    assert_eq!(world.alerts().len(), 2);

    // ECS goes on: the shift calls pass (each at its step), and the deployment completes.
    assert!(world.pass_to("CLEAN_UP").await.is_empty());
    assert_eq!(
        world
            .service_deployment()
            .await
            .status()
            .map(|s| s.as_str()),
        Some("SUCCESSFUL")
    );
}

#[tokio::test]
async fn promote_is_refused_while_an_alarm_fires_and_abort_rolls_the_paused_deployment_back() {
    let world = paused_world().await;
    let paused = to_the_pause(&world).await;
    world.alarm(StateValue::Alarm).await;

    // The pause, alerted while the alarm fires, says not to promote.
    world
        .handle(paused["hookEvents"][0].clone(), now())
        .await
        .unwrap();
    let alert = world.alerts().remove(0);
    assert_eq!(alert.severity, Severity::Critical);
    assert!(
        alert
            .why
            .contains("FAILED (alarm in ALARM at POST_TEST_TRAFFIC_SHIFT: web-5xx"),
        "{}",
        alert.why
    );
    assert!(
        alert
            .next_steps
            .iter()
            .any(|s| s.starts_with("Do not promote: a gate fails. Roll back: ")),
        "{:#?}",
        alert.next_steps
    );

    let refused = world
        .handle(chat("promote", "prod/web", "alice"), now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("web:2 cannot be promoted at POST_TEST_TRAFFIC_SHIFT: alarm in ALARM at POST_TEST_TRAFFIC_SHIFT: web-5xx"),
        "{refused}"
    );
    assert_eq!(
        hook_status(&world).await,
        ("IN_PROGRESS".into(), vec!["AWAITING_ACTION".into()]),
        "a refused promote changes nothing"
    );

    // abort in dry-run says what it would do and does nothing.
    let mut dry = chat("abort", "prod/web", "bob");
    dry["dry_run"] = json!(true);
    let planned = world.handle(dry, now()).await.unwrap();
    assert_eq!(planned["status"], "planned", "{planned:#}");
    assert_eq!(
        planned["not_attempted"][0]["action"]["action"],
        "roll_back_pause"
    );
    assert_eq!(
        hook_status(&world).await,
        ("IN_PROGRESS".into(), vec!["AWAITING_ACTION".into()])
    );

    // abort: the pause is answered ROLLBACK and ECS rolls back; its rollback calls pass.
    let aborted = world
        .handle(chat("abort", "prod/web", "bob"), now())
        .await
        .unwrap();
    assert_eq!(aborted["status"], "applied", "{aborted:#}");
    assert_eq!(
        hook_status(&world).await,
        ("ROLLBACK_IN_PROGRESS".into(), vec!["FAILED".into()])
    );
    let sent = world.alerts();
    assert_eq!(sent.last().unwrap().event_type, "hook.aborted");
    assert_eq!(
        sent.last().unwrap().title,
        "prod/web: bob aborted web:2 at POST_TEST_TRAFFIC_SHIFT; ECS rolls back"
    );
    let ended = world
        .emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": "prod", "service": "web", "state": "FAILED"})),
        )
        .expect("the rollback ends");
    assert_eq!(ended["status"], "ROLLBACK_SUCCESSFUL");
    for call in calls(&ended) {
        let answer = world.handle(call, now()).await.unwrap();
        assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    }
    // A second abort finds nothing in flight.
    let nothing = world
        .handle(chat("abort", "prod/web", "bob"), now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        nothing.contains("no deployment of prod/web is in flight"),
        "{nothing}"
    );
}

#[tokio::test]
async fn the_hooks_manual_gate_holds_the_stage_until_promote_releases_it() {
    let world = approval_world().await;
    world.deploy().await;
    for call in world.advance("POST_SCALE_UP") {
        world.handle(call, now()).await.unwrap();
    }
    let call = world.advance("POST_TEST_TRAFFIC_SHIFT").remove(0);
    let held = world.handle(call.clone(), now()).await.unwrap();
    assert_eq!(held["hookStatus"], "IN_PROGRESS", "{held:#}");
    assert_eq!(held["callBackDelay"], 30);
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for a person at POST_TEST_TRAFFIC_SHIFT"),
        "{held:#}"
    );
    // ECS calls again after the delay: still held, and alerted only once.
    let mut again = call.clone();
    again["hookDetails"] = held["hookDetails"].clone();
    assert_eq!(
        world.handle(again.clone(), now() + 30).await.unwrap()["hookStatus"],
        "IN_PROGRESS"
    );
    let sent = world.alerts();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].event_type, "hook.awaiting");
    assert_eq!(
        sent[0].title,
        "prod/web: web:2 waits for your go at POST_TEST_TRAFFIC_SHIFT"
    );

    let status = world
        .handle(chat("status", "prod/web", "alice"), now() + 40)
        .await
        .unwrap();
    assert_eq!(
        status["services"][0]["waiting_for"],
        "a person: the hook holds web:2 at POST_TEST_TRAFFIC_SHIFT (`ops:hook-approval`) until promote or abort"
    );

    let promoted = world
        .handle(chat("promote", "prod/web", "alice"), now() + 45)
        .await
        .unwrap();
    assert_eq!(promoted["applied"][0]["action"]["action"], "release");
    let released = world.handle(again, now() + 60).await.unwrap();
    assert_eq!(released["hookStatus"], "SUCCEEDED", "{released:#}");
    assert!(released["reason"]
        .as_str()
        .unwrap()
        .starts_with("released by alice from chat at POST_TEST_TRAFFIC_SHIFT"));

    // The release is of that deployment's stage only: the next stage is gated as before, and a
    // promote now has nothing to release.
    let nothing = world
        .handle(chat("promote", "prod/web", "alice"), now() + 70)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        nothing.contains(
            "nothing holds the deployment of web:2 for a person at POST_TEST_TRAFFIC_SHIFT"
        ),
        "{nothing}"
    );
}

#[tokio::test]
async fn abort_of_a_running_deployment_stops_it_with_a_rollback_once() {
    let world = approval_world().await;
    world.deploy().await;
    world.advance("POST_SCALE_UP");
    let aborted = world
        .handle(chat("abort", "prod/web", "bob"), now())
        .await
        .unwrap();
    assert_eq!(
        aborted["applied"][0]["action"]["action"],
        "stop_with_rollback"
    );
    assert_eq!(hook_status(&world).await.0, "ROLLBACK_REQUESTED");
    let again = world
        .handle(chat("abort", "prod/web", "bob"), now())
        .await
        .unwrap();
    assert_eq!(again["status"], "no_change", "{again:#}");
    assert!(again["notes"][0]
        .as_str()
        .unwrap()
        .contains("already ROLLBACK_REQUESTED"));
    assert_eq!(world.alerts().len(), 1, "one abort, one alert");
}

#[tokio::test]
async fn gate_commands_and_events_that_cannot_act_change_nothing_and_say_why() {
    let world = paused_world().await;
    // No deployment in flight.
    let idle = world
        .handle(chat("promote", "prod/web", "alice"), now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        idle.contains("no deployment of prod/web is in flight: nothing to promote (the last one, "),
        "{idle}"
    );
    for (app, expected) in [
        ("prod/nope", "prod/nope"),
        (
            "staging/web",
            "cluster `staging` is not one blue-green-swapper manages",
        ),
        ("prod/", "is not cluster/service"),
    ] {
        let error = world
            .handle(chat("abort", app, "alice"), now())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{app}: {error}");
    }
    // A running deployment with nothing held for a person: promote has nothing to release.
    world.deploy().await;
    world.advance("POST_SCALE_UP");
    let going = world
        .handle(chat("promote", "prod/web", "alice"), now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        going.contains("nothing holds the deployment of web:2 for a person"),
        "{going}"
    );

    // A forged pause event (a hook ECS does not have) and AWS's own sample (a cluster not
    // managed) alert nothing.
    let paused = world.walk("POST_TEST_TRAFFIC_SHIFT");
    let mut forged = paused["hookEvents"][0].clone();
    forged["detail"]["hookId"] = json!("ecs-pause-forged");
    let quiet = world.handle(forged, now()).await.unwrap();
    assert_eq!(quiet["status"], "ignored", "{quiet:#}");
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/ecs-hook-awaiting-action.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let outside = world.handle(sample, now()).await.unwrap();
    assert_eq!(outside["status"], "ignored", "{outside:#}");
    assert!(world.alerts().is_empty(), "{:#?}", world.alerts());
    assert_eq!(
        hook_status(&world).await,
        ("IN_PROGRESS".into(), vec!["AWAITING_ACTION".into()])
    );
}

/// The stack deploys the hook as a function of its own (`SWAPPER_SERVES=lifecycle-hooks`, no
/// reserved concurrency: ECS rolls back a deployment whose hook it cannot invoke). It answers hook
/// calls and pause events, runs its doctor, and sends swaps and other chat back to the swapper.
#[tokio::test]
async fn the_hook_function_answers_hooks_and_pause_events_and_sends_chat_back_to_the_swapper() {
    let world = paused_world().await;
    let hook = world.hook_function().await;
    world.deploy().await;
    for call in world.advance("POST_SCALE_UP") {
        let answer = world.handle_with(&hook, call, now()).await.unwrap();
        assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    }
    let paused = world.walk("POST_TEST_TRAFFIC_SHIFT");
    let alerted = world
        .handle_with(&hook, paused["hookEvents"][0].clone(), now())
        .await
        .unwrap();
    assert_eq!(alerted["alerted"], true, "{alerted:#}");
    let paused_alert = hook.alerts.sent().remove(0);
    assert_eq!(paused_alert.event_type, "hook.paused");
    assert_eq!(paused_alert.function, "blue-green-swapper-hook");
    // Its chat lines name the swapper, which takes them, and the swapper's alerts join its thread.
    assert!(
        paused_alert
            .next_steps
            .iter()
            .all(|s| s.contains("--function-name blue-green-swapper --payload")),
        "{:#?}",
        paused_alert.next_steps
    );
    world
        .handle(chat("promote", "prod/web", "alice"), now())
        .await
        .unwrap();
    assert_eq!(world.alerts()[0].thread_id, paused_alert.thread_id);
    for command in ["abort", "status", "deploy"] {
        let refused = world
            .handle_with(&hook, chat(command, "prod/web", "alice"), now())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("serves ECS lifecycle hooks only (SWAPPER_SERVES=lifecycle-hooks): send chat commands to blue-green-swapper itself, blue-green-swapper"),
            "{command}: {refused}"
        );
    }
    let tick: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/scheduled-event.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let ignored = world.handle_with(&hook, tick, now()).await.unwrap();
    assert_eq!(ignored["status"], "ignored", "{ignored:#}");
    let doctor = world
        .handle_with(&hook, json!({"command": "doctor"}), now())
        .await
        .unwrap();
    assert_eq!(doctor["status"], "doctor", "{doctor:#}");
    assert_eq!(
        hook_status(&world).await,
        ("IN_PROGRESS".into(), vec!["SUCCEEDED".into()]),
        "the swapper's promote continued the pause; nothing the hook function refused changed ECS"
    );
}

// --- Found by an independent test of the first version ------------------------------------------

/// Walk on to the next `stage` and answer every hook call on the way; the calls made at `stage`.
async fn calls_at(world: &World<MemoryAlerts>, stage: &str) -> Vec<Value> {
    world
        .pass_to(stage)
        .await
        .into_iter()
        .filter(|c| c["lifecycleStage"] == stage)
        .collect()
}

async fn world_with(hooks: Value, tags: Value) -> World<MemoryAlerts> {
    world_of(2, hooks, tags, |_| MemoryAlerts::default()).await
}

/// ECS calls PRODUCTION_TRAFFIC_SHIFT at each step of a canary ("Recurring invocation stages"): a
/// release of the 10% step does not release the 100% one, which is held and alerted again.
#[tokio::test]
async fn a_release_of_the_canary_step_does_not_release_the_full_shift() {
    let world = world_with(
        json!([lambda_hook(&["PRODUCTION_TRAFFIC_SHIFT"])]),
        json!({"ops:hook-approval": "PRODUCTION_TRAFFIC_SHIFT"}),
    )
    .await;
    world.deploy().await;
    let canary = calls_at(&world, "PRODUCTION_TRAFFIC_SHIFT").await.remove(0);
    let held = world.handle(canary.clone(), now()).await.unwrap();
    assert_eq!(held["hookStatus"], "IN_PROGRESS", "{held:#}");
    world
        .handle(chat("promote", "prod/web", "alice"), now() + 10)
        .await
        .unwrap();
    let mut again = canary.clone();
    again["hookDetails"] = held["hookDetails"].clone();
    assert_eq!(
        world.handle(again, now() + 30).await.unwrap()["hookStatus"],
        "SUCCEEDED"
    );
    let full = calls_at(&world, "PRODUCTION_TRAFFIC_SHIFT").await.remove(0);
    let answer = world.handle(full.clone(), now() + 400).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer:#}");
    let titles: Vec<String> = world.alerts().iter().map(|a| a.title.clone()).collect();
    assert_eq!(
        titles
            .iter()
            .filter(|t| t.contains("waits for your go at PRODUCTION_TRAFFIC_SHIFT@"))
            .count(),
        2,
        "{titles:#?}"
    );
    let status = world
        .handle(chat("status", "prod/web", "alice"), now() + 410)
        .await
        .unwrap();
    assert_eq!(
        status["services"][0]["held_for_a_person_at"],
        "PRODUCTION_TRAFFIC_SHIFT@100"
    );
}

/// A hold before a production shift (PRE_PRODUCTION_TRAFFIC_SHIFT, a stage ECS never reports as
/// the deployment's lifecycle stage) is found and released from chat, before traffic moves.
#[tokio::test]
async fn an_approval_before_the_production_shift_is_released_from_chat() {
    let world = world_with(
        json!([lambda_hook(&["PRE_PRODUCTION_TRAFFIC_SHIFT"])]),
        json!({"ops:hook-approval": "PRE_PRODUCTION_TRAFFIC_SHIFT"}),
    )
    .await;
    world.deploy().await;
    let pre = calls_at(&world, "PRE_PRODUCTION_TRAFFIC_SHIFT")
        .await
        .remove(0);
    let held = world.handle(pre.clone(), now()).await.unwrap();
    assert_eq!(held["hookStatus"], "IN_PROGRESS", "{held:#}");
    let shown = world.service_deployment().await;
    let green = shown.target_service_revision().unwrap();
    assert_eq!(green.requested_production_traffic_weight(), Some(0.0));
    let promoted = world
        .handle(chat("promote", "prod/web", "alice"), now() + 10)
        .await
        .unwrap();
    assert_eq!(promoted["applied"][0]["action"]["action"], "release");
    let mut again = pre;
    again["hookDetails"] = held["hookDetails"].clone();
    assert_eq!(
        world.handle(again, now() + 30).await.unwrap()["hookStatus"],
        "SUCCEEDED"
    );
}

/// A blank `requested_by` is "an unnamed chat user", and its release releases.
#[tokio::test]
async fn a_promote_with_a_blank_name_still_releases() {
    let world = approval_world().await;
    world.deploy().await;
    let call = calls_at(&world, "POST_TEST_TRAFFIC_SHIFT").await.remove(0);
    let held = world.handle(call.clone(), now()).await.unwrap();
    let promoted = world
        .handle(chat("promote", "prod/web", "   "), now() + 10)
        .await
        .unwrap();
    assert!(
        promoted["applied"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("an unnamed chat user releases web:2"),
        "{promoted:#}"
    );
    let mut again = call;
    again["hookDetails"] = held["hookDetails"].clone();
    assert_eq!(
        world.handle(again, now() + 30).await.unwrap()["hookStatus"],
        "SUCCEEDED"
    );
}

/// The promote line of deployment A's alert, run after deployment B replaced A, changes nothing:
/// the alert pins the deployment it is about.
#[tokio::test]
async fn a_promote_from_an_old_alert_does_not_release_the_deployment_that_replaced_it() {
    let world = approval_world().await;
    world.deploy().await;
    let a = calls_at(&world, "POST_TEST_TRAFFIC_SHIFT").await.remove(0);
    world.handle(a.clone(), now()).await.unwrap();
    let a_alert = world.alerts().pop().unwrap();
    let payload: Value = {
        let line = a_alert
            .next_steps
            .iter()
            .find(|s| s.starts_with("Go on: "))
            .unwrap();
        serde_json::from_str(line.split("--payload ").nth(1).unwrap()).unwrap()
    };
    assert_eq!(
        payload["args"]["deployment"],
        a["resourceArn"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
    );
    // B replaces A and is held at the same stage.
    world.deploy().await;
    let b = calls_at(&world, "POST_TEST_TRAFFIC_SHIFT").await.remove(0);
    let held = world.handle(b.clone(), now() + 60).await.unwrap();
    let mut from_a = payload;
    from_a["requested_by"] = json!("alice");
    let refused = world
        .handle(from_a, now() + 70)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("is not the one in flight"), "{refused}");
    let mut again = b;
    again["hookDetails"] = held["hookDetails"].clone();
    assert_eq!(
        world.handle(again, now() + 90).await.unwrap()["hookStatus"],
        "IN_PROGRESS"
    );
}

/// Two pauses at one stage, their events delivered again after each other: two alerts, not four.
#[tokio::test]
async fn redelivered_events_of_two_pauses_at_one_stage_alert_each_once() {
    let world = world_with(
        json!([lambda_hook(&["POST_SCALE_UP"]), pause_hook(), pause_hook()]),
        json!({}),
    )
    .await;
    let paused = to_the_pause(&world).await;
    let events = paused["hookEvents"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{paused:#}");
    for event in [&events[0], &events[1], &events[0], &events[1]] {
        world.handle(event.clone(), now()).await.unwrap();
    }
    assert_eq!(world.alerts().len(), 2, "{:#?}", world.alerts());
}

/// Promote and abort at once: ECS takes one answer to the pause; the other command, if ECS
/// refused it, is told ECS moved on and what the deployment waits for now.
#[tokio::test]
async fn the_loser_of_promote_against_abort_hears_what_ecs_shows_now() {
    let world = paused_world().await;
    to_the_pause(&world).await;
    let (promoted, aborted) = tokio::join!(
        world.handle(chat("promote", "prod/web", "alice"), now()),
        world.handle(chat("abort", "prod/web", "bob"), now())
    );
    assert!(promoted.is_ok() || aborted.is_ok());
    // The loser is refused with what it found (the winner's rollback took green's targets, or
    // ECS refused a second answer to the pause), never with ECS's error alone.
    for lost in [&promoted, &aborted]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
    {
        let text = lost.to_string();
        assert!(
            !text.contains("InvalidParameterException")
                || text.contains(
                    "ECS may have moved on or someone answered first; the deployment now waits for"
                ),
            "{text}"
        );
    }
    let (status, hooks) = hook_status(&world).await;
    assert!(
        matches!(
            (status.as_str(), hooks[0].as_str()),
            ("IN_PROGRESS", "SUCCEEDED")
                | ("ROLLBACK_IN_PROGRESS", "FAILED")
                | ("ROLLBACK_REQUESTED", "SUCCEEDED")
        ),
        "{status} {hooks:?}"
    );
}

/// A status naming the approval stage where the swapper's hook is not called does not claim the
/// hook holds the deployment, and promote has nothing to release.
#[tokio::test]
async fn an_approval_stage_without_the_swappers_hook_is_not_shown_as_held() {
    let world = world_with(
        json!([lambda_hook(&["POST_SCALE_UP"])]),
        json!({"ops:hook-approval": "POST_TEST_TRAFFIC_SHIFT"}),
    )
    .await;
    world.deploy().await;
    assert!(world.pass_to("POST_TEST_TRAFFIC_SHIFT").await.is_empty());
    let status = world
        .handle(chat("status", "prod/web", "alice"), now())
        .await
        .unwrap();
    let waiting = status["services"][0]["waiting_for"].as_str().unwrap();
    assert!(!waiting.starts_with("a person"), "{waiting}");
    assert!(world
        .handle(chat("promote", "prod/web", "alice"), now())
        .await
        .is_err());
}

/// An abort needs no gate: it rolls back while CloudWatch and ELB throttle every read, and status
/// shows the gates as unreadable instead of failing.
#[tokio::test]
async fn abort_and_status_work_while_the_gates_cannot_be_read() {
    let world = paused_world().await;
    to_the_pause(&world).await;
    for (service, operation) in [
        ("monitoring", "DescribeAlarms"),
        ("elasticloadbalancing", "DescribeTargetHealth"),
    ] {
        world.emulator.add_fault(
            json!({"service": service, "operation": operation, "kind": "throttle", "rate": 1.0}),
        );
    }
    let status = world
        .handle(chat("status", "prod/web", "bob"), now())
        .await
        .unwrap();
    assert!(
        status["services"][0]["gates_now"]["unreadable"].is_string(),
        "{status:#}"
    );
    let refused = world
        .handle(chat("promote", "prod/web", "alice"), now())
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("its gates could not be read"), "{refused}");
    world
        .handle(chat("abort", "prod/web", "bob"), now())
        .await
        .unwrap();
    assert_eq!(hook_status(&world).await.0, "ROLLBACK_IN_PROGRESS");
}

/// A pause event naming a service of another account is not ECS's here: ignored, nothing read.
#[tokio::test]
async fn a_pause_event_of_another_account_is_ignored() {
    let world = paused_world().await;
    let paused = to_the_pause(&world).await;
    let mut foreign = paused["hookEvents"][0].clone();
    foreign["detail"]["serviceArn"] = json!("arn:aws:ecs:eu-west-1:999999999999:service/prod/web");
    let answer = world.handle(foreign, now()).await.unwrap();
    assert_eq!(answer["status"], "ignored", "{answer:#}");
    assert!(world.alerts().is_empty());
}

// --- Found by a second independent test: a hold is only where ECS is ---------------------------

/// A world held at POST_TEST_TRAFFIC_SHIFT by the hook's own gate; the call, answered once.
async fn held_at_post_test(world: &World<MemoryAlerts>) -> (Value, Value) {
    world.deploy().await;
    let call = calls_at(world, "POST_TEST_TRAFFIC_SHIFT").await.remove(0);
    let held = world.handle(call.clone(), now()).await.unwrap();
    assert_eq!(held["hookStatus"], "IN_PROGRESS", "{held:#}");
    let mut again = call;
    again["hookDetails"] = held["hookDetails"].clone();
    (again, held)
}

/// ECS went on past a hold by itself (a Lambda hook's `timeoutConfiguration` action CONTINUE):
/// the hold left on the service is neither shown nor released.
#[tokio::test]
async fn a_hold_ecs_moved_past_is_neither_shown_nor_released() {
    let world = approval_world().await;
    held_at_post_test(&world).await;
    for call in world.advance("PRODUCTION_TRAFFIC_SHIFT") {
        world.handle(call, now() + 60).await.unwrap();
    }
    let status = world
        .handle(chat("status", "prod/web", "alice"), now() + 70)
        .await
        .unwrap();
    assert!(
        status["services"][0]["held_for_a_person_at"].is_null(),
        "{status:#}"
    );
    let refused = world
        .handle(chat("promote", "prod/web", "alice"), now() + 80)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("nothing holds the deployment"),
        "{refused}"
    );
}

/// A late repeat of a passed stage's call, and a call made up for a stage ECS has not reached,
/// record no hold and alert nothing; the real hold stays what status shows and promote releases.
#[tokio::test]
async fn calls_for_steps_ecs_is_not_at_hold_nothing_and_alert_nothing() {
    let world = world_with(
        json!([lambda_hook(&[
            "POST_SCALE_UP",
            "POST_TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT"
        ])]),
        json!({"ops:hook-approval": "POST_TEST_TRAFFIC_SHIFT,PRODUCTION_TRAFFIC_SHIFT"}),
    )
    .await;
    world.deploy().await;
    let scale_up = calls_at(&world, "POST_SCALE_UP").await.remove(0);
    // Made up: a POST_TEST_TRAFFIC_SHIFT call while ECS is at POST_SCALE_UP.
    let mut made_up = scale_up.clone();
    made_up["lifecycleStage"] = json!("POST_TEST_TRAFFIC_SHIFT");
    let answer = world.handle(made_up, now()).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer:#}");
    assert!(world.alerts().is_empty(), "{:#?}", world.alerts());
    let status = world
        .handle(chat("status", "prod/web", "alice"), now())
        .await
        .unwrap();
    assert!(
        status["services"][0]["held_for_a_person_at"].is_null(),
        "{status:#}"
    );

    // The real hold at POST_TEST, released; then the canary step held.
    let post_test = calls_at(&world, "POST_TEST_TRAFFIC_SHIFT").await.remove(0);
    world.handle(post_test.clone(), now() + 10).await.unwrap();
    world
        .handle(chat("promote", "prod/web", "alice"), now() + 20)
        .await
        .unwrap();
    world.handle(post_test.clone(), now() + 40).await.unwrap();
    let canary = calls_at(&world, "PRODUCTION_TRAFFIC_SHIFT").await.remove(0);
    world.handle(canary, now() + 50).await.unwrap();
    let alerts_before = world.alerts().len();
    // A late repeat of the POST_TEST call (its release still stands): the hold stays at the
    // canary step, and nothing more is alerted.
    world.handle(post_test, now() + 60).await.unwrap();
    assert_eq!(world.alerts().len(), alerts_before, "{:#?}", world.alerts());
    let status = world
        .handle(chat("status", "prod/web", "alice"), now() + 70)
        .await
        .unwrap();
    assert_eq!(
        status["services"][0]["held_for_a_person_at"], "PRODUCTION_TRAFFIC_SHIFT@10",
        "{status:#}"
    );
}

/// While the hold cannot be recorded (ECS throttles TagResource), the hook waits without alerting
/// a hold no one could release; once recorded, it is alerted once.
#[tokio::test]
async fn a_hold_is_alerted_once_it_is_recorded() {
    let world = approval_world().await;
    world.deploy().await;
    let call = calls_at(&world, "POST_TEST_TRAFFIC_SHIFT").await.remove(0);
    world.emulator.add_fault(
        // Every attempt of the first call's write (the SDK retries a throttle), and then some.
        json!({"service": "ecs", "operation": "TagResource", "kind": "throttle", "on_calls": [1, 2, 3, 4, 5, 6]}),
    );
    let first = world.handle(call.clone(), now()).await.unwrap();
    assert_eq!(first["hookStatus"], "IN_PROGRESS", "{first:#}");
    assert!(world.alerts().is_empty(), "{:#?}", world.alerts());
    for after in [30, 60] {
        let mut again = call.clone();
        again["hookDetails"] = first["hookDetails"].clone();
        world.handle(again, now() + after).await.unwrap();
    }
    let sent = world.alerts();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].event_type, "hook.awaiting");
    world
        .handle(chat("promote", "prod/web", "alice"), now() + 90)
        .await
        .unwrap();
}

/// ECS's next call of a held stage while the deployment is being aborted passes quietly: a gate
/// never holds a rollback, and the abort was alerted already.
#[tokio::test]
async fn the_held_stages_next_call_during_an_abort_passes_quietly() {
    let world = approval_world().await;
    let (again, _) = held_at_post_test(&world).await;
    world.alarm(StateValue::Alarm).await;
    world
        .handle(chat("abort", "prod/web", "bob"), now() + 10)
        .await
        .unwrap();
    let answer = world.handle(again, now() + 30).await.unwrap();
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    let kinds: Vec<String> = world
        .alerts()
        .iter()
        .map(|a| a.event_type.clone())
        .collect();
    assert_eq!(kinds, ["hook.awaiting", "hook.aborted"]);
}

/// Found by an independent test: `promote` and `status` from chat ran the service's test URL check
/// themselves, from the swapper, which runs outside the hook function's subnets: with the test
/// listener on an internal load balancer, no one could release the deployment. A person's view
/// now leaves the test URL to the hook function, which checked it before it held the deployment.
#[tokio::test]
async fn a_hold_at_the_test_stage_is_released_from_chat_without_chat_calling_the_test_url() {
    let server = TestServer::http(Reply::healthy()).await;
    let url = server.url("/health");
    let world = world_with(
        json!([lambda_hook(&[
            "POST_SCALE_UP",
            "POST_TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT"
        ])]),
        json!({"ops:hook-approval": "POST_TEST_TRAFFIC_SHIFT", "ops:hook-test-url": url}),
    )
    .await;
    world.deploy().await;
    world.green_targets("healthy");
    for call in world.advance("POST_SCALE_UP") {
        world.handle(call, now()).await.unwrap();
    }
    let call = world.advance("POST_TEST_TRAFFIC_SHIFT").remove(0);
    let held = world.handle(call.clone(), now()).await.unwrap();
    assert_eq!(held["hookStatus"], "IN_PROGRESS", "{held:#}");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("test URL {url} answered HTTP 200")),
        "the hook checked the URL before it held: {held:#}"
    );

    // From the swapper's chat the test listener answers nothing useful (here: errors).
    server.set(Reply::error(503, "not from this network"));
    let status = world
        .handle(chat("status", "prod/web", "alice"), now() + 10)
        .await
        .unwrap();
    let shown = &status["services"][0];
    assert_eq!(shown["gates_now"]["answer"], "IN_PROGRESS", "{shown:#}");
    assert!(
        shown["gates_now"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for a person"),
        "{shown:#}"
    );
    assert_eq!(
        shown["test_url"],
        format!("{url}: checked by the hook function at POST_TEST_TRAFFIC_SHIFT, from where it runs; not part of gates_now")
    );
    let promoted = world
        .handle(chat("promote", "prod/web", "alice"), now() + 20)
        .await
        .unwrap();
    assert_eq!(promoted["applied"][0]["action"]["action"], "release");

    // The hook's own next call checks the URL again before it lets the release through.
    let mut again = call.clone();
    again["hookDetails"] = held["hookDetails"].clone();
    let checked = world.handle(again.clone(), now() + 30).await.unwrap();
    assert_eq!(checked["hookStatus"], "IN_PROGRESS", "{checked:#}");
    server.set(Reply::healthy());
    again["hookDetails"] = checked["hookDetails"].clone();
    let released = world.handle(again, now() + 60).await.unwrap();
    assert_eq!(released["hookStatus"], "SUCCEEDED", "{released:#}");
}

/// Found by an independent test: a POST_TEST_TRAFFIC_SHIFT call replayed after ECS had moved on
/// to the production shift, with the test URL failing by then, paged "deployment stopped ... ECS
/// rolls back" while ECS went on. A call for a step ECS is past checks nothing and pages no one.
#[tokio::test]
async fn a_call_replayed_after_ecs_moved_past_its_stage_checks_nothing_and_pages_no_one() {
    let server = TestServer::http(Reply::healthy()).await;
    let world = world_with(
        json!([lambda_hook(&[
            "POST_TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT"
        ])]),
        json!({"ops:hook-test-url": server.url("/health")}),
    )
    .await;
    world.deploy().await;
    world.green_targets("healthy");
    let call = calls_at(&world, "POST_TEST_TRAFFIC_SHIFT").await.remove(0);
    let passed = world.handle(call.clone(), now()).await.unwrap();
    assert_eq!(passed["hookStatus"], "SUCCEEDED", "{passed:#}");
    let shift = calls_at(&world, "PRODUCTION_TRAFFIC_SHIFT").await;
    assert!(!shift.is_empty());

    server.set(Reply::error(500, "broken since"));
    let replayed = world.handle(call, now() + 900).await.unwrap();
    assert_eq!(replayed["hookStatus"], "IN_PROGRESS", "{replayed:#}");
    assert!(
        replayed["reason"]
            .as_str()
            .unwrap()
            .contains("past POST_TEST_TRAFFIC_SHIFT (at PRODUCTION_TRAFFIC_SHIFT"),
        "{replayed:#}"
    );
    assert!(world.alerts().is_empty(), "{:#?}", world.alerts());
}
