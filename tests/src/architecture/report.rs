use std::fmt;

use super::Rule;

/// One broken rule.
///
/// Its [`Display`](fmt::Display) form is the line
/// `<subject>: <offending>: <rule id> — <explanation>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct Violation {
    /// The crate name, or the source file path relative to the workspace
    /// root, that breaks the rule; the workspace root for workspace-wide
    /// findings.
    pub subject: String,
    /// What the subject must not have: a crate name, a dependency path such
    /// as `shop-domain -> foo -> tokio`, a cycle, or what a rule expected
    /// to find.
    pub offending: String,
    /// The rule that was broken.
    pub rule: Rule,
    /// The rule in words.
    pub explanation: String,
}

impl Violation {
    pub(crate) fn new(
        subject: impl Into<String>,
        offending: impl Into<String>,
        rule: Rule,
        explanation: impl Into<String>,
    ) -> Self {
        Violation {
            subject: subject.into(),
            offending: offending.into(),
            rule,
            explanation: explanation.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} — {}",
            self.subject, self.offending, self.rule, self.explanation
        )
    }
}

/// The outcome of a check: every violation found, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    violations: Vec<Violation>,
}

impl Report {
    pub(crate) fn new(mut violations: Vec<Violation>) -> Self {
        violations.sort();
        violations.dedup();
        Report { violations }
    }

    /// Every violation found, sorted by subject.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Whether no rule was broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// Panics listing every violation, one per line, unless the report is clean.
    #[track_caller]
    pub fn assert_clean(&self) {
        if !self.is_clean() {
            panic!(
                "{} architecture violation(s):\n{self}",
                self.violations.len()
            );
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for violation in &self.violations {
            writeln!(f, "{violation}")?;
        }
        Ok(())
    }
}
