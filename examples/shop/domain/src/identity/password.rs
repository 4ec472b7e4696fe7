use std::fmt;

use async_trait::async_trait;
use strata_domain::ValidationFailure;

/// A password as the user typed it. It never prints, and only a hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The shortest password accepted, in characters.
    pub const MIN_CHARS: usize = 12;
    /// The longest, so hashing one stays cheap.
    pub const MAX_CHARS: usize = 128;

    /// A password to set: 12 to 128 characters.
    ///
    /// # Errors
    /// When it is too short or too long.
    pub fn new(raw: &str) -> Result<Self, ValidationFailure> {
        let length = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&length) {
            return Err(ValidationFailure::single(
                "",
                "length",
                format!(
                    "must be {} to {} characters",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password as offered, not yet checked: at sign-in it is compared with the
    /// stored hash as it is (the rules for new passwords may have changed since it
    /// was set); to set one, [`Password::new`] checks the rules.
    #[must_use]
    pub fn offered(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// Whether it satisfies the rules for a new password.
    ///
    /// # Errors
    /// As [`Password::new`].
    pub fn check_new(&self) -> Result<(), ValidationFailure> {
        Self::new(&self.0).map(drop)
    }

    /// The characters, for the hasher only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A password hash in PHC string format (`$argon2id$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored PHC string.
    #[must_use]
    pub fn from_phc(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string, for storage.
    #[must_use]
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// Hashes passwords and checks them against hashes (argon2id in the adapter).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A salted hash of `password`.
    async fn hash(
        &self,
        password: &Password,
    ) -> Result<PasswordHash, strata_domain::RepositoryError>;

    /// Whether `password` matches `hash`. Takes as long for a wrong password as for a
    /// right one.
    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool;

    /// A hash of a random password no one is told, with the parameters of
    /// [`PasswordHasher::hash`]: checked against when an account does not
    /// exist, so that a refusal takes as long either way. Made once, at start.
    async fn decoy(&self) -> Result<PasswordHash, strata_domain::RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_characters() {
        let password = Password::new("correct horse battery").expect("long enough");
        assert_eq!(format!("{password:?}"), "Password([redacted])");
        let hash = PasswordHash::from_phc("$argon2id$v=19$secret");
        assert!(!format!("{hash:?}").contains("secret"));
    }

    #[test]
    fn new_passwords_have_a_length_range() {
        assert!(Password::new("short").is_err());
        assert!(Password::new(&"x".repeat(129)).is_err());
        assert!(Password::new("twelve chars").is_ok());
    }
}
