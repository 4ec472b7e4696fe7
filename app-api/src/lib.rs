//! Strata's application layer and its HTTP face.
//!
//! * [`application`] — use cases ([`application::Command`],
//!   [`application::Query`] and their handlers), the [`application::Dispatcher`]
//!   that runs each through one ordered chain of middleware (logging, validation,
//!   unit of work), and the one error type the application speaks,
//!   [`application::AppError`]. It knows no HTTP and no SQL.
//! * `http` (feature `http`, on by default) — the axum kit: every
//!   [`application::AppError`] mapped to RFC 9457 problem+json in one place, and
//!   extractors whose rejections are problem+json too (no client input can make a
//!   server answer 500), and the standard layers: request id and W3C trace
//!   context, access log, timeout, CORS, compression and a panic guard.
//! * `telemetry` (feature `telemetry`, on by default) — log output, pretty or JSON;
//!   with feature `otel`, spans exported to an OpenTelemetry collector (OTLP/HTTP).
//! * `config` (feature `config`, on by default) — typed, layered configuration.
//! * `metrics` (feature `metrics`, on by default) — Prometheus metrics of use
//!   cases, the database pool and (with `http`) requests. `http::health` serves
//!   liveness and readiness; `http::openapi` (feature `openapi`) the OpenAPI
//!   document and (feature `openapi-ui`) a docs page.
//! * [`workers`] — background workers, started and stopped with the service,
//!   restarted with backoff, reported in readiness and metrics.
//!
//! ```
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use strata_app_api::application::middleware::{Logging, Validation};
//! use strata_app_api::application::{
//!     Access, AppError, Dispatcher, Query, QueryHandler, RequestContext, UseCaseContext,
//! };
//! use validator::Validate;
//!
//! #[derive(Validate)]
//! struct Greeting {
//!     #[validate(length(min = 1))]
//!     name: String,
//! }
//!
//! impl Query for Greeting {
//!     type Output = String;
//!     const NAME: &'static str = "greeting";
//!     const ACCESS: Access = Access::Anyone;
//! }
//!
//! struct Greeter;
//!
//! #[async_trait]
//! impl QueryHandler<Greeting> for Greeter {
//!     async fn ask(&self, _cx: &UseCaseContext, query: Greeting) -> Result<String, AppError> {
//!         Ok(format!("hello, {}", query.name))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let dispatcher = Dispatcher::builder()
//!     .middleware([Arc::new(Logging) as _, Arc::new(Validation) as _])
//!     .query::<Greeting>(Arc::new(Greeter))
//!     .build();
//! let request = RequestContext::background();
//!
//! let answer = dispatcher.ask(&request, Greeting { name: "Ada".into() }).await;
//! assert_eq!(answer.ok().as_deref(), Some("hello, Ada"));
//!
//! let refused = dispatcher.ask(&request, Greeting { name: String::new() }).await;
//! assert!(matches!(refused, Err(AppError::Invalid(_))));
//! # }
//! ```

pub mod application;
#[cfg(feature = "config")]
pub mod config;
#[cfg(feature = "http")]
pub mod http;
pub mod messaging;
#[cfg(feature = "metrics")]
pub mod metrics;
mod secret;
#[cfg(feature = "http")]
pub mod tcc;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod workers;

pub use secret::{REDACTED, Secret};

/// The `validator` whose `Validate` use-case inputs implement. Derive it without
/// depending on `validator` yourself — and so without pinning its version:
///
/// ```
/// use strata_app_api::validator::Validate;
///
/// #[derive(Validate)]
/// #[validate(crate = "strata_app_api::validator")]
/// struct Rename {
///     #[validate(length(min = 1, max = 100))]
///     name: String,
/// }
/// # let _ = Rename { name: "x".into() }.validate();
/// ```
pub use validator;

/// `bytes` in lowercase hexadecimal, two digits a byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn bytes_are_two_lowercase_digits_each() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        assert_eq!(super::hex(&[]), "");
    }
}
