//! The handler: route the schedule and chat commands through observe, decide, act and report; ECS's
//! own deployments (hook calls, hook events, the person's gate) go to [`crate::ecs_routes`].

use ops_core::alert::AlertSink;
use ops_core::aws::ecr::ImageSelector;
use ops_core::aws::ecs::TaskDefinitionState;
use ops_core::aws::iam::IamSimulator;
use ops_core::command::{Command, CommandError};
use ops_core::doctor;
use ops_core::events::{
    acting_time, classify, ignored_event, refuse_unscheduled, EventError, Incoming, SCHEDULED_EVENT,
};
use ops_core::image::ImageRef;
use ops_core::plan::{execute, Execution, Mode, Plan, Status};
use ops_core::registry::Caller;
use ops_core::time::utc_text;
use ops_core::{Error, Result};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::act::{apply, Context, Written};
use crate::commands::{AppArgs, DeployArgs, StatusArgs, COMMANDS};
use crate::config::{Serves, SwapperConfig};
use crate::contract::{Colour, Strategy};
use crate::decide::{
    decide_advance, decide_start, pre_flight, scales_to_zero, Action, Deploying, Start,
    StartRequest, Steer,
};
use crate::ecs_routes::{gate_command, not_for_the_hook_function, on_hook, on_hook_event};
use crate::gate::{self, HOOK_STATE_CHANGE};
use crate::observe::{self, AppEntry, Clients};
use crate::report::{failure_alert, refusal_alert};
use crate::view::AppView;

/// What the handler works with, built once at start.
pub struct Deps<A> {
    /// AWS adapters.
    pub clients: Clients,
    /// IAM's policy simulator, for `doctor`.
    pub iam: IamSimulator,
    /// Where alerts go.
    pub alerts: A,
    /// Configuration.
    pub config: SwapperConfig,
}

/// Per-invocation facts: who runs the function, and the clock (schedules carry their own time).
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function's account and region.
    pub caller: Caller,
    /// Now, in epoch seconds.
    pub now: u64,
}

/// Handle one invocation; the JSON is what the caller (chat) sees.
pub async fn function_handler<A: AlertSink>(
    payload: Value,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    let incoming = classify(payload)?;
    if deps.config.serves == Serves::LifecycleHooks {
        if let Some(refusal) = not_for_the_hook_function(&incoming, &deps.config) {
            return refusal;
        }
    }
    match incoming {
        Incoming::Event {
            detail_type,
            source,
            raw,
        } if detail_type == SCHEDULED_EVENT => {
            refuse_unscheduled(&source, "a swap's next step")?;
            // A late tick never takes the function back in time: whatever it starts, it starts
            // now, so the next step still waits its whole bake.
            on_schedule(
                acting_time(&raw, invocation.now, deps.config.common.schedule_lead)?,
                deps,
            )
            .await
        }
        Incoming::Event {
            detail_type, raw, ..
        } if detail_type == HOOK_STATE_CHANGE => {
            // Boxed, as the routes below: each keeps its own future off the others' stack.
            Box::pin(on_hook_event(&raw, invocation, deps)).await
        }
        Incoming::Event { detail_type, .. } => {
            debug!(detail_type, "event type not handled");
            Ok(ignored_event("blue-green-swapper", &detail_type))
        }
        Incoming::Command(raw) => {
            Box::pin(on_command(
                COMMANDS.parse(&deps.config.common.function_name, &raw)?,
                invocation,
                deps,
            ))
            .await
        }
        Incoming::LifecycleHook(raw) => Box::pin(on_hook(&raw, invocation.now, deps)).await,
        Incoming::AlarmAction(_) => Err(EventError::Unrecognised(
            "blue-green-swapper does not handle CloudWatch alarm actions".into(),
        )
        .into()),
    }
}

/// Advance every app whose swap has work to do, one bounded step each. An app that cannot be read
/// does not stop the others; a retryable failure makes the schedule event fail (and be retried).
async fn on_schedule<A: AlertSink>(now: u64, deps: &Deps<A>) -> Result<Value> {
    let entries = observe::apps(&deps.clients.lb, &deps.config.routes).await?;
    let mut results = Vec::new();
    let mut retry = None;
    for entry in entries.iter().filter(|e| e.needs_work()) {
        match advance(entry, now, None, Mode::Apply, false, deps).await {
            Ok(result) => results.push(result),
            Err(error) if error.retryable() => {
                warn!(app = %entry.name, %error, "swap not advanced; the schedule event is retried");
                retry = Some(error);
            }
            Err(error) => {
                warn!(app = %entry.name, %error, "swap not advanced");
                results.push(
                    json!({ "app": entry.name, "status": "refused", "error": error.to_string() }),
                );
            }
        }
    }
    if let Some(error) = retry {
        return Err(error);
    }
    Ok(json!({ "status": "advanced", "apps": results }))
}

async fn on_command<A: AlertSink>(
    command: Command,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Value> {
    let by = command.requester();
    let mode = Mode::from_dry_run(command.dry_run);
    let now = invocation.now;
    match command.name.as_str() {
        "deploy" => {
            let args: DeployArgs = command.args_as()?;
            let request = start_request(&command, &args, &by, invocation, deps).await?;
            let entries = observe::apps(&deps.clients.lb, &deps.config.routes).await?;
            let entry = observe::find(&entries, &args.app)?;
            let view = observe::app_view(&deps.clients, entry, &deps.config.clusters).await?;
            let view = observe::with_other_routes(&deps.clients, view).await?;
            deploy(entry, &view, &request, now, mode, deps).await
        }
        "promote" | "abort" | "rollback" => {
            let args: AppArgs = command.args_as()?;
            if gate::names_a_service(&args.app) {
                return Box::pin(gate_command(&command.name, &args, &by, now, mode, deps)).await;
            }
            if args.deployment.is_some() {
                return Err(Error::Refused(format!(
                    "`deployment` names a deployment of an ECS service (app cluster/service); {} is an app swapped on its listener: send {} without it",
                    args.app, command.name
                )));
            }
            let steer = if command.name == "promote" {
                Steer::Promote { by }
            } else {
                Steer::Abort { by }
            };
            let entries = observe::apps(&deps.clients.lb, &deps.config.routes).await?;
            let entry = observe::find(&entries, &args.app)?;
            advance(entry, now, Some(&steer), mode, true, deps).await
        }
        "status" => {
            let args: StatusArgs = command.args_as()?;
            if let Some(service) = args.app.as_deref().filter(|a| gate::names_a_service(a)) {
                let view = Box::pin(observe::gate_view(
                    &deps.clients,
                    &deps.config.clusters,
                    service,
                    now,
                    true,
                ))
                .await?;
                return Ok(json!({ "status": "ok", "services": [gate::status(&view)] }));
            }
            let entries = observe::apps(&deps.clients.lb, &deps.config.routes).await?;
            let chosen: Vec<&AppEntry> = match &args.app {
                Some(name) => vec![observe::find(&entries, name)?],
                None => entries.iter().collect(),
            };
            let mut apps = Vec::new();
            for entry in chosen {
                let view =
                    match observe::app_view(&deps.clients, entry, &deps.config.clusters).await {
                        Ok(view) => observe::with_other_routes(&deps.clients, view).await,
                        Err(error) => Err(error),
                    };
                match view {
                    Ok(view) => apps.push(status(&view, now)),
                    Err(error) if !error.retryable() && args.app.is_none() => {
                        apps.push(json!({ "app": entry.name, "problem": error.to_string() }))
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(json!({ "status": "ok", "apps": apps }))
        }
        "doctor" => Ok(doctor::conclude(
            &deps.config.common,
            crate::doctor::examine(&deps.config, &deps.clients).await,
            &deps.iam,
            &deps.alerts,
        )
        .await),
        _ => Ok(
            json!({ "status": "help", "help": COMMANDS.help(&deps.config.common.function_name) }),
        ),
    }
}

/// Start a swap (or, for the same image, advance the one in flight), then take its first step.
async fn deploy<A: AlertSink>(
    entry: &AppEntry,
    view: &AppView,
    request: &StartRequest,
    now: u64,
    mode: Mode,
    deps: &Deps<A>,
) -> Result<Value> {
    let clients = &deps.clients;
    let live = view.live().unwrap_or(Colour::Blue);
    let base = clients
        .ecs
        .task_definition(&view.colour(live).service.task_definition)
        .await?;
    let latest = match &request.deploying {
        Deploying::Image { .. } => {
            let family = base.definition.family().unwrap_or_default().to_string();
            Some(clients.ecs.task_definition(&family).await?)
        }
        Deploying::Revision(_) => None,
    };
    let plan = match decide_start(view, request, &base, latest.as_ref(), now) {
        Ok(Start::Begin(plan)) => plan,
        Ok(Start::AlreadyInFlight) => {
            info!(app = %entry.name, "the same swap is in flight; advancing it");
            return advance(entry, now, None, mode, true, deps).await;
        }
        Err(refusal) => {
            if refusal.pre_flight && mode == Mode::Apply {
                warn!(app = %entry.name, reason = %refusal.reason, "swap refused at pre-flight");
                deps.alerts
                    .publish(&refusal_alert(
                        &deps.config.common.function_name,
                        &entry.name,
                        &refusal.reason,
                        &request.requested_by,
                    ))
                    .await?;
            }
            return Err(Error::Refused(refusal.reason));
        }
    };
    let plan = plan.note(format!(
        "then {} is scaled up with the new revision and, once every task is healthy, live traffic moves ({})",
        live.other(),
        request.strategy.unwrap_or(view.spec.strategy)
    ));
    let context = context(view, Some(base), deps);
    let begun = run(&entry.name, plan, mode, &context, deps).await?;
    if begun.dry_run || begun.failed.is_some() {
        return Ok(answer(&entry.name, &begun, None));
    }
    // The swap is recorded on the route: read it back and take its first step, unless another
    // deploy at the same moment recorded its own swap over this one.
    let entries = observe::apps(&clients.lb, &deps.config.routes).await?;
    let entry = observe::find(&entries, &entry.name)?;
    if !Written::of(&entry.tags).same_plan(&context.written()) {
        let other = match observe::app_view(clients, entry, &deps.config.clusters).await {
            Ok(view) => view
                .swap
                .map(|s| {
                    format!(
                        "{} of {} asked by {}",
                        s.plan.id, s.image, s.plan.requested_by
                    )
                })
                .unwrap_or_else(|| "another swap".into()),
            Err(_) => "another swap".into(),
        };
        return Err(Error::Refused(format!(
            "a swap of {} is in flight: {other} was recorded at the same moment as this deploy, \
             which was not started; abort it or wait for it to finish",
            entry.name
        )));
    }
    advance(entry, now, None, Mode::Apply, true, deps).await
}

/// One bounded step of an app's swap: observe, decide, act; the answer says what was done and,
/// with `report_after`, how the app stands afterwards.
async fn advance<A: AlertSink>(
    entry: &AppEntry,
    now: u64,
    steer: Option<&Steer>,
    mode: Mode,
    report_after: bool,
    deps: &Deps<A>,
) -> Result<Value> {
    let view = observe::app_view(&deps.clients, entry, &deps.config.clusters).await?;
    let mut plan = decide_advance(&view, now, steer).map_err(Error::Refused)?;
    let view = if scales_to_zero(&plan) {
        // Before a colour is scaled to 0, no other route may still send it traffic (a rule added
        // during the swap): read them and decide again.
        let view = observe::with_other_routes(&deps.clients, view).await?;
        plan = decide_advance(&view, now, steer).map_err(Error::Refused)?;
        view
    } else {
        view
    };
    for note in &plan.notes {
        info!(app = %entry.name, "{note}");
    }
    let context = context(&view, None, deps);
    let execution = run(&entry.name, plan, mode, &context, deps).await?;
    if !report_after {
        return Ok(answer(&entry.name, &execution, None));
    }
    // Chat sees the app as it is now, after this step.
    let after = if execution.changed_anything() {
        let entries = observe::apps(&deps.clients.lb, &deps.config.routes).await?;
        let entry = observe::find(&entries, &entry.name)?;
        observe::app_view(&deps.clients, entry, &deps.config.clusters).await?
    } else {
        view
    };
    Ok(answer(&entry.name, &execution, Some(status(&after, now))))
}

fn context<'a, A>(
    view: &AppView,
    base: Option<TaskDefinitionState>,
    deps: &'a Deps<A>,
) -> Context<'a, A> {
    let mut context = Context::new(
        &deps.clients,
        &deps.alerts,
        &deps.config.common.function_name,
        &view.spec.name,
        &view.route.arn,
        &view.route.tags,
    );
    context
        .routes
        .insert(view.route.arn.clone(), view.route.clone());
    if let Some(test) = &view.test_route {
        context.routes.insert(test.arn.clone(), test.clone());
    }
    for colour in [&view.blue, &view.green] {
        context
            .groups
            .insert(colour.colour, colour.target_group.clone());
    }
    context.base = base;
    context
}

/// Act on `plan` (or not, in dry-run). A failure that retrying can fix is returned as an error so
/// Lambda retries; any other is alerted.
async fn run<A: AlertSink>(
    app: &str,
    plan: Plan<Action>,
    mode: Mode,
    context: &Context<'_, A>,
    deps: &Deps<A>,
) -> Result<Execution<Action>> {
    let execution = execute(plan, mode, |action| {
        let action = action.clone();
        async move { apply(context, &action).await }
    })
    .await;
    if let Some(conflict) = context.conflict() {
        // Another run recorded the swap meanwhile: not a failure to alert, and retrying (or the
        // next run) goes on from what it recorded.
        return Err(Error::Incomplete {
            applied: execution.applied.len(),
            planned: execution.applied.len() + 1 + execution.not_attempted.len(),
            message: conflict,
            retryable: true,
        });
    }
    if let Some(failed) = &execution.failed {
        if failed.retryable {
            return Err(execution.error().expect("a failed execution has an error"));
        }
        deps.alerts
            .publish(&failure_alert(
                &deps.config.common.function_name,
                app,
                failed,
            ))
            .await?;
    }
    Ok(execution)
}

/// Check a deploy request and turn it into what to deploy: an image pinned by digest (resolved in
/// ECR when only a tag is given) or an existing revision.
async fn start_request<A: AlertSink>(
    command: &Command,
    args: &DeployArgs,
    by: &str,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<StartRequest> {
    let invalid = |reason: String| {
        Error::Command(CommandError::InvalidArgs {
            command: command.name.clone(),
            reason,
        })
    };
    let strategy = args
        .strategy
        .as_deref()
        .map(Strategy::parse)
        .transpose()
        .map_err(|e| invalid(format!("argument `strategy`: {e}")))?;
    let deploying = match (&args.image, &args.revision) {
        (Some(image), None) => image_to_deploy(image.trim(), invocation, deps).await?,
        (None, Some(revision)) => {
            let revision = revision.trim();
            let valid = revision.split_once(':').is_some_and(|(family, number)| {
                !family.is_empty()
                    && family
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && number.parse::<u32>().is_ok_and(|n| n > 0)
            });
            if !valid {
                return Err(invalid(format!(
                    "argument `revision` = `{revision}` is not a task definition family:revision, e.g. shop:12"
                )));
            }
            let found = deps
                .clients
                .ecs
                .task_definition(revision)
                .await
                .map_err(|error| match error {
                    Error::Aws(aws) if aws.code.contains("ClientException") => Error::NotFound {
                        kind: "task definition",
                        name: revision.to_string(),
                    },
                    other => other,
                })?;
            if found.definition.status().map(|s| s.as_str()) != Some("ACTIVE") {
                return Err(Error::Refused(format!(
                    "{revision} is deregistered (INACTIVE); ECS cannot start tasks from it"
                )));
            }
            Deploying::Revision(Box::new(found))
        }
        (Some(_), Some(_)) => {
            return Err(invalid("give an `image` or a `revision`, not both".into()))
        }
        (None, None) => {
            return Err(invalid(
                "give the `image` to deploy (or an existing `revision`)".into(),
            ))
        }
    };
    Ok(StartRequest {
        deploying,
        strategy,
        requested_by: by.to_string(),
    })
}

async fn image_to_deploy<A: AlertSink>(
    image: &str,
    invocation: &Invocation,
    deps: &Deps<A>,
) -> Result<Deploying> {
    let mut reference = ImageRef::parse(image)?;
    if reference.tag.is_none() && reference.digest.is_none() {
        return Err(Error::Command(CommandError::InvalidArgs {
            command: "deploy".into(),
            reason: format!("argument `image` = `{image}` names no tag or digest; say which image, e.g. {image}:v8"),
        }));
    }
    let registry = reference
        .registry
        .clone()
        .unwrap_or_else(|| invocation.caller.own_registry());
    reference.registry = Some(registry.clone());
    deps.config
        .registries
        .ensure(&registry, &invocation.caller)?;
    let digest = match (reference.ecr_registry(), &reference.digest, &reference.tag) {
        (Some((account, _)), digest, tag) => {
            let selector = match (digest, tag) {
                (Some(digest), _) => ImageSelector::Digest(digest.clone()),
                (None, Some(tag)) => ImageSelector::Tag(tag.clone()),
                (None, None) => unreachable!("checked above: a tag or a digest is given"),
            };
            deps.clients
                .ecr
                .resolve(&account, &reference.repository, &selector)
                .await?
                .digest
        }
        (None, Some(digest), _) => digest.clone(),
        (None, None, _) => {
            return Err(Error::Refused(format!(
                "`{image}` is not in ECR, so its tag cannot be pinned here; give its digest: {}@sha256:...",
                reference.name()
            )))
        }
    };
    Ok(Deploying::Image {
        pinned: reference.pinned(&digest).to_string(),
        registry,
        repository: reference.repository.clone(),
        digest,
    })
}

/// What chat sees about an app: weights, colours, the swap and what happens next.
fn status(view: &AppView, now: u64) -> Value {
    // Shares from the exact weights: a colour at weight 1 of 1000 shows 0.1%, never 0%.
    let split = view.split();
    let colour = |c: Colour| {
        let colour = view.colour(c);
        let share = split.share(c);
        json!({
            "service": colour.service.qualified_name(),
            "task_definition": colour.task_definition(),
            "desired": colour.service.desired,
            "running": colour.service.running,
            "rollout": colour.rollout(),
            "health": colour.health_text(),
            "live_traffic_percent": share.percent_number(),
            "weight": share.weight,
            "target_group": colour.target_group,
        })
    };
    let swap = view.swap.as_ref().map(|swap| {
        json!({
            "id": swap.plan.id,
            "image": swap.image,
            "to": swap.plan.to,
            "task_definition": swap.plan.task_definition,
            "phase": swap.state.phase,
            "step": swap.state.step,
            "since": utc_text(swap.state.since),
            "why": swap.state.why,
            "strategy": swap.plan.strategy.to_string(),
            "requested_by": swap.plan.requested_by,
            "in_flight": !swap.state.phase.is_terminal(),
        })
    });
    let would = match decide_advance(view, now, None) {
        Ok(plan) => json!({
            "changes": plan.changes.iter().map(|c| c.reason.clone()).collect::<Vec<_>>(),
            "holding": plan.notes,
        }),
        Err(reason) => json!({ "problem": reason }),
    };
    json!({
        "app": view.spec.name,
        "live": view.live(),
        "traffic": format!(
            "{} (weights {} of {})",
            split.text(Colour::Blue),
            split.weights_text(Colour::Blue),
            split.total
        ),
        "pre_flight": match view.in_flight() {
            Some(_) => json!("a swap is in flight"),
            None => match pre_flight(view) {
                Ok(live) => json!(format!("ok: {live} is live and healthy")),
                Err(problem) => json!({ "problem": problem }),
            },
        },
        "blue": colour(Colour::Blue),
        "green": colour(Colour::Green),
        "test_route": view.test_route.as_ref().map(|r| r.arn.clone()),
        "other_routes_to_the_colours": view.other_routes,
        "alarms": view.alarms,
        "missing_alarms": view.missing_alarms,
        "strategy": view.spec.strategy.to_string(),
        "swap": swap,
        "next_run_would": would,
    })
}

fn answer(app: &str, execution: &Execution<Action>, status: Option<Value>) -> Value {
    let label = match execution.status {
        Status::NoChange => "no_change",
        Status::Planned => "planned",
        Status::Applied => "applied",
        Status::Failed => "failed",
    };
    json!({
        "status": label,
        "app": app,
        "dry_run": execution.dry_run,
        // Marking an alert as sent is bookkeeping, not something chat needs to read.
        "applied": execution
            .applied
            .iter()
            .filter(|c| !matches!(&c.action, Action::Record { state, .. } if state.reported == state.version))
            .map(|c| c.reason.clone())
            .collect::<Vec<_>>(),
        "planned": if execution.dry_run { json!(execution.not_attempted) } else { json!([]) },
        "notes": execution.notes,
        "failed": execution.failed.as_ref().map(|f| json!({ "change": f.change.reason, "error": f.error })),
        "app_now": status,
    })
}
