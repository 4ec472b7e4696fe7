use std::error::Error as StdError;

use strata_domain::{DomainError, RepositoryError, UnitOfWorkError, ValidationFailure};

/// Why a use case did not succeed; the one error type of the application layer.
///
/// Every variant but [`AppError::Internal`] is the client's to read; an internal
/// error's cause is for the log only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input broke one or more rules; one entry per field.
    #[error("invalid input: {0}")]
    Invalid(ValidationFailure),
    /// The use case needs a signed-in caller and there is none (or the credentials
    /// were not acceptable).
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but may not do this.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The request itself is malformed in a way no field names (a bad header).
    #[error("{message}")]
    BadRequest {
        /// A stable machine-readable code, such as `idempotency_key_missing`.
        code: &'static str,
        /// A sentence for a person.
        message: String,
    },
    /// Too many attempts; try again after the given number of seconds.
    #[error("too many requests; retry after {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// What the use case needed does not exist.
    #[error("{kind} {id} was not found")]
    NotFound {
        /// The kind of thing, such as `product`.
        kind: &'static str,
        /// The id that was looked for.
        id: String,
    },
    /// The request clashes with the current state: a stale version, a duplicate.
    #[error("{message}")]
    Conflict {
        /// A stable machine-readable code, such as `stale_version`.
        code: &'static str,
        /// A sentence for a person.
        message: String,
    },
    /// A value that must be unique is held by another resource: a conflict
    /// naming the field, so a client can point at it.
    #[error("{message}")]
    Taken {
        /// A stable machine-readable code, such as `sku_taken`.
        code: &'static str,
        /// The field whose value is taken, such as `sku`.
        field: String,
        /// A sentence for a person.
        message: String,
    },
    /// A business rule refused the request because of what is stored now (a
    /// wishlist that is full, a price in another currency than the product's):
    /// 409, like every refusal that depends on state rather than on the input
    /// alone.
    #[error("{message}")]
    RuleViolated {
        /// A stable machine-readable code, such as `currency_mismatch`.
        code: &'static str,
        /// A sentence for a person.
        message: String,
    },
    /// The service is overloaded or a resource it needs is busy (no database
    /// connection free in time, a lock not granted); nothing was done, and the
    /// same request may succeed after the given number of seconds. The cause goes
    /// to the log.
    #[error("service busy; retry after {retry_after_secs} s")]
    Unavailable {
        /// A stable machine-readable code, such as `storage_busy`.
        code: &'static str,
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
        /// Why, for the log.
        #[source]
        cause: Box<dyn StdError + Send + Sync>,
    },
    /// Asked too early: the same request will be answered after the given
    /// number of seconds (425, with `Retry-After`) — a cancel that must wait
    /// until its try can no longer arrive.
    #[error("{message}")]
    TooEarly {
        /// A stable machine-readable code, such as `try_may_still_arrive`.
        code: &'static str,
        /// A sentence for a person.
        message: String,
        /// Seconds until asking again may be answered.
        retry_after_secs: u64,
    },
    /// Something failed that the client cannot fix; the cause goes to the log.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl AppError {
    /// The stable machine-readable code clients and logs see.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "validation_failed",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { code, .. }
            | Self::Taken { code, .. }
            | Self::RuleViolated { code, .. }
            | Self::BadRequest { code, .. }
            | Self::TooEarly { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::Internal(_) => "internal_error",
        }
    }

    /// `kind` `id` does not exist.
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// A failure the client cannot fix, caused by `error`.
    pub fn internal(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

/// An error and all its causes on one line: `outer: cause: root cause`.
#[must_use]
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    use std::fmt::Write as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

impl From<ValidationFailure> for AppError {
    fn from(failure: ValidationFailure) -> Self {
        Self::Invalid(failure)
    }
}

impl From<DomainError> for AppError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid(failure) => Self::Invalid(failure),
            DomainError::RuleViolated { code, message } => Self::RuleViolated { code, message },
        }
    }
}

impl From<RepositoryError> for AppError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Conflict { .. } => Self::Conflict {
                code: "stale_version",
                message: error.to_string(),
            },
            RepositoryError::Duplicate { key, .. } => Self::Taken {
                code: "duplicate",
                field: key.to_owned(),
                message: error.to_string(),
            },
            RepositoryError::NotFound { kind, id } => Self::NotFound { kind, id },
            RepositoryError::Busy(_) => Self::busy(error),
            RepositoryError::Storage(_) => Self::Internal(Box::new(error)),
        }
    }
}

impl From<UnitOfWorkError> for AppError {
    fn from(error: UnitOfWorkError) -> Self {
        match error {
            UnitOfWorkError::Busy(_) => Self::busy(error),
            _ => Self::Internal(Box::new(error)),
        }
    }
}

impl AppError {
    /// The storage was too busy to answer in time: 503, retry in a second.
    fn busy(cause: impl StdError + Send + Sync + 'static) -> Self {
        Self::Unavailable {
            code: "storage_busy",
            retry_after_secs: 1,
            cause: Box::new(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use strata_domain::Version;

    use super::*;

    #[test]
    fn a_stale_write_is_a_conflict_the_client_can_act_on() {
        let error = AppError::from(RepositoryError::Conflict {
            kind: "product",
            id: "42".into(),
            expected: Version::new(3),
        });
        assert!(matches!(
            error,
            AppError::Conflict {
                code: "stale_version",
                ..
            }
        ));
    }

    #[test]
    fn busy_storage_is_a_503_to_retry_never_an_internal_error() {
        for error in [
            AppError::from(RepositoryError::Busy(Box::new(std::io::Error::other(
                "pool timed out",
            )))),
            AppError::from(UnitOfWorkError::Busy(Box::new(std::io::Error::other(
                "database is locked",
            )))),
        ] {
            let AppError::Unavailable {
                code,
                retry_after_secs,
                ..
            } = &error
            else {
                panic!("busy storage must be Unavailable, not {error:?}");
            };
            assert_eq!((*code, *retry_after_secs), ("storage_busy", 1));
        }
    }

    #[test]
    fn a_storage_failure_is_internal_and_keeps_its_cause() {
        let io = std::io::Error::other("disk on fire");
        let error = AppError::from(RepositoryError::storage(io));
        let AppError::Internal(cause) = &error else {
            panic!("storage failures are internal");
        };
        let root = cause.source().map(ToString::to_string);
        assert_eq!(root.as_deref(), Some("disk on fire"));
    }
}
