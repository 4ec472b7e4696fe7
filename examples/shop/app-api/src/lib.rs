//! The sample shop's application layer (use cases), its HTTP API, and the
//! composition root that wires both to the infrastructure.
//!
//! * [`application`] — commands, queries and their handlers; no HTTP, no SQL.
//! * [`api`] — axum routes that turn HTTP into commands and queries.
//! * [`settings`] — the shop's own configuration keys.
//! * [`bootstrap`] — the composition root: [`Shop`], the service the runtime
//!   runs; the one module that names the infrastructure and the BFF.

pub mod api;
pub mod application;
pub mod bootstrap;
pub mod messaging;
pub mod settings;

pub use bootstrap::Shop;
