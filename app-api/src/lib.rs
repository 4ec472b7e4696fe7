//! Strata's application layer and its HTTP face.
//!
//! * [`application`] — use-case traits ([`application::Command`],
//!   [`application::Query`] and their handlers) and the one error type the
//!   application speaks, [`application::AppError`]. It knows no HTTP and no SQL.
//! * `http` (feature `http`, on by default) — the axum kit: every
//!   [`application::AppError`] mapped to RFC 9457 problem+json in one place, and
//!   extractors whose rejections are problem+json too, so no client input can make
//!   a server answer 500.
//!
//! ```
//! use async_trait::async_trait;
//! use strata_app_api::application::{AppError, Query, QueryHandler};
//!
//! struct Greeting { name: String }
//! impl Query for Greeting {
//!     type Output = String;
//!     const NAME: &'static str = "greeting";
//! }
//!
//! struct Greeter;
//! #[async_trait]
//! impl QueryHandler<Greeting> for Greeter {
//!     async fn ask(&self, query: Greeting) -> Result<String, AppError> {
//!         if query.name.is_empty() {
//!             return Err(AppError::not_found("person", ""));
//!         }
//!         Ok(format!("hello, {}", query.name))
//!     }
//! }
//! ```

pub mod application;
#[cfg(feature = "http")]
pub mod http;
