//! Chapter: legacy-health-monitor, through its real binary, against real servers on loopback. One
//! server stays healthy; one starts failing and is alerted once after three failed runs; then it
//! recovers and the alert says how long it was down. Then a maintenance window holds back the
//! alerts of a release that goes wrong, and one alert at its end says the server is still down;
//! and a mute from chat shows in `status` until it is lifted.

use std::time::Duration;

use aws_config::SdkConfig;
use ops_e2e::events::scheduled;
use ops_e2e::health::create_state_table;
use ops_e2e::lambda::built_binary;
use ops_e2e::servers::{OpenPort, Reply, TestServer};
use ops_e2e::{AlertInbox, Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::show::{deployed, list, print_alert, print_chat_line, text};

/// Run the chapter: targets in an SSM document, state in a DynamoDB table, both in the emulator.
pub async fn chapter(emulator: &Emulator, config: &SdkConfig, topic: &str, inbox: &AlertInbox) {
    println!("\n-- Chapter: legacy-health-monitor (the real binary; real servers on loopback; schedule times step the clock)");
    let payroll = TestServer::http(Reply::healthy()).await;
    let crm = TestServer::http(Reply::Answer {
        status: 200,
        body: "crm ok".into(),
    })
    .await;
    let ldap = OpenPort::start().await;
    // Sixteen minutes ago, on a minute, so every run's schedule time is past (the monitor refuses
    // a future one) and payroll's maintenance window starts on the run of minute 8.
    let start = (ops_core::time::now_epoch() / 60 - 16) * 60;
    let window_start = start + 8 * 60;
    let window_utc = format!(
        "{:02}:{:02}",
        window_start % 86_400 / 3600,
        window_start % 3600 / 60
    );
    let document = json!({"defaults": {"timeout": "2s"}, "targets": [
        {"name": "payroll", "http": payroll.url("/health"), "body_contains": "ok",
         "maintenance": [{"days": "daily", "start_utc": window_utc, "for": "3m", "reason": "payroll release"}]},
        {"name": "crm", "http": crm.url("/status"), "body_contains": "ok", "max_latency": "500ms"},
        {"name": "ldap", "tcp": format!("127.0.0.1:{}", ldap.port)}
    ]});
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name("/ops/health/legacy")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .value(document.to_string())
        .send()
        .await
        .expect("put the targets document");
    create_state_table(emulator, "ops-health-state").await;
    println!("SSM /ops/health/legacy lists payroll ({}), crm ({}) and ldap (tcp {}); down after 3 failed runs, up after 2 good ones;\npayroll has a daily maintenance window at {window_utc} UTC for 3 minutes (\"payroll release\").",
        payroll.url("/health"), crm.url("/status"), ldap.port);
    let mut env = emulator.function_env();
    env.extend([
        ("ALERT_TOPIC_ARN".to_string(), topic.to_string()),
        (
            "HEALTH_STATE_TABLE".to_string(),
            "ops-health-state".to_string(),
        ),
        ("HEALTH_CONFIG_PATH".to_string(), "/ops/health/".to_string()),
        // The last run is played up to a minute ahead of the clock (after a chat command, which
        // carries the real time); deployed functions keep the default (30 s of clock skew).
        ("SCHEDULE_LEAD_SECONDS".to_string(), "3600".to_string()),
    ]);
    let function = LocalLambda::start(
        &built_binary("legacy-health-monitor"),
        &deployed("legacy-health-monitor"),
        &env,
    );
    // The function connects back to servers in this process: wait for it off the runtime's threads.
    let tick = |minute: u64| {
        let answer =
            tokio::task::block_in_place(|| function.invoke(scheduled(start + minute * 60)))
                .expect("a run");
        summary(minute, &answer);
    };

    println!("\n1. Two runs: everything answers.");
    tick(0);
    tick(1);

    println!("\n2. crm starts answering 503 with a maintenance page:");
    crm.set(Reply::error(
        503,
        "maintenance: database migration in progress",
    ));
    tick(2);
    tick(3);
    println!("   Two failures in a row: not down yet, no alert. The third run:");
    tick(4);
    print_alerts(inbox, 1).await;
    tick(5);
    println!("   Still down a minute later: no second alert.");

    println!("\n3. The migration ends and crm answers again:");
    crm.set(Reply::Answer {
        status: 200,
        body: "crm ok".into(),
    });
    tick(6);
    tick(7);
    print_alerts(inbox, 1).await;

    println!("\n4. From chat, on-call checks one target now (no state changes, no alert):");
    let answer = tokio::task::block_in_place(|| {
        function
            .invoke(json!({"command": "check", "args": {"target": "crm"}, "requested_by": "alice"}))
    })
    .expect("check");
    println!(
        "   crm: healthy={} status={} in {} ms at {}",
        answer["healthy"],
        answer["outcome"]["status"],
        answer["outcome"]["latency_ms"],
        text(&answer["outcome"]["address"])
    );

    println!("\n5. payroll's maintenance window opens; the release breaks it (503) and it goes down inside the window:");
    payroll.set(Reply::error(503, "deploying payroll v2"));
    tick(8);
    tick(9);
    tick(10);
    println!(
        "   Down at minute 10, and no alert: the window holds it back (checks and metrics go on)."
    );
    println!("   The window ends at minute 11; payroll is still failing:");
    tick(11);
    print_alerts(inbox, 1).await;
    payroll.set(Reply::healthy());
    tick(12);
    tick(13);
    println!("   Fixed; its recovery is alerted as usual:");
    print_alerts(inbox, 1).await;

    println!("\n6. From chat, alice mutes crm for an hour before a core switch swap:");
    let mute = json!({"command": "mute", "args": {"target": "crm", "for": "1h", "reason": "core switch swap, CHG-88"}, "requested_by": "alice"});
    print_chat_line("legacy-health-monitor", &mute);
    let answer = tokio::task::block_in_place(|| function.invoke(mute)).expect("mute");
    println!(
        "   -> {}: {}",
        text(&answer["status"]),
        text(&answer["muted"])
    );
    let status = tokio::task::block_in_place(|| {
        function.invoke(json!({"command": "status", "args": {"target": "crm"}}))
    })
    .expect("status");
    println!(
        "   status crm: health {}, muted by {} until {}: {}",
        text(&status["targets"][0]["health"]),
        text(&status["targets"][0]["muted"]["by"]),
        text(&status["targets"][0]["muted"]["until"]),
        text(&status["targets"][0]["muted"]["reason"])
    );
    println!("   The swap is called off at once; bob lifts the mute, and the next run says so:");
    let unmute = json!({"command": "unmute", "args": {"target": "crm"}, "requested_by": "bob"});
    print_chat_line("legacy-health-monitor", &unmute);
    tokio::task::block_in_place(|| function.invoke(unmute)).expect("unmute");
    // The next schedule minute after the chat commands' (real) time.
    tick((ops_core::time::now_epoch() - start) / 60 + 1);
    print_alerts(inbox, 1).await;
}

fn summary(minute: u64, answer: &Value) {
    let down = list(&answer["down"]).iter().map(text).collect::<Vec<_>>();
    let changes = list(&answer["changes"])
        .iter()
        .map(|c| format!("{} {}", text(&c["target"]), text(&c["notice"]["kind"])))
        .collect::<Vec<_>>();
    println!(
        "   minute {minute}: {} checked, {} healthy now; down: {}; changes: {}",
        answer["checked"],
        answer["healthy_now"],
        if down.is_empty() {
            "none".into()
        } else {
            down.join(", ")
        },
        if changes.is_empty() {
            "none".into()
        } else {
            changes.join(", ")
        }
    );
}

async fn print_alerts(inbox: &AlertInbox, count: usize) {
    for alert in inbox.receive(count, Duration::from_secs(10)).await {
        print_alert(&alert);
    }
}
