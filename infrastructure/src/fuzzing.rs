//! Entry points for the fuzz targets under `fuzz/`: the decoders of what
//! arrives from a broker or from another instance, private otherwise. Built
//! only with `--cfg fuzzing`, as `cargo fuzz` builds.

use strata_domain::ports::Message;

/// A Redis stream entry's `fields` decoded as the partition and group
/// readers decode them.
///
/// # Errors
/// What the readers dead-letter the entry with.
#[cfg(feature = "redis")]
pub fn stream_entry(fields: &[(String, Vec<u8>)]) -> Result<Message, String> {
    let fields = fields
        .iter()
        .map(|(name, value)| (name.clone(), redis::Value::BulkString(value.clone())))
        .collect();
    crate::consumer::entry_of(&fields).map_err(|undecodable| undecodable.error)
}

/// The fields the Redis Streams publisher writes for `message`.
#[cfg(feature = "redis")]
#[must_use]
pub fn stream_fields(message: &Message) -> Vec<(String, Vec<u8>)> {
    crate::outbox::redis_streams_entry_fields(message)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.into_bytes()))
        .collect()
}

/// A cache invalidation broadcast's payload as its keys and tags.
#[cfg(feature = "redis")]
#[must_use]
pub fn invalidation(payload: &[u8]) -> Option<(Vec<String>, Vec<String>)> {
    crate::cache::InvalidationMessage::decode(payload).map(|message| (message.keys, message.tags))
}

/// The broadcast payload for `keys` and `tags`.
#[cfg(feature = "redis")]
#[must_use]
pub fn invalidation_payload(keys: &[String], tags: &[String]) -> Vec<u8> {
    crate::cache::InvalidationMessage::encode(keys, tags)
}
