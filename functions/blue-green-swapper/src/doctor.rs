//! `doctor`: what blue-green-swapper will be asked to do in this account, and whether it can.
//!
//! It reads every route in `SWAP_ROUTES` with its tags and, for each app found there, what a swap
//! touches: the live and test routes, both colours' services with their one target group each,
//! the revisions they run (and the repositories of their images), and the alarms that gate the
//! app. The duties are every call a swap, a chat command or the schedule makes on those resources:
//! read the routes, their tags and target health; move traffic (ModifyListener or ModifyRule);
//! keep the swap in the live route's `ops:swap-*` tags; read, update and mark both services;
//! register a revision of the live colour's family (tagging it as it registers it, passing its
//! roles to ECS); pin an image in ECR; read the alarms; and alert. Nothing is changed.

use std::collections::BTreeMap;

use ops_core::aws::ecs::{clone_duties, short_task_definition, ServiceState, TaskDefinitionState};
use ops_core::aws::elbv2::{Route, RouteKind};
use ops_core::doctor::{arn_beside, Area, Duty, Examination};
use ops_core::image::ImageRef;

use crate::config::{Serves, SwapperConfig};
use crate::contract::{self, is_test_route, recorded_swap, AppSpec, Colour};
use crate::hook::{HookGates, HOOK_ALERTED, HOOK_HOLDING, HOOK_RELEASE};
use crate::observe::{self, AppEntry, Clients};
use crate::test_url::{HOOK_TEST_URL, TEST_STAGE};

/// The tags a swap writes on its live route, which the `elasticloadbalancing:AddTags` grant must
/// allow.
const ROUTE_TAGS: &[&str] = &[
    contract::PLAN,
    contract::IMAGE,
    contract::STATE,
    contract::RUN,
    contract::UNHEALTHY,
];

/// The tag a swap puts on (and takes off) both services while it is in flight.
const SERVICE_TAGS: &[&str] = &[contract::IN_FLIGHT];

/// Everything `doctor` checks before IAM and the alert path are asked.
pub async fn examine(config: &SwapperConfig, clients: &Clients) -> Examination {
    let mut exam = Examination::of(
        &config.common,
        "alerts every swap step, refusal and failure",
    );
    settings(config, &mut exam);
    if config.serves == Serves::Everything {
        exam.duty(Duty::new(
            "elasticloadbalancing:DescribeTags",
            "*",
            "finds the apps on the routes in SWAP_ROUTES",
        ));
    }

    hooked_services(config, clients, &mut exam).await;
    if config.serves == Serves::LifecycleHooks {
        return exam;
    }
    let tags = route_tags(clients, &config.routes, &mut exam).await;
    let mut routes: BTreeMap<String, Route> = BTreeMap::new();
    for arn in &config.routes {
        let Some(route_tags) = tags.get(arn) else {
            continue;
        };
        if let Some(kind) = RouteKind::of(arn) {
            exam.duty(Duty::new(
                describe_action(kind),
                "*",
                "reads the routes' forward actions",
            ));
        }
        let subject = route_subject(arn);
        let route = match clients.lb.route_with_tags(arn, route_tags.clone()).await {
            Ok(route) => route,
            Err(error) => {
                exam.missing(subject, error.to_string());
                continue;
            }
        };
        let Some(app) = route_tags.get(contract::APP) else {
            exam.missing(
                subject,
                format!(
                    "carries no `{}` tag, so the swapper ignores it; tag it or take it out of SWAP_ROUTES",
                    contract::APP
                ),
            );
            continue;
        };
        let role = if is_test_route(route_tags) {
            "test route"
        } else {
            "live route"
        };
        match route.forwards() {
            Some(weighted) => exam.found(
                subject,
                format!(
                    "{role} of app {}; forwards to {}; tags: {}",
                    app.trim(),
                    weighted
                        .iter()
                        .map(|w| format!(
                            "{} (weight {})",
                            target_group_name(&w.target_group_arn),
                            w.weight
                        ))
                        .collect::<Vec<_>>()
                        .join(", "),
                    tags_text(route_tags)
                ),
            ),
            None => exam.missing(
                subject,
                format!(
                    "{role} of app {} has no forward action, so traffic cannot be moved on it",
                    app.trim()
                ),
            ),
        }
        routes.insert(arn.clone(), route);
    }

    let found: Vec<String> = routes.keys().cloned().collect();
    let entries = if found.is_empty() {
        Vec::new()
    } else {
        match observe::apps(&clients.lb, &found).await {
            Ok(entries) => entries,
            Err(error) => {
                exam.missing("apps on SWAP_ROUTES", error.to_string());
                Vec::new()
            }
        }
    };
    orphans(&routes, &entries, &mut exam);
    if entries.is_empty() {
        exam.undetermined(
            Area::Resource,
            "blue/green apps",
            format!(
                "no route in SWAP_ROUTES is the live route of an app (tag `{}`), so there is nothing to swap yet",
                contract::APP
            ),
        );
    }
    for entry in &entries {
        examine_app(config, clients, entry, &routes, &mut exam).await;
    }
    exam
}

/// The services of ECS's own strategies in the managed clusters and what each needs. The function
/// serving lifecycle hooks checks the services that name it as their hook: it reads their service
/// deployments and revisions, their gating alarms and targets, and marks the alert it sent. The
/// swapper itself checks every such service for the person's gate: list, describe, continue or
/// stop its deployments, and record a release.
async fn hooked_services(config: &SwapperConfig, clients: &Clients, exam: &mut Examination) {
    let topic = &config.common.alert_topic_arn;
    let hooks = config.serves == Serves::LifecycleHooks;
    let mut served = 0;
    for cluster in &config.clusters {
        let Some(services) = clients
            .ecs
            .examine_cluster(
                exam,
                topic,
                cluster,
                "finds the services of ECS's own strategies",
            )
            .await
        else {
            continue;
        };
        for service in services.iter().filter(|s| s.strategy.native()) {
            let named = service
                .strategy
                .hook_functions
                .contains(&config.common.function_name);
            if hooks && !named {
                continue;
            }
            served += 1;
            let name = service.qualified_name();
            match HookGates::of(&service.tags) {
                Ok(gates) => exam.found(
                    format!("service {name}"),
                    format!(
                        "{} deployments; hooks: {}; pauses at: {}; gating alarms: {}; a person releases at: {}",
                        service.strategy.name,
                        or_none(&service.strategy.hook_functions),
                        or_none(&service.strategy.pauses),
                        or_none(&gates.alarms),
                        or_none(&gates.approval)
                    ),
                ),
                Err(problem) => exam.missing(format!("service {name}"), problem),
            }
            if let Some(problem) = unchecked_test_url(service, &config.common.function_name, hooks)
            {
                exam.missing(format!("service {name}: {HOOK_TEST_URL}"), problem);
            }
            for duty in hooked_service_duties(service, hooks) {
                exam.duty(duty);
            }
            // Both read the gates: the gating alarms and the new revision's targets.
            for alarm in HookGates::of(&service.tags)
                .map(|g| g.alarms)
                .unwrap_or_default()
            {
                exam.duty(Duty::new(
                    "cloudwatch:DescribeAlarms",
                    arn_beside(topic, "cloudwatch", &format!("alarm:{alarm}")),
                    format!("reads gating alarm {alarm} of {name}"),
                ));
            }
            exam.duty(Duty::new(
                "elasticloadbalancing:DescribeTargetHealth",
                "*",
                format!("reads the health of the new revision's targets of {name}"),
            ));
        }
    }
    if served == 0 && hooks {
        exam.undetermined(
            Area::Resource,
            "hooked services",
            format!(
                "no blue/green, canary or linear service in {} names {} as its lifecycle hook yet",
                config.clusters.join(", "),
                config.common.function_name
            ),
        );
    }
}

/// Why a service's test URL would never be checked: it names one, but does not call this hook
/// function at the stage that checks it. Only the hook function can tell (it knows its name).
fn unchecked_test_url(service: &ServiceState, function: &str, hooks: bool) -> Option<String> {
    let url = service.tag(HOOK_TEST_URL).filter(|_| hooks)?;
    let stages = service
        .strategy
        .hook_stages
        .get(function)
        .cloned()
        .unwrap_or_default();
    (!stages.iter().any(|s| s == TEST_STAGE)).then(|| {
        format!(
            "`{url}` is never checked: the service calls {function} at {}, not at {TEST_STAGE}; add {TEST_STAGE} to that lifecycle hook's stages",
            or_none(&stages)
        )
    })
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// What the hook (`hooks`) or the person's gate calls for a service of ECS's own strategies. The
/// SAR requires `service` for each, and `service-deployment` or `service-revision` too for the
/// calls on those: each is a duty of its own.
pub fn hooked_service_duties(service: &ServiceState, hooks: bool) -> Vec<Duty> {
    let name = service.qualified_name();
    let beside = |kind: &str| service.arn.replacen(":service/", &format!(":{kind}/"), 1) + "/*";
    let mut calls = vec![("ecs:DescribeServices", service.arn.clone(), "reads")];
    if hooks {
        calls.extend([
            (
                "ecs:DescribeServiceDeployments",
                service.arn.clone(),
                "checks a hook call's deployment of",
            ),
            (
                "ecs:DescribeServiceDeployments",
                beside("service-deployment"),
                "checks a hook call's deployment of",
            ),
            (
                "ecs:DescribeServiceRevisions",
                service.arn.clone(),
                "finds the new revision's targets of",
            ),
            (
                "ecs:DescribeServiceRevisions",
                beside("service-revision"),
                "finds the new revision's targets of",
            ),
            (
                "ecs:ListServiceDeployments",
                service.arn.clone(),
                "finds the paused deployment of",
            ),
        ]);
    } else {
        calls.extend([
            (
                "ecs:ListServiceDeployments",
                service.arn.clone(),
                "shows the deployments of",
            ),
            (
                "ecs:DescribeServiceDeployments",
                service.arn.clone(),
                "shows the deployments of",
            ),
            (
                "ecs:DescribeServiceDeployments",
                beside("service-deployment"),
                "shows the deployments of",
            ),
            (
                "ecs:DescribeServiceRevisions",
                service.arn.clone(),
                "shows the revisions of",
            ),
            (
                "ecs:DescribeServiceRevisions",
                beside("service-revision"),
                "shows the revisions of",
            ),
            (
                "ecs:ContinueServiceDeployment",
                service.arn.clone(),
                "continues or rolls back a paused deployment of",
            ),
            (
                "ecs:ContinueServiceDeployment",
                beside("service-deployment"),
                "continues or rolls back a paused deployment of",
            ),
            (
                "ecs:StopServiceDeployment",
                service.arn.clone(),
                "aborts a deployment of",
            ),
            (
                "ecs:StopServiceDeployment",
                beside("service-deployment"),
                "aborts a deployment of",
            ),
        ]);
    }
    let mut duties: Vec<Duty> = calls
        .into_iter()
        .map(|(action, resource, what)| {
            Duty::new(action, resource, format!("{what} {name}"))
                .with_context("ecs:cluster", service.cluster_arn.clone())
        })
        .collect();
    let tags: &[(&str, &str)] = if hooks {
        &[
            (HOOK_ALERTED, "remembers the hook alerts sent on"),
            (HOOK_HOLDING, "records where the hook holds a deployment on"),
        ]
    } else {
        &[(HOOK_RELEASE, "records a person's release on")]
    };
    for (key, what) in tags {
        duties.push(
            Duty::new("ecs:TagResource", &service.arn, format!("{what} {name}"))
                .with_context_list("aws:TagKeys", &[key])
                .with_resource_tags(&service.tags),
        );
    }
    duties
}

/// The configuration as parsed, and what is wrong with it.
fn settings(config: &SwapperConfig, exam: &mut Examination) {
    let topic = &config.common.alert_topic_arn;
    exam.setting(
        "AWS_LAMBDA_FUNCTION_NAME",
        config.common.function_name.clone(),
    );
    exam.setting("ECS_CLUSTERS", config.clusters.join(", "));
    exam.setting(
        "SWAP_ROUTES",
        format!(
            "{} route(s): {}",
            config.routes.len(),
            config.routes.join(", ")
        ),
    );
    exam.setting(
        "ALLOWED_REGISTRIES",
        if config.registries.allowed.is_empty() {
            "(the account's own registry only)".to_string()
        } else {
            config.registries.allowed.join(", ")
        },
    );
    // The function calls ELB in its own region and account: a route elsewhere is never found.
    let home = region_and_account(topic);
    for route in &config.routes {
        if region_and_account(route) != home {
            exam.config_problem(
                "SWAP_ROUTES",
                format!(
                    "{route} is not in the region and account of the function ({}, {}), where it calls ELB",
                    home.0, home.1
                ),
            );
        }
    }
}

/// Tags of every route, by ARN; a route ELB does not know is recorded as missing.
async fn route_tags(
    clients: &Clients,
    routes: &[String],
    exam: &mut Examination,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut found = match clients.lb.tags(routes).await {
        Ok(found) => found,
        Err(_) if routes.len() > 1 => {
            // One unknown route fails the whole call: ask about each alone to name it.
            let mut found = BTreeMap::new();
            for route in routes {
                match clients.lb.tags(std::slice::from_ref(route)).await {
                    Ok(tags) => found.extend(tags),
                    Err(error) => exam.missing(route_subject(route), error.to_string()),
                }
            }
            return found;
        }
        Err(error) => {
            for route in routes {
                exam.missing(route_subject(route), error.to_string());
            }
            return BTreeMap::new();
        }
    };
    for route in routes {
        if !found.contains_key(route) {
            exam.missing(route_subject(route), "ELB returned no tags for it");
        }
    }
    found.retain(|arn, _| routes.contains(arn));
    found
}

/// Routes that name an app but belong to none the swapper would find: a test route whose app has
/// no live route, or an app with more than one live route.
fn orphans(routes: &BTreeMap<String, Route>, entries: &[AppEntry], exam: &mut Examination) {
    for (arn, route) in routes {
        let Some(app) = route.tags.get(contract::APP).map(|a| a.trim()) else {
            continue;
        };
        if is_test_route(&route.tags) && !entries.iter().any(|e| e.name == app) {
            exam.missing(
                route_subject(arn),
                format!("test route of app {app}, which has no live route in SWAP_ROUTES; the swapper ignores it"),
            );
        }
    }
    let mut live: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for entry in entries {
        live.entry(&entry.name).or_default().push(&entry.live);
    }
    for (app, arns) in live.into_iter().filter(|(_, arns)| arns.len() > 1) {
        exam.missing(
            format!("app {app}"),
            format!(
                "tagged as live on {} routes ({}); the swapper refuses it until one live route is left",
                arns.len(),
                arns.join(", ")
            ),
        );
    }
}

/// One app: its contract, routes, both colours, their revisions and its alarms.
async fn examine_app(
    config: &SwapperConfig,
    clients: &Clients,
    entry: &AppEntry,
    routes: &BTreeMap<String, Route>,
    exam: &mut Examination,
) {
    let topic = &config.common.alert_topic_arn;
    let app = entry.name.as_str();
    let spec = match entry.spec() {
        Ok(spec) => spec,
        Err(error) => {
            exam.missing(format!("app {app}"), error.to_string());
            return;
        }
    };
    exam.found(
        format!("app {app}"),
        format!(
            "blue {}, green {}, strategy {}, alarms {}, test route {}",
            spec.blue,
            spec.green,
            spec.strategy,
            if spec.alarms.is_empty() {
                "none".to_string()
            } else {
                spec.alarms.join(" ")
            },
            entry
                .test
                .as_ref()
                .map(|(arn, _)| arn.as_str())
                .unwrap_or("none")
        ),
    );
    match recorded_swap(&entry.tags) {
        Some(Ok(swap)) => exam.found(
            format!("swap of app {app}"),
            format!(
                "swap {} to {} is {} ({})",
                swap.plan.id, swap.plan.to, swap.state.phase, swap.state.why
            ),
        ),
        Some(Err(error)) => exam.missing(
            format!("swap of app {app}"),
            format!(
                "the swap recorded on {} cannot be read: {error}",
                entry.live
            ),
        ),
        None => {}
    }
    for duty in route_duties(app, &entry.live, true) {
        exam.duty(duty);
    }
    if let Some((test, _)) = &entry.test {
        for duty in route_duties(app, test, false) {
            exam.duty(duty);
        }
    }

    let mut colours: Vec<(Colour, ServiceState, String)> = Vec::new();
    for colour in [Colour::Blue, Colour::Green] {
        if let Some(found) = examine_colour(config, clients, &spec, colour, exam).await {
            colours.push((colour, found.0, found.1));
        }
    }
    if let [(_, _, blue), (_, _, green)] = colours.as_slice() {
        if blue == green {
            exam.missing(
                format!("app {app}"),
                format!("blue and green are registered in the same target group {blue}; the swapper refuses the app"),
            );
        }
        if let Some(live) = routes.get(&entry.live) {
            let foreign: Vec<String> = live
                .forwards()
                .unwrap_or_default()
                .into_iter()
                .filter(|w| w.target_group_arn != *blue && w.target_group_arn != *green)
                .map(|w| w.target_group_arn)
                .collect();
            if !foreign.is_empty() {
                exam.missing(
                    route_subject(&entry.live),
                    format!(
                        "the live route of {app} also forwards to {}, which belongs to neither colour; every swap is refused",
                        foreign.join(", ")
                    ),
                );
            }
        }
    }

    exam.duty(Duty::new(
        "ecs:DescribeTaskDefinition",
        "*",
        "reads the revisions to clone, deploy and report",
    ));
    let mut revisions: BTreeMap<String, Vec<Colour>> = BTreeMap::new();
    for (colour, service, _) in &colours {
        revisions
            .entry(service.task_definition.clone())
            .or_default()
            .push(*colour);
    }
    for (arn, used_by) in revisions {
        let subject = format!(
            "revision {} ({} of {app})",
            short_task_definition(&arn),
            used_by
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        match clients.ecs.task_definition(&arn).await {
            Ok(revision) => {
                exam.found(
                    subject,
                    format!(
                        "{}; containers: {}",
                        revision
                            .definition
                            .status()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "status unknown".into()),
                        revision
                            .images()
                            .iter()
                            .map(|(name, image)| format!("{name} ({image})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                for duty in revision_duties(topic, app, &revision, spec.containers.as_deref()) {
                    exam.duty(duty);
                }
            }
            Err(error) => exam.missing(subject, error.to_string()),
        }
    }

    examine_alarms(topic, clients, &spec, exam).await;
}

/// One colour's service and its target group; the service and its target group's ARN when both
/// are as a swap needs them.
async fn examine_colour(
    config: &SwapperConfig,
    clients: &Clients,
    spec: &AppSpec,
    colour: Colour,
    exam: &mut Examination,
) -> Option<(ServiceState, String)> {
    let topic = &config.common.alert_topic_arn;
    let app = &spec.name;
    let name = spec.service(colour);
    let subject = format!("service {name} ({colour} of {app})");
    if !config.clusters.contains(&name.cluster) {
        exam.config_problem(
            "ECS_CLUSTERS",
            format!(
                "app {app}: {colour} ({name}) is in cluster `{}`, which is not in ECS_CLUSTERS ({}); the swapper refuses the app",
                name.cluster,
                config.clusters.join(", ")
            ),
        );
        return None;
    }
    let service = match clients.ecs.describe(&name.cluster, &name.service).await {
        Ok(service) => service,
        Err(error) => {
            exam.duty(
                Duty::new(
                    "ecs:DescribeServices",
                    arn_beside(
                        topic,
                        "ecs",
                        &format!("service/{}/{}", name.cluster, name.service),
                    ),
                    format!("reads {colour} of {app}"),
                )
                .with_context(
                    "ecs:cluster",
                    arn_beside(topic, "ecs", &format!("cluster/{}", name.cluster)),
                ),
            );
            exam.missing(subject, error.to_string());
            return None;
        }
    };
    for duty in service_duties(app, colour, &service) {
        exam.duty(duty);
    }
    let names_the_app = service.tag(contract::APP) == Some(app.as_str());
    if !names_the_app {
        exam.missing(
            subject.clone(),
            format!(
                "does not carry tag `{}` = `{app}`: the swapper refuses to change it, and its IAM policy only lets it update services that carry that tag",
                contract::APP
            ),
        );
    }
    exam.duty(Duty::new(
        "elasticloadbalancing:DescribeTargetHealth",
        "*",
        "reads the health of each colour's targets",
    ));
    let target_group = match service.target_groups.as_slice() {
        [one] => one.clone(),
        groups => {
            exam.missing(
                subject,
                format!(
                    "is registered in {} target groups; a colour needs exactly one",
                    groups.len()
                ),
            );
            return None;
        }
    };
    if names_the_app {
        exam.found(
            subject,
            format!(
                "{}, desired {}, running {}, revision {}, target group {}",
                service.status,
                service.desired,
                service.running,
                short_task_definition(&service.task_definition),
                target_group_name(&target_group)
            ),
        );
    }
    let group_subject = format!("target group {target_group} ({colour} of {app})");
    match clients.lb.target_health(&target_group).await {
        Ok(targets) => exam.found(
            group_subject,
            format!(
                "{} target(s), {} healthy",
                targets.len(),
                targets.iter().filter(|t| t.state == "healthy").count()
            ),
        ),
        Err(error) => {
            exam.missing(group_subject, error.to_string());
            return None;
        }
    }
    names_the_app.then_some((service, target_group))
}

/// The alarms that gate the app's swaps.
async fn examine_alarms(topic: &str, clients: &Clients, spec: &AppSpec, exam: &mut Examination) {
    if spec.alarms.is_empty() {
        return;
    }
    let app = &spec.name;
    let why = format!("reads the alarms that gate swaps of {app}");
    match clients.alarms.states(&spec.alarms).await {
        Ok(found) => {
            for name in &spec.alarms {
                match found.iter().find(|a| a.name == *name) {
                    Some(alarm) => {
                        exam.found(
                            format!("alarm {name}"),
                            format!("{} (gates swaps of {app})", alarm.state),
                        );
                        exam.duty(Duty::new(
                            "cloudwatch:DescribeAlarms",
                            alarm_arn(topic, name, &alarm.arn),
                            why.clone(),
                        ));
                    }
                    None => {
                        exam.missing(
                            format!("alarm {name}"),
                            format!(
                                "CloudWatch has no metric alarm of this name; every swap of {app} is refused while tag `{}` names it",
                                contract::ALARMS
                            ),
                        );
                        exam.duty(Duty::new(
                            "cloudwatch:DescribeAlarms",
                            alarm_arn(topic, name, ""),
                            why.clone(),
                        ));
                    }
                }
            }
        }
        Err(error) => {
            exam.missing(format!("alarms of app {app}"), error.to_string());
            for name in &spec.alarms {
                exam.duty(Duty::new(
                    "cloudwatch:DescribeAlarms",
                    alarm_arn(topic, name, ""),
                    why.clone(),
                ));
            }
        }
    }
}

/// The calls a swap makes on one of the app's routes: move its traffic and, on the live route,
/// keep the swap in its tags.
pub fn route_duties(app: &str, arn: &str, live: bool) -> Vec<Duty> {
    let modify = match RouteKind::of(arn) {
        Some(RouteKind::Rule) => "elasticloadbalancing:ModifyRule",
        _ => "elasticloadbalancing:ModifyListener",
    };
    let mut duties = vec![Duty::new(
        modify,
        arn,
        if live {
            format!("moves live traffic of {app} between its colours")
        } else {
            format!("points the test route of {app} at the new colour")
        },
    )];
    if live {
        duties.push(
            Duty::new(
                "elasticloadbalancing:AddTags",
                arn,
                format!("keeps the swap of {app} in its live route's tags"),
            )
            .with_context_list("aws:TagKeys", ROUTE_TAGS),
        );
    }
    duties
}

/// The calls a swap makes on one colour's service: read it, deploy to it, and mark it while a swap
/// is in flight, each with the context keys the real call carries (its cluster, and the service's
/// tags, of which the policy tests `ops:swap-app`).
pub fn service_duties(app: &str, colour: Colour, service: &ServiceState) -> Vec<Duty> {
    let name = service.qualified_name();
    let why = |what: &str| format!("{what} {name} ({colour} of {app})");
    vec![
        Duty::new("ecs:DescribeServices", &service.arn, why("reads"))
            .with_context("ecs:cluster", service.cluster_arn.clone()),
        Duty::new(
            "ecs:UpdateService",
            &service.arn,
            why("deploys to and scales"),
        )
        .with_context("ecs:cluster", service.cluster_arn.clone())
        .with_resource_tags(&service.tags),
        Duty::new(
            "ecs:TagResource",
            &service.arn,
            why("marks a swap in flight on"),
        )
        .with_context_list("aws:TagKeys", SERVICE_TAGS)
        .with_resource_tags(&service.tags),
        Duty::new(
            "ecs:UntagResource",
            &service.arn,
            why("clears the in-flight mark from"),
        )
        .with_context_list("aws:TagKeys", SERVICE_TAGS)
        .with_resource_tags(&service.tags),
    ]
}

/// The calls a swap of a new image makes with a colour's revision as its base: register a revision
/// of its family (tagged as it is registered, its roles passed to ECS tasks), and pin the image in
/// ECR. The image a deploy names replaces the containers running an image of its repository (or
/// those `ops:swap-containers` names), so the repositories of those containers' images are the
/// ones a deploy resolves in.
pub fn revision_duties(
    topic: &str,
    app: &str,
    revision: &TaskDefinitionState,
    containers: Option<&[String]>,
) -> Vec<Duty> {
    let mut duties = clone_duties(revision, app);
    for (name, image) in revision.images() {
        if containers.is_some_and(|chosen| !chosen.contains(&name)) {
            continue;
        }
        let Ok(reference) = ImageRef::parse(&image) else {
            continue;
        };
        if let Some((account, _)) = reference.ecr_registry() {
            duties.push(Duty::new(
                "ecr:DescribeImages",
                arn_in_account(
                    topic,
                    "ecr",
                    &account,
                    &format!("repository/{}", reference.repository),
                ),
                format!("pins images to deploy to container {name} of {app} by digest"),
            ));
        }
    }
    duties
}

fn describe_action(kind: RouteKind) -> &'static str {
    match kind {
        RouteKind::Listener => "elasticloadbalancing:DescribeListeners",
        RouteKind::Rule => "elasticloadbalancing:DescribeRules",
    }
}

fn route_subject(arn: &str) -> String {
    match RouteKind::of(arn) {
        Some(RouteKind::Rule) => format!("listener rule {arn}"),
        _ => format!("listener {arn}"),
    }
}

/// `shop-blue` from `arn:...:targetgroup/shop-blue/0123456789abcdef`.
fn target_group_name(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

fn tags_text(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The alarm's ARN as CloudWatch reported it, or named beside the alert topic.
fn alarm_arn(topic: &str, name: &str, reported: &str) -> String {
    if reported.is_empty() {
        arn_beside(topic, "cloudwatch", &format!("alarm:{name}"))
    } else {
        reported.to_string()
    }
}

/// Like [`arn_beside`], in another account (a registry of another account, in the function's
/// region, is where the function's ECR calls go).
fn arn_in_account(known: &str, service: &str, account: &str, resource: &str) -> String {
    let beside = arn_beside(known, service, resource);
    let mut parts: Vec<&str> = beside.splitn(6, ':').collect();
    if parts.len() == 6 {
        parts[4] = account;
    }
    parts.join(":")
}

/// Region and account of an ARN.
fn region_and_account(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default().to_string();
    (part(3), part(4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition};

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";
    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const RULE: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";

    fn service() -> ServiceState {
        ServiceState {
            arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/shop-green".into(),
            name: "shop-green".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            cluster: "prod".into(),
            status: "ACTIVE".into(),
            desired: 0,
            running: 0,
            task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:3".into(),
            deployments: Vec::new(),
            target_groups: Vec::new(),
            deployment_controller: ops_core::aws::ecs::ECS_CONTROLLER.into(),
            placement: Default::default(),
            strategy: Default::default(),
            service_deployments: Vec::new(),
            tags: BTreeMap::from([(contract::APP.to_string(), "shop".to_string())]),
        }
    }

    fn keys(duty: &Duty) -> Vec<(&str, Vec<&str>)> {
        duty.context
            .iter()
            .map(|c| {
                (
                    c.key.as_str(),
                    c.values.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_live_listener_is_modified_and_tagged_and_a_test_rule_only_modified() {
        let live = route_duties("shop", LISTENER, true);
        assert_eq!(
            live.iter().map(|d| d.action.as_str()).collect::<Vec<_>>(),
            [
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddTags"
            ]
        );
        assert_eq!(
            keys(&live[1]),
            [(
                "aws:TagKeys",
                vec![
                    "ops:swap-plan",
                    "ops:swap-image",
                    "ops:swap-state",
                    "ops:swap-run",
                    "ops:swap-unhealthy"
                ]
            )]
        );
        let test = route_duties("shop", RULE, false);
        assert_eq!(test.len(), 1);
        assert_eq!(
            (test[0].action.as_str(), test[0].resource.as_str()),
            ("elasticloadbalancing:ModifyRule", RULE)
        );
    }

    #[test]
    fn service_duties_carry_the_cluster_and_the_app_tag_of_the_real_calls() {
        let duties = service_duties("shop", Colour::Green, &service());
        let update = duties
            .iter()
            .find(|d| d.action == "ecs:UpdateService")
            .unwrap();
        assert_eq!(
            keys(update),
            [
                (
                    "ecs:cluster",
                    vec!["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]
                ),
                ("aws:ResourceTag/ops:swap-app", vec!["shop"]),
            ]
        );
        let untag = duties
            .iter()
            .find(|d| d.action == "ecs:UntagResource")
            .unwrap();
        assert_eq!(
            keys(untag),
            [
                ("aws:TagKeys", vec!["ops:swap-in-flight"]),
                ("aws:ResourceTag/ops:swap-app", vec!["shop"]),
            ]
        );
        assert!(duties
            .iter()
            .all(|d| d.resource == "arn:aws:ecs:us-east-1:123456789012:service/prod/shop-green"));
    }

    #[test]
    fn a_revision_brings_registration_its_roles_and_its_ecr_repositories_only() {
        let definition = TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/shop:3")
            .task_role_arn("arn:aws:iam::123456789012:role/shop-task")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("210987654321.dkr.ecr.us-east-1.amazonaws.com/shop:v1")
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("log-router")
                    .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
                    .build(),
            )
            .build();
        let revision = TaskDefinitionState {
            definition,
            tags: BTreeMap::new(),
        };
        let duties = revision_duties(TOPIC, "shop", &revision, None);
        let rows: Vec<(&str, &str)> = duties
            .iter()
            .map(|d| (d.action.as_str(), d.resource.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "ecs:RegisterTaskDefinition",
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:3"
                ),
                (
                    "ecs:TagResource",
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:3"
                ),
                ("iam:PassRole", "arn:aws:iam::123456789012:role/shop-task"),
                (
                    "ecr:DescribeImages",
                    "arn:aws:ecr:us-east-1:210987654321:repository/shop"
                ),
            ]
        );
        assert_eq!(
            keys(&duties[1]),
            [("ecs:CreateAction", vec!["RegisterTaskDefinition"])]
        );
        let only_sidecar = revision_duties(TOPIC, "shop", &revision, Some(&["log-router".into()]));
        assert!(only_sidecar
            .iter()
            .all(|d| d.action != "ecr:DescribeImages"));
    }

    #[test]
    fn names_in_the_table_are_short_and_say_what_a_route_is() {
        assert_eq!(
            target_group_name(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-blue/0123456789abcdef"
            ),
            "shop-blue"
        );
        assert!(route_subject(RULE).starts_with("listener rule arn:"));
        assert_eq!(
            alarm_arn(TOPIC, "shop-5xx", ""),
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-5xx"
        );
    }
}
