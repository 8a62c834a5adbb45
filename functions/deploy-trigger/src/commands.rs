//! The chat commands deploy-trigger answers.

use ops_core::command::{ArgSpec, CommandSet, CommandSpec, DOCTOR};
use serde::Deserialize;

const SERVICE: ArgSpec = ArgSpec {
    name: "service",
    required: true,
    help: "the ECS service, as cluster/service or service",
};

/// deploy, rollback, status, doctor (and help).
pub const COMMANDS: CommandSet = CommandSet {
    commands: &[
        CommandSpec {
            name: "deploy",
            usage: "{service, tag | digest}",
            summary: "deploy an image of the service's repository, pinned by digest",
            args: &[
                SERVICE,
                ArgSpec {
                    name: "tag",
                    required: false,
                    help: "an image tag in the repository",
                },
                ArgSpec {
                    name: "digest",
                    required: false,
                    help: "an image digest, sha256:<64 hex>",
                },
            ],
        },
        CommandSpec {
            name: "rollback",
            usage: "{service}",
            summary: "go back to the last deployment verified COMPLETED",
            args: &[SERVICE],
        },
        CommandSpec {
            name: "status",
            usage: "{service}",
            summary: "what runs, the rollout in progress, and where a rollback would go",
            args: &[SERVICE],
        },
        DOCTOR,
    ],
};

/// Arguments of `deploy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployArgs {
    /// `cluster/service` or `service`.
    pub service: String,
    /// Tag to deploy.
    pub tag: Option<String>,
    /// Digest to deploy.
    pub digest: Option<String>,
}

/// Arguments of `rollback` and `status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    /// `cluster/service` or `service`.
    pub service: String,
}

/// The chat line that shows a service's status, sent to the function deployed as `function`.
pub fn status_line(function: &str, service: &str) -> String {
    COMMANDS.chat_line(
        function,
        "status",
        serde_json::json!({ "service": service }),
    )
}

/// The chat line that lists the commands, with how to send each.
pub fn help_line(function: &str) -> String {
    COMMANDS.chat_line(function, "help", serde_json::json!({}))
}

/// The chat line that rolls a service back, sent to the function deployed as `function`.
pub fn rollback_line(function: &str, service: &str) -> String {
    COMMANDS.chat_line(
        function,
        "rollback",
        serde_json::json!({ "service": service }),
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
    fn every_chat_sample_in_events_is_a_valid_command() {
        for (file, name) in [
            ("chat-deploy.json", "deploy"),
            ("chat-rollback.json", "rollback"),
            ("chat-status.json", "status"),
        ] {
            let command = COMMANDS
                .parse("deploy-trigger", &sample(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(command.name, name);
            assert_eq!(command.requested_by.as_deref(), Some("alice"));
        }
        let deploy: DeployArgs = COMMANDS
            .parse("deploy-trigger", &sample("chat-deploy.json"))
            .unwrap()
            .args_as()
            .unwrap();
        assert_eq!(
            (deploy.service.as_str(), deploy.tag.as_deref()),
            ("prod/web", Some("release-42"))
        );
    }

    #[test]
    fn rollback_line_is_the_chat_command_alerts_print() {
        assert_eq!(
            rollback_line("opsstack-deploy-trigger", "prod/web"),
            r#"@Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {"args":{"service":"prod/web"},"command":"rollback"}"#
        );
    }
}
