//! Table-driven: every malformed image reference and chat payload gets its own specific error.

use ops_core::command::{ArgSpec, CommandSet, CommandSpec};
use ops_core::image::ImageRef;
use ops_core::Error;
use serde_json::{json, Value};

const HEX: &str = "7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234ef56";

#[test]
fn each_malformed_image_reference_gets_its_specific_error() {
    let long_name = format!("{}/web", "a".repeat(260));
    let long_tag = format!("web:{}", "t".repeat(129));
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "image reference is empty"),
        ("web app".into(), "image reference `web app` contains whitespace or control characters"),
        ("web\n".into(), "image reference `web\n` contains whitespace or control characters"),
        ("Web".into(), "repository path component `Web` must be lowercase letters and digits, joined by `.`, `_`, `__` or dashes"),
        ("team//web".into(), "repository `team//web` has an empty path component"),
        ("/web".into(), "repository `/web` has an empty path component"),
        ("web/".into(), "repository `web/` has an empty path component"),
        ("-web".into(), "repository path component `-web` must be lowercase letters and digits, joined by `.`, `_`, `__` or dashes"),
        ("web_".into(), "repository path component `web_` must be lowercase letters and digits, joined by `.`, `_`, `__` or dashes"),
        ("we___b".into(), "repository path component `we___b` must be lowercase letters and digits, joined by `.`, `_`, `__` or dashes"),
        ("we.-b".into(), "repository path component `we.-b` must be lowercase letters and digits, joined by `.`, `_`, `__` or dashes"),
        ("web:".into(), "tag is empty in `web:`"),
        ("web:.hidden".into(), "tag `.hidden` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"),
        ("web:-x".into(), "tag `-x` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"),
        ("web:a+b".into(), "tag `a+b` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"),
        (long_tag.clone(), "must be 1 to 128 letters"),
        (long_name, "image name is 264 characters long; the limit is 255"),
        ("web@".into(), "digest `` must look like sha256:<64 hex digits>"),
        ("web@sha256".into(), "digest `sha256` must look like sha256:<64 hex digits>"),
        ("web@sha256:".into(), "digest `sha256:` must look like sha256:<64 hex digits>"),
        (format!("web@md5:{HEX}"), "digest algorithm `md5` is not supported; ECR images use sha256"),
        ("web@sha256:abc123".into(), "sha256 digest has 6 hex digits; it must have 64"),
        (format!("web@sha256:{}", HEX.to_uppercase()), "sha256 digest must be lowercase hex digits, found `F`"),
        (format!("web@sha256:{}z", &HEX[1..]), "sha256 digest must be lowercase hex digits, found `z`"),
        (format!("web@sha256:{HEX}@sha256:{HEX}"), "has more than one digest"),
        ("registry.example.com:port/web".into(), "registry `registry.example.com:port` is not a valid host[:port]"),
        ("registry.example.com:99999/web".into(), "registry `registry.example.com:99999` is not a valid host[:port]"),
        ("-bad.example.com/web".into(), "registry `-bad.example.com` is not a valid host[:port]"),
        ("bad..example.com/web".into(), "registry `bad..example.com` is not a valid host[:port]"),
    ];
    assert!(cases.len() >= 20);
    for (input, expected) in &cases {
        let error = ImageRef::parse(input).expect_err(&format!("`{input}` should be rejected"));
        let message = Error::from(error).to_string();
        assert!(
            message.contains(expected),
            "input `{input}`:\n  got      {message}\n  expected {expected}"
        );
    }
}

const DEPLOY_TRIGGER: CommandSet = CommandSet {
    commands: &[
        CommandSpec {
            name: "deploy",
            usage: "{service, tag | digest}",
            summary: "deploy an image to a service",
            args: &[
                ArgSpec {
                    name: "service",
                    required: true,
                    help: "the ECS service, as cluster/service",
                },
                ArgSpec {
                    name: "tag",
                    required: false,
                    help: "an image tag",
                },
                ArgSpec {
                    name: "digest",
                    required: false,
                    help: "an image digest",
                },
            ],
        },
        CommandSpec {
            name: "rollback",
            usage: "{service}",
            summary: "go back to the last completed deployment",
            args: &[ArgSpec {
                name: "service",
                required: true,
                help: "the ECS service, as cluster/service",
            }],
        },
        CommandSpec {
            name: "status",
            usage: "{}",
            summary: "show opted-in services",
            args: &[],
        },
    ],
};

#[test]
fn each_malformed_command_payload_gets_its_specific_error() {
    let long_name = "x".repeat(129);
    let cases: Vec<(Value, &str)> = vec![
        (json!(null), "malformed command: a command must be a JSON object like {\"command\": \"help\"}, got null"),
        (json!("deploy"), "malformed command: a command must be a JSON object like {\"command\": \"help\"}, got a string"),
        (json!([{"command": "deploy"}]), "got an array"),
        (json!(42), "got a number"),
        (json!({}), "malformed command: field `command` is missing"),
        (json!({"args": {"service": "web"}}), "malformed command: field `command` is missing"),
        (json!({"command": ""}), "malformed command: field `command` is empty"),
        (json!({"command": "   "}), "malformed command: field `command` is empty"),
        (json!({"command": 7}), "malformed command: field `command` must be a string, got a number"),
        (json!({"command": ["deploy"]}), "malformed command: field `command` must be a string, got an array"),
        (json!({"command": "status", "dryrun": true}), "malformed command: unknown field `dryrun`; the fields are command, args, dry_run, requested_by"),
        (json!({"command": "status", "user": "bob"}), "malformed command: unknown field `user`"),
        (json!({"command": "status", "dry_run": "yes"}), "malformed command: field `dry_run` must be true or false, got \"yes\""),
        (json!({"command": "status", "dry_run": 1}), "malformed command: field `dry_run` must be true or false, got 1"),
        (json!({"command": "status", "args": "web"}), "malformed command: field `args` must be an object, got a string"),
        (json!({"command": "status", "args": ["web"]}), "malformed command: field `args` must be an object, got an array"),
        (json!({"command": "status", "requested_by": 12}), "malformed command: field `requested_by` must be a string, got a number"),
        (json!({"command": "status", "requested_by": long_name}), "malformed command: field `requested_by` is longer than 128 characters"),
        (json!({"command": "status", "requested_by": "bob\u{7}"}), "malformed command: field `requested_by` contains control characters"),
        (json!({"command": "deplyo"}), "unknown command `deplyo` (did you mean `deploy`?)\ndeploy-trigger commands"),
        (json!({"command": "rolback"}), "unknown command `rolback` (did you mean `rollback`?)"),
        (json!({"command": "DELETE-EVERYTHING"}), "unknown command `DELETE-EVERYTHING`\ndeploy-trigger commands"),
        (json!({"command": "deploy"}), "command `deploy`: missing argument `service` (the ECS service, as cluster/service)"),
        (json!({"command": "deploy", "args": {"service": null}}), "command `deploy`: missing argument `service`"),
        (json!({"command": "deploy", "args": {"service": "  "}}), "command `deploy`: argument `service` is empty"),
        (json!({"command": "deploy", "args": {"service": "web", "image": "x"}}), "command `deploy`: unknown argument `image`; it takes service, tag, digest"),
        (json!({"command": "status", "args": {"service": "web"}}), "command `status`: takes no arguments, got `service`"),
        (json!({"command": "rollback", "args": {"servce": "web"}}), "command `rollback`: unknown argument `servce`; it takes service"),
    ];
    assert!(cases.len() >= 20);
    for (payload, expected) in &cases {
        let error = DEPLOY_TRIGGER
            .parse("deploy-trigger", payload)
            .expect_err(&format!("{payload} should be rejected"));
        let error = Error::from(error);
        assert!(!error.retryable(), "bad input is never retried: {payload}");
        let message = error.to_string();
        assert!(
            message.starts_with(expected) || message.contains(expected),
            "payload {payload}:\n  got      {message}\n  expected {expected}"
        );
    }
}

#[test]
fn the_unknown_command_answer_carries_the_whole_help() {
    let error = DEPLOY_TRIGGER
        .parse("deploy-trigger", &json!({"command": "deplyo"}))
        .unwrap_err()
        .to_string();
    for line in [
        "  deploy {service, tag | digest} - deploy an image to a service",
        "  rollback {service} - go back to the last completed deployment",
        "  status {} - show opted-in services",
        "  help - this list",
    ] {
        assert!(error.contains(line), "missing `{line}` in:\n{error}");
    }
}
