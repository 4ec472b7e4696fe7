//! The shop's HTTP API: routes that turn requests into commands and queries and
//! answers into JSON or problem+json. Nothing else happens here.
//!
//! Every route is registered with its OpenAPI description (utoipa-axum's
//! `routes!`), so the document served at `/openapi.json` and browsable at
//! `/docs` is generated from the same attributes the routes are.

mod admin;
mod catalog;
mod identity;
mod reports;
mod wishlists;

use std::sync::Arc;

use axum::Router;
use strata_app_api::application::Dispatcher;
use strata_app_api::http::auth::{Authenticator, TokenService};
use strata_app_api::http::openapi::Api;
use strata_app_api::http::{HttpSettings, Operations};
use strata_domain::ports::RateLimiter;
use utoipa::openapi::{InfoBuilder, OpenApiBuilder, Tag};

/// The largest request body the API reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every request handler shares: the dispatcher that runs use cases, and
/// the service that signs and checks access tokens.
#[derive(Debug, Clone)]
pub struct AppState {
    dispatcher: Dispatcher,
    tokens: Arc<TokenService>,
}

impl axum::extract::FromRef<AppState> for Dispatcher {
    fn from_ref(state: &AppState) -> Self {
        state.dispatcher.clone()
    }
}

impl AppState {
    /// State over `dispatcher`, issuing access tokens with `tokens`.
    #[must_use]
    pub fn new(dispatcher: Dispatcher, tokens: Arc<TokenService>) -> Self {
        Self { dispatcher, tokens }
    }
}

/// Every route of the API, with the operational routes, behind bearer-token
/// authentication, the per-client request limit, the standard HTTP layers and
/// request metrics (`strata_app_api::http::openapi::Api`); with the OpenAPI
/// document it serves.
pub fn router(
    state: AppState,
    settings: HttpSettings,
    limiter: Option<Arc<dyn RateLimiter>>,
    operations: Operations,
) -> (Router, utoipa::openapi::OpenApi) {
    let authenticator = Arc::new(Authenticator::new().with_tokens(Arc::clone(&state.tokens)));
    Api::new(description())
        .routes(identity::routes())
        .routes(catalog::routes())
        .routes(wishlists::routes())
        .routes(admin::routes())
        .routes(reports::routes())
        .body_limit(MAX_BODY_BYTES)
        .authenticated_by(authenticator)
        .build(state, settings, limiter, operations)
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
                .title("Strata sample shop")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The sample shop's API. Every error is `application/problem+json` with a \
                     stable `code`.",
                ))
                .build(),
        )
        .tags(Some([
            tag("catalog", "Products: anyone reads, administrators write"),
            tag("identity", "Accounts and sessions"),
            tag("wishlists", "A customer's own wishlists"),
            tag("health", "Liveness and readiness probes"),
            tag("operations", "Metrics for monitoring"),
            tag("documentation", "This document and its browsable page"),
        ]))
        .build()
}
