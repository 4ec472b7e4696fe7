//! Rules for text a person types, stated once: the domain checks them, and an
//! API's OpenAPI document states them as the same pattern.

/// Printable text with at least one character that is not white space: no
/// control characters anywhere (U+0000–U+001F, U+007F–U+009F). A value object
/// that trims its input and refuses control characters accepts every text this
/// pattern matches.
pub const PRINTABLE: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Whether `text` is [`PRINTABLE`].
#[must_use]
pub fn is_printable(text: &str) -> bool {
    !text.chars().any(char::is_control) && text.chars().any(|c| !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn printable_is_what_the_pattern_matches(text in "\\PC{0,8}|[\\s\\x00-\\x1f\\x7f-\\x9f]{1,4}|[a \\t\\x01]{1,6}") {
            let pattern = regex::Regex::new(super::PRINTABLE).expect("a valid pattern");
            prop_assert_eq!(super::is_printable(&text), pattern.is_match(&text));
        }
    }
}
