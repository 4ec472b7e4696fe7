use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::AppState;

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// The process is up and serving requests.
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}
