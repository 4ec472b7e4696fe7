//! A JSON body held to the schema the OpenAPI document states for it.
//!
//! The document is generated from the body type's `ToSchema` derive; the same
//! schema, compiled once per type, checks every body before it is read. So the
//! document states every rule a body must meet — lengths, ranges, patterns,
//! enums, required fields, unknown fields refused — and the server refuses
//! exactly what it states: what the schema allows reaches the use case, and
//! what it forbids is answered 422 naming each field, never accepted.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use strata_domain::FieldViolation;
use utoipa::ToSchema;

use super::extract::field_problem;
use super::{ApiJson, Problem};

/// A JSON body checked against `T`'s OpenAPI schema, then read as `T`.
/// Rejections are problem+json: 400 for a body that is not JSON (as
/// [`ApiJson`]), 413 for one too large, 422 `validation_failed` with one entry
/// per rule broken.
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentedJson<T>(pub T);

impl<S, T> FromRequest<S> for DocumentedJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + ToSchema + 'static,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiJson(mut value) = ApiJson::<Value>::from_request(request, state).await?;
        let schema = schema_of::<T>();
        let validator = schema.as_ref().as_ref().map_err(|reason| {
            tracing::error!(body = std::any::type_name::<T>(), reason = %reason, "a body's schema does not compile");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
                .with_detail("the server could not complete the request")
        })?;
        let violations = violations(validator.iter_errors(&value));
        if !violations.is_empty() {
            return Err(
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                    .with_detail("the request has invalid fields")
                    .with_errors(violations),
            );
        }
        // JSON Schema counts 37.0 as an integer; so does the reading that follows.
        integral_as_integers(&mut value);
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|error| {
                let path = error.path().to_string();
                field_problem(&path, &error.into_inner())
            })
    }
}

/// Numbers written with a fraction of zero (`37.0`) as the integers they are,
/// as JSON Schema's `integer` takes them; a field typed as a float reads an
/// integer just as well.
fn integral_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                let integral = if float >= 0.0 && float <= u64::MAX as f64 {
                    Some(serde_json::Number::from(float as u64))
                } else if float < 0.0 && float >= i64::MIN as f64 {
                    Some(serde_json::Number::from(float as i64))
                } else {
                    None
                };
                if let Some(integral) = integral {
                    *number = integral;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_as_integers),
        _ => {}
    }
}

type Compiled = Arc<Result<Validator, String>>;

static COMPILED: LazyLock<RwLock<HashMap<TypeId, Compiled>>> = LazyLock::new(RwLock::default);

/// `T`'s schema as the document serves it, compiled once.
fn schema_of<T: ToSchema + 'static>() -> Compiled {
    let id = TypeId::of::<T>();
    if let Some(compiled) = COMPILED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
    {
        return Arc::clone(compiled);
    }
    let compiled = Arc::new(compile(&document_of::<T>()));
    COMPILED
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(id)
        .or_insert(compiled)
        .clone()
}

/// `T`'s schema with the schemas it refers to beside it, where its references
/// (`#/components/schemas/Price`) find them.
pub(crate) fn document_of<T: ToSchema>() -> Value {
    let mut root = serde_json::to_value(T::schema()).unwrap_or(Value::Null);
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    let components: Map<String, Value> = nested
        .into_iter()
        .filter_map(|(name, schema)| Some((name, serde_json::to_value(schema).ok()?)))
        .collect();
    if let Value::Object(map) = &mut root {
        map.insert(
            "components".to_owned(),
            serde_json::json!({ "schemas": components }),
        );
    }
    root
}

fn compile(document: &Value) -> Result<Validator, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(document)
        .map_err(|error| error.to_string())
}

/// The most violations one answer lists.
const MOST_VIOLATIONS: usize = 50;

/// One entry per rule broken, naming the field and the rule, never the value.
fn violations<'a>(errors: impl Iterator<Item = ValidationError<'a>>) -> Vec<FieldViolation> {
    let mut found = Vec::new();
    for error in errors {
        let at = field_of(error.instance_path().as_str());
        let join = |name: &str| {
            let name: String = name.chars().take(64).collect();
            if at.is_empty() {
                name
            } else {
                format!("{at}.{name}")
            }
        };
        let whole = || {
            if at.is_empty() {
                "body".to_owned()
            } else {
                at.clone()
            }
        };
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                found.push(FieldViolation::new(join(name), "required", "is required"));
            }
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                for name in unexpected {
                    found.push(FieldViolation::new(
                        join(name),
                        "unknown_field",
                        "is not a field of this request",
                    ));
                }
            }
            kind => {
                let (code, message) = rule_of(kind);
                found.push(FieldViolation::new(whole(), code, message));
            }
        }
        if found.len() >= MOST_VIOLATIONS {
            found.truncate(MOST_VIOLATIONS);
            break;
        }
    }
    found
}

/// `/price/currency` as `price.currency`.
fn field_of(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|part| part.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn rule_of(kind: &ValidationErrorKind) -> (&'static str, String) {
    match kind {
        ValidationErrorKind::MinLength { limit } => {
            ("length", format!("must be at least {limit} characters"))
        }
        ValidationErrorKind::MaxLength { limit } => {
            ("length", format!("must be at most {limit} characters"))
        }
        ValidationErrorKind::Minimum { limit } => ("range", format!("must be at least {limit}")),
        ValidationErrorKind::Maximum { limit } => ("range", format!("must be at most {limit}")),
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            ("range", format!("must be more than {limit}"))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            ("range", format!("must be less than {limit}"))
        }
        ValidationErrorKind::MinItems { limit } => {
            ("length", format!("must hold at least {limit} items"))
        }
        ValidationErrorKind::MaxItems { limit } => {
            ("length", format!("must hold at most {limit} items"))
        }
        ValidationErrorKind::Pattern { pattern } => {
            ("pattern", format!("must match the pattern {pattern}"))
        }
        ValidationErrorKind::Enum { options } => ("enum", format!("must be one of {options}")),
        ValidationErrorKind::Constant { expected_value } => {
            ("enum", format!("must be {expected_value}"))
        }
        ValidationErrorKind::Format { format } => ("format", format!("must be a valid {format}")),
        ValidationErrorKind::Type { kind } => ("type", format!("expected {}", type_name(kind))),
        _ => ("invalid", "is not valid here".to_owned()),
    }
}

fn type_name(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(single) => single.to_string(),
        TypeKind::Multiple(several) => several
            .iter()
            .map(|one| one.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::header;
    use serde::Deserialize;

    use super::*;

    /// A price.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    struct Price {
        #[schema(minimum = 0, maximum = 1000)]
        amount_minor: i64,
        #[schema(pattern = "^[A-Z]{3}$")]
        #[allow(dead_code)]
        currency: String,
    }

    /// A product.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    struct Product {
        #[schema(min_length = 1, max_length = 5)]
        name: String,
        price: Price,
        #[allow(dead_code)]
        tags: Option<Vec<String>>,
    }

    async fn extract(body: &str) -> Result<Product, Problem> {
        let request = Request::builder()
            .method("POST")
            .uri("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .expect("valid request");
        DocumentedJson::<Product>::from_request(request, &())
            .await
            .map(|DocumentedJson(product)| product)
    }

    fn errors(problem: &Problem) -> Vec<(String, String)> {
        let json = serde_json::to_value(problem).expect("serializable");
        json["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|error| {
                (
                    error["field"].as_str().unwrap_or_default().to_owned(),
                    error["code"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_body_the_schema_allows_is_read() {
        let product = extract(r#"{"name":"Tea","price":{"amount_minor":5,"currency":"EUR"}}"#)
            .await
            .expect("allowed");
        assert_eq!(product.name, "Tea");
    }

    #[tokio::test]
    async fn every_rule_the_schema_states_is_enforced_naming_the_field() {
        let problem = extract(
            r#"{"name":"far too long","price":{"amount_minor":-1,"currency":"eur","extra":1},"colour":"red"}"#,
        )
        .await
        .expect_err("refused");
        assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mut found = errors(&problem);
        found.sort();
        assert_eq!(
            found,
            [
                ("colour".to_owned(), "unknown_field".to_owned()),
                ("name".to_owned(), "length".to_owned()),
                ("price.amount_minor".to_owned(), "range".to_owned()),
                ("price.currency".to_owned(), "pattern".to_owned()),
                ("price.extra".to_owned(), "unknown_field".to_owned()),
            ]
        );
        let text = serde_json::to_string(&problem).expect("serializable");
        assert!(
            !text.contains("far too long") && !text.contains("\"eur\""),
            "{text}"
        );
    }

    #[tokio::test]
    async fn missing_fields_and_wrong_types_are_named() {
        let problem = extract(r#"{"price":{"amount_minor":"lots"},"tags":[1]}"#)
            .await
            .expect_err("refused");
        let mut found = errors(&problem);
        found.sort();
        assert_eq!(
            found,
            [
                ("name".to_owned(), "required".to_owned()),
                ("price.amount_minor".to_owned(), "type".to_owned()),
                ("price.currency".to_owned(), "required".to_owned()),
                ("tags.0".to_owned(), "type".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn a_whole_number_written_with_a_fraction_of_zero_is_an_integer() {
        let product = extract(r#"{"name":"Tea","price":{"amount_minor":37.0,"currency":"EUR"}}"#)
            .await
            .expect("37.0 is the integer 37");
        assert_eq!(product.price.amount_minor, 37);
        let problem = extract(r#"{"name":"Tea","price":{"amount_minor":37.5,"currency":"EUR"}}"#)
            .await
            .expect_err("37.5 is not");
        assert_eq!(
            errors(&problem),
            [("price.amount_minor".to_owned(), "type".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_still_400() {
        let problem = extract("{").await.expect_err("malformed");
        assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
    }
}
