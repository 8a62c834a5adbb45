//! Properties of the monitor's parser: any targets document is targets plus named errors, never
//! a panic.

use legacy_health_monitor::targets::parse_document;
use proptest::prelude::*;
use serde_json::{json, Value};

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,30}".prop_map(Value::String),
        "(http|https|tcp|ftp)://[a-z0-9.:\\[\\]]{0,20}(/[a-z]{0,5})?".prop_map(Value::String),
        "[0-9]{1,4}(ms|s|m|h)?".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(Value::Bool),
        Just(json!(["200", 204, "300-399"])),
        Just(json!({"Authorization": "x"})),
        Just(Value::Null),
    ]
}

fn entry() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop_oneof![
            Just("name"),
            Just("http"),
            Just("tcp"),
            Just("method"),
            Just("headers"),
            Just("expect_status"),
            Just("body_contains"),
            Just("body_regex"),
            Just("max_latency"),
            Just("timeout"),
            Just("verify_tls"),
            Just("cert_warn_days"),
            Just("down_after"),
            Just("up_after"),
            Just("reminder"),
            Just("max_body_bytes"),
            Just("unknown")
        ],
        field_value(),
        0..8,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn every_entry_is_a_target_or_an_error_naming_it(entries in prop::collection::vec(entry(), 0..12)) {
        let document = json!({"targets": entries}).to_string();
        let (targets, errors) = parse_document("property", &document);
        prop_assert_eq!(targets.len() + errors.len(), entries.len());
        for error in &errors {
            prop_assert!(error.to_string().starts_with("property: targets["), "{}", error);
        }
    }

    #[test]
    fn text_that_is_not_json_is_one_error_naming_the_document(text in ".{0,200}") {
        let (targets, errors) = parse_document("property", &text);
        if serde_json::from_str::<Value>(&text).is_err() {
            prop_assert!(targets.is_empty());
            prop_assert_eq!(errors.len(), 1);
            prop_assert!(errors[0].to_string().starts_with("property: document: not JSON"), "{}", errors[0]);
        }
    }
}
