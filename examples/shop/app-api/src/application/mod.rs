//! The shop's use cases, one module per bounded context.

pub mod catalog;
