use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret shows wherever it would otherwise be printed.
pub const REDACTED: &str = "[redacted]";

/// Key material (a shared secret, a private key, an API key, a password) that
/// must never reach a log or a printed configuration: its `Debug` and its
/// `Serialize` both write `[redacted]`, and it has no `Display`. It deserializes
/// from a string, so a configuration file or variable can hold one.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into().into_boxed_slice())
    }

    /// The material itself, for the one place that uses it.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The material as text, for the one place that uses it; `None` when it is
    /// not UTF-8.
    #[must_use]
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// How many bytes long it is.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

// Serializing is how an effective configuration is printed; a secret that
// serialized as itself would be printed with it. It therefore never round-trips.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<&[u8]> for Secret {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_itself() {
        let secret = Secret::from("hunter2 hunter2");
        assert_eq!(format!("{secret:?}"), REDACTED);
        let json = serde_json::to_string(&secret).expect("serializable");
        assert_eq!(json, format!("\"{REDACTED}\""));
    }

    #[test]
    fn a_secret_reads_from_a_string() {
        let secret: Secret = serde_json::from_str("\"hunter2\"").expect("a string");
        assert_eq!(secret.expose_str(), Some("hunter2"));
    }
}
