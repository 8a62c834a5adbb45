//! `ops-core`: everything two of the ops Lambdas would otherwise both write.
//!
//! Every function is the same four steps (see [`plan`]): observe AWS into a snapshot, decide a
//! [`plan::Plan`] with a pure function, act on it through small ports (skipped in dry-run), and
//! report one [`alert::Alert`] per meaningful outcome. AWS adapters live in [`aws`], each service
//! behind its own cargo feature so a function links only the SDK crates it calls.

pub mod alert;
pub mod aws;
pub mod command;
pub mod config;
pub mod doctor;
pub mod echo;
pub mod error;
pub mod events;
pub mod image;
pub mod metrics;
pub mod plan;
#[cfg(feature = "probe")]
pub mod probe;
pub mod registry;
pub mod runtime;
pub mod tags;
pub mod telemetry;
pub mod time;

pub use error::{Error, Result};
