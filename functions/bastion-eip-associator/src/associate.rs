//! Get an instance a pool address: observe, choose, associate, verify, with bounded retries.
//!
//! No call made here can move an address off an instance that holds it, so two invocations racing
//! for one address (two launches, or a launch and the reconcile) are settled by EC2 itself:
//! - a free address is associated with `AllowReassociation=false`: once another instance got it
//!   first, EC2 refuses (`Resource.AlreadyAssociated`);
//! - an address held by a departed instance (stopping, stopped, shutting down, terminated) is taken
//!   over by ending that holder's association by the association id that was read
//!   (DisassociateAddress): once anyone has freed or moved the address since, EC2 answers that the
//!   association no longer exists and nothing changes; then it is associated as a free address;
//! - every association is read back with DescribeAddresses before it counts.
//!
//! Each try reads the pool and the instance afresh, so a lost race simply becomes the next try's
//! starting point (another free address, or none: the caller abandons and says it lost a race).
//!
//! Invariants: an address held by a pending or running instance is never moved; an instance that
//! is not pending or running is never given an address; a launch gets an address only while its
//! group holds it at the launch hook (checked before every try); of any number of invocations
//! racing for one address, at most one gets it, and only that one reports it.

use std::collections::BTreeMap;

use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::{AddressState, Ec2};
use ops_core::Result;
use serde::Serialize;
use tracing::{info, warn};

use crate::config::{AssociatorConfig, POOL_TAG};
use crate::decide::{choose, holders, Choice, ALIVE_STATES, HELD_STATES, UNKNOWN_TO_EC2};

/// What must still hold before an address moves, re-read before every try.
#[derive(Debug, Clone, Copy)]
pub enum Hold<'a> {
    /// A standalone bastion or the reconcile: the instance is pending or running.
    Running,
    /// A launch held at `group`'s launch hook: the instance is pending or running, and (from the
    /// second try on; the caller checks it before the first) the group still holds it at the hook.
    AtHook {
        /// The Auto Scaling adapter.
        groups: &'a AutoScalingGroups,
        /// The group.
        group: &'a str,
    },
}

/// How securing an address ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Secured {
    /// It already held a pool address.
    AlreadyHeld {
        /// The address.
        address: AddressState,
    },
    /// It got a free address.
    Associated {
        /// The address, as read before it was associated.
        address: AddressState,
        /// The association this invocation made, verified.
        association_id: String,
        /// Tries it took (more than one: it lost a race first).
        attempts: u32,
    },
    /// It took over the address of an instance that was going away.
    TookOver {
        /// The address, as read before it was taken over.
        address: AddressState,
        /// The association this invocation made, verified.
        association_id: String,
        /// The previous holder.
        from: String,
        /// Its state.
        from_state: String,
    },
    /// No address could be had within the tries.
    Exhausted {
        /// Who holds the pool's addresses, as last read.
        holders: Vec<String>,
        /// Whether it lost a race for an address on the way.
        lost_race: bool,
        /// Each race it lost: the address and how.
        lost: Vec<String>,
    },
    /// The instance is not pending or running (or EC2 does not know it): nothing was associated.
    InstanceGone {
        /// Its EC2 state.
        state: String,
    },
    /// The group no longer holds the launch at its hook: nothing was associated.
    LaunchOver {
        /// The group's lifecycle state for the instance (`absent`: no longer listed).
        lifecycle_state: String,
    },
}

/// Secure a pool address for `instance`, trying up to `config.attempts` times, as long as `hold`
/// holds.
pub async fn secure(
    ec2: &Ec2,
    config: &AssociatorConfig,
    pool: &str,
    instance: &str,
    hold: Hold<'_>,
) -> Result<Secured> {
    let mut lost: Vec<String> = Vec::new();
    let mut last_holders = Vec::new();
    for attempt in 1..=config.attempts {
        if attempt > 1 {
            if !config.retry_delay.is_zero() {
                // Production back-off for EC2's eventual consistency between tries; not a test wait.
                tokio::time::sleep(config.retry_delay).await;
            }
            if let Hold::AtHook { groups, group } = hold {
                let lifecycle = groups.describe(group).await?.instances.remove(instance);
                if !lifecycle
                    .as_deref()
                    .is_some_and(|l| HELD_STATES.contains(&l))
                {
                    let lifecycle_state = lifecycle.unwrap_or_else(|| "absent".into());
                    info!(instance, %lifecycle_state, "launch no longer held at the hook; no address moved");
                    return Ok(Secured::LaunchOver { lifecycle_state });
                }
            }
        }
        let addresses = ec2.addresses_tagged(POOL_TAG, Some(pool)).await?;
        let mut ids: Vec<String> = addresses
            .iter()
            .filter_map(|a| a.instance_id.clone())
            .collect();
        ids.push(instance.to_string());
        ids.sort();
        ids.dedup();
        let states: BTreeMap<String, String> = ec2
            .instances(&ids)
            .await?
            .into_iter()
            .map(|i| (i.id, i.state))
            .collect();
        match states.get(instance) {
            Some(state) if ALIVE_STATES.contains(&state.as_str()) => {}
            state => {
                let state = state.cloned().unwrap_or_else(|| UNKNOWN_TO_EC2.into());
                info!(instance, %state, "instance is not pending or running; no address moved");
                return Ok(Secured::InstanceGone { state });
            }
        }
        last_holders = holders(&addresses, &states);
        let (address, takeover) = match choose(&addresses, instance, &states) {
            Choice::AlreadyHolds { address } => return Ok(Secured::AlreadyHeld { address }),
            Choice::Exhausted { .. } => continue,
            Choice::Free { address } => (address, None),
            Choice::TakeOver {
                address,
                from,
                from_state,
            } => {
                // Free it from the departed holder by the association read above: if anyone freed
                // or moved the address since, that association is gone and EC2 changes nothing.
                let freed = match address.association_id.as_deref() {
                    Some(association) => ec2.disassociate(association).await?,
                    None => false,
                };
                if !freed {
                    let race = format!(
                        "{} (taking it over from {from}, {from_state}: another instance freed it first)",
                        address.public_ip
                    );
                    warn!(instance, ip = %address.public_ip, attempt, "lost the race to take over the address: its association with {from} no longer exists");
                    lost.push(race);
                    continue;
                }
                (address, Some((from, from_state)))
            }
        };
        let Some(made) = ec2
            .associate_if_free(&address.allocation_id, instance)
            .await?
        else {
            let race = match &takeover {
                Some((from, from_state)) => format!(
                    "{} (freed from {from}, {from_state}: another instance associated it first)",
                    address.public_ip
                ),
                None => format!(
                    "{} (free when read: another instance associated it first)",
                    address.public_ip
                ),
            };
            warn!(instance, ip = %address.public_ip, attempt, "lost the race for the address: EC2 refused to re-associate it");
            lost.push(race);
            continue;
        };
        let now = ec2.address(&address.allocation_id).await?;
        if now.instance_id.as_deref() != Some(instance) {
            let holder = now.instance_id.as_deref().unwrap_or("nothing");
            warn!(instance, ip = %address.public_ip, holder, attempt, "the address read back is not on this instance; trying again");
            lost.push(format!("{} (read back on {holder})", address.public_ip));
            continue;
        }
        let association_id = now.association_id.unwrap_or(made);
        info!(instance, ip = %address.public_ip, %association_id, attempt, "address associated and verified");
        return Ok(match takeover {
            Some((from, from_state)) => Secured::TookOver {
                address,
                association_id,
                from,
                from_state,
            },
            None => Secured::Associated {
                address,
                association_id,
                attempts: attempt,
            },
        });
    }
    Ok(Secured::Exhausted {
        holders: last_holders,
        lost_race: !lost.is_empty(),
        lost,
    })
}
