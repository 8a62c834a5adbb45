//! Chapter: deploy-trigger, through its real binary. A push becomes a verified deployment, a chat
//! rollback goes back to the last verified one, and a failed rollout is reported as a failure.

use std::time::Duration;

use ops_e2e::fixtures::running_tasks;
use ops_e2e::lambda::built_binary;
use ops_e2e::{AlertInbox, Emulator, LocalLambda, ReceivedAlert};
use serde_json::{json, Value};

use crate::show::{deployed, list, print_alert, print_chat_line, text};

/// Run the chapter against the seeded account (services prod/web and prod/worker opted in for
/// repository `web`, tag pattern `release-+`).
pub async fn chapter(emulator: &Emulator, topic: &str, inbox: &AlertInbox) {
    println!("\n-- Chapter: deploy-trigger (the real binary, under a local Lambda runtime)");
    let mut env = emulator.function_env();
    env.push(("ALERT_TOPIC_ARN".into(), topic.to_string()));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    let function = LocalLambda::start(
        &built_binary("deploy-trigger"),
        &deployed("deploy-trigger"),
        &env,
    );
    println!("prod/web (Fargate) and prod/worker (EC2) carry ops:deploy-repository=web, ops:deploy-tag-pattern=release-+.");

    println!("\n1. ECS finishes the services' first rollouts; deploy-trigger records them as known-good.");
    for service in ["web", "worker"] {
        finish(emulator, &function, service, "COMPLETED", false);
    }
    for alert in inbox.receive(2, Duration::from_secs(10)).await {
        println!("  alert: {}", text(&alert.chat["content"]["title"]));
    }

    println!("\n2. CI pushes web:release-42 to ECR. EventBridge hands the push to deploy-trigger:");
    let pushed = emulator
        .control(
            "POST",
            "/_ops/ecr/push",
            Some(json!({"repository": "web", "tag": "release-42"})),
        )
        .expect("push");
    let answer = function
        .invoke(pushed["event"].clone())
        .expect("push handled");
    print_started(&answer);
    println!("   No alert yet: success is only claimed once ECS says COMPLETED.");

    println!("\n3. ECS completes both rollouts and sends its state-change events:");
    for service in ["web", "worker"] {
        finish(emulator, &function, service, "COMPLETED", false);
    }
    show_alert_for(inbox, 2, "prod/web").await;
    print_tasks(emulator, "web").await;
    print_tasks(emulator, "worker").await;

    println!("\n4. In chat, alice rolls prod/web back:");
    let rollback =
        json!({"command": "rollback", "args": {"service": "prod/web"}, "requested_by": "alice"});
    print_chat_line("deploy-trigger", &rollback);
    let answer = function.invoke(rollback).expect("rollback handled");
    println!(
        "   answer: {} to {} (deployment {})",
        text(&answer["status"]),
        text(&answer["rollback_to"]),
        text(&answer["started"][0]["deployment_id"])
    );
    finish(emulator, &function, "web", "COMPLETED", false);
    show_alert_for(inbox, 1, "prod/web").await;

    println!("\n5. CI pushes web:release-43, whose tasks crash; ECS's circuit breaker rolls prod/web back:");
    let pushed = emulator
        .control(
            "POST",
            "/_ops/ecr/push",
            Some(json!({"repository": "web", "tag": "release-43"})),
        )
        .expect("push");
    print_started(
        &function
            .invoke(pushed["event"].clone())
            .expect("push handled"),
    );
    finish(emulator, &function, "worker", "COMPLETED", false);
    finish(emulator, &function, "web", "FAILED", true);
    show_alert_for(inbox, 2, "prod/web").await;

    println!("\n6. Bad input changes nothing and says why:");
    let error = function
        .invoke(json!({"command": "deploy", "args": {"service": "prod/web", "tag": "release 44"}}))
        .unwrap_err();
    println!("   deploy with tag \"release 44\" -> {error}");
    crate::show::print_counted_changes(&function);
}

/// Move a service's rollout at the emulator and hand ECS's event to the function.
fn finish(emulator: &Emulator, function: &LocalLambda, service: &str, state: &str, rollback: bool) {
    let body = json!({"cluster": "prod", "service": service, "state": state, "rollback": rollback});
    let finished = emulator
        .control("POST", "/_ops/ecs/finish-deployment", Some(body))
        .expect("finish deployment");
    function
        .invoke(finished["event"].clone())
        .expect("state change handled");
}

/// Where prod/`service`'s running tasks are, as ECS describes them.
async fn print_tasks(emulator: &Emulator, service: &str) {
    let ecs = aws_sdk_ecs::Client::new(&emulator.sdk_config().await);
    let tasks = running_tasks(&ecs, "prod", service).await;
    println!("   prod/{service} runs {} task(s):", tasks.len());
    for task in tasks {
        let revision = task.task_definition.rsplit('/').next().unwrap_or_default();
        let launch = task.launch_type.unwrap_or_default();
        match task.interface {
            Some((subnet, address)) => println!(
                "     {revision} on {launch}, its own network interface {address} in {subnet}"
            ),
            None => println!("     {revision} on {launch}, on its instance's network"),
        }
    }
}

fn print_started(answer: &Value) {
    for started in list(&answer["started"]) {
        println!(
            "   started {}: {} -> {} (deployment {})",
            text(&started["service"]),
            text(&started["from"]),
            text(&started["to"]),
            text(&started["deployment_id"])
        );
    }
    for note in list(&answer["notes"]) {
        println!("   note: {}", text(&note));
    }
}

/// Wait for `count` alerts and print the one about `resource` in full.
async fn show_alert_for(inbox: &AlertInbox, count: usize, resource: &str) {
    let alerts: Vec<ReceivedAlert> = inbox.receive(count, Duration::from_secs(10)).await;
    match alerts
        .iter()
        .rev()
        .find(|a| a.attributes.get("resource").map(String::as_str) == Some(resource))
    {
        Some(alert) => print_alert(alert),
        None => println!("  (no alert about {resource} arrived within 10 s)"),
    }
}
