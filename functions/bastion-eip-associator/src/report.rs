//! Report: the alerts ops read.

use ops_core::alert::{Alert, Severity};
use ops_core::aws::ec2::AddressState;

use crate::associate::{Freed, Secured};

/// Where the instance is, for alerts.
#[derive(Debug, Clone, Default)]
pub struct Whereabouts {
    /// The instance.
    pub instance: String,
    /// Its group, if it is in one.
    pub group: Option<String>,
    /// Its availability zone.
    pub zone: Option<String>,
    /// The pool.
    pub pool: String,
}

impl Whereabouts {
    fn describe(&self) -> String {
        let group = self
            .group
            .as_deref()
            .map(|g| format!(" of group {g}"))
            .unwrap_or_default();
        let zone = self
            .zone
            .as_deref()
            .map(|z| format!(" in {z}"))
            .unwrap_or_default();
        format!("{}{group}{zone}", self.instance)
    }

    fn resource(&self) -> String {
        self.group.clone().unwrap_or_else(|| self.instance.clone())
    }
}

/// The alert for an outcome (none when the instance already held its address, and none when it
/// got nothing because it is gone or its launch is over: a launch says that itself, see
/// [`abandoned_alert`]). `why` says what started it: a launch, a state change, or the reconcile.
pub fn secured_alert(
    function: &str,
    at: &Whereabouts,
    secured: &Secured,
    why: &str,
    drift: bool,
) -> Option<Alert> {
    let who = at.describe();
    let alert = match secured {
        Secured::AlreadyHeld { .. } | Secured::InstanceGone { .. } | Secured::LaunchOver { .. } => return None,
        Secured::Associated { address, attempts, .. } => {
            let (event, title) = if drift {
                ("eip.drift-repaired", format!("drift repaired: {} gets {}", at.instance, address.public_ip))
            } else {
                ("eip.associated", format!("{} got {} (pool {})", at.instance, address.public_ip, at.pool))
            };
            let race = if *attempts > 1 { format!(" It lost a race for another address first ({attempts} tries).") } else { String::new() };
            Alert::new(Severity::Info, function, event, at.resource(), title)
                .what(format!("Elastic IP {} ({}) of pool {} is now on {who}, verified with DescribeAddresses.{race}", address.public_ip, address.allocation_id, at.pool))
                .change("no pool address".to_string(), address.public_ip.clone())
        }
        Secured::TookOver { address, from, from_state, .. } => Alert::new(
            Severity::Warning,
            function,
            "eip.taken-over",
            at.resource(),
            format!("{} took over {} from {from} ({from_state})", at.instance, address.public_ip),
        )
        .what(format!(
            "Elastic IP {} of pool {} moved from {from}, which is {from_state}, to {who}: its association with {from} was ended by its id, then the address was associated with re-association refused; verified with DescribeAddresses.",
            address.public_ip, at.pool
        ))
        .change(format!("{} on {from} ({from_state})", address.public_ip), format!("{} on {}", address.public_ip, at.instance))
        .context("taken_from", from),
        Secured::Exhausted { holders, lost, .. } => {
            let race = if lost.is_empty() {
                String::new()
            } else {
                format!(
                    " It lost the race for {}; EC2 refuses to move an address another instance has taken, so it did not.",
                    lost.join("; ")
                )
            };
            Alert::new(Severity::Critical, function, "eip.pool-exhausted", at.resource(), format!("pool {} exhausted: {} has no Elastic IP", at.pool, at.instance))
                .what(format!("No address of pool {} could be had for {who}.{race} Held: {}.", at.pool, holders.join(", ")))
                .next_step(format!("Allocate another Elastic IP and tag it {}={}, or free one.", crate::config::POOL_TAG, at.pool))
        }
    };
    Some(finish(alert, function, at, why))
}

/// The alert for a launch completed with CONTINUE whose instance already held `address` of its pool
/// when the launch was handled: an earlier delivery of the launch associated it and stopped before
/// it completed the action. The launch's outcome, told once by the run that completed it.
pub fn held_alert(function: &str, at: &Whereabouts, address: &AddressState, why: &str) -> Alert {
    let alert = Alert::new(
        Severity::Info,
        function,
        "eip.associated",
        at.resource(),
        format!("{} got {} (pool {})", at.instance, address.public_ip, at.pool),
    )
    .what(format!(
        "Elastic IP {} ({}) of pool {} is on {}, verified with DescribeAddresses; it was associated by an earlier delivery of this launch.",
        address.public_ip,
        address.allocation_id,
        at.pool,
        at.describe()
    ))
    .change("no pool address".to_string(), address.public_ip.clone());
    finish(alert, function, at, why)
}

/// The alert for an address this run freed from a departed bastion (`freed`) that did not end on
/// `at`'s instance as a takeover this run reports: the address no longer says who had it, so this
/// is the only record that the departed bastion lost it. `why` says what happened next.
pub fn freed_alert(function: &str, at: &Whereabouts, freed: &Freed, why: &str) -> Alert {
    let alert = Alert::new(
        Severity::Warning,
        function,
        "eip.freed",
        at.resource(),
        format!(
            "{} freed from {} ({}) for {}",
            freed.address.public_ip, freed.from, freed.from_state, at.instance
        ),
    )
    .what(format!(
        "Elastic IP {} of pool {} was taken from {}, which is {}, to give it to {}: its association with {} was ended by its id.",
        freed.address.public_ip,
        at.pool,
        freed.from,
        freed.from_state,
        at.describe(),
        freed.from
    ))
    .change(
        format!("{} on {} ({})", freed.address.public_ip, freed.from, freed.from_state),
        format!("{} not on {}", freed.address.public_ip, freed.from),
    )
    .context("taken_from", &freed.from);
    finish(alert, function, at, why)
}

/// The alert for a launch completed with ABANDON because its instance is no longer pending or
/// running (`state`): nothing was associated.
pub fn abandoned_alert(function: &str, at: &Whereabouts, state: &str, why: &str) -> Alert {
    let alert = Alert::new(
        Severity::Warning,
        function,
        "eip.launch-abandoned",
        at.resource(),
        format!("launch of {} abandoned: the instance is {state}", at.instance),
    )
    .what(format!(
        "{} is {state} while its launch was held at the hook, so no address was associated with it.",
        at.describe()
    ))
    .change("held at the launch hook".to_string(), "abandoned".to_string());
    finish(alert, function, at, why)
}

fn finish(alert: Alert, function: &str, at: &Whereabouts, why: &str) -> Alert {
    alert
        .why(why.to_string())
        .thread(format!("{function}:{}", at.pool))
        .context("instance", &at.instance)
        .context("pool", &at.pool)
}
