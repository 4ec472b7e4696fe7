//! The HTTP face of the application: problem+json errors and extractors whose
//! rejections are problem+json too.

mod extract;
mod problem;
mod request_scope;

pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use problem::{PROBLEM_JSON, Problem, with_problem_fallbacks};
pub use request_scope::{
    HttpSettings, IDEMPOTENCY_KEY, REQUEST_ID, TRACEPARENT, serve, with_standard_layers,
};
