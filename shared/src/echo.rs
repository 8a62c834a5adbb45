//! How much of a caller's input an answer, an error or an alert may repeat.
//!
//! Anyone who may invoke a function can send any payload (the chat channel, a forged event), and
//! most answers and errors quote what they were sent. Everything that leaves a function is cut to
//! chat size here, once, and says that it was cut: a 1 MB argument comes back as a few hundred
//! characters ending in the mark, never as a 1 MB chat message.

use serde_json::{Map, Value};

/// What a cut piece of text ends with.
pub const CUT_MARK: &str = "... (truncated)";
/// Longest string value in an answer returned to the caller (chat shows the answer as it is).
pub const MAX_ANSWER_STRING_CHARS: usize = 1_000;
/// Longest error message returned to the caller (it may carry a command list, so a little longer).
pub const MAX_ERROR_CHARS: usize = 2_000;
/// Longest piece of input quoted inside a message, such as an unknown command's name.
pub const MAX_QUOTED_CHARS: usize = 200;
/// Longest run of characters without white space that an answer or error keeps: longer than any
/// name or ARN AWS allows inside a chat line, far shorter than a runaway input. A message that
/// quotes a megabyte keeps its words before and after the quote.
pub const MAX_RUN_CHARS: usize = 600;

/// `text`, or its first characters and [`CUT_MARK`] so that the whole is `max_chars` long.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text
        .chars()
        .take(max_chars.saturating_sub(CUT_MARK.len()))
        .collect();
    format!("{kept}{CUT_MARK}")
}

/// `text` with every run of non-white-space characters longer than [`MAX_RUN_CHARS`] cut (and
/// marked), then the whole cut to `max_chars`.
pub fn cut_runs(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut run = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            out.push_str(&truncate(&run, MAX_RUN_CHARS));
            run.clear();
            out.push(c);
        } else {
            run.push(c);
        }
    }
    out.push_str(&truncate(&run, MAX_RUN_CHARS));
    truncate(&out, max_chars)
}

/// A piece of the caller's input, cut for quoting inside a message.
pub fn quoted(text: &str) -> String {
    truncate(text, MAX_QUOTED_CHARS)
}

/// An answer with every string (and object key) longer than [`MAX_ANSWER_STRING_CHARS`] cut.
pub fn cap_answer(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(cut_runs(&text, MAX_ANSWER_STRING_CHARS)),
        Value::Array(items) => Value::Array(items.into_iter().map(cap_answer).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (truncate(&key, MAX_QUOTED_CHARS), cap_answer(value)))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_text_is_kept_whole_and_long_text_is_cut_to_the_limit_with_the_mark() {
        assert_eq!(truncate("release-42", 20), "release-42");
        let cut = truncate(&"x".repeat(1_000_000), 200);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with(CUT_MARK), "{cut}");
        assert!(cut.starts_with("xxxx"));
    }

    #[test]
    fn an_answer_quoting_a_megabyte_argument_stays_chat_sized() {
        let huge = "a".repeat(1_000_000);
        let answer = cap_answer(json!({
            "status": "refused",
            "reason": format!("tag `{huge}` not found"),
            "items": [huge.clone()],
            huge.clone(): 1,
        }));
        let text = answer.to_string();
        assert!(text.len() < 3_000, "{} bytes", text.len());
        assert_eq!(answer["status"], "refused");
        assert!(answer["reason"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{CUT_MARK} not found")));
        assert!(answer["items"][0].as_str().unwrap().ends_with(CUT_MARK));
    }

    #[test]
    fn a_message_quoting_a_megabyte_keeps_its_words_before_and_after_the_quote() {
        let message = format!("ECS service `{}` not found", "x".repeat(1_000_000));
        let cut = cut_runs(&message, MAX_ERROR_CHARS);
        assert!(cut.starts_with("ECS service `xxx"), "{cut}");
        assert!(cut.ends_with(&format!("{CUT_MARK} not found")), "{cut}");
        assert!(
            cut.chars().count() <= MAX_RUN_CHARS + 30,
            "{} chars",
            cut.chars().count()
        );
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
        let kept = format!("routes {arn} and {arn}");
        assert_eq!(cut_runs(&kept, 1_000), kept);
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let cut = truncate(&"é".repeat(500), 100);
        assert_eq!(cut.chars().count(), 100);
    }
}
