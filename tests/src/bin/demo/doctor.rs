//! Chapter: `doctor`, what `make doctor` asks each deployed function, here through deploy-trigger's
//! real binary with a role in the emulator that holds the template's grants: every duty allowed,
//! then one grant taken away and the table naming what is now denied.

use std::time::Duration;

use ops_e2e::fixtures;
use ops_e2e::lambda::built_binary;
use ops_e2e::{AlertInbox, Emulator, LocalLambda};
use serde_json::{json, Value};

use crate::show::{deployed, list, print_chat_line, text};

/// The role's name, as CloudFormation would make it for the stack.
const ROLE: &str = "opsstack-DeployTriggerFunctionRole";

/// Run the chapter against the seeded account.
pub async fn chapter(emulator: &Emulator, topic: &str, inbox: &AlertInbox) {
    println!("\n-- Chapter: doctor (can each function do its job here? it changes nothing)");
    let iam = aws_sdk_iam::Client::new(&emulator.sdk_config().await);
    let policy = fixtures::deploy_trigger_policy("prod", topic);
    let role = fixtures::function_role(&iam, ROLE, &policy).await;
    let mut env = emulator.function_env();
    env.push(("ALERT_TOPIC_ARN".into(), topic.to_string()));
    env.push(("ECS_CLUSTERS".into(), "prod".into()));
    env.push(("OPS_ROLE_ARN".into(), role.clone()));
    let function = LocalLambda::start(
        &built_binary("deploy-trigger"),
        &deployed("deploy-trigger"),
        &env,
    );
    println!("deploy-trigger runs as {role}, which holds the template's grants.");

    let doctor = json!({"command": "doctor", "requested_by": "make doctor"});
    print_chat_line("deploy-trigger", &doctor);
    let answer = function.invoke(doctor.clone()).expect("doctor answers");
    print_table(&answer);
    let mut doctor_alert = None;
    for _ in 0..5 {
        let alerts = inbox.receive(1, Duration::from_secs(5)).await;
        doctor_alert = alerts
            .into_iter()
            .find(|a| a.attributes.get("event_type").map(String::as_str) == Some("doctor"));
        if doctor_alert.is_some() {
            break;
        }
    }
    match &doctor_alert {
        Some(alert) => println!(
            "   the alert path works: {}",
            text(&alert.chat["content"]["title"])
        ),
        None => println!("   no doctor alert arrived on the ops queue"),
    }

    println!("\nNow a grant is taken away from the role (statement ReadAndDeployServicesInManagedClusters):");
    let without = fixtures::without_statement(&policy, "ReadAndDeployServicesInManagedClusters");
    fixtures::put_function_policy(&iam, ROLE, &without).await;
    let answer = function.invoke(doctor).expect("doctor answers");
    print_table(&answer);
}

fn print_table(answer: &Value) {
    let summary = &answer["summary"];
    println!(
        "   ok: {} ({} ok, {} undetermined, {} problems, {} denied)",
        answer["ok"], summary["ok"], summary["undetermined"], summary["problem"], summary["denied"]
    );
    for row in list(&answer["table"]) {
        println!("   | {}", text(&row));
    }
}
