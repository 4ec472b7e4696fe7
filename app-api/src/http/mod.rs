//! The HTTP face of the application: problem+json errors and extractors whose
//! rejections are problem+json too.

mod extract;
mod problem;

pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use problem::{PROBLEM_JSON, Problem, with_problem_fallbacks};
