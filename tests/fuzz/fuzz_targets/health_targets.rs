//! Any bytes as a health targets document (SSM parameter, HEALTH_TARGETS): one error for a bad
//! document, else every entry a target or an error naming the document and the entry; never a
//! panic.
#![no_main]

use legacy_health_monitor::targets::parse_document;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (targets, errors) = parse_document("fuzz", text);
    for error in &errors {
        assert!(error.to_string().starts_with("fuzz: "), "{error}");
    }
    if errors.iter().any(|e| e.entry == "document" || e.entry == "defaults") {
        assert!(targets.is_empty());
        assert_eq!(errors.len(), 1);
    } else {
        let document: serde_json::Value = serde_json::from_str(text).expect("parsed above");
        let entries = document["targets"].as_array().expect("a list, or an error above").len();
        assert_eq!(targets.len() + errors.len(), entries);
    }
});
