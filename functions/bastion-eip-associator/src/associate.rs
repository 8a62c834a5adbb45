//! Get an instance a pool address: observe, choose, associate, verify, with bounded retries.
//!
//! No call made here can move an address off an instance that holds it, so two invocations racing
//! for one address (two launches, or a launch and the reconcile) are settled by EC2 itself:
//! - a free address is associated with `AllowReassociation=false`: once another instance got it
//!   first, EC2 refuses (`Resource.AlreadyAssociated`);
//! - an address held by a departed instance (stopping, stopped, shutting down, terminated) is taken
//!   over by ending that holder's association by the association id that was read
//!   (DisassociateAddress): once anyone has freed or moved the address since, EC2 answers that the
//!   association no longer exists and nothing changes; the holder is then read again, and if it
//!   was started meanwhile the address goes back to it; else it is associated as a free address.
//!   The address is marked (`ops:eip-freeing`, the holder) before it is freed and unmarked once it
//!   is settled, so when a run dies in between, whoever next finds it free reads that holder again
//!   and gives the address back to it if it runs again without one;
//! - every association is read back with DescribeAddresses before it counts.
//!
//! Each try reads the pool and the instance afresh, so a lost race simply becomes the next try's
//! starting point (another free address, or none: the caller abandons and says it lost a race).
//!
//! Invariants: an address held by a pending or running instance is never moved; an instance that
//! is not pending or running when read just before is never given an address (EC2 refuses a
//! terminated one, which ends as [`Secured::InstanceGone`]); a launch gets an address only while its
//! group holds it at the launch hook (checked before every try); of any number of invocations
//! racing for one address for different instances, at most one gets it, and only that one reports
//! it. For one instance, EC2 accepts a second association of the address it already holds, so
//! the address is read again just before associating and the association read back must be this
//! run's own (else another run's stands, and that run reports it). What a run changed on its way
//! is kept in [`Progress`] so that a run failing after a change can still tell it.

use std::collections::BTreeMap;

use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::{AddressState, Ec2};
use ops_core::{Error, Result};
use serde::Serialize;
use tracing::{info, warn};

use crate::config::{AssociatorConfig, FREEING_TAG, POOL_TAG};
use crate::decide::{choose, holders, Choice, ALIVE_STATES, HELD_STATES, UNKNOWN_TO_EC2};

/// AssociateAddress error codes meaning the instance is not (or no longer) one EC2 will give an
/// address to: terminated, shutting down, or unknown.
pub const INSTANCE_GONE_CODES: &[&str] = &[
    "IncorrectInstanceState",
    "InvalidInstanceID",
    "InvalidInstanceID.NotFound",
];

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

/// An address this run freed from a departed holder (its DisassociateAddress succeeded) so that
/// `instance` could take it over. From then on the address no longer says who had it: this run is
/// the only one that can tell ops, whatever happens next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freed {
    /// The address, as read before it was freed.
    pub address: AddressState,
    /// The departed holder.
    pub from: String,
    /// Its state.
    pub from_state: String,
}

/// What a run changed in AWS on its way to an answer. If the run then fails, no later run can
/// tell it (a redelivery finds the address free, or already on the instance): the caller tells
/// ops before it returns the error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Addresses this run freed from departed holders (see [`Freed`]), also those it then lost
    /// to another instance.
    pub freed: Vec<Freed>,
    /// An association this run made that stands as far as it knows (AssociateAddress accepted;
    /// not read back as someone else's): the address as read before, and the association id.
    pub associated: Option<(AddressState, String)>,
}

/// Secure a pool address for `instance`, trying up to `config.attempts` times, as long as `hold`
/// holds. `progress` records what the run changed on its way (see [`Progress`]).
pub async fn secure(
    ec2: &Ec2,
    config: &AssociatorConfig,
    pool: &str,
    instance: &str,
    hold: Hold<'_>,
    progress: &mut Progress,
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
        // The freeing mark this run must remove once the address is settled (its own, or one a
        // run that died after freeing the address left).
        let (address, takeover, mark) = match choose(&addresses, instance, &states) {
            Choice::AlreadyHolds { address } => {
                clear_mark(ec2, &address).await?;
                return Ok(Secured::AlreadyHeld { address });
            }
            Choice::Exhausted { .. } => continue,
            Choice::Free { address } => {
                if let Some(race) =
                    give_back_unfinished(ec2, &address, &addresses, instance).await?
                {
                    lost.push(race);
                    continue;
                }
                let mark = address.tags.get(FREEING_TAG).cloned();
                (address, None, mark)
            }
            Choice::TakeOver {
                address,
                from,
                from_state,
            } => {
                // Record the intent before the address leaves its holder: a run that dies right
                // after the disassociation leaves this mark, and whoever next finds the address
                // free checks that holder again before using it (see `give_back_unfinished`).
                let mark = format!("from={from} for={instance}");
                ec2.tag_address(&address.allocation_id, FREEING_TAG, &mark)
                    .await?;
                // Free it from the departed holder by the association read above: if anyone freed
                // or moved the address since, that association is gone and EC2 changes nothing.
                let released = match address.association_id.as_deref() {
                    Some(association) => ec2.disassociate(association).await?,
                    None => false,
                };
                if !released {
                    // The mark stays: the run that did free the address may have written its own
                    // over this one (CreateTags overwrites), and removing it by this value would
                    // remove the only record that the holder's address is in flight.
                    let race = format!(
                        "{} (taking it over from {from}, {from_state}: another instance freed it first)",
                        address.public_ip
                    );
                    warn!(instance, ip = %address.public_ip, attempt, "lost the race to take over the address: its association with {from} no longer exists");
                    lost.push(race);
                    continue;
                }
                progress.freed.push(Freed {
                    address: address.clone(),
                    from: from.clone(),
                    from_state: from_state.clone(),
                });
                if let Some(state) = started_again(ec2, &from).await? {
                    // Its holder was started since it was read as departed (or that read was
                    // stale: DescribeInstances is eventually consistent): an address never leaves
                    // a pending or running instance, so it goes back to it.
                    let outcome = give_back(ec2, &address, &from, &state, &mark).await?;
                    if outcome == GIVEN_BACK {
                        progress.freed.pop();
                    }
                    warn!(instance, ip = %address.public_ip, holder = %from, %state, attempt, "the holder of the address is running again: {outcome}");
                    lost.push(format!(
                        "{} (its holder {from} was {from_state} when read and is {state} again: {outcome})",
                        address.public_ip
                    ));
                    continue;
                }
                (address, Some((from, from_state)), Some(mark))
            }
        };
        // EC2 refuses to move an address off another instance, but re-associating it with the
        // instance that already holds it succeeds (AssociateAddress is idempotent): two runs for
        // one bastion (two reconciles at once) would both "associate" it and both report it. Read
        // the address again just before: if it is on this instance already, this run did nothing.
        let fresh = ec2.address(&address.allocation_id).await?;
        match fresh.instance_id.as_deref() {
            Some(holder) if holder == instance => {
                info!(instance, ip = %address.public_ip, attempt, "the address reached this instance since it was read; nothing to do");
                clear_mark(ec2, &fresh).await?;
                return Ok(Secured::AlreadyHeld { address: fresh });
            }
            Some(holder) => {
                warn!(instance, ip = %address.public_ip, holder, attempt, "lost the race for the address: another instance got it since it was read");
                // It is settled on that instance: no freeing mark is needed on it any more.
                clear_mark(ec2, &fresh).await?;
                lost.push(match &takeover {
                    Some((from, from_state)) => format!(
                        "{} (freed from {from}, {from_state}: another instance associated it first)",
                        address.public_ip
                    ),
                    None => format!(
                        "{} (free when read: another instance associated it first)",
                        address.public_ip
                    ),
                });
                continue;
            }
            None => {}
        }
        let made = match ec2
            .associate_if_free(&address.allocation_id, instance)
            .await
        {
            Ok(made) => made,
            // The instance went away since it was read (EC2 refuses an association with a
            // terminated or shutting-down instance): it gets nothing.
            Err(Error::Aws(error)) if INSTANCE_GONE_CODES.contains(&error.code.as_str()) => {
                let state = ec2
                    .instances(&[instance.to_string()])
                    .await?
                    .into_iter()
                    .next()
                    .map(|i| i.state)
                    .unwrap_or_else(|| UNKNOWN_TO_EC2.into());
                if ALIVE_STATES.contains(&state.as_str()) {
                    return Err(Error::Aws(error));
                }
                info!(instance, %state, code = %error.code, "EC2 refused the association: the instance is going away; no address moved to it");
                return Ok(Secured::InstanceGone { state });
            }
            Err(error) => return Err(error),
        };
        let Some(made) = made else {
            // Refused: nothing changed.
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
        progress.associated = Some((address.clone(), made.clone()));
        let now = ec2.address(&address.allocation_id).await?;
        if now.instance_id.as_deref() != Some(instance) {
            progress.associated = None;
            if now.instance_id.is_some() {
                clear_mark(ec2, &now).await?;
            }
            let holder = now.instance_id.as_deref().unwrap_or("nothing");
            warn!(instance, ip = %address.public_ip, holder, attempt, "the address read back is not on this instance; trying again");
            lost.push(format!("{} (read back on {holder})", address.public_ip));
            continue;
        }
        if !made.is_empty() && now.association_id.as_deref() != Some(made.as_str()) {
            // Another run associated the address with this same instance after this one did (EC2
            // accepts that: AssociateAddress is idempotent): the association that stands is that
            // run's, and that run reports it.
            progress.associated = None;
            info!(instance, ip = %address.public_ip, attempt, "another run re-associated the address with this instance; it reports it");
            return Ok(Secured::AlreadyHeld { address: now });
        }
        let association_id = now.association_id.unwrap_or(made);
        info!(instance, ip = %address.public_ip, %association_id, attempt, "address associated and verified");
        if let Some(mark) = &mark {
            ec2.untag_address(&address.allocation_id, FREEING_TAG, mark)
                .await?;
        }
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

/// A free address carrying the freeing mark of a takeover that did not finish (its run died after
/// freeing the address, before it could check the holder again): when that holder is pending or
/// running again and holds no pool address, the address goes back to it, and the lost race is
/// described; `None` when the address may be used.
async fn give_back_unfinished(
    ec2: &Ec2,
    address: &AddressState,
    pool: &[AddressState],
    instance: &str,
) -> Result<Option<String>> {
    let Some(mark) = address.tags.get(FREEING_TAG) else {
        return Ok(None);
    };
    let Some(holder) = ops_core::tags::fields(mark)
        .get("from")
        .map(|h| h.to_string())
    else {
        return Ok(None);
    };
    let holds_another = pool
        .iter()
        .any(|a| a.instance_id.as_deref() == Some(holder.as_str()));
    if holder == instance || holds_another {
        return Ok(None);
    }
    let Some(state) = started_again(ec2, &holder).await? else {
        return Ok(None);
    };
    let outcome = give_back(ec2, address, &holder, &state, mark).await?;
    warn!(instance, ip = %address.public_ip, %holder, %state, "a takeover that did not finish freed this address from a holder that is running again: {outcome}");
    Ok(Some(format!(
        "{} (freed from {holder} by a takeover that did not finish; {holder} is {state} again: {outcome})",
        address.public_ip
    )))
}

const GIVEN_BACK: &str = "the address was given back to it";

/// Give a freed address back to `holder`, started again (`state`), and remove the freeing `mark`
/// once it is on it. EC2 associates an address only with a running instance (a pending one is
/// refused as not in a valid state), so for a pending holder the address stays free and marked,
/// kept for it: a later run (the reconcile, or this launch's retry) gives it back once it runs.
async fn give_back(
    ec2: &Ec2,
    address: &AddressState,
    holder: &str,
    state: &str,
    mark: &str,
) -> Result<&'static str> {
    if state != "running" {
        return Ok("the address stays free for it until it runs");
    }
    Ok(
        match ec2
            .associate_if_free(&address.allocation_id, holder)
            .await?
        {
            Some(_) => {
                ec2.untag_address(&address.allocation_id, FREEING_TAG, mark)
                    .await?;
                GIVEN_BACK
            }
            None => "another instance associated the address first",
        },
    )
}

/// Remove a freeing mark left on an address that is now settled on an instance.
async fn clear_mark(ec2: &Ec2, address: &AddressState) -> Result<()> {
    if let Some(mark) = address.tags.get(FREEING_TAG) {
        ec2.untag_address(&address.allocation_id, FREEING_TAG, mark)
            .await?;
    }
    Ok(())
}

/// The state of `instance` when it is pending or running now, read again after its address was
/// freed on the strength of an earlier read.
async fn started_again(ec2: &Ec2, instance: &str) -> Result<Option<String>> {
    Ok(ec2
        .instances(&[instance.to_string()])
        .await?
        .into_iter()
        .next()
        .map(|i| i.state)
        .filter(|state| ALIVE_STATES.contains(&state.as_str())))
}
