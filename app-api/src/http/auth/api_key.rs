use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Secret};
use crate::application::{Principal, PrincipalKind};

/// Keys shorter than this are refused: a key is only as strong as it is long,
/// and a short one could be guessed.
const MIN_KEY_BYTES: usize = 32;

type KeyDigest = [u8; 32];

/// One service allowed to call with an API key, and what it may do.
///
/// Only the SHA-256 digest of the key is kept, so a memory dump or a stray log
/// of the configuration does not give the key away.
#[derive(Clone)]
pub struct ServiceCredential {
    service: String,
    permissions: Vec<String>,
    digest: KeyDigest,
}

impl fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceCredential")
            .field("service", &self.service)
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

/// A service credential that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyConfigError {
    /// The service name is empty.
    #[error("an API key needs a service name")]
    EmptyService,
    /// The key is too short to resist guessing.
    #[error("the API key of `{service}` must be at least {MIN_KEY_BYTES} bytes")]
    KeyTooShort {
        /// The service it belongs to.
        service: String,
    },
    /// The digest given is not 64 hexadecimal digits.
    #[error("the API key digest of `{service}` is not a SHA-256 digest in hex")]
    MalformedDigest {
        /// The service it belongs to.
        service: String,
    },
    /// Two services were given the same key.
    #[error("`{first}` and `{second}` have the same API key")]
    DuplicateKey {
        /// One service.
        first: String,
        /// The other.
        second: String,
    },
}

impl ServiceCredential {
    /// `service` calling with `key`, granted nothing yet.
    ///
    /// # Errors
    /// When the service name is empty or the key shorter than 32 bytes.
    pub fn with_key(service: impl Into<String>, key: &Secret) -> Result<Self, ApiKeyConfigError> {
        let service = non_empty(service.into())?;
        if key.len() < MIN_KEY_BYTES {
            return Err(ApiKeyConfigError::KeyTooShort { service });
        }
        Ok(Self {
            service,
            permissions: Vec::new(),
            digest: Sha256::digest(key.expose()).into(),
        })
    }

    /// `service` calling with the key whose SHA-256 digest is `hex` (from
    /// [`ApiKeys::digest_hex`]), so that configuration need not hold the key.
    ///
    /// # Errors
    /// When the service name is empty or `hex` is not 64 hexadecimal digits.
    pub fn with_key_digest(
        service: impl Into<String>,
        hex: &str,
    ) -> Result<Self, ApiKeyConfigError> {
        let service = non_empty(service.into())?;
        let Some(digest) = parse_hex_digest(hex.trim()) else {
            return Err(ApiKeyConfigError::MalformedDigest { service });
        };
        Ok(Self {
            service,
            permissions: Vec::new(),
            digest,
        })
    }

    /// The same credential granted `permission`.
    #[must_use]
    pub fn with_permission(mut self, permission: impl Into<String>) -> Self {
        self.permissions.push(permission.into());
        self
    }
}

fn non_empty(service: String) -> Result<String, ApiKeyConfigError> {
    if service.trim().is_empty() {
        Err(ApiKeyConfigError::EmptyService)
    } else {
        Ok(service)
    }
}

fn parse_hex_digest(hex: &str) -> Option<KeyDigest> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |digit: u8| {
        char::from(digit)
            .to_digit(16)
            .and_then(|n| u8::try_from(n).ok())
    };
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(digest)
}

/// The API keys services call with, presented as `Authorization: ApiKey <key>`.
///
/// Keys are compared by their SHA-256 digests, in constant time. A slow password
/// hash (argon2) would add nothing here: an API key is long and random, so
/// there is no dictionary to slow down, while hashing every request with
/// argon2 would cost tens of milliseconds of CPU that any caller could demand.
#[derive(Clone)]
pub struct ApiKeys {
    credentials: Vec<ServiceCredential>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.credentials
                    .iter()
                    .map(|credential| &credential.service),
            )
            .finish()
    }
}

impl ApiKeys {
    /// The keys of `credentials`.
    ///
    /// # Errors
    /// [`ApiKeyConfigError::DuplicateKey`] when two services share a key, which
    /// would make the caller ambiguous.
    pub fn new(
        credentials: impl IntoIterator<Item = ServiceCredential>,
    ) -> Result<Self, ApiKeyConfigError> {
        let credentials: Vec<ServiceCredential> = credentials.into_iter().collect();
        for (index, credential) in credentials.iter().enumerate() {
            if let Some(earlier) = credentials[..index]
                .iter()
                .find(|earlier| earlier.digest == credential.digest)
            {
                return Err(ApiKeyConfigError::DuplicateKey {
                    first: earlier.service.clone(),
                    second: credential.service.clone(),
                });
            }
        }
        Ok(Self { credentials })
    }

    /// The SHA-256 digest of `key` in hex: what to put in configuration for
    /// [`ServiceCredential::with_key_digest`].
    #[must_use]
    pub fn digest_hex(key: &Secret) -> String {
        crate::hex(&Sha256::digest(key.expose()))
    }

    /// The service whose key `presented` is.
    ///
    /// # Errors
    /// [`AuthError::UnknownApiKey`] when no service has it.
    pub fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        let digest: KeyDigest = Sha256::digest(presented.as_bytes()).into();
        // Every digest is compared, each in constant time, so the time taken
        // does not tell how close a guess came.
        let mut matched = None;
        for credential in &self.credentials {
            if bool::from(credential.digest[..].ct_eq(&digest[..])) {
                matched = Some(credential);
            }
        }
        let credential = matched.ok_or(AuthError::UnknownApiKey)?;
        Ok(credential.permissions.iter().fold(
            Principal::new(credential.service.clone(), PrincipalKind::Service),
            |principal, permission| principal.with_permission(permission.clone()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_inventory_7d0f3c1e9a4b4f6a8e2d5c7b9a1f3e5d";

    #[test]
    fn a_digest_in_configuration_matches_its_key() {
        let hex = ApiKeys::digest_hex(&Secret::from(KEY));
        assert_eq!(hex.len(), 64);
        let keys = ApiKeys::new([ServiceCredential::with_key_digest("inventory", &hex)
            .expect("a valid digest")
            .with_permission("stock.reserve")])
        .expect("valid keys");
        let principal = keys.authenticate(KEY).expect("the key is known");
        assert_eq!(principal.subject(), "inventory");
        assert_eq!(principal.kind(), PrincipalKind::Service);
        assert!(principal.has_permission("stock.reserve"));
        assert_eq!(
            keys.authenticate(&KEY.replace('7', "8")),
            Err(AuthError::UnknownApiKey)
        );
    }

    #[test]
    fn unusable_credentials_are_refused() {
        assert_eq!(
            ServiceCredential::with_key("svc", &Secret::from("short")).map(|_| ()),
            Err(ApiKeyConfigError::KeyTooShort {
                service: "svc".into()
            })
        );
        assert!(ServiceCredential::with_key_digest("svc", "abc").is_err());
        assert!(ServiceCredential::with_key_digest("svc", &"g".repeat(64)).is_err());
        assert_eq!(
            ServiceCredential::with_key(" ", &Secret::from(KEY)).map(|_| ()),
            Err(ApiKeyConfigError::EmptyService)
        );
        let twice = ApiKeys::new([
            ServiceCredential::with_key("a", &Secret::from(KEY)).expect("valid"),
            ServiceCredential::with_key("b", &Secret::from(KEY)).expect("valid"),
        ]);
        assert!(matches!(twice, Err(ApiKeyConfigError::DuplicateKey { .. })));
    }

    #[test]
    fn debug_output_shows_services_not_keys() {
        let keys = ApiKeys::new([
            ServiceCredential::with_key("billing", &Secret::from(KEY)).expect("valid")
        ])
        .expect("valid");
        let printed = format!("{keys:?}");
        assert_eq!(printed, r#"["billing"]"#);
    }
}
