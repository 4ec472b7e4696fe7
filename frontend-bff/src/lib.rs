//! Strata's backend-for-frontend kit: an [`Upstream`] client that calls app-api
//! over HTTP, and [`html`] helpers for pages rendered on the server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_bff::UpstreamError> {
//! use axum::http::HeaderMap;
//! use strata_bff::{Origin, Upstream};
//!
//! let api = Upstream::new("http://127.0.0.1:8080")?;
//! // In a handler, take `Origin` as an extractor instead.
//! let origin = Origin::from_headers(&HeaderMap::new());
//! let health: serde_json::Value = api.get_json(&origin, "/health").await?;
//! # Ok(()) }
//! ```

pub mod html;
mod upstream;

pub use upstream::{Origin, Upstream, UpstreamError};
