use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// A typed identifier: `Id<Product>` and `Id<Order>` are different types, so one
/// cannot be passed where the other is expected.
///
/// New ids are UUID v7, which sort by creation time; that keeps primary-key
/// indexes append-mostly and gives listings a stable, meaningful order.
pub struct Id<T> {
    value: Uuid,
    // `fn() -> T` keeps `Id<T>` Send + Sync + Copy whatever `T` is.
    marker: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// A new, time-ordered id (UUID v7).
    #[must_use]
    pub fn generate() -> Self {
        Self::from_uuid(Uuid::now_v7())
    }

    /// Wraps an existing UUID, e.g. one read back from storage.
    #[must_use]
    pub const fn from_uuid(value: Uuid) -> Self {
        Self {
            value,
            marker: PhantomData,
        }
    }

    /// The underlying UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.value
    }
}

/// The text was not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id")]
pub struct InvalidId(String);

impl<T> FromStr for Id<T> {
    type Err = InvalidId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(text)
            .map(Self::from_uuid)
            .map_err(|_| InvalidId(text.chars().take(64).collect()))
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Id<T> {}

impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T> Eq for Id<T> {}

impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.value)
    }
}

impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}

impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Uuid::deserialize(deserializer).map(Self::from_uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Widget;

    #[test]
    fn generated_ids_are_unique_and_ordered_by_creation() {
        let first = Id::<Widget>::generate();
        let second = Id::<Widget>::generate();
        assert_ne!(first, second);
        assert!(first < second);
    }

    #[test]
    fn parses_its_own_display_form() {
        let id = Id::<Widget>::generate();
        let parsed: Id<Widget> = id.to_string().parse().expect("display form parses");
        assert_eq!(parsed, id);
    }

    #[test]
    fn rejects_text_that_is_not_a_uuid() {
        let error = "not-a-uuid"
            .parse::<Id<Widget>>()
            .expect_err("must be rejected");
        assert_eq!(error.to_string(), "`not-a-uuid` is not a valid id");
    }

    #[test]
    fn serializes_as_a_plain_uuid_string() {
        let id = Id::<Widget>::generate();
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, format!("\"{id}\""));
        let back: Id<Widget> = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, id);
    }
}
