//! The middleware every use case runs through, and the one place their order is
//! declared: [`standard`].

mod authorization;
mod logging;
mod transaction;
mod validation;

use std::sync::Arc;

pub use authorization::Authorization;
pub use logging::Logging;
use strata_domain::UnitOfWork;
pub use transaction::Transactional;
pub use validation::Validation;

use super::Middleware;

/// The standard chain, outermost first:
///
/// 1. [`Logging`] — outermost, so it times and reports every outcome, including
///    rejections by the middleware after it.
/// 2. [`Authorization`] — before validation, so a caller who may not run the use
///    case learns nothing about what valid input would look like.
/// 3. [`Validation`] — before the transaction, so invalid input never opens one.
/// 4. [`Transactional`] — innermost, so the unit of work spans exactly the
///    handler's business step.
#[must_use]
pub fn standard(unit_of_work: Arc<dyn UnitOfWork>) -> Vec<Arc<dyn Middleware>> {
    vec![
        Arc::new(Logging),
        Arc::new(Authorization),
        Arc::new(Validation),
        Arc::new(Transactional::new(unit_of_work)),
    ]
}
