//! legacy-health-monitor: every minute, HTTP(S) and TCP checks of servers that are not containers,
//! with a quick retry, hysteresis kept in DynamoDB (down after N failed runs, up after M good
//! ones), metrics in Embedded Metric Format, and alerts on change: the reason, address and body
//! start when a target goes down, the downtime when it recovers, one alert when many change.

pub mod act;
pub mod cert;
pub mod config;
pub mod decide;
pub mod doctor;
pub mod handler;
pub mod metrics;
pub mod observe;
pub mod probe;
pub mod report;
pub mod targets;
