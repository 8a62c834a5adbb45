//! Pure decisions: which address of the pool an instance should get, if any.

use std::collections::BTreeMap;

use ops_core::aws::ec2::AddressState;
use serde::Serialize;

/// Instance states whose address may be taken over: the bastion is going away.
pub const LEAVING_STATES: &[&str] = &["stopping", "stopped", "shutting-down", "terminated"];

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
        holders: pool
            .iter()
            .map(|a| {
                let holder = a.instance_id.clone().unwrap_or_default();
                format!("{} ({holder}, {})", a.public_ip, state_of(&holder))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(id: &str, ip: &str, holder: Option<&str>) -> AddressState {
        AddressState {
            allocation_id: id.into(),
            public_ip: ip.into(),
            instance_id: holder.map(String::from),
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
}
