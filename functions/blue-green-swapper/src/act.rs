//! Act: apply one planned action to AWS.

use std::collections::BTreeMap;

use ops_core::alert::AlertSink;
use ops_core::aws::ecs::TaskDefinitionState;
use ops_core::aws::elbv2::Route;
use ops_core::{Error, Result};
use tracing::info;

use crate::contract;
use crate::decide::{Action, BeginSpec};
use crate::observe::Clients;
use crate::report::transition_alert;

/// What acting needs beyond the clients: the routes as observed (a weight change rewrites their
/// actions) and the revision a new one is cloned from.
pub struct Context<'a, A> {
    /// AWS adapters.
    pub clients: &'a Clients,
    /// Where alerts go.
    pub alerts: &'a A,
    /// The function's name, for alerts.
    pub function: &'a str,
    /// Observed routes by ARN.
    pub routes: BTreeMap<String, Route>,
    /// The live colour's revision, when a swap begins with a new image.
    pub base: Option<TaskDefinitionState>,
}

/// Apply `action`.
pub async fn apply<A: AlertSink>(context: &Context<'_, A>, action: &Action) -> Result<()> {
    let clients = context.clients;
    match action {
        Action::Begin(spec) => begin(context, spec).await,
        Action::Record { route, state } => clients.lb.tag(route, &state.tags()).await,
        Action::Weights { route, weights } => {
            let observed = context.routes.get(route).ok_or_else(|| Error::NotFound {
                kind: "observed route",
                name: route.clone(),
            })?;
            clients.lb.set_weights(observed, weights).await?;
            info!(route = %route, weights = ?weights, "traffic moved");
            Ok(())
        }
        Action::Service {
            cluster,
            service,
            task_definition,
            desired,
            ..
        } => {
            clients
                .ecs
                .deploy(cluster, service, task_definition, *desired)
                .await
        }
        Action::Mark { services, value } => {
            let tags = BTreeMap::from([(contract::IN_FLIGHT.to_string(), value.clone())]);
            for service in services {
                clients.ecs.tag(service, &tags).await?;
            }
            Ok(())
        }
        Action::Unmark { services } => {
            for service in services {
                clients
                    .ecs
                    .untag(service, &[contract::IN_FLIGHT.to_string()])
                    .await?;
            }
            Ok(())
        }
        Action::Report(transition) => {
            context
                .alerts
                .publish(&transition_alert(context.function, transition))
                .await
        }
    }
}

/// Register the new revision (unless an earlier run did), then record the swap: the commit point.
async fn begin<A: AlertSink>(context: &Context<'_, A>, spec: &BeginSpec) -> Result<()> {
    let clients = context.clients;
    let mut plan = spec.plan.clone();
    if let Some(registration) = &spec.register {
        let base = context
            .base
            .as_ref()
            .filter(|b| b.arn() == registration.base)
            .ok_or_else(|| Error::NotFound {
                kind: "observed task definition",
                name: registration.base.clone(),
            })?;
        let arn = clients
            .ecs
            .register_revision(
                &base.definition,
                &registration.images,
                &base.derived_tags(&registration.digest),
            )
            .await?;
        plan.task_definition = ops_core::aws::ecs::short_task_definition(&arn);
        info!(revision = %plan.task_definition, "revision registered");
    }
    let mut tags = BTreeMap::from([
        (contract::PLAN.to_string(), plan.encode()),
        (contract::IMAGE.to_string(), spec.image.clone()),
    ]);
    tags.extend(spec.state.tags());
    clients.lb.tag(&spec.route, &tags).await?;
    info!(swap = %plan.id, to = %plan.to, revision = %plan.task_definition, "swap recorded");
    Ok(())
}
