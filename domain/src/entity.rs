use std::fmt::{Debug, Display};
use std::hash::Hash;

/// Something with an identity that outlives changes to its attributes.
///
/// Two entities are the same entity when their ids are equal, whatever their
/// other fields say.
pub trait Entity {
    /// The entity's identifier type, usually [`crate::Id<Self>`].
    type Id: Copy + Eq + Hash + Debug + Display + Send + Sync + 'static;

    /// The entity's identity.
    fn id(&self) -> Self::Id;
}
