//! The chat commands blue-green-swapper answers.

use ops_core::command::{ArgSpec, CommandSet, CommandSpec, DOCTOR};
use serde::Deserialize;

const APP: ArgSpec = ArgSpec {
    name: "app",
    required: true,
    help: "the app's name (tag ops:swap-app on its listener), or cluster/service of an ECS service whose lifecycle hook is this function",
};

const DEPLOYMENT: ArgSpec = ArgSpec {
    name: "deployment",
    required: false,
    help: "for an ECS service: the service deployment's id the command is meant for (alerts pin it); refused when another one is in flight",
};

/// deploy, promote, abort, rollback, status, doctor (and help).
pub const COMMANDS: CommandSet = CommandSet {
    commands: &[
        CommandSpec {
            name: "deploy",
            usage: "{app, image | revision, strategy?}",
            summary: "deploy to the idle colour, then move traffic to it as the strategy says",
            args: &[
                APP,
                ArgSpec {
                    name: "image",
                    required: false,
                    help: "an image: repo:tag, repo@sha256:..., or registry/repo:tag",
                },
                ArgSpec {
                    name: "revision",
                    required: false,
                    help: "an existing task definition, family:revision, deployed unchanged",
                },
                ArgSpec {
                    name: "strategy",
                    required: false,
                    help: "all-at-once, canary <percent> <bake> or linear <percent> <every>",
                },
            ],
        },
        CommandSpec {
            name: "promote",
            usage: "{app, deployment?}",
            summary: "skip the remaining waits: all traffic now, or end the termination wait; for an ECS service, release the deployment held for a person",
            args: &[APP, DEPLOYMENT],
        },
        CommandSpec {
            name: "abort",
            usage: "{app, deployment?}",
            summary: "stop the swap: traffic back to the old colour, the new one restored; for an ECS service, ECS rolls the deployment back",
            args: &[APP, DEPLOYMENT],
        },
        CommandSpec {
            name: "rollback",
            usage: "{app, deployment?}",
            summary: "the same as abort: traffic back to the old colour while it is warm",
            args: &[APP, DEPLOYMENT],
        },
        CommandSpec {
            name: "status",
            usage: "{app?}",
            summary: "weights, colours, health, the swap in flight and what happens next",
            args: &[ArgSpec {
                name: "app",
                required: false,
                help: "one app (or cluster/service); all apps when omitted",
            }],
        },
        DOCTOR,
    ],
};

/// Arguments of `deploy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployArgs {
    /// The app.
    pub app: String,
    /// An image reference.
    pub image: Option<String>,
    /// An existing revision.
    pub revision: Option<String>,
    /// A strategy for this swap.
    pub strategy: Option<String>,
}

/// Arguments of `promote`, `abort` and `rollback`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppArgs {
    /// The app.
    pub app: String,
    /// For an ECS service: the service deployment the command is meant for.
    pub deployment: Option<String>,
}

/// Arguments of `status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    /// One app, or all.
    pub app: Option<String>,
}

/// The chat line that aborts (or rolls back) an app's swap, sent to the function deployed as
/// `function`.
pub fn abort_line(function: &str, app: &str) -> String {
    COMMANDS.chat_line(function, "abort", serde_json::json!({ "app": app }))
}

/// The chat line that promotes an app's swap (or releases an ECS deployment held for a person).
pub fn promote_line(function: &str, app: &str) -> String {
    COMMANDS.chat_line(function, "promote", serde_json::json!({ "app": app }))
}

/// The chat line that promotes (`promote`) or aborts (`abort`) one deployment of an ECS service,
/// pinned to it: sent after another deployment replaced it, it changes nothing.
pub fn deployment_line(function: &str, command: &str, service: &str, deployment: &str) -> String {
    COMMANDS.chat_line(
        function,
        command,
        serde_json::json!({ "app": service, "deployment": deployment }),
    )
}

/// The chat line that shows an app, sent to the function deployed as `function`.
pub fn status_line(function: &str, app: &str) -> String {
    COMMANDS.chat_line(function, "status", serde_json::json!({ "app": app }))
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
    fn every_swap_sample_in_events_is_a_valid_command() {
        for (file, name) in [
            ("chat-swap-deploy.json", "deploy"),
            ("chat-swap-promote.json", "promote"),
            ("chat-swap-abort.json", "abort"),
            ("chat-swap-status.json", "status"),
        ] {
            let command = COMMANDS
                .parse("blue-green-swapper", &sample(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(command.name, name);
            assert_eq!(command.requested_by.as_deref(), Some("alice"));
        }
        let deploy: DeployArgs = COMMANDS
            .parse("blue-green-swapper", &sample("chat-swap-deploy.json"))
            .unwrap()
            .args_as()
            .unwrap();
        assert_eq!(
            (
                deploy.app.as_str(),
                deploy.image.as_deref(),
                deploy.strategy.as_deref()
            ),
            ("shop", Some("shop:v8"), Some("canary 10 5m"))
        );
    }

    #[test]
    fn doctor_is_a_command_and_help_lists_it() {
        let command = COMMANDS
            .parse(
                "blue-green-swapper",
                &serde_json::json!({"command": "doctor"}),
            )
            .unwrap();
        assert_eq!(command.name, "doctor");
        assert!(COMMANDS
            .help("blue-green-swapper")
            .contains("  doctor {} - check configuration, resources and IAM permissions"));
    }

    #[test]
    fn the_abort_line_is_the_chat_command_alerts_print() {
        assert_eq!(
            abort_line("opsstack-blue-green-swapper", "shop"),
            r#"@Amazon Q lambda invoke --function-name opsstack-blue-green-swapper --payload {"args":{"app":"shop"},"command":"abort"}"#
        );
    }
}
