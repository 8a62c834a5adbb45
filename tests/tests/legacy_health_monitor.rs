//! legacy-health-monitor end to end: real servers on loopback (HTTP, HTTPS, TCP), state in the
//! emulator's DynamoDB across separate invocations, alerts read from the emulator's SNS outbox.

use std::time::Duration;

use legacy_health_monitor::handler::LEASE_WITHOUT_DEADLINE;
use ops_e2e::blue_green::{alerts, topic, Published};
use ops_e2e::health::{command, create_state_table, deps, run, run_within};
use ops_e2e::servers::{closed_port, OpenPort, Reply, TestCert, TestServer};
use ops_e2e::{fixtures, Emulator};
use serde_json::{json, Value};

const T0: u64 = 1_795_000_000;

struct World {
    emulator: Emulator,
    topic: String,
}

impl World {
    async fn new() -> World {
        let emulator = Emulator::start();
        create_state_table(&emulator, "health-state").await;
        let topic = topic(&emulator, "ops-alerts").await;
        World { emulator, topic }
    }

    async fn monitor(
        &self,
        targets: Value,
    ) -> legacy_health_monitor::handler::Deps<
        ops_core::aws::sns::SnsAlerts,
        legacy_health_monitor::metrics::MemoryMetrics,
    > {
        let document = targets.to_string();
        deps(
            &self.emulator,
            "health-state",
            &self.topic,
            &[("HEALTH_TARGETS", &document)],
        )
        .await
    }

    fn alerts(&self) -> Vec<Published> {
        alerts(&self.emulator, &self.topic)
    }
}

/// A running EC2 instance named `name` whose `ops:health-check` tag is `check`.
async fn tagged_instance(
    sdk: &aws_config::SdkConfig,
    name: &str,
    check: &str,
) -> aws_sdk_ec2::types::Instance {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let image = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .unwrap()
        .images
        .unwrap()[0]
        .image_id
        .clone()
        .unwrap();
    let launched = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("ops:health-check")
                        .value(check)
                        .build(),
                )
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value(name)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    launched.instances.unwrap().remove(0)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn every_kind_of_failure_is_classified_with_its_reason() {
    let world = World::new().await;
    let healthy = TestServer::http(Reply::healthy()).await;
    let broken = TestServer::http(Reply::error(500, "database unavailable")).await;
    let wrong = TestServer::http(Reply::Answer {
        status: 200,
        body: "maintenance page".into(),
    })
    .await;
    let slow = TestServer::http(Reply::Slow {
        delay: Duration::from_millis(600),
        status: 200,
        body: "ok".into(),
    })
    .await;
    let hanging = TestServer::http(Reply::Hang).await;
    let redirecting = TestServer::http(Reply::Redirect {
        location: "https://login.example.com/".into(),
    })
    .await;
    let self_signed = TestServer::https(Reply::healthy(), &TestCert::self_signed(90)).await;
    let expiring = TestServer::https(Reply::healthy(), &TestCert::self_signed(5)).await;
    let open = OpenPort::start().await;
    let closed = closed_port();
    let monitor = world
        .monitor(json!({"defaults": {"timeout": "1s"}, "targets": [
            {"name": "healthy", "http": healthy.url("/health"), "body_contains": "ok"},
            {"name": "error-500", "http": broken.url("/health")},
            {"name": "wrong-body", "http": wrong.url("/health"), "body_contains": "ok"},
            {"name": "slow", "http": slow.url("/health"), "max_latency": "300ms", "timeout": "2s"},
            {"name": "hanging", "http": hanging.url("/health")},
            {"name": "refused", "http": format!("http://127.0.0.1:{closed}/health")},
            {"name": "off-host-redirect", "http": redirecting.url("/health")},
            {"name": "self-signed", "http": self_signed.url("/health")},
            {"name": "near-expiry", "http": expiring.url("/health"), "verify_tls": false, "cert_warn_days": 14},
            {"name": "tcp-open", "tcp": format!("127.0.0.1:{}", open.port)},
            {"name": "tcp-closed", "tcp": format!("127.0.0.1:{closed}")},
            {"name": "dns", "http": "http://no-such-host.invalid/health"}
        ]}))
        .await;
    let check = |name: &'static str| {
        let monitor = &monitor;
        async move {
            command(
                monitor,
                json!({"command": "check", "args": {"target": name}}),
                T0,
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
        }
    };
    let failure = |answer: &Value| {
        (
            text(&answer["outcome"]["failure"]["kind"]),
            text(&answer["outcome"]["failure"]["detail"]),
        )
    };

    let ok = check("healthy").await;
    assert_eq!(
        (ok["healthy"].as_bool(), ok["outcome"]["status"].as_u64()),
        (Some(true), Some(200))
    );
    assert_eq!(
        text(&ok["outcome"]["address"]),
        format!("127.0.0.1:{}", healthy.port)
    );

    let answer = check("error-500").await;
    assert_eq!(
        failure(&answer),
        ("status".into(), "HTTP 500 (expected 200-299)".into())
    );
    assert_eq!(
        text(&answer["outcome"]["failure"]["snippet"]),
        "database unavailable"
    );
    assert_eq!(
        answer["outcome"]["attempts"], 2,
        "a quick retry before counting it"
    );

    assert_eq!(
        failure(&check("wrong-body").await),
        ("body".into(), "the body does not contain `ok`".into())
    );

    let (kind, detail) = failure(&check("slow").await);
    assert_eq!(kind, "latency");
    assert!(
        detail.starts_with("answered in ") && detail.ends_with(" ms, over the 300 ms limit"),
        "{detail}"
    );

    let answer = check("hanging").await;
    assert_eq!(
        failure(&answer),
        (
            "timeout".into(),
            format!(
                "no answer from 127.0.0.1:{} before the timeout",
                hanging.port
            )
        )
    );
    assert_eq!(
        answer["outcome"]["attempts"], 1,
        "a timeout used the whole budget: no retry"
    );

    assert_eq!(
        failure(&check("refused").await),
        (
            "refused".into(),
            format!("connection refused by 127.0.0.1:{closed}")
        )
    );
    assert_eq!(
        failure(&check("off-host-redirect").await),
        (
            "redirect".into(),
            "HTTP 302 redirect to https://login.example.com/, off the target's host: not followed"
                .into()
        )
    );
    let (kind, detail) = failure(&check("self-signed").await);
    assert_eq!(kind, "tls");
    assert!(
        detail.contains("invalid peer certificate: UnknownIssuer"),
        "{detail}"
    );

    let answer = check("near-expiry").await;
    assert_eq!(answer["healthy"], true, "an opted-out target still answers");
    assert_eq!(answer["outcome"]["cert_days_left"], 5);

    assert_eq!(check("tcp-open").await["healthy"], true);
    assert_eq!(failure(&check("tcp-closed").await).0, "refused");
    let (kind, detail) = failure(&check("dns").await);
    assert_eq!(kind, "dns");
    assert!(
        detail.starts_with("cannot resolve no-such-host.invalid"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_target_goes_down_after_three_failed_runs_and_recovers_after_two_good_ones() {
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let targets = json!({"targets": [{"name": "billing", "http": server.url("/health"), "body_contains": "ok",
                                       "headers": {"Authorization": "Bearer s3cret-token"}, "reminder": "30m"}]});
    // Each run is its own invocation with its own dependencies: only DynamoDB remembers.
    let run_at = |at: u64| {
        let targets = targets.clone();
        let world = &world;
        async move { run(&world.monitor(targets).await, at).await.expect("run") }
    };
    run_at(T0).await;
    run_at(T0 + 60).await;
    server.set(Reply::error(503, "upstream billing-db unavailable"));
    for minute in [2, 3] {
        let answer = run_at(T0 + minute * 60).await;
        assert_eq!(
            answer["changes"],
            json!([]),
            "minute {minute}: not down yet"
        );
    }
    let answer = run_at(T0 + 240).await;
    assert_eq!(answer["down"], json!(["billing"]));
    run_at(T0 + 300).await;
    let sent = world.alerts();
    assert_eq!(sent.len(), 1, "one alert for the outage so far");
    let down = &sent[0];
    assert_eq!(
        (down.event_type.as_str(), down.severity.as_str()),
        ("health.down", "critical")
    );
    assert_eq!(down.subject, "[CRITICAL] billing is DOWN (status)");
    let description = text(&down.chat["content"]["description"]);
    assert!(
        description.contains("status: HTTP 503 (expected 200-299)"),
        "{description}"
    );
    assert!(
        description.contains("body starts: \"upstream billing-db unavailable\""),
        "{description}"
    );
    assert_eq!(
        down.chat["metadata"]["additionalContext"]["address"],
        format!("127.0.0.1:{}", server.port)
    );
    assert!(
        !down.chat.to_string().contains("s3cret-token"),
        "header values are never alerted"
    );

    server.set(Reply::healthy());
    assert_eq!(
        run_at(T0 + 360).await["changes"],
        json!([]),
        "one good run is not a recovery"
    );
    let answer = run_at(T0 + 420).await;
    assert_eq!(answer["changes"][0]["notice"]["kind"], "recovered");
    let recovered = world.alerts().pop().unwrap();
    assert_eq!(recovered.event_type, "health.recovered");
    assert_eq!(
        recovered.subject,
        "[INFO] billing recovered after 3 minutes"
    );
    assert_eq!(world.alerts().len(), 2);
}

#[tokio::test]
async fn a_mass_failure_is_one_collated_alert_and_metrics_are_emitted_per_target() {
    let world = World::new().await;
    let shared = TestServer::http(Reply::healthy()).await;
    let targets: Vec<Value> = (0..30)
        .map(|i| json!({"name": format!("app-{i:02}"), "http": shared.url(&format!("/app/{i}")), "down_after": 1}))
        .collect();
    let monitor = world.monitor(json!({ "targets": targets })).await;
    run(&monitor, T0).await.unwrap();
    shared.set(Reply::error(502, "bad gateway"));
    let answer = run(&monitor, T0 + 60).await.unwrap();
    assert_eq!(answer["down"].as_array().unwrap().len(), 30);
    let sent = world.alerts();
    assert_eq!(sent.len(), 1, "one alert for thirty targets");
    assert_eq!(sent[0].event_type, "health.collated");
    assert_eq!(
        sent[0].subject,
        "[CRITICAL] 30 legacy targets changed: 30 down"
    );
    let lines = monitor.metrics.lines();
    let app_00: Vec<&Value> = lines.iter().filter(|l| l["Target"] == "app-00").collect();
    assert_eq!(
        app_00
            .iter()
            .map(|l| l["Up"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 0]
    );
    assert_eq!(
        app_00[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Ops/LegacyHealth"
    );
    let runs: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("TargetsChecked").is_some())
        .collect();
    assert_eq!(runs.last().unwrap()["TargetsDown"], 30);
}

#[tokio::test]
async fn malformed_entries_are_named_once_and_the_valid_targets_still_run() {
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let document = json!({"targets": [
        {"name": "good", "http": server.url("/")},
        {"name": "no-port", "tcp": "127.0.0.1"},
        {"name": "bad-latency", "http": server.url("/"), "max_latency": "fast"},
        {"name": "also-good", "tcp": format!("127.0.0.1:{}", server.port)},
        {"http": server.url("/")}
    ]});
    let monitor = world.monitor(document).await;
    let answer = run(&monitor, T0).await.unwrap();
    assert_eq!(answer["checked"], 2);
    assert_eq!(
        answer["invalid_entries"],
        json!([
            "HEALTH_TARGETS: targets[1] (no-port): field `tcp`: `127.0.0.1` has no port; write host:port",
            "HEALTH_TARGETS: targets[2] (bad-latency): field `max_latency`: `fast` is not a duration from 1 ms to 30 s, like 5s or 800ms",
            "HEALTH_TARGETS: targets[4]: field `name` is missing"
        ])
    );
    run(&monitor, T0 + 60).await.unwrap();
    let sent = world.alerts();
    assert_eq!(
        sent.iter()
            .map(|a| a.event_type.as_str())
            .collect::<Vec<_>>(),
        ["health.config-invalid"],
        "alerted once, not every minute"
    );
    assert!(text(&sent[0].chat["content"]["description"]).contains("targets[1] (no-port)"));
}

#[tokio::test]
async fn targets_named_like_the_bookkeeping_item_are_checked_stored_and_alerted_like_any_other() {
    let world = World::new().await;
    let down = TestServer::http(Reply::error(503, "down")).await;
    let up = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(json!({"targets": [
            {"name": "#config", "http": down.url("/"), "down_after": 1},
            {"name": "meta#config", "http": down.url("/"), "down_after": 1},
            {"name": "target#config", "http": up.url("/")},
            {"http": up.url("/")}
        ]}))
        .await;
    let answer = run(&monitor, T0).await.unwrap();
    assert_eq!(answer["checked"], 3);
    assert_eq!(answer["down"], json!(["#config", "meta#config"]));
    let sent = world.alerts();
    let mut kinds: Vec<(&str, &str)> = sent
        .iter()
        .map(|a| (a.event_type.as_str(), a.subject.as_str()))
        .collect();
    kinds.sort();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(kinds[0].0, "health.config-invalid");
    assert!(kinds[1].1.contains("#config is DOWN"), "{kinds:?}");
    assert!(kinds[2].1.contains("meta#config is DOWN"), "{kinds:?}");
    // Stored like any other: the next run reads them back (no second down alert, no duplicate
    // keys), and the invalid entry recorded in the bookkeeping item is not alerted again.
    let again = run(&monitor, T0 + 60).await.unwrap();
    assert_eq!(again["down"], json!(["#config", "meta#config"]));
    assert_eq!(world.alerts().len(), 3);
    let status = command(&monitor, json!({"command": "status"}), T0 + 61)
        .await
        .unwrap();
    let health: Vec<(String, String)> = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().into(),
                t["health"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        health,
        [
            ("#config".to_string(), "down".to_string()),
            ("meta#config".into(), "down".into()),
            ("target#config".into(), "up".into())
        ]
    );
}

#[tokio::test]
async fn states_in_the_old_key_layout_are_carried_over_once() {
    let world = World::new().await;
    let server = TestServer::http(Reply::error(500, "boom")).await;
    let states = ops_core::aws::dynamodb::VersionedDocuments::new(
        &world.emulator.sdk_config().await,
        "health-state",
    );
    // Given the old layout: `erp` down since T0 (alerted), the invalid entries list empty.
    let old = json!({"health": "down", "failures": 3, "successes": 0, "since": T0,
        "last_alert": T0, "cert_warned": false, "pending": []});
    assert!(states.put("erp", &old.to_string(), None).await.unwrap());
    assert!(states
        .put("#config", &json!({"errors": []}).to_string(), None)
        .await
        .unwrap());
    let monitor = world
        .monitor(json!({"targets": [{"name": "erp", "http": server.url("/")}]}))
        .await;
    // When a run reads it: erp is still down, and nothing is alerted again.
    let answer = run(&monitor, T0 + 60).await.unwrap();
    assert_eq!(answer["down"], json!(["erp"]));
    assert_eq!(world.alerts().len(), 0, "{answer}");
    // Then it is stored under the new keys, and a recovery is told with the original downtime.
    let stored = states
        .get_many(&["target#erp".to_string(), "meta#config".to_string()])
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    server.set(Reply::healthy());
    run(&monitor, T0 + 120).await.unwrap();
    run(&monitor, T0 + 180).await.unwrap();
    let sent = world.alerts();
    assert_eq!(
        sent.iter()
            .map(|a| a.event_type.as_str())
            .collect::<Vec<_>>(),
        ["health.recovered"]
    );
}

#[tokio::test]
async fn a_big_outage_ends_inside_the_deadline_alerts_what_it_found_and_names_what_it_did_not_check(
) {
    let world = World::new().await;
    let hanging = TestServer::http(Reply::Hang).await;
    let targets: Vec<Value> = (0..8)
        .map(|i| {
            json!({"name": format!("old-{i}"), "http": hanging.url(&format!("/{i}")),
            "timeout": "1s", "down_after": 1})
        })
        .collect();
    let document = json!({ "targets": targets }).to_string();
    let monitor = deps(
        &world.emulator,
        "health-state",
        &world.topic,
        &[("HEALTH_TARGETS", &document), ("HEALTH_CONCURRENCY", "2")],
    )
    .await;
    let epoch_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    // Given four waves of two 1 s checks (4 s) and a deadline 3.3 s away (2.8 s for checks after
    // the margin): two waves fit, a third would not finish in time.
    let answer = run_within(&monitor, T0, epoch_ms() + 3300).await.unwrap();
    assert_eq!(answer["checked"], 4, "{answer}");
    let skipped: Vec<String> =
        serde_json::from_value(answer["not_checked_in_time"].clone()).unwrap();
    assert_eq!(skipped.len(), 4, "{answer}");
    assert_eq!(answer["down"].as_array().unwrap().len(), 4, "{answer}");
    let sent = world.alerts();
    let kinds: Vec<&str> = sent.iter().map(|a| a.event_type.as_str()).collect();
    assert_eq!(kinds, ["health.collated", "health.not-checked"]);
    assert_eq!(
        sent[1].subject,
        "[WARNING] 4 of 8 legacy targets not checked in time"
    );
    let told = text(&sent[1].chat["content"]["description"]);
    for name in &skipped {
        assert!(told.contains(name.as_str()), "{name} in {told}");
    }
    // When the next run is as short: the targets skipped are checked first, so all are now down.
    let next = run_within(&monitor, T0 + 60, epoch_ms() + 3300)
        .await
        .unwrap();
    assert_eq!(next["down"].as_array().unwrap().len(), 8, "{next}");
    let skipped_again: Vec<String> =
        serde_json::from_value(next["not_checked_in_time"].clone()).unwrap();
    assert!(skipped_again.iter().all(|n| !skipped.contains(n)), "{next}");
}

#[tokio::test]
async fn two_runs_at_once_alert_a_target_going_down_once() {
    let world = World::new().await;
    let server = TestServer::http(Reply::error(500, "boom")).await;
    let targets = json!({"targets": [{"name": "erp", "http": server.url("/"), "down_after": 2}]});
    let first = world.monitor(targets.clone()).await;
    run(&first, T0).await.unwrap();
    let (a, b) = (
        world.monitor(targets.clone()).await,
        world.monitor(targets).await,
    );
    let (left, right) = tokio::join!(run(&a, T0 + 60), run(&b, T0 + 60));
    let (left, right) = (left.unwrap(), right.unwrap());
    let lost: Vec<Value> = [&left, &right]
        .iter()
        .flat_map(|r| {
            r["left_to_another_run"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let downs = world
        .alerts()
        .iter()
        .filter(|a| a.event_type == "health.down")
        .count();
    assert_eq!(downs, 1, "left: {left}\nright: {right}");
    assert!(lost.len() <= 1);
}

#[tokio::test]
async fn targets_come_from_ssm_documents_and_tagged_instances() {
    let world = World::new().await;
    let sdk = world.emulator.sdk_config().await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name("/ops/health/erp")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(json!({"targets": [{"name": "erp", "http": "https://erp.internal/health", "headers": {"X-Token": "t0ken"}}]}).to_string())
        .send()
        .await
        .unwrap();
    let instance = tagged_instance(&sdk, "ftp-01", "tcp://{ip}:22").await;
    let monitor = deps(
        &world.emulator,
        "health-state",
        &world.topic,
        &[
            ("HEALTH_CONFIG_PATH", "/ops/health/"),
            ("HEALTH_DISCOVER_EC2", "true"),
        ],
    )
    .await;
    let status = command(&monitor, json!({"command": "status"}), T0)
        .await
        .unwrap();
    let listed: Vec<(String, String, String)> = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (text(&t["target"]), text(&t["check"]), text(&t["health"])))
        .collect();
    let id = instance.instance_id.unwrap();
    assert_eq!(
        listed,
        [
            (
                "erp".to_string(),
                "GET https://erp.internal/health".to_string(),
                "never checked".to_string()
            ),
            (
                format!("ftp-01/{id}"),
                format!("tcp {}:22", instance.private_ip_address.unwrap()),
                "never checked".to_string()
            ),
        ]
    );
    assert!(!status.to_string().contains("t0ken"));
}

#[tokio::test]
async fn a_certificate_near_expiry_is_alerted_once() {
    let world = World::new().await;
    let server = TestServer::https(Reply::healthy(), &TestCert::self_signed(5)).await;
    let monitor = world
        .monitor(json!({"targets": [{"name": "intranet", "http": server.url("/"), "verify_tls": false, "cert_warn_days": 14}]}))
        .await;
    run(&monitor, T0).await.unwrap();
    run(&monitor, T0 + 60).await.unwrap();
    let sent = world.alerts();
    assert_eq!(sent.len(), 1, "once, not every minute");
    assert_eq!(sent[0].event_type, "health.cert-expiring");
    assert_eq!(
        sent[0].subject,
        "[WARNING] intranet: TLS certificate expires in 5 days"
    );
    let lines = monitor.metrics.lines();
    assert!(lines
        .iter()
        .all(|l| l.get("Target").is_none() || l["CertDaysLeft"] == 5));
}

/// legacy-health-monitor's policy as sam/template.yaml grants it (no VPC), for table
/// `health-state`, the documents under `/ops/health/` and the alert topic `topic`.
fn monitor_policy(topic: &str) -> Value {
    let account = ops_e2e::fixtures::ACCOUNT;
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "KeepTargetStates", "Effect": "Allow",
             "Action": ["dynamodb:BatchGetItem", "dynamodb:PutItem"],
             "Resource": format!("arn:aws:dynamodb:us-east-1:{account}:table/health-state")},
            {"Sid": "ReadTargetDocuments", "Effect": "Allow", "Action": "ssm:GetParametersByPath",
             "Resource": format!("arn:aws:ssm:us-east-1:{account}:parameter/ops/health/*")},
            {"Sid": "DiscoverTaggedInstances", "Effect": "Allow", "Action": "ec2:DescribeInstances",
             "Resource": "*"},
            {"Sid": "Alert", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
        ]
    })
}

#[tokio::test]
async fn doctor_proves_every_duty_on_the_table_the_documents_and_the_instances_then_names_a_removed_grant(
) {
    // Given targets from all three sources, and the role the template grants.
    let world = World::new().await;
    let sdk = world.emulator.sdk_config().await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name("/ops/health/erp")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(json!({"targets": [
            {"name": "erp", "http": "https://erp.internal/health", "headers": {"X-Token": "t0ken"}}
        ]}).to_string())
        .send()
        .await
        .unwrap();
    let instance = tagged_instance(&sdk, "ftp-01", "tcp://{ip}:22").await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let name = "opsstack-legacy-health-monitor-role";
    let role = fixtures::function_role(&iam, name, &monitor_policy(&world.topic)).await;
    let inline = json!({"targets": [{"name": "ldap", "tcp": "10.0.0.5:389"}]}).to_string();
    let monitor = deps(
        &world.emulator,
        "health-state",
        &world.topic,
        &[
            ("HEALTH_TARGETS", &inline),
            ("HEALTH_CONFIG_PATH", "/ops/health/"),
            ("HEALTH_DISCOVER_EC2", "true"),
            ("OPS_ROLE_ARN", &role),
        ],
    )
    .await;

    // When doctor is asked.
    let answer = command(&monitor, json!({"command": "doctor"}), T0)
        .await
        .expect("doctor answers");

    // Then every row is ok, each duty on each resource among them.
    let rows = fixtures::doctor_table(&answer);
    assert_eq!(answer["ok"], true, "{rows:#?}");
    let id = instance.instance_id.unwrap();
    let account = ops_e2e::fixtures::ACCOUNT;
    let state_table = format!("arn:aws:dynamodb:us-east-1:{account}:table/health-state");
    for duty in [
        format!("dynamodb:BatchGetItem on {state_table}"),
        format!("dynamodb:PutItem on {state_table}"),
        format!("ssm:GetParametersByPath on arn:aws:ssm:us-east-1:{account}:parameter/ops/health/"),
        "ec2:DescribeInstances on *".to_string(),
        format!("sns:Publish on {}", world.topic),
    ] {
        assert!(
            rows.iter().any(|row| row.starts_with("ok")
                && row.contains(&format!("permission  {duty} - allowed by"))),
            "no allowed row for {duty}: {rows:#?}"
        );
    }
    assert!(
        rows.iter()
            .filter(|row| row.contains("permission  "))
            .all(|row| row.starts_with("ok")),
        "{rows:#?}"
    );
    for resource in [
        "resource    inline targets document (HEALTH_TARGETS) - 1 target(s): ldap".to_string(),
        "resource    SSM path /ops/health/ - 1 document(s)".to_string(),
        "resource    SSM document /ops/health/erp - 1 target(s): erp".to_string(),
        "resource    EC2 instances tagged ops:health-check - 1 running".to_string(),
        format!("resource    instance {id} - target ftp-01/{id}: tcp "),
        "resource    DynamoDB table health-state - readable; 0 of 3 target(s) have a stored state"
            .to_string(),
    ] {
        assert!(
            rows.iter().any(|row| row.contains(&resource)),
            "no row for {resource}: {rows:#?}"
        );
    }
    assert!(
        !answer.to_string().contains("t0ken"),
        "no secret in the answer"
    );
    let doctor: Vec<Published> = world
        .alerts()
        .into_iter()
        .filter(|a| a.event_type == "doctor")
        .collect();
    assert_eq!(doctor.len(), 1, "the doctor alert went out through SNS");
    assert_eq!(doctor[0].severity, "info");

    // When the grant on the state table is taken away, doctor names each action it denies.
    let without = fixtures::without_statement(&monitor_policy(&world.topic), "KeepTargetStates");
    fixtures::put_function_policy(&iam, name, &without).await;
    let answer = command(&monitor, json!({"command": "doctor"}), T0)
        .await
        .expect("doctor answers");

    let rows = fixtures::doctor_table(&answer);
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["summary"]["denied"], 2, "{rows:#?}");
    assert_eq!(
        rows[0],
        format!("DENIED       permission  dynamodb:BatchGetItem on {state_table} - no statement of the role allows it: implicitly denied (reads the targets' states, in each run and for status)")
    );
    assert_eq!(
        rows[1],
        format!("DENIED       permission  dynamodb:PutItem on {state_table} - no statement of the role allows it: implicitly denied (stores each target's state, only if no other run wrote it since)")
    );
}

#[tokio::test]
async fn doctor_names_a_missing_state_table_and_an_unusable_entry_and_says_iam_was_not_asked() {
    let world = World::new().await;
    let inline = json!({"targets": [
        {"name": "ldap", "tcp": "10.0.0.5:389"},
        {"name": "broken", "tcp": "no-port"}
    ]})
    .to_string();
    let monitor = deps(
        &world.emulator,
        "no-such-table",
        &world.topic,
        &[("HEALTH_TARGETS", &inline)],
    )
    .await;

    let answer = command(&monitor, json!({"command": "doctor"}), T0)
        .await
        .expect("doctor answers");

    let rows = fixtures::doctor_table(&answer);
    assert_eq!(answer["ok"], false);
    assert_eq!(
        (
            answer["summary"]["problem"].as_u64(),
            answer["summary"]["undetermined"].as_u64()
        ),
        (Some(3), Some(1)),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .any(|row| row.starts_with("PROBLEM      config      OPS_ROLE_ARN - not set")),
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|row| row.starts_with(
            "PROBLEM      config      HEALTH_TARGETS - HEALTH_TARGETS: targets[1] (broken): "
        )),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .any(|row| row.starts_with("PROBLEM      resource    DynamoDB table no-such-table - ")),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .any(|row| row
                .starts_with("undetermined permission  3 duties - OPS_ROLE_ARN is not set")),
        "{rows:#?}"
    );
    assert_eq!(
        world
            .alerts()
            .iter()
            .filter(|a| a.event_type == "doctor")
            .count(),
        1,
        "the alert path is proved even so"
    );
}

/// The monitor's dependencies with one attempt per AWS call, so an injected failure is the run's.
async fn one_attempt(
    world: &World,
    targets: Value,
) -> legacy_health_monitor::handler::Deps<
    ops_core::aws::sns::SnsAlerts,
    legacy_health_monitor::metrics::MemoryMetrics,
> {
    let mut deps = world.monitor(targets).await;
    let sdk = ops_core::aws::sdk_config(&ops_core::aws::AwsSettings {
        max_attempts: 1,
        ..world.emulator.settings()
    })
    .await;
    deps.clients.states = ops_core::aws::dynamodb::VersionedDocuments::new(&sdk, "health-state");
    deps.alerts = ops_core::aws::sns::SnsAlerts::new(&sdk, &world.topic);
    deps
}

/// A scheduled run at `at` invoked at `wall` (a retry comes later than the schedule's time).
async fn run_at_wall(
    deps: &legacy_health_monitor::handler::Deps<
        ops_core::aws::sns::SnsAlerts,
        legacy_health_monitor::metrics::MemoryMetrics,
    >,
    at: u64,
    wall: u64,
) -> Result<Value, ops_core::Error> {
    legacy_health_monitor::handler::function_handler(
        ops_e2e::events::scheduled(at),
        &legacy_health_monitor::handler::Invocation { now: wall },
        deps,
    )
    .await
}

// Model finding (model_legacy_health_monitor): [Tick delivered twice, Tick] counted the first
// minute twice, so a target went up (or down) a run early.
#[tokio::test]
async fn a_duplicated_or_late_schedule_event_counts_its_minute_once_and_moves_nothing_back() {
    let world = World::new().await;
    let server = TestServer::http(Reply::error(503, "down")).await;
    let monitor = world
        .monitor(json!({"targets": [{"name": "erp", "http": server.url("/"), "down_after": 2}]}))
        .await;
    // Given one failed run at T0 + 60.
    assert_eq!(run(&monitor, T0 + 60).await.unwrap()["changes"], json!([]));
    // When EventBridge delivers that minute again, it is a duplicate: nothing is counted.
    let again = run(&monitor, T0 + 60).await.unwrap();
    assert_eq!(again["status"], "ignored", "{again}");
    assert_eq!(again["checked"], 0, "{again}");
    assert!(world.alerts().is_empty(), "one failed minute is not down");
    // Then the next minute is the second failure: down, once.
    let next = run(&monitor, T0 + 120).await.unwrap();
    assert_eq!(next["down"], json!(["erp"]), "{next}");
    // And a late delivery of the first minute after it changes nothing and alerts nothing.
    server.set(Reply::healthy());
    let late = run(&monitor, T0 + 60).await.unwrap();
    assert_eq!(late["status"], "ignored", "{late}");
    let status = command(&monitor, json!({"command": "status"}), T0 + 130)
        .await
        .unwrap();
    assert_eq!(status["targets"][0]["health"], "down");
    assert_eq!(
        status["targets"][0]["since"],
        ops_core::time::utc_text(T0 + 120)
    );
    let kinds: Vec<String> = world.alerts().into_iter().map(|a| a.event_type).collect();
    assert_eq!(kinds, ["health.down"]);
}

// Model finding: [BreakConfig, ShortTick whose 6th AWS call (the second Publish) failed]: the run
// failed before recording the first alert as sent, and Lambda's retry sent it again.
#[tokio::test]
async fn an_alert_that_cannot_be_sent_is_sent_by_the_retry_without_sending_the_ones_before_it_again(
) {
    let world = World::new().await;
    let server = TestServer::http(Reply::error(503, "down")).await;
    let targets = json!({"targets": [
        {"name": "erp", "http": server.url("/"), "down_after": 1},
        {"name": "broken", "tcp": "no-port"}
    ]});
    let monitor = one_attempt(&world, targets).await;
    // Given the second alert of the run (the config alert, after erp's down alert) fails to send.
    world.emulator.add_fault(
        json!({"service": "sns", "operation": "Publish", "kind": "error500", "on_calls": [2]}),
    );
    let first = run_at_wall(&monitor, T0 + 60, T0 + 60).await;
    assert!(first.as_ref().is_err_and(|e| e.retryable()), "{first:?}");
    world
        .emulator
        .control("DELETE", "/_ops/faults", None)
        .unwrap();
    // When Lambda retries the event a minute later (same `time`).
    let retried = run_at_wall(&monitor, T0 + 60, T0 + 120).await.unwrap();
    assert_eq!(
        retried["status"], "ignored",
        "the minute was counted: {retried}"
    );
    // Then each alert went out once.
    let kinds: Vec<String> = world.alerts().into_iter().map(|a| a.event_type).collect();
    assert_eq!(kinds, ["health.down", "health.config-invalid"]);
    let quiet = run_at_wall(&monitor, T0 + 120, T0 + 180).await.unwrap();
    assert_eq!(quiet["changes"], json!([]), "{quiet}");
    assert_eq!(world.alerts().len(), 2);
}

#[tokio::test]
async fn a_run_that_finds_alerts_another_run_is_sending_leaves_them_to_it() {
    let world = World::new().await;
    let server = TestServer::http(Reply::error(503, "down")).await;
    let targets = json!({"targets": [{"name": "erp", "http": server.url("/"), "down_after": 1}]});
    let (first, second) = (
        world.monitor(targets.clone()).await,
        world.monitor(targets).await,
    );
    // Given the run at T0 + 60 records erp down and is slow to send the alert.
    world.emulator.add_fault(json!({"service": "sns", "operation": "Publish", "kind": "latency", "latency_ms": 1500, "on_calls": [1]}));
    // When the next minute's run starts while it is still sending.
    let later = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        run(&second, T0 + 120).await
    };
    let (a, b) = tokio::join!(run(&first, T0 + 60), later);
    let (a, b) = (a.unwrap(), b.unwrap());
    // Then the alert goes out once, and the second run says it left erp to the first.
    let downs = world
        .alerts()
        .iter()
        .filter(|a| a.event_type == "health.down")
        .count();
    assert_eq!(downs, 1, "first: {a}\nsecond: {b}");
    assert_eq!(b["left_to_another_run"], json!(["erp"]), "{b}");
}

#[tokio::test]
async fn a_scheduled_event_from_the_future_is_refused_and_does_not_stop_the_runs_after_it() {
    let world = World::new().await;
    let server = TestServer::http(Reply::error(503, "down")).await;
    let monitor = world
        .monitor(json!({"targets": [{"name": "erp", "http": server.url("/"), "down_after": 1}]}))
        .await;
    // Given an event whose `time` is a day ahead of the clock (forged, or a wrong clock).
    let refused = run_at_wall(&monitor, T0 + 86_400, T0).await.unwrap_err();
    assert!(!refused.retryable(), "bad input is not retried: {refused}");
    assert!(
        refused
            .to_string()
            .contains("AWS sends nothing from the future"),
        "{refused}"
    );
    // Then the next real minute runs and alerts as if it had never come.
    let next = run_at_wall(&monitor, T0 + 60, T0 + 60).await.unwrap();
    assert_eq!(next["status"], "checked", "{next}");
    assert_eq!(next["down"], json!(["erp"]));
    assert_eq!(world.alerts().len(), 1);
}

#[tokio::test]
async fn a_scheduled_event_not_from_eventbridge_is_refused_and_does_not_blind_the_runs_after_it() {
    // Found by an independent test: a `Scheduled Event` pasted into chat (source `chat.forged`,
    // 299 s ahead, inside the clock skew allowed) was run and recorded as the newest run, so the
    // next four real runs were skipped as late and a dead target was never alerted.
    let world = World::new().await;
    let monitor = world
        .monitor(json!({"targets": [{"name": "ldap", "tcp": format!("127.0.0.1:{}", closed_port()), "timeout": "500ms", "down_after": 2}]}))
        .await;
    let mut forged = ops_e2e::events::scheduled(T0 + 299);
    forged["source"] = json!("chat.forged");

    let refused = legacy_health_monitor::handler::function_handler(
        forged,
        &legacy_health_monitor::handler::Invocation { now: T0 },
        &monitor,
    )
    .await
    .unwrap_err();

    assert_eq!(
        refused.to_string(),
        "refused: a `Scheduled Event` from source `chat.forged` does not start a health run: only the EventBridge schedule (source `aws.events`) does; nothing was read or changed"
    );
    assert_eq!(
        world.emulator.calls("dynamodb", "PutItem")
            + world.emulator.calls("dynamodb", "TransactWriteItems"),
        0
    );
    for minute in 1..=2 {
        let run = run_at_wall(&monitor, T0 + minute * 60, T0 + minute * 60)
            .await
            .unwrap();
        assert_eq!(run["status"], "checked", "{run}");
    }
    let sent: Vec<String> = world.alerts().into_iter().map(|a| a.event_type).collect();
    assert_eq!(sent, ["health.down"], "down after two real runs");
}

#[tokio::test]
async fn a_target_failing_often_but_never_three_in_a_row_is_flapping_once_and_settles_once() {
    // Given billing, watched over 8 runs, flapping at half of them failed (4).
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(json!({"defaults": {"flap_window": 8, "flap_share": 50},
                        "targets": [{"name": "billing", "http": server.url("/health")}]}))
        .await;
    let run_as = |minute: u64, healthy: bool| {
        server.set(if healthy {
            Reply::healthy()
        } else {
            Reply::error(502, "bad gateway")
        });
        run(&monitor, T0 + 60 * minute)
    };

    // When it is up, then fails two runs, passes one, and so on, each run delivered twice.
    for (minute, healthy) in [true, true, false, false, true, false, false, true]
        .into_iter()
        .enumerate()
    {
        run_as(minute as u64, healthy).await.unwrap();
        run(&monitor, T0 + 60 * minute as u64).await.unwrap();
    }

    // Then it was never down, and one flapping alert went out when the 4th failure came.
    let sent = world.alerts();
    let kinds: Vec<&str> = sent.iter().map(|a| a.event_type.as_str()).collect();
    assert_eq!(kinds, ["health.flapping"]);
    assert_eq!(
        (sent[0].severity.as_str(), sent[0].subject.as_str()),
        (
            "warning",
            "[WARNING] billing is FLAPPING: 4 of its last 7 checks failed"
        )
    );
    let description = text(&sent[0].chat["content"]["description"]);
    assert!(
        description.contains("status: HTTP 502 (expected 200-299)"),
        "{description}"
    );
    // And status shows it.
    let status = command(&monitor, json!({"command": "status"}), T0 + 480)
        .await
        .unwrap();
    let billing = &status["targets"][0];
    assert_eq!(billing["health"], "up", "{status:#}");
    assert_eq!(
        billing["flapping_since"],
        ops_core::time::utc_text(T0 + 360)
    );
    assert_eq!(billing["failed_in_window"], "4 of the last 8 runs");
    assert_eq!(billing["flapping_rule"], "4 of 8 runs failed (50%)");

    // When it passes every check from then on.
    for minute in 8..20 {
        run_as(minute, true).await.unwrap();
    }

    // Then it settles once, when no more than 2 of the last 8 failed.
    let sent = world.alerts();
    let kinds: Vec<&str> = sent.iter().map(|a| a.event_type.as_str()).collect();
    assert_eq!(kinds, ["health.flapping", "health.settled"]);
    assert_eq!(sent[1].subject, "[INFO] billing stopped flapping");
    let status = command(&monitor, json!({"command": "status"}), T0 + 1200)
        .await
        .unwrap();
    assert_eq!(status["targets"][0]["flapping_since"], Value::Null);

    // When it goes down, status does not count its window.
    for minute in 20..23 {
        run_as(minute, false).await.unwrap();
    }
    let status = command(&monitor, json!({"command": "status"}), T0 + 1380)
        .await
        .unwrap();
    assert_eq!(
        (
            &status["targets"][0]["health"],
            &status["targets"][0]["failed_in_window"]
        ),
        (&json!("down"), &json!("not counted while down"))
    );
}

#[tokio::test]
async fn a_flapping_setting_out_of_range_is_a_named_error_and_the_other_targets_still_run() {
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(json!({"targets": [
            {"name": "billing", "http": server.url("/health"), "flap_window": 100},
            {"name": "ldap", "http": server.url("/health"), "flap_share": 101},
            {"name": "web", "http": server.url("/health"), "flap_share": 0}]}))
        .await;
    let answer = run(&monitor, T0).await.unwrap();
    let invalid = answer["invalid_entries"].to_string();
    assert!(
        invalid.contains("targets[0] (billing): field `flap_window`: `100` must be a whole number of runs from 4 to 64"),
        "{answer:#}"
    );
    assert!(
        invalid.contains("targets[1] (ldap): field `flap_share`: `101` must be a whole percent"),
        "{answer:#}"
    );
    assert_eq!(answer["checked"], 1, "{answer:#}");
}

fn kinds(sent: &[Published]) -> Vec<&str> {
    sent.iter().map(|a| a.event_type.as_str()).collect()
}

#[tokio::test]
async fn a_mute_from_chat_holds_back_an_outage_and_its_end_says_who_why_what_was_held_and_that_it_is_still_down(
) {
    // Given billing, up.
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(json!({"targets": [{"name": "billing", "http": server.url("/health")}]}))
        .await;
    run(&monitor, T0).await.unwrap();
    run(&monitor, T0 + 60).await.unwrap();

    // When alice mutes it for 10 minutes from chat, and it fails through the mute.
    let answer = command(
        &monitor,
        json!({"command": "mute", "args": {"target": "billing", "for": "10m", "reason": "db migration"}, "requested_by": "alice"}),
        T0 + 90,
    )
    .await
    .unwrap();
    assert_eq!(answer["status"], "muted", "{answer:#}");
    assert_eq!(answer["until"], ops_core::time::utc_text(T0 + 690));
    server.set(Reply::error(503, "maintenance"));
    for minute in 2..=11 {
        // Each run delivered twice.
        run(&monitor, T0 + 60 * minute).await.unwrap();
        run(&monitor, T0 + 60 * minute).await.unwrap();
    }

    // Then nothing is alerted, its checks and metrics went on, and status shows the mute.
    assert_eq!(kinds(&world.alerts()), Vec::<&str>::new());
    let ups: Vec<u64> = monitor
        .metrics
        .lines()
        .iter()
        .filter(|l| l["Target"] == "billing")
        .map(|l| l["Up"].as_u64().unwrap())
        .collect();
    assert_eq!(ups, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let status = command(&monitor, json!({"command": "status"}), T0 + 670)
        .await
        .unwrap();
    let billing = &status["targets"][0];
    assert_eq!(billing["health"], "down", "{status:#}");
    assert_eq!(
        (
            &billing["muted"]["by"],
            &billing["muted"]["reason"],
            &billing["muted"]["held_back"]
        ),
        (&json!("alice"), &json!("db migration"), &json!(1))
    );

    // When the first run after its end comes (twice).
    run(&monitor, T0 + 720).await.unwrap();
    run(&monitor, T0 + 720).await.unwrap();

    // Then one alert says the mute ended and billing is still down, with who, why and what.
    let sent = world.alerts();
    assert_eq!(kinds(&sent), ["health.unmuted"]);
    assert_eq!(
        sent[0].subject,
        "[CRITICAL] billing: mute ended, and it is DOWN"
    );
    let description = text(&sent[0].chat["content"]["description"]);
    for expected in [
        "was muted by alice since",
        "\"db migration\"; it ran until",
        "1 alert was held back:",
        "DOWN billing (GET ",
        "status: HTTP 503 (expected 200-299)",
        "billing is DOWN since",
    ] {
        assert!(
            description.contains(expected),
            "{expected:?} in {description}"
        );
    }
    assert_eq!(
        sent[0].chat["content"]["nextSteps"][0],
        "Look at the server: it is down now (when it went down is among what was held back, or before the mute)."
    );
    assert_eq!(
        command(&monitor, json!({"command": "status"}), T0 + 730)
            .await
            .unwrap()["targets"][0]["muted"],
        Value::Null
    );

    // When it comes back, its recovery is alerted as usual.
    server.set(Reply::healthy());
    run(&monitor, T0 + 780).await.unwrap();
    run(&monitor, T0 + 840).await.unwrap();
    assert_eq!(
        kinds(&world.alerts()),
        ["health.unmuted", "health.recovered"]
    );
}

#[tokio::test]
async fn unmute_ends_a_mute_at_the_next_run_and_bad_mute_commands_are_refused_changing_nothing() {
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(json!({"targets": [{"name": "billing", "http": server.url("/health")}]}))
        .await;
    let mute = |args: Value| json!({"command": "mute", "args": args, "requested_by": "alice"});
    let early = command(
        &monitor,
        mute(json!({"target": "billing", "for": "1h", "reason": "x"})),
        T0 - 30,
    )
    .await
    .unwrap_err();
    assert!(
        early.to_string().contains(
            "billing has not been checked yet; its first run (within a minute) records it"
        ),
        "{early}"
    );
    run(&monitor, T0).await.unwrap();
    for (payload, error) in [
        (
            mute(json!({"target": "payroll", "for": "1h", "reason": "x"})),
            "health target `payroll` not found",
        ),
        (
            mute(json!({"target": "billing", "for": "8d", "reason": "x"})),
            "command `mute`: argument `for`: `8d` is not a duration like 30m, 2h or 1h30m (1 minute to 168 hours)",
        ),
        (
            mute(json!({"target": "billing", "for": "1h", "reason": "  "})),
            "command `mute`: argument `reason` is empty",
        ),
        (
            mute(json!({"target": "billing", "for": "1h", "reason": "x".repeat(201)})),
            "command `mute`: argument `reason`: say why, in 1 to 200 printable characters",
        ),
        (
            mute(json!({"target": "billing", "for": "1h"})),
            "command `mute`: missing argument `reason` (why, shown in status and in the alert when it ends)",
        ),
        (
            mute(json!({"target": "billing", "for": 30, "reason": "x"})),
            "command `mute`: argument `for` must be text, like \"2h\"; got 30",
        ),
        (
            json!({"command": "unmute", "args": {"target": "billing"}}),
            "refused: billing is not muted and no maintenance window of it is open",
        ),
    ] {
        let refused = command(&monitor, payload.clone(), T0 + 30).await.unwrap_err();
        assert!(refused.to_string().contains(error), "{payload}: {refused}");
    }
    // A rehearsal says what it would do and does nothing.
    let mut rehearsal = mute(json!({"target": "billing", "for": "1h", "reason": "patching"}));
    rehearsal["dry_run"] = json!(true);
    let answer = command(&monitor, rehearsal, T0 + 30).await.unwrap();
    assert_eq!(answer["status"], "dry_run", "{answer:#}");
    let status = command(&monitor, json!({"command": "status"}), T0 + 30)
        .await
        .unwrap();
    assert_eq!(status["targets"][0]["muted"], Value::Null, "{status:#}");

    // Muted for an hour, then lifted by bob after a flap it held back.
    command(
        &monitor,
        mute(json!({"target": "billing", "for": "1h", "reason": "patching"})),
        T0 + 30,
    )
    .await
    .unwrap();
    server.set(Reply::error(500, "restarting"));
    for minute in 1..=3 {
        run(&monitor, T0 + 60 * minute).await.unwrap();
    }
    server.set(Reply::healthy());
    for minute in 4..=5 {
        run(&monitor, T0 + 60 * minute).await.unwrap();
    }
    let answer = command(
        &monitor,
        json!({"command": "unmute", "args": {"target": "billing"}, "requested_by": "bob"}),
        T0 + 330,
    )
    .await
    .unwrap();
    assert_eq!(
        (&answer["status"], &answer["held_back"]),
        (&json!("unmuted"), &json!(2)),
        "{answer:#}"
    );
    let again = command(
        &monitor,
        json!({"command": "unmute", "args": {"target": "billing"}, "requested_by": "bob"}),
        T0 + 340,
    )
    .await
    .unwrap_err();
    assert!(
        again.to_string().contains("already lifted by bob"),
        "{again}"
    );
    assert_eq!(kinds(&world.alerts()), Vec::<&str>::new());
    run(&monitor, T0 + 360).await.unwrap();
    let sent = world.alerts();
    assert_eq!(kinds(&sent), ["health.unmuted"]);
    assert_eq!(sent[0].subject, "[INFO] billing: mute ended, and it is up");
    let description = text(&sent[0].chat["content"]["description"]);
    for expected in [
        "bob lifted it at",
        "2 alerts were held back:",
        "DOWN billing",
        "RECOVERED billing after 2 minutes",
    ] {
        assert!(
            description.contains(expected),
            "{expected:?} in {description}"
        );
    }
}

#[tokio::test]
async fn a_maintenance_window_in_the_targets_document_mutes_its_target_and_its_end_is_alerted() {
    // T0 is 11:06:40 UTC: a daily window from 11:10 for 5 minutes.
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(json!({"targets": [
            {"name": "billing", "http": server.url("/health"),
             "maintenance": [{"days": "daily", "start_utc": "11:10", "for": "5m", "reason": "nightly restart"}]},
            {"name": "ledger", "http": server.url("/ledger"), "maintenance": [{"start_utc": "25:00", "for": "1h", "reason": "x"}]}]}))
        .await;
    let status = command(&monitor, json!({"command": "status"}), T0)
        .await
        .unwrap();
    assert_eq!(
        status["targets"][0]["maintenance"],
        json!(["daily 11:10 UTC for 5 minutes: nightly restart"])
    );
    assert_eq!(
        status["targets"][0]["next_maintenance"],
        format!(
            "{} to {}",
            ops_core::time::utc_text(T0 + 200),
            ops_core::time::utc_text(T0 + 500)
        )
    );
    assert_eq!(
        status["invalid_entries"],
        json!(["HEALTH_TARGETS: targets[1] (ledger): field `maintenance`: window 1: `start_utc`: `\"25:00\"` is not a time of day in UTC like \"02:00\""])
    );
    // Up before the window; it restarts (fails) inside it and is up again before its end.
    for minute in 0..=2 {
        run(&monitor, T0 + 60 * minute).await.unwrap();
    }
    server.set(Reply::error(503, "restarting"));
    for minute in 4..=6 {
        run(&monitor, T0 + 60 * minute).await.unwrap();
    }
    server.set(Reply::healthy());
    for minute in 7..=8 {
        run(&monitor, T0 + 60 * minute).await.unwrap();
    }
    let config_alerts = |sent: &[Published]| {
        sent.iter()
            .filter(|a| !a.event_type.starts_with("health.config"))
            .map(|a| a.event_type.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(config_alerts(&world.alerts()), Vec::<String>::new());
    run(&monitor, T0 + 540).await.unwrap();
    let sent = world.alerts();
    assert_eq!(config_alerts(&sent), ["health.unmuted"]);
    let ended = sent
        .iter()
        .find(|a| a.event_type == "health.unmuted")
        .unwrap();
    assert_eq!(ended.subject, "[INFO] billing: mute ended, and it is up");
    let description = text(&ended.chat["content"]["description"]);
    assert!(
        description.contains("was muted by maintenance window (HEALTH_TARGETS) since")
            && description.contains("\"nightly restart\"")
            && description.contains("2 alerts were held back"),
        "{description}"
    );
}

#[tokio::test]
async fn a_mute_sent_while_a_run_owns_the_targets_alerts_is_answered_with_when_to_retry() {
    // Given a run at T0 that recorded erp down and owns its alert until its lease ends (T0 + 900,
    // no deadline known), but could neither send it (Publish failed) nor give up its claim (the
    // write after it failed): as if it were still sending.
    let world = World::new().await;
    let server = TestServer::http(Reply::error(503, "down")).await;
    let monitor = one_attempt(
        &world,
        json!({"targets": [{"name": "erp", "http": server.url("/"), "down_after": 1}]}),
    )
    .await;
    world.emulator.add_fault(
        json!({"service": "sns", "operation": "Publish", "kind": "error500", "on_calls": [1]}),
    );
    world.emulator.add_fault(json!({"service": "dynamodb", "operation": "TransactWriteItems", "kind": "error500", "on_calls": [2]}));
    run(&monitor, T0).await.unwrap_err();
    let mute = json!({"command": "mute", "args": {"target": "erp", "for": "1h", "reason": "fixing it"}, "requested_by": "alice"});

    // When alice mutes erp meanwhile, then it is refused with when to send it again.
    let refused = command(&monitor, mute.clone(), T0 + 1)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        refused,
        format!(
            "refused: a health run is sending erp's alerts until {} at the latest; send the command again after that",
            ops_core::time::utc_text(T0 + LEASE_WITHOUT_DEADLINE)
        )
    );

    // When she sends it again after that, it is taken, and says it holds the unsent down alert.
    let answer = command(&monitor, mute, T0 + LEASE_WITHOUT_DEADLINE + 1)
        .await
        .unwrap();
    assert_eq!(answer["status"], "muted");
    assert_eq!(answer["held_back"], 1);
    assert!(
        answer["unsent_alerts_held"].as_str().is_some_and(
            |s| s.starts_with("1 alert(s) about erp were recorded and not yet sent (down")
        ),
        "{answer:#}"
    );
    assert_eq!(kinds(&world.alerts()), Vec::<&str>::new());
}

#[tokio::test]
async fn unmute_in_a_window_no_run_has_muted_yet_skips_the_window_and_its_alerts_flow() {
    // T0 is 11:06:40 UTC: a daily window from 11:08 for 30 minutes; bob unmutes at 11:08:20,
    // before the 11:09 run.
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(
            json!({"targets": [{"name": "billing", "http": server.url("/"), "down_after": 1,
            "maintenance": [{"start_utc": "11:08", "for": "30m", "reason": "nightly restart"}]}]}),
        )
        .await;
    run(&monitor, T0).await.unwrap();
    run(&monitor, T0 + 60).await.unwrap();
    let answer = command(
        &monitor,
        json!({"command": "unmute", "args": {"target": "billing"}, "requested_by": "bob"}),
        T0 + 100,
    )
    .await
    .unwrap();
    assert_eq!(
        answer["lifted"],
        "the maintenance window open now (no run had muted it yet)"
    );
    server.set(Reply::error(503, "broken"));
    run(&monitor, T0 + 120).await.unwrap();
    assert_eq!(kinds(&world.alerts()), ["health.down"]);
    let status = command(&monitor, json!({"command": "status"}), T0 + 130)
        .await
        .unwrap();
    assert_eq!(status["targets"][0]["muted"], Value::Null, "{status:#}");
}

#[tokio::test]
async fn a_window_removed_from_the_document_while_its_mute_is_open_ends_the_mute_and_says_why() {
    // T0 is 11:06:40 UTC: a window from 11:08 for 2 hours, begun by the 11:08:40 run.
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let with_window = world
        .monitor(
            json!({"targets": [{"name": "erp", "http": server.url("/"), "down_after": 1,
            "maintenance": [{"start_utc": "11:08", "for": "2h", "reason": "dc move"}]}]}),
        )
        .await;
    run(&with_window, T0).await.unwrap();
    run(&with_window, T0 + 120).await.unwrap();
    let status = command(&with_window, json!({"command": "status"}), T0 + 130)
        .await
        .unwrap();
    assert_eq!(
        status["targets"][0]["muted"]["note"],
        format!(
            "checks and metrics go on; alerts are held back until its maintenance window ends at {}",
            ops_core::time::utc_text(T0 + 80 + 7200)
        )
    );
    // The move is called off: the window is deleted; then erp fails.
    let without = world
        .monitor(json!({"targets": [{"name": "erp", "http": server.url("/"), "down_after": 1}]}))
        .await;
    server.set(Reply::error(503, "broken"));
    run(&without, T0 + 180).await.unwrap();
    let sent = world.alerts();
    assert_eq!(kinds(&sent), ["health.unmuted", "health.down"]);
    let description = text(&sent[0].chat["content"]["description"]);
    assert!(
        description.contains(
            "its window was removed from the targets document or shortened, so it ended at"
        ),
        "{description}"
    );
}

#[tokio::test]
async fn a_mute_that_ends_while_its_target_cannot_be_checked_in_time_is_still_alerted() {
    let world = World::new().await;
    let server = TestServer::http(Reply::healthy()).await;
    let monitor = world
        .monitor(json!({"targets": [{"name": "erp", "http": server.url("/"), "timeout": "5s", "down_after": 1}]}))
        .await;
    run(&monitor, T0).await.unwrap();
    command(
        &monitor,
        json!({"command": "mute", "args": {"target": "erp", "for": "2m", "reason": "patching"}, "requested_by": "alice"}),
        T0 + 10,
    )
    .await
    .unwrap();
    server.set(Reply::error(503, "broken"));
    run(&monitor, T0 + 60).await.unwrap();
    assert_eq!(kinds(&world.alerts()), Vec::<&str>::new());
    // After the mute's end, a run whose deadline leaves no room for erp's 5 s timeout.
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 2_000;
    run_within(&monitor, T0 + 180, deadline_ms).await.unwrap();
    let sent = world.alerts();
    assert_eq!(kinds(&sent), ["health.unmuted", "health.not-checked"]);
    assert_eq!(
        sent[0].subject,
        "[CRITICAL] erp: mute ended, and it is DOWN"
    );
}
