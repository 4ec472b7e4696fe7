//! The sample shop's domain model. Each bounded context is a module; the catalog
//! is the first.

pub mod catalog;
