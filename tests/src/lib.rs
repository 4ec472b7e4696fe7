//! Strata's test kit: architecture rules for a workspace (feature
//! `architecture`, on by default), OpenAPI document checks and interface
//! conventions (`openapi`), a fresh
//! database per test on SQLite or PostgreSQL (`database`), a service spawned on
//! random ports with a client and `assert_problem` (`service`), and the test servers
//! a suite needs, reported as ignored when they are not configured
//! ([`servers`], always available, so build scripts can use it without the
//! rest).
//!
//! ```no_run
//! use strata_tests::architecture::Architecture;
//!
//! # fn main() -> Result<(), strata_tests::architecture::Error> {
//! let report = Architecture::standard()
//!     .composition_root("shop-app-api", ["src/main.rs", "src/bootstrap.rs"])
//!     .check_workspace(env!("CARGO_MANIFEST_DIR"))?;
//! report.assert_clean();
//! # Ok(())
//! # }
//! ```
//!
//! A workspace's crates are sorted into layers by the name of the directory
//! that holds each crate's `Cargo.toml`: `domain`, `app-api`,
//! `infrastructure`, `frontend-bff` and `tests`. The checker then verifies
//! which workspace crates each layer may depend on, which external crates
//! each layer must keep out of its dependency closure, that no dependency
//! cycle exists between workspace crates (dev-dependencies included), and
//! which crates the application and API modules of an app-api crate may
//! name in their source.
//!
//! Every rule must match something: a rule that finds no crate or no file
//! to apply to is reported as a violation, so a renamed directory cannot
//! switch a rule off unnoticed.

#[cfg(feature = "architecture")]
pub mod architecture;
#[cfg(feature = "openapi")]
pub mod conventions;
#[cfg(feature = "database")]
pub mod database;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod servers;
#[cfg(feature = "service")]
pub mod service;
