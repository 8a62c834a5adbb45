//! Properties of every parser of outside input: image references, chat commands, events, a
//! server's certificate. Whatever arrives, the answer is a value or a specific error, never a
//! panic; what parses prints back to itself.

use ops_core::command::{ArgSpec, CommandSet, CommandSpec};
use ops_core::events::{
    classify, parse_alarm_action, parse_event, AlarmStateChange, EcrImageAction, Incoming,
    LifecycleAction,
};
use ops_core::image::ImageRef;
use proptest::prelude::*;
use serde_json::{json, Value};

const SET: CommandSet = CommandSet {
    commands: &[CommandSpec {
        name: "deploy",
        usage: "{service, tag}",
        summary: "s",
        args: &[
            ArgSpec {
                name: "service",
                required: true,
                help: "h",
            },
            ArgSpec {
                name: "tag",
                required: false,
                help: "h",
            },
        ],
    }],
};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("command".to_string()),
                    Just("args".to_string()),
                    Just("dry_run".to_string()),
                    Just("requested_by".to_string()),
                    Just("detail-type".to_string()),
                    Just("detail".to_string()),
                    Just("alarmData".to_string()),
                    "[a-z_-]{1,12}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_an_image_reference_or_a_specific_error(text in ".{0,300}") {
        match ImageRef::parse(&text) {
            Ok(reference) => prop_assert_eq!(ImageRef::parse(&reference.to_string()).unwrap(), reference),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn references_built_from_valid_parts_print_back_to_themselves(
        registry in proptest::option::of("[a-z][a-z0-9]{0,10}\\.example\\.com(:[1-9][0-9]{0,3})?"),
        path in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}",
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        digest in proptest::option::of("[0-9a-f]{64}"),
    ) {
        let mut text = registry.map(|r| format!("{r}/")).unwrap_or_default() + &path;
        if let Some(tag) = &tag { text.push(':'); text.push_str(tag); }
        if let Some(digest) = &digest { text.push_str("@sha256:"); text.push_str(digest); }
        let reference = ImageRef::parse(&text).unwrap();
        prop_assert_eq!(reference.to_string(), text);
    }

    #[test]
    fn any_payload_is_classified_or_refused_and_any_command_parsed_or_refused(payload in any_json()) {
        if let Ok(Incoming::Command(raw)) = classify(payload.clone()) {
            if let Err(error) = SET.parse("ops-fn", &raw) {
                prop_assert!(!error.to_string().is_empty());
            }
        }
        let _ = parse_event::<EcrImageAction>(&payload);
        let _ = parse_event::<AlarmStateChange>(&payload);
        let _ = parse_event::<LifecycleAction>(&payload);
        let _ = parse_alarm_action(&payload);
    }

    #[test]
    fn a_well_formed_envelope_with_any_args_is_parsed_or_refused_by_name(args in any_json(), dry_run in any::<bool>(), who in ".{0,200}") {
        let payload = json!({"command": "deploy", "args": args, "dry_run": dry_run, "requested_by": who});
        match SET.parse("ops-fn", &payload) {
            Ok(command) => {
                prop_assert_eq!(command.dry_run, dry_run);
                prop_assert!(command.args.contains_key("service"));
            }
            Err(error) => {
                let text = error.to_string();
                prop_assert!(text.starts_with("malformed command") || text.starts_with("command `deploy`"), "{}", text);
            }
        }
    }
}

#[cfg(feature = "probe")]
proptest! {
    #[test]
    fn any_bytes_are_a_certificates_expiry_or_nothing(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = ops_core::probe::cert::not_after(&bytes);
    }
}
