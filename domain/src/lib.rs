//! Strata's domain kernel: the building blocks of a domain model and the ports
//! its infrastructure implements.
//!
//! It does no I/O and needs no async runtime, web framework, ORM or driver, so a
//! domain crate built on it compiles in seconds and is tested without a database.
//!
//! ```
//! use strata_domain::{AggregateRoot, AggregateState, DomainEvent, Entity, Id};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum AccountEvent {
//!     Opened { owner: String },
//! }
//!
//! impl DomainEvent for AccountEvent {
//!     fn event_type(&self) -> &'static str {
//!         "accounts.account_opened"
//!     }
//! }
//!
//! struct Account {
//!     id: Id<Account>,
//!     owner: String,
//!     state: AggregateState<AccountEvent>,
//! }
//!
//! impl Account {
//!     fn open(owner: &str) -> Self {
//!         let mut account = Self { id: Id::generate(), owner: owner.into(), state: AggregateState::new() };
//!         account.record(AccountEvent::Opened { owner: owner.into() });
//!         account
//!     }
//! }
//!
//! impl Entity for Account {
//!     type Id = Id<Account>;
//!     fn id(&self) -> Self::Id { self.id }
//! }
//!
//! impl AggregateRoot for Account {
//!     type Event = AccountEvent;
//!     const KIND: &'static str = "account";
//!     fn state(&self) -> &AggregateState<AccountEvent> { &self.state }
//!     fn state_mut(&mut self) -> &mut AggregateState<AccountEvent> { &mut self.state }
//! }
//!
//! let mut account = Account::open("ada");
//! assert!(account.version().is_new());
//! assert_eq!(account.take_events(), [AccountEvent::Opened { owner: "ada".into() }]);
//! ```

mod aggregate;
mod entity;
mod error;
mod event;
mod id;
mod paging;
pub mod ports;
pub mod text;
mod validation;

pub use aggregate::{AggregateRoot, AggregateState, Version};
pub use entity::Entity;
pub use error::DomainError;
pub use event::DomainEvent;
pub use id::{Id, InvalidId};
pub use paging::{Page, PageRequest};
pub use ports::{
    EventEnvelope, Outbox, Propagation, RateLimitError, RateLimiter, Repository, RepositoryError,
    UnitOfWork, UnitOfWorkError,
};
pub use validation::{FieldViolation, ValidationFailure, validate};

/// Re-exported so value objects can derive `Validate` without naming the crate twice.
pub use validator;
