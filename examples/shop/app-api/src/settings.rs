//! The shop's own configuration keys, beside the ones every Strata service has
//! (`strata_runtime::ServiceSettings`: `database_url`, `api_addr`, `redis_url`,
//! `[http]`, ...), read from the same files and `SHOP_*` variables.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use shop_domain::identity::{Email, Password};
use strata_app_api::Secret;
use strata_app_api::config::{Config, ConfigError, ConnectionUrl, Environment, Invalid};

/// The configuration files, one per environment, compiled into the binary so
/// `cargo run` needs no set-up; `SHOP_CONFIG_DIR` (or `--config-dir`) names a
/// directory of files to read instead.
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

/// The shop's own keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopSettings {
    /// Where the web page listens.
    pub web_addr: SocketAddr,
    /// Where the internal API listens: the inventory's and the wallet's
    /// branches that ordering calls. Only the shop's own processes should
    /// reach it; it has no per-client request limit.
    pub internal_addr: SocketAddr,
    /// The key access tokens are signed with (32 bytes or more). Without one, a
    /// random key is made at start-up, and tokens die with the process.
    pub jwt_secret: Option<Secret>,
    /// An administrator account to make at start-up if it does not exist yet.
    pub admin: AdminSettings,
    /// The inventory: its database, and where it runs.
    pub inventory: ContextSettings,
    /// The wallet: its database, and where it runs.
    pub wallet: ContextSettings,
    /// The web app.
    pub web: WebSettings,
}

/// The web app (`[web]`): the pages served at `web_addr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Whether the session cookie is sent over HTTPS only. Switch it off only
    /// to develop over plain HTTP.
    pub secure_cookie: bool,
    /// The API the pages are fetched from (`http://host:port`); unset, this
    /// process's own.
    pub api_url: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            secure_cookie: true,
            api_url: None,
        }
    }
}

/// A context of the shop that keeps its own database (`[inventory]`,
/// `[wallet]`): hosted by this process unless `url` names one run on its own
/// (`shop serve --only inventory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSettings {
    /// Its database (SQLite or PostgreSQL), never the shop's own.
    pub database_url: ConnectionUrl,
    /// The base URL of the internal API of a process running it on its own
    /// (`http://host:port`, its `internal_addr`); unset, this process hosts
    /// it.
    #[serde(default)]
    pub url: Option<String>,
}

impl ContextSettings {
    fn named(name: &str) -> Self {
        Self {
            database_url: ConnectionUrl::new(format!("sqlite://shop-{name}.db?mode=rwc")),
            url: None,
        }
    }

    fn validate(&self, key: &str) -> Result<(), Invalid> {
        self.database_url
            .check_database(cfg!(feature = "mysql"))
            .map_err(|reason| Invalid::new(format!("{key}.database_url"), reason))?;
        if let Some(url) = &self.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Invalid::new(
                format!("{key}.url"),
                "must be an http:// or https:// URL",
            ));
        }
        Ok(())
    }
}

/// The administrator account made at start-up: both keys or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Its sign-in address.
    pub email: Option<String>,
    /// Its password (12 characters or more); never printed.
    pub password: Option<Secret>,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            web_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            internal_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            jwt_secret: None,
            admin: AdminSettings::default(),
            inventory: ContextSettings::named("inventory"),
            wallet: ContextSettings::named("wallet"),
            web: WebSettings::default(),
        }
    }
}

impl Config for ShopSettings {
    fn validate(&self) -> Result<(), Invalid> {
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|secret| secret.len() < 32)
        {
            return Err(Invalid::new("jwt_secret", "must be at least 32 bytes"));
        }
        self.inventory.validate("inventory")?;
        self.wallet.validate("wallet")?;
        if let Some(url) = &self.web.api_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Invalid::new(
                "web.api_url",
                "must be an http:// or https:// URL",
            ));
        }
        match (&self.admin.email, &self.admin.password) {
            (Some(email), Some(password)) => {
                if Email::parse(email).is_err() {
                    return Err(Invalid::new("admin.email", "is not an email address"));
                }
                let usable = password
                    .expose_str()
                    .is_some_and(|text| Password::new(text).is_ok());
                if !usable {
                    return Err(Invalid::new(
                        "admin.password",
                        format!(
                            "must be {} to {} characters",
                            Password::MIN_CHARS,
                            Password::MAX_CHARS
                        ),
                    ));
                }
                Ok(())
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err(Invalid::new(
                "admin.password",
                "must be set with admin.email",
            )),
            (None, Some(_)) => Err(Invalid::new(
                "admin.email",
                "must be set with admin.password",
            )),
        }
    }
}

/// Production refuses the random signing key that would sign users out on every
/// restart; so does a shop split over processes (`only`, or a context's
/// `url`), whose service tokens must be checked by the other processes.
///
/// # Errors
/// `jwt_secret` missing in production or across processes.
pub fn check_for(
    environment: Environment,
    settings: &ShopSettings,
    split: bool,
) -> Result<(), ConfigError> {
    if split && settings.jwt_secret.is_none() {
        return Err(ConfigError::Missing {
            key: "jwt_secret".into(),
            reason: "a shop run as several processes signs and checks service tokens with one \
                     key (SHOP_JWT_SECRET)"
                .into(),
        });
    }
    if environment == Environment::Production && settings.jwt_secret.is_none() {
        return Err(ConfigError::Missing {
            key: "jwt_secret".into(),
            reason: "production needs a signing key that outlives the process (SHOP_JWT_SECRET)"
                .into(),
        });
    }
    Ok(())
}
