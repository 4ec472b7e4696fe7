//! What arrives from a broker, from another instance or from an upstream
//! API: Redis stream entries (field by field, as the partition and group
//! readers decode them), RabbitMQ message bodies, cache invalidation
//! broadcasts, cached entries, and problem details read by the web app. Each
//! decodes or is refused with a reason (and would be dead-lettered), never a
//! panic; what decodes encodes back to itself; a problem's text is shown
//! escaped.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use strata_app_api::application::Cached;
use strata_domain::ports::Message;
use strata_infrastructure::fuzzing;

#[derive(Debug, Arbitrary)]
struct Input {
    /// A stream entry: the publisher's field names (by index) or others.
    fields: Vec<(u8, String, Vec<u8>)>,
    /// A body, a payload, an entry, a problem.
    bytes: Vec<u8>,
}

const FIELDS: &[&str] = &[
    "id",
    "topic",
    "key",
    "version",
    "type",
    "payload",
    "recorded_at",
    "traceparent",
];

fuzz_target!(|input: Input| {
    let fields: Vec<(String, Vec<u8>)> = input
        .fields
        .iter()
        .map(|(index, name, value)| {
            let name = FIELDS
                .get(usize::from(*index))
                .map_or(name.as_str(), |name| name);
            (name.to_owned(), value.clone())
        })
        .collect();
    match fuzzing::stream_entry(&fields) {
        Ok(message) => round_trips(&message),
        Err(reason) => assert!(!reason.is_empty()),
    }

    if let Ok(message) = serde_json::from_slice::<Message>(&input.bytes) {
        round_trips(&message);
        let again = serde_json::to_vec(&message).expect("a message serializes");
        assert_eq!(
            serde_json::from_slice::<Message>(&again).ok(),
            Some(message)
        );
    }

    if let Some((keys, tags)) = fuzzing::invalidation(&input.bytes) {
        assert_eq!(
            fuzzing::invalidation(&fuzzing::invalidation_payload(&keys, &tags)),
            Some((keys, tags))
        );
    }

    if let Some(entry) = Cached::fuzz_decode(&input.bytes) {
        assert_eq!(Cached::fuzz_decode(&entry.fuzz_encode()), Some(entry));
    }

    if let Ok(problem) = serde_json::from_slice::<strata_bff::Problem>(&input.bytes) {
        let shown = strata_bff::html::escape(problem.message());
        assert!(!shown.contains(['<', '>', '"']), "{shown}");
    }
});

/// A message the readers accept is published and read back unchanged.
fn round_trips(message: &Message) {
    let read = fuzzing::stream_entry(&fuzzing::stream_fields(message));
    assert_eq!(read.as_ref().ok(), Some(message), "{read:?}");
}
