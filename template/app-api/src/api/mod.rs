//! The HTTP API: routes that turn requests into commands and queries, and
//! answers into JSON or problem+json. Nothing else happens here.

mod health;
mod tasks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use strata_app_api::application::Dispatcher;
use strata_app_api::http::{HttpSettings, with_problem_fallbacks, with_standard_layers};

/// The largest request body the API reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every request handler shares: the dispatcher that runs use cases.
#[derive(Debug, Clone)]
pub struct AppState {
    use_cases: Dispatcher,
}

impl AppState {
    /// State over the application's use cases.
    #[must_use]
    pub fn new(use_cases: Dispatcher) -> Self {
        Self { use_cases }
    }
}

/// Every route of the API, inside Strata's standard HTTP layers.
pub fn router(state: AppState, http: HttpSettings) -> Router {
    let routes = Router::new()
        .merge(health::routes())
        .nest("/api/tasks", tasks::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    with_standard_layers(with_problem_fallbacks(routes).with_state(state), http)
}
