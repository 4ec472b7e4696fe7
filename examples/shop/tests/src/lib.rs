//! Test kit for the sample shop: fresh databases on SQLite or PostgreSQL, and the
//! whole shop spawned on random ports for black-box tests over HTTP.

mod app;
mod database;

pub use app::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, Tokens, client_from, spawn_app, spawn_app_on,
    spawn_app_with, spawn_seeded_app, spawn_two_instances, spawn_two_instances_sharing_redis,
};
pub use database::migrated;
pub use strata_tests::database::{Engine, TestDatabase};
