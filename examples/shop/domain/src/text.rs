//! Test helpers for the rules the API's document states.

#[cfg(test)]
pub(crate) mod tests {
    use proptest::strategy::Strategy;

    /// Strings `pattern` (anchored at both ends) matches, `min..=max`
    /// characters long, as a client generated from the document sends them.
    pub(crate) fn matching(pattern: &str, min: usize, max: usize) -> impl Strategy<Value = String> {
        let inner = pattern
            .strip_prefix('^')
            .and_then(|rest| rest.strip_suffix('$'))
            .unwrap_or(pattern);
        proptest::string::string_regex(inner)
            .expect("a pattern proptest can generate from")
            .prop_filter("within the length limits", move |text| {
                (min..=max).contains(&text.chars().count())
            })
    }
}
