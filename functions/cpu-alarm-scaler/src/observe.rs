//! Observe: read alarms and targets from AWS into the views the decisions take.

use ops_core::aws::appscaling::ScalableTargets;
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::cloudwatch::{AlarmState, CloudWatchAlarms};
use ops_core::aws::ecs::{EcsServices, ServiceState};
use ops_core::{Error, Result};

use crate::contract::{self, policy, Memory, TargetRef};
use crate::decide::{AlarmView, TargetView};

/// The AWS adapters the scaler reads and changes through.
pub struct Clients {
    /// CloudWatch alarms.
    pub alarms: CloudWatchAlarms,
    /// Auto Scaling groups.
    pub groups: AutoScalingGroups,
    /// ECS services.
    pub ecs: EcsServices,
    /// Native scaling of ECS services.
    pub scalable: ScalableTargets,
}

/// An alarm's view, or why it cannot be used (not opted in, bad tags).
pub fn alarm_view(alarm: &AlarmState) -> Result<AlarmView> {
    let greater = alarm.comparison.starts_with("Greater");
    let policy = policy(&alarm.tags, greater)
        .ok_or_else(|| {
            Error::Refused(format!(
                "alarm {} has no `{}` tag: it does not scale anything",
                alarm.name,
                contract::TARGET
            ))
        })?
        .map_err(|e| Error::Refused(format!("alarm {}: {e}", alarm.name)))?;
    let threshold = alarm.threshold.ok_or_else(|| {
        Error::Refused(format!(
            "alarm {} has no static threshold (anomaly-detection alarms are not supported)",
            alarm.name
        ))
    })?;
    Ok(AlarmView {
        name: alarm.name.clone(),
        in_alarm: alarm.state == "ALARM",
        state_millis: (alarm.state_updated_epoch.unwrap_or_default() * 1000.0).round() as u64,
        metric: alarm.metric.clone(),
        threshold,
        greater,
        value: alarm.latest_datapoint(),
        policy,
    })
}

/// Read a target: capacity, bounds, what blocks scale-in, native scaling, and the scaler's memory.
pub async fn target_view(clients: &Clients, target: &TargetRef) -> Result<TargetView> {
    match target {
        TargetRef::Group { name } => {
            let group = clients.groups.describe(name).await?;
            let launching: Vec<&String> = group
                .instances
                .iter()
                .filter(|(_, s)| s.starts_with("Pending"))
                .map(|(id, _)| id)
                .collect();
            let leaving: Vec<&String> = group
                .instances
                .iter()
                .filter(|(_, s)| s.starts_with("Terminating"))
                .map(|(id, _)| id)
                .collect();
            let busy = match (launching.is_empty(), leaving.is_empty()) {
                (true, true) => None,
                _ => Some(format!(
                    "instances are launching ({}) or terminating ({})",
                    launching.len(),
                    leaving.len()
                )),
            };
            Ok(TargetView {
                target: target.clone(),
                tag_resource: group.name.clone(),
                desired: group.desired,
                min: group.min,
                max: group.max,
                busy,
                warming: !launching.is_empty(),
                native: clients.groups.native_scaling(name).await?,
                memory: Memory::from_tags(&group.tags),
            })
        }
        TargetRef::Service { cluster, service } => {
            let state = clients.ecs.describe(cluster, service).await?;
            let (min, max) = service_bounds(target, &state)?;
            let rolling = state
                .deployments
                .iter()
                .find(|d| {
                    d.rollout_state.as_deref() == Some("IN_PROGRESS") || d.status != "PRIMARY"
                })
                .map(|d| {
                    format!(
                        "deployment {} is {}",
                        d.id,
                        d.rollout_state.as_deref().unwrap_or("in progress")
                    )
                });
            let swapping = state
                .tag(ops_core::tags::SWAP_IN_FLIGHT)
                .map(|swap| format!("a blue/green swap is in flight ({swap})"));
            Ok(TargetView {
                target: target.clone(),
                tag_resource: state.arn.clone(),
                desired: state.desired,
                min,
                max,
                busy: rolling.or(swapping),
                warming: false,
                native: clients
                    .scalable
                    .native_scaling_of_service(cluster, service)
                    .await?,
                memory: Memory::from_tags(&state.tags),
            })
        }
    }
}

/// An ECS service's bounds from its `ops:scale-min` and `ops:scale-max` tags, or why it cannot be
/// scaled (`target` names it in the error).
pub fn service_bounds(target: &TargetRef, state: &ServiceState) -> Result<(i32, i32)> {
    let bound = |tag: &'static str| -> Result<i32> {
        let raw = state.tag(tag).ok_or_else(|| {
            Error::Refused(format!(
                "{target} has no `{tag}` tag: an ECS service must state its bounds to be scaled"
            ))
        })?;
        raw.trim().parse().map_err(|_| {
            Error::Refused(format!(
                "{target}: tag `{tag}` = `{raw}` is not a whole number"
            ))
        })
    };
    let (min, max) = (bound(contract::SERVICE_MIN)?, bound(contract::SERVICE_MAX)?);
    if min < 0 || max < min {
        return Err(Error::Refused(format!(
            "{target}: bounds {min}..{max} are not a range"
        )));
    }
    Ok((min, max))
}

/// Re-read a target's capacity and the scaler's memory on it (one call), to check a claim.
pub async fn memory_of(clients: &Clients, target: &TargetRef) -> Result<(i32, Memory)> {
    match target {
        TargetRef::Group { name } => {
            let group = clients.groups.describe(name).await?;
            Ok((group.desired, Memory::from_tags(&group.tags)))
        }
        TargetRef::Service { cluster, service } => {
            let state = clients.ecs.describe(cluster, service).await?;
            Ok((state.desired, Memory::from_tags(&state.tags)))
        }
    }
}
