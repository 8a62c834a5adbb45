//! Chapter: an alert from ops-core through SNS to what chat and email show.

use std::time::Duration;

use ops_core::alert::{Alert, AlertSink, Severity};
use ops_core::aws::sns::SnsAlerts;
use ops_e2e::{AlertInbox, Emulator};

use crate::show::text;

/// Publish one alert and show how it arrives.
pub async fn chapter_alert_path(
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
    .next_step("Subscribe Amazon Q Developer in chat applications and an email address to the topic in a real account.");
    SnsAlerts::new(config, topic)
        .publish(&alert)
        .await
        .expect("publish the demo alert");
    let received = inbox.receive(1, Duration::from_secs(10)).await;
    let Some(first) = received.first() else {
        panic!("the demo alert did not arrive on the queue within 10 s");
    };
    println!("Chat (Amazon Q Developer in chat applications) shows:");
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
