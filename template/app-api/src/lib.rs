//! The application layer (use cases), its HTTP API, and the composition root
//! that wires both to the infrastructure.
//!
//! * [`application`] — commands, queries and their handlers; no HTTP, no SQL.
//! * [`api`] — axum routes that turn HTTP into commands and queries.
//! * [`settings`] — typed, layered configuration, checked at start-up.
//! * [`bootstrap`] — the composition root: the one module that names the
//!   infrastructure and the web page.

pub mod api;
pub mod application;
pub mod bootstrap;
pub mod settings;
