use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use async_trait::async_trait;
use shop_domain::identity::{Password, PasswordHash, PasswordHasher};
use strata_domain::RepositoryError;
use tokio::sync::Semaphore;

/// argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane, the
/// OWASP baseline), run on tokio's blocking pool so hashing never stalls the
/// threads serving requests, and at most one hash per core at a time: a burst of
/// sign-ups queues for the cores (each hash holds 19 MiB) instead of taking the
/// machine's memory and every core from the requests that need neither.
#[derive(Debug, Clone)]
pub struct Argon2PasswordHasher {
    permits: Arc<Semaphore>,
}

impl Default for Argon2PasswordHasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }
}

impl Argon2PasswordHasher {
    /// A hasher running at most `at_once` hashes (at least one) at a time.
    #[must_use]
    pub fn new(at_once: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(at_once.max(1))),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RepositoryError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(RepositoryError::storage)?;
        tokio::task::spawn_blocking(move || {
            let answer = work();
            drop(permit);
            answer
        })
        .await
        .map_err(RepositoryError::storage)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
struct HashingFailed(String);

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, RepositoryError> {
        let password = password.clone();
        self.run(move || {
            Argon2::default()
                .hash_password(password.expose().as_bytes())
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|error| HashingFailed(error.to_string()))
        })
        .await?
        .map_err(RepositoryError::storage)
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        let password = password.clone();
        let hash = hash.as_phc().to_owned();
        self.run(move || {
            Phc::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = Argon2PasswordHasher::default();
        let password = Password::new("correct horse battery").expect("long enough");
        let hash = hasher.hash(&password).await.expect("hashed");
        assert!(hash.as_phc().starts_with("$argon2id$"));
        assert!(hasher.verify(&password, &hash).await);
        assert!(
            !hasher
                .verify(&Password::offered("correct horse battery!"), &hash)
                .await
        );
        assert!(
            !hasher
                .verify(&password, &PasswordHash::from_phc("not a hash"))
                .await
        );
    }
}
