//! Strata's backend-for-frontend kit, for server-rendered pages over app-api:
//!
//! * [`Upstream`]: a typed client — per-call timeouts, retries only for calls
//!   that cannot act twice (safe methods, or an `Idempotency-Key`), the
//!   browser request's id and `traceparent` forwarded, a bearer token (the
//!   user's or a service's) attached, problem details read.
//! * [`session`]: the browser's session in an `HttpOnly`, `SameSite=Lax`
//!   cookie (`Secure` unless switched off for plain-HTTP development), the
//!   tokens kept and refreshed on the server, a CSRF token required on every
//!   unsafe request.
//! * [`HotCache`]: read models served stale while revalidating, dropped when
//!   the data they came from changes.
//! * [`Section`]: a page's parts loaded at once, each failing alone.
//! * [`html`]: escaping and a page shell.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_bff::UpstreamError> {
//! use axum::http::HeaderMap;
//! use strata_bff::{Call, Origin, Upstream};
//!
//! let api = Upstream::new("http://127.0.0.1:8080")?;
//! // In a handler, take `Origin` as an extractor instead.
//! let origin = Origin::from_headers(&HeaderMap::new());
//! let health: serde_json::Value = api.get_json(&origin, "/health").await?;
//! let order = api
//!     .send::<serde_json::Value>(
//!         &origin,
//!         Call::post("/api/orders", serde_json::json!({"items": []}))
//!             .bearer("the user's access token")
//!             .idempotency_key("checkout-1"),
//!     )
//!     .await?;
//! # Ok(()) }
//! ```

mod cache;
pub mod html;
mod section;
pub mod session;
mod upstream;

pub use cache::HotCache;
pub use section::Section;
pub use session::{Session, SessionSettings, Sessions, Tokens, session_layer};
pub use upstream::{
    Answer, Call, CallPolicy, FieldProblem, Origin, Problem, Upstream, UpstreamError,
};
