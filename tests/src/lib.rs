//! Harness for the end-to-end tests and the demo: the local AWS emulator, its controls, and the
//! alert inbox that shows what ops would receive.

pub mod emulator;
pub mod fixtures;
pub mod http;
pub mod inbox;

pub use emulator::Emulator;
pub use inbox::{AlertInbox, ReceivedAlert};
