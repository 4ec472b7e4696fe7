//! The sample shop's domain model. Each bounded context is a module; the catalog
//! is the first, then identity (users and sessions) and wishlists (what a
//! customer owns).

pub mod catalog;
pub mod identity;
#[cfg(test)]
mod text;
pub mod wishlists;
