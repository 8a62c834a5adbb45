//! `make demo`: a guided tour against the local AWS emulator.
//!
//! Starts a fresh emulator, seeds the demo account, prints what is in it, shows an alert travelling
//! from ops-core through SNS to the ops queue as chat and email would see it, and stops the
//! emulator. Each function adds its own chapter here, run through its real binary.

mod alert_path;
mod bastion_eip_associator;
mod blue_green_swapper;
mod cpu_alarm_scaler;
mod deploy_trigger;
mod doctor;
mod ecs_native;
mod inventory;
mod legacy_health_monitor;
mod show;

use ops_e2e::{AlertInbox, Emulator};

use crate::show::text;

// Two workers: the health chapter serves real HTTP from this process while the function under
// test calls it.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("== Ops Lambdas demo: everything runs against a local AWS emulator; no AWS account is used.\n");
    let emulator = Emulator::start();
    println!(
        "Emulator ready at {} (log: {})\n",
        emulator.endpoint,
        emulator.log_path.display()
    );

    let inventory = emulator.seed_demo();
    inventory::print_inventory(&inventory);

    let config = emulator.sdk_config().await;
    let topic = text(&inventory["alert_topic_arn"]);
    let inbox = AlertInbox::new(&config, text(&inventory["alert_queue_url"]));
    // `make doctor LOCAL=1`: only the doctor chapter.
    if std::env::args().nth(1).as_deref() == Some("doctor") {
        let all_ok =
            doctor::chapter(&emulator, &topic, &inbox, &inventory["blue_green_apps"][0]).await;
        drop(emulator);
        println!("\n== Done. The emulator is stopped; nothing was left running.");
        // As `make doctor` against a real account: exit 1 unless every row was ok.
        std::process::exit(if all_ok { 0 } else { 1 });
    }
    alert_path::chapter_alert_path(&emulator, &config, &topic, &inbox).await;
    deploy_trigger::chapter(&emulator, &topic, &inbox).await;
    blue_green_swapper::chapter(
        &emulator,
        &config,
        &topic,
        &inbox,
        &inventory["blue_green_apps"][0],
    )
    .await;
    ecs_native::chapter(
        &emulator,
        &config,
        &topic,
        &inbox,
        &ops_e2e::blue_green::App(inventory["blue_green_apps"][0].clone()).live_route(),
    )
    .await;
    cpu_alarm_scaler::chapter(&emulator, &config, &topic, &inbox).await;
    legacy_health_monitor::chapter(&emulator, &config, &topic, &inbox).await;
    bastion_eip_associator::chapter(&emulator, &config, &topic, &inbox).await;
    doctor::chapter(&emulator, &topic, &inbox, &inventory["blue_green_apps"][0]).await;

    drop(emulator);
    println!("\n== Done. The emulator is stopped; nothing was left running.");
}
