//! Act: apply one planned action to ECS.

use std::collections::BTreeMap;

use ops_core::aws::ecs::{short_task_definition, EcsServices, TaskDefinitionState};
use ops_core::{Error, Result};
use serde::Serialize;
use tracing::info;

use crate::contract::{self, InFlight};
use crate::decide::{Action, ServiceRef};

/// A deployment an action started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    /// `cluster/service`.
    pub service: String,
    /// ECS deployment id.
    pub deployment_id: String,
    /// Revision before (`family:revision`).
    pub from: String,
    /// Revision deployed (`family:revision`).
    pub to: String,
}

/// Apply `action`. `revisions` holds the observed revisions a deploy clones from, by ARN.
pub async fn apply(
    ecs: &EcsServices,
    action: &Action,
    revisions: &BTreeMap<String, TaskDefinitionState>,
    now: u64,
) -> Result<Option<Started>> {
    match action {
        Action::Deploy(spec) => {
            let target = match &spec.reuse {
                Some(arn) => arn.clone(),
                None => {
                    let base = revisions.get(&spec.from).ok_or_else(|| Error::NotFound {
                        kind: "observed task definition",
                        name: spec.from.clone(),
                    })?;
                    let images = spec
                        .containers
                        .iter()
                        .map(|c| (c.container.clone(), c.to.clone()))
                        .collect();
                    ecs.register_revision(
                        &base.definition,
                        &images,
                        &base.derived_tags(&spec.digest),
                    )
                    .await?
                }
            };
            // The newest image is recorded in the same TagResource as the in-flight record: a
            // crash before it leaves a service that runs the image, and the retried push records
            // both (see `decide_deploy`).
            let extra = spec
                .newest
                .iter()
                .map(|n| (contract::NEWEST_PUSHED.to_string(), n.encode()))
                .collect();
            start(
                ecs,
                &spec.target,
                &spec.from,
                &target,
                spec.trigger.clone(),
                now,
                extra,
            )
            .await
            .map(Some)
        }
        Action::Rollback(spec) => start(
            ecs,
            &spec.target,
            &spec.from,
            &spec.to,
            spec.trigger.clone(),
            now,
            BTreeMap::new(),
        )
        .await
        .map(Some),
        Action::Record(spec) => {
            ecs.tag(&spec.target.service_arn, &spec.tags).await?;
            Ok(None)
        }
    }
}

async fn start(
    ecs: &EcsServices,
    target: &ServiceRef,
    from: &str,
    to: &str,
    trigger: contract::Trigger,
    now: u64,
    mut tags: BTreeMap<String, String>,
) -> Result<Started> {
    let deployment_id = ecs
        .update_task_definition(&target.cluster, &target.service_arn, to)
        .await?;
    let in_flight = InFlight {
        deployment_id: deployment_id.clone(),
        trigger,
        started_at: now,
        from: short_task_definition(from),
        to: short_task_definition(to),
    };
    tags.insert(contract::IN_FLIGHT.to_string(), in_flight.encode());
    ecs.tag(&target.service_arn, &tags).await?;
    info!(service = %target.service, deployment_id, from = %in_flight.from, to = %in_flight.to, "deployment started");
    Ok(Started {
        service: target.service.clone(),
        deployment_id,
        from: in_flight.from,
        to: in_flight.to,
    })
}
