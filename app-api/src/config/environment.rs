use std::fmt;
use std::str::FromStr;

use super::ConfigError;

/// Which environment a service runs in; it picks the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    /// A developer's machine: the default.
    #[default]
    Development,
    /// Automated tests.
    Test,
    /// Serving real users.
    Production,
}

impl Environment {
    /// `development`, `test` or `production`: the name of its file, too.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }

    /// The environment named by the variable `variable`, or
    /// [`Environment::Development`] when it is unset.
    ///
    /// # Errors
    /// When the variable names no environment.
    pub fn from_variable(variable: &str) -> Result<Self, ConfigError> {
        match std::env::var(variable) {
            Ok(name) => name.parse().map_err(|_| ConfigError::UnknownEnvironment {
                variable: variable.to_owned(),
            }),
            Err(_) => Ok(Self::default()),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not `development` (`dev`), `test` or `production` (`prod`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected development, test or production")]
pub struct UnknownEnvironment;

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "production" | "prod" => Ok(Self::Production),
            _ => Err(UnknownEnvironment),
        }
    }
}
