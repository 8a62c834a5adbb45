//! blue-green-swapper: moves an app from its live colour to its idle one behind an ALB listener or
//! rule, all at once, as a canary or linearly, each step gated on ECS rollout state, target health
//! and CloudWatch alarms, with the old colour kept warm for an instant rollback. The swap is a
//! state machine kept in the listener's tags and advanced by a schedule, one bounded step per
//! invocation, so a killed or repeated invocation converges.
//!
//! # Invariants
//!
//! Checked after every round of random sequences of chat commands, ticks (duplicated, late with
//! their own old time, lost, two at once, at once with a command) and changes in the world (time,
//! target health, the gate alarm, ECS rollouts), with the emulator failing one AWS call of a
//! delivery, by `tests/tests/model_blue_green_swapper.rs` (S1..S8 there; the liveness part after
//! the schedule has run on its own):
//! - Traffic moves only along the swap's plan: the new colour's exact share of the live route is
//!   0% or one of the strategy's steps (the weights sum to 100 on the two colours), forward one
//!   step at a time and out of a timed state (test traffic, a step, the warm old colour) only
//!   when its wait has passed since the state was entered; a promote skips the waits. A late
//!   tick takes its step when it runs, never back in time, so the next step still waits its
//!   whole bake.
//! - Forward only onto a ready new colour (the plan's revision, rollout COMPLETED, every target
//!   healthy) and never while a gate alarm is in ALARM.
//! - Backwards only by going back (abort, rollback, an alarm, a failed or unhealthy new colour),
//!   alerted; a swap that went back never goes forward again, and no other run undoes it: every
//!   run re-reads the swap's tags before each change it makes and stops when another run wrote
//!   them (see [`act`]).
//! - One swap at a time per app: the live route records one; a deploy answered as started is
//!   the swap recorded (of two deploys at once, the one recorded goes on and the other is told).
//! - Every transition that took effect is alerted, in order, before the next one (going back
//!   first alerts a state not alerted yet when it reached the routes): at least once, and twice
//!   only when a run died between SNS Publish and recording it (SNS standard topics have no
//!   conditional publish) or two runs at once had both passed their last check before
//!   publishing (ruled out in production by `ReservedConcurrentExecutions: 1`).
//! - `status` shows the listener's real weights.
//! - A swap in flight owns its routes: weights changed outside the swapper after a state took
//!   effect (it is alerted only once AWS matched it) are put back by the next run, alerted first
//!   once (`swap.route-changed`, with what was found and the command that moves traffic back
//!   through the swapper); a run finishing a crashed run's changes is not taken for one
//!   (`tests/tests/blue_green_swapper.rs`).
//! - The schedule alone ends every swap (done, rolled back or aborted), alerted, with traffic,
//!   services and marks as its end says.

//!
//! # ECS's own blue/green, canary and linear deployments
//!
//! Deployed a second time with `SWAPPER_SERVES=lifecycle-hooks` (no reserved concurrency: ECS rolls
//! back a deployment whose hook it cannot invoke), the function is a service's lifecycle hook
//! ([`hook`]) and alerts ECS's paused deployments; the swapper itself takes the person's `promote`,
//! `abort` and `status` of `cluster/service` ([`gate`]). Checked by
//! `tests/tests/blue_green_swapper_hook.rs` and `blue_green_swapper_gate.rs`:
//! - A hook call is answered from what ECS and the gates show: checked against ECS first (a call
//!   ECS did not make is refused), never held while ECS rolls back, `IN_PROGRESS` to wait.
//! - A person's release counts for one deployment and one step of it; a command pinned to a
//!   deployment changes nothing once another replaced it; promote is refused while a gate fails;
//!   abort needs no gate.
//! - Each hook alert is sent once per news (a call, a hold, a pause), however often it arrives,
//!   except two deliveries at the very same moment (a tag has no conditional write).

pub mod act;
pub mod commands;
pub mod config;
pub mod contract;
pub mod decide;
pub mod doctor;
pub mod ecs_routes;
pub mod gate;
pub mod handler;
pub mod hook;
pub mod observe;
pub mod report;
pub mod test_url;
pub mod traffic;
pub mod view;
