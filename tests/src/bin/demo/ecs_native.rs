//! Chapter: a service that ECS deploys itself as a canary, through the real binaries.
//! deploy-trigger starts ECS's deployment on a push and reports it from ECS's service deployment;
//! blue-green-swapper gates its stages as ECS's lifecycle hook. One deployment passes every gate;
//! the next is failed by an alarm at the canary shift and rolled back by ECS; the last waits at an
//! ECS pause hook until a person releases it from chat.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::StateValue;
use ops_e2e::events::scheduled;
use ops_e2e::fixtures::{checkout_canary, CHECKOUT as SERVICE, CHECKOUT_ALARM as ALARM};
use ops_e2e::lambda::built_binary;
use ops_e2e::{AlertInbox, Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::show::{deployed, list, print_alert, print_chat_line, text};

/// The two functions this chapter runs, and where to reach the emulator's controls.
struct Stage<'a> {
    emulator: &'a Emulator,
    trigger: LocalLambda,
    swapper: LocalLambda,
    green: String,
}

/// Run the chapter; `live_route` is the seeded app's route (the swapper needs one to start).
pub async fn chapter(
    emulator: &Emulator,
    config: &SdkConfig,
    topic: &str,
    inbox: &AlertInbox,
    live_route: &str,
) {
    println!("\n-- Chapter: ECS's own canary deployment, deployed by deploy-trigger and gated by blue-green-swapper as its lifecycle hook");
    let mut env = emulator.function_env();
    env.push(("ALERT_TOPIC_ARN".into(), topic.to_string()));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    let trigger = LocalLambda::start(
        &built_binary("deploy-trigger"),
        &deployed("deploy-trigger"),
        &env,
    );
    env.push(("SWAP_ROUTES".into(), live_route.to_string()));
    env.push(("SWAPPER_SERVES".into(), "lifecycle-hooks".into()));
    env.push((
        "SWAPPER_FUNCTION_NAME".into(),
        deployed("blue-green-swapper"),
    ));
    let swapper = LocalLambda::start(
        &built_binary("blue-green-swapper"),
        &deployed("blue-green-swapper-hook"),
        &env,
    );
    let green = text(&checkout_canary(emulator).await["targetGroups"][1]);
    let stage = Stage {
        emulator,
        trigger,
        swapper,
        green,
    };
    println!("prod/{SERVICE} runs on Fargate behind an ALB rule. ECS deploys it as a CANARY: 10% of production traffic for 5 minutes, then the rest.");
    println!("Its lifecycle hooks call {} (blue-green-swapper's hook function) at POST_SCALE_UP, PRODUCTION_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT; its tag ops:hook-alarms={ALARM} is the gate.", deployed("blue-green-swapper-hook"));

    println!("\n1. ECS completes the service's first deployment; both functions hear of it.");
    let first = stage.walk_to_the_end();
    stage
        .trigger
        .invoke(first["event"].clone())
        .expect("event handled");
    for alert in inbox.receive(2, Duration::from_secs(10)).await {
        println!("  alert: {}", text(&alert.chat["content"]["title"]));
    }

    println!("\n2. CI pushes {SERVICE}:release-2; deploy-trigger starts ECS's deployment:");
    stage.push("release-2");
    println!("   ECS scales up the new revision; its targets are still starting when ECS calls the hook:");
    let scale_up = stage.advance("POST_SCALE_UP");
    stage.health("initial");
    stage.hooks(&scale_up);
    println!("   ECS calls again after the delay; the targets are healthy now:");
    stage.health("healthy");
    stage.hooks(&scale_up);

    println!("\n3. ECS shifts 10% of production traffic to the new revision. In chat, `status`:");
    let shift = stage.advance("PRODUCTION_TRAFFIC_SHIFT");
    stage.status();
    stage.hooks(&shift);

    println!(
        "\n4. ECS shifts the rest, bakes and completes; the hook passes, deploy-trigger verifies:"
    );
    let done = stage.walk_to_the_end();
    stage
        .trigger
        .invoke(done["event"].clone())
        .expect("event handled");
    for alert in inbox.receive(2, Duration::from_secs(10)).await {
        print_alert(&alert);
    }

    println!("\n5. CI pushes {SERVICE}:release-3. At the canary shift {ALARM} goes to ALARM:");
    stage.push("release-3");
    stage.hooks(&stage.advance("POST_SCALE_UP"));
    let shift = stage.advance("PRODUCTION_TRAFFIC_SHIFT");
    set_alarm(
        config,
        StateValue::Alarm,
        "Threshold Crossed: 1 datapoint [37.0] was greater than the threshold (10.0)",
    )
    .await;
    stage.hooks(&shift);
    println!("   ECS rolls back and, while it does, calls the production-shift hook again with the new revision at 0%:");
    let back = stage.finish(json!({
        "state": "FAILED",
        "reason": "Service deployment rolled back because a lifecycle hook failed.",
        "rollback_outcome": "IN_PROGRESS",
    }));
    stage.hooks(&back);
    stage
        .trigger
        .invoke(back["event"].clone())
        .expect("event handled");
    stage.finish(json!({"state": "FAILED", "rollback_outcome": "SUCCESSFUL"}));
    println!("   The rollback ends; deploy-trigger's scheduled reconcile reads how from ECS:");
    stage
        .trigger
        .invoke(scheduled(now()))
        .expect("reconcile handled");
    for alert in inbox.receive(2, Duration::from_secs(10)).await {
        print_alert(&alert);
    }

    paused_and_promoted(&stage, config, topic, inbox, live_route).await;
}

/// A pause hook at POST_TEST_TRAFFIC_SHIFT: ECS waits; the hook function alerts the pause with the
/// commands that answer it; a person looks (`status`) and releases it (`promote`) from chat.
async fn paused_and_promoted(
    stage: &Stage<'_>,
    config: &SdkConfig,
    topic: &str,
    inbox: &AlertInbox,
    live_route: &str,
) {
    println!("
6. The team adds an ECS pause hook at POST_TEST_TRAFFIC_SHIFT (a person looks before production traffic moves), {ALARM} is OK again, and CI pushes {SERVICE}:release-4:");
    set_alarm(config, StateValue::Ok, "Threshold no longer crossed").await;
    let ecs = aws_sdk_ecs::Client::new(config);
    let service = ecs
        .describe_services()
        .cluster("prod")
        .services(SERVICE)
        .send()
        .await
        .expect("describe the service");
    let mut deployment_configuration = service.services()[0]
        .deployment_configuration()
        .expect("a deployment configuration")
        .clone();
    deployment_configuration
        .lifecycle_hooks
        .get_or_insert_with(Vec::new)
        .push(
            aws_sdk_ecs::types::DeploymentLifecycleHook::builder()
                .target_type(aws_sdk_ecs::types::DeploymentLifecycleHookTargetType::Pause)
                .lifecycle_stages(
                    aws_sdk_ecs::types::DeploymentLifecycleHookStage::PostTestTrafficShift,
                )
                .build(),
        );
    ecs.update_service()
        .cluster("prod")
        .service(SERVICE)
        .deployment_configuration(deployment_configuration)
        .send()
        .await
        .expect("add the pause hook");
    stage.push("release-4");
    stage.hooks(&stage.advance("POST_SCALE_UP"));
    let paused = stage.advance("POST_TEST_TRAFFIC_SHIFT");
    println!("   ECS pauses at POST_TEST_TRAFFIC_SHIFT and sends ECS Hook State Change (HOOK_AWAITING_ACTION) to the hook function:");
    for event in list(&paused["hookEvents"]) {
        stage.swapper.invoke(event).expect("pause event handled");
    }
    for alert in inbox.receive(1, Duration::from_secs(10)).await {
        print_alert(&alert);
    }
    let mut env = stage.emulator.function_env();
    env.push(("ALERT_TOPIC_ARN".into(), topic.to_string()));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    env.push(("SWAP_ROUTES".into(), live_route.to_string()));
    let gate = LocalLambda::start(
        &built_binary("blue-green-swapper"),
        &deployed("blue-green-swapper"),
        &env,
    );
    println!(
        "
   In chat, alice looks:"
    );
    let status = json!({"command": "status", "args": {"app": format!("prod/{SERVICE}")}, "requested_by": "alice"});
    print_chat_line("blue-green-swapper", &status);
    let shown = gate.invoke(status).expect("status");
    let service = &shown["services"][0];
    println!(
        "   {} at {}: waiting for {}",
        text(&service["deployment"]["target"]),
        text(&service["deployment"]["stage"]),
        text(&service["waiting_for"])
    );
    println!("   and releases it:");
    let promote = json!({"command": "promote", "args": {"app": format!("prod/{SERVICE}")}, "requested_by": "alice"});
    print_chat_line("blue-green-swapper", &promote);
    let promoted = gate.invoke(promote).expect("promote");
    for change in list(&promoted["applied"]) {
        println!("   done: {}", text(&change["reason"]));
    }
    for alert in inbox.receive(1, Duration::from_secs(10)).await {
        print_alert(&alert);
    }
    println!(
        "
   ECS goes on: the canary shift and the rest; the hook passes, deploy-trigger verifies:"
    );
    let done = stage.walk_to_the_end();
    stage
        .trigger
        .invoke(done["event"].clone())
        .expect("event handled");
    for alert in inbox.receive(2, Duration::from_secs(10)).await {
        println!("  alert: {}", text(&alert.chat["content"]["title"]));
    }
}

/// Put the service's gating alarm in `state`.
async fn set_alarm(config: &SdkConfig, state: StateValue, reason: &str) {
    aws_sdk_cloudwatch::Client::new(config)
        .set_alarm_state()
        .alarm_name(ALARM)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .expect("set the alarm");
}

impl Stage<'_> {
    fn control(&self, path: &str, body: Value) -> Value {
        let mut spec = json!({"cluster": "prod", "service": SERVICE});
        spec.as_object_mut()
            .expect("object")
            .extend(body.as_object().expect("object").clone());
        self.emulator
            .control("POST", path, Some(spec))
            .expect("emulator control")
    }

    fn advance(&self, stage: &str) -> Value {
        self.control("/_ops/ecs/advance-deployment", json!({ "to": stage }))
    }

    /// Walk the deployment stage by stage to its end, handing each hook call to the swapper at its
    /// stage (ECS waits for the answer before it goes on); the last answer carries ECS's event.
    fn walk_to_the_end(&self) -> Value {
        loop {
            let step = self.control("/_ops/ecs/advance-deployment", json!({"stages": 1}));
            self.hooks(&step);
            if step.get("event").is_some() {
                return step;
            }
        }
    }

    fn finish(&self, how: Value) -> Value {
        self.control("/_ops/ecs/finish-deployment", how)
    }

    fn health(&self, state: &str) {
        self.emulator
            .control(
                "POST",
                "/_ops/elbv2/target-health",
                Some(json!({"target_group_arn": self.green, "state": state})),
            )
            .expect("set target health");
    }

    /// Hand each hook call ECS makes to the swapper, and print its answer.
    fn hooks(&self, answer: &Value) {
        for call in list(&answer["hookCalls"]) {
            let payload = &call["payload"];
            let hook = self.swapper.invoke(payload.clone()).expect("hook answered");
            let delay = hook
                .get("callBackDelay")
                .map(|d| format!(", call back in {d} s"))
                .unwrap_or_default();
            println!(
                "   hook {}: {}{delay}: {}",
                text(&payload["lifecycleStage"]),
                text(&hook["hookStatus"]),
                text(&hook["reason"])
            );
        }
    }

    fn push(&self, tag: &str) {
        let pushed = self
            .emulator
            .control(
                "POST",
                "/_ops/ecr/push",
                Some(json!({"repository": SERVICE, "tag": tag})),
            )
            .expect("push");
        let answer = self
            .trigger
            .invoke(pushed["event"].clone())
            .expect("push handled");
        for started in list(&answer["started"]) {
            println!(
                "   started {}: {} -> {} (deployment {})",
                text(&started["service"]),
                text(&started["from"]),
                text(&started["to"]),
                text(&started["deployment_id"])
            );
        }
    }

    fn status(&self) {
        let status = json!({"command": "status", "args": {"service": format!("prod/{SERVICE}")}, "requested_by": "alice"});
        print_chat_line("deploy-trigger", &status);
        let answer = self.trigger.invoke(status).expect("status");
        println!(
            "   strategy: {} ({})",
            text(&answer["strategy"]["name"]),
            text(&answer["strategy"]["plan"])
        );
        println!("   {}", text(&answer["verification"]["says"]));
    }
}

/// Now, in epoch seconds: the reconcile's schedule time.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
