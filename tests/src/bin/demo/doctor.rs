//! Chapter: `doctor`, what `make doctor` asks each deployed function, here through the five real
//! binaries. Each runs as a role made from sam/template.yaml's own grants for this account (the
//! emulator's `template_grants`), so an `ok` proves the template grants what the code calls. Then
//! one grant is taken away and the table names what is now denied.

use ops_e2e::doctor::{doctor_all, doctor_command, named_rows};
use ops_e2e::fixtures;
use ops_e2e::{AlertInbox, Emulator};
use serde_json::Value;

use crate::show::print_chat_line;

/// Run the chapter against the seeded account; whether every row of the first table was ok; `shop` is the seeded blue/green app.
pub async fn chapter(emulator: &Emulator, topic: &str, inbox: &AlertInbox, shop: &Value) -> bool {
    println!("\n-- Chapter: doctor (can each function do its job here? it changes nothing)");
    println!("Each function runs as a role holding exactly what sam/template.yaml grants it for this account.");
    print_chat_line("deploy-trigger", &doctor_command());
    let (examined, roles) = doctor_all(emulator, topic, shop).await;
    let rows: Vec<(String, String)> = examined
        .iter()
        .flat_map(|e| named_rows(&e.name, &e.answer))
        .collect();
    print_rows(&rows);
    let all_ok = rows.iter().all(|(_, row)| row.starts_with("ok"));
    let alerts = inbox.receive(5, std::time::Duration::from_secs(10)).await;
    let doctors = alerts
        .iter()
        .filter(|a| a.attributes.get("event_type").map(String::as_str) == Some("doctor"))
        .count();
    println!("   {doctors} doctor alert(s) reached the ops queue: the alert path works.");

    println!("\nNow a grant is taken away from deploy-trigger's role (statement ReadAndDeployServicesInManagedClusters):");
    let iam = aws_sdk_iam::Client::new(&emulator.sdk_config().await);
    let role = &roles["DeployTriggerFunction"];
    let without =
        fixtures::without_statement(&role.document, "ReadAndDeployServicesInManagedClusters");
    fixtures::put_function_policy(&iam, &role.name, &without).await;
    let deploy_trigger = &examined[0];
    let answer = deploy_trigger
        .function
        .invoke(doctor_command())
        .expect("doctor answers");
    let denied: Vec<_> = named_rows(&deploy_trigger.name, &answer)
        .into_iter()
        .filter(|(_, row)| row.starts_with("DENIED"))
        .collect();
    print_rows(&denied);
    all_ok
}

/// One table over every function, worst first, as `make doctor` prints it.
fn print_rows(rows: &[(String, String)]) {
    let rank = |row: &str| {
        ["DENIED", "PROBLEM", "undetermined", "ok"]
            .iter()
            .position(|v| row.starts_with(v))
            .unwrap_or(0)
    };
    let mut sorted: Vec<&(String, String)> = rows.iter().collect();
    sorted.sort_by_key(|(function, row)| (rank(row), function.clone()));
    let not_ok = rows
        .iter()
        .filter(|(_, row)| !row.starts_with("ok"))
        .count();
    println!(
        "   {} checks, {} ok, {not_ok} to look at",
        rows.len(),
        rows.len() - not_ok
    );
    for (function, row) in sorted {
        println!("   | {function:<30} {row}");
    }
}
