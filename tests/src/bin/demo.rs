//! `make demo`: a guided tour against the local AWS emulator.
//!
//! Starts a fresh emulator, seeds the demo account, prints what is in it, shows an alert travelling
//! from ops-core through SNS to the ops queue as chat and email would see it, and stops the
//! emulator. Each function adds its own chapter here, run through its real binary.

use std::time::Duration;

use ops_core::alert::{Alert, AlertSink, Severity};
use ops_core::aws::sns::SnsAlerts;
use ops_e2e::{AlertInbox, Emulator};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("== Ops Lambdas demo: everything runs against a local AWS emulator; no AWS account is used.\n");
    let emulator = Emulator::start();
    println!(
        "Emulator ready at {} (log: {})\n",
        emulator.endpoint,
        emulator.log_path.display()
    );

    let inventory = emulator.seed_demo();
    print_inventory(&inventory);

    let config = emulator.sdk_config().await;
    let topic = text(&inventory["alert_topic_arn"]);
    let inbox = AlertInbox::new(&config, text(&inventory["alert_queue_url"]));
    chapter_alert_path(&emulator, &config, &topic, &inbox).await;

    drop(emulator);
    println!("\n== Done. The emulator is stopped; nothing was left running.");
}

fn print_inventory(inventory: &Value) {
    println!("-- The demo account");
    println!("ECS cluster `{}`:", text(&inventory["cluster"]));
    println!("  {:<12} {:>7}  task definition", "service", "desired");
    for service in list(&inventory["services"]) {
        let definition = text(&service["task_definition"]);
        let short = definition
            .rsplit('/')
            .next()
            .unwrap_or(&definition)
            .to_string();
        println!(
            "  {:<12} {:>7}  {short}",
            text(&service["name"]),
            text(&service["desired"])
        );
    }
    let groups: Vec<(String, String)> = list(&inventory["target_groups"])
        .iter()
        .map(|g| (text(&g["arn"]), text(&g["name"])))
        .collect();
    println!("ALB `shop-alb` listeners:");
    for listener in list(&inventory["listeners"]) {
        let target = text(&listener["forwards_to"]);
        let name = groups
            .iter()
            .find(|(arn, _)| *arn == target)
            .map_or(target.clone(), |(_, n)| n.clone());
        println!(
            "  port {:<5} forwards to target group `{name}`",
            text(&listener["port"])
        );
    }
    println!("Auto Scaling groups (min / desired / max):");
    for group in list(&inventory["auto_scaling_groups"]) {
        println!(
            "  {:<8} {} / {} / {}",
            text(&group["name"]),
            group["min"],
            group["desired"],
            group["max"]
        );
    }
    println!("CloudWatch alarms:");
    for alarm in list(&inventory["alarms"]) {
        let operator = if text(&alarm["operator"]).starts_with("Greater") {
            ">"
        } else {
            "<"
        };
        println!(
            "  {:<17} {} {operator} {}  state {}",
            text(&alarm["name"]),
            text(&alarm["metric"]),
            alarm["threshold"],
            text(&alarm["state"])
        );
    }
    println!("Elastic IP pool:");
    for address in list(&inventory["eip_pool"]) {
        println!(
            "  {:<15} {}  pool `{}`",
            text(&address["public_ip"]),
            text(&address["allocation_id"]),
            text(&address["pool"])
        );
    }
    println!(
        "Alerts go to SNS topic {}",
        text(&inventory["alert_topic_arn"])
    );
    println!(
        "  and are read back from SQS queue {}\n",
        text(&inventory["alert_queue_url"])
    );
}

async fn chapter_alert_path(
    emulator: &Emulator,
    config: &aws_config::SdkConfig,
    topic: &str,
    inbox: &AlertInbox,
) {
    println!("-- Chapter: the alert path (ops-core -> SNS -> what ops receive)");
    let alert = Alert::new(
        Severity::Info,
        "ops-demo",
        "demo.alert-path",
        "demo account",
        "the alert path works",
    )
    .what("ops-core published this alert to the ops topic; it arrived on the subscribed queue.")
    .why("make demo checks that alerts reach ops before any function runs.")
    .requested_by("make demo")
    .next_step("Subscribe AWS Chatbot and an email address to the topic in a real account.");
    SnsAlerts::new(config, topic)
        .publish(&alert)
        .await
        .expect("publish the demo alert");
    let received = inbox.receive(1, Duration::from_secs(10)).await;
    let Some(first) = received.first() else {
        panic!("the demo alert did not arrive on the queue within 10 s");
    };
    println!("Chat (AWS Chatbot) shows:");
    println!("  {}", text(&first.chat["content"]["title"]));
    for line in text(&first.chat["content"]["description"]).lines() {
        println!("  {line}");
    }
    println!("Message attributes for filtering: {:?}", first.attributes);
    // An email body never reaches a queue; the emulator's outbox shows what SNS was given for email.
    let outbox = emulator
        .control("GET", "/_ops/sns/published", None)
        .expect("read the SNS outbox");
    let email = outbox["published"]
        .as_array()
        .and_then(|p| p.last())
        .map(|p| text(&p["bodies"]["email"]));
    println!(
        "Email subscribers get, with subject {:?}:",
        first.subject.as_deref().unwrap_or_default()
    );
    for line in email.unwrap_or_default().lines() {
        println!("  | {line}");
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| value.to_string())
}

fn list(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}
