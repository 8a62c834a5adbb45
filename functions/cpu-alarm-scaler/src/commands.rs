//! The chat commands cpu-alarm-scaler answers.

use ops_core::command::{ArgSpec, CommandSet, CommandSpec};
use serde::Deserialize;

/// scale, status (and help).
pub const COMMANDS: CommandSet = CommandSet {
    function: "cpu-alarm-scaler",
    commands: &[
        CommandSpec {
            name: "scale",
            usage: "{target, count, for}",
            summary:
                "hold a target at a capacity for a while (e.g. 30m, 2h), then go back by itself",
            args: &[
                ArgSpec {
                    name: "target",
                    required: true,
                    help: "asg:<group> or ecs:<cluster>/<service>",
                },
                ArgSpec {
                    name: "count",
                    required: true,
                    help: "the capacity to hold",
                },
                ArgSpec {
                    name: "for",
                    required: true,
                    help: "how long, e.g. 30m or 2h (1 minute to 24 hours)",
                },
            ],
        },
        CommandSpec {
            name: "status",
            usage: "{target?}",
            summary: "alarms, cooldowns, overrides, current and planned capacity",
            args: &[ArgSpec {
                name: "target",
                required: false,
                help: "asg:<group> or ecs:<cluster>/<service>",
            }],
        },
    ],
};

/// Arguments of `scale`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleArgs {
    /// `asg:<group>` or `ecs:<cluster>/<service>`.
    pub target: String,
    /// Capacity to hold.
    pub count: i32,
    /// How long.
    #[serde(rename = "for")]
    pub duration: String,
}

/// Arguments of `status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    /// Limit to one target.
    pub target: Option<String>,
}

/// The chat line that holds `target` at `count` for `duration`.
pub fn scale_line(target: &str, count: i32, duration: &str) -> String {
    COMMANDS.chat_line(
        "scale",
        serde_json::json!({ "target": target, "count": count, "for": duration }),
    )
}
