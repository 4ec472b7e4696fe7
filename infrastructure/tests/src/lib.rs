//! Fixtures for the property suites of `strata-infrastructure`: a small
//! [`notes::Note`] aggregate with its table and repository, and
//! [`pipeline::Fixture`], its use cases wired through Strata's standard
//! middleware chain on real databases.

pub mod notes;
pub mod pipeline;
pub mod tcc;
