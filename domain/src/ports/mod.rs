//! Ports: the traits the domain needs from the outside, implemented by adapters in
//! infrastructure. No ORM, driver or web type appears in any signature.

mod audit;
mod cache;
mod clock;
mod event_bus;
mod idempotency;
mod outbox;
mod rate_limiter;
mod repository;
mod tcc;
mod transactional_message;
mod unit_of_work;

pub use audit::{AggregateChange, AuditEntry, AuditFilter, AuditTrail};
pub use cache::{CacheError, CacheStore, InvalidationJournal, InvalidationMark, OwedInvalidation};
pub use clock::{Clock, ManualClock, SystemClock};
pub use event_bus::{
    ConsumerDeadLetter, ConsumerDeadLetters, ConsumerRetry, EventPublisher, Message, PublishError,
    partition_of,
};
pub use idempotency::{Claim, ClaimToken, Completion, IdempotencyStore};
pub use outbox::{DeadLetter, DeadLetters, EventEnvelope, Outbox};
pub use rate_limiter::{RateLimitError, RateLimiter};
pub use repository::{Repository, RepositoryError};
pub use tcc::{
    BarrierDecision, BranchOp, GlobalBranch, GlobalTransaction, GlobalTransactions, Repair,
    TccBarrier,
};
pub use transactional_message::{MessageState, TransactionalMessages};
pub use unit_of_work::{
    AfterCommit, BoxFuture, Outcome, Propagation, UnitOfWork, UnitOfWorkError, in_unit_of_work,
    in_unit_of_work_traced,
};

#[cfg(feature = "mock")]
pub use audit::MockAuditTrail;
#[cfg(feature = "mock")]
pub use cache::{MockCacheStore, MockInvalidationJournal};
#[cfg(feature = "mock")]
pub use clock::MockClock;
#[cfg(feature = "mock")]
pub use event_bus::{MockConsumerDeadLetters, MockEventPublisher};
#[cfg(feature = "mock")]
pub use idempotency::MockIdempotencyStore;
#[cfg(feature = "mock")]
pub use outbox::{MockDeadLetters, MockOutbox};
#[cfg(feature = "mock")]
pub use rate_limiter::MockRateLimiter;
#[cfg(feature = "mock")]
pub use repository::MockRepository;
#[cfg(feature = "mock")]
pub use tcc::{MockGlobalTransactions, MockTccBarrier};
#[cfg(feature = "mock")]
pub use transactional_message::MockTransactionalMessages;
#[cfg(feature = "mock")]
pub use unit_of_work::MockUnitOfWork;
