//! Secrets stay secret: every function's real binary runs with recognisable fake credentials (and
//! the health monitor with a secret request header) at debug log level, through events, commands
//! and errors; no log line and no alert may contain any of them.

use ops_e2e::events::scheduled;
use ops_e2e::health::create_state_table;
use ops_e2e::lambda::built_binary;
use ops_e2e::servers::{Reply, TestServer};
use ops_e2e::{Emulator, LocalLambda};
use serde_json::json;

const ACCESS_KEY: &str = "AKIAFAKEOPSLAMBDA7Q3Z";
const SECRET_KEY: &str = "fAkE/secret+KEY/ops-lambdas/9f8e7d6c5b4a";
const SESSION_TOKEN: &str = "FQoGZXIvYXdzFAKESESSIONTOKENforOpsLambdasZZZ";
const HEADER_TOKEN: &str = "Bearer fake-health-header-token-31337";

/// A function to run: its name, its environment, the payloads to invoke it with.
type Run<'a> = (&'a str, Vec<(String, String)>, Vec<serde_json::Value>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_or_alert_carries_credentials_or_secret_headers() {
    let emulator = Emulator::start();
    let inventory = emulator.seed_demo();
    let topic = inventory["alert_topic_arn"].as_str().unwrap().to_string();
    let shop_route = inventory["blue_green_apps"][0]["live_route"]
        .as_str()
        .unwrap()
        .to_string();
    create_state_table(&emulator, "secret-test-state").await;
    let failing = TestServer::http(Reply::error(500, "no")).await;
    let targets =
        json!({"targets": [{"name": "vault", "http": failing.url("/health"), "down_after": 1,
                                       "headers": {"Authorization": HEADER_TOKEN}}]})
        .to_string();

    let mut env: Vec<(String, String)> = emulator
        .function_env()
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET_ACCESS_KEY")
        })
        .collect();
    env.extend(
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN),
            ("RUST_LOG", "debug"),
            ("ALERT_TOPIC_ARN", topic.as_str()),
            ("ECS_CLUSTERS", "prod"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let with = |extra: &[(&str, &str)]| {
        let mut all = env.clone();
        all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        all
    };
    let runs: Vec<Run> = vec![
        (
            "deploy-trigger",
            with(&[]),
            vec![
                emulator
                    .control(
                        "POST",
                        "/_ops/ecr/push",
                        Some(json!({"repository": "web", "tag": "release-77"})),
                    )
                    .unwrap()["event"]
                    .clone(),
                json!({"command": "status", "args": {"service": "prod/web"}, "requested_by": "alice"}),
                json!({"command": "deploy", "args": {"service": "prod/nope", "tag": "x"}}),
            ],
        ),
        (
            "blue-green-swapper",
            with(&[("SWAP_ROUTES", &shop_route)]),
            vec![
                json!({"command": "status", "args": {"app": "shop"}}),
                json!({"command": "deploy", "args": {"app": "shop", "image": "shop:missing"}}),
            ],
        ),
        (
            "cpu-alarm-scaler",
            with(&[("AUTOSCALING_GROUPS", "workers")]),
            vec![json!({"command": "status"}), scheduled(1_795_000_000)],
        ),
        (
            "legacy-health-monitor",
            with(&[
                ("HEALTH_STATE_TABLE", "secret-test-state"),
                ("HEALTH_TARGETS", &targets),
            ]),
            vec![
                scheduled(1_795_000_000),
                json!({"command": "check", "args": {"target": "vault"}}),
            ],
        ),
        (
            "bastion-eip-associator",
            with(&[("BASTION_GROUPS", "bastion")]),
            vec![scheduled(1_795_000_000)],
        ),
    ];
    let mut logs = Vec::new();
    for (name, env, events) in runs {
        let function = LocalLambda::start(&built_binary(name), name, &env);
        for event in events {
            // Errors are part of the test: their messages must be clean too.
            let _ = tokio::task::block_in_place(|| function.invoke(event));
        }
        logs.push((name, function.log_path.clone()));
    }
    let published = emulator
        .control("GET", "/_ops/sns/published", None)
        .unwrap()
        .to_string();
    assert!(
        published.contains("vault"),
        "the health alert was published: the scan saw real alerts"
    );
    for secret in [
        SECRET_KEY,
        SESSION_TOKEN,
        HEADER_TOKEN,
        "fake-health-header-token",
    ] {
        assert!(!published.contains(secret), "an alert contains `{secret}`");
        for (name, path) in &logs {
            let log = std::fs::read_to_string(path).unwrap();
            assert!(log.lines().count() > 3, "{name} logged at debug level");
            assert!(
                !log.contains(secret),
                "{name}'s log ({}) contains `{secret}`",
                path.display()
            );
        }
    }
}
