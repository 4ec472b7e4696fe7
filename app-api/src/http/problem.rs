use std::error::Error as StdError;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strata_domain::FieldViolation;

use crate::application::{AppError, error_chain};

/// The media type of an RFC 9457 problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document with a stable machine-readable `code` and, for
/// validation failures, one entry per invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    code: String,
    #[serde(flatten)]
    more: Box<More>,
}

/// What only some problems carry, kept apart so a problem stays small to pass
/// around.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct More {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldViolation>,
    /// Members particular to this problem (RFC 9457 extension members).
    #[serde(flatten)]
    extensions: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Problem {
    /// A problem with `status` and the stable `code`; the title is the status's
    /// reason phrase, as RFC 9457 asks when the type is `about:blank`.
    pub fn new(status: StatusCode, code: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: None,
            code: code.into(),
            more: Box::default(),
        }
    }

    /// The same problem with an extension member `name` (RFC 9457 §3.2), such
    /// as the state of each dependency a readiness check found down. A name the
    /// problem's own members use is ignored.
    #[must_use]
    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        if !matches!(
            name,
            "type" | "title" | "status" | "detail" | "code" | "errors" | "instance"
        ) {
            self.more.extensions.insert(name.to_owned(), value);
        }
        self
    }

    /// The same problem with a sentence explaining this occurrence.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The same problem listing what was wrong with each field.
    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldViolation>) -> Self {
        self.more.errors = errors;
        self
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// A 500 that tells the client nothing about the cause; the cause is logged
    /// here, for failures that happen outside a use case.
    pub fn internal(cause: &(dyn StdError + 'static)) -> Self {
        tracing::error!(error = %error_chain(cause), "request failed with an internal error");
        Self::internal_error()
    }

    fn internal_error() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            .with_detail("the server could not complete the request")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// The one place where application errors become HTTP answers. Internal errors
/// were logged, with their cause, by the logging middleware; the client learns
/// nothing of the cause.
impl From<&AppError> for Problem {
    fn from(error: &AppError) -> Self {
        let status = match error {
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } | AppError::Taken { .. } | AppError::RuleViolated { .. } => {
                StatusCode::CONFLICT
            }
            AppError::TooEarly { .. } => StatusCode::TOO_EARLY,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => return Self::internal_error(),
        };
        let problem = Self::new(status, error.code());
        match error {
            AppError::Invalid(failure) => problem
                .with_detail("the request has invalid fields")
                .with_errors(failure.violations().to_vec()),
            AppError::Taken { field, message, .. } => problem
                .with_detail(message.clone())
                .with_errors(vec![FieldViolation::new(
                    field.clone(),
                    "taken",
                    message.clone(),
                )]),
            _ => problem.with_detail(error.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = Problem::from(&self).into_response();
        match self {
            Self::Unauthenticated => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests { retry_after_secs }
            | Self::TooEarly {
                retry_after_secs, ..
            }
            | Self::Unavailable {
                retry_after_secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// Adds problem+json answers for unknown paths (404) and unsupported methods (405).
pub fn with_problem_fallbacks<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not_found").with_detail("no resource at this path")
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
                .with_detail("this resource does not support the request's method")
        })
}

#[cfg(test)]
mod tests {
    use strata_domain::ValidationFailure;

    use super::*;

    fn body(problem: &Problem) -> serde_json::Value {
        serde_json::to_value(problem).expect("serializable")
    }

    #[test]
    fn validation_failures_list_each_field() {
        let failure = ValidationFailure::new(vec![
            FieldViolation::new("sku", "format", "bad"),
            FieldViolation::new("name", "length", "empty"),
        ]);
        let problem = Problem::from(&AppError::Invalid(failure));
        let json = body(&problem);
        assert_eq!(json["status"], 422);
        assert_eq!(json["code"], "validation_failed");
        assert_eq!(json["errors"][0]["field"], "name");
        assert_eq!(json["errors"][1]["field"], "sku");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = AppError::internal(std::io::Error::other("password=hunter2 leaked"));
        let json = body(&Problem::from(&error));
        assert_eq!(json["status"], 500);
        assert!(!json.to_string().contains("hunter2"));
    }

    #[test]
    fn a_busy_service_answers_503_with_retry_after_and_hides_the_cause() {
        let error = AppError::Unavailable {
            code: "storage_busy",
            retry_after_secs: 2,
            cause: Box::new(std::io::Error::other("pool of db-7.internal timed out")),
        };
        let problem = body(&Problem::from(&error));
        assert_eq!(problem["code"], "storage_busy");
        assert!(!problem.to_string().contains("db-7"), "{problem}");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(2_u64))
        );
    }

    #[test]
    fn conflicts_keep_their_code() {
        let error = AppError::Conflict {
            code: "stale_version",
            message: "changed".into(),
        };
        let problem = Problem::from(&error);
        assert_eq!(problem.status(), StatusCode::CONFLICT);
        assert_eq!(problem.code(), "stale_version");
    }
}
