//! The envelope for chat invocations, checked against each function's command set.
//!
//! From AWS Chatbot an engineer sends
//! `@aws lambda invoke --function-name deploy-trigger --payload {"command": "status", "args": {"service": "web"}}`.
//! The payload is `{"command", "args", "dry_run", "requested_by"}`. Every mistake gets a specific
//! answer; an unknown field is an error, never ignored, because a mistyped `"dryrun": true` that
//! was silently dropped would make a real change where a rehearsal was meant.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// The fields an envelope may have.
const ENVELOPE_FIELDS: &[&str] = &["command", "args", "dry_run", "requested_by"];
/// Longest `requested_by` accepted; it is echoed into every alert.
const MAX_REQUESTED_BY: usize = 128;

/// Why a chat command cannot be run as sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The envelope itself is malformed.
    #[error("malformed command: {0}")]
    Malformed(String),
    /// No such command for this function; carries the help text.
    #[error("unknown command `{given}`{}\n{help}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown {
        /// What was sent.
        given: String,
        /// The closest known command, if one is close.
        suggestion: Option<String>,
        /// The function's help text.
        help: String,
    },
    /// The command exists but its arguments are wrong.
    #[error("command `{command}`: {reason}")]
    InvalidArgs {
        /// The command.
        command: String,
        /// What is wrong, naming the argument.
        reason: String,
    },
}

/// One argument a command takes.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    /// Argument name as sent in `args`.
    pub name: &'static str,
    /// Whether it must be present.
    pub required: bool,
    /// One line of help.
    pub help: &'static str,
}

/// One command a function answers.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// The command name.
    pub name: &'static str,
    /// How the arguments read in help, e.g. `{service, tag | digest}`.
    pub usage: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Its arguments.
    pub args: &'static [ArgSpec],
}

/// The commands of one function.
#[derive(Debug, Clone, Copy)]
pub struct CommandSet {
    /// The function's name, used in help and in the chat command lines it prints.
    pub function: &'static str,
    /// Its commands; `help` is always added.
    pub commands: &'static [CommandSpec],
}

/// A parsed, checked chat command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// The command name, one of the set's (or `help`).
    pub name: String,
    /// Its arguments, checked against the spec.
    pub args: Map<String, Value>,
    /// Rehearse: return the plan and change nothing.
    pub dry_run: bool,
    /// Who asked, echoed in alerts.
    pub requested_by: Option<String>,
}

impl CommandSet {
    /// The help text: every command with its usage and summary, and the envelope's shape.
    pub fn help(&self) -> String {
        let mut text = format!(
            "{} commands; send {{\"command\": \"<name>\", \"args\": {{...}}, \"dry_run\": true|false, \"requested_by\": \"<you>\"}}:\n",
            self.function
        );
        for spec in self.commands {
            text.push_str(&format!(
                "  {} {} - {}\n",
                spec.name, spec.usage, spec.summary
            ));
        }
        text.push_str("  help - this list\n");
        text
    }

    /// Parse and check a chat payload.
    pub fn parse(&self, payload: &Value) -> Result<Command, CommandError> {
        let object = payload.as_object().ok_or_else(|| {
            CommandError::Malformed(format!(
                "a command must be a JSON object like {{\"command\": \"help\"}}, got {}",
                json_kind(payload)
            ))
        })?;
        if let Some(unknown) = object
            .keys()
            .find(|k| !ENVELOPE_FIELDS.contains(&k.as_str()))
        {
            return Err(CommandError::Malformed(format!(
                "unknown field `{unknown}`; the fields are {}",
                ENVELOPE_FIELDS.join(", ")
            )));
        }
        let name = match object.get("command") {
            None => return Err(CommandError::Malformed("field `command` is missing".into())),
            Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_string(),
            Some(Value::String(_)) => {
                return Err(CommandError::Malformed("field `command` is empty".into()))
            }
            Some(other) => {
                return Err(CommandError::Malformed(format!(
                    "field `command` must be a string, got {}",
                    json_kind(other)
                )))
            }
        };
        let args = match object.get("args") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(args)) => args.clone(),
            Some(other) => {
                return Err(CommandError::Malformed(format!(
                    "field `args` must be an object, got {}",
                    json_kind(other)
                )))
            }
        };
        let dry_run = match object.get("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => {
                return Err(CommandError::Malformed(format!(
                    "field `dry_run` must be true or false, got {other}"
                )))
            }
        };
        let requested_by = match object.get("requested_by") {
            None | Some(Value::Null) => None,
            Some(Value::String(who)) => Some(check_requested_by(who)?),
            Some(other) => {
                return Err(CommandError::Malformed(format!(
                    "field `requested_by` must be a string, got {}",
                    json_kind(other)
                )))
            }
        };
        if name == "help" {
            return Ok(Command {
                name,
                args: Map::new(),
                dry_run,
                requested_by,
            });
        }
        let spec = self
            .commands
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| CommandError::Unknown {
                suggestion: self.closest(&name),
                given: name.clone(),
                help: self.help(),
            })?;
        check_args(spec, &args)?;
        Ok(Command {
            name,
            args,
            dry_run,
            requested_by,
        })
    }

    fn closest(&self, given: &str) -> Option<String> {
        let given = given.to_lowercase();
        self.commands
            .iter()
            .map(|c| (edit_distance(&given, c.name), c.name))
            .filter(|(distance, name)| *distance <= 2.max(name.len() / 3))
            .min()
            .map(|(_, name)| name.to_string())
    }

    /// The exact chat line that sends `command` to this function, for alerts' undo hints.
    pub fn chat_line(&self, command: &str, args: Value) -> String {
        let payload = serde_json::json!({ "command": command, "args": args });
        format!(
            "@aws lambda invoke --function-name {} --payload {payload}",
            self.function
        )
    }
}

impl Command {
    /// The arguments as a typed struct; serde's message names the field that does not fit.
    pub fn args_as<T: DeserializeOwned>(&self) -> Result<T, CommandError> {
        serde_json::from_value(Value::Object(self.args.clone())).map_err(|e| {
            CommandError::InvalidArgs {
                command: self.name.clone(),
                reason: e.to_string(),
            }
        })
    }
}

fn check_args(spec: &CommandSpec, args: &Map<String, Value>) -> Result<(), CommandError> {
    let invalid = |reason: String| CommandError::InvalidArgs {
        command: spec.name.into(),
        reason,
    };
    if let Some(unknown) = args
        .keys()
        .find(|k| !spec.args.iter().any(|a| a.name == k.as_str()))
    {
        let known: Vec<&str> = spec.args.iter().map(|a| a.name).collect();
        return Err(invalid(if known.is_empty() {
            format!("takes no arguments, got `{unknown}`")
        } else {
            format!(
                "unknown argument `{unknown}`; it takes {}",
                known.join(", ")
            )
        }));
    }
    for arg in spec.args.iter().filter(|a| a.required) {
        match args.get(arg.name) {
            None | Some(Value::Null) => {
                return Err(invalid(format!(
                    "missing argument `{}` ({})",
                    arg.name, arg.help
                )))
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(invalid(format!("argument `{}` is empty", arg.name)))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_requested_by(who: &str) -> Result<String, CommandError> {
    let who = who.trim();
    if who.chars().count() > MAX_REQUESTED_BY {
        return Err(CommandError::Malformed(format!(
            "field `requested_by` is longer than {MAX_REQUESTED_BY} characters"
        )));
    }
    if who.chars().any(char::is_control) {
        return Err(CommandError::Malformed(
            "field `requested_by` contains control characters".into(),
        ));
    }
    Ok(who.to_string())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SET: CommandSet = CommandSet {
        function: "deploy-trigger",
        commands: &[
            CommandSpec {
                name: "deploy",
                usage: "{service, tag | digest}",
                summary: "deploy an image to a service",
                args: &[
                    ArgSpec {
                        name: "service",
                        required: true,
                        help: "cluster/service or service",
                    },
                    ArgSpec {
                        name: "tag",
                        required: false,
                        help: "image tag",
                    },
                    ArgSpec {
                        name: "digest",
                        required: false,
                        help: "image digest",
                    },
                ],
            },
            CommandSpec {
                name: "status",
                usage: "{service}",
                summary: "show a service",
                args: &[ArgSpec {
                    name: "service",
                    required: true,
                    help: "cluster/service or service",
                }],
            },
        ],
    };

    #[test]
    fn a_well_formed_command_parses_with_its_flags() {
        let command = SET
            .parse(&json!({"command": "deploy", "args": {"service": "web", "tag": "release-42"}, "dry_run": true, "requested_by": "alice"}))
            .unwrap();
        assert_eq!(command.name, "deploy");
        assert!(command.dry_run);
        assert_eq!(command.requested_by.as_deref(), Some("alice"));
        assert_eq!(command.args["tag"], "release-42");
    }

    #[test]
    fn dry_run_defaults_to_false_and_help_needs_no_args() {
        let command = SET.parse(&json!({"command": "help"})).unwrap();
        assert_eq!(command.name, "help");
        assert!(!command.dry_run);
    }

    #[test]
    fn help_lists_every_command_with_usage() {
        let help = SET.help();
        assert!(
            help.contains("  deploy {service, tag | digest} - deploy an image to a service\n"),
            "{help}"
        );
        assert!(help.contains("  status {service} - show a service\n"));
        assert!(help.contains("  help - this list\n"));
    }

    #[test]
    fn unknown_command_suggests_the_closest_and_carries_help() {
        let error = SET.parse(&json!({"command": "deplyo"})).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "unknown command `deplyo` (did you mean `deploy`?)\ndeploy-trigger commands"
            ),
            "{text}"
        );
        let error = SET
            .parse(&json!({"command": "launch-missiles"}))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown command `launch-missiles`\n"),
            "{error}"
        );
    }

    #[test]
    fn chat_line_is_the_exact_invocation() {
        let line = SET.chat_line("rollback", json!({"service": "web"}));
        assert_eq!(
            line,
            r#"@aws lambda invoke --function-name deploy-trigger --payload {"args":{"service":"web"},"command":"rollback"}"#
        );
    }

    #[test]
    fn typed_args_name_the_field_that_does_not_fit() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct StatusArgs {
            service: String,
        }
        let command = SET
            .parse(&json!({"command": "status", "args": {"service": 7}}))
            .unwrap();
        let error = command.args_as::<StatusArgs>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "command `status`: invalid type: integer `7`, expected a string"
        );
    }
}
