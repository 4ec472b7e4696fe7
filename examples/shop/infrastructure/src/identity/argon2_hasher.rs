use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use async_trait::async_trait;
use shop_domain::identity::{Password, PasswordHash, PasswordHasher};
use strata_domain::RepositoryError;

/// argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane, the
/// OWASP baseline), run on tokio's blocking pool so hashing never stalls the
/// threads serving requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Argon2PasswordHasher;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
struct HashingFailed(String);

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, RepositoryError> {
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.expose().as_bytes())
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|error| HashingFailed(error.to_string()))
        })
        .await
        .map_err(RepositoryError::storage)?
        .map_err(RepositoryError::storage)
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        let password = password.clone();
        let hash = hash.as_phc().to_owned();
        tokio::task::spawn_blocking(move || {
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
        let hasher = Argon2PasswordHasher;
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
