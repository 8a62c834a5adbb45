//! Print the demo account as the seed read it back.

use serde_json::Value;

use crate::show::{list, text};

/// Print services, listeners, groups, alarms, the EIP pool and where alerts go.
pub fn print_inventory(inventory: &Value) {
    println!("-- The demo account");
    println!("ECS cluster `{}`:", text(&inventory["cluster"]));
    println!(
        "  {:<12} {:>7}  {:<16} {:<28} task definition",
        "service", "desired", "launch type", "network"
    );
    for service in list(&inventory["services"]) {
        let definition = text(&service["task_definition"]);
        let short = definition
            .rsplit('/')
            .next()
            .unwrap_or(&definition)
            .to_string();
        let subnets = list(&service["subnets"]).len();
        let network = if subnets == 0 {
            "the instance's (bridge)".to_string()
        } else {
            format!("awsvpc, {subnets} subnets")
        };
        println!(
            "  {:<12} {:>7}  {:<16} {network:<28} {short}",
            text(&service["name"]),
            text(&service["desired"]),
            text(&service["launch_type"]),
        );
    }
    let groups: Vec<(String, String)> = list(&inventory["target_groups"])
        .iter()
        .map(|g| (text(&g["arn"]), text(&g["name"])))
        .collect();
    println!("ALB `shop-alb` listeners:");
    for listener in list(&inventory["listeners"]) {
        let target = text(&listener["forwards_to"]);
        let name = groups
            .iter()
            .find(|(arn, _)| *arn == target)
            .map_or(target.clone(), |(_, n)| n.clone());
        println!(
            "  port {:<5} forwards to target group `{name}`",
            text(&listener["port"])
        );
    }
    println!("Auto Scaling groups (min / desired / max):");
    for group in list(&inventory["auto_scaling_groups"]) {
        println!(
            "  {:<8} {} / {} / {}",
            text(&group["name"]),
            group["min"],
            group["desired"],
            group["max"]
        );
    }
    println!("CloudWatch alarms:");
    for alarm in list(&inventory["alarms"]) {
        let operator = if text(&alarm["operator"]).starts_with("Greater") {
            ">"
        } else {
            "<"
        };
        println!(
            "  {:<17} {} {operator} {}  state {}",
            text(&alarm["name"]),
            text(&alarm["metric"]),
            alarm["threshold"],
            text(&alarm["state"])
        );
    }
    println!("Elastic IP pool:");
    for address in list(&inventory["eip_pool"]) {
        println!(
            "  {:<15} {}  pool `{}`",
            text(&address["public_ip"]),
            text(&address["allocation_id"]),
            text(&address["pool"])
        );
    }
    println!(
        "Alerts go to SNS topic {}",
        text(&inventory["alert_topic_arn"])
    );
    println!(
        "  and are read back from SQS queue {}\n",
        text(&inventory["alert_queue_url"])
    );
}
