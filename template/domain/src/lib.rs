//! The domain model: one module per bounded context, each with its aggregates,
//! value objects and the ports its infrastructure implements. No I/O happens here.

pub mod tasks;
