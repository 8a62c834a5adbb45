//! Observe: the targets from every configured source, and their stored states.

use std::collections::BTreeMap;

use ops_core::aws::dynamodb::{Versioned, VersionedDocuments};
use ops_core::aws::ec2::Ec2;
use ops_core::aws::ssm::Parameters;
use ops_core::Result;
use tracing::warn;

use crate::config::MonitorConfig;
use crate::decide::TargetState;
use crate::targets::{self, Target, TargetError, CHECK_TAG};

/// The key under which the list of invalid entries last alerted is kept.
pub const CONFIG_KEY: &str = "#config";

/// The AWS adapters the monitor reads and writes through.
pub struct Clients {
    /// Targets documents in Parameter Store.
    pub parameters: Parameters,
    /// EC2 instances to discover.
    pub ec2: Ec2,
    /// Target states.
    pub states: VersionedDocuments,
}

/// The targets to check, and the entries that could not be used.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Valid targets, names unique.
    pub targets: Vec<Target>,
    /// Invalid entries, each naming its source, entry and field.
    pub errors: Vec<TargetError>,
}

/// Read every configured source. A source that cannot be read fails the run (retrying helps);
/// an entry that cannot be used is an error in [`Loaded::errors`] and the others still run.
pub async fn targets(config: &MonitorConfig, clients: &Clients) -> Result<Loaded> {
    let mut all = Vec::new();
    let mut errors = Vec::new();
    if let Some(text) = &config.inline {
        let (found, bad) = targets::parse_document("HEALTH_TARGETS", text);
        all.extend(found);
        errors.extend(bad);
    }
    if let Some(path) = &config.parameter_path {
        for (name, text) in clients.parameters.under_path(path).await? {
            let (found, bad) = targets::parse_document(&format!("SSM {name}"), &text);
            all.extend(found);
            errors.extend(bad);
        }
    }
    if config.discover_ec2 {
        for instance in clients.ec2.running_with_tag(CHECK_TAG).await? {
            let template = instance.tags.get(CHECK_TAG).cloned().unwrap_or_default();
            match targets::from_instance(
                &instance.id,
                instance.tags.get("Name").map(String::as_str),
                instance.private_ip.as_deref(),
                &template,
            ) {
                Ok(target) => all.push(target),
                Err(error) => errors.push(error),
            }
        }
    }
    let (targets, duplicates) = targets::dedupe(all);
    errors.extend(duplicates);
    Ok(Loaded { targets, errors })
}

/// A target's stored state and its version; a new state for a target never seen (or whose
/// stored document this version cannot read, which is logged and then overwritten).
pub fn state_of(
    stored: &BTreeMap<String, Versioned>,
    name: &str,
    now: u64,
) -> (TargetState, Option<u64>) {
    match stored.get(name) {
        None => (TargetState::new(now), None),
        Some(versioned) => match serde_json::from_str(&versioned.document) {
            Ok(state) => (state, Some(versioned.version)),
            Err(error) => {
                warn!(target = name, %error, "stored state unreadable; starting it afresh");
                (TargetState::new(now), Some(versioned.version))
            }
        },
    }
}
