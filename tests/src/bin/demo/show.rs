//! Small printing helpers shared by the chapters.

use ops_e2e::{LocalLambda, ReceivedAlert};
use serde_json::Value;

/// A JSON value as text: strings without quotes.
pub fn text(value: &Value) -> String {
    value
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| value.to_string())
}

/// A JSON array's items (none for anything else).
pub fn list(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// Print an alert as chat shows it: title, then the description, indented.
pub fn print_alert(alert: &ReceivedAlert) {
    println!("  | {}", text(&alert.chat["content"]["title"]));
    for line in text(&alert.chat["content"]["description"]).lines() {
        println!("  |   {line}");
    }
    for step in list(&alert.chat["content"]["nextSteps"]) {
        println!("  |   next: {}", text(&step));
    }
}

/// The stack name the demo deploys under, as `sam deploy --stack-name opsstack` would: every
/// function runs as `opsstack-<function>`, so the chat lines it prints are the ones to paste.
pub const STACK: &str = "opsstack";

/// A function's name as the demo stack deploys it.
pub fn deployed(function: &str) -> String {
    format!("{STACK}-{function}")
}

/// Print the chat line an engineer sends in the ops channel.
pub fn print_chat_line(function: &str, payload: &Value) {
    println!(
        "   {} lambda invoke --function-name {} --payload {payload}",
        ops_core::command::CHAT_PREFIX,
        deployed(function)
    );
}

/// Print what the stack's dashboard counts of `function`'s changes: the Embedded Metric Format
/// lines it printed (CloudWatch Logs turns each into a data point of "<metric> per day").
pub fn print_counted_changes(function: &LocalLambda) {
    let mut counted: Vec<(String, String, u64)> = Vec::new();
    for change in function.counted_changes() {
        match counted
            .iter_mut()
            .find(|(m, o, _)| *m == change.metric && *o == change.outcome)
        {
            Some(entry) => entry.2 += change.value,
            None => counted.push((change.metric, change.outcome, change.value)),
        }
    }
    let shown: Vec<String> = counted
        .iter()
        .map(|(metric, outcome, value)| format!("{metric} {outcome} {value}"))
        .collect();
    println!(
        "\n   The dashboard's changes per day, from the metric lines this function printed: {}",
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        }
    );
}
