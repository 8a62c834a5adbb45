//! The handler: a launch held at the lifecycle hook, a standalone bastion starting, or the
//! reconcile schedule, each ending with every bastion holding a pool address or ops told why not;
//! and the chat commands (`doctor`, `help`).
//!
//! A launch event is acted on only while AWS says the launch is still waiting: the group holds the
//! instance at its hook (`Pending:Wait`) and EC2 has it pending or running. A duplicate or late
//! event (the action already completed with CONTINUE or ABANDON) touches no address and completes
//! nothing; an instance already going away gets no address and its launch is abandoned. If the
//! action ends while this run associates (a concurrent duplicate, the hook's timeout), the answer
//! of CompleteLifecycleAction says so, and an address this run gave to an instance whose launch did
//! not go on is given back.

use ops_core::alert::AlertSink;
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::iam::IamSimulator;
use ops_core::command::Command;
use ops_core::doctor;
use ops_core::events::{
    classify, parse_event, EventError, Incoming, LifecycleAction, LAUNCH_LIFECYCLE_ACTION,
    SCHEDULED_EVENT,
};
use ops_core::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::associate::{secure, Hold, Secured};
use crate::commands::COMMANDS;
use crate::config::{AssociatorConfig, GROUP_TAG, POOL_TAG};
use crate::decide::{launch_stand, LaunchStand, UNKNOWN_TO_EC2};
use crate::report::{abandoned_alert, secured_alert, Whereabouts};

/// `detail-type` of an EC2 instance state change.
pub const INSTANCE_STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// Detail of `EC2 Instance State-change Notification`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstanceStateChange {
    /// The instance.
    pub instance_id: String,
    /// Its new state.
    pub state: String,
}

/// What the handler works with, built once at start.
pub struct Deps<A> {
    /// EC2 adapter.
    pub ec2: Ec2,
    /// Auto Scaling adapter.
    pub groups: AutoScalingGroups,
    /// IAM's policy simulator, for `doctor`.
    pub iam: IamSimulator,
    /// Where alerts go.
    pub alerts: A,
    /// Configuration.
    pub config: AssociatorConfig,
}

/// Handle one invocation; the JSON says what was done.
pub async fn function_handler<A: AlertSink>(payload: Value, deps: &Deps<A>) -> Result<Value> {
    match classify(payload)? {
        Incoming::Event { detail_type, raw, .. } if detail_type == LAUNCH_LIFECYCLE_ACTION => {
            on_launch(parse_event::<LifecycleAction>(&raw)?.detail, deps).await
        }
        Incoming::Event { detail_type, raw, .. } if detail_type == INSTANCE_STATE_CHANGE => {
            on_instance_running(parse_event::<InstanceStateChange>(&raw)?.detail, deps).await
        }
        Incoming::Event { detail_type, .. } if detail_type == SCHEDULED_EVENT => reconcile(deps).await,
        Incoming::Event { detail_type, .. } => {
            debug!(detail_type, "event type not handled");
            Ok(json!({ "status": "ignored", "reason": format!("bastion-eip-associator does not handle `{detail_type}` events") }))
        }
        Incoming::Command(raw) => {
            on_command(COMMANDS.parse(&deps.config.common.function_name, &raw)?, deps).await
        }
        Incoming::AlarmAction(_) => Err(EventError::Unrecognised(
            "bastion-eip-associator takes lifecycle, instance state-change and schedule events and chat commands only".into(),
        )
        .into()),
    }
}

async fn on_command<A: AlertSink>(command: Command, deps: &Deps<A>) -> Result<Value> {
    match command.name.as_str() {
        "doctor" => Ok(doctor::conclude(
            &deps.config.common,
            crate::doctor::examine(&deps.config, &deps.ec2, &deps.groups).await,
            &deps.iam,
            &deps.alerts,
        )
        .await),
        _ => Ok(
            json!({ "status": "help", "help": COMMANDS.help(&deps.config.common.function_name) }),
        ),
    }
}

async fn on_launch<A: AlertSink>(action: LifecycleAction, deps: &Deps<A>) -> Result<Value> {
    let malformed = |reason: String| {
        Error::Event(EventError::Malformed {
            detail_type: LAUNCH_LIFECYCLE_ACTION.into(),
            reason,
        })
    };
    if action.lifecycle_transition != "autoscaling:EC2_INSTANCE_LAUNCHING" {
        return Err(malformed(format!(
            "transition `{}` is not a launch",
            action.lifecycle_transition
        )));
    }
    if !action.ec2_instance_id.starts_with("i-") {
        return Err(malformed(format!(
            "`{}` is not an instance id",
            action.ec2_instance_id
        )));
    }
    let group_name = &action.auto_scaling_group_name;
    if !deps.config.groups.iter().any(|g| g == group_name) {
        return Err(Error::Refused(format!(
            "group `{group_name}` is not in BASTION_GROUPS of this function"
        )));
    }
    let group = deps.groups.describe(group_name).await?;
    let pool = group.tags.get(POOL_TAG).cloned().ok_or_else(|| {
        Error::Refused(format!(
            "group `{group_name}` has no `{POOL_TAG}` tag naming its Elastic IP pool"
        ))
    })?;
    let instance = deps
        .ec2
        .instances(std::slice::from_ref(&action.ec2_instance_id))
        .await?
        .into_iter()
        .next();
    let stand = launch_stand(
        group_name,
        &action.ec2_instance_id,
        group
            .instances
            .get(&action.ec2_instance_id)
            .map(String::as_str),
        instance.as_ref().map(|i| i.state.as_str()),
    );
    let at = Whereabouts {
        instance: action.ec2_instance_id.clone(),
        group: Some(group_name.clone()),
        zone: instance.and_then(|i| i.zone),
        pool,
    };
    let secured = match stand {
        LaunchStand::Waiting => {
            let hold = Hold::AtHook {
                groups: &deps.groups,
                group: group_name,
            };
            secure(&deps.ec2, &deps.config, &at.pool, &at.instance, hold).await?
        }
        LaunchStand::InstanceGone { state } => Secured::InstanceGone { state },
        LaunchStand::Over { reason } => {
            // A duplicate or late event: the action was completed (or timed out) before.
            info!(instance = %at.instance, %reason, "launch no longer held at the hook; nothing to do");
            return Ok(json!({ "status": "already_completed", "instance": at.instance, "reason": reason }));
        }
        LaunchStand::NotYetKnown => {
            return Err(Error::Incomplete {
                applied: 0,
                planned: 1,
                message: format!(
                    "group {group_name} holds {} at its launch hook but it is {UNKNOWN_TO_EC2} yet; nothing was associated",
                    at.instance
                ),
                retryable: true,
            })
        }
        LaunchStand::NotInGroup { state } => {
            return Err(Error::Refused(format!(
                "{} is not held at a launch hook of group `{group_name}` (the group does not list it; EC2 has it {state})",
                at.instance
            )))
        }
    };
    let result = match &secured {
        Secured::LaunchOver { lifecycle_state } => {
            return Ok(json!({
                "status": "already_completed",
                "instance": at.instance,
                "reason": if lifecycle_state == "absent" {
                    format!("{} is no longer in group {group_name}: its launch is no longer held at the hook", at.instance)
                } else {
                    format!("group {group_name} has {} {lifecycle_state}: its launch is no longer held at the hook", at.instance)
                },
                "secured": secured,
            }));
        }
        Secured::Exhausted { .. } | Secured::InstanceGone { .. } => "ABANDON",
        Secured::AlreadyHeld { .. } | Secured::Associated { .. } | Secured::TookOver { .. } => {
            "CONTINUE"
        }
    };
    let completed = deps
        .groups
        .complete_lifecycle_action(
            group_name,
            &action.lifecycle_hook_name,
            &action.lifecycle_action_token,
            &at.instance,
            result,
        )
        .await?;
    if !completed {
        // The action ended while this run worked: a concurrent duplicate completed it, or the
        // hook timed out. An address this run associated goes back if the launch did not go on.
        let released = match &secured {
            Secured::Associated { association_id, .. }
            | Secured::TookOver { association_id, .. } => {
                release_if_not_launched(deps, group_name, &at.instance, association_id).await?
            }
            _ => false,
        };
        info!(instance = %at.instance, result, released, "lifecycle action was already completed");
        return Ok(
            json!({ "status": "already_completed", "instance": at.instance, "secured": secured, "released": released }),
        );
    }
    let why = format!(
        "Launch of {} held at lifecycle hook {}; completed with {result}.",
        at.instance, action.lifecycle_hook_name
    );
    let alert = match &secured {
        Secured::InstanceGone { state } => Some(abandoned_alert(
            &deps.config.common.function_name,
            &at,
            state,
            &why,
        )),
        _ => secured_alert(
            &deps.config.common.function_name,
            &at,
            &secured,
            &why,
            false,
        ),
    };
    if let Some(alert) = alert {
        let alert = if result == "ABANDON" {
            alert.next_step(format!("The group {group_name} replaces the abandoned instance; it will compete for the pool again."))
        } else {
            alert
        };
        deps.alerts.publish(&alert).await?;
    }
    Ok(
        json!({ "status": "completed", "result": result, "instance": at.instance, "secured": secured }),
    )
}

/// After CompleteLifecycleAction answered that the action was no longer open: if the group did
/// not take `instance` into service (it is terminating or gone: the launch was abandoned), end the
/// association this run made, by its id (a later association of the address is left alone).
/// Whether it was ended.
async fn release_if_not_launched<A: AlertSink>(
    deps: &Deps<A>,
    group: &str,
    instance: &str,
    association_id: &str,
) -> Result<bool> {
    let lifecycle = deps
        .groups
        .describe(group)
        .await?
        .instances
        .remove(instance);
    let launched = lifecycle
        .as_deref()
        .is_some_and(|l| !l.starts_with("Terminat"));
    if launched {
        return Ok(false);
    }
    let released = deps.ec2.disassociate(association_id).await?;
    warn!(instance, group, lifecycle = ?lifecycle, association_id, released, "the launch ended while it got its address; the address was given back to the pool");
    Ok(released)
}

async fn on_instance_running<A: AlertSink>(
    change: InstanceStateChange,
    deps: &Deps<A>,
) -> Result<Value> {
    if change.state != "running" {
        return Ok(
            json!({ "status": "ignored", "reason": format!("state `{}` needs nothing", change.state) }),
        );
    }
    let Some(instance) = deps
        .ec2
        .instances(std::slice::from_ref(&change.instance_id))
        .await?
        .into_iter()
        .next()
    else {
        return Err(Error::NotFound {
            kind: "EC2 instance",
            name: change.instance_id,
        });
    };
    if instance.tags.contains_key(GROUP_TAG) {
        return Ok(
            json!({ "status": "ignored", "reason": "instances of a group get their address at its lifecycle hook" }),
        );
    }
    let Some(pool) = instance.tags.get(POOL_TAG).cloned() else {
        return Ok(
            json!({ "status": "ignored", "reason": format!("{} has no `{POOL_TAG}` tag", instance.id) }),
        );
    };
    let at = Whereabouts {
        instance: instance.id.clone(),
        group: None,
        zone: instance.zone.clone(),
        pool,
    };
    let secured = secure(
        &deps.ec2,
        &deps.config,
        &at.pool,
        &at.instance,
        Hold::Running,
    )
    .await?;
    let why = format!("{} started running.", at.instance);
    if let Some(alert) = secured_alert(
        &deps.config.common.function_name,
        &at,
        &secured,
        &why,
        false,
    ) {
        deps.alerts.publish(&alert).await?;
    }
    Ok(json!({ "status": "done", "instance": at.instance, "secured": secured }))
}

/// Every running bastion (instances of the listed groups, and standalone tagged ones) without a
/// pool address gets one if it can.
async fn reconcile<A: AlertSink>(deps: &Deps<A>) -> Result<Value> {
    let mut bastions: Vec<Whereabouts> = Vec::new();
    for name in &deps.config.groups {
        let group = match deps.groups.describe(name).await {
            Ok(group) => group,
            Err(error) if !error.retryable() => {
                warn!(group = %name, %error, "group skipped by the reconcile");
                continue;
            }
            Err(error) => return Err(error),
        };
        let Some(pool) = group.tags.get(POOL_TAG) else {
            continue;
        };
        for (id, state) in &group.instances {
            if state == "InService" {
                bastions.push(Whereabouts {
                    instance: id.clone(),
                    group: Some(name.clone()),
                    zone: None,
                    pool: pool.clone(),
                });
            }
        }
    }
    let mut pools: Vec<String> = deps
        .ec2
        .addresses_tagged(POOL_TAG, None)
        .await?
        .into_iter()
        .filter_map(|a| a.tags.get(POOL_TAG).cloned())
        .collect();
    pools.sort();
    pools.dedup();
    for pool in &pools {
        for instance in deps.ec2.running_tagged(POOL_TAG, pool).await? {
            if !instance.tags.contains_key(GROUP_TAG) {
                bastions.push(Whereabouts {
                    instance: instance.id,
                    group: None,
                    zone: instance.zone,
                    pool: pool.clone(),
                });
            }
        }
    }
    let mut repaired = Vec::new();
    for at in &bastions {
        let secured = secure(
            &deps.ec2,
            &deps.config,
            &at.pool,
            &at.instance,
            Hold::Running,
        )
        .await?;
        if let Some(alert) = secured_alert(
            &deps.config.common.function_name,
            at,
            &secured,
            "The reconcile schedule found a bastion without its pool address.",
            true,
        ) {
            deps.alerts.publish(&alert).await?;
            repaired.push(json!({ "instance": at.instance, "secured": secured }));
        }
    }
    Ok(json!({ "status": "reconciled", "bastions": bastions.len(), "repaired": repaired }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_change_and_lifecycle_samples_in_events_parse() {
        let read = |file: &str| -> Value {
            let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(
                &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
            )
            .unwrap()
        };
        let running =
            parse_event::<InstanceStateChange>(&read("ec2-instance-running.json")).unwrap();
        assert_eq!(
            (
                running.detail.instance_id.as_str(),
                running.detail.state.as_str()
            ),
            ("i-0abcdef1234567890", "running")
        );
        let launch =
            parse_event::<LifecycleAction>(&read("asg-launch-lifecycle-action.json")).unwrap();
        assert_eq!(launch.detail.auto_scaling_group_name, "bastion");
    }
}
