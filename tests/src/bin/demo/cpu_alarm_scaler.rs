//! Chapter: cpu-alarm-scaler, through its real binary. CPU alarms drive the group `workers` from 2
//! to 3, sustained load to 4, recovery back down after the cooldowns, the ECS service `worker`
//! the same way, a manual override from chat that reverts by itself, and a group held at its max
//! while its alarm fires: said once when it begins and once when it ends.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::StateValue;
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ecs::EcsServices;
use ops_e2e::events::{alarm_state_change, scheduled};
use ops_e2e::lambda::built_binary;
use ops_e2e::{AlertInbox, Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::show::{deployed, list, print_chat_line, text};

/// Run the chapter against the seeded account (alarms tagged `ops:scale-target`, cooldown 300 s).
pub async fn chapter(emulator: &Emulator, config: &SdkConfig, topic: &str, inbox: &AlertInbox) {
    println!(
        "\n-- Chapter: cpu-alarm-scaler (the real binary; event times step the clock forward)"
    );
    let mut env = emulator.function_env();
    env.extend([
        ("ALERT_TOPIC_ARN".to_string(), topic.to_string()),
        ("AUTOSCALING_GROUPS".to_string(), "workers".to_string()),
        ("ECS_CLUSTERS".to_string(), "prod".to_string()),
        // The demo plays the schedule up to half an hour ahead of the clock; deployed functions
        // keep the default (30 s of clock skew) and refuse an event from further ahead.
        ("SCHEDULE_LEAD_SECONDS".to_string(), "3600".to_string()),
    ]);
    let function = LocalLambda::start(
        &built_binary("cpu-alarm-scaler"),
        &deployed("cpu-alarm-scaler"),
        &env,
    );
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    let groups = AutoScalingGroups::new(config);
    let ecs = EcsServices::new(config);
    let start = ops_core::time::now_epoch();
    let workers = || async {
        groups
            .describe("workers")
            .await
            .map(|g| g.desired)
            .unwrap_or_default()
    };
    println!("workers-cpu-high (> 90%) and workers-cpu-low (< 70%) carry ops:scale-target=asg:workers; group workers runs {}.", workers().await);

    println!("\n1. CPU on workers climbs to 95%; the alarm goes to ALARM (minute 0):");
    alarm(&cloudwatch, "workers-cpu-high", StateValue::Alarm, 95.0).await;
    show(
        &function
            .invoke(alarm_state_change("workers-cpu-high", "ALARM", start))
            .expect("alarm handled"),
    );
    show_alerts(inbox, 1).await;

    println!("\n2. The load stays. The schedule looks again each minute:");
    show(&function.invoke(scheduled(start + 60)).expect("tick"));
    println!("   minute 5, the scale-out cooldown is over:");
    show(&function.invoke(scheduled(start + 300)).expect("tick"));
    show_alerts(inbox, 1).await;

    println!("\n3. The load passes: CPU falls to 40%, workers-cpu-low goes to ALARM (minute 7):");
    alarm(&cloudwatch, "workers-cpu-high", StateValue::Ok, 60.0).await;
    alarm(&cloudwatch, "workers-cpu-low", StateValue::Alarm, 40.0).await;
    show(
        &function
            .invoke(alarm_state_change("workers-cpu-low", "ALARM", start + 420))
            .expect("alarm handled"),
    );
    show_alerts(inbox, 1).await;
    println!("   minute 8, still low, but the scale-in cooldown holds:");
    show(&function.invoke(scheduled(start + 480)).expect("tick"));
    println!("   minute 12, the scale-in cooldown is over:");
    show(&function.invoke(scheduled(start + 720)).expect("tick"));
    show_alerts(inbox, 1).await;
    alarm(&cloudwatch, "workers-cpu-low", StateValue::Ok, 75.0).await;
    println!("   workers runs {} again.", workers().await);

    println!("\n4. The ECS service prod/worker (bounds 1..4 in its tags) scales the same way:");
    alarm(&cloudwatch, "worker-cpu-high", StateValue::Alarm, 97.0).await;
    show(
        &function
            .invoke(alarm_state_change("worker-cpu-high", "ALARM", start + 780))
            .expect("alarm handled"),
    );
    show_alerts(inbox, 1).await;
    alarm(&cloudwatch, "worker-cpu-high", StateValue::Ok, 50.0).await;
    println!(
        "   prod/worker now wants {} tasks.",
        ecs.describe("prod", "worker")
            .await
            .map(|s| s.desired)
            .unwrap_or_default()
    );

    println!("\n5. Before a launch, alice holds workers at 5 for 30 minutes from chat:");
    let scale = json!({"command": "scale", "args": {"target": "asg:workers", "count": 5, "for": "30m"}, "requested_by": "alice"});
    print_chat_line("cpu-alarm-scaler", &scale);
    function.invoke(scale).expect("override set");
    show_alerts(inbox, 1).await;
    println!(
        "   workers runs {}. Half an hour later the override ends by itself:",
        workers().await
    );
    let now = ops_core::time::now_epoch();
    show(&function.invoke(scheduled(now + 1800)).expect("tick"));
    show_alerts(inbox, 1).await;
    println!("   workers runs {}.", workers().await);

    println!("\n6. The team caps workers at 2 instances; then CPU climbs to 99% (a minute later):");
    groups
        .client()
        .update_auto_scaling_group()
        .auto_scaling_group_name("workers")
        .max_size(2)
        .send()
        .await
        .expect("cap workers");
    alarm(&cloudwatch, "workers-cpu-high", StateValue::Alarm, 99.0).await;
    show(
        &function
            .invoke(alarm_state_change("workers-cpu-high", "ALARM", now + 1860))
            .expect("alarm handled"),
    );
    show_alerts(inbox, 1).await;
    println!("   the schedule looks again for five minutes: nothing more is said.");
    for minute in 1..=5 {
        function
            .invoke(scheduled(now + 1860 + 60 * minute))
            .expect("tick");
    }
    println!("   CPU falls; the alarm's OK event is lost, and the next tick notices:");
    alarm(&cloudwatch, "workers-cpu-high", StateValue::Ok, 60.0).await;
    function.invoke(scheduled(now + 2220)).expect("tick");
    show_alerts(inbox, 1).await;
    crate::show::print_counted_changes(&function);
}

async fn alarm(cloudwatch: &aws_sdk_cloudwatch::Client, name: &str, state: StateValue, cpu: f64) {
    cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(format!("CPUUtilization average {cpu}%"))
        .state_reason_data(json!({"version": "1.0", "recentDatapoints": [cpu]}).to_string())
        .send()
        .await
        .expect("set alarm state");
}

/// Print what the function answered: its notes (holds, cooldowns) and its changes.
fn show(answer: &Value) {
    let answers = if answer["alarms"].is_array() {
        list(&answer["alarms"])
    } else {
        vec![answer.clone()]
    };
    for one in answers {
        for note in list(&one["notes"]) {
            println!("   holds: {}", text(&note));
        }
        for change in list(&one["applied"]) {
            if change["action"]["action"] == "set_capacity" {
                println!("   changed: {}", text(&change["reason"]));
            }
        }
    }
}

async fn show_alerts(inbox: &AlertInbox, count: usize) {
    for alert in inbox.receive(count, Duration::from_secs(10)).await {
        println!("  | {}", text(&alert.chat["content"]["title"]));
        for line in text(&alert.chat["content"]["description"]).lines().take(3) {
            println!("  |   {line}");
        }
    }
}
