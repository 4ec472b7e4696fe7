use std::fmt::Debug;

/// Something that happened in the domain that other parts of the system may care about.
///
/// Aggregates record events as they change ([`crate::AggregateRoot::record`]); the
/// unit of work hands them on (to an outbox) in the same transaction as the change.
pub trait DomainEvent: Debug + Clone + Send + Sync + 'static {
    /// A stable name for the kind of event, such as `catalog.product_created`;
    /// consumers route on it, so it never changes once published.
    fn event_type(&self) -> &'static str;
}
