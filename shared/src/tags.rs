//! Values the functions keep in AWS resource tags.

/// Longest AWS tag value.
pub const MAX_TAG_VALUE: usize = 256;

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
}
