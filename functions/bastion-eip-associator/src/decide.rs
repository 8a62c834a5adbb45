//! Pure decisions: whether a launch may get an address at all, and which address of the pool an
//! instance should get, if any.

use std::collections::BTreeMap;

use ops_core::aws::ec2::AddressState;
use serde::Serialize;

/// Instance states whose address may be taken over: the bastion is going away.
pub const LEAVING_STATES: &[&str] = &["stopping", "stopped", "shutting-down", "terminated"];
/// Instance states in which an instance may be given an address: starting or serving.
pub const ALIVE_STATES: &[&str] = &["pending", "running"];
/// Auto Scaling lifecycle states of an instance whose launch is held (or about to be held) at the
/// group's launch hook. Any other state means the lifecycle action was completed or timed out.
pub const HELD_STATES: &[&str] = &["Pending", "Pending:Wait"];
/// What the state of an instance EC2 does not know is called in answers and alerts.
pub const UNKNOWN_TO_EC2: &str = "unknown to EC2";

/// Where a launch that an event says is held at the hook stands, read from AWS before any address
/// moves: the group's lifecycle state for the instance and EC2's state of the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "stand", rename_all = "snake_case")]
pub enum LaunchStand {
    /// Held at the hook, and the instance is pending or running: it may get an address.
    Waiting,
    /// Held at the hook, but the instance is going away or gone: give it nothing and ABANDON.
    InstanceGone {
        /// Its EC2 state.
        state: String,
    },
    /// Held at the hook, but EC2 does not know the instance (yet: EC2 is eventually consistent):
    /// give it nothing now, a retry will know.
    NotYetKnown,
    /// The group no longer holds it at the hook: the action was completed (a duplicate or late
    /// event) or timed out. Touch nothing, complete nothing.
    Over {
        /// Why, for the answer and the log.
        reason: String,
    },
    /// The group does not list it, yet it lives: not a launch of this group (a forged or foreign
    /// event). Refuse.
    NotInGroup {
        /// Its EC2 state.
        state: String,
    },
}

/// Where the launch of `instance` in `group` stands: `lifecycle` is the group's lifecycle state
/// for it (`None`: the group does not list it), `state` its EC2 state (`None`: EC2 does not know
/// it).
pub fn launch_stand(
    group: &str,
    instance: &str,
    lifecycle: Option<&str>,
    state: Option<&str>,
) -> LaunchStand {
    let held = lifecycle.is_some_and(|l| HELD_STATES.contains(&l));
    match (lifecycle, state) {
        (_, Some(state)) if held && ALIVE_STATES.contains(&state) => LaunchStand::Waiting,
        (_, Some(state)) if held => LaunchStand::InstanceGone {
            state: state.to_string(),
        },
        (_, None) if held => LaunchStand::NotYetKnown,
        (Some(lifecycle), _) => LaunchStand::Over {
            reason: format!(
                "group {group} has {instance} {lifecycle}: its launch is no longer held at the hook"
            ),
        },
        (None, Some(state)) if ALIVE_STATES.contains(&state) => LaunchStand::NotInGroup {
            state: state.to_string(),
        },
        (None, Some(state)) => LaunchStand::Over {
            reason: format!("{instance} is {state} and no longer in group {group}"),
        },
        (None, None) => LaunchStand::Over {
            reason: format!("{instance} is not in group {group} and is {UNKNOWN_TO_EC2}"),
        },
    }
}

/// What to do for one instance and its pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "choice", rename_all = "snake_case")]
pub enum Choice {
    /// It already holds a pool address: nothing to do.
    AlreadyHolds {
        /// The address.
        address: AddressState,
    },
    /// A free address: associate it, refusing re-association.
    Free {
        /// The address.
        address: AddressState,
    },
    /// Every address is held, one by an instance that is going away: take it over.
    TakeOver {
        /// The address.
        address: AddressState,
        /// Who holds it now.
        from: String,
        /// That instance's state.
        from_state: String,
    },
    /// Every address is held by a live instance: none for this one.
    Exhausted {
        /// `ip (instance, state)` of each holder, for the alert.
        holders: Vec<String>,
    },
}

/// Choose for `instance` among `pool` (sorted by allocation id, so concurrent launches compete for
/// the same address and EC2's refusal to re-associate picks exactly one winner). `holder_states`
/// maps each holding instance to its state; a holder EC2 no longer knows counts as terminated.
/// A takeover is carried out by ending the holder's association by its id and then associating
/// the address as a free one: never by re-association, which could move it off a new holder.
pub fn choose(
    pool: &[AddressState],
    instance: &str,
    holder_states: &BTreeMap<String, String>,
) -> Choice {
    if let Some(held) = pool
        .iter()
        .find(|a| a.instance_id.as_deref() == Some(instance))
    {
        return Choice::AlreadyHolds {
            address: held.clone(),
        };
    }
    if let Some(free) = pool.iter().find(|a| a.instance_id.is_none()) {
        return Choice::Free {
            address: free.clone(),
        };
    }
    let state_of = |id: &str| {
        holder_states
            .get(id)
            .cloned()
            .unwrap_or_else(|| "terminated".into())
    };
    for address in pool {
        let holder = address.instance_id.clone().unwrap_or_default();
        let state = state_of(&holder);
        if LEAVING_STATES.contains(&state.as_str()) {
            return Choice::TakeOver {
                address: address.clone(),
                from: holder,
                from_state: state,
            };
        }
    }
    Choice::Exhausted {
        holders: holders(pool, holder_states),
    }
}

/// `ip (holder, state)` of each address of `pool`, `ip (free)` for a free one, for alerts.
pub fn holders(pool: &[AddressState], holder_states: &BTreeMap<String, String>) -> Vec<String> {
    pool.iter()
        .map(|a| match &a.instance_id {
            Some(holder) => format!(
                "{} ({holder}, {})",
                a.public_ip,
                holder_states
                    .get(holder)
                    .map(String::as_str)
                    .unwrap_or("terminated")
            ),
            None => format!("{} (free)", a.public_ip),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(id: &str, ip: &str, holder: Option<&str>) -> AddressState {
        AddressState {
            allocation_id: id.into(),
            public_ip: ip.into(),
            instance_id: holder.map(String::from),
            association_id: holder.map(|h| format!("eipassoc-{h}")),
            tags: BTreeMap::new(),
        }
    }

    fn states(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_instance_that_holds_a_pool_address_keeps_it() {
        let pool = [
            address("a", "1.1.1.1", None),
            address("b", "2.2.2.2", Some("i-me")),
        ];
        assert!(
            matches!(choose(&pool, "i-me", &states(&[])), Choice::AlreadyHolds { address } if address.public_ip == "2.2.2.2")
        );
    }

    #[test]
    fn a_free_address_comes_before_any_takeover() {
        let pool = [
            address("a", "1.1.1.1", Some("i-old")),
            address("b", "2.2.2.2", None),
        ];
        let choice = choose(&pool, "i-new", &states(&[("i-old", "stopped")]));
        assert!(matches!(choice, Choice::Free { address } if address.allocation_id == "b"));
    }

    #[test]
    fn an_address_of_a_leaving_or_vanished_instance_is_taken_over_but_never_a_healthy_ones() {
        let pool = [
            address("a", "1.1.1.1", Some("i-live")),
            address("b", "2.2.2.2", Some("i-old")),
        ];
        let choice = choose(
            &pool,
            "i-new",
            &states(&[("i-live", "running"), ("i-old", "shutting-down")]),
        );
        assert_eq!(
            choice,
            Choice::TakeOver {
                address: pool[1].clone(),
                from: "i-old".into(),
                from_state: "shutting-down".into()
            }
        );
        let vanished = choose(
            &pool[..1]
                .iter()
                .cloned()
                .map(|mut a| {
                    a.instance_id = Some("i-gone".into());
                    a
                })
                .collect::<Vec<_>>(),
            "i-new",
            &states(&[]),
        );
        assert!(
            matches!(vanished, Choice::TakeOver { from_state, .. } if from_state == "terminated")
        );
        let healthy = choose(
            &pool,
            "i-new",
            &states(&[("i-live", "running"), ("i-old", "pending")]),
        );
        assert_eq!(
            healthy,
            Choice::Exhausted {
                holders: vec![
                    "1.1.1.1 (i-live, running)".into(),
                    "2.2.2.2 (i-old, pending)".into()
                ]
            }
        );
    }

    #[test]
    fn a_launch_gets_an_address_only_while_held_at_the_hook_and_alive() {
        let stand = |lifecycle, state| launch_stand("bastion", "i-new", lifecycle, state);
        assert_eq!(
            stand(Some("Pending:Wait"), Some("pending")),
            LaunchStand::Waiting
        );
        assert_eq!(
            stand(Some("Pending"), Some("running")),
            LaunchStand::Waiting
        );
        assert_eq!(
            stand(Some("Pending:Wait"), Some("terminated")),
            LaunchStand::InstanceGone {
                state: "terminated".into()
            }
        );
        assert_eq!(
            stand(Some("Pending:Wait"), Some("shutting-down")),
            LaunchStand::InstanceGone {
                state: "shutting-down".into()
            }
        );
        assert_eq!(stand(Some("Pending:Wait"), None), LaunchStand::NotYetKnown);
        // A duplicate after CONTINUE, or a late event after ABANDON: nothing to do.
        for lifecycle in [
            "InService",
            "Pending:Proceed",
            "Terminating",
            "Terminating:Wait",
        ] {
            assert!(
                matches!(stand(Some(lifecycle), Some("running")), LaunchStand::Over { reason } if reason == format!("group bastion has i-new {lifecycle}: its launch is no longer held at the hook")),
                "{lifecycle}"
            );
        }
        assert_eq!(
            stand(None, Some("terminated")),
            LaunchStand::Over {
                reason: "i-new is terminated and no longer in group bastion".into()
            }
        );
        assert_eq!(
            stand(None, None),
            LaunchStand::Over {
                reason: "i-new is not in group bastion and is unknown to EC2".into()
            }
        );
        // Not in the group, yet alive: not one of its launches.
        assert_eq!(
            stand(None, Some("running")),
            LaunchStand::NotInGroup {
                state: "running".into()
            }
        );
    }
}
