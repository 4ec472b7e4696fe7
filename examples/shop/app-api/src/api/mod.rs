//! The shop's HTTP API: routes that turn requests into commands and queries and
//! answers into JSON or problem+json. Nothing else happens here.

mod catalog;
mod health;
mod identity;
mod wishlists;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;
use strata_app_api::application::Dispatcher;

use strata_app_api::http::auth::{Authenticator, TokenService, with_authentication};
use strata_app_api::http::{
    HttpSettings, rate_limit_by_client, with_problem_fallbacks, with_standard_layers,
};
use strata_domain::ports::RateLimiter;

/// The largest request body the API reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every request handler shares: the dispatcher that runs use cases, and
/// the service that signs and checks access tokens.
#[derive(Debug, Clone)]
pub struct AppState {
    dispatcher: Dispatcher,
    tokens: Arc<TokenService>,
}

impl AppState {
    /// State over `dispatcher`, issuing access tokens with `tokens`.
    #[must_use]
    pub fn new(dispatcher: Dispatcher, tokens: Arc<TokenService>) -> Self {
        Self { dispatcher, tokens }
    }
}

/// Every route of the API, behind a per-client request limit, bearer-token
/// authentication and the standard HTTP layers.
pub fn router(state: AppState, settings: HttpSettings, limiter: Arc<dyn RateLimiter>) -> Router {
    let authenticator = Arc::new(Authenticator::new().with_tokens(Arc::clone(&state.tokens)));
    let routes = Router::new()
        .merge(health::routes())
        .nest("/api/auth", identity::routes())
        .nest("/api/products", catalog::routes())
        .nest("/api/wishlists", wishlists::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let routes = with_problem_fallbacks(routes).with_state(state);
    // The limit sits outside authentication so that guessing credentials is
    // throttled too.
    with_standard_layers(
        rate_limit_by_client(with_authentication(routes, authenticator), limiter),
        settings,
    )
}
