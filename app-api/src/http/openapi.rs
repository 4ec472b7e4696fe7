//! An OpenAPI 3.1 document generated from the routes themselves, served at
//! `GET /openapi.json`, and (feature `openapi-ui`) a browsable page at `/docs`
//! whose assets are compiled into the binary.
//!
//! Register routes through utoipa-axum's `OpenApiRouter` with `routes!`, so each
//! route and its description come from the one `#[utoipa::path]` attribute and
//! cannot drift apart, then hand the router to [`finish`]. `finish` adds what
//! every Strata API shares, so handlers do not repeat it:
//!
//! * the [`Problem`] schema, and problem+json answers on every operation for
//!   what the standard layers answer anywhere: 429 (rate limit), 500, and 503
//!   (request timeout); 400, 413 and 422 on operations with a body; 401 and 403
//!   on operations that need a bearer token;
//! * the [`BEARER`] security scheme (HTTP bearer, JWT), which protected
//!   operations name with `security(("bearer" = []))`;
//! * the document's own routes.

use std::sync::Arc;

use axum::Router;
use axum::extract::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi, RefOr, ResponseBuilder, Responses,
    path::Operation,
    schema::{Components, Ref},
};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PROBLEM_JSON, Problem};

/// The name of the bearer-token security scheme.
pub const BEARER: &str = "bearer";

/// The schema of a [`Problem`]; a separate type only so the schema can be
/// derived, checked against `Problem`'s own serialization by a test.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
struct ProblemSchema {
    /// Always `about:blank`: `code` identifies the problem.
    #[schema(rename = "type", example = "about:blank")]
    kind: String,
    /// The status's reason phrase.
    #[schema(example = "Not Found")]
    title: String,
    /// The HTTP status.
    #[schema(example = 404)]
    status: u16,
    /// A sentence about this occurrence.
    detail: Option<String>,
    /// A stable, machine-readable code to switch on.
    #[schema(example = "not_found")]
    code: String,
    /// For `validation_failed`, one entry per invalid field.
    errors: Option<Vec<FieldViolationSchema>>,
}

/// One invalid field of a request.
#[derive(ToSchema)]
#[schema(as = FieldViolation)]
#[allow(dead_code)]
struct FieldViolationSchema {
    /// The field's path, dotted for nesting: `price.currency`.
    #[schema(example = "price.currency")]
    field: String,
    /// A stable reason: `required`, `type`, `length`, `range`, ...
    #[schema(example = "required")]
    code: String,
    /// A sentence for a person.
    message: String,
}

impl PartialSchema for Problem {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ProblemSchema::schema()
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Problem")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push(("FieldViolation".to_owned(), FieldViolationSchema::schema()));
    }
}

/// The schema of a page of `T`, as `strata_domain::Page<T>` serializes.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PageOf<T: ToSchema> {
    /// The items on this page, in listing order.
    items: Vec<T>,
    /// The 1-based page number.
    page: u32,
    /// The page size asked for.
    per_page: u32,
    /// How many items the whole listing holds.
    total: u64,
}

impl<T: ToSchema> std::fmt::Debug for PageOf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageOf").finish_non_exhaustive()
    }
}

/// The served document, serialized once.
#[derive(Debug, Clone)]
struct Served(Arc<str>);

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "documentation",
    operation_id = "openapi_document",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
async fn openapi_document(Extension(Served(json)): Extension<Served>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.to_string(),
    )
        .into_response()
}

/// Adds the document's routes and the shared parts to `router`'s document,
/// and returns the axum router with the document it serves.
pub fn finish<S: Clone + Send + Sync + 'static>(router: OpenApiRouter<S>) -> (Router<S>, OpenApi) {
    let router = router.routes(routes!(openapi_document));
    #[cfg(feature = "openapi-ui")]
    let router = router
        .routes(routes!(docs::docs_page))
        .routes(routes!(docs::docs_asset));
    let (router, mut document) = router.split_for_parts();
    add_shared_parts(&mut document);
    let json = document.to_json().unwrap_or_else(|error| {
        tracing::error!(error = %error, "the OpenAPI document could not be serialized");
        "{}".to_owned()
    });
    (router.layer(Extension(Served(json.into()))), document)
}

/// Applies `layers` (functions from router to router, such as
/// [`super::with_etags`]) to the routes of `router`, keeping their descriptions.
pub fn map_routes<S: Clone + Send + Sync + 'static>(
    router: OpenApiRouter<S>,
    layers: impl FnOnce(Router<S>) -> Router<S>,
) -> OpenApiRouter<S> {
    let (routes, document) = router.split_for_parts();
    let mut mapped = OpenApiRouter::from(layers(routes));
    *mapped.get_openapi_mut() = document;
    mapped
}

fn add_shared_parts(document: &mut OpenApi) {
    let components = document.components.get_or_insert_with(Components::new);
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    let mut nested = Vec::new();
    <Problem as ToSchema>::schemas(&mut nested);
    components.schemas.extend(nested);
    // Only a document whose operations ask for a bearer token describes one.
    let uses_bearer = document.paths.paths.values().any(|item| {
        [&item.get, &item.put, &item.post, &item.delete, &item.patch]
            .into_iter()
            .flatten()
            .any(|operation| {
                operation
                    .security
                    .as_ref()
                    .is_some_and(|all| !all.is_empty())
            })
    });
    let components = document.components.get_or_insert_with(Components::new);
    if uses_bearer {
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT access token, sent as `Authorization: Bearer <token>`",
                    ))
                    .build(),
            ),
        );
    }
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_standard_problems(operation);
        }
    }
}

/// The answers the standard layers may give on `operation`, where it does not
/// describe them itself.
fn add_standard_problems(operation: &mut Operation) {
    let mut standard = vec![
        (
            "429",
            "Too many requests from this client; see `Retry-After`",
        ),
        (
            "500",
            "The server failed; the cause is in its log, not here",
        ),
        ("503", "The request took longer than the server allows"),
    ];
    if operation.request_body.is_some() {
        standard.extend([
            ("400", "The body is not JSON, or not sent as JSON"),
            ("413", "The body is larger than the API accepts"),
            ("422", "A field is missing, of the wrong type, or invalid"),
        ]);
    }
    let takes = |location: &str| {
        operation.parameters.iter().flatten().any(|parameter| {
            serde_json::to_value(parameter).is_ok_and(|value| value["in"] == location)
        })
    };
    if takes("query") || takes("header") {
        standard.extend([
            (
                "400",
                "A query parameter is not of its type, or a header (such as \
                 `Idempotency-Key`) is malformed",
            ),
            ("422", "A query parameter is out of its range"),
        ]);
    }
    if operation
        .security
        .as_ref()
        .is_some_and(|all| !all.is_empty())
    {
        standard.extend([
            ("401", "No bearer token, or one that does not hold"),
            ("403", "The caller may not do this"),
        ]);
    }
    add_problems(&mut operation.responses, &standard);
}

fn add_problems(responses: &mut Responses, statuses: &[(&str, &str)]) {
    for (status, description) in statuses {
        responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| RefOr::T(problem_response(description)));
    }
}

/// A problem+json answer described by `description`.
#[must_use]
pub fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

#[cfg(feature = "openapi-ui")]
mod docs {
    use std::sync::{Arc, LazyLock};

    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::{IntoResponse, Redirect, Response};
    use utoipa_swagger_ui::Config;

    use crate::http::ApiPath;

    static CONFIG: LazyLock<Arc<Config<'static>>> =
        LazyLock::new(|| Arc::new(Config::new(["/openapi.json"])));

    /// The browsable API documentation.
    #[utoipa::path(
        get,
        path = "/docs",
        tag = "documentation",
        operation_id = "docs_page",
        responses((status = 308, description = "Redirects to the docs page, `/docs/index.html`")),
    )]
    pub(super) async fn docs_page() -> Redirect {
        // The page names its assets relative to itself, so it must be served
        // from inside `/docs/`.
        Redirect::permanent("/docs/index.html")
    }

    /// A file of the docs page (its HTML, scripts, styles and icons).
    #[utoipa::path(
        get,
        path = "/docs/{file}",
        tag = "documentation",
        operation_id = "docs_asset",
        params(("file" = String, Path, description = "The file's name, such as `index.html`")),
        responses(
            (status = 200, description = "The file", content_type = "text/html", body = String),
            (status = 404, description = "No such file", content_type = "application/problem+json", body = super::Problem),
        ),
    )]
    pub(super) async fn docs_asset(ApiPath(file): ApiPath<String>) -> Response {
        match utoipa_swagger_ui::serve(&file, Arc::clone(&CONFIG)) {
            Ok(Some(asset)) => {
                let content_type = HeaderValue::from_str(&asset.content_type)
                    .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
                (
                    [(header::CONTENT_TYPE, content_type)],
                    asset.bytes.into_owned(),
                )
                    .into_response()
            }
            Ok(None) => super::Problem::new(StatusCode::NOT_FOUND, "not_found")
                .with_detail("no resource at this path")
                .into_response(),
            Err(error) => super::Problem::internal(error.as_ref()).into_response(),
        }
    }
}

/// A service's whole HTTP API, assembled the same way in every service: its
/// routes with their descriptions, the operational routes (`/health/*`,
/// `/metrics`, `/openapi.json`, `/docs`), problem+json for unknown paths and
/// methods, a body limit, optionally authentication, the per-client request
/// limit, the standard layers and request metrics — in that order, innermost
/// first, so the limit also throttles credential guessing and the metrics count
/// every refusal.
#[cfg(feature = "metrics")]
pub struct Api<S> {
    routes: OpenApiRouter<S>,
    body_limit: usize,
    #[cfg(feature = "auth")]
    authenticator: Option<std::sync::Arc<crate::http::auth::Authenticator>>,
}

#[cfg(feature = "metrics")]
impl<S> std::fmt::Debug for Api<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

/// The largest request body an [`Api`] reads unless told otherwise; larger ones
/// get 413.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

#[cfg(feature = "metrics")]
impl<S: Clone + Send + Sync + 'static> Api<S> {
    /// An API described by `description` (title, version, tags), with no routes
    /// of its own yet.
    #[must_use]
    pub fn new(description: OpenApi) -> Self {
        Self {
            routes: OpenApiRouter::with_openapi(description),
            body_limit: DEFAULT_BODY_LIMIT,
            #[cfg(feature = "auth")]
            authenticator: None,
        }
    }

    /// Adds `routes` (registered with utoipa-axum's `routes!`).
    #[must_use]
    pub fn routes(mut self, routes: OpenApiRouter<S>) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// Reads bodies of up to `bytes`.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Finds each request's caller with `authenticator` (bearer tokens, API keys).
    #[cfg(feature = "auth")]
    #[must_use]
    pub fn authenticated_by(
        mut self,
        authenticator: std::sync::Arc<crate::http::auth::Authenticator>,
    ) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// The router to serve, over `state`, and the OpenAPI document it serves;
    /// each client's requests limited by `limiter`, when there is one.
    pub fn build(
        self,
        state: S,
        settings: crate::http::HttpSettings,
        limiter: Option<std::sync::Arc<dyn strata_domain::RateLimiter>>,
        operations: crate::http::Operations,
    ) -> (Router, OpenApi) {
        let routes = self
            .routes
            .merge(crate::http::health::api_routes(operations.readiness))
            .merge(crate::http::metrics::api_routes(operations.metrics.clone()))
            .layer(axum::extract::DefaultBodyLimit::max(self.body_limit));
        let (routes, document) = finish(routes);
        let routes = crate::http::with_problem_fallbacks(routes).with_state(state);
        #[cfg(feature = "auth")]
        let routes = match self.authenticator {
            Some(authenticator) => crate::http::auth::with_authentication(routes, authenticator),
            None => routes,
        };
        let routes = match limiter {
            Some(limiter) => crate::http::rate_limit_by_client(routes, limiter),
            None => routes,
        };
        let router = crate::http::with_standard_layers(routes, settings);
        (
            crate::http::metrics::with_request_metrics(router, operations.metrics),
            document,
        )
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde::Serialize;
    use strata_domain::{FieldViolation, Page, PageRequest};

    use super::*;

    fn properties<T: ToSchema>() -> Vec<String> {
        let json = serde_json::to_value(T::schema()).expect("serializable");
        let mut names: Vec<String> = json["properties"]
            .as_object()
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn field_names<T: Serialize>(value: &T) -> Vec<String> {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    fn sorted(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        names
    }

    #[test]
    fn the_problem_schema_describes_every_field_a_problem_has() {
        let problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            .with_detail("bad")
            .with_errors(vec![FieldViolation::new("name", "length", "too long")]);
        assert_eq!(sorted(field_names(&problem)), properties::<Problem>());
        assert_eq!(
            sorted(field_names(&FieldViolation::new("a", "b", "c"))),
            properties::<FieldViolationSchema>()
        );
    }

    #[test]
    fn the_page_schema_describes_every_field_a_page_has() {
        let page = Page::new(vec![1_u32], PageRequest::first(), 1);
        assert_eq!(sorted(field_names(&page)), properties::<PageOf<u32>>());
    }
}

/// Schemas for rules stated once: the functions a field's
/// `#[schema(schema_with = ...)]` or a parameter's `#[param(schema_with = ...)]`
/// names, built from the same constants the validation uses, so the document
/// and the checks cannot drift apart.
pub mod rules {
    use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};

    use crate::application::MAX_IDEMPOTENCY_KEY_LENGTH;

    /// Text of `min_chars` to `max_chars` characters, matching `pattern` when
    /// there is one.
    #[must_use]
    pub fn text(min_chars: u64, max_chars: u64, pattern: Option<&str>) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(usize::try_from(min_chars).ok())
            .max_length(usize::try_from(max_chars).ok())
            .pattern(pattern)
            .build()
    }

    /// A calendar date, `YYYY-MM-DD` (RFC 3339 `full-date`).
    #[must_use]
    pub fn date() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .min_length(Some(10))
            .max_length(Some(10))
            .build()
    }

    /// A whole number from `minimum` to `maximum`.
    #[must_use]
    pub fn integer(minimum: i64, maximum: i64) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(minimum))
            .maximum(Some(maximum))
            .build()
    }

    /// A 1-based page number.
    #[must_use]
    pub fn page_number() -> Object {
        integer(1, i64::from(u32::MAX))
    }

    /// A page size: 1 to `PageRequest::MAX_PER_PAGE`.
    #[must_use]
    pub fn page_size() -> Object {
        integer(1, i64::from(strata_domain::PageRequest::MAX_PER_PAGE))
    }

    /// An `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY_LENGTH`] visible ASCII
    /// characters.
    #[must_use]
    pub fn idempotency_key() -> Object {
        text(
            1,
            MAX_IDEMPOTENCY_KEY_LENGTH as u64,
            Some("^[\\x21-\\x7e]+$"),
        )
    }
}

/// The paging parameters every list takes, `?page=&per_page=`, described and
/// read the same way everywhere.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Paging {
    /// The 1-based page number (default 1).
    pub page: Option<u32>,
    /// The page size (default 20, at most 100).
    pub per_page: Option<u32>,
}

impl Paging {
    /// The page asked for, with the defaults filled in (not yet checked against
    /// the limits: the use case's validation does that).
    #[must_use]
    pub fn page_and_size(self) -> (u32, u32) {
        (
            self.page.unwrap_or(1),
            self.per_page
                .unwrap_or(strata_domain::PageRequest::DEFAULT_PER_PAGE),
        )
    }
}

impl utoipa::IntoParams for Paging {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        paging_parameters()
    }
}

fn paging_parameters() -> Vec<utoipa::openapi::path::Parameter> {
    vec![
        parameter(
            "page",
            ParameterIn::Query,
            "The 1-based page number (default 1).",
            false,
            rules::page_number(),
        ),
        parameter(
            "per_page",
            ParameterIn::Query,
            &format!(
                "The page size (default {}, at most {}).",
                strata_domain::PageRequest::DEFAULT_PER_PAGE,
                strata_domain::PageRequest::MAX_PER_PAGE
            ),
            false,
            rules::page_size(),
        ),
    ]
}

/// A parameter described by `description`, its values held to `schema`.
#[must_use]
pub fn parameter(
    name: &str,
    location: ParameterIn,
    description: &str,
    required: bool,
    schema: utoipa::openapi::schema::Object,
) -> utoipa::openapi::path::Parameter {
    utoipa::openapi::path::ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .description(Some(description))
        .required(if required {
            utoipa::openapi::Required::True
        } else {
            utoipa::openapi::Required::False
        })
        .schema(Some(schema))
        .build()
}

/// An optional `Idempotency-Key` header: a retry with the same key and body
/// answers the first result again instead of doing the work twice.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey;

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        idempotency_key_parameter(false)
    }
}

/// A required `Idempotency-Key` header (see [`IdempotencyKey`]); without it the
/// request is refused (400 `idempotency_key_missing`).
#[derive(Debug, Clone, Copy)]
pub struct RequiredIdempotencyKey;

impl utoipa::IntoParams for RequiredIdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        idempotency_key_parameter(true)
    }
}

fn idempotency_key_parameter(required: bool) -> Vec<utoipa::openapi::path::Parameter> {
    let description = format!(
        "{}the same key and body answer with the first result instead of doing the work \
         again; the same key with another body is refused (409 `idempotency_key_reused`). \
         1 to {} visible ASCII characters.",
        if required {
            "Required: "
        } else {
            "Makes a retry safe: "
        },
        crate::application::MAX_IDEMPOTENCY_KEY_LENGTH
    );
    vec![parameter(
        "Idempotency-Key",
        ParameterIn::Header,
        &description,
        required,
        rules::idempotency_key(),
    )]
}

/// The audit trail's filters and paging, `?principal=&use_case=&aggregate=&from=&to=&page=&per_page=`,
/// for an administrator's route that asks [`crate::application::audit::ReadAuditTrail`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditTrailParams {
    /// Run by this principal (user id or service name).
    pub principal: Option<String>,
    /// Of this use case, such as `catalog.change_product_price`.
    pub use_case: Option<String>,
    /// That changed the aggregate with this id.
    pub aggregate: Option<String>,
    /// Started at or after this time, in milliseconds since the Unix epoch.
    pub from: Option<i64>,
    /// Started before this time, in milliseconds since the Unix epoch.
    pub to: Option<i64>,
    /// The 1-based page number (default 1).
    pub page: Option<u32>,
    /// The page size (default 20, at most 100).
    pub per_page: Option<u32>,
}

impl utoipa::IntoParams for AuditTrailParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        use crate::application::audit::ReadAuditTrail;
        let mut parameters = vec![
            parameter(
                "principal",
                ParameterIn::Query,
                "Run by this principal (user id or service name).",
                false,
                rules::text(1, ReadAuditTrail::MAX_PRINCIPAL_CHARS, None),
            ),
            parameter(
                "use_case",
                ParameterIn::Query,
                "Of this use case, such as `catalog.change_product_price`.",
                false,
                rules::text(1, ReadAuditTrail::MAX_USE_CASE_CHARS, None),
            ),
            parameter(
                "aggregate",
                ParameterIn::Query,
                "That changed the aggregate with this id.",
                false,
                rules::text(1, ReadAuditTrail::MAX_AGGREGATE_CHARS, None),
            ),
            parameter(
                "from",
                ParameterIn::Query,
                "Started at or after this time, in milliseconds since the Unix epoch.",
                false,
                rules::integer(0, i64::MAX),
            ),
            parameter(
                "to",
                ParameterIn::Query,
                "Started before this time, in milliseconds since the Unix epoch.",
                false,
                rules::integer(0, i64::MAX),
            ),
        ];
        parameters.extend(paging_parameters());
        parameters
    }
}

impl From<AuditTrailParams> for crate::application::audit::ReadAuditTrail {
    fn from(params: AuditTrailParams) -> Self {
        let (page, per_page) = Paging {
            page: params.page,
            per_page: params.per_page,
        }
        .page_and_size();
        Self {
            principal: params.principal,
            use_case: params.use_case,
            aggregate: params.aggregate,
            from_ms: params.from,
            to_ms: params.to,
            page,
            per_page,
        }
    }
}
