//! The service's own configuration keys, beside the ones every Strata service
//! has (`strata_runtime::ServiceSettings`: `database_url`, `api_addr`,
//! `redis_url`, `[http]`, ...), read from the same files and `<PREFIX>_*`
//! variables.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use strata_app_api::config::{Config, Environment};

/// The configuration files, one per environment, compiled into the binary so
/// `cargo run` needs no set-up; `--config-dir` names a directory of files to
/// read instead.
pub const CONFIG_FILES: [(Environment, &str); 3] = [
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

/// The service's own keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// Whether to serve the web page at all.
    pub web_page: bool,
    /// Where the web page listens.
    pub web_addr: SocketAddr,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            web_page: true,
            web_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        }
    }
}

impl Config for AppSettings {}
