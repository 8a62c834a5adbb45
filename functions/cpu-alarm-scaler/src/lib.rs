//! cpu-alarm-scaler: CloudWatch CPU alarms scale Auto Scaling groups and ECS services by step
//! adjustments, inside min/max, with separate scale-out and scale-in cooldowns kept in AWS, manual
//! overrides from chat that revert by themselves, and no fighting native scaling.
//!
//! It scales on metric alarms only: a composite alarm has no metric, threshold or datapoint to
//! choose a step from. One that opted in (`ops:scale-target`) is refused with a non-retryable error
//! naming the alarm and its rule; one that did not is ignored ([`contract::composite`]).

pub mod act;
pub mod at_bound;
pub mod commands;
pub mod config;
pub mod contract;
pub mod decide;
pub mod doctor;
pub mod episode;
pub mod handler;
pub mod observe;
pub mod report;
