//! Small printing helpers shared by the chapters.

use ops_e2e::ReceivedAlert;
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
