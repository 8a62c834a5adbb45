//! blue-green-swapper: moves an app from its live colour to its idle one behind an ALB listener or
//! rule, all at once, as a canary or linearly, each step gated on ECS rollout state, target health
//! and CloudWatch alarms, with the old colour kept warm for an instant rollback. The swap is a
//! state machine kept in the listener's tags and advanced by a schedule, one bounded step per
//! invocation, so a killed or repeated invocation converges.

pub mod act;
pub mod commands;
pub mod config;
pub mod contract;
pub mod decide;
pub mod doctor;
pub mod handler;
pub mod observe;
pub mod report;
pub mod traffic;
pub mod view;
