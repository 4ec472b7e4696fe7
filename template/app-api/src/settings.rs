//! Typed configuration, checked at start-up: the defaults below, then the
//! environment's file (`config/<environment>.toml`), then environment variables
//! named with the project's prefix.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::http::HeaderValue;
use serde::{Deserialize, Serialize};
use strata_app_api::config::{
    Config, ConfigError, ConnectionUrl, Environment, Invalid, Loaded, Loader, duration,
};
use strata_app_api::http::HttpSettings;
use strata_app_api::http::health::RedisPing;

/// The configuration files, one per environment, compiled into the binary so
/// `cargo run` needs no set-up; `--config-dir` names a directory of files to
/// read instead.
const CONFIG_FILES: [(Environment, &str); 3] = [
    (
        Environment::Development,
        include_str!("../config/development.toml"),
    ),
    (Environment::Test, include_str!("../config/test.toml")),
    (
        Environment::Production,
        include_str!("../config/production.toml"),
    ),
];

/// The project's name, such as `parcel-desk`. Read from this package's name
/// (`<project>-app-api`), so no source file has to be edited on a rename.
#[must_use]
pub fn project_name() -> &'static str {
    let package = env!("CARGO_PKG_NAME");
    package.strip_suffix("-app-api").unwrap_or(package)
}

/// The prefix of the service's environment variables: the project's name in
/// capitals, `PARCEL_DESK` for parcel-desk. `PARCEL_DESK_DATABASE_URL` sets
/// `database_url`; `PARCEL_DESK_HTTP__SHUTDOWN_GRACE` (or
/// `PARCEL_DESK_HTTP_SHUTDOWN_GRACE`) sets `http.shutdown_grace`.
#[must_use]
pub fn env_prefix() -> String {
    project_name().replace('-', "_").to_ascii_uppercase()
}

/// The service's configuration: the defaults below, then the environment's
/// file, then `<PREFIX>_*` variables (see [`load_settings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The database: SQLite (`sqlite://file.db?mode=rwc`) or PostgreSQL.
    pub database_url: ConnectionUrl,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Whether to serve the web page at all.
    pub web_page: bool,
    /// Where the web page listens.
    pub web_addr: SocketAddr,
    /// Whether `serve` brings the schema up to date before serving.
    pub migrate_on_start: bool,
    /// Whether `serve` adds the demo tasks to an empty task list.
    pub seed: bool,
    /// A Redis server shared by every instance: when set, cached answers live
    /// in a two-level cache (in-process in front of Redis, invalidations
    /// broadcast to all instances) and readiness checks it; otherwise the cache
    /// is in-process.
    pub redis_url: Option<ConnectionUrl>,
    /// The prefix of this service's keys in Redis, so services sharing a
    /// server do not collide.
    pub cache_key_prefix: String,
    /// How the API treats requests.
    pub http: HttpConfig,
    /// How readiness checks the dependencies.
    pub health: HealthConfig,
}

/// How the API treats requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// How long a request may take before it is answered 503.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// How long requests in flight may take to finish once shutdown begins.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Origins allowed to call the API from a browser; none means same-origin only.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// How readiness checks the dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// How long each dependency may take to answer before it counts as down.
    #[serde(with = "duration")]
    pub check_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            check_timeout: Duration::from_secs(2),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let file_name = project_name().replace('-', "_");
        Self {
            database_url: ConnectionUrl::new(format!("sqlite://{file_name}.db?mode=rwc")),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_page: true,
            web_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            migrate_on_start: true,
            seed: true,
            redis_url: None,
            cache_key_prefix: project_name().to_owned(),
            http: HttpConfig::default(),
            health: HealthConfig::default(),
        }
    }
}

impl Config for Settings {
    fn validate(&self) -> Result<(), Invalid> {
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(Invalid::new(
                "database_url",
                "must be a sqlite: or postgres:// URL",
            ));
        }
        if let Some(redis) = &self.redis_url {
            RedisPing::new(redis.expose())
                .map_err(|error| Invalid::new("redis_url", error.to_string()))?;
        }
        if self.http.request_timeout.is_zero() {
            return Err(Invalid::new(
                "http.request_timeout",
                "must be more than zero",
            ));
        }
        if let Some(bad) = self
            .http
            .cors_allowed_origins
            .iter()
            .position(|origin| HeaderValue::from_str(origin).is_err())
        {
            return Err(Invalid::new(
                format!("http.cors_allowed_origins[{bad}]"),
                "is not a valid origin",
            ));
        }
        if self.health.check_timeout.is_zero() {
            return Err(Invalid::new(
                "health.check_timeout",
                "must be more than zero",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// What the standard HTTP layers need to know.
    #[must_use]
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            request_timeout: self.http.request_timeout,
            // Checked by `validate`, so none is dropped here.
            cors_allowed_origins: self
                .http
                .cors_allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok())
                .collect(),
        }
    }
}

/// Loads the configuration for `environment`: the defaults, then
/// `<environment>.toml` (compiled in, or read from `config_dir`), then
/// `<PREFIX>_*` environment variables.
///
/// # Errors
/// One line naming the file or key at fault and why.
pub fn load_settings(
    environment: Environment,
    config_dir: Option<&Path>,
) -> Result<Loaded<Settings>, ConfigError> {
    let loader = loader();
    let loader = match config_dir {
        Some(dir) => loader.read_file(&dir.join(format!("{environment}.toml")))?,
        None => loader.file(
            format!("config/{environment}.toml (built in)"),
            built_in_file(environment),
        ),
    };
    loader.load()
}

/// A loader for the service's variables. `ENV` and `CONFIG_DIR` choose which
/// file is read, so they are not configuration keys.
fn loader() -> Loader {
    Loader::new(env_prefix()).reserve(["ENV", "CONFIG_DIR"])
}

fn built_in_file(environment: Environment) -> &'static str {
    CONFIG_FILES
        .iter()
        .find(|(name, _)| *name == environment)
        .map_or("", |(_, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(environment: Environment, variables: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let prefix = env_prefix();
        loader()
            .file(format!("{environment}.toml"), built_in_file(environment))
            .variables(
                variables
                    .iter()
                    .map(|(name, value)| (format!("{prefix}_{name}"), (*value).to_owned())),
            )
            .load()
            .map(Loaded::into_value)
    }

    #[test]
    fn every_environment_file_loads() {
        for (environment, _) in CONFIG_FILES {
            load(environment, &[]).unwrap_or_else(|error| panic!("{environment}: {error}"));
        }
    }

    #[test]
    fn development_serves_where_the_readme_says() {
        let settings = load(Environment::Development, &[]).expect("valid");
        assert_eq!(settings.api_addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(settings.web_addr, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert!(settings.migrate_on_start && settings.seed);
        assert!(settings.redis_url.is_none());
    }

    #[test]
    fn variables_override_the_file_by_key() {
        let settings = load(
            Environment::Development,
            &[
                ("DATABASE_URL", "postgres://app:pw@db/app"),
                ("API_ADDR", "127.0.0.1:9090"),
                ("WEB_PAGE", "false"),
                ("HTTP__SHUTDOWN_GRACE", "3s"),
                ("HEALTH_CHECK_TIMEOUT", "500ms"),
            ],
        )
        .expect("valid settings");
        assert_eq!(settings.database_url.expose(), "postgres://app:pw@db/app");
        assert_eq!(settings.api_addr, SocketAddr::from(([127, 0, 0, 1], 9090)));
        assert!(!settings.web_page);
        assert_eq!(settings.web_addr, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert_eq!(settings.http.shutdown_grace, Duration::from_secs(3));
        assert_eq!(settings.health.check_timeout, Duration::from_millis(500));
    }

    #[test]
    fn a_bad_value_names_its_key_and_variable_in_one_line() {
        let prefix = env_prefix();
        for (name, value, key) in [
            ("WEB_ADDR", "not an address", "web_addr"),
            ("HTTP__SHUTDOWN_GRACE", "soon", "http.shutdown_grace"),
            ("WEB_PAGE", "sometimes", "web_page"),
            ("REDIS_URL", "http://cache", "redis_url"),
        ] {
            let error = load(Environment::Development, &[(name, value)]).expect_err(name);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "configuration key `{key}` (from environment variable {prefix}_{name})"
                )),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn passwords_in_urls_never_print() {
        let url = "mysql://app:hunter2@db/app";
        let error = load(Environment::Development, &[("DATABASE_URL", url)]).expect_err("mysql");
        assert!(error.to_string().contains("`database_url`"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");

        let loaded = loader()
            .file("development.toml", built_in_file(Environment::Development))
            .variables([
                (
                    format!("{}_DATABASE_URL", env_prefix()),
                    "postgres://app:hunter2@db/app".to_owned(),
                ),
                (
                    format!("{}_REDIS_URL", env_prefix()),
                    "redis://:hunter2@cache:6379".to_owned(),
                ),
            ])
            .load::<Settings>()
            .expect("valid settings");
        let printed = format!("{}\n{:?}", loaded.render(), loaded.value());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://app:[redacted]@db/app"),
            "{printed}"
        );
    }
}
