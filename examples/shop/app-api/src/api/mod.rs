//! The shop's HTTP API: routes that turn requests into commands and queries and
//! answers into JSON or problem+json. Nothing else happens here.

mod catalog;
mod health;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use strata_app_api::application::Dispatcher;
use strata_app_api::http::{HttpSettings, with_problem_fallbacks, with_standard_layers};

/// The largest request body the API reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every request handler shares: the dispatcher that runs use cases.
#[derive(Debug, Clone)]
pub struct AppState {
    dispatcher: Dispatcher,
}

impl AppState {
    /// State over `dispatcher`.
    #[must_use]
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

/// Every route of the API, wrapped in the standard HTTP layers.
pub fn router(state: AppState, settings: HttpSettings) -> Router {
    let routes = Router::new()
        .merge(health::routes())
        .nest("/api/products", catalog::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    with_standard_layers(with_problem_fallbacks(routes).with_state(state), settings)
}
