//! The shop's HTTP API: routes that turn requests into commands and queries and
//! answers into JSON or problem+json. Nothing else happens here.
//!
//! Every route is registered with its OpenAPI description (utoipa-axum's
//! `routes!`), so the document served at `/openapi.json` and browsable at
//! `/docs` is generated from the same attributes the routes are.

mod admin;
mod catalog;
mod identity;
pub mod inventory;
mod orders;
mod reports;
pub mod wallet;
mod wishlists;

use std::sync::Arc;

use axum::Router;
use strata_app_api::application::Dispatcher;
use strata_app_api::http::auth::{Authenticator, TokenService};
use strata_app_api::http::openapi::Api;
use strata_app_api::http::{HttpSettings, Operations};
use strata_domain::ports::RateLimiter;
use utoipa::openapi::{InfoBuilder, OpenApiBuilder, Tag};
use utoipa_axum::router::OpenApiRouter;

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

    /// The same tokens over another context's `dispatcher`.
    #[must_use]
    pub fn over(&self, dispatcher: Dispatcher) -> Self {
        Self {
            dispatcher,
            tokens: Arc::clone(&self.tokens),
        }
    }
}

/// The shop's own routes (identity, catalog, wishlists, orders, reports and
/// administration), over the state the API is built with.
pub fn shop_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(identity::routes())
        .merge(catalog::routes())
        .merge(wishlists::routes())
        .merge(orders::routes())
        .merge(admin::routes())
        .merge(reports::routes())
}

/// `routes` ([`shop_routes`], and the routes of the contexts this process
/// hosts: [`inventory::routes`], [`wallet::routes`]) with the operational
/// routes, behind bearer-token authentication, the per-client request limit,
/// the standard HTTP layers and request metrics
/// (`strata_app_api::http::openapi::Api`); with the OpenAPI document it
/// serves.
pub fn router(
    state: AppState,
    routes: OpenApiRouter<AppState>,
    settings: HttpSettings,
    limiter: Option<Arc<dyn RateLimiter>>,
    operations: Operations,
) -> (Router, utoipa::openapi::OpenApi) {
    let authenticator = Arc::new(Authenticator::new().with_tokens(Arc::clone(&state.tokens)));
    Api::new(description())
        .routes(routes)
        .body_limit(MAX_BODY_BYTES)
        .authenticated_by(authenticator)
        .build(state, settings, limiter, operations)
}

/// The internal API: the branches other services call (`branches`, from
/// [`inventory::branch_routes`] and [`wallet::branch_routes`]) with the
/// operational routes, behind bearer-token authentication and the standard
/// HTTP layers, but no per-client request limit: its clients are the shop's
/// own services, whose calls a limit meant for users would turn into retries.
/// Serve it on an address only those services reach.
pub fn internal_router(
    state: AppState,
    branches: OpenApiRouter<AppState>,
    settings: HttpSettings,
    operations: Operations,
) -> Router {
    let authenticator = Arc::new(Authenticator::new().with_tokens(Arc::clone(&state.tokens)));
    let description = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Strata sample shop: internal branches")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .build();
    Api::new(description)
        .routes(branches)
        .body_limit(MAX_BODY_BYTES)
        .authenticated_by(authenticator)
        .build(state, settings, None, operations)
        .0
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
            tag(
                "orders",
                "A customer's orders, placed across the inventory and the wallet",
            ),
            tag("wallet", "A customer's money"),
            tag("inventory", "Stock of each product"),
            tag("health", "Liveness and readiness probes"),
            tag("operations", "Metrics for monitoring"),
            tag("documentation", "This document and its browsable page"),
        ]))
        .build()
}
