//! The envelope for chat invocations, checked against each function's command set.
//!
//! From Amazon Q Developer in chat applications (formerly AWS Chatbot) an engineer sends
//! `@Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {"command":"status","args":{"service":"web"}}`:
//! the prefix and the terminal-like syntax are those of "AWS CLI command syntax in Amazon Q Developer
//! in chat applications" (docs.aws.amazon.com/chatbot/latest/adminguide/intro-to-the-aws-cli-in-slack.html),
//! the payload is written as plain JSON, and the function name is the one Lambda knows the function
//! by (`AWS_LAMBDA_FUNCTION_NAME`: a stack named `opsstack` deploys `opsstack-deploy-trigger`), so
//! every line this module prints works when pasted into the ops channel.
//! The payload is `{"command", "args", "dry_run", "requested_by"}`. Every mistake gets a specific
//! answer; an unknown field is an error, never ignored, because a mistyped `"dryrun": true` that
//! was silently dropped would make a real change where a rehearsal was meant.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::echo::{quoted, truncate, MAX_ANSWER_STRING_CHARS};

/// The fields an envelope may have.
const ENVELOPE_FIELDS: &[&str] = &["command", "args", "dry_run", "requested_by"];
/// Longest `requested_by` accepted; it is echoed into every alert.
const MAX_REQUESTED_BY: usize = 128;
/// How a chat line starts: the app's mention in Amazon Q Developer in chat applications.
pub const CHAT_PREFIX: &str = "@Amazon Q";
/// Longest piece of a caller's input that an answer or error repeats; the rest is cut, and the
/// answer says so (a 1 MB argument must not come back as a 1 MB chat message).
pub const MAX_ECHO_CHARS: usize = 200;

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

/// `doctor`, which every function answers: configuration, resources and IAM permissions checked,
/// one alert to prove the alert path, nothing changed (see [`crate::doctor`]).
pub const DOCTOR: CommandSpec = CommandSpec {
    name: "doctor",
    usage: "{}",
    summary:
        "check configuration, resources and IAM permissions for this deployment; changes nothing",
    args: &[],
};

/// The commands of one function. The lines it prints name the function as deployed, which only
/// the running function knows, so each takes `function_name` (the `AWS_LAMBDA_FUNCTION_NAME`).
#[derive(Debug, Clone, Copy)]
pub struct CommandSet {
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
    /// The help text: every command with its usage and summary, and a line to paste.
    pub fn help(&self, function_name: &str) -> String {
        let mut text = format!(
            "{function_name} commands; the payload is {{\"command\": \"<name>\", \"args\": {{...}}, \"dry_run\": true|false, \"requested_by\": \"<you>\"}}:\n"
        );
        for spec in self.commands {
            text.push_str(&format!(
                "  {} {} - {}\n",
                spec.name, spec.usage, spec.summary
            ));
        }
        text.push_str("  help - this list\n");
        text.push_str(&format!(
            "In the ops channel: {}\n",
            self.chat_line(function_name, "help", Value::Object(Map::new()))
        ));
        text
    }

    /// Parse and check a chat payload sent to `function_name`.
    pub fn parse(&self, function_name: &str, payload: &Value) -> Result<Command, CommandError> {
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
                "unknown field `{}`; the fields are {}",
                quoted(unknown),
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
                    "field `dry_run` must be true or false, got {}",
                    quoted(&other.to_string())
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
                given: quoted(&name),
                help: self.help(function_name),
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
            .map(|c| c.name)
            .chain(["help"])
            .map(|name| (edit_distance(&given, name), name))
            .filter(|(distance, name)| *distance <= 2.max(name.len() / 3))
            .min()
            .map(|(_, name)| name.to_string())
    }

    /// The exact chat line that sends `command` to the function deployed as `function_name`, for
    /// alerts' undo hints and answers' follow-ups. The payload is compact JSON: no spaces for a
    /// chat client to reflow, and `args` left out when there are none.
    pub fn chat_line(&self, function_name: &str, command: &str, args: Value) -> String {
        let payload = match args {
            Value::Object(args) if args.is_empty() => serde_json::json!({ "command": command }),
            args => serde_json::json!({ "command": command, "args": args }),
        };
        format!("{CHAT_PREFIX} lambda invoke --function-name {function_name} --payload {payload}")
    }
}

impl Command {
    /// Who asked, as records and alerts name them: `requested_by`, or "an unnamed chat user" when
    /// it is missing or blank.
    pub fn requester(&self) -> String {
        self.requested_by
            .clone()
            .filter(|who| !who.trim().is_empty())
            .unwrap_or_else(|| "an unnamed chat user".into())
    }

    /// The arguments as a typed struct; serde's message names the field that does not fit.
    pub fn args_as<T: DeserializeOwned>(&self) -> Result<T, CommandError> {
        serde_json::from_value(Value::Object(self.args.clone())).map_err(|e| {
            CommandError::InvalidArgs {
                command: self.name.clone(),
                reason: truncate(&e.to_string(), MAX_ANSWER_STRING_CHARS),
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
            format!("takes no arguments, got `{}`", quoted(unknown))
        } else {
            format!(
                "unknown argument `{}`; it takes {}",
                quoted(unknown),
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

    /// The function as a stack named `opsstack` deploys it.
    const NAME: &str = "opsstack-deploy-trigger";

    const SET: CommandSet = CommandSet {
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
            .parse(NAME, &json!({"command": "deploy", "args": {"service": "web", "tag": "release-42"}, "dry_run": true, "requested_by": "alice"}))
            .unwrap();
        assert_eq!(command.name, "deploy");
        assert!(command.dry_run);
        assert_eq!(command.requested_by.as_deref(), Some("alice"));
        assert_eq!(command.args["tag"], "release-42");
    }

    #[test]
    fn dry_run_defaults_to_false_and_help_needs_no_args() {
        let command = SET.parse(NAME, &json!({"command": "help"})).unwrap();
        assert_eq!(command.name, "help");
        assert!(!command.dry_run);
    }

    #[test]
    fn help_lists_every_command_with_usage() {
        let help = SET.help(NAME);
        assert!(
            help.contains("  deploy {service, tag | digest} - deploy an image to a service\n"),
            "{help}"
        );
        assert!(help.contains("  status {service} - show a service\n"));
        assert!(help.contains("  help - this list\n"));
        assert!(
            help.ends_with("In the ops channel: @Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {\"command\":\"help\"}\n"),
            "{help}"
        );
    }

    #[test]
    fn unknown_command_suggests_the_closest_and_carries_help() {
        let error = SET.parse(NAME, &json!({"command": "deplyo"})).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "unknown command `deplyo` (did you mean `deploy`?)\nopsstack-deploy-trigger commands"
            ),
            "{text}"
        );
        let error = SET.parse(NAME, &json!({"command": "hepl"})).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown command `hepl` (did you mean `help`?)"),
            "{error}"
        );
        let error = SET
            .parse(NAME, &json!({"command": "launch-missiles"}))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown command `launch-missiles`\n"),
            "{error}"
        );
    }

    #[test]
    fn chat_line_is_the_exact_invocation_of_the_function_as_deployed() {
        let line = SET.chat_line(NAME, "rollback", json!({"service": "web"}));
        assert_eq!(
            line,
            r#"@Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {"args":{"service":"web"},"command":"rollback"}"#
        );
        assert_eq!(
            SET.chat_line(NAME, "help", json!({})),
            r#"@Amazon Q lambda invoke --function-name opsstack-deploy-trigger --payload {"command":"help"}"#
        );
    }

    #[test]
    fn a_chat_line_parses_back_to_the_command_it_names() {
        let line = SET.chat_line(NAME, "status", json!({"service": "prod/web"}));
        let payload = line
            .split_once(" --payload ")
            .map(|(_, payload)| payload)
            .unwrap();
        let command = SET
            .parse(NAME, &serde_json::from_str(payload).unwrap())
            .unwrap();
        assert_eq!(command.name, "status");
        assert_eq!(command.args["service"], "prod/web");
    }

    #[test]
    fn errors_quote_a_huge_input_cut_and_say_so() {
        let huge = "x".repeat(1_000_000);
        let errors = [
            SET.parse(NAME, &json!({ "command": huge })).unwrap_err(),
            SET.parse(NAME, &json!({ "command": "status", huge.clone(): 1 }))
                .unwrap_err(),
            SET.parse(
                NAME,
                &json!({ "command": "status", "args": { huge.clone(): 1 } }),
            )
            .unwrap_err(),
            SET.parse(NAME, &json!({ "command": "status", "dry_run": huge }))
                .unwrap_err(),
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.len() < 2_000, "{} bytes", text.len());
            assert!(text.contains(crate::echo::CUT_MARK), "{text}");
        }
    }

    #[test]
    fn typed_args_name_the_field_that_does_not_fit() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct StatusArgs {
            service: String,
        }
        let command = SET
            .parse(NAME, &json!({"command": "status", "args": {"service": 7}}))
            .unwrap();
        let error = command.args_as::<StatusArgs>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "command `status`: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn the_requester_is_who_asked_or_an_unnamed_chat_user_when_missing_or_blank() {
        let set = CommandSet { commands: &[] };
        let requester = |payload: serde_json::Value| set.parse("f", &payload).unwrap().requester();
        assert_eq!(
            requester(serde_json::json!({"command": "help", "requested_by": " alice "})),
            "alice"
        );
        assert_eq!(
            requester(serde_json::json!({"command": "help"})),
            "an unnamed chat user"
        );
        assert_eq!(
            requester(serde_json::json!({"command": "help", "requested_by": "  "})),
            "an unnamed chat user"
        );
    }
}
