//! bastion-eip-associator: a bastion gets its fixed Elastic IP from a tagged pool before it enters
//! service, verified, never taken from a healthy bastion; a schedule repairs drift. From chat it
//! answers `doctor` (and `help`).

pub mod associate;
pub mod commands;
pub mod config;
pub mod decide;
pub mod doctor;
pub mod handler;
pub mod report;
