//! Configuration as an operator writes it: the shop's TOML file for the
//! environment and `SHOP_*` variables over it (the real keys, with any
//! values, and any other names). Loading answers the settings or one error
//! naming the key or file at fault; never a panic. Durations and environment
//! names read back from their own printed form.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use shop_app_api::Shop;
use strata_app_api::config::{Environment, duration};

/// Keys the shop and its runtime read, as variables name them.
const KEYS: &[&str] = &[
    "DATABASE_URL",
    "DATABASE__MAX_CONNECTIONS",
    "API_ADDR",
    "WEB_ADDR",
    "INTERNAL_ADDR",
    "JWT_SECRET",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "REDIS_URL",
    "RABBITMQ_URL",
    "CACHE_KEY_PREFIX",
    "SEED",
    "ONLY",
    "INVENTORY__URL",
    "INVENTORY__DATABASE_URL",
    "WALLET__DATABASE_URL",
    "WEB__API_URL",
    "WEB__SECURE_COOKIE",
    "HTTP__REQUEST_TIMEOUT",
    "HTTP__CLIENT_LIMIT__REQUESTS",
    "HTTP__CLIENT_LIMIT__PERIOD",
    "HTTP__TRUSTED_PROXIES",
    "IDEMPOTENCY__LEASE",
    "OUTBOX__PARTITIONS",
    "OUTBOX__LEASE",
    "TCC__TIMEOUT",
    "TCC__MAX_DOUBLINGS",
    "TCC__BARRIER_RETENTION",
];

#[derive(Debug, Arbitrary)]
struct Input {
    environment: u8,
    file: String,
    /// (index into KEYS, or any name past its end; value)
    variables: Vec<(u8, String, String)>,
}

fn directory() -> &'static tempfile::TempDir {
    static DIRECTORY: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIRECTORY.get_or_init(|| tempfile::tempdir().expect("a directory"))
}

fuzz_target!(|input: Input| {
    let environment = [
        Environment::Development,
        Environment::Test,
        Environment::Production,
    ][usize::from(input.environment) % 3];
    let directory = directory().path();
    std::fs::write(directory.join(format!("{environment}.toml")), &input.file)
        .expect("the file is written");
    let variables: Vec<(String, String)> = input
        .variables
        .iter()
        .map(|(index, name, value)| {
            let key = KEYS
                .get(usize::from(*index))
                .map_or(name.as_str(), |key| key);
            (format!("SHOP_{key}"), value.clone())
        })
        .collect();
    if let Err(error) =
        strata_runtime::load_settings::<Shop>(environment, Some(directory), Some(variables))
    {
        assert!(!error.to_string().is_empty());
    }

    for (_, _, value) in &input.variables {
        if let Some(parsed) = duration::parse(value) {
            assert_eq!(
                duration::parse(&duration::format(parsed)),
                Some(parsed),
                "{value:?}"
            );
        }
        if let Ok(named) = value.parse::<Environment>() {
            assert_eq!(named.to_string().parse::<Environment>(), Ok(named));
        }
    }
});
