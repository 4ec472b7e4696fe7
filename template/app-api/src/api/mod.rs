//! The HTTP API: routes that turn requests into commands and queries, and
//! answers into JSON or problem+json. Nothing else happens here.
//!
//! Every route is registered with its OpenAPI description (utoipa-axum's
//! `routes!`), so the document served at `/openapi.json` and browsable at
//! `/docs` is generated from the same attributes the routes are.

mod tasks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use strata_app_api::application::Dispatcher;
use strata_app_api::http::health::{self, Readiness};
use strata_app_api::http::metrics::{self as request_metrics, with_request_metrics};
use strata_app_api::http::openapi;
use strata_app_api::http::{
    HttpSettings, rate_limit_by_client, with_problem_fallbacks, with_standard_layers,
};
use strata_app_api::metrics::Metrics;
use strata_domain::ports::RateLimiter;
use utoipa::openapi::{InfoBuilder, OpenApiBuilder, Tag};
use utoipa_axum::router::OpenApiRouter;

use crate::settings::project_name;

/// The largest request body the API reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every request handler shares: the dispatcher that runs use cases.
#[derive(Debug, Clone)]
pub struct AppState {
    dispatcher: Dispatcher,
}

impl AppState {
    /// State over the application's use cases.
    #[must_use]
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

/// What the operational routes report on: the readiness checks behind
/// `/health/ready`, and the metrics behind `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Operations {
    /// The dependencies readiness checks.
    pub readiness: Readiness,
    /// The registry requests and use cases are recorded in.
    pub metrics: Metrics,
}

/// Every route of the API, behind a per-client request limit, the standard HTTP
/// layers and request metrics; with the OpenAPI document it serves.
pub fn router(
    state: AppState,
    settings: HttpSettings,
    limiter: Arc<dyn RateLimiter>,
    operations: Operations,
) -> (Router, utoipa::openapi::OpenApi) {
    let routes = OpenApiRouter::with_openapi(description())
        .merge(health::api_routes(operations.readiness))
        .merge(request_metrics::api_routes(operations.metrics.clone()))
        .merge(tasks::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let (routes, document) = openapi::finish(routes);
    let routes = with_problem_fallbacks(routes).with_state(state);
    // Metrics sit outside everything, so requests refused by the limit or the
    // timeout are counted too.
    let router = with_standard_layers(rate_limit_by_client(routes, limiter), settings);
    (with_request_metrics(router, operations.metrics), document)
}

fn description() -> utoipa::openapi::OpenApi {
    let tag = |name: &str, description: &str| {
        let mut tag = Tag::new(name);
        tag.description = Some(description.to_owned());
        tag
    };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(project_name())
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Every error is `application/problem+json` with a stable `code`.",
                ))
                .build(),
        )
        .tags(Some([
            tag("tasks", "Things to do, open until completed"),
            tag("health", "Liveness and readiness probes"),
            tag("operations", "Metrics for monitoring"),
            tag("documentation", "This document and its browsable page"),
        ]))
        .build()
}
