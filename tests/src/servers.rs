//! The servers test suites run against, and how a suite says it was skipped.
//!
//! A crate with server suites calls [`declare_test_servers`] from its build
//! script:
//!
//! ```text
//! // build.rs
//! fn main() {
//!     strata_tests::servers::declare_test_servers();
//! }
//! ```
//!
//! Each server whose URL variable is set when the crate is built turns on a
//! `cfg` (`strata_postgres`, `strata_mysql`, `strata_redis`, `strata_rabbitmq`), and a suite that needs a server
//! marks its tests `#[cfg_attr(not(strata_postgres), ignore = "...")]` — as
//! `on_each_engine!` (feature `database`) does. Without the server the tests are listed as
//! *ignored* in the test runner's own summary, with the variable to set, rather
//! than passing by doing nothing; with it, they run and a server that does not
//! answer fails them.

/// The servers test suites may need: the variable naming each, and the `cfg`
/// it turns on.
pub const TEST_SERVERS: [(&str, &str); 4] = [
    ("STRATA_TEST_POSTGRES_URL", "strata_postgres"),
    ("STRATA_TEST_MYSQL_URL", "strata_mysql"),
    ("STRATA_TEST_REDIS_URL", "strata_redis"),
    ("STRATA_TEST_RABBITMQ_URL", "strata_rabbitmq"),
];

/// Prints the build-script instructions that declare each test server's `cfg`,
/// turn on those whose variable is set, and rebuild when one changes.
pub fn declare_test_servers() {
    for (variable, cfg) in TEST_SERVERS {
        println!("cargo::rerun-if-env-changed={variable}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var_os(variable).is_some_and(|value| !value.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}

/// The environment variable naming a Redis server for tests, such as
/// `redis://127.0.0.1:6379`; each test works under a key prefix of its own.
pub const REDIS_URL_VARIABLE: &str = "STRATA_TEST_REDIS_URL";

/// The test Redis server's URL, for a test marked
/// `#[cfg_attr(not(strata_redis), ignore = "...")]`.
///
/// # Panics
/// As [`server_url`] does.
#[must_use]
pub fn redis_url() -> String {
    server_url(REDIS_URL_VARIABLE)
}

/// The environment variable naming a RabbitMQ server for tests, such as
/// `amqp://guest:guest@127.0.0.1:5672/%2f`; each test declares exchanges and
/// queues under a prefix of its own.
pub const RABBITMQ_URL_VARIABLE: &str = "STRATA_TEST_RABBITMQ_URL";

/// The test RabbitMQ server's URL, for a test marked
/// `#[cfg_attr(not(strata_rabbitmq), ignore = "...")]`.
///
/// # Panics
/// As [`server_url`] does.
#[must_use]
pub fn rabbitmq_url() -> String {
    server_url(RABBITMQ_URL_VARIABLE)
}

/// A key prefix no other test uses, so tests sharing a server run in parallel.
#[must_use]
pub fn fresh_prefix(what: &str) -> String {
    format!("strata-test-{what}-{}", uuid::Uuid::now_v7().simple())
}

/// The URL in `variable`, for a test that was built to run against that server.
///
/// # Panics
/// When the variable is not set now: the test was built with it set (so it
/// was not marked ignored) and cannot run without it.
#[must_use]
pub fn server_url(variable: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{variable} was set when this test was built but is not set now: set it again, \
             or rebuild without it to have the test ignored"
        ),
    }
}
