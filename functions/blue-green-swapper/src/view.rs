//! What the decisions see: an app as observed in AWS at one moment.

use ops_core::aws::ecs::{short_task_definition, ServiceState};
use ops_core::aws::elbv2::{Route, TargetHealth};
use serde::Serialize;

use crate::contract::{AppSpec, Colour, Phase, Swap};
use crate::traffic::Split;

/// One colour: its service, its target group and the health of the targets in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColourView {
    /// Blue or green.
    pub colour: Colour,
    /// The ECS service.
    pub service: ServiceState,
    /// The one target group its tasks are registered in.
    pub target_group: String,
    /// The health of every target registered there.
    pub targets: Vec<TargetHealth>,
}

impl ColourView {
    /// Targets that are healthy.
    pub fn healthy(&self) -> usize {
        self.targets.iter().filter(|t| t.state == "healthy").count()
    }

    /// Targets that count against health: unhealthy, or still in their initial checks.
    pub fn not_healthy(&self) -> Vec<&TargetHealth> {
        self.targets
            .iter()
            .filter(|t| t.state == "unhealthy" || t.state == "initial")
            .collect()
    }

    /// `2/2 healthy` (or `1/2 healthy, 1 unhealthy (Target.FailedHealthChecks)`): healthy
    /// targets against the desired count.
    pub fn health_text(&self) -> String {
        let targets = self.targets_text();
        let rest = targets.split_once(", ").map(|(_, r)| format!(", {r}"));
        format!(
            "{}/{} healthy{}",
            self.healthy(),
            self.service.desired,
            rest.unwrap_or_default()
        )
    }

    /// The targets as last seen: `2 healthy targets` (or `0 healthy targets, 2 unhealthy (...)`).
    pub fn targets_text(&self) -> String {
        let mut text = format!("{} healthy targets", self.healthy());
        let bad = self.not_healthy();
        if let Some(first) = bad.first() {
            text.push_str(&format!(
                ", {} {}{}",
                bad.len(),
                first.state,
                first
                    .reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        text
    }

    /// The service's revision, `family:revision`.
    pub fn task_definition(&self) -> String {
        short_task_definition(&self.service.task_definition)
    }

    /// The ECS rollout of the service's newest deployment, e.g. `IN_PROGRESS`.
    pub fn rollout(&self) -> &str {
        self.service
            .primary()
            .and_then(|p| p.rollout_state.as_deref())
            .unwrap_or("UNKNOWN")
    }

    /// Whether the service runs `task_definition` (`family:revision`) completely and every one of
    /// its tasks is a healthy target: the gate before traffic moves to it.
    pub fn ready(&self, task_definition: &str) -> bool {
        let primary = self.service.primary();
        let desired = self.service.desired;
        desired >= 1
            && self.task_definition() == task_definition
            && primary.is_some_and(|p| {
                p.rollout_state.as_deref() == Some("COMPLETED") && p.running >= desired
            })
            && self.healthy() >= desired as usize
            && self.not_healthy().is_empty()
    }

    /// Why the service's newest rollout failed, if it did (including a circuit-breaker rollback
    /// away from `task_definition`).
    pub fn rollout_failure(&self, task_definition: &str) -> Option<String> {
        self.service
            .deployments
            .iter()
            .find(|d| {
                short_task_definition(&d.task_definition) == task_definition
                    && d.rollout_state.as_deref() == Some("FAILED")
            })
            .map(|d| {
                d.rollout_reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".into())
            })
    }
}

/// A CloudWatch alarm named by the app, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmView {
    /// Its name.
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// CloudWatch's reason.
    pub reason: String,
}

/// An app as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct AppView {
    /// The contract read from the live route.
    pub spec: AppSpec,
    /// The live route (listener or rule).
    pub route: Route,
    /// The test route, if the app has one.
    pub test_route: Option<Route>,
    /// The blue colour.
    pub blue: ColourView,
    /// The green colour.
    pub green: ColourView,
    /// The swap recorded on the live route (in flight or the last one), if any.
    pub swap: Option<Swap>,
    /// The app's alarms that exist.
    pub alarms: Vec<AlarmView>,
    /// Alarms the app names that CloudWatch does not know.
    pub missing_alarms: Vec<String>,
    /// Other routes of the load balancer that send traffic to either colour (read before a swap
    /// starts and for `status`; empty otherwise).
    pub other_routes: Vec<OtherRoute>,
}

/// A listener or rule other than the app's live and test routes that sends traffic to a colour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherRoute {
    /// The listener or rule ARN.
    pub arn: String,
    /// The colours it sends traffic to (a weight above 0).
    pub sends_to: Vec<Colour>,
}

impl AppView {
    /// One colour's view.
    pub fn colour(&self, colour: Colour) -> &ColourView {
        match colour {
            Colour::Blue => &self.blue,
            Colour::Green => &self.green,
        }
    }

    /// How the live route splits traffic between the colours, by weight.
    pub fn split(&self) -> Split {
        Split::of_route(
            &self.route,
            &self.blue.target_group,
            &self.green.target_group,
        )
    }

    /// Target groups the live route sends traffic to that belong to neither colour.
    pub fn foreign_targets(&self) -> Vec<String> {
        self.route
            .forwards()
            .unwrap_or_default()
            .into_iter()
            .filter(|w| {
                w.weight > 0
                    && w.target_group_arn != self.blue.target_group
                    && w.target_group_arn != self.green.target_group
            })
            .map(|w| w.target_group_arn)
            .collect()
    }

    /// The colour all live traffic goes to, if all of it goes to one: the other colour (and any
    /// other target group) has weight 0. A weight of 1 against 999 is still traffic.
    pub fn live(&self) -> Option<Colour> {
        self.split().only()
    }

    /// The colour the last finished swap left live, if a swap was ever recorded and is over.
    pub fn recorded_live(&self) -> Option<Colour> {
        let swap = self.swap.as_ref()?;
        match swap.state.phase {
            Phase::Done => Some(swap.plan.to),
            Phase::RolledBack | Phase::Aborted => Some(swap.plan.from()),
            _ => None,
        }
    }

    /// The swap in flight, if one is.
    pub fn in_flight(&self) -> Option<&Swap> {
        self.swap.as_ref().filter(|s| !s.state.phase.is_terminal())
    }

    /// Alarms in ALARM, as `name (reason)`.
    pub fn firing_alarms(&self) -> Vec<String> {
        self.alarms
            .iter()
            .filter(|a| a.state == "ALARM")
            .map(|a| format!("{} ({})", a.name, a.reason))
            .collect()
    }
}
