//! Values the functions keep in AWS resource tags.

/// Longest AWS tag value.
pub const MAX_TAG_VALUE: usize = 256;

/// On an ECS service: it is a colour of this blue/green app, deployed only by blue-green-swapper
/// (deploy-trigger refuses to deploy it in place).
pub const SWAP_APP: &str = "ops:swap-app";

/// On both colours of a blue/green app while a swap is in flight, set by blue-green-swapper
/// (cpu-alarm-scaler holds scale-in meanwhile).
pub const SWAP_IN_FLIGHT: &str = "ops:swap-in-flight";

/// One word of a tag value: characters AWS does not allow in tag values (and spaces, which
/// separate words) become `_`. AWS allows letters, digits, spaces and `_ . : / = + - @`; `=` is
/// kept out too, since the functions write `key=value` words.
pub fn tag_word(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '+' | '-' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `key=value` words of a tag value the functions wrote, e.g. `id=a1 phase=warm`; words
/// without `=` are skipped.
pub fn fields(value: &str) -> std::collections::BTreeMap<&str, &str> {
    value
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect()
}

/// `text` cut to at most `max` characters (whole characters, never a split one).
pub fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_word_has_only_allowed_characters_and_no_spaces() {
        assert_eq!(
            tag_word("Zoë O'Neil, SRE=on-call"),
            "Zoë_O_Neil__SRE_on-call"
        );
        assert_eq!(tag_word("ecs-svc/123:web@x"), "ecs-svc/123:web@x");
    }

    #[test]
    fn fields_are_the_key_value_words() {
        let parsed = fields("id=a1 phase=warm stray at=17");
        assert_eq!(parsed.get("id"), Some(&"a1"));
        assert_eq!(parsed.get("at"), Some(&"17"));
        assert_eq!(parsed.len(), 3);
        assert_eq!(clip("héllo", 2), "hé");
    }
}
