//! Observe: find the apps among the configured routes and read one into an [`AppView`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::{short_task_definition, EcsServices, ServiceState};
use ops_core::aws::elbv2::LoadBalancers;
use ops_core::aws::service_deployments;
use ops_core::probe::{self, TlsConfigs};
use ops_core::{Error, Result};

use crate::contract::{self, app_spec, is_test_route, recorded_swap, AppSpec, Colour};
use crate::gate::{self, GateView};
use crate::hook::{
    self, ExecutionDetails, Hold, HookCall, HookGates, HookView, Release, HOOK_ALERTED,
    HOOK_HOLDING, HOOK_RELEASE,
};
use crate::test_url::{HOOK_TEST_URL, TEST_STAGE, TIMEOUT as TEST_URL_TIMEOUT};
use crate::view::{AlarmView, AppView, ColourView, OtherRoute};

/// The AWS adapters the swapper reads and changes through.
pub struct Clients {
    /// Listeners, rules and target health.
    pub lb: LoadBalancers,
    /// ECS services and task definitions.
    pub ecs: EcsServices,
    /// ECR, to pin a tag to its digest.
    pub ecr: EcrImages,
    /// The alarms that gate swaps.
    pub alarms: CloudWatchAlarms,
}

/// An app found among the configured routes.
#[derive(Debug, Clone)]
pub struct AppEntry {
    /// The app's name.
    pub name: String,
    /// The live route's ARN.
    pub live: String,
    /// The live route's tags.
    pub tags: BTreeMap<String, String>,
    /// The test route's ARN and tags, if the app has one.
    pub test: Option<(String, BTreeMap<String, String>)>,
}

impl AppEntry {
    /// The app's contract, or why it cannot be used.
    pub fn spec(&self) -> Result<AppSpec> {
        app_spec(&self.tags)
            .unwrap_or(Err(contract::ContractError::Missing(contract::APP)))
            .map_err(|e| Error::Refused(format!("app {} ({}): {e}", self.name, self.live)))
    }

    /// Whether a swap recorded on it still has work to do (or its tags cannot be read, which a
    /// closer look reports).
    pub fn needs_work(&self) -> bool {
        match recorded_swap(&self.tags) {
            Some(Ok(swap)) => swap.needs_work(),
            Some(Err(_)) => true,
            None => false,
        }
    }
}

/// Every app among `routes` (one DescribeTags call per 20 routes). A route that names an app
/// twice as live is an error for that app, reported when it is looked at.
pub async fn apps(lb: &LoadBalancers, routes: &[String]) -> Result<Vec<AppEntry>> {
    let tags = lb.tags(routes).await?;
    let mut tests: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    let mut found: Vec<AppEntry> = Vec::new();
    for arn in routes {
        let Some(route_tags) = tags.get(arn) else {
            continue;
        };
        let Some(name) = route_tags.get(contract::APP).map(|n| n.trim().to_string()) else {
            continue;
        };
        if is_test_route(route_tags) {
            tests.insert(name, (arn.clone(), route_tags.clone()));
        } else {
            found.push(AppEntry {
                name,
                live: arn.clone(),
                tags: route_tags.clone(),
                test: None,
            });
        }
    }
    for entry in &mut found {
        entry.test = tests.remove(&entry.name);
    }
    Ok(found)
}

/// The app named `name`, or [`Error::NotFound`] listing the apps there are.
pub fn find<'a>(entries: &'a [AppEntry], name: &str) -> Result<&'a AppEntry> {
    let matching: Vec<&AppEntry> = entries.iter().filter(|e| e.name == name.trim()).collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::NotFound {
            kind: "blue/green app",
            name: format!(
                "{name} (apps on the routes in SWAP_ROUTES: {})",
                if entries.is_empty() {
                    "none".to_string()
                } else {
                    entries
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        }),
        several => Err(Error::Refused(format!(
            "app {name} is tagged as live on {} routes ({}); one app has one live route",
            several.len(),
            several
                .iter()
                .map(|e| e.live.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Read an app: routes, both colours with their target health, its alarms and its swap.
pub async fn app_view(clients: &Clients, entry: &AppEntry, clusters: &[String]) -> Result<AppView> {
    let spec = entry.spec()?;
    for colour in [Colour::Blue, Colour::Green] {
        let cluster = &spec.service(colour).cluster;
        if !clusters.iter().any(|c| c == cluster) {
            return Err(Error::Refused(format!(
                "app {}: {colour} is in cluster `{cluster}`, which is not in ECS_CLUSTERS ({})",
                spec.name,
                clusters.join(", ")
            )));
        }
    }
    let swap = recorded_swap(&entry.tags).transpose().map_err(|e| {
        Error::Refused(format!(
            "app {}: the swap recorded on {} cannot be read: {e}",
            spec.name, entry.live
        ))
    })?;
    let route = clients
        .lb
        .route_with_tags(&entry.live, entry.tags.clone())
        .await?;
    let test_route = match &entry.test {
        Some((arn, tags)) => Some(clients.lb.route_with_tags(arn, tags.clone()).await?),
        None => None,
    };
    let blue = colour_view(clients, &spec, Colour::Blue).await?;
    let green = colour_view(clients, &spec, Colour::Green).await?;
    if blue.target_group == green.target_group {
        return Err(Error::Refused(format!(
            "app {}: blue and green are registered in the same target group {}",
            spec.name, blue.target_group
        )));
    }
    let (alarms, missing_alarms) = alarm_views(clients, &spec.alarms).await?;
    Ok(AppView {
        spec,
        route,
        test_route,
        blue,
        green,
        swap,
        alarms,
        missing_alarms,
        other_routes: Vec::new(),
    })
}

/// `view` with the other routes of its load balancer that send traffic to either colour: a swap
/// replaces the idle colour's tasks and scales the live one to 0, under those routes too.
pub async fn with_other_routes(clients: &Clients, mut view: AppView) -> Result<AppView> {
    let own: Vec<&str> = std::iter::once(view.route.arn.as_str())
        .chain(view.test_route.as_ref().map(|r| r.arn.as_str()))
        .collect();
    let routes = clients.lb.routes_of_load_balancer(&view.route.arn).await?;
    view.other_routes = routes
        .iter()
        .filter(|route| !own.contains(&route.arn.as_str()))
        .filter_map(|route| {
            let forwards = route.forwards()?;
            let sends_to: Vec<Colour> = [Colour::Blue, Colour::Green]
                .into_iter()
                .filter(|colour| {
                    forwards.iter().any(|w| {
                        w.weight > 0 && w.target_group_arn == view.colour(*colour).target_group
                    })
                })
                .collect();
            (!sends_to.is_empty()).then(|| OtherRoute {
                arn: route.arn.clone(),
                sends_to,
            })
        })
        .collect();
    Ok(view)
}

async fn colour_view(clients: &Clients, spec: &AppSpec, colour: Colour) -> Result<ColourView> {
    let name = spec.service(colour);
    let service: ServiceState = clients.ecs.describe(&name.cluster, &name.service).await?;
    // Both sides opt in: the route names the service, and the service names the app, which is
    // also what the IAM policy checks before the swapper may update or tag it.
    if service.tag(contract::APP) != Some(spec.name.as_str()) {
        return Err(Error::Refused(format!(
            "app {}: {colour} ({name}) does not carry tag `{}` = `{}`; tag both services of the app",
            spec.name,
            contract::APP,
            spec.name
        )));
    }
    let target_group = match service.target_groups.as_slice() {
        [one] => one.clone(),
        groups => {
            return Err(Error::Refused(format!(
                "app {}: {colour} ({name}) is registered in {} target groups; a colour needs exactly one",
                spec.name,
                groups.len()
            )))
        }
    };
    let targets = clients.lb.target_health(&target_group).await?;
    Ok(ColourView {
        colour,
        service,
        target_group,
        targets,
    })
}

/// The named alarms as CloudWatch has them, and the names it does not know.
async fn alarm_views(clients: &Clients, names: &[String]) -> Result<(Vec<AlarmView>, Vec<String>)> {
    let alarms: Vec<AlarmView> = clients
        .alarms
        .states(names)
        .await?
        .iter()
        .map(|a| AlarmView {
            name: a.name.clone(),
            state: a.state.clone(),
            reason: a.reason.clone(),
        })
        .collect();
    let missing = names
        .iter()
        .filter(|name| !alarms.iter().any(|a| &a.name == *name))
        .cloned()
        .collect();
    Ok((alarms, missing))
}

/// What a lifecycle hook call needs, read from AWS. A call for a service outside the managed
/// clusters is answered without reading anything (its gates say why). Otherwise the call is
/// checked against ECS first: its service deployment must exist, belong to the service it names,
/// deploy the revision it names and be under way (or, for a traffic-shift call of a rollback,
/// rolling back), so a payload that did not come from ECS (the function can be invoked from chat
/// with anything) is refused before anything else is read or alerted.
pub async fn hook_view(
    call: &HookCall,
    clients: &Clients,
    clusters: &[String],
    reach: TestUrlReach,
) -> Result<HookView> {
    let service_arn = &call.execution_details.service_arn;
    let revision_arn = &call.execution_details.target_service_revision_arn;
    let (cluster, name) = call.cluster_and_service();
    if !clusters.contains(&cluster) {
        return Ok(HookView::unread(
            call,
            format!(
                "cluster `{cluster}` is not one blue-green-swapper manages (it manages {}); its hook checks nothing there",
                clusters.join(", ")
            ),
        ));
    }
    let ecs = clients.ecs.client();
    let (owner, deployment) = service_deployments::describe_one(ecs, &call.resource_arn)
        .await?
        .ok_or_else(|| {
            Error::Refused(format!(
                "ECS does not know service deployment {}: not a call from ECS, nothing checked",
                call.resource_arn
            ))
        })?;
    if owner != *service_arn {
        return Err(Error::Refused(format!(
            "service deployment {} belongs to {owner}, not to {service_arn}: not a call from ECS, nothing checked",
            call.resource_arn
        )));
    }
    if deployment.target_revision.as_deref() != Some(revision_arn.as_str()) {
        return Err(Error::Refused(format!(
            "service deployment {} deploys {}, not {revision_arn}: not a call from ECS, nothing checked",
            call.resource_arn,
            deployment.target_revision.as_deref().unwrap_or("no revision")
        )));
    }
    // ECS calls hooks while a deployment runs, and the traffic-shift hooks again while it rolls
    // back; a call for one that ended otherwise is late or forged.
    let runs = matches!(
        deployment.status.as_str(),
        "PENDING" | "IN_PROGRESS" | "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS"
    );
    let rolls_back = call.rolling_back() && deployment.status.starts_with("ROLLBACK_");
    if !(runs || rolls_back) {
        return Err(Error::Refused(format!(
            "service deployment {} is {}: ECS calls hooks only while a deployment runs, nothing checked",
            call.resource_arn, deployment.status
        )));
    }
    let (target, groups) = service_deployments::revision_target_groups(ecs, revision_arn)
        .await?
        .unwrap_or_default();
    let service = clients.ecs.describe(&cluster, &name).await?;
    let mut view = HookView {
        service: format!("{cluster}/{name}"),
        target: short_task_definition(&target),
        gates: HookGates::of(&service.tags),
        alarms: Vec::new(),
        missing_alarms: Vec::new(),
        targets: Vec::new(),
        test_check: None,
        desired: service.desired,
        deployment_created: deployment
            .created_at
            .map(|ms| u64::try_from(ms / 1000).unwrap_or(0)),
        alerted: service.tag(HOOK_ALERTED).map(String::from),
        release: service.tag(HOOK_RELEASE).and_then(Release::decode),
        holding: service.tag(HOOK_HOLDING).map(String::from),
        deployment_stage: deployment.stage.clone(),
        target_weight: deployment.target_weight.clone(),
        ecs_rolling_back: deployment.status.starts_with("ROLLBACK_")
            || deployment.status == "STOP_REQUESTED",
    };
    if groups.is_empty() {
        view.gates = Err(format!(
            "ECS names no target group for revision {revision_arn} of {}: its targets cannot be checked",
            view.service
        ));
    }
    if let Ok(gates) = &view.gates {
        (view.alarms, view.missing_alarms) = alarm_views(clients, &gates.alarms).await?;
    }
    for group in &groups {
        view.targets.extend(clients.lb.target_health(group).await?);
    }
    if reach == TestUrlReach::HookOnly {
        if let Ok(gates) = view.gates.as_mut() {
            gates.test_url = None;
        }
    }
    // The test URL is checked at its stage once the targets are healthy (before, the answer could
    // only wait), never while ECS rolls back or for a late call.
    let test_url = match &view.gates {
        Ok(gates) if call.lifecycle_stage == TEST_STAGE => gates.test_url.clone(),
        _ => None,
    };
    if let Some(test_url) = test_url {
        if !(call.rolling_back() || view.ecs_rolling_back || view.call_is_late(call))
            && hook::health_gate(&view).is_ok()
        {
            view.test_check = Some(probe::check(&test_url.probe(), TEST_URL_TIMEOUT, tls()).await);
        }
    }
    Ok(view)
}

/// Who may check a service's test URL in [`hook_view`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestUrlReach {
    /// This is the hook function: it checks the URL, from where it runs (its subnets).
    Here,
    /// Only the hook function reaches the URL (the swapper's chat runs outside its subnets): the
    /// view leaves the test URL out; the hook checked it before it held the deployment.
    HookOnly,
}

/// The TLS setups test URL checks use, built once per process (they read the system's roots).
fn tls() -> &'static TlsConfigs {
    static TLS: OnceLock<TlsConfigs> = OnceLock::new();
    TLS.get_or_init(|| TlsConfigs::new(&[]))
}

/// A service of ECS's own strategies as a person at the gate sees it (`app` is `cluster/service`):
/// its newest deployment in flight (else its newest), where the hook holds it for a person, and,
/// with `read_gates`, for one going forward at a stage, what the hook's gates answer there now
/// (the same reads and decision as a call of the hook; a read that fails is shown, not raised,
/// since an abort or a status must not wait on CloudWatch or ELB). A service outside the managed
/// clusters or on the rolling strategy is refused.
pub async fn gate_view(
    clients: &Clients,
    clusters: &[String],
    app: &str,
    now: u64,
    read_gates: bool,
) -> Result<GateView> {
    let (cluster, name) = gate::cluster_and_service(app).map_err(Error::Refused)?;
    if !clusters.contains(&cluster) {
        return Err(Error::Refused(format!(
            "cluster `{cluster}` is not one blue-green-swapper manages (it manages {}): nothing read or changed",
            clusters.join(", ")
        )));
    }
    let service = clients.ecs.describe(&cluster, &name).await?;
    if !service.strategy.native() {
        return Err(Error::Refused(format!(
            "ECS service {cluster}/{name} runs {} deployments, which have no lifecycle stages to gate: swap it as an app (tag ops:swap-app on its listener)",
            service.strategy.name
        )));
    }
    let deployments = service_deployments::read(clients.ecs.client(), &service).await?;
    let deployment = deployments
        .iter()
        .find(|d| d.in_flight())
        .or(deployments.first())
        .cloned();
    let release = service.tag(HOOK_RELEASE).and_then(Release::decode);
    let hold = service
        .tag(HOOK_HOLDING)
        .and_then(Hold::decode)
        .filter(|hold| {
            deployment.as_ref().is_some_and(|d| {
                d.in_flight()
                    && d.status == "IN_PROGRESS"
                    && gate::deployment_id(d) == hold.deployment
                    && hook::ecs_is_at(&hold.step, d.stage.as_deref(), d.target_weight.as_deref())
            })
        })
        .filter(|hold| !hold.released_by(release.as_ref()));
    let mut view = GateView {
        service: format!("{cluster}/{name}"),
        service_arn: service.arn.clone(),
        strategy: service.strategy.clone(),
        deployment,
        gates: None,
        hold,
        alerted: service.tag(HOOK_ALERTED).map(String::from),
        test_url: service.tag(HOOK_TEST_URL).map(String::from),
    };
    // The gates are read for a deployment going forward (a rollback is never gated).
    let at_stage = view
        .in_flight()
        .filter(|d| d.status == "IN_PROGRESS" || d.status == "PENDING")
        .and_then(|d| Some((d.arn.clone(), d.stage.clone()?, d.target_revision.clone()?)));
    if let (true, Some((arn, stage, revision))) = (read_gates, at_stage) {
        let call = HookCall {
            execution_id: "chat".into(),
            lifecycle_stage: stage,
            resource_arn: arn,
            execution_details: ExecutionDetails {
                service_arn: service.arn.clone(),
                target_service_revision_arn: revision,
                test_traffic_weights: BTreeMap::new(),
                production_traffic_weights: BTreeMap::new(),
            },
            hook_details: None,
        };
        view.gates = Some(
            hook_view(&call, clients, clusters, TestUrlReach::HookOnly)
                .await
                .map(|hook_view| hook::decide(&call, &hook_view, now))
                .map_err(|error| error.to_string()),
        );
    }
    Ok(view)
}
