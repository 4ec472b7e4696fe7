//! The sample shop's domain model. Each bounded context is a module; the catalog
//! is the first, then identity (users and sessions) and wishlists (what a
//! customer owns), and the sales report the events feed.

pub mod catalog;
pub mod identity;
pub mod reports;
#[cfg(test)]
mod text;
pub mod wishlists;
