//! Get an instance a pool address: observe, choose, associate, verify, with bounded retries.
//!
//! Each try reads the pool afresh, so a lost race (EC2 refused the re-association, or another
//! instance holds the address when read back) simply becomes the next try's starting point.

use std::collections::BTreeMap;

use ops_core::aws::ec2::{AddressState, Ec2};
use ops_core::Result;
use serde::Serialize;
use tracing::{info, warn};

use crate::config::{AssociatorConfig, POOL_TAG};
use crate::decide::{choose, Choice};

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
        /// The address.
        address: AddressState,
        /// Tries it took (more than one: it lost a race first).
        attempts: u32,
    },
    /// It took over the address of an instance that was going away.
    TookOver {
        /// The address.
        address: AddressState,
        /// The previous holder.
        from: String,
        /// Its state.
        from_state: String,
    },
    /// No address could be had within the tries.
    Exhausted {
        /// Who holds the pool's addresses.
        holders: Vec<String>,
        /// Whether it lost a race for an address on the way.
        lost_race: bool,
    },
}

/// Secure a pool address for `instance`, trying up to `config.attempts` times.
pub async fn secure(
    ec2: &Ec2,
    config: &AssociatorConfig,
    pool: &str,
    instance: &str,
) -> Result<Secured> {
    let mut lost_race = false;
    let mut holders = Vec::new();
    for attempt in 1..=config.attempts {
        if attempt > 1 && !config.retry_delay.is_zero() {
            // Production back-off for EC2's eventual consistency between tries; not a test wait.
            tokio::time::sleep(config.retry_delay).await;
        }
        let addresses = ec2.addresses_tagged(POOL_TAG, Some(pool)).await?;
        let held_by: Vec<String> = addresses
            .iter()
            .filter_map(|a| a.instance_id.clone())
            .collect();
        let states: BTreeMap<String, String> = ec2
            .instances(&held_by)
            .await?
            .into_iter()
            .map(|i| (i.id, i.state))
            .collect();
        let choice = choose(&addresses, instance, &states);
        let (address, takeover) = match choice {
            Choice::AlreadyHolds { address } => return Ok(Secured::AlreadyHeld { address }),
            Choice::Exhausted { holders: now } => {
                holders = now;
                continue;
            }
            Choice::Free { address } => (address, None),
            Choice::TakeOver {
                address,
                from,
                from_state,
            } => (address, Some((from, from_state))),
        };
        let accepted = ec2
            .associate(&address.allocation_id, instance, takeover.is_some())
            .await?;
        let holder = ec2.address(&address.allocation_id).await?.instance_id;
        if accepted && holder.as_deref() == Some(instance) {
            info!(instance, ip = %address.public_ip, attempt, "address associated and verified");
            return Ok(match takeover {
                Some((from, from_state)) => Secured::TookOver {
                    address,
                    from,
                    from_state,
                },
                None => Secured::Associated {
                    address,
                    attempts: attempt,
                },
            });
        }
        lost_race = true;
        warn!(instance, ip = %address.public_ip, holder = ?holder, attempt, "lost the address to another instance; trying again");
    }
    Ok(Secured::Exhausted { holders, lost_race })
}
