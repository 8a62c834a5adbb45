//! Harness for the end-to-end tests and the demo: the local AWS emulator, its controls, and the
//! alert inbox that shows what ops would receive.

pub mod blue_green;
pub mod dashboard;
pub mod doctor;
pub mod emulator;
pub mod events;
pub mod fixtures;
pub mod health;
pub mod hooked;
pub mod http;
pub mod inbox;
pub mod lambda;
pub mod model;
pub mod redeliver;
pub mod servers;

pub use emulator::Emulator;
pub use inbox::{AlertInbox, ReceivedAlert};
pub use lambda::{InvokeError, LocalLambda};
