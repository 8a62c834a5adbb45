//! Act: apply one planned action to AWS, as long as the swap is still the one the run decided on.
//!
//! ELB tags have no conditional write, so two invocations at once (a tick and a chat command, two
//! ticks) could each decide on the same recorded state and overwrite each other's. Every run
//! therefore re-reads the swap's tags (plan, state and the token of the run that wrote them,
//! `ops:swap-run`) before each change it makes, and stops as soon as another run wrote them: of
//! two runs that decided at once, the one whose state is recorded goes on and the other stops
//! after at most one more change. After moving traffic it reads them again, so that when another
//! run recorded a state meanwhile, traffic is put where that state says (the last word on the
//! weights is always the recorded state's) before it stops. A run that stops this way says so and
//! is retried; the next run goes on from what is recorded.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ops_core::alert::AlertSink;
use ops_core::aws::ecs::TaskDefinitionState;
use ops_core::aws::elbv2::{Route, Weighted};
use ops_core::{Error, Result};
use tracing::{info, warn};

use crate::contract::{self, Colour, SwapPlan, SwapState};
use crate::decide::{live_percent, test_serves, Action, BeginSpec};
use crate::observe::Clients;
use crate::report::{route_change_alert, transition_alert};
use crate::traffic::Split;

/// The swap's tags on the live route that say who decided last: plan, state and run token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    plan: Option<String>,
    state: Option<String>,
    run: Option<String>,
}

impl Written {
    /// As read from a live route's tags.
    pub fn of(tags: &BTreeMap<String, String>) -> Written {
        Written {
            plan: tags.get(contract::PLAN).cloned(),
            state: tags.get(contract::STATE).cloned(),
            run: tags.get(contract::RUN).cloned(),
        }
    }

    /// Whether the same swap plan is recorded in both.
    pub fn same_plan(&self, other: &Written) -> bool {
        self.plan == other.plan
    }

    /// The plan and the head of the state (its reason is not needed to know where traffic goes).
    fn swap(&self) -> Option<(SwapPlan, SwapState)> {
        let plan = SwapPlan::decode(self.plan.as_deref()?)?;
        let state = self.state.as_deref()?;
        let head = state.split(" wn=").next().unwrap_or(state);
        let state = SwapState::decode(head)?;
        (state.id == plan.id).then_some((plan, state))
    }
}

/// What acting needs beyond the clients: the routes as observed (a weight change rewrites their
/// actions), the revision a new one is cloned from, and what the run expects the swap's tags to be.
pub struct Context<'a, A> {
    /// AWS adapters.
    pub clients: &'a Clients,
    /// Where alerts go.
    pub alerts: &'a A,
    /// The function's name, for alerts.
    pub function: &'a str,
    /// The app's name.
    pub app: String,
    /// The live route, whose tags hold the swap.
    pub live: String,
    /// Observed routes by ARN.
    pub routes: BTreeMap<String, Route>,
    /// Each colour's target group.
    pub groups: BTreeMap<Colour, String>,
    /// The live colour's revision, when a swap begins with a new image.
    pub base: Option<TaskDefinitionState>,
    /// This run's token, written with every plan and state it records.
    run: String,
    /// The swap's tags as observed, then as this run wrote them.
    expected: Mutex<Written>,
    /// Whether the tags were read back and found as expected since this run last changed anything.
    verified: Mutex<bool>,
    /// Why this run stopped because another run changed the swap, if it did.
    conflict: Mutex<Option<String>>,
}

impl<'a, A> Context<'a, A> {
    /// A context for one run that observed the live route's tags as `observed`.
    pub fn new(
        clients: &'a Clients,
        alerts: &'a A,
        function: &'a str,
        app: &str,
        live: &str,
        observed: &BTreeMap<String, String>,
    ) -> Self {
        Context {
            clients,
            alerts,
            function,
            app: app.to_string(),
            live: live.to_string(),
            routes: BTreeMap::new(),
            groups: BTreeMap::new(),
            base: None,
            run: run_token(),
            expected: Mutex::new(Written::of(observed)),
            verified: Mutex::new(false),
            conflict: Mutex::new(None),
        }
    }

    /// The swap's tags as this run last wrote them (or observed them, if it wrote none).
    pub fn written(&self) -> Written {
        lock(&self.expected).clone()
    }

    /// Why this run stopped because another run changed the swap at the same time, if it did.
    pub fn conflict(&self) -> Option<String> {
        lock(&self.conflict).clone()
    }

    fn wrote(&self, plan: Option<String>, state: String) {
        let mut expected = lock(&self.expected);
        if plan.is_some() {
            expected.plan = plan;
        }
        expected.state = Some(state);
        expected.run = Some(self.run.clone());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A token unique to one run (per process: a counter; across processes: a random hash key).
fn run_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(since) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(since.as_nanos());
    }
    format!("{:016x}", hasher.finish())
}

/// Apply `action`, once the swap's tags are read back as this run expects them.
pub async fn apply<A: AlertSink>(context: &Context<'_, A>, action: &Action) -> Result<()> {
    let clients = context.clients;
    ensure_unchanged(context).await?;
    *lock(&context.verified) = false;
    match action {
        Action::Begin(spec) => begin(context, spec).await,
        Action::Record { route, state } => {
            let mut tags = state.tags();
            tags.insert(contract::RUN.to_string(), context.run.clone());
            clients.lb.tag(route, &tags).await?;
            context.wrote(None, state.encode());
            Ok(())
        }
        Action::NoteHealth { route, value } => {
            let tags = BTreeMap::from([
                (contract::UNHEALTHY.to_string(), value.clone()),
                (contract::RUN.to_string(), context.run.clone()),
            ]);
            clients.lb.tag(route, &tags).await
        }
        Action::Weights { route, weights } => {
            let observed = context.routes.get(route).ok_or_else(|| Error::NotFound {
                kind: "observed route",
                name: route.clone(),
            })?;
            clients.lb.set_weights(observed, weights).await?;
            info!(route = %route, weights = ?weights, "traffic moved");
            after_moving(context, observed).await
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
        Action::RouteChanged(change) => {
            context
                .alerts
                .publish(&route_change_alert(context.function, change))
                .await
        }
    }
}

/// Read the swap's tags back (unless that was just done) and fail with a conflict when another
/// run wrote them since this one observed or wrote them.
async fn ensure_unchanged<A>(context: &Context<'_, A>) -> Result<()> {
    if *lock(&context.verified) {
        return Ok(());
    }
    let now = read(context).await?;
    if now == context.written() {
        *lock(&context.verified) = true;
        return Ok(());
    }
    Err(stop(context, &now))
}

async fn read<A>(context: &Context<'_, A>) -> Result<Written> {
    let tags = context
        .clients
        .lb
        .tags(std::slice::from_ref(&context.live))
        .await?
        .remove(&context.live)
        .unwrap_or_default();
    Ok(Written::of(&tags))
}

/// Record that another run changed the swap, and the error that stops this one.
fn stop<A>(context: &Context<'_, A>, now: &Written) -> Error {
    let state = now
        .state
        .as_deref()
        .map(|s| s.split(" wn=").next().unwrap_or(s))
        .and_then(SwapState::decode)
        .map(|s| format!("{} (v{})", s.phase, s.version))
        .unwrap_or_else(|| "unreadable".into());
    let reason = format!(
        "another invocation changed the swap of {} at the same time (it is now {state}); this run \
         stopped there, and the next run goes on from what is recorded",
        context.app
    );
    warn!(app = %context.app, "{reason}");
    *lock(&context.conflict) = Some(reason.clone());
    Error::Refused(reason)
}

/// After moving traffic on `route`: if another run recorded a state meanwhile, put the traffic
/// where that state says (its own change may have come before this one) and stop.
async fn after_moving<A>(context: &Context<'_, A>, route: &Route) -> Result<()> {
    let now = read(context).await?;
    if now == context.written() {
        *lock(&context.verified) = true;
        return Ok(());
    }
    if let Some((plan, state)) = now.swap() {
        let group = |colour: Colour| context.groups.get(&colour).cloned();
        let weights = if route.arn == context.live {
            // The weights the state was entered with (a held rollback keeps them), else its step.
            let split = state
                .after
                .unwrap_or_else(|| Split::at_percent(plan.to, live_percent(&plan, &state)));
            group(Colour::Blue)
                .zip(group(Colour::Green))
                .map(|(blue, green)| {
                    vec![
                        Weighted {
                            target_group_arn: blue,
                            weight: i32::try_from(split.blue).unwrap_or(0),
                        },
                        Weighted {
                            target_group_arn: green,
                            weight: i32::try_from(split.green).unwrap_or(0),
                        },
                    ]
                })
        } else {
            let serves = test_serves(&plan, &state);
            group(serves.other())
                .zip(group(serves))
                .map(|(other, serves)| {
                    vec![
                        Weighted {
                            target_group_arn: other,
                            weight: 0,
                        },
                        Weighted {
                            target_group_arn: serves,
                            weight: 100,
                        },
                    ]
                })
        };
        if let Some(weights) = weights {
            context.clients.lb.set_weights(route, &weights).await?;
            info!(route = %route.arn, weights = ?weights, "traffic put where the recorded state says");
        }
    }
    Err(stop(context, &now))
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
        // Registering took a call: the swap must still be as observed before it is recorded.
        ensure_unchanged(context).await?;
    }
    let mut tags = BTreeMap::from([
        (contract::PLAN.to_string(), plan.encode()),
        (contract::IMAGE.to_string(), spec.image.clone()),
        (contract::RUN.to_string(), context.run.clone()),
    ]);
    tags.extend(spec.state.tags());
    clients.lb.tag(&spec.route, &tags).await?;
    context.wrote(Some(plan.encode()), spec.state.encode());
    info!(swap = %plan.id, to = %plan.to, revision = %plan.task_definition, "swap recorded");
    Ok(())
}
