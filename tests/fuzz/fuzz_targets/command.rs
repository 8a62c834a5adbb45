//! Any bytes as a chat payload: a checked command or a specific error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ops_core::command::{ArgSpec, CommandSet, CommandSpec};

const SET: CommandSet = CommandSet {
    commands: &[CommandSpec {
        name: "deploy",
        usage: "{service, tag | digest}",
        summary: "s",
        args: &[
            ArgSpec { name: "service", required: true, help: "h" },
            ArgSpec { name: "tag", required: false, help: "h" },
            ArgSpec { name: "digest", required: false, help: "h" },
        ],
    }],
};

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Err(error) = SET.parse("ops-fn", &payload) {
            assert!(!error.to_string().is_empty());
        }
    }
});
