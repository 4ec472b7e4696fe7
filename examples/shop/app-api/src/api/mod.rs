//! The shop's HTTP API: routes that turn requests into commands and queries and
//! answers into JSON or problem+json. Nothing else happens here.

mod catalog;
mod health;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use strata_app_api::http::with_problem_fallbacks;

use crate::application::catalog::Catalog;

/// The largest request body the API reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The application's handlers, shared by every request.
#[derive(Debug, Clone)]
pub struct AppState {
    catalog: Arc<Catalog>,
}

impl AppState {
    /// State over the catalog's handlers.
    #[must_use]
    pub fn new(catalog: Catalog) -> Self {
        Self {
            catalog: Arc::new(catalog),
        }
    }
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(health::routes())
        .nest("/api/products", catalog::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    with_problem_fallbacks(routes).with_state(state)
}
