//! The chat commands cpu-alarm-scaler answers.

use ops_core::command::{ArgSpec, CommandSet, CommandSpec, DOCTOR};
use serde::Deserialize;

/// scale, status, doctor (and help).
pub const COMMANDS: CommandSet = CommandSet {
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
        DOCTOR,
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

/// The chat line that holds `target` at `count` for `duration`, sent to the function deployed as
/// `function`.
pub fn scale_line(function: &str, target: &str, count: i32, duration: &str) -> String {
    COMMANDS.chat_line(
        function,
        "scale",
        serde_json::json!({ "target": target, "count": count, "for": duration }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(file: &str) -> serde_json::Value {
        let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        )
        .unwrap()
    }

    #[test]
    fn the_chat_samples_in_events_are_valid_commands() {
        let scale: ScaleArgs = COMMANDS
            .parse("cpu-alarm-scaler", &sample("chat-scale.json"))
            .unwrap()
            .args_as()
            .unwrap();
        assert_eq!(
            (scale.target.as_str(), scale.count, scale.duration.as_str()),
            ("asg:workers", 5, "30m")
        );
        let fargate: ScaleArgs = COMMANDS
            .parse(
                "cpu-alarm-scaler",
                &sample("chat-scale-fargate-service.json"),
            )
            .unwrap()
            .args_as()
            .unwrap();
        assert_eq!(
            (fargate.target.as_str(), fargate.count),
            ("ecs:prod/web", 4)
        );
        let status: StatusArgs = COMMANDS
            .parse("cpu-alarm-scaler", &sample("chat-scale-status.json"))
            .unwrap()
            .args_as()
            .unwrap();
        assert_eq!(status.target.as_deref(), Some("asg:workers"));
    }
}
