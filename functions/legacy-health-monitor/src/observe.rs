//! Observe: the targets from every configured source, and their stored states.
//!
//! **Key layout.** Target names are user data, so they never share a namespace with the monitor's
//! own bookkeeping: a target's state is the item `target#<name>`, and the bookkeeping (the invalid
//! entries last alerted, the targets a run could not check in time) is the item `meta#config`.
//! No name can make one collide with the other, so `#config` or `meta#config` are ordinary names.
//!
//! **The old layout** (targets under their bare name, bookkeeping under `#config`) is read once:
//! while `meta#config` does not exist or does not say `migrated`, a run also reads the old keys of
//! the targets with no new item and carries each old state over (written under the new key only
//! if nobody wrote it first), and then marks `meta#config` migrated (once every target's state is
//! stored), after which old keys are never read again. A name that starts with `target#` or
//! `meta#`, or is `#config`, is not looked up under the old layout: its old key would be ambiguous
//! with a new one (and a target called `#config` never had a state, as every run failed). Old
//! items are left in the table, unused; they may be deleted.

use std::collections::BTreeMap;

use ops_core::aws::dynamodb::VersionedDocuments;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::ssm::Parameters;
use ops_core::Result;
use tracing::warn;

use crate::config::MonitorConfig;
use crate::decide::TargetState;
use crate::targets::{self, Target, TargetError, CHECK_TAG};

/// The bookkeeping item: the invalid entries last alerted, the targets not checked in time.
pub const META_KEY: &str = "meta#config";
/// The bookkeeping item's key in the old layout.
pub const LEGACY_CONFIG_KEY: &str = "#config";
/// The prefix of a target's item.
pub const TARGET_PREFIX: &str = "target#";

/// The key of a target's state item.
pub fn state_key(name: &str) -> String {
    format!("{TARGET_PREFIX}{name}")
}

/// The key a target's state had in the old layout, unless it would be ambiguous with a new key.
pub fn legacy_key(name: &str) -> Option<&str> {
    let ambiguous =
        name.starts_with(TARGET_PREFIX) || name.starts_with("meta#") || name == LEGACY_CONFIG_KEY;
    (!ambiguous).then_some(name)
}

/// A stored document and the version to write it back at (`None`: not stored under its new key,
/// so written only if absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The document (JSON text).
    pub document: String,
    /// The version of the item under its new key.
    pub version: Option<u64>,
}

/// What the state table holds for a run, by target name.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// Each target's stored state, by target name.
    pub targets: BTreeMap<String, Found>,
    /// The bookkeeping document.
    pub meta: Option<Found>,
    /// Whether the old layout was read (`meta#config` not yet marked migrated): the run marks it.
    pub migrating: bool,
}

/// The keys a run reads for `names` (new layout), the bookkeeping item's key last.
pub fn keys_read(names: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = names.iter().map(|n| state_key(n)).collect();
    keys.push(META_KEY.to_string());
    keys
}

/// The old-layout keys read for `names` while migrating, the old bookkeeping key last.
pub fn legacy_keys_read(names: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = names
        .iter()
        .filter_map(|n| legacy_key(n))
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    keys.push(LEGACY_CONFIG_KEY.to_string());
    keys
}

/// Read the stored states of `names` and the bookkeeping item (see the key layout above).
pub async fn read_states(states: &VersionedDocuments, names: &[String]) -> Result<Stored> {
    let mut found = states.get_many(&keys_read(names)).await?;
    let meta = found.remove(META_KEY);
    let mut stored = Stored {
        meta: meta.map(|v| Found {
            document: v.document,
            version: Some(v.version),
        }),
        ..Stored::default()
    };
    for name in names {
        if let Some(v) = found.remove(&state_key(name)) {
            let found = Found {
                document: v.document,
                version: Some(v.version),
            };
            stored.targets.insert(name.clone(), found);
        }
    }
    if stored
        .meta
        .as_ref()
        .is_some_and(|m| crate::meta::migrated(&m.document))
    {
        return Ok(stored);
    }
    stored.migrating = true;
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !stored.targets.contains_key(*n))
        .cloned()
        .collect();
    let mut old = states.get_many(&legacy_keys_read(&missing)).await?;
    for name in &missing {
        if let Some(v) = legacy_key(name).and_then(|key| old.remove(key)) {
            let found = Found {
                document: v.document,
                version: None,
            };
            stored.targets.insert(name.clone(), found);
        }
    }
    if stored.meta.is_none() {
        stored.meta = old.remove(LEGACY_CONFIG_KEY).map(|v| Found {
            document: v.document,
            version: None,
        });
    }
    Ok(stored)
}

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
pub fn state_of(stored: &Stored, name: &str, now: u64) -> (TargetState, Option<u64>) {
    match stored.targets.get(name) {
        None => (TargetState::new(now), None),
        Some(found) => match serde_json::from_str(&found.document) {
            Ok(state) => (state, found.version),
            Err(error) => {
                warn!(target = name, %error, "stored state unreadable; starting it afresh");
                (TargetState::new(now), found.version)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_target_name_can_collide_with_the_bookkeeping_item() {
        for name in ["#config", "meta#config", "config", "target#x", ""] {
            assert_ne!(state_key(name), META_KEY, "{name}");
            assert!(state_key(name).starts_with(TARGET_PREFIX));
        }
        let names: Vec<String> = ["#config", "meta#config", "billing"]
            .map(String::from)
            .to_vec();
        let keys = keys_read(&names);
        let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
    }

    #[test]
    fn old_keys_are_read_only_where_they_cannot_be_mistaken_for_new_ones() {
        assert_eq!(legacy_key("billing"), Some("billing"));
        assert_eq!(legacy_key("#config"), None);
        assert_eq!(legacy_key("meta#config"), None);
        assert_eq!(legacy_key("target#billing"), None);
        let names: Vec<String> = ["billing", "#config", "target#x"]
            .map(String::from)
            .to_vec();
        assert_eq!(legacy_keys_read(&names), ["billing", "#config"]);
    }
}
