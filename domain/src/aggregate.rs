use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DomainEvent, Entity};

/// An aggregate's version, used for optimistic concurrency.
///
/// A new, never-saved aggregate is at [`Version::NEW`]; each successful save moves
/// it on by one. A save that finds a different version in storage than the one the
/// aggregate was loaded at is a conflict, never a silent overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version of an aggregate that has never been saved.
    pub const NEW: Self = Self(0);

    /// A version read back from storage or sent by a client.
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The number itself.
    #[must_use]
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The version after one more save.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Whether the aggregate has never been saved.
    #[must_use]
    pub const fn is_new(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The bookkeeping every aggregate root carries: its version and the events it has
/// recorded since it was loaded. Embed one in the aggregate and return it from
/// [`AggregateRoot::state`] / [`AggregateRoot::state_mut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateState<E> {
    version: Version,
    pending: Vec<E>,
}

impl<E> AggregateState<E> {
    /// State for an aggregate being created now.
    #[must_use]
    pub const fn new() -> Self {
        Self::loaded(Version::NEW)
    }

    /// State for an aggregate read back from storage at `version`.
    #[must_use]
    pub const fn loaded(version: Version) -> Self {
        Self {
            version,
            pending: Vec::new(),
        }
    }
}

impl<E> Default for AggregateState<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// The root of a consistency boundary: the only entity of the aggregate that the
/// outside may hold, load and save.
pub trait AggregateRoot: Entity + Send + Sync + 'static {
    /// The events this aggregate records.
    type Event: DomainEvent;

    /// A short name for messages and logs, such as `product`.
    const KIND: &'static str;

    /// The aggregate's bookkeeping.
    fn state(&self) -> &AggregateState<Self::Event>;

    /// The aggregate's bookkeeping, for changes.
    fn state_mut(&mut self) -> &mut AggregateState<Self::Event>;

    /// The version this aggregate was loaded (or last saved) at.
    fn version(&self) -> Version {
        self.state().version
    }

    /// Records an event; aggregates call this from their business methods.
    fn record(&mut self, event: Self::Event) {
        self.state_mut().pending.push(event);
    }

    /// Events recorded since the aggregate was loaded, oldest first.
    fn pending_events(&self) -> &[Self::Event] {
        &self.state().pending
    }

    /// Removes and returns the recorded events, oldest first.
    fn take_events(&mut self) -> Vec<Self::Event> {
        std::mem::take(&mut self.state_mut().pending)
    }

    /// Marks the aggregate as saved at `version`; repositories call this after a
    /// successful write.
    fn mark_saved(&mut self, version: Version) {
        self.state_mut().version = version;
    }
}
