//! The bookkeeping item (`meta#config`): which scheduled run counted last, the invalid entries the
//! config alert is about and whether it is sent, the targets the last run could not check in
//! time, and whether the old key layout has been carried over.
//!
//! **A run records its start before it checks.** A scheduled run first writes its schedule time as
//! `last_run`, only if it is newer than the one stored and only if nobody wrote the item since it
//! was read. A run whose time is not newer is a duplicate (EventBridge delivers at least once) or a
//! late delivery (a retry, hours late): it checks nothing and counts nothing, and says why. So every
//! minute is counted once, in order, however the schedule is delivered; two runs at once each get a
//! distinct place in that order or stand down.
//!
//! **The config alert is owned.** The run that records a new list of invalid entries (in the same
//! conditional write) is the one that sends the alert about it, and marks it sent afterwards; a run
//! that finds it unsent takes it over only once the owner's deadline has passed (the owner died).

use ops_core::aws::dynamodb::VersionedDocuments;
use ops_core::Result;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::observe::{Found, META_KEY};

/// Attempts at a conditional write of the bookkeeping item before a run stands down.
const ATTEMPTS: usize = 4;

fn yes() -> bool {
    true
}

/// The bookkeeping document.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The invalid entries last recorded (alerted, or being alerted while `config_pending`).
    #[serde(default)]
    pub errors: Vec<String>,
    /// The targets the last run could not check in time: the next run checks them first.
    #[serde(default)]
    pub not_checked: Vec<String>,
    /// The schedule time (epoch seconds) of the newest run that counted.
    #[serde(default)]
    pub last_run: Option<u64>,
    /// Whether the alert about `errors` is still to be sent.
    #[serde(default)]
    pub config_pending: bool,
    /// Until when (epoch seconds, the invocation's clock) the run that recorded `config_pending`
    /// owns sending it.
    #[serde(default)]
    pub config_claimed_until: u64,
    /// Whether the old key layout has been carried over (documents written before this field
    /// existed were written after the move).
    #[serde(default = "yes")]
    pub migrated: bool,
}

impl Meta {
    /// The document stored, or a new one.
    pub fn of(found: Option<&Found>) -> Meta {
        found
            .and_then(|f| serde_json::from_str(&f.document).ok())
            .unwrap_or_default()
    }
}

/// Whether a stored bookkeeping document says the old key layout has been carried over (one this
/// version cannot read was written after the move, by a later version).
pub fn migrated(document: &str) -> bool {
    serde_json::from_str::<Meta>(document).map_or(true, |m| m.migrated)
}

/// What a run learnt from recording its start.
#[derive(Debug, Clone)]
pub struct Start {
    /// The bookkeeping document as this run left it.
    pub meta: Meta,
    /// Its version after this run's write (`None`: not stored).
    pub version: Option<u64>,
    /// Whether this run counts: no run at its time or later started before it.
    pub counts: bool,
    /// Whether this run sends the config alert (it recorded the list, or took over a dead run's).
    pub owns_config: bool,
}

/// Record the start of a run at schedule time `now` (see the module docs): `invalid` is the list of
/// invalid entries it read, `wall` the invocation's clock, `lease_until` until when it owns what it
/// records (its deadline), `migrating` whether the old layout is still being carried over.
pub async fn start(
    states: &VersionedDocuments,
    stored: Option<&Found>,
    invalid: &[String],
    now: u64,
    wall: u64,
    lease_until: u64,
    migrating: bool,
) -> Result<Start> {
    let mut meta = Meta::of(stored);
    let mut version = stored.and_then(|f| f.version);
    for _ in 0..ATTEMPTS {
        let counts = meta.last_run.is_none_or(|last| now > last);
        let mut next = meta.clone();
        if counts {
            next.last_run = Some(now);
        }
        if migrating {
            next.migrated = false;
        }
        let changed = meta.errors != invalid;
        let abandoned = meta.config_pending && meta.config_claimed_until <= wall;
        let owns_config = changed || abandoned;
        if owns_config {
            next.errors = invalid.to_vec();
            next.config_pending = true;
            next.config_claimed_until = lease_until;
        }
        if next == meta && version.is_some() {
            return Ok(Start {
                meta,
                version,
                counts,
                owns_config: false,
            });
        }
        let document = serde_json::to_string(&next).expect("bookkeeping serializes");
        if states.put(META_KEY, &document, version).await? {
            return Ok(Start {
                meta: next,
                version: Some(version.unwrap_or(0) + 1),
                counts,
                owns_config,
            });
        }
        info!("another run updated the bookkeeping first; reading it again");
        (meta, version) = reread(states).await?;
    }
    warn!(
        attempts = ATTEMPTS,
        "the bookkeeping kept changing under this run: other runs are counting, this one stands down"
    );
    Ok(Start {
        meta,
        version,
        counts: false,
        owns_config: false,
    })
}

/// Apply `change` to the bookkeeping item written at `version` by this run, reading it again and
/// re-applying if another run wrote in between. `change` returns whether it changed anything.
pub async fn finish(
    states: &VersionedDocuments,
    start: &Start,
    change: impl Fn(&mut Meta) -> bool,
) -> Result<()> {
    let (mut meta, mut version) = (start.meta.clone(), start.version);
    for _ in 0..ATTEMPTS {
        let mut next = meta.clone();
        if !change(&mut next) && version.is_some() {
            return Ok(());
        }
        let document = serde_json::to_string(&next).expect("bookkeeping serializes");
        if states.put(META_KEY, &document, version).await? {
            return Ok(());
        }
        (meta, version) = reread(states).await?;
    }
    info!("the bookkeeping kept changing under this run; a later run records what it found");
    Ok(())
}

async fn reread(states: &VersionedDocuments) -> Result<(Meta, Option<u64>)> {
    let found = states.get_many(&[META_KEY.to_string()]).await?;
    Ok(match found.get(META_KEY) {
        Some(v) => (
            serde_json::from_str(&v.document).unwrap_or_default(),
            Some(v.version),
        ),
        None => (Meta::default(), None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_from_before_the_fields_existed_read_as_migrated_with_no_run_recorded() {
        let meta: Meta = serde_json::from_str(r#"{"errors": ["x"], "not_checked": []}"#).unwrap();
        assert!(meta.migrated);
        assert_eq!(meta.last_run, None);
        assert!(!meta.config_pending);
        assert!(migrated(r#"{"errors": []}"#));
        assert!(!migrated(r#"{"errors": [], "migrated": false}"#));
    }
}
