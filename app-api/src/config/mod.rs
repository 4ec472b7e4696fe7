//! Typed, layered configuration: a service's settings are one `serde` struct,
//! filled from its defaults, then a TOML file for the running environment, then
//! environment variables, each layer overriding the one before; checked at
//! start-up with an error naming the key and where its value came from; and
//! printable with every [`crate::Secret`] masked.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use strata_app_api::Secret;
//! use strata_app_api::config::{Config, Invalid, Loader};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct Settings {
//!     port: u16,
//!     seed: bool,
//!     api_key: Option<Secret>,
//! }
//!
//! impl Default for Settings {
//!     fn default() -> Self {
//!         Self { port: 8080, seed: true, api_key: None }
//!     }
//! }
//!
//! impl Config for Settings {
//!     fn validate(&self) -> Result<(), Invalid> {
//!         match &self.api_key {
//!             Some(key) if key.len() < 16 => Err(Invalid::new("api_key", "must be 16 bytes or more")),
//!             _ => Ok(()),
//!         }
//!     }
//! }
//!
//! let loaded = Loader::new("DEMO")
//!     .file("production.toml", "seed = false\nport = 9000")
//!     .variables([("DEMO_PORT".to_owned(), "9100".to_owned())])
//!     .load::<Settings>()
//!     .expect("valid");
//! assert_eq!(loaded.value().port, 9100);
//! assert!(!loaded.value().seed);
//!
//! let error = Loader::new("DEMO")
//!     .variables([("DEMO_API_KEY".to_owned(), "short".to_owned())])
//!     .load::<Settings>()
//!     .expect_err("too short");
//! assert_eq!(
//!     error.to_string(),
//!     "configuration key `api_key` (from environment variable DEMO_API_KEY) is not valid: must be 16 bytes or more"
//! );
//! ```
//!
//! Environment variables are named `PREFIX_` and the key, upper-cased. A nested
//! key's levels are joined by `_` when that names exactly one key, or by `__`
//! always (`DEMO_HTTP__REQUEST_TIMEOUT` for `http.request_timeout`). A
//! variable's text is taken as a string first; when the key wants another type,
//! it is read as a TOML value (`true`, `8080`, `["a", "b"]`).

pub mod duration;
mod environment;
mod groups;
mod loader;
mod render;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use environment::{Environment, UnknownEnvironment};
pub use groups::IdempotencySettings;
pub use loader::{Loader, Pair};

/// A service's settings: a `serde` struct with a [`Default`] (its defaults layer),
/// and the rules its values must meet beyond their types.
///
/// Mark the struct `#[serde(default)]` so a key no layer sets keeps its default,
/// and `#[serde(deny_unknown_fields)]` so a misspelt key in a file is an error
/// rather than silently ignored. Keep optional groups as structs of `Option`
/// fields rather than an `Option` of a struct: the loader learns the keys that
/// exist from the defaults, and that is how `PREFIX_ADMIN_EMAIL` finds
/// `admin.email`.
pub trait Config: Serialize + DeserializeOwned + Default {
    /// Checks rules that types cannot express (lengths, pairs set together).
    ///
    /// # Errors
    /// The first key that breaks a rule, and why.
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// A key whose value breaks a rule of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    key: String,
    reason: String,
}

impl Invalid {
    /// `key` (dotted, as in the file: `http.request_timeout`) is wrong because of
    /// `reason`. The reason must not quote the value: it may be a secret.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The dotted key at fault.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Why its value breaks the rule.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration's own default.
    Default,
    /// A configuration file, by the name it was given.
    File(String),
    /// An environment variable, by name.
    Variable(String),
    /// A command-line argument, by name.
    Argument(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(name) => write!(f, "from {name}"),
            Self::Variable(name) => write!(f, "from environment variable {name}"),
            Self::Argument(name) => write!(f, "from command-line argument {name}"),
        }
    }
}

/// Configuration could not be loaded. Each message is one line that names the
/// key or file at fault; none quotes a value, which may be a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file is not valid TOML.
    #[error("{origin} is not valid TOML: {reason}")]
    Syntax {
        /// The file's name.
        origin: String,
        /// Where and what the error is.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key's value has the wrong type, does not parse, or breaks a rule.
    #[error("configuration key `{key}` ({origin}) is not valid: {reason}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// Where its value came from.
        origin: Origin,
        /// Why it is not valid.
        reason: String,
    },
    /// A key that must be set is not.
    #[error("configuration key `{key}` is not set: {reason}")]
    Missing {
        /// The dotted key.
        key: String,
        /// Why it is needed, and how to set it.
        reason: String,
    },
    /// An environment variable could name more than one key.
    #[error(
        "{variable} could set `{first}` or `{second}`: separate the levels with `__` to choose"
    )]
    Ambiguous {
        /// The variable.
        variable: String,
        /// One key it could set.
        first: String,
        /// Another.
        second: String,
    },
    /// The environment's name is not one of the known environments.
    #[error("{variable} names no environment: expected development, test or production")]
    UnknownEnvironment {
        /// The variable that named it.
        variable: String,
    },
}

/// A loaded, validated configuration, with where each key's value came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    value: T,
    origins: BTreeMap<String, Origin>,
    ignored: Vec<String>,
}

impl<T: Serialize> Loaded<T> {
    /// The configuration.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The configuration, for the composition root to take apart.
    pub fn into_value(self) -> T {
        self.value
    }

    /// Where the value of `key` (dotted) came from.
    #[must_use]
    pub fn origin(&self, key: &str) -> Origin {
        origin_of(&self.origins, key)
    }

    /// Variables with the prefix that name no key, so were not used; worth a
    /// warning, since a misspelt one would otherwise go unnoticed.
    #[must_use]
    pub fn ignored_variables(&self) -> &[String] {
        &self.ignored
    }

    /// The effective configuration as TOML, secrets masked, each key not at its
    /// default followed by a comment saying where its value came from.
    #[must_use]
    pub fn render(&self) -> String {
        render::render(&self.value, &self.origins)
    }
}

/// The origin recorded for `key`, or for the nearest enclosing key (a list is
/// set as a whole, an error may point inside it).
fn origin_of(origins: &BTreeMap<String, Origin>, key: &str) -> Origin {
    let mut key = key;
    loop {
        if let Some(origin) = origins.get(key) {
            return origin.clone();
        }
        match key.rfind(['.', '[']) {
            Some(cut) => key = &key[..cut],
            None => return Origin::Default,
        }
    }
}

/// A connection URL (`postgres://user:password@host/db`, `redis://:password@host`)
/// whose password never prints: `Debug` and `Serialize` show it as
/// `[redacted]`, so the effective configuration still shows where the service
/// connects.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// Wraps `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// Whether this URL names a database a service can open: SQLite and
    /// PostgreSQL always, MySQL or MariaDB when `mysql` (the service was built
    /// with the driver); otherwise why not, for an [`Invalid`].
    ///
    /// # Errors
    /// The reason, as a configuration error puts it.
    pub fn check_database(&self, mysql: bool) -> Result<(), &'static str> {
        let scheme = self.0.split_once(':').map_or("", |(scheme, _)| scheme);
        let authority = self.0.contains("://");
        match scheme {
            "sqlite" => Ok(()),
            "postgres" | "postgresql" if authority => Ok(()),
            "mysql" if authority && mysql => Ok(()),
            "mysql" if authority => {
                Err("is a mysql:// URL, which needs the service built with the `mysql` feature")
            }
            _ if mysql => Err("must be a sqlite:, postgres:// or mysql:// URL"),
            _ => Err("must be a sqlite: or postgres:// URL"),
        }
    }

    /// The whole URL, password included, for the one place that connects.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `[redacted]`: the one in its
    /// user information, and any query parameter that carries a secret
    /// (`?password=`, `sslpassword`, `token`, ...).
    #[must_use]
    pub fn masked(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials
                    .split_once(':')
                    .map_or(credentials, |(user, _)| user);
                if credentials.contains(':') {
                    format!("{user}:{}@{host}", crate::REDACTED)
                } else {
                    format!("{user}@{host}")
                }
            }
            None => authority.to_owned(),
        };
        format!("{scheme}://{authority}{}", masked_query(tail))
    }
}

/// Names of query parameters that carry a secret, compared without case.
const SECRET_PARAMETERS: [&str; 9] = [
    "password",
    "passwd",
    "pwd",
    "pass",
    "sslpassword",
    "secret",
    "token",
    "access_token",
    "api_key",
];

/// `tail` (path, query, fragment) with the values of secret query parameters
/// replaced by `[redacted]`; everything else as written.
fn masked_query(tail: &str) -> String {
    let Some((path, rest)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (rest, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let secret = form_urlencoded::parse(pair.as_bytes())
                .next()
                .is_some_and(|(name, _)| {
                    SECRET_PARAMETERS
                        .iter()
                        .any(|secret| name.eq_ignore_ascii_case(secret))
                });
            match pair.split_once('=') {
                Some((name, _)) if secret => format!("{name}={}", crate::REDACTED),
                _ => pair.to_owned(),
            }
        })
        .collect();
    let mut masked = format!("{path}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        masked.push('#');
        masked.push_str(fragment);
    }
    masked
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for ConnectionUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

impl From<&str> for ConnectionUrl {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for ConnectionUrl {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_is_checked_by_its_scheme() {
        for url in [
            "sqlite://shop.db?mode=rwc",
            "sqlite::memory:",
            "postgres://u@h/db",
            "postgresql://u@h/db",
        ] {
            assert_eq!(
                ConnectionUrl::new(url).check_database(false),
                Ok(()),
                "{url}"
            );
        }
        for url in [
            "",
            "shop.db",
            "postgres:db",
            "redis://h",
            "mysqlx://h/db",
            "mysql:db",
        ] {
            assert!(
                ConnectionUrl::new(url).check_database(true).is_err(),
                "{url}"
            );
        }
        let mysql = ConnectionUrl::new("mysql://root@127.0.0.1:3306/shop");
        assert_eq!(mysql.check_database(true), Ok(()));
        assert_eq!(
            mysql.check_database(false),
            Err("is a mysql:// URL, which needs the service built with the `mysql` feature")
        );
    }

    #[test]
    fn a_connection_url_hides_only_its_password() {
        let url =
            ConnectionUrl::new("postgres://shop:hunter2@db.internal:5432/shop?sslmode=require");
        assert_eq!(
            url.masked(),
            "postgres://shop:[redacted]@db.internal:5432/shop?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.expose().contains("hunter2"));
        for plain in [
            "sqlite://shop.db?mode=rwc",
            "postgres://postgres@127.0.0.1/shop",
            "redis://cache:6379",
        ] {
            assert_eq!(ConnectionUrl::new(plain).masked(), plain);
        }
        assert_eq!(
            ConnectionUrl::new("redis://:pw@cache").masked(),
            "redis://:[redacted]@cache"
        );
    }

    #[test]
    fn a_password_in_the_query_string_is_hidden_too() {
        assert_eq!(
            ConnectionUrl::new(
                "postgres://db/shop?user=shop&Password=hunter2&sslmode=require&p%61ssword=x#f"
            )
            .masked(),
            "postgres://db/shop?user=shop&Password=[redacted]&sslmode=require&p%61ssword=[redacted]#f"
        );
        assert_eq!(
            ConnectionUrl::new("redis://cache/0?token=abc").masked(),
            "redis://cache/0?token=[redacted]"
        );
    }
}
