use crate::ValidationFailure;

/// Why a domain operation refused to happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input broke the rules of one or more value objects.
    #[error("invalid input: {0}")]
    Invalid(ValidationFailure),
    /// A business rule forbids the operation in the aggregate's current state.
    #[error("{message}")]
    RuleViolated {
        /// A stable machine-readable code, such as `insufficient_stock`.
        code: &'static str,
        /// A sentence for a person.
        message: String,
    },
}

impl From<ValidationFailure> for DomainError {
    fn from(failure: ValidationFailure) -> Self {
        Self::Invalid(failure)
    }
}
