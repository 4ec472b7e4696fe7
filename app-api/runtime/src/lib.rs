//! Strata's service runtime: what every service built on Strata shares, so a
//! service keeps only what is its own.
//!
//! A service implements [`Service`] — its name, its own settings beside the
//! runtime's ([`ServiceSettings`]), its configuration files, its migrations, its
//! demo data and how it wires itself — and its `main` is one line:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     strata_runtime::main::<MyService>()
//! }
//! ```
//!
//! The runtime owns the rest:
//!
//! * the command line ([`cli`]): `serve` (the default), `migrate up|down|status`,
//!   `seed`, `config`, `--env`, `--config-dir`, and the exit statuses 0, 1, 2
//!   and 78;
//! * configuration: defaults, then the environment's file, then `PREFIX_*`
//!   variables, checked at start-up, secrets masked when printed;
//! * telemetry: log lines (`LOG_FORMAT`, `RUST_LOG`) and, with the `otel`
//!   feature, span export;
//! * the database and its migrations (Strata's own tables included), seeding;
//! * the query cache (two-level over Redis when configured), idempotency keys
//!   and the standard middleware chain ([`Startup::middleware`]);
//! * readiness (the database, Redis, every worker) and metrics;
//! * background workers ([`Startup::worker`]), started and stopped with the
//!   service, restarted with backoff; the idempotency-key purge is the first;
//! * serving routers, SIGTERM and Ctrl-C, graceful shutdown within the grace
//!   period, and the [`Running`] handle tests start services with.
//!
//! It is the framework's composition root: the one framework crate that names
//! both the application layer (`strata-app-api`) and the adapters
//! (`strata-infrastructure`). See `docs/decisions/0011-service-runtime.md`.

pub mod cli;
mod consumer;
mod consumer_metrics;
mod context;
mod dead_letters;
mod group;
mod outbox;
mod running;
mod service;
mod settings;
mod tcc;
mod telemetry;

pub use cli::{load_settings, main, main_with};
pub use consumer::{ConsumerSettings, OrderedConsumer};
pub use context::{Context, ContextDatabase, MigrationFuture};
pub use group::{GroupConsumer, GroupConsumerSettings};
pub use running::{
    Migration, OutboxCommand, OutboxReport, Running, StartError, in_transaction, migrate,
    open_database, outbox, seed, start,
};
pub use service::{BindError, BoxError, Listener, Resources, Service, Settings, Startup};
pub use settings::{
    AuditConfig, CacheConfig, ClientLimitConfig, DatabaseConfig, HealthConfig, HttpConfig,
    OutboxConfig, ServiceSettings, TccConfig,
};
