use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use strata_domain::FieldViolation;

use super::Problem;

/// A JSON request body. Unlike `axum::Json`, every rejection is problem+json:
/// 400 `unsupported_content_type` or `malformed_json`, 413 `payload_too_large`, and
/// 422 `validation_failed` naming the field whose value has the wrong type or is
/// missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&request) {
            return Err(
                Problem::new(StatusCode::BAD_REQUEST, "unsupported_content_type").with_detail(
                    "the body must be JSON, sent with `Content-Type: application/json`",
                ),
            );
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_problem)?;
        parse_json(&bytes).map(Self)
    }
}

fn is_json(request: &Request) -> bool {
    let Some(content_type) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            .with_detail("the request body is larger than this endpoint accepts")
    } else {
        Problem::new(StatusCode::BAD_REQUEST, "unreadable_body")
            .with_detail("the request body could not be read")
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        // A data error may come before a syntax error later in the body; the body
        // as a whole must be JSON before any field is blamed.
        match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(syntax) => malformed(&syntax),
            Ok(_) if inner.is_data() => field_problem(&path, &inner),
            Ok(_) => malformed(&inner),
        }
    })?;
    deserializer.end().map_err(|error| malformed(&error))?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "malformed_json").with_detail(format!(
        "the body is not valid JSON ({} at line {}, column {})",
        describe(error),
        error.line(),
        error.column()
    ))
}

pub(super) fn field_problem(path: &str, error: &serde_json::Error) -> Problem {
    // serde quotes the offending value ("invalid type: string \"hunter2\", expected
    // i64"); answer with what was expected only, so a secret sent in the wrong
    // field is never echoed back.
    let message = match describe(error).split_once(", expected ") {
        Some((_, expected)) => format!("expected {expected}"),
        None => describe(error),
    };
    // serde reports a missing field against the object that lacks it; name the
    // field itself so the client sees which one to add.
    let (field, code) = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(missing) if path == "." => (missing.to_owned(), "required"),
        Some(missing) => (format!("{path}.{missing}"), "required"),
        None if path == "." => ("body".to_owned(), "type"),
        None => (path.to_owned(), "type"),
    };
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .with_detail("the request has invalid fields")
        .with_errors(vec![FieldViolation::new(field, code, message)])
}

/// serde_json's message without its " at line N column M" suffix.
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// Path parameters. A value that does not parse (an id that is not an id) is a
/// 404 `not_found`: nothing can live at such a path.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(Problem::new(StatusCode::NOT_FOUND, "not_found")
                    .with_detail("no resource at this path"))
            }
            Err(other) => Err(Problem::internal(&other)),
        }
    }
}

/// Query-string parameters; a value of the wrong type is a 400 `invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| {
                Problem::new(StatusCode::BAD_REQUEST, "invalid_query")
                    .with_detail(rejection.body_text())
            })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Price {
        amount_minor: i64,
        currency: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        price: Price,
    }

    async fn extract(content_type: Option<&str>, body: &str) -> Result<Input, Problem> {
        let mut builder = Request::builder().method("POST").uri("/");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let request = builder
            .body(Body::from(body.to_owned()))
            .expect("valid request");
        ApiJson::<Input>::from_request(request, &())
            .await
            .map(|ApiJson(input)| input)
    }

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[tokio::test]
    async fn accepts_a_well_formed_body() {
        let input = extract(
            JSON,
            r#"{"name":"x","price":{"amount_minor":1,"currency":"EUR"}}"#,
        )
        .await
        .expect("valid");
        assert_eq!(input.name, "x");
    }

    #[tokio::test]
    async fn malformed_json_and_trailing_garbage_are_400() {
        for body in ["{\"name\":", "{} {}", "", "[1,"] {
            let problem = extract(JSON, body).await.expect_err("malformed");
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(problem.code(), "malformed_json");
        }
    }

    #[tokio::test]
    async fn a_missing_or_wrong_content_type_is_400() {
        for content_type in [None, Some("text/plain"), Some("application/xml")] {
            let problem = extract(content_type, "{}").await.expect_err("not json");
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
            assert_eq!(problem.code(), "unsupported_content_type");
        }
    }

    #[tokio::test]
    async fn a_value_of_the_wrong_type_names_its_field() {
        let body = r#"{"name":"x","price":{"amount_minor":"lots","currency":"EUR"}}"#;
        let problem = extract(JSON, body).await.expect_err("wrong type");
        let json = serde_json::to_value(&problem).expect("serializable");
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["field"], "price.amount_minor");
        assert_eq!(json["errors"][0]["code"], "type");
        assert_eq!(json["errors"][0]["message"], "expected i64");
        assert!(
            !json.to_string().contains("lots"),
            "the value is not echoed"
        );
    }

    #[tokio::test]
    async fn a_missing_field_is_named() {
        let problem = extract(JSON, r#"{"price":{"amount_minor":1}}"#)
            .await
            .expect_err("missing");
        let json = serde_json::to_value(&problem).expect("serializable");
        assert_eq!(json["errors"][0]["field"], "price.currency");
        assert_eq!(json["errors"][0]["code"], "required");
    }
}
