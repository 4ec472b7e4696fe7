//! What an invalidation broadcast carries: the keys and tags every instance
//! should drop from its local level.
//!
//! The payload is a run of netstrings (`<byte length>:<bytes>,`), one per key
//! (`k` + key) or tag (`t` + tag). Netstrings
//! take keys of any content without escaping, and the invalidation script can
//! append the keys it found under the tags with plain string concatenation.

/// An invalidation as broadcast to every instance sharing a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidationMessage {
    pub(crate) keys: Vec<String>,
    pub(crate) tags: Vec<String>,
}

impl InvalidationMessage {
    /// The payload for `keys` and `tags`, to which the keys found under the tags
    /// may be appended as further `k` items.
    pub(crate) fn encode(keys: &[String], tags: &[String]) -> Vec<u8> {
        let mut payload = Vec::new();
        for key in keys {
            push_netstring(&mut payload, b"k", key);
        }
        for tag in tags {
            push_netstring(&mut payload, b"t", tag);
        }
        payload
    }

    /// The message in `payload`, or `None` when it is not one.
    pub(crate) fn decode(mut payload: &[u8]) -> Option<Self> {
        let mut message = Self {
            keys: Vec::new(),
            tags: Vec::new(),
        };
        while !payload.is_empty() {
            let (kind, name) = next_netstring(&mut payload)?.split_first()?;
            let name = String::from_utf8(name.to_vec()).ok()?;
            match kind {
                b'k' => message.keys.push(name),
                b't' => message.tags.push(name),
                _ => return None,
            }
        }
        Some(message)
    }
}

fn push_netstring(payload: &mut Vec<u8>, kind: &[u8], text: &str) {
    let length = kind.len() + text.len();
    payload.extend_from_slice(length.to_string().as_bytes());
    payload.push(b':');
    payload.extend_from_slice(kind);
    payload.extend_from_slice(text.as_bytes());
    payload.push(b',');
}

fn next_netstring<'a>(payload: &mut &'a [u8]) -> Option<&'a [u8]> {
    let colon = payload.iter().position(|&byte| byte == b':')?;
    let length: usize = std::str::from_utf8(&payload[..colon]).ok()?.parse().ok()?;
    let rest = &payload[colon + 1..];
    let (body, rest) = rest.split_at_checked(length)?;
    let rest = rest.strip_prefix(b",")?;
    *payload = rest;
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn a_message_survives_encoding_whatever_its_names_contain() {
        let keys = strings(&["plain", "with:colon,and,commas", "", "ünïcode\n"]);
        let tags = strings(&["products", "12:x,"]);

        let payload = InvalidationMessage::encode(&keys, &tags);

        assert_eq!(
            InvalidationMessage::decode(&payload),
            Some(InvalidationMessage { keys, tags })
        );
    }

    #[test]
    fn keys_appended_by_the_script_are_read_as_keys() {
        let mut payload = InvalidationMessage::encode(&[], &strings(&["t"]));
        payload.extend_from_slice(b"5:kpage,");

        let message = InvalidationMessage::decode(&payload).expect("a message");

        assert_eq!(message.keys, strings(&["page"]));
        assert_eq!(message.tags, strings(&["t"]));
    }

    #[test]
    fn a_truncated_or_foreign_payload_is_no_message() {
        let payload = InvalidationMessage::encode(&strings(&["key"]), &[]);

        assert_eq!(
            InvalidationMessage::decode(&payload[..payload.len() - 1]),
            None
        );
        assert_eq!(InvalidationMessage::decode(b"hello"), None);
        assert_eq!(InvalidationMessage::decode(b"2:xy,"), None);
    }
}
