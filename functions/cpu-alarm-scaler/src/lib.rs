//! cpu-alarm-scaler: CloudWatch CPU alarms scale Auto Scaling groups and ECS services by step
//! adjustments, inside min/max, with separate scale-out and scale-in cooldowns kept in AWS, manual
//! overrides from chat that revert by themselves, and no fighting native scaling.

pub mod act;
pub mod commands;
pub mod config;
pub mod contract;
pub mod decide;
pub mod handler;
pub mod observe;
pub mod report;
