//! Chapter: bastion-eip-associator, through its real binary. The bastion group's instance gets a
//! pool address from the reconcile, a new bastion gets one before it is InService, a replacement
//! takes over the address of a stopped bastion, and a launch with no address left is abandoned.

use std::time::Duration;

use aws_config::SdkConfig;
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::Ec2;
use ops_e2e::events::scheduled;
use ops_e2e::lambda::built_binary;
use ops_e2e::{AlertInbox, Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::show::{deployed, text};

/// Run the chapter against the seeded account (group `bastion` tagged `ops:eip-pool=bastion` with a
/// launch hook, two Elastic IPs in pool `bastion`).
pub async fn chapter(emulator: &Emulator, config: &SdkConfig, topic: &str, inbox: &AlertInbox) {
    println!("\n-- Chapter: bastion-eip-associator (the real binary, Auto Scaling launch hook)");
    let mut env = emulator.function_env();
    env.extend([
        ("ALERT_TOPIC_ARN".to_string(), topic.to_string()),
        ("BASTION_GROUPS".to_string(), "bastion".to_string()),
        ("ASSOCIATE_RETRY_DELAY_MS".to_string(), "200".to_string()),
    ]);
    let function = LocalLambda::start(
        &built_binary("bastion-eip-associator"),
        &deployed("bastion-eip-associator"),
        &env,
    );
    let ec2 = Ec2::new(config);
    let groups = AutoScalingGroups::new(config);
    let pool = || async {
        ec2.addresses_tagged("ops:eip-pool", Some("bastion"))
            .await
            .map(|addresses| {
                addresses
                    .iter()
                    .map(|a| {
                        format!(
                            "{} -> {}",
                            a.public_ip,
                            a.instance_id.as_deref().unwrap_or("free")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let now = ops_core::time::now_epoch();
    println!("Pool bastion: {}", pool().await);

    println!("\n1. The reconcile (every 5 minutes) finds the running bastion without its address:");
    function.invoke(scheduled(now)).expect("reconcile");
    show_alert(inbox).await;
    println!("   Pool bastion: {}", pool().await);

    println!("\n2. The group scales out; the new bastion waits at the launch hook (Pending:Wait):");
    let (second, event) = launch(emulator);
    let answer = function.invoke(event).expect("launch handled");
    println!("   completed with {} for {second}", text(&answer["result"]));
    show_alert(inbox).await;
    let state = groups
        .describe("bastion")
        .await
        .map(|g| g.instances.get(&second).cloned().unwrap_or_default())
        .unwrap_or_default();
    println!(
        "   {second} is now {state}, with its address. Pool bastion: {}",
        pool().await
    );

    // A stopped bastion keeps its address (a terminated one loses it to EC2, nothing to take over).
    println!("\n3. The first bastion is replaced: it stops, and its replacement launches:");
    let first = ec2
        .addresses_tagged("ops:eip-pool", Some("bastion"))
        .await
        .ok()
        .and_then(|a| {
            a.into_iter()
                .find_map(|a| a.instance_id.filter(|i| *i != second))
        })
        .expect("the first bastion holds an address");
    ec2.client()
        .stop_instances()
        .instance_ids(&first)
        .send()
        .await
        .expect("stop");
    let (third, event) = launch(emulator);
    let answer = function.invoke(event).expect("launch handled");
    println!("   completed with {} for {third}", text(&answer["result"]));
    show_alert(inbox).await;
    println!("   Pool bastion: {}", pool().await);

    println!("\n4. One more launch while both addresses sit on healthy bastions:");
    let (fourth, event) = launch(emulator);
    let answer = function.invoke(event).expect("launch handled");
    println!(
        "   completed with {} for {fourth}: the group will replace it",
        text(&answer["result"])
    );
    show_alert(inbox).await;
}

fn launch(emulator: &Emulator) -> (String, Value) {
    let launched = emulator
        .control(
            "POST",
            "/_ops/autoscaling/launch",
            Some(json!({"group": "bastion"})),
        )
        .expect("launch");
    (text(&launched["instance_id"]), launched["event"].clone())
}

async fn show_alert(inbox: &AlertInbox) {
    for alert in inbox.receive(1, Duration::from_secs(10)).await {
        println!("  | {}", text(&alert.chat["content"]["title"]));
        for line in text(&alert.chat["content"]["description"]).lines().take(2) {
            println!("  |   {line}");
        }
    }
}
