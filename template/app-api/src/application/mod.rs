//! The use cases, one module per bounded context. Nothing here knows HTTP or SQL:
//! handlers reach storage only through the domain's ports.

pub mod tasks;
