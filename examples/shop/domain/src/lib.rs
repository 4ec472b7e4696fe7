//! The sample shop's domain model. Each bounded context is a module; the catalog
//! is the first, then identity (users and sessions) and wishlists (what a
//! customer owns), the sales report the events feed, and the three contexts of
//! a sale: the inventory (stock), the wallet (money) and ordering (orders
//! placed as a distributed transaction over the other two).

pub mod catalog;
pub mod identity;
pub mod inventory;
pub mod ordering;
pub mod reports;
#[cfg(test)]
mod text;
pub mod wallet;
pub mod wishlists;
