//! The HTTP face of the application: problem+json errors and extractors whose
//! rejections are problem+json too, the standard layers, per-client rate
//! limiting, liveness and readiness, (feature `auth`) authentication,
//! (feature `metrics`) request metrics and `/metrics`, and (feature `openapi`)
//! the OpenAPI document and docs page.

mod access;
#[cfg(feature = "auth")]
pub mod auth;
mod client_address;
mod conditional;
#[cfg(feature = "openapi")]
mod documented;
mod extract;
pub mod health;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "openapi")]
pub mod openapi;
mod problem;
mod rate_limit;
mod request_scope;
mod server;

pub use access::{MayAsk, MayExecute};
pub use client_address::{ForwardedHeader, TrustedProxies, client_address};
pub use conditional::with_etags;
#[cfg(feature = "openapi")]
pub use documented::DocumentedJson;
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use problem::{PROBLEM_JSON, Problem, with_problem_fallbacks};
pub use rate_limit::rate_limit_by_client;
pub use request_scope::{
    HttpSettings, IDEMPOTENCY_KEY, REQUEST_ID, TRACEPARENT, with_standard_layers,
};
pub use server::{ConnectionLimits, serve};

/// What the operational routes report on: the readiness checks behind
/// `/health/ready`, and the metrics behind `/metrics`.
#[cfg(feature = "metrics")]
#[derive(Debug, Clone, Default)]
pub struct Operations {
    /// The dependencies readiness checks.
    pub readiness: health::Readiness,
    /// The registry requests and use cases are recorded in.
    pub metrics: crate::metrics::Metrics,
}
