//! Ports: the traits the domain needs from the outside, implemented by adapters in
//! infrastructure. No ORM, driver or web type appears in any signature.

mod outbox;
mod repository;
mod unit_of_work;

pub use outbox::{EventEnvelope, Outbox};
pub use repository::{Repository, RepositoryError};
pub use unit_of_work::{
    AfterCommit, BoxFuture, Outcome, Propagation, UnitOfWork, UnitOfWorkError, in_unit_of_work,
};

#[cfg(feature = "mock")]
pub use outbox::MockOutbox;
#[cfg(feature = "mock")]
pub use repository::MockRepository;
#[cfg(feature = "mock")]
pub use unit_of_work::MockUnitOfWork;
