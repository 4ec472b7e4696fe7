//! The shop's use cases, one module per bounded context.

pub mod catalog;
pub mod identity;
pub mod inventory;
pub mod ordering;
pub mod permissions;
pub mod reports;
pub mod wallet;
pub mod wishlists;
