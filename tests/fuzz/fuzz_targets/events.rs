//! Any bytes as an invocation payload: classified and parsed as each event type, or refused with
//! a specific error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ops_core::events::{
    classify, parse_alarm_action, parse_event, AlarmStateChange, EcrImageAction,
    EcsDeploymentStateChange, LifecycleAction,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = classify(payload.clone());
        let _ = parse_event::<EcrImageAction>(&payload);
        let _ = parse_event::<EcsDeploymentStateChange>(&payload);
        let _ = parse_event::<LifecycleAction>(&payload);
        let _ = parse_event::<AlarmStateChange>(&payload);
        let _ = parse_alarm_action(&payload);
    }
});
