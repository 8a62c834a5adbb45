//! Decide: pure functions from what was observed (and the time, an input) to a plan.
//!
//! A swap is a state machine whose state lives in the live route's tags. Each invocation first
//! brings AWS to what the recorded state intends (converge), alerts the state if that was not
//! done yet, and then takes at most one transition, with its own changes and alert. Because the
//! intent is recorded before AWS is changed, an invocation that stops at any call leaves a state
//! the next one converges from.

use std::collections::BTreeMap;

use ops_core::aws::ecs::{short_task_definition, TaskDefinitionState};
use ops_core::aws::elbv2::Weighted;
use ops_core::plan::Plan;
use ops_core::time::{duration_text, utc_text};
use serde::Serialize;

use crate::contract::{self, Colour, Phase, Strategy, Swap, SwapPlan, SwapState};
use crate::traffic::Split;
use crate::view::{AppView, ColourView};

/// One change to AWS (or one alert).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Register the new revision (or reuse one an interrupted run registered), then record the
    /// swap's plan, image and first state on the live route.
    Begin(Box<BeginSpec>),
    /// Write the swap's state on the live route.
    Record {
        /// The live route.
        route: String,
        /// The state to write.
        state: SwapState,
    },
    /// Send a route's traffic to these weights (one ModifyListener or ModifyRule call).
    Weights {
        /// The listener or rule.
        route: String,
        /// Target groups and their weights (percentages).
        weights: Vec<Weighted>,
    },
    /// Set a colour's revision and task count (one UpdateService call).
    Service {
        /// Which colour.
        colour: Colour,
        /// Its cluster.
        cluster: String,
        /// Its service ARN.
        service: String,
        /// `family:revision`.
        task_definition: String,
        /// Desired task count.
        desired: i32,
    },
    /// Tag both services with `ops:swap-in-flight`.
    Mark {
        /// Service ARNs.
        services: Vec<String>,
        /// `<app>:<swap id>`.
        value: String,
    },
    /// Remove `ops:swap-in-flight` from both services.
    Unmark {
        /// Service ARNs.
        services: Vec<String>,
    },
    /// Publish the alert for a state, then mark it alerted.
    Report(Box<Transition>),
    /// Publish the alert that a route of the swap was changed outside the swapper (before the
    /// change that puts it back).
    RouteChanged(Box<RouteChange>),
    /// Write when the new colour was first seen not fully healthy in the current state (or that
    /// it is healthy again) on the live route, in `ops:swap-unhealthy`.
    NoteHealth {
        /// The live route.
        route: String,
        /// The tag's value.
        value: String,
    },
}

/// How a swap begins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeginSpec {
    /// The live route.
    pub route: String,
    /// The plan; its task definition is filled in by the registration when there is one.
    pub plan: SwapPlan,
    /// The image, pinned.
    pub image: String,
    /// The revision to register, when the swap deploys an image.
    pub register: Option<Registration>,
    /// The swap's first state.
    pub state: SwapState,
}

/// A revision to clone from the live colour's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registration {
    /// ARN of the revision cloned.
    pub base: String,
    /// Container name → the new image.
    pub images: BTreeMap<String, String>,
    /// The digest pinned.
    pub digest: String,
}

/// What an alert about a swap says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The app.
    pub app: String,
    /// The swap.
    pub plan: SwapPlan,
    /// The image deployed.
    pub image: String,
    /// The state alerted.
    pub state: SwapState,
    /// The live route.
    pub route: String,
    /// Live traffic as observed before this state, by weight.
    pub before: Split,
    /// Live traffic as this state leaves it.
    pub after: Split,
    /// Each colour's service, revision and health as observed.
    pub colours: Vec<ColourFacts>,
    /// What happens next.
    pub next: String,
    /// Who asked for this transition (promote, abort), if a person did.
    pub requested_by: Option<String>,
}

/// Traffic found changed outside the swapper on a route of a swap in flight, after the swap's state
/// had taken effect and been alerted: what was found and what it is put back to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteChange {
    /// The app.
    pub app: String,
    /// The swap.
    pub plan: SwapPlan,
    /// The swap's phase.
    pub phase: Phase,
    /// Each route changed: its ARN, the traffic found on it, the traffic it was put back to.
    pub routes: Vec<(String, String, String)>,
}

/// A colour in an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColourFacts {
    /// Blue or green.
    pub colour: Colour,
    /// `cluster/service`.
    pub service: String,
    /// Service ARN.
    pub arn: String,
    /// `family:revision` it runs.
    pub task_definition: String,
    /// Desired tasks.
    pub desired: i32,
    /// The targets as last seen, e.g. `2 healthy targets`.
    pub health: String,
}

/// What a chat command asks of a swap in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steer {
    /// Skip the remaining waits: move the rest of the traffic now, or end the termination wait.
    Promote {
        /// Who asked.
        by: String,
    },
    /// Stop: restore the new colour, and move traffic back if any moved.
    Abort {
        /// Who asked.
        by: String,
    },
}

/// What a swap should deploy.
#[derive(Debug, Clone, PartialEq)]
pub enum Deploying {
    /// A new image into the live colour's revision.
    Image {
        /// Registry host.
        registry: String,
        /// Repository.
        repository: String,
        /// The image, pinned by digest.
        pinned: String,
        /// Its digest.
        digest: String,
    },
    /// An existing revision, unchanged.
    Revision(Box<TaskDefinitionState>),
}

/// A request to start a swap.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// What to deploy.
    pub deploying: Deploying,
    /// A strategy for this swap instead of the app's.
    pub strategy: Option<Strategy>,
    /// Who asked.
    pub requested_by: String,
}

/// Why a swap was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason, for the chat reply.
    pub reason: String,
    /// Whether ops should be alerted: AWS is not as the swapper expects (pre-flight), as opposed
    /// to a request that simply does not fit.
    pub pre_flight: bool,
}

impl Refusal {
    fn request(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            pre_flight: false,
        }
    }

    fn pre_flight(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            pre_flight: true,
        }
    }
}

/// The outcome of a start request.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The same swap is already in flight: advance it instead.
    AlreadyInFlight,
    /// Begin a new swap.
    Begin(Plan<Action>),
}

/// Check that traffic is where the swapper expects it, with healthy targets, before it moves any:
/// the colour that is live, or why none can be trusted.
pub fn pre_flight(view: &AppView) -> Result<Colour, String> {
    let app = &view.spec.name;
    if view.route.forwards().is_none() {
        return Err(format!(
            "{app}: the live route {} has no forward action",
            view.route.arn
        ));
    }
    let foreign = view.foreign_targets();
    if !foreign.is_empty() {
        return Err(format!(
            "{app}: the live route also sends traffic to {}, which belongs to neither colour",
            foreign.join(", ")
        ));
    }
    let live = view.live().ok_or_else(|| not_on_one_colour(view))?;
    if !view.other_routes.is_empty() {
        // Traffic through another route is live traffic too: a swap would replace the idle
        // colour's tasks under it, and scale the live colour to 0 under it at the end.
        let others: Vec<String> = view
            .other_routes
            .iter()
            .map(|route| {
                let colours: Vec<String> = route
                    .sends_to
                    .iter()
                    .map(|colour| {
                        let role = if *colour == live { "live" } else { "idle" };
                        format!("{colour} ({role})")
                    })
                    .collect();
                format!("{} sends traffic to {}", route.arn, colours.join(" and "))
            })
            .collect();
        return Err(format!(
            "{app}: other routes of the load balancer send traffic to its colours: {}; a swap \
             replaces the idle colour's tasks and scales the live one to 0, under those routes \
             too: point them at neither colour (or name one as the app's test route) first",
            others.join("; ")
        ));
    }
    if let Some(recorded) = view.recorded_live().filter(|r| *r != live) {
        return Err(format!(
            "{app}: the live route sends all traffic to {live}, but the last swap left {recorded} live; \
             the route was changed outside the swapper: check it, then point it back at {recorded}"
        ));
    }
    let colour = view.colour(live);
    if colour.healthy() == 0 {
        return Err(format!(
            "{app}: the live colour {live} ({}) has no healthy targets in {}",
            colour.service.qualified_name(),
            colour.target_group
        ));
    }
    if !view.missing_alarms.is_empty() {
        return Err(format!(
            "{app}: tag `{}` names alarms CloudWatch does not have: {}",
            contract::ALARMS,
            view.missing_alarms.join(", ")
        ));
    }
    let firing = view.firing_alarms();
    if !firing.is_empty() {
        return Err(format!(
            "{app}: alarms are in ALARM: {}; not starting a swap",
            firing.join("; ")
        ));
    }
    Ok(live)
}

/// Why a route that does not send all its traffic to one colour is refused, with its real weights:
/// any weight on the idle colour is live traffic, however small its share.
fn not_on_one_colour(view: &AppView) -> String {
    let app = &view.spec.name;
    let split = view.split();
    if split.total == 0 {
        return format!(
            "{app}: the live route gives every target group weight 0, so no colour is live; \
             give the live colour a weight above 0 first"
        );
    }
    // The idle colour is the one the last swap did not leave live; without a swap on record, the
    // one with less weight.
    let idle = match view.recorded_live() {
        Some(live) => live.other(),
        None if split.green > split.blue => Colour::Blue,
        None => Colour::Green,
    };
    let live = idle.other();
    format!(
        "{app}: {idle} has {}: traffic is split ({}; weights {}) with no swap in flight, and any weight \
         on the idle colour is live traffic; set {idle}'s weight to 0 so that all traffic is on {live}, \
         then deploy again",
        split.share(idle).describe(),
        split.text(Colour::Blue),
        split.weights_text(Colour::Blue),
    )
}

/// Decide whether and how to start a swap. `base` is the live colour's revision (the one cloned
/// for a new image); `latest` is its family's newest revision, reused if an interrupted run
/// registered it for the same image.
pub fn decide_start(
    view: &AppView,
    request: &StartRequest,
    base: &TaskDefinitionState,
    latest: Option<&TaskDefinitionState>,
    now: u64,
) -> Result<Start, Refusal> {
    let app = &view.spec.name;
    if let Some(swap) = view.in_flight() {
        let same = match &request.deploying {
            Deploying::Image { pinned, .. } => swap.image == *pinned,
            Deploying::Revision(revision) => {
                swap.plan.task_definition == revision.short_name()
                    && swap.image == revision_label(revision)
            }
        };
        if same {
            return Ok(Start::AlreadyInFlight);
        }
        return Err(Refusal::request(format!(
            "a swap of {app} is in flight: {} of {} to {}, {} since {}, asked by {}; abort it or wait for it to finish",
            swap.plan.id,
            swap.image,
            swap.plan.to,
            swap.state.phase,
            utc_text(swap.state.since),
            swap.plan.requested_by
        )));
    }
    if let Some(last) = view.swap.as_ref().filter(|s| s.needs_work()) {
        // Ended but not yet alerted: a new swap would overwrite what the alert needs.
        return Err(Refusal::request(format!(
            "the last swap of {app} ({}) ended {} but its alert has not gone out yet; the next run, \
             within a minute, sends it: deploy again after that",
            last.plan.id, last.state.phase
        )));
    }
    let live = pre_flight(view).map_err(Refusal::pre_flight)?;
    let idle = view.colour(live.other());
    let live_view = view.colour(live);
    if live_view.service.desired < 1 {
        return Err(Refusal::pre_flight(format!(
            "{app}: the live colour {live} ({}) has a desired count of 0",
            live_view.service.qualified_name()
        )));
    }
    if idle.service.deployment_controller != ops_core::aws::ecs::ECS_CONTROLLER {
        return Err(Refusal::request(format!(
            "{app}: {} ({}) runs on the {} deployment controller, whose task definition UpdateService cannot change (CodeDeploy or your task-set tool deploys it); move both colours to the ECS controller to swap them; nothing was changed",
            live.other(),
            idle.service.qualified_name(),
            idle.service.deployment_controller
        )));
    }
    // What the idle colour would run: the live revision's clone for an image, else the revision.
    let runs = match &request.deploying {
        Deploying::Image { .. } => base,
        Deploying::Revision(revision) => revision.as_ref(),
    };
    if let Some(why) = idle.service.placement.cannot_run(&runs.definition) {
        return Err(Refusal::request(format!(
            "{app}: {} ({}) cannot run {}{}: {why}; nothing was changed",
            live.other(),
            idle.service.qualified_name(),
            runs.short_name(),
            match request.deploying {
                Deploying::Image { .. } => " with the new image (the live revision, cloned)",
                Deploying::Revision(_) => "",
            }
        )));
    }
    let (image, register, task_definition) = match &request.deploying {
        Deploying::Image {
            registry,
            repository,
            pinned,
            digest,
        } => {
            let containers = chosen_containers(view, base, registry, repository)?;
            if containers
                .iter()
                .all(|(_, current)| current.ends_with(digest.as_str()))
            {
                return Err(Refusal::request(format!(
                    "{app}: the live colour {live} already runs {pinned}"
                )));
            }
            let reuse = latest.filter(|l| l.is_derived(base.arn(), digest));
            let register = match reuse {
                Some(_) => None,
                None => Some(Registration {
                    base: base.arn().to_string(),
                    images: containers
                        .iter()
                        .map(|(name, _)| (name.clone(), pinned.clone()))
                        .collect(),
                    digest: digest.clone(),
                }),
            };
            let task_definition = reuse.map(|r| r.short_name()).unwrap_or_default();
            (pinned.clone(), register, task_definition)
        }
        Deploying::Revision(revision) => {
            if live_view.task_definition() == revision.short_name() {
                return Err(Refusal::request(format!(
                    "{app}: the live colour {live} already runs {}",
                    revision.short_name()
                )));
            }
            (revision_label(revision), None, revision.short_name())
        }
    };
    let plan = SwapPlan {
        id: contract::swap_id(now),
        to: live.other(),
        task_definition,
        was_task_definition: idle.task_definition(),
        was_desired: idle.service.desired,
        requested_by: request.requested_by.clone(),
        strategy: request.strategy.unwrap_or(view.spec.strategy),
        started_at: now,
    };
    let reason = format!(
        "{app}: deploy {image} to {} ({}) at {} tasks, then move traffic from {live} by {}; {}",
        plan.to,
        idle.service.qualified_name(),
        live_view.service.desired,
        plan.strategy,
        match &register {
            Some(r) => format!(
                "a new revision of {} is registered",
                short_task_definition(&r.base)
            ),
            None if matches!(request.deploying, Deploying::Image { .. }) => format!(
                "revision {} registered for this image earlier is reused",
                plan.task_definition
            ),
            None => format!("revision {} is deployed unchanged", plan.task_definition),
        }
    );
    let state = SwapState {
        id: plan.id.clone(),
        version: 1,
        reported: 0,
        phase: Phase::Deploying,
        step: 0,
        since: now,
        before: Some(view.split()),
        after: Some(Split::at_percent(plan.to, 0)),
        why: contract::fit_why(&format!(
            "deploy of {image} requested by {}",
            request.requested_by
        )),
    };
    let begin = BeginSpec {
        route: view.route.arn.clone(),
        plan,
        image,
        register,
        state,
    };
    Ok(Start::Begin(
        Plan::new().change(Action::Begin(Box::new(begin)), reason),
    ))
}

/// How a swap of an existing revision names its "image" in tags and alerts.
pub fn revision_label(revision: &TaskDefinitionState) -> String {
    format!("revision {}", revision.short_name())
}

fn chosen_containers(
    view: &AppView,
    base: &TaskDefinitionState,
    registry: &str,
    repository: &str,
) -> Result<Vec<(String, String)>, Refusal> {
    let images = base.images();
    let revision = base.short_name();
    match &view.spec.containers {
        Some(names) => names
            .iter()
            .map(|name| {
                images
                    .get(name)
                    .map(|image| (name.clone(), image.clone()))
                    .ok_or_else(|| {
                        Refusal::request(format!(
                            "tag `{}` names `{name}`, but {revision} has no such container (it has {})",
                            contract::CONTAINERS,
                            images.keys().cloned().collect::<Vec<_>>().join(", ")
                        ))
                    })
            })
            .collect(),
        None => {
            let running = ops_core::image::containers_running(&images, registry, repository);
            if running.is_empty() {
                Err(Refusal::request(format!(
                    "no container of {revision} runs an image of {registry}/{repository}; name the containers in tag `{}`",
                    contract::CONTAINERS
                )))
            } else {
                Ok(running)
            }
        }
    }
}

/// Decide the next bounded step of the swap recorded on an app, if it needs one. Going back
/// (an abort, an alarm, a failed or unhealthy new colour) comes first and skips whatever the
/// current state still had to apply; otherwise AWS is brought to the recorded state, the state is
/// alerted if that was not done yet, and at most one transition forward is taken. `steer` is a
/// chat command's wish; it is refused (with the reason) when the swap cannot honour it.
pub fn decide_advance(
    view: &AppView,
    now: u64,
    steer: Option<&Steer>,
) -> Result<Plan<Action>, String> {
    let plan = decide_step(view, now, steer)?;
    Ok(match drained_under_another_route(view, &plan) {
        Some(hold) => Plan::new().note(hold),
        None => plan,
    })
}

/// The colour `plan` would scale to 0 to finish a swap (the old one, once the new one serves all
/// live traffic), if [`AppView::other_routes`] (read by the caller when such a step is planned)
/// says another route still sends it traffic: then the whole step waits, with why.
pub fn drained_under_another_route(view: &AppView, plan: &Plan<Action>) -> Option<String> {
    let old = view.swap.as_ref()?.plan.from();
    plan.changes.iter().find_map(|change| match &change.action {
        Action::Service {
            colour, desired: 0, ..
        } if *colour == old => {
            let routes: Vec<&str> = view
                .other_routes
                .iter()
                .filter(|r| r.sends_to.contains(colour))
                .map(|r| r.arn.as_str())
                .collect();
            (!routes.is_empty()).then(|| {
                format!(
                    "{}: holding before {old} is scaled to 0: {} still send traffic to it; point them \
                     elsewhere and the next run finishes the swap",
                    view.spec.name,
                    routes.join(", ")
                )
            })
        }
        _ => None,
    })
}

/// Whether `plan` scales a colour to 0 (the caller then reads the other routes first).
pub fn scales_to_zero(plan: &Plan<Action>) -> bool {
    plan.changes
        .iter()
        .any(|c| matches!(c.action, Action::Service { desired: 0, .. }))
}

fn decide_step(view: &AppView, now: u64, steer: Option<&Steer>) -> Result<Plan<Action>, String> {
    let app = &view.spec.name;
    let Some(swap) = view.swap.as_ref().filter(|s| s.needs_work()) else {
        return match steer {
            Some(_) => Err(match view.swap.as_ref() {
                Some(last) => format!(
                    "no swap of {app} is in flight; the last one ({} of {}) ended {} at {}",
                    last.plan.id,
                    last.image,
                    last.state.phase,
                    utc_text(last.state.since)
                ),
                None => format!("no swap of {app} is in flight"),
            }),
            None => Ok(Plan::new()),
        };
    };
    let state = &swap.state;
    let going_back = matches!(state.phase, Phase::RollingBack | Phase::Aborting);
    if steer.is_some() && (state.phase.is_terminal() || going_back) {
        return Err(format!(
            "the swap {} of {app} is {} already",
            swap.plan.id, state.phase
        ));
    }
    if !state.phase.is_terminal() && !going_back {
        if let Some((back, by)) = reason_to_go_back(view, swap, now, steer) {
            // A state not alerted yet is alerted first when it took effect (the swap started, or
            // its routes are where it says), so going back never hides a transition that
            // happened; one that never reached the routes is folded into the going back.
            let mut plan = Plan::new();
            let took_effect = state.phase == Phase::Deploying
                || !converge(view, swap, state)
                    .iter()
                    .any(|(action, _)| matches!(action, Action::Weights { .. }));
            if state.reported < state.version && took_effect {
                plan = report(plan, view, swap, state, None);
            }
            return Ok(enter(plan, view, swap, back, by));
        }
    }
    if !view.foreign_targets().is_empty() {
        return Ok(Plan::new().note(format!(
            "{app}: holding: the live route also sends traffic to {}, which belongs to neither colour; \
             fix the route or abort the swap",
            view.foreign_targets().join(", ")
        )));
    }
    let mut plan = Plan::new();
    let converging = converge(view, swap, state);
    let held = held_back(view, swap, state);
    let converged = converging.is_empty() && held.is_none();
    // Alerted before the put-back: nothing records it, so a run that dies after the alert puts
    // the weights back at the next run (alerted again), and none puts them back silently.
    let outside = changed_outside(view, swap, state, &converging);
    if let Some(change) = outside.clone() {
        plan = plan.change(
            Action::RouteChanged(Box::new(change)),
            format!("{app}: ops alerted: traffic was changed outside the swapper; putting it back"),
        );
    }
    for (action, reason) in converging {
        plan = plan.change(action, reason);
    }
    if state.reported < state.version {
        match held.as_ref().filter(|_| !was_held(swap, state)) {
            // A rollback entered to move traffic back, whose move a crash cut short, and whose
            // old colour cannot take traffic now: it is recorded and alerted as held (what AWS
            // shows), so its end is alerted when traffic does move.
            Some(_) => {
                let mut as_held = state.clone();
                as_held.after = Some(view.split());
                plan = plan.change(
                    Action::Record {
                        route: view.route.arn.clone(),
                        state: as_held.clone(),
                    },
                    format!("{app}: {} recorded as held", state.phase),
                );
                plan = report(plan, view, swap, &as_held, None);
            }
            None => plan = report(plan, view, swap, state, None),
        }
    }
    if state.phase.is_terminal() {
        return Ok(plan);
    }
    if !converged {
        if let (Some(_), Some(change)) = (steer, &outside) {
            let found: Vec<&str> = change
                .routes
                .iter()
                .map(|(_, found, _)| found.as_str())
                .collect();
            return Err(format!(
                "traffic of {app} was changed outside the swapper ({}); the next run (every minute) puts it back and alerts it; send the command again after that",
                found.join("; ")
            ));
        }
        if steer.is_some() {
            return Err(format!(
                "the swap of {app} is still applying its last step ({}); send the command again in a moment",
                state.phase
            ));
        }
        return Ok(plan.note(held.unwrap_or_else(|| {
            format!(
                "{app}: {} applied; the next run (every minute) checks health and moves on",
                state.phase
            )
        })));
    }
    if going_back {
        let end = if state.phase == Phase::RollingBack {
            Phase::RolledBack
        } else {
            Phase::Aborted
        };
        let mut finished = state.next(end, state.step, now, state.why.clone());
        if !was_held(swap, state) {
            // The rollback or abort was alerted when it happened; its end only needs recording.
            return Ok(plan.change(
                Action::Record {
                    route: view.route.arn.clone(),
                    state: finished.alerted(),
                },
                format!("{app}: {} recorded", end),
            ));
        }
        // The rollback was alerted as held (the old colour could not take traffic then): the
        // move back, which has happened now, is alerted in its own right.
        finished.before = state.after;
        finished.after = Some(Split::at_percent(swap.plan.to, 0));
        let plan = plan.change(
            Action::Record {
                route: view.route.arn.clone(),
                state: finished.clone(),
            },
            format!("{app}: {end}: traffic is back on {}", swap.plan.from()),
        );
        return Ok(report(plan, view, swap, &finished, None));
    }
    match forward(view, swap, now, steer)? {
        Next::Hold(note) => Ok(match health_change(view, swap, now) {
            Some((action, reason)) => plan.change(action, reason).note(note),
            None => plan.note(note),
        }),
        Next::To(next, by) => Ok(enter(plan, view, swap, next, by)),
    }
}

/// While a swap holds in a state after its deploy: record when the new colour was first seen not
/// fully healthy (the health timeout counts from then), or that it is healthy again.
fn health_change(view: &AppView, swap: &Swap, now: u64) -> Option<(Action, String)> {
    if swap.state.phase == Phase::Deploying {
        return None;
    }
    let ready = view.colour(swap.plan.to).ready(&swap.plan.task_definition);
    let since = match (ready, swap.unhealthy_since) {
        (false, None) => Some(now),
        (true, Some(_)) => None,
        _ => return None,
    };
    let reason = match since {
        Some(_) => format!(
            "{}: {} is not fully healthy since {}",
            view.spec.name,
            swap.plan.to,
            utc_text(now)
        ),
        None => format!("{}: {} is healthy again", view.spec.name, swap.plan.to),
    };
    Some((
        Action::NoteHealth {
            route: view.route.arn.clone(),
            value: contract::unhealthy_mark(&swap.state, since),
        },
        reason,
    ))
}

/// Add entering `next` to `plan`: record it, make AWS match it, alert it.
fn enter(
    plan: Plan<Action>,
    view: &AppView,
    swap: &Swap,
    next: SwapState,
    requested_by: Option<String>,
) -> Plan<Action> {
    let app = &view.spec.name;
    // The alert's weights are recorded with the intent, before AWS changes, so a run that dies
    // between moving traffic and alerting leaves the next run the same alert to send.
    let mut next = next;
    next.before = Some(view.split());
    next.after = Some(match held_back(view, swap, &next) {
        // Going back onto an old colour that cannot take traffic: traffic stays for now.
        Some(_) => view.split(),
        None => Split::at_percent(swap.plan.to, target(view, swap, &next).percent),
    });
    let mut plan = plan.change(
        Action::Record {
            route: view.route.arn.clone(),
            state: next.clone(),
        },
        format!(
            "{app}: {} -> {}: {}",
            swap.state.phase, next.phase, next.why
        ),
    );
    for (action, reason) in converge(view, swap, &next) {
        plan = plan.change(action, reason);
    }
    report(plan, view, swap, &next, requested_by)
}

enum Next {
    Hold(String),
    To(SwapState, Option<String>),
}

/// Why the swap must go back now (and who asked, if a person did): an abort, an alarm, a failed
/// rollout, no healthy new targets under live traffic, or health not reached in time.
fn reason_to_go_back(
    view: &AppView,
    swap: &Swap,
    now: u64,
    steer: Option<&Steer>,
) -> Option<(SwapState, Option<String>)> {
    let plan = &swap.plan;
    let state = &swap.state;
    let new = view.colour(plan.to);
    let carries = state.phase.carries_traffic();
    let back = if carries {
        Phase::RollingBack
    } else {
        Phase::Aborting
    };
    let go = |why: String, by: Option<String>| Some((state.next(back, state.step, now, why), by));
    if let Some(Steer::Abort { by }) = steer {
        let verb = if carries { "rollback" } else { "abort" };
        return go(format!("{verb} requested by {by}"), Some(by.clone()));
    }
    let firing = view.firing_alarms();
    if !firing.is_empty() {
        return go(format!("alarm in ALARM: {}", firing.join("; ")), None);
    }
    if let Some(reason) = new.rollout_failure(&plan.task_definition) {
        return go(
            format!(
                "the ECS rollout of {} on {} failed: {reason}",
                plan.task_definition,
                new.service.qualified_name()
            ),
            None,
        );
    }
    let health = format!("{} {}", plan.to, new.health_text());
    if carries && new.healthy() == 0 {
        return go(
            format!(
                "{} carries live traffic but has no healthy targets ({health})",
                plan.to
            ),
            None,
        );
    }
    if !new.ready(&plan.task_definition) && now >= health_deadline(view, swap, now) {
        let timeout = duration_text(view.spec.health_timeout);
        let why = match swap.unhealthy_since {
            Some(since) if state.phase != Phase::Deploying => format!(
                "{} has not been fully healthy since {} and did not recover within {timeout} ({health}; rollout {})",
                plan.to,
                utc_text(since),
                new.rollout()
            ),
            _ => format!(
                "{} was not healthy within {timeout} ({health}; rollout {})",
                plan.to,
                new.rollout()
            ),
        };
        return go(why, None);
    }
    None
}

/// When a new colour that is not fully healthy makes the swap go back: a health timeout after it
/// was deployed, or, in a later state, after it was first seen not fully healthy in that state
/// (recorded in `ops:swap-unhealthy`; `now` when this run is the first to see it). A target
/// replaced late in a long bake or termination wait (a Fargate Spot interruption, a scale-out of
/// the live colour) gets the health timeout to become healthy, and a colour that stays half
/// unhealthy under live traffic goes back a health timeout after it turned so, however long the
/// phase's own wait (found by an independent test: with a 12-hour termination wait it carried all
/// traffic half unhealthy for 12 hours, alerting nothing).
fn health_deadline(view: &AppView, swap: &Swap, now: u64) -> u64 {
    let onset = match swap.state.phase {
        Phase::Deploying => swap.state.since,
        _ => swap.unhealthy_since.unwrap_or(now),
    };
    onset.max(swap.state.since) + view.spec.health_timeout
}

/// The transition forward the observations allow, or why the swap holds.
fn forward(view: &AppView, swap: &Swap, now: u64, steer: Option<&Steer>) -> Result<Next, String> {
    let app = &view.spec.name;
    let plan = &swap.plan;
    let state = &swap.state;
    let new = view.colour(plan.to);
    let steps = plan.strategy.steps();
    let last = steps.len() - 1;
    let first = if steps[0] == 100 {
        (Phase::Warm, 0)
    } else {
        (Phase::Shifting, 0)
    };
    let to = |(phase, step): (Phase, usize), why: String| state.next(phase, step, now, why);
    let elapsed = now.saturating_sub(state.since);
    let health = format!("{} {}", plan.to, new.health_text());
    if !view.missing_alarms.is_empty() {
        return Ok(Next::Hold(format!(
            "{app}: holding: alarms named in `{}` are missing: {}",
            contract::ALARMS,
            view.missing_alarms.join(", ")
        )));
    }
    if !new.ready(&plan.task_definition) {
        if let Some(Steer::Promote { .. }) = steer {
            return Err(format!(
                "{} is not healthy yet ({health}); promote once it is",
                plan.to
            ));
        }
        return Ok(Next::Hold(format!(
            "{app}: waiting for {} to run {} with every task healthy ({health}; rollout {}); gives up at {}",
            plan.to,
            plan.task_definition,
            new.rollout(),
            utc_text(health_deadline(view, swap, now))
        )));
    }
    let healthy = format!("{} is healthy ({health})", plan.to);
    if let Some(Steer::Promote { by }) = steer {
        let target = if state.phase == Phase::Warm {
            (Phase::Done, state.step)
        } else {
            (Phase::Warm, last)
        };
        return Ok(Next::To(
            to(target, format!("promoted by {by}; {healthy}")),
            Some(by.clone()),
        ));
    }
    match state.phase {
        Phase::Deploying if view.test_route.is_some() && view.spec.test_wait > 0 => Ok(Next::To(
            to(
                (Phase::Testing, 0),
                format!("{healthy}; the test route serves it"),
            ),
            None,
        )),
        Phase::Deploying => Ok(Next::To(to(first, healthy), None)),
        Phase::Testing if elapsed < view.spec.test_wait => Ok(Next::Hold(format!(
            "{app}: test traffic only until {}",
            utc_text(state.since + view.spec.test_wait)
        ))),
        Phase::Testing => Ok(Next::To(
            to(
                first,
                format!(
                    "{healthy} after {} of test traffic",
                    duration_text(view.spec.test_wait)
                ),
            ),
            None,
        )),
        Phase::Shifting => {
            let wait = plan.strategy.wait();
            let at = steps[state.step.min(last)];
            if elapsed < wait {
                return Ok(Next::Hold(format!(
                    "{app}: {at}% on {} until {}",
                    plan.to,
                    utc_text(state.since + wait)
                )));
            }
            let step = (state.step + 1).min(last);
            let phase = if steps[step] == 100 {
                Phase::Warm
            } else {
                Phase::Shifting
            };
            Ok(Next::To(
                to(
                    (phase, step),
                    format!("{healthy} after {} at {at}%", duration_text(wait)),
                ),
                None,
            ))
        }
        Phase::Warm if elapsed < view.spec.termination_wait => Ok(Next::Hold(format!(
            "{app}: {} kept warm until {}",
            plan.from(),
            utc_text(state.since + view.spec.termination_wait)
        ))),
        Phase::Warm => Ok(Next::To(
            to(
                (Phase::Done, state.step),
                format!(
                    "{healthy} through the {} termination wait",
                    duration_text(view.spec.termination_wait)
                ),
            ),
            None,
        )),
        phase => Ok(Next::Hold(format!("{app}: {phase} needs no transition"))),
    }
}

/// What AWS looks like when a swap's state is fully applied.
struct Target {
    /// The new colour's share of live traffic.
    percent: u32,
    /// The colour the test route serves.
    test_serves: Colour,
    /// The new colour's revision and count, when the state sets them.
    new: Option<(String, i32)>,
    /// The old colour's count, when the state sets it.
    old_desired: Option<i32>,
    /// Whether both services carry `ops:swap-in-flight`.
    marked: bool,
}

/// The new colour's share of live traffic when `state` of the swap `plan` is fully applied.
pub fn live_percent(plan: &SwapPlan, state: &SwapState) -> u32 {
    let steps = plan.strategy.steps();
    match state.phase {
        Phase::Shifting => steps[state.step.min(steps.len() - 1)],
        Phase::Warm | Phase::Done => 100,
        Phase::Deploying
        | Phase::Testing
        | Phase::RollingBack
        | Phase::Aborting
        | Phase::RolledBack
        | Phase::Aborted => 0,
    }
}

/// The colour the test route serves when `state` of the swap `plan` is fully applied.
pub fn test_serves(plan: &SwapPlan, state: &SwapState) -> Colour {
    match state.phase {
        Phase::RollingBack | Phase::Aborting | Phase::RolledBack | Phase::Aborted => plan.from(),
        _ => plan.to,
    }
}

fn target(view: &AppView, swap: &Swap, state: &SwapState) -> Target {
    let plan = &swap.plan;
    let (new, old) = (view.colour(plan.to), view.colour(plan.from()));
    let percent = live_percent(plan, state);
    let test_serves = self::test_serves(plan, state);
    let forward = |percent: u32| Target {
        percent,
        test_serves,
        // As many tasks as the live colour (never fewer than one); never scaled below what
        // the new colour already runs.
        new: Some((
            plan.task_definition.clone(),
            old.service.desired.max(1).max(new.service.desired),
        )),
        old_desired: None,
        marked: true,
    };
    match state.phase {
        Phase::Deploying | Phase::Testing | Phase::Shifting | Phase::Warm => forward(percent),
        Phase::RollingBack | Phase::Aborting => Target {
            percent,
            test_serves,
            new: Some((plan.was_task_definition.clone(), plan.was_desired)),
            old_desired: None,
            marked: false,
        },
        Phase::Done => Target {
            percent,
            test_serves,
            new: None,
            old_desired: Some(0),
            marked: false,
        },
        Phase::RolledBack | Phase::Aborted => Target {
            percent,
            test_serves,
            new: None,
            old_desired: None,
            marked: false,
        },
    }
}

/// Why a rollback holds live traffic where it is: the old colour has no healthy target, and
/// sending all traffic to it would turn part of an outage into all of it. The rollback goes on
/// (traffic back, then the new colour restored) as soon as the old colour can take it.
fn held_back(view: &AppView, swap: &Swap, state: &SwapState) -> Option<String> {
    let plan = &swap.plan;
    let old = view.colour(plan.from());
    let moving = state.phase == Phase::RollingBack && !view.split().is_at(plan.to, 0);
    (moving && old.healthy() == 0).then(|| {
        format!(
            "{}: holding the rollback: {} ({}) has no healthy targets ({}), so live traffic stays \
             as it is ({}) until it has; then it moves back in one change and {} is restored",
            view.spec.name,
            plan.from(),
            old.service.qualified_name(),
            old.targets_text(),
            view.split().text(plan.from()),
            plan.to
        )
    })
}

/// A change of the swap's routes made outside the swapper (the console, another tool), when
/// `converging` puts one back: a state is alerted only after AWS matched it (see [`enter`]), so
/// weights that differ from an alerted state's were changed since. A state not alerted yet is a
/// run that died half-way, whose changes are simply made again; a rollback entered held moves
/// traffic only now.
fn changed_outside(
    view: &AppView,
    swap: &Swap,
    state: &SwapState,
    converging: &[(Action, String)],
) -> Option<RouteChange> {
    if state.reported < state.version || was_held(swap, state) {
        return None;
    }
    let (plan, from) = (&swap.plan, swap.plan.from());
    let want = target(view, swap, state);
    let routes: Vec<(String, String, String)> = converging
        .iter()
        .filter_map(|(action, _)| match action {
            Action::Weights { route, .. } if *route == view.route.arn => {
                let found = view.split();
                Some((
                    route.clone(),
                    format!(
                        "{} (weights {})",
                        found.text(from),
                        found.weights_text(from)
                    ),
                    Split::at_percent(plan.to, want.percent).text(from),
                ))
            }
            Action::Weights { route, .. } => {
                let test = view.test_route.as_ref().filter(|r| r.arn == *route)?;
                let found =
                    Split::of_route(test, &view.blue.target_group, &view.green.target_group);
                Some((
                    route.clone(),
                    format!(
                        "test route {} (weights {})",
                        found.text(from),
                        found.weights_text(from)
                    ),
                    format!("test route {} 100%", want.test_serves),
                ))
            }
            _ => None,
        })
        .collect();
    (!routes.is_empty()).then(|| RouteChange {
        app: view.spec.name.clone(),
        plan: plan.clone(),
        phase: state.phase,
        routes,
    })
}

/// Whether a rollback was entered held (its recorded weights after are not all on the old
/// colour), so that its end is alerted too.
fn was_held(swap: &Swap, state: &SwapState) -> bool {
    state.phase == Phase::RollingBack
        && state
            .after
            .is_some_and(|after| !after.is_at(swap.plan.to, 0))
}

/// The changes that make AWS match `state` (none when it already does), in the order that is
/// safe to stop after: traffic first when going back, the new colour first when going forward.
/// A rollback held by [`held_back`] changes nothing yet: the new colour still serves.
fn converge(view: &AppView, swap: &Swap, state: &SwapState) -> Vec<(Action, String)> {
    if matches!(state.phase, Phase::RolledBack | Phase::Aborted)
        || held_back(view, swap, state).is_some()
    {
        return Vec::new();
    }
    let plan = &swap.plan;
    let (new, old) = (view.colour(plan.to), view.colour(plan.from()));
    let app = &view.spec.name;
    let want = target(view, swap, state);
    // Exact weights: 999/1 is not "0% on the new colour", and 901/99 is not a 10% step.
    let split = view.split();
    let traffic = (!split.is_at(plan.to, want.percent)).then(|| {
        (
            Action::Weights {
                route: view.route.arn.clone(),
                weights: weights(old, 100 - want.percent, new, want.percent),
            },
            format!(
                "{app}: live traffic {} (was {}; weights {})",
                Split::at_percent(plan.to, want.percent).text(old.colour),
                split.text(old.colour),
                split.weights_text(old.colour)
            ),
        )
    });
    let serves = view.colour(want.test_serves);
    let other = view.colour(want.test_serves.other());
    let test = view.test_route.as_ref().and_then(|route| {
        let split = Split::of_route(route, &view.blue.target_group, &view.green.target_group);
        (!split.share(want.test_serves).is_all()).then(|| {
            (
                Action::Weights {
                    route: route.arn.clone(),
                    weights: weights(other, 0, serves, 100),
                },
                format!("{app}: the test route serves {}", serves.colour),
            )
        })
    });
    let service = |colour: &ColourView, task_definition: &str, desired: i32, why: String| {
        let unchanged =
            colour.task_definition() == task_definition && colour.service.desired == desired;
        (!unchanged).then(|| {
            (
                Action::Service {
                    colour: colour.colour,
                    cluster: colour.service.cluster.clone(),
                    service: colour.service.arn.clone(),
                    task_definition: task_definition.to_string(),
                    desired,
                },
                why,
            )
        })
    };
    let new_service = want.new.as_ref().and_then(|(task_definition, desired)| {
        let why = if want.marked {
            format!(
                "{app}: {} ({}) runs {task_definition} at {desired} tasks, like the live colour",
                new.colour,
                new.service.qualified_name()
            )
        } else {
            format!(
                "{app}: {} ({}) back to {task_definition} at {desired} tasks, as the swap found it",
                new.colour,
                new.service.qualified_name()
            )
        };
        service(new, task_definition, *desired, why)
    });
    let old_service = want.old_desired.and_then(|desired| {
        service(
            old,
            &old.task_definition(),
            desired,
            format!(
                "{app}: {} ({}) scaled to {desired} after the termination wait",
                old.colour,
                old.service.qualified_name()
            ),
        )
    });
    let services = vec![
        view.blue.service.arn.clone(),
        view.green.service.arn.clone(),
    ];
    let mark_value = format!("{app}:{}", plan.id);
    let marks = [&view.blue, &view.green].map(|c| c.service.tag(contract::IN_FLIGHT));
    let marking = if want.marked {
        (!marks.iter().all(|m| *m == Some(mark_value.as_str()))).then(|| {
            (
                Action::Mark {
                    services,
                    value: mark_value,
                },
                format!(
                    "{app}: mark both services `{}` while the swap is in flight",
                    contract::IN_FLIGHT
                ),
            )
        })
    } else {
        (!marks.iter().all(Option::is_none)).then(|| {
            (
                Action::Unmark { services },
                format!("{app}: the swap is no longer in flight"),
            )
        })
    };
    let ordered = match state.phase {
        Phase::RollingBack | Phase::Aborting => [traffic, test, new_service, old_service, marking],
        Phase::Done => [traffic, test, old_service, new_service, marking],
        _ => [new_service, test, marking, traffic, old_service],
    };
    ordered.into_iter().flatten().collect()
}

fn weights(a: &ColourView, a_percent: u32, b: &ColourView, b_percent: u32) -> Vec<Weighted> {
    vec![
        Weighted {
            target_group_arn: a.target_group.clone(),
            weight: a_percent as i32,
        },
        Weighted {
            target_group_arn: b.target_group.clone(),
            weight: b_percent as i32,
        },
    ]
}

/// Add the alert for `state` (and marking it alerted) to `plan`.
fn report(
    plan: Plan<Action>,
    view: &AppView,
    swap: &Swap,
    state: &SwapState,
    requested_by: Option<String>,
) -> Plan<Action> {
    let app = &view.spec.name;
    let new = swap.plan.to;
    let want = target(view, swap, state);
    // Each colour as this state leaves it: the revision and count it sets, the health last seen.
    let colours = [Colour::Blue, Colour::Green]
        .into_iter()
        .map(|c| {
            let colour = view.colour(c);
            let (task_definition, desired) = match (&want.new, want.old_desired) {
                (Some((td, desired)), _) if c == new => (td.clone(), *desired),
                (_, Some(desired)) if c != new => (colour.task_definition(), desired),
                _ => (colour.task_definition(), colour.service.desired),
            };
            ColourFacts {
                colour: c,
                service: colour.service.qualified_name(),
                arn: colour.service.arn.clone(),
                task_definition,
                desired,
                health: colour.targets_text(),
            }
        })
        .collect();
    let transition = Transition {
        app: app.clone(),
        plan: swap.plan.clone(),
        image: swap.image.clone(),
        state: state.clone(),
        route: view.route.arn.clone(),
        // As recorded when the transition was decided: by now AWS may already show its result.
        before: state.before.unwrap_or_else(|| view.split()),
        after: state
            .after
            .unwrap_or_else(|| Split::at_percent(new, want.percent)),
        colours,
        next: next_text(view, swap, state),
        requested_by,
    };
    plan.change(
        Action::Report(Box::new(transition)),
        format!("{app}: ops alerted: {}", state.phase),
    )
    .change(
        Action::Record {
            route: view.route.arn.clone(),
            state: state.alerted(),
        },
        format!("{app}: {} alerted", state.phase),
    )
}

fn next_text(view: &AppView, swap: &Swap, state: &SwapState) -> String {
    let plan = &swap.plan;
    let steps = plan.strategy.steps();
    match state.phase {
        Phase::Deploying => format!(
            "Traffic moves once {} runs {} with every task healthy; the swap is aborted if that takes past {}.",
            plan.to,
            if plan.task_definition.is_empty() { "the new revision" } else { &plan.task_definition },
            utc_text(state.since + view.spec.health_timeout)
        ),
        Phase::Testing => format!(
            "Only the test route reaches {} until {}; then live traffic moves ({}).",
            plan.to,
            utc_text(state.since + view.spec.test_wait),
            plan.strategy
        ),
        Phase::Shifting => {
            let next = steps.get(state.step + 1).copied().unwrap_or(100);
            format!(
                "Next: {next}% on {} at {}, if it stays healthy and no alarm fires.",
                plan.to,
                utc_text(state.since + plan.strategy.wait())
            )
        }
        Phase::Warm => format!(
            "{} stays warm for an instant rollback until {}, then is scaled to 0.",
            plan.from(),
            utc_text(state.since + view.spec.termination_wait)
        ),
        Phase::Done => format!("{} is live; {} is scaled to 0.", plan.to, plan.from()),
        Phase::RollingBack if was_held(swap, state) => format!(
            "Live traffic moves back to {} in one change as soon as it has healthy targets; then {} is restored to {} at {} tasks.",
            plan.from(),
            plan.to,
            plan.was_task_definition,
            plan.was_desired
        ),
        Phase::RollingBack | Phase::RolledBack => format!(
            "All traffic is on {}; {} is back to {} at {} tasks.",
            plan.from(),
            plan.to,
            plan.was_task_definition,
            plan.was_desired
        ),
        Phase::Aborting | Phase::Aborted => format!(
            "Live traffic never moved; {} is back to {} at {} tasks.",
            plan.to, plan.was_task_definition, plan.was_desired
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_sdk_elasticloadbalancingv2::types::{
        Action as ElbAction, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    };
    use ops_core::aws::ecs::{DeploymentState, ServiceState};
    use ops_core::aws::elbv2::{Route, RouteKind, TargetHealth};

    use super::*;
    use crate::contract::{app_spec, recorded_swap};
    use crate::view::AlarmView;

    const ROUTE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/2";
    const NOW: u64 = 1_795_000_000;

    fn group(colour: Colour) -> String {
        format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-{colour}/1")
    }

    fn colour(colour: Colour, td: &str, desired: i32, healthy: usize) -> ColourView {
        let arn = |r: &str| format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{r}");
        ColourView {
            colour,
            service: ServiceState {
                arn: format!("arn:aws:ecs:us-east-1:123456789012:service/prod/shop-{colour}"),
                name: format!("shop-{colour}"),
                cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
                cluster: "prod".into(),
                status: "ACTIVE".into(),
                desired,
                running: desired,
                task_definition: arn(td),
                deployments: vec![DeploymentState {
                    id: "ecs-svc/1".into(),
                    status: "PRIMARY".into(),
                    rollout_state: Some("COMPLETED".into()),
                    rollout_reason: None,
                    task_definition: arn(td),
                    desired,
                    running: desired,
                    failed: 0,
                    created_at: None,
                }],
                target_groups: vec![group(colour)],
                deployment_controller: ops_core::aws::ecs::ECS_CONTROLLER.into(),
                placement: Default::default(),
                strategy: Default::default(),
                service_deployments: Vec::new(),
                tags: BTreeMap::from([("ops:swap-app".to_string(), "shop".to_string())]),
            },
            target_group: group(colour),
            targets: (0..healthy)
                .map(|i| TargetHealth {
                    id: format!("10.0.0.{i}"),
                    port: Some(8080),
                    state: "healthy".into(),
                    reason: None,
                })
                .collect(),
        }
    }

    /// The app's live route forwarding with these raw weights (as a person may have set them).
    fn weighted(mut app: AppView, blue: i32, green: i32) -> AppView {
        let tuple = |c: Colour, w: i32| {
            TargetGroupTuple::builder()
                .target_group_arn(group(c))
                .weight(w)
                .build()
        };
        app.route.actions = vec![ElbAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(tuple(Colour::Blue, blue))
                    .target_groups(tuple(Colour::Green, green))
                    .build(),
            )
            .build()];
        app
    }

    /// `app` with both colours marked `ops:swap-in-flight` by swap `x`, as a swap in flight leaves
    /// them.
    fn in_flight(mut app: AppView) -> AppView {
        for c in [&mut app.blue, &mut app.green] {
            c.service
                .tags
                .insert("ops:swap-in-flight".into(), "shop:x".into());
        }
        app
    }

    fn view(green_percent: i32, swap_tags: &[(&str, &str)]) -> AppView {
        let mut tags: BTreeMap<String, String> = [
            ("ops:swap-app", "shop"),
            ("ops:swap-blue", "prod/shop-blue"),
            ("ops:swap-green", "prod/shop-green"),
            ("ops:swap-alarms", "shop-5xx"),
        ]
        .iter()
        .chain(swap_tags)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        tags.insert("Name".into(), "shop".into());
        let tuple = |c: Colour, w: i32| {
            TargetGroupTuple::builder()
                .target_group_arn(group(c))
                .weight(w)
                .build()
        };
        let forward = ElbAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(tuple(Colour::Blue, 100 - green_percent))
                    .target_groups(tuple(Colour::Green, green_percent))
                    .build(),
            )
            .build();
        AppView {
            spec: app_spec(&tags).unwrap().unwrap(),
            swap: recorded_swap(&tags).map(|s| s.unwrap()),
            route: Route {
                arn: ROUTE.into(),
                kind: RouteKind::Listener,
                actions: vec![forward],
                tags,
            },
            test_route: None,
            blue: colour(Colour::Blue, "shop:1", 2, 2),
            green: colour(Colour::Green, "shop:2", 2, 2),
            alarms: vec![AlarmView {
                name: "shop-5xx".into(),
                state: "OK".into(),
                reason: String::new(),
            }],
            missing_alarms: vec![],
            other_routes: vec![],
        }
    }

    const PLAN: &str =
        "id=x to=green td=shop:2 was=shop:1/0 how=canary:10:300 at=1795000000 by=alice";

    fn state(phase: &str, step: usize, reported: u32) -> String {
        format!("id=x v=3 r={reported} phase={phase} step={step} at={NOW} why=test")
    }

    fn actions(plan: &Plan<Action>) -> Vec<&'static str> {
        plan.changes
            .iter()
            .map(|c| match &c.action {
                Action::Begin(_) => "begin",
                Action::Record { state, .. } if state.reported == state.version => "alerted",
                Action::Record { .. } => "record",
                Action::Weights { .. } => "weights",
                Action::Service { .. } => "service",
                Action::Mark { .. } => "mark",
                Action::Unmark { .. } => "unmark",
                Action::Report(_) => "report",
                Action::RouteChanged(_) => "route-changed",
                Action::NoteHealth { .. } => "note-health",
            })
            .collect()
    }

    #[test]
    fn pre_flight_names_split_traffic_and_an_unhealthy_live_colour() {
        assert_eq!(pre_flight(&view(0, &[])), Ok(Colour::Blue));
        let split = pre_flight(&view(30, &[])).unwrap_err();
        assert!(
            split.contains("traffic is split (blue 70% / green 30%; weights blue=70 green=30)"),
            "{split}"
        );
        let mut dead = view(0, &[]);
        dead.blue.targets.clear();
        assert!(pre_flight(&dead)
            .unwrap_err()
            .contains("has no healthy targets"));
        let mut firing = view(0, &[]);
        firing.alarms[0].state = "ALARM".into();
        assert!(pre_flight(&firing)
            .unwrap_err()
            .contains("alarms are in ALARM: shop-5xx"));
    }

    #[test]
    fn pre_flight_refuses_another_route_sending_traffic_to_a_colour() {
        let mut app = view(0, &[]);
        app.other_routes = vec![crate::view::OtherRoute {
            arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/1/2/3"
                .into(),
            sends_to: vec![Colour::Green],
        }];

        let refused = pre_flight(&app).unwrap_err();

        assert!(
            refused.starts_with(
                "shop: other routes of the load balancer send traffic to its colours: \
                 arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/1/2/3 \
                 sends traffic to green (idle)"
            ),
            "{refused}"
        );
    }

    #[test]
    fn pre_flight_refuses_any_weight_on_the_idle_colour_and_names_the_real_weights() {
        assert_eq!(
            pre_flight(&weighted(view(0, &[]), 999, 0)),
            Ok(Colour::Blue)
        );
        assert_eq!(pre_flight(&weighted(view(0, &[]), 0, 1)), Ok(Colour::Green));
        let dark = weighted(view(0, &[]), 999, 1);
        assert_eq!(dark.live(), None);
        assert_eq!(
            pre_flight(&dark).unwrap_err(),
            "shop: green has weight 1 of 1000 (0.1% of traffic): traffic is split \
             (blue 99.9% / green 0.1%; weights blue=999 green=1) with no swap in flight, and any \
             weight on the idle colour is live traffic; set green's weight to 0 so that all traffic \
             is on blue, then deploy again"
        );
        let small = pre_flight(&weighted(view(0, &[]), 199, 1)).unwrap_err();
        assert!(
            small.starts_with("shop: green has weight 1 of 200 (0.5% of traffic): traffic is split (blue 99.5% / green 0.5%"),
            "{small}"
        );
        // After a swap to green, blue is the idle colour, whatever its weight.
        let done = "id=x v=4 r=4 phase=done step=1 at=1795000000 why=done".to_string();
        let tags = [
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", done.as_str()),
            ("ops:swap-image", "shop:v2"),
        ];
        let back = pre_flight(&weighted(view(100, &tags), 1, 999)).unwrap_err();
        assert!(
            back.starts_with("shop: blue has weight 1 of 1000 (0.1% of traffic)"),
            "{back}"
        );
        let none = pre_flight(&weighted(view(0, &[]), 0, 0)).unwrap_err();
        assert!(none.contains("every target group weight 0"), "{none}");
    }

    #[test]
    fn a_deploy_over_a_dark_launch_weight_is_refused_at_pre_flight() {
        let base = TaskDefinitionState {
            definition: aws_sdk_ecs::types::TaskDefinition::builder()
                .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/shop:3")
                .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                .build(),
            tags: BTreeMap::new(),
        };
        let request = StartRequest {
            deploying: Deploying::Revision(Box::new(base.clone())),
            strategy: None,
            requested_by: "alice".into(),
        };
        for (blue, green, share) in [
            (999, 1, "weight 1 of 1000 (0.1% of traffic)"),
            (199, 1, "weight 1 of 200 (0.5% of traffic)"),
        ] {
            let refused = decide_start(
                &weighted(view(0, &[]), blue, green),
                &request,
                &base,
                None,
                NOW,
            )
            .unwrap_err();
            assert!(refused.pre_flight, "{blue}/{green}: ops are alerted");
            assert!(
                refused
                    .reason
                    .starts_with(&format!("shop: green has {share}")),
                "{}",
                refused.reason
            );
        }
        assert!(matches!(
            decide_start(&weighted(view(0, &[]), 999, 0), &request, &base, None, NOW),
            Ok(Start::Begin(_))
        ));
    }

    #[test]
    fn the_swap_converges_on_exact_weights_not_rounded_ones() {
        let deploying = state("deploying", 0, 3);
        let tags = [
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", deploying.as_str()),
            ("ops:swap-image", "shop:v2"),
        ];
        // Deploying means no live traffic on green: 999/1 is not that, so it is put right.
        let mut dark = in_flight(weighted(view(0, &tags), 999, 1));
        dark.green.service.task_definition =
            "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:2".into();
        dark.green.targets.clear();
        let plan = decide_advance(&dark, NOW + 10, None).unwrap();
        let Some(Action::Weights { weights, .. }) = plan
            .changes
            .iter()
            .map(|c| &c.action)
            .find(|a| matches!(a, Action::Weights { .. }))
        else {
            panic!("{:?}", plan.changes)
        };
        assert_eq!(
            weights.iter().map(|w| w.weight).collect::<Vec<_>>(),
            [100, 0]
        );
        assert!(
            plan.changes.iter().any(|c| c.reason
                == "shop: live traffic blue 100% / green 0% (was blue 99.9% / green 0.1%; weights blue=999 green=1)"),
            "{:?}",
            plan.changes
        );

        // The canary's 10% step at another scale is the same step: nothing to change.
        let shifting = state("shifting", 0, 3);
        let tags = [
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", shifting.as_str()),
            ("ops:swap-image", "shop:v2"),
        ];
        let scaled = in_flight(weighted(view(10, &tags), 900, 100));
        let holding = decide_advance(&scaled, NOW + 60, None).unwrap();
        assert!(holding.changes.is_empty(), "{:?}", holding.changes);
        assert!(
            holding.notes[0].contains("10% on green until"),
            "{:?}",
            holding.notes
        );
        // 901/99 rounds to 10% but is not the step: the weights are written again (and, the step
        // being alerted, so applied once, someone else changed them: that is alerted too).
        let near = in_flight(weighted(view(10, &tags), 901, 99));
        let fixed = decide_advance(&near, NOW + 60, None).unwrap();
        assert_eq!(actions(&fixed), ["route-changed", "weights"]);
        let Action::Weights { weights, .. } = &fixed.changes[1].action else {
            panic!()
        };
        assert_eq!(
            weights.iter().map(|w| w.weight).collect::<Vec<_>>(),
            [90, 10]
        );
    }

    #[test]
    fn an_alarm_goes_back_at_once_even_when_the_last_step_was_not_applied() {
        // The state says 10% on green, but the crash left the listener at 0%: going back must not
        // first move traffic forward.
        let state = state("shifting", 0, 3);
        let mut app = in_flight(view(
            0,
            &[
                ("ops:swap-plan", PLAN),
                ("ops:swap-state", &state),
                ("ops:swap-image", "shop:v2"),
            ],
        ));
        app.alarms[0].state = "ALARM".into();
        let plan = decide_advance(&app, NOW + 10, None).unwrap();
        assert_eq!(
            actions(&plan),
            ["record", "service", "unmark", "report", "alerted"]
        );
        let Action::Record { state, .. } = &plan.changes[0].action else {
            panic!()
        };
        assert_eq!(state.phase, Phase::RollingBack);
        assert!(state.why.starts_with("alarm in ALARM: shop-5xx"));
    }

    #[test]
    fn a_step_moves_forward_only_after_its_bake_time_and_its_alert() {
        let waiting = state("shifting", 0, 2);
        let tags = [
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", waiting.as_str()),
            ("ops:swap-image", "shop:v2"),
        ];
        let app = in_flight(view(10, &tags));
        let unreported = decide_advance(&app, NOW + 60, None).unwrap();
        assert_eq!(
            actions(&unreported),
            ["report", "alerted"],
            "the step is alerted first, then it holds"
        );
        assert!(
            unreported.notes[0].contains("10% on green until"),
            "{:?}",
            unreported.notes
        );
        let reported = state("shifting", 0, 3);
        let tags = [
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", reported.as_str()),
            ("ops:swap-image", "shop:v2"),
        ];
        let app = in_flight(view(10, &tags));
        let after_bake = decide_advance(&app, NOW + 300, None).unwrap();
        assert_eq!(
            actions(&after_bake),
            ["record", "weights", "report", "alerted"]
        );
        let Action::Weights { weights, .. } = &after_bake.changes[1].action else {
            panic!()
        };
        assert_eq!(
            weights.iter().map(|w| w.weight).collect::<Vec<_>>(),
            [0, 100]
        );
    }

    #[test]
    fn a_new_swap_waits_until_the_last_one_is_alerted() {
        let ended = "id=x v=4 r=3 phase=done step=1 at=1795000000 why=done".to_string();
        let tags = [
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", ended.as_str()),
            ("ops:swap-image", "shop:v2"),
        ];
        let app = view(100, &tags);
        let base = TaskDefinitionState {
            definition: aws_sdk_ecs::types::TaskDefinition::builder()
                .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/shop:2")
                .build(),
            tags: BTreeMap::new(),
        };
        let request = StartRequest {
            deploying: Deploying::Revision(Box::new(base.clone())),
            strategy: None,
            requested_by: "alice".into(),
        };
        let refused = decide_start(&app, &request, &base, None, NOW + 60).unwrap_err();
        assert!(!refused.pre_flight);
        assert!(
            refused
                .reason
                .contains("ended done but its alert has not gone out yet"),
            "{}",
            refused.reason
        );
    }

    /// Green at 90% in the warm phase: when the warm state was alerted, AWS had matched it, so the
    /// 10% on blue was put there by someone else: put back and alerted. When it was not alerted,
    /// a run died before AWS matched it: the change is made again and the state alerted, with no
    /// word of an outside change.
    #[test]
    fn weights_off_an_alerted_state_are_an_outside_change_and_off_an_unalerted_one_a_crash() {
        // The warm swap of `state`, its live route at 90% on green.
        let warm_at_90 = |state: &str| {
            let tags = [
                ("ops:swap-plan", PLAN),
                ("ops:swap-state", state),
                ("ops:swap-image", "shop:v2"),
                ("ops:swap-termination-wait", "12h"),
            ];
            in_flight(view(90, &tags))
        };
        let alerted_state = format!("id=x v=3 r=3 phase=warm step=1 at={NOW} why=test");
        let alerted = decide_advance(&warm_at_90(&alerted_state), NOW + 60, None).unwrap();
        assert_eq!(actions(&alerted), ["route-changed", "weights"]);
        let Action::RouteChanged(change) = &alerted.changes[0].action else {
            unreachable!()
        };
        assert_eq!(change.phase, Phase::Warm);
        assert_eq!(change.routes.len(), 1);
        assert!(
            change.routes[0].1.starts_with("blue 10% / green 90%"),
            "{change:?}"
        );
        assert_eq!(change.routes[0].2, "blue 0% / green 100%");

        let crashed_state = format!("id=x v=3 r=2 phase=warm step=1 at={NOW} why=test");
        let crashed = decide_advance(&warm_at_90(&crashed_state), NOW + 60, None).unwrap();
        assert_eq!(actions(&crashed), ["weights", "report", "alerted"]);

        // A person's command meanwhile is told what changed, not "still applying".
        let app = warm_at_90(&alerted_state);
        let promote = Steer::Promote { by: "bob".into() };
        let refused = decide_advance(&app, NOW + 60, Some(&promote)).unwrap_err();
        assert!(
            refused.starts_with(
                "traffic of shop was changed outside the swapper (blue 10% / green 90%"
            ),
            "{refused}"
        );
    }

    /// All traffic on green in a 12-hour termination wait, one green target unhealthy: the
    /// first run to see it records when, later runs hold until a health timeout from then (not
    /// from the end of the wait), and a green that recovers clears the mark.
    #[test]
    fn a_half_unhealthy_colour_under_live_traffic_goes_back_a_health_timeout_after_it_turned() {
        let warm = format!("id=x v=3 r=3 phase=warm step=1 at={NOW} why=test");
        let mut tags = vec![
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", warm.as_str()),
            ("ops:swap-image", "shop:v2"),
            ("ops:swap-termination-wait", "12h"),
            ("ops:swap-health-timeout", "10m"),
        ];
        let marked = |tags: &[(&str, &str)]| in_flight(view(100, tags));
        let half = |tags: &[(&str, &str)]| {
            let mut app = marked(tags);
            app.green.targets[1].state = "unhealthy".into();
            app
        };
        let turned = NOW + 3600;
        let first = decide_advance(&half(&tags), turned, None).unwrap();
        assert_eq!(actions(&first), ["note-health"]);
        let Action::NoteHealth { value, .. } = &first.changes[0].action else {
            unreachable!()
        };
        assert_eq!(value, &format!("id=x v=3 at={turned}"));

        let mark = value.clone();
        tags.push(("ops:swap-unhealthy", mark.as_str()));
        let held = decide_advance(&half(&tags), turned + 599, None).unwrap();
        assert!(held.changes.is_empty(), "{held:?}");
        let back = decide_advance(&half(&tags), turned + 600, None).unwrap();
        let Some(Action::Record { state, .. }) = back.changes.first().map(|c| &c.action) else {
            panic!("{back:?}")
        };
        assert_eq!(state.phase, Phase::RollingBack);
        assert!(
            state.why.starts_with(&format!(
                "green has not been fully healthy since {} and did not recover within 10 minutes (green 1/2 healthy",
                utc_text(turned)
            )),
            "{}",
            state.why
        );

        let healthy = decide_advance(&marked(&tags), turned + 300, None).unwrap();
        assert_eq!(actions(&healthy), ["note-health"]);
        let Action::NoteHealth { value, .. } = &healthy.changes[0].action else {
            unreachable!()
        };
        assert_eq!(value, "id=x v=3 healthy");
        // A mark left by an earlier state of the swap counts for nothing.
        let stale = "id=x v=2 at=1".to_string();
        let last = tags.len() - 1;
        tags[last] = ("ops:swap-unhealthy", stale.as_str());
        let fresh = decide_advance(&half(&tags), turned, None).unwrap();
        assert_eq!(actions(&fresh), ["note-health"]);
    }

    #[test]
    fn promote_while_the_new_colour_is_unhealthy_is_refused() {
        let deploying = state("deploying", 0, 3);
        let tags = [
            ("ops:swap-plan", PLAN),
            ("ops:swap-state", deploying.as_str()),
            ("ops:swap-image", "shop:v2"),
        ];
        let mut app = in_flight(view(0, &tags));
        app.green.targets.clear();
        let refused =
            decide_advance(&app, NOW + 60, Some(&Steer::Promote { by: "bob".into() })).unwrap_err();
        assert_eq!(
            refused,
            "green is not healthy yet (green 0/2 healthy); promote once it is"
        );
    }
}
