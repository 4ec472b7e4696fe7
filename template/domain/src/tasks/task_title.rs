use std::fmt;

use serde::Serialize;
use strata_domain::ValidationFailure;
use strata_domain::validator::ValidateLength;

/// What a task is about: 1 to 200 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskTitle(String);

impl TaskTitle {
    /// The longest title accepted, in characters.
    pub const MAX_CHARS: u64 = 200;
    /// What a title looks like: printable, not only white space. The API's
    /// document states this pattern; every title it matches is accepted.
    pub const PATTERN: &str = strata_domain::text::PRINTABLE;

    /// Parses a title, trimming surrounding white space.
    ///
    /// # Errors
    /// When the trimmed title is empty, too long or holds control characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationFailure> {
        let title = raw.trim();
        if !title.validate_length(Some(1), Some(Self::MAX_CHARS), None) {
            return Err(ValidationFailure::single(
                "",
                "length",
                format!("must be 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if !strata_domain::text::is_printable(title) {
            return Err(ValidationFailure::single(
                "",
                "characters",
                "must not contain control characters",
            ));
        }
        Ok(Self(title.to_owned()))
    }

    /// The title as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_title_the_document_allows_is_accepted(
            raw in proptest::string::string_regex(
                TaskTitle::PATTERN.trim_start_matches('^').trim_end_matches('$'),
            )
            .expect("a pattern proptest can generate from")
            .prop_filter("at most the longest title", |raw| raw.chars().count() <= 200)
        ) {
            prop_assert!(TaskTitle::parse(&raw).is_ok());
        }
    }

    #[test]
    fn trims_surrounding_space() {
        let title = TaskTitle::parse("  Water the plants ").expect("valid");
        assert_eq!(title.as_str(), "Water the plants");
    }

    #[test]
    fn rejects_blank_titles_and_control_characters() {
        let blank = TaskTitle::parse(" \t ").expect_err("blank");
        assert_eq!(blank.violations()[0].code, "length");
        let control = TaskTitle::parse("line\nbreak").expect_err("control character");
        assert_eq!(control.violations()[0].code, "characters");
    }

    proptest! {
        #[test]
        fn accepts_any_printable_title_up_to_the_limit(title in "[\\p{L}\\p{N}][\\p{L}\\p{N} .,!?-]{0,198}[\\p{L}\\p{N}]") {
            let parsed = TaskTitle::parse(&title).expect("printable and short enough");
            prop_assert_eq!(parsed.as_str(), title.as_str());
        }

        #[test]
        fn rejects_titles_over_the_limit(title in "[a-z]{201,400}") {
            prop_assert!(TaskTitle::parse(&title).is_err());
        }

        #[test]
        fn parsing_is_idempotent(raw in "\\PC{0,220}") {
            if let Ok(title) = TaskTitle::parse(&raw) {
                prop_assert_eq!(TaskTitle::parse(title.as_str()).expect("reparses"), title);
            }
        }
    }
}
