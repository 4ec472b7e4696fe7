//! The HTTP face of the application: problem+json errors and extractors whose
//! rejections are problem+json too, the standard layers, per-client rate
//! limiting, and (feature `auth`) authentication.

#[cfg(feature = "auth")]
pub mod auth;
mod extract;
mod problem;
mod rate_limit;
mod request_scope;

pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use problem::{PROBLEM_JSON, Problem, with_problem_fallbacks};
pub use rate_limit::rate_limit_by_client;
pub use request_scope::{
    HttpSettings, IDEMPOTENCY_KEY, REQUEST_ID, TRACEPARENT, serve, with_standard_layers,
};
