//! Architecture rules for Strata workspaces, checked from a test.
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

pub mod architecture;
#[cfg(feature = "openapi")]
pub mod openapi;
