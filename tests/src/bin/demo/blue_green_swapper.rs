//! Chapter: blue-green-swapper, through its real binary. A canary swap of `shop` completes; a
//! second swap whose new tasks never become healthy is aborted with live traffic untouched; a third
//! is rolled back when an alarm fires mid-canary.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::StateValue;
use ops_core::aws::elbv2::LoadBalancers;
use ops_e2e::blue_green::{finish_rollout, push, set_health, App};
use ops_e2e::events::scheduled;
use ops_e2e::lambda::built_binary;
use ops_e2e::{AlertInbox, Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::show::{deployed, list, print_alert, print_chat_line, text};

/// Run the chapter against the seeded app `shop` (canary 10% for 5 minutes, blue kept warm for 5
/// minutes, gated on alarm shop-5xx).
pub async fn chapter(
    emulator: &Emulator,
    config: &SdkConfig,
    topic: &str,
    inbox: &AlertInbox,
    shop: &Value,
) {
    println!(
        "\n-- Chapter: blue-green-swapper (the real binary; schedule times step the clock forward)"
    );
    let app = App(shop.clone());
    let mut env = emulator.function_env();
    env.extend([
        ("ALERT_TOPIC_ARN".to_string(), topic.to_string()),
        ("ECS_CLUSTERS".to_string(), "prod".to_string()),
        ("SWAP_ROUTES".to_string(), app.live_route()),
        // The demo plays the schedule up to half an hour ahead of the clock; deployed functions
        // keep the default (30 s of clock skew) and refuse an event from further ahead.
        ("SCHEDULE_LEAD_SECONDS".to_string(), "3600".to_string()),
    ]);
    let function = LocalLambda::start(
        &built_binary("blue-green-swapper"),
        &deployed("blue-green-swapper"),
        &env,
    );
    let lb = LoadBalancers::new(config);
    let traffic = || async {
        let route = lb
            .route(&app.live_route())
            .await
            .expect("read the listener");
        format!(
            "blue {}% | green {}%",
            route.percent_to(&app.target_group("blue")),
            route.percent_to(&app.target_group("green"))
        )
    };
    println!("shop-alb:80 carries ops:swap-app=shop; prod/shop-blue is live with 2 Fargate tasks, prod/shop-green idle at 0.");
    println!("Fargate tasks are registered in `ip` target groups by their own addresses:");
    print_targets(config, &app, "blue").await;
    println!("live traffic: {}", traffic().await);

    println!("\n1. CI pushes shop:v2. In chat, alice deploys it:");
    let v2 = push(emulator, &app, "v2");
    let start = ops_core::time::now_epoch();
    let deploy = json!({"command": "deploy", "args": {"app": "shop", "image": "shop:v2"}, "requested_by": "alice"});
    print_chat_line("blue-green-swapper", &deploy);
    show(&function.invoke(deploy).expect("deploy"));
    println!("   (pinned as {v2})");
    show_alerts(inbox, 1).await;
    println!("   ECS starts green's tasks and they pass their health checks; the schedule takes it from here:");
    finish_rollout(emulator, &app, "green", "COMPLETED");
    for (minute, label) in [
        (1, "minute 1"),
        (6, "minute 6, after the 5-minute bake"),
        (11, "minute 11, after the termination wait"),
    ] {
        show(
            &function
                .invoke(scheduled(start + minute * 60))
                .expect("tick"),
        );
        println!("   {label}: live traffic {}", traffic().await);
        show_alerts(inbox, 1).await;
    }
    print_targets(config, &app, "green").await;
    print_targets(config, &app, "blue").await;

    println!("\n2. shop:v3 is deployed to blue (now the idle colour), but its tasks fail their health checks:");
    push(emulator, &app, "v3");
    let start = ops_core::time::now_epoch();
    show(
        &function
            .invoke(json!({"command": "deploy", "args": {"app": "shop", "image": "shop:v3"}, "requested_by": "bob"}))
            .expect("deploy"),
    );
    show_alerts(inbox, 1).await;
    finish_rollout(emulator, &app, "blue", "COMPLETED");
    set_health(emulator, &app, "blue", "unhealthy");
    show(&function.invoke(scheduled(start + 5 * 60)).expect("tick"));
    println!("   minute 16, past the 15-minute health timeout:");
    show(&function.invoke(scheduled(start + 16 * 60)).expect("tick"));
    println!("   live traffic: {} (never moved)", traffic().await);
    print_last_alert(inbox).await;
    function.invoke(scheduled(start + 17 * 60)).expect("tick");

    println!(
        "\n3. shop:v4 goes out as a canary, and the 5xx alarm fires while 10% of traffic is on it:"
    );
    set_health(emulator, &app, "blue", "healthy");
    push(emulator, &app, "v4");
    let start = ops_core::time::now_epoch();
    function
        .invoke(json!({"command": "deploy", "args": {"app": "shop", "image": "shop:v4"}, "requested_by": "alice"}))
        .expect("deploy");
    finish_rollout(emulator, &app, "blue", "COMPLETED");
    show(&function.invoke(scheduled(start + 60)).expect("tick"));
    println!("   minute 1: live traffic {}", traffic().await);
    inbox.receive(2, Duration::from_secs(10)).await;
    aws_sdk_cloudwatch::Client::new(config)
        .set_alarm_state()
        .alarm_name("shop-5xx")
        .state_value(StateValue::Alarm)
        .state_reason(
            "Threshold Crossed: 1 datapoint [37.0] was greater than the threshold (10.0).",
        )
        .send()
        .await
        .expect("set alarm state");
    show(&function.invoke(scheduled(start + 120)).expect("tick"));
    println!("   minute 2: live traffic {}", traffic().await);
    print_last_alert(inbox).await;

    println!("\n4. Bad input changes nothing and says why:");
    let error = function
        .invoke(json!({"command": "deploy", "args": {"app": "shop", "image": "shop:v5", "strategy": "canary 150 5m"}}))
        .unwrap_err();
    println!("   deploy with strategy \"canary 150 5m\" -> {error}");
    crate::show::print_counted_changes(&function);
}

/// Print what the function did and why it holds.
/// The addresses a colour's target group holds and their health.
async fn print_targets(config: &SdkConfig, app: &App, colour: &str) {
    let health = aws_sdk_elasticloadbalancingv2::Client::new(config)
        .describe_target_health()
        .target_group_arn(app.target_group(colour))
        .send()
        .await
        .expect("read the colour's targets");
    let targets: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let id = d.target().and_then(|t| t.id()).unwrap_or_default();
            let state = d
                .target_health()
                .and_then(|h| h.state())
                .map_or("unknown", |s| s.as_str());
            format!("{id} ({state})")
        })
        .collect();
    let listed = if targets.is_empty() {
        "none".to_string()
    } else {
        targets.join(", ")
    };
    println!("   {colour} target group: {listed}");
}

fn show(answer: &Value) {
    let answers = if answer["apps"].is_array() {
        list(&answer["apps"])
    } else {
        vec![answer.clone()]
    };
    for one in answers {
        for change in list(&one["applied"]) {
            println!("   did: {}", text(&change));
        }
        for note in list(&one["notes"]) {
            println!("   holds: {}", text(&note));
        }
    }
}

async fn show_alerts(inbox: &AlertInbox, count: usize) {
    for alert in inbox.receive(count, Duration::from_secs(10)).await {
        println!("  | {}", text(&alert.chat["content"]["title"]));
    }
}

async fn print_last_alert(inbox: &AlertInbox) {
    if let Some(alert) = inbox.receive(1, Duration::from_secs(10)).await.last() {
        print_alert(alert);
    }
}
