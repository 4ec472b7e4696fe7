//! Typed settings, checked at start-up: the defaults in `config/defaults.env`,
//! each overridden by an environment variable of the same name.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Built into the binary, so the service starts the same from any directory.
const DEFAULTS: &str = include_str!("../config/defaults.env");

/// Where the service keeps its data and listens.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `APP_DATABASE_URL`: SQLite (`sqlite://file.db?mode=rwc`) or PostgreSQL.
    pub database_url: String,
    /// `APP_API_ADDR`: where the API listens.
    pub api_addr: SocketAddr,
    /// `APP_WEB_PAGE`: whether to serve the web page at all.
    pub web_page: bool,
    /// `APP_WEB_ADDR`: where the web page listens.
    pub web_addr: SocketAddr,
}

// The database URL may carry a password, so only its scheme is ever printed.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.database_url.split(':').next().unwrap_or_default();
        f.debug_struct("Settings")
            .field("database", &scheme)
            .field("api_addr", &self.api_addr)
            .field("web_page", &self.web_page)
            .field("web_addr", &self.web_addr)
            .finish()
    }
}

/// A setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Neither the environment nor the defaults give a value.
    #[error("{variable} is not set and config/defaults.env has no default for it")]
    Missing {
        /// The variable.
        variable: &'static str,
    },
    /// The value does not parse.
    #[error("{variable}={value:?} is not valid: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// What it was set to.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

impl Settings {
    /// The defaults, overridden by the environment where it says otherwise.
    ///
    /// # Errors
    /// Names the variable that is missing or whose value cannot be used.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let defaults = defaults();
        let read = |variable: &'static str| {
            lookup(variable)
                .or_else(|| defaults.get(variable).map(|value| (*value).to_owned()))
                .ok_or(SettingsError::Missing { variable })
        };
        Ok(Self {
            database_url: read("APP_DATABASE_URL")?,
            api_addr: parse("APP_API_ADDR", read("APP_API_ADDR")?)?,
            web_page: parse("APP_WEB_PAGE", read("APP_WEB_PAGE")?)?,
            web_addr: parse("APP_WEB_ADDR", read("APP_WEB_ADDR")?)?,
        })
    }
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped.
fn defaults() -> HashMap<&'static str, &'static str> {
    DEFAULTS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim(), value.trim()))
        .collect()
}

fn parse<T>(variable: &'static str, value: String) -> Result<T, SettingsError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|error: T::Err| SettingsError::Invalid {
            variable,
            reason: error.to_string(),
            value,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_file_gives_every_setting() {
        let settings = Settings::from_lookup(|_| None).expect("complete, valid defaults");
        assert!(settings.database_url.contains("://"));
        assert_ne!(settings.api_addr, settings.web_addr);
    }

    #[test]
    fn the_environment_overrides_the_defaults() {
        let settings = Settings::from_lookup(|name| match name {
            "APP_API_ADDR" => Some("127.0.0.1:9090".into()),
            "APP_WEB_PAGE" => Some("false".into()),
            _ => None,
        })
        .expect("valid settings");
        let defaults = Settings::from_lookup(|_| None).expect("valid defaults");
        assert_eq!(settings.api_addr, SocketAddr::from(([127, 0, 0, 1], 9090)));
        assert!(!settings.web_page);
        assert_eq!(settings.web_addr, defaults.web_addr);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let error = Settings::from_lookup(|name| {
            (name == "APP_WEB_ADDR").then(|| "not an address".to_owned())
        })
        .expect_err("invalid address");
        assert!(
            error
                .to_string()
                .starts_with("APP_WEB_ADDR=\"not an address\" is not valid"),
            "{error}"
        );
    }

    #[test]
    fn the_database_password_never_prints() {
        let settings = Settings::from_lookup(|name| {
            (name == "APP_DATABASE_URL").then(|| "postgres://app:s3cret@db/app".to_owned())
        })
        .expect("valid settings");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("postgres"), "{printed}");
    }
}
