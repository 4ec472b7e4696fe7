use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use crate::{AggregateRoot, DomainEvent, Page, PageRequest, RepositoryError};

/// A domain event ready to leave the aggregate: serialized, addressed and with an
/// id of its own, so consumers can recognise a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventEnvelope {
    /// The message id (UUID v7, so ids sort by recording time).
    pub id: Uuid,
    /// The aggregate's kind, such as `product`.
    pub aggregate_kind: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The aggregate version the event produced; orders events of one aggregate.
    pub aggregate_version: u64,
    /// The event's stable type name, such as `catalog.product_created`.
    pub event_type: String,
    /// The event itself, as JSON.
    pub payload: serde_json::Value,
    /// The W3C `traceparent` of the work that recorded it; the unit of work
    /// fills it in from the request it runs for when it stores the event.
    pub traceparent: Option<String>,
}

impl EventEnvelope {
    /// Takes the events `aggregate` has recorded and wraps each one, stamping the
    /// version the aggregate is about to be saved at.
    ///
    /// # Errors
    /// When an event cannot be serialized; the events then stay on the aggregate.
    pub fn take_from<A>(aggregate: &mut A) -> Result<Vec<Self>, serde_json::Error>
    where
        A: AggregateRoot,
        A::Event: Serialize,
    {
        let version = aggregate.version().next().value();
        let aggregate_id = aggregate.id().to_string();
        let envelopes = aggregate
            .pending_events()
            .iter()
            .map(|event| {
                Ok(Self {
                    id: Uuid::now_v7(),
                    aggregate_kind: A::KIND.to_owned(),
                    aggregate_id: aggregate_id.clone(),
                    aggregate_version: version,
                    event_type: event.event_type().to_owned(),
                    payload: serde_json::to_value(event)?,
                    traceparent: None,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        aggregate.take_events();
        Ok(envelopes)
    }
}

/// Where domain events go to be published reliably: stored in the same
/// transaction as the state change that produced them, relayed later.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Stores `events` in the running unit of work.
    async fn append(&self, events: Vec<EventEnvelope>) -> Result<(), RepositoryError>;
}

/// An event the outbox relay gave up on: the broker refused it every time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event's (message) id.
    pub id: Uuid,
    /// Its aggregate's kind.
    pub aggregate_kind: String,
    /// Its aggregate's id.
    pub aggregate_id: String,
    /// The aggregate version it produced.
    pub aggregate_version: u64,
    /// Its type.
    pub event_type: String,
    /// How many attempts failed.
    pub attempts: u32,
    /// Why the last one failed.
    pub last_error: String,
    /// When it was dead-lettered, in milliseconds since the Unix epoch.
    pub dead_at_ms: i64,
}

/// The outbox's dead letters, for operators: seen, and published again.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// One page of the dead letters, the most recent first.
    async fn dead_letters(&self, page: PageRequest) -> Result<Page<DeadLetter>, RepositoryError>;

    /// Gives dead letter `id` a fresh set of attempts, due now, in the running
    /// unit of work; `false` when there is no such dead letter. The events of
    /// its aggregate held back behind it follow it.
    async fn retry(&self, id: Uuid) -> Result<bool, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::{AggregateState, Entity, Id, Version};

    #[derive(Debug, Clone, PartialEq, Serialize)]
    enum CounterEvent {
        Bumped { by: u32 },
    }

    impl DomainEvent for CounterEvent {
        fn event_type(&self) -> &'static str {
            "test.counter_bumped"
        }
    }

    struct Counter {
        id: Id<Counter>,
        state: AggregateState<CounterEvent>,
    }

    impl Entity for Counter {
        type Id = Id<Counter>;
        fn id(&self) -> Self::Id {
            self.id
        }
    }

    impl AggregateRoot for Counter {
        type Event = CounterEvent;
        const KIND: &'static str = "counter";
        fn state(&self) -> &AggregateState<CounterEvent> {
            &self.state
        }
        fn state_mut(&mut self) -> &mut AggregateState<CounterEvent> {
            &mut self.state
        }
    }

    #[test]
    fn wraps_each_pending_event_stamped_with_the_next_version() {
        let mut counter = Counter {
            id: Id::generate(),
            state: AggregateState::loaded(Version::new(3)),
        };
        counter.record(CounterEvent::Bumped { by: 1 });
        counter.record(CounterEvent::Bumped { by: 2 });

        let envelopes = EventEnvelope::take_from(&mut counter).expect("serializable");

        assert!(counter.pending_events().is_empty());
        assert_eq!(envelopes.len(), 2);
        assert!(envelopes[0].id < envelopes[1].id);
        assert_eq!(envelopes[1].aggregate_kind, "counter");
        assert_eq!(envelopes[1].aggregate_id, counter.id.to_string());
        assert_eq!(envelopes[1].aggregate_version, 4);
        assert_eq!(envelopes[1].event_type, "test.counter_bumped");
        assert_eq!(
            envelopes[1].payload,
            serde_json::json!({ "Bumped": { "by": 2 } })
        );
    }
}
