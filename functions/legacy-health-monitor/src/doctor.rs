//! `doctor`: what legacy-health-monitor will check in this account, and whether it can.
//!
//! It reads its targets as a run does, source by source (the inline document, the documents under
//! its SSM path, the running EC2 instances tagged `ops:health-check`), naming every entry it cannot
//! use, and reads the stored states of those targets from its DynamoDB table. Then it lists the
//! duties a run or a chat command brings: read the documents, find the instances, read and write
//! the targets' states, and alert. Metrics are Embedded Metric Format log lines: no AWS call, no
//! duty. Nothing is changed, and no target is checked (the `check` command does that).
//!
//! A targets document may hold secrets (request headers): only target names and what is checked
//! (method and URL, or host and port) are shown, never a document's text.

use ops_core::doctor::{arn_beside, Area, Duty, Examination};

use crate::config::MonitorConfig;
use crate::observe::{self, keys_read, legacy_keys_read, Clients};
use crate::targets::{self, Target, TargetError, CHECK_TAG};

/// The attributes of every item the monitor writes (see `ops_core::aws::dynamodb`).
const ITEM_ATTRIBUTES: &[&str] = &["key", "version", "document"];

/// Everything `doctor` checks before IAM and the alert path are asked.
pub async fn examine(config: &MonitorConfig, clients: &Clients) -> Examination {
    let topic = &config.common.alert_topic_arn;
    let mut exam = Examination::of(
        &config.common,
        "alerts targets going down and recovering, and unusable entries",
    );
    let or_unset = |value: Option<&str>| value.unwrap_or("(not set)").to_string();
    exam.setting("HEALTH_STATE_TABLE", config.state_table.clone());
    exam.setting(
        "HEALTH_TARGETS",
        match &config.inline {
            Some(text) => format!("an inline targets document ({} bytes)", text.len()),
            None => "(not set)".to_string(),
        },
    );
    exam.setting(
        "HEALTH_CONFIG_PATH",
        or_unset(config.parameter_path.as_deref()),
    );
    exam.setting("HEALTH_DISCOVER_EC2", config.discover_ec2.to_string());
    exam.setting("HEALTH_CONCURRENCY", config.concurrency.to_string());
    exam.setting("HEALTH_COLLATE_ABOVE", config.collate_above.to_string());
    exam.setting(
        "HEALTH_METRICS_NAMESPACE",
        format!(
            "{} (Embedded Metric Format log lines: no CloudWatch API call)",
            config.namespace
        ),
    );

    let mut all: Vec<Target> = Vec::new();
    if let Some(text) = &config.inline {
        let (found, bad) = targets::parse_document("HEALTH_TARGETS", text);
        exam.found("inline targets document (HEALTH_TARGETS)", listing(&found));
        for error in bad {
            exam.config_problem("HEALTH_TARGETS", error.to_string());
        }
        all.extend(found);
    }
    if let Some(path) = &config.parameter_path {
        all.extend(examine_path(config, clients, path, &mut exam).await);
    }
    if config.discover_ec2 {
        all.extend(examine_instances(clients, &mut exam).await);
    }
    let (all, duplicates) = targets::dedupe(all);
    for error in duplicates {
        unusable(&mut exam, &error);
    }
    if all.is_empty() {
        exam.undetermined(
            Area::Resource,
            "targets",
            "no usable target in any source: a run checks nothing",
        );
    }

    let names: Vec<String> = all.iter().map(|t| t.name.clone()).collect();
    let written = keys_read(&names);
    let mut read = written.clone();
    let table = format!("DynamoDB table {}", config.state_table);
    match observe::read_states(&clients.states, &names).await {
        Ok(stored) => {
            if stored.migrating {
                // Until `meta#config` exists, a run also reads the old layout's keys.
                read.extend(legacy_keys_read(&names));
            }
            exam.found(
                table,
                format!(
                    "readable; {} of {} target(s) have a stored state{}",
                    stored.targets.len(),
                    all.len(),
                    if stored.migrating {
                        " (in the old key layout: the next run moves them)"
                    } else {
                        ""
                    }
                ),
            )
        }
        Err(error) => exam.missing(table, error.to_string()),
    }
    for duty in state_duties(topic, &config.state_table, &read, &written) {
        exam.duty(duty);
    }
    exam
}

/// The documents under the SSM path, each parsed as a run parses it; the targets they give.
async fn examine_path(
    config: &MonitorConfig,
    clients: &Clients,
    path: &str,
    exam: &mut Examination,
) -> Vec<Target> {
    exam.duty(
        Duty::new(
            "ssm:GetParametersByPath",
            arn_beside(
                &config.common.alert_topic_arn,
                "ssm",
                &format!("parameter{path}"),
            ),
            format!("reads the targets documents under {path}, recursively and decrypted"),
        )
        .with_context("ssm:Recursive", "true"),
    );
    let subject = format!("SSM path {path}");
    let documents = match clients.parameters.under_path(path).await {
        Ok(documents) => documents,
        Err(error) => {
            exam.missing(subject, error.to_string());
            return Vec::new();
        }
    };
    exam.found(subject, format!("{} document(s)", documents.len()));
    let mut all = Vec::new();
    for (name, text) in documents {
        let (found, bad) = targets::parse_document(&format!("SSM {name}"), &text);
        exam.found(format!("SSM document {name}"), listing(&found));
        for error in bad {
            unusable(exam, &error);
        }
        all.extend(found);
    }
    all
}

/// The running instances tagged with a check, each read as a run reads it; the targets they give.
async fn examine_instances(clients: &Clients, exam: &mut Examination) -> Vec<Target> {
    exam.duty(Duty::new(
        "ec2:DescribeInstances",
        "*",
        format!("finds running instances tagged `{CHECK_TAG}`"),
    ));
    let subject = format!("EC2 instances tagged {CHECK_TAG}");
    let instances = match clients.ec2.running_with_tag(CHECK_TAG).await {
        Ok(instances) => instances,
        Err(error) => {
            exam.missing(subject, error.to_string());
            return Vec::new();
        }
    };
    exam.found(subject, format!("{} running", instances.len()));
    let mut all = Vec::new();
    for instance in instances {
        let template = instance.tags.get(CHECK_TAG).cloned().unwrap_or_default();
        match targets::from_instance(
            &instance.id,
            instance.tags.get("Name").map(String::as_str),
            instance.private_ip.as_deref(),
            &template,
        ) {
            Ok(target) => {
                exam.found(
                    format!("instance {}", instance.id),
                    format!("target {}: {}", target.name, target.describe()),
                );
                all.push(target);
            }
            Err(error) => unusable(exam, &error),
        }
    }
    all
}

/// The monitor's duties on its state table: read the items under `read` (the targets'
/// `target#<name>`, the bookkeeping `meta#config`, and the old layout's keys while it is still
/// read) and write those under `written`, one item per key.
pub fn state_duties(topic: &str, table: &str, read: &[String], written: &[String]) -> Vec<Duty> {
    let arn = table_arn(topic, table);
    let read: Vec<&str> = read.iter().map(String::as_str).collect();
    let written: Vec<&str> = written.iter().map(String::as_str).collect();
    vec![
        Duty::new(
            "dynamodb:BatchGetItem",
            &arn,
            "reads the targets' states, in each run and for status",
        )
        .with_context_list("dynamodb:LeadingKeys", &read),
        Duty::new(
            "dynamodb:PutItem",
            &arn,
            "stores each target's state, only if no other run wrote it since",
        )
        .with_context_list("dynamodb:LeadingKeys", &written)
        .with_context_list("dynamodb:Attributes", ITEM_ATTRIBUTES),
    ]
}

/// The table's ARN: `HEALTH_STATE_TABLE` is its name (or already its ARN).
pub fn table_arn(topic: &str, table: &str) -> String {
    if table.starts_with("arn:") {
        table.to_string()
    } else {
        arn_beside(topic, "dynamodb", &format!("table/{table}"))
    }
}

/// An entry a run skips, named as the run names it.
fn unusable(exam: &mut Examination, error: &TargetError) {
    exam.missing(
        format!("{}: {}", error.origin, error.entry),
        error.reason.clone(),
    );
}

/// How many targets, and which (the first ten).
fn listing(found: &[Target]) -> String {
    const SHOWN: usize = 10;
    let names: Vec<&str> = found.iter().take(SHOWN).map(|t| t.name.as_str()).collect();
    let more = found.len().saturating_sub(SHOWN);
    match (found.len(), more) {
        (0, _) => "no target".to_string(),
        (count, 0) => format!("{count} target(s): {}", names.join(", ")),
        (count, more) => format!("{count} target(s): {} and {more} more", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ops-alerts";

    #[test]
    fn the_state_table_is_named_beside_the_topic_unless_it_is_an_arn() {
        assert_eq!(
            table_arn(TOPIC, "health-state"),
            "arn:aws:dynamodb:eu-west-1:123456789012:table/health-state"
        );
        let arn = "arn:aws:dynamodb:eu-west-1:210987654321:table/shared-health";
        assert_eq!(table_arn(TOPIC, arn), arn);
    }

    #[test]
    fn the_state_duties_carry_every_key_a_run_reads_and_writes() {
        let names = vec!["billing".to_string(), "#config".to_string()];
        let written = keys_read(&names);
        let mut read = written.clone();
        read.extend(legacy_keys_read(&names));
        let duties = state_duties(TOPIC, "health-state", &read, &written);
        let actions: Vec<&str> = duties.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(actions, ["dynamodb:BatchGetItem", "dynamodb:PutItem"]);
        for duty in &duties {
            assert_eq!(duty.context[0].key, "dynamodb:LeadingKeys");
        }
        assert_eq!(
            duties[0].context[0].values,
            [
                "target#billing",
                "target##config",
                "meta#config",
                "billing",
                "#config"
            ]
        );
        assert_eq!(
            duties[1].context[0].values,
            ["target#billing", "target##config", "meta#config"]
        );
        assert_eq!(duties[1].context[1].values, ["key", "version", "document"]);
    }

    #[test]
    fn a_listing_names_the_first_ten_targets_and_never_a_document_s_text() {
        let document = serde_json::json!({"targets": (0..12).map(|i| serde_json::json!({
            "name": format!("t{i}"), "http": "https://h.internal/health", "headers": {"X-Token": "s3cret"}
        })).collect::<Vec<_>>()})
        .to_string();
        let (found, bad) = targets::parse_document("HEALTH_TARGETS", &document);
        assert!(bad.is_empty(), "{bad:?}");
        let text = listing(&found);
        assert!(!text.contains("s3cret"));
        assert_eq!(
            text,
            "12 target(s): t0, t1, t2, t3, t4, t5, t6, t7, t8, t9 and 2 more"
        );
        assert_eq!(listing(&found[..1]), "1 target(s): t0");
        assert_eq!(listing(&[]), "no target");
    }
}
