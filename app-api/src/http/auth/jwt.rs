use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use strata_domain::ports::{Clock, SystemClock};

use super::{AuthError, Secret};
use crate::application::{Principal, PrincipalKind};

/// The `typ` of the tokens issued here (RFC 9068), so that another kind of JWT
/// signed with the same key — an ID token, a refresh token — is never taken for
/// an access token.
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Tokens longer than this are refused before any decoding work.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A JWS signature algorithm, named as in the JOSE registry. A service pins one;
/// tokens naming any other are refused.
#[allow(clippy::upper_case_acronyms, reason = "the JOSE registry's names")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256, a shared secret of at least 32 bytes.
    HS256,
    /// HMAC with SHA-384, a shared secret of at least 48 bytes.
    HS384,
    /// HMAC with SHA-512, a shared secret of at least 64 bytes.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl JwtAlgorithm {
    const ALL: [Self; 12] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The name the `alg` header carries.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    fn family(self) -> Family {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => Family::Hmac,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                Family::Rsa
            }
            Self::ES256 | Self::ES384 => Family::Ec,
            Self::EdDSA => Family::Ed,
        }
    }

    /// RFC 7518 §3.2: an HMAC key at least as long as the hash's output.
    fn min_secret_bytes(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }

    fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::HS384 => Algorithm::HS384,
            Self::HS512 => Algorithm::HS512,
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a supported [`JwtAlgorithm`] (`none` among them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a supported JWT algorithm")]
pub struct UnknownAlgorithm(String);

impl FromStr for JwtAlgorithm {
    type Err = UnknownAlgorithm;

    /// The exact registry name, as configuration spells it: `HS256`, `EdDSA`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
            .ok_or_else(|| UnknownAlgorithm(name.to_owned()))
    }
}

/// One key a service signs or verifies tokens with, named by its key id.
#[derive(Debug, Clone)]
pub struct JwtKey {
    /// The key id, written in the `kid` header of every token it signs.
    pub kid: String,
    /// The key itself.
    pub material: KeyMaterial,
}

/// What a [`JwtKey`] is made of; which kind fits depends on the algorithm.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// A shared secret, for the HS algorithms; it both signs and verifies.
    SharedSecret(Secret),
    /// A PEM private key (PKCS#8, or PKCS#1 for RSA) and its PEM public key,
    /// for a service that issues tokens.
    KeyPair {
        /// The private key, which signs.
        private_pem: Secret,
        /// The public key, which verifies.
        public_pem: String,
    },
    /// A PEM public key only, for a service that verifies tokens another issues.
    PublicKey(String),
}

impl JwtKey {
    /// A shared secret for an HS algorithm.
    pub fn shared_secret(kid: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            kid: kid.into(),
            material: KeyMaterial::SharedSecret(secret.into()),
        }
    }

    /// A PEM key pair for an RS, PS, ES or EdDSA algorithm.
    pub fn key_pair(
        kid: impl Into<String>,
        private_pem: impl Into<Secret>,
        public_pem: impl Into<String>,
    ) -> Self {
        Self {
            kid: kid.into(),
            material: KeyMaterial::KeyPair {
                private_pem: private_pem.into(),
                public_pem: public_pem.into(),
            },
        }
    }

    /// A PEM public key, to verify only.
    pub fn public_key(kid: impl Into<String>, public_pem: impl Into<String>) -> Self {
        Self {
            kid: kid.into(),
            material: KeyMaterial::PublicKey(public_pem.into()),
        }
    }
}

/// How a service issues and checks its access tokens.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The `iss` written into tokens and required of them.
    pub issuer: String,
    /// The `aud` written into tokens and required of them: the API the tokens
    /// are for.
    pub audience: String,
    /// The one algorithm tokens are signed with; any other is refused.
    pub algorithm: JwtAlgorithm,
    /// Every key a token may be signed with. During a rotation this holds the
    /// new key and the old one until tokens signed by the old have expired.
    pub keys: Vec<JwtKey>,
    /// The key new tokens are signed with; `None` for a service that only
    /// verifies.
    pub signing_kid: Option<String>,
    /// How far clocks may disagree when checking `exp` and `nbf`.
    pub leeway: Duration,
    /// How long an access token is valid after it is issued.
    pub access_token_lifetime: Duration,
}

/// Settings a [`TokenService`] cannot work with; found at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// The issuer or audience is empty.
    #[error("the token issuer and audience must not be empty")]
    MissingIssuerOrAudience,
    /// The access-token lifetime is under a second.
    #[error("the access-token lifetime must be at least one second")]
    LifetimeTooShort,
    /// No key is configured.
    #[error("at least one token key must be configured")]
    NoKeys,
    /// A key has an empty id.
    #[error("every token key needs a non-empty kid")]
    EmptyKid,
    /// Two keys share an id.
    #[error("two token keys have the kid `{0}`")]
    DuplicateKid(String),
    /// The signing key id names no configured key.
    #[error("the signing kid `{0}` names no configured key")]
    UnknownSigningKey(String),
    /// The signing key has no private part.
    #[error("the signing key `{0}` has no private key to sign with")]
    CannotSign(String),
    /// A key is not of the kind the algorithm needs.
    #[error("key `{kid}` is not a kind of key {algorithm} uses")]
    WrongKeyKind {
        /// The key's id.
        kid: String,
        /// The pinned algorithm.
        algorithm: JwtAlgorithm,
    },
    /// A shared secret is shorter than its algorithm needs.
    #[error("the shared secret `{kid}` must be at least {min_bytes} bytes for {algorithm}")]
    SecretTooShort {
        /// The key's id.
        kid: String,
        /// The pinned algorithm.
        algorithm: JwtAlgorithm,
        /// The shortest acceptable secret.
        min_bytes: usize,
    },
    /// A PEM key does not parse as a key of the algorithm's family.
    #[error("key `{kid}` is not a valid PEM key for {algorithm}")]
    InvalidKey {
        /// The key's id.
        kid: String,
        /// The pinned algorithm.
        algorithm: JwtAlgorithm,
        /// What the parser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The signing key's public half does not verify what its private half
    /// signs.
    #[error("the public key of `{0}` does not match its private key")]
    KeyPairMismatch(String),
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The service was configured without a signing key.
    #[error("this service has no signing key; it only verifies tokens")]
    NoSigningKey,
    /// The principal cannot be written into a token: an empty subject, or a
    /// permission with whitespace in it (the `scope` claim separates by spaces).
    #[error("the principal cannot be put into a token: {0}")]
    UnrepresentablePrincipal(&'static str),
    /// Signing failed.
    #[error("the token could not be signed")]
    Signing(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// An access token just issued.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT, for the `Authorization: Bearer` header.
    pub token: String,
    /// When it stops being accepted, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// Its `jti`, to name it in logs or a revocation list.
    pub token_id: String,
}

// The token is a credential: it must not reach a log through a stray `{:?}`.
impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("token_id", &self.token_id)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TokenKind {
    User,
    Service,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: &'a str,
    roles: Vec<&'a str>,
    scope: String,
    kind: TokenKind,
}

#[derive(Deserialize)]
struct VerifiedClaims {
    sub: String,
    exp: u64,
    nbf: u64,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scope: String,
    kind: TokenKind,
}

/// The header fields looked at before any cryptography runs.
#[derive(Deserialize)]
struct UntrustedHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Issues access tokens and verifies them.
///
/// Verification refuses a token unless its header names the pinned algorithm,
/// its `typ` is `at+jwt`, its `kid` names a configured key (a token without a
/// `kid` is accepted only while exactly one key is configured), its signature
/// verifies, and its `iss`, `aud`, `exp` and `nbf` all hold.
pub struct TokenService {
    algorithm: JwtAlgorithm,
    issuer: String,
    audience: String,
    leeway_secs: u64,
    lifetime_secs: u64,
    signing: Option<(String, EncodingKey)>,
    verifying: BTreeMap<String, DecodingKey>,
    validation: Validation,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("signing_kid", &self.signing.as_ref().map(|(kid, _)| kid))
            .field("kids", &self.verifying.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A token service for `settings`, timed by the machine's clock.
    ///
    /// # Errors
    /// When the settings cannot work; see [`JwtConfigError`].
    pub fn new(settings: JwtSettings) -> Result<Self, JwtConfigError> {
        let JwtSettings {
            issuer,
            audience,
            algorithm,
            keys,
            signing_kid,
            leeway,
            access_token_lifetime,
        } = settings;
        if issuer.is_empty() || audience.is_empty() {
            return Err(JwtConfigError::MissingIssuerOrAudience);
        }
        if access_token_lifetime < Duration::from_secs(1) {
            return Err(JwtConfigError::LifetimeTooShort);
        }
        if keys.is_empty() {
            return Err(JwtConfigError::NoKeys);
        }
        let mut verifying = BTreeMap::new();
        let mut signing = None;
        for key in &keys {
            if key.kid.is_empty() {
                return Err(JwtConfigError::EmptyKid);
            }
            let (encoding, decoding) = parse_key(algorithm, key)?;
            if verifying.insert(key.kid.clone(), decoding).is_some() {
                return Err(JwtConfigError::DuplicateKid(key.kid.clone()));
            }
            if signing_kid.as_deref() == Some(key.kid.as_str()) {
                let encoding =
                    encoding.ok_or_else(|| JwtConfigError::CannotSign(key.kid.clone()))?;
                signing = Some((key.kid.clone(), encoding));
            }
        }
        if let Some(kid) = &signing_kid
            && signing.is_none()
        {
            return Err(JwtConfigError::UnknownSigningKey(kid.clone()));
        }

        let mut validation = Validation::new(algorithm.to_jsonwebtoken());
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Times are checked below against the injected clock, so tests control them.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);

        let service = Self {
            algorithm,
            issuer,
            audience,
            leeway_secs: leeway.as_secs(),
            lifetime_secs: access_token_lifetime.as_secs(),
            signing,
            verifying,
            validation,
            clock: Arc::new(SystemClock),
        };
        service.check_signing_key_pair()?;
        Ok(service)
    }

    /// The same service timed by `clock` (a test's clock, say).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The pinned algorithm.
    #[must_use]
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// A new access token for `principal`, signed with the signing key and
    /// carrying its roles and, in `scope`, its permissions.
    ///
    /// # Errors
    /// When no signing key is configured, the principal cannot be represented,
    /// or signing fails.
    pub fn issue(&self, principal: &Principal) -> Result<IssuedToken, IssueError> {
        let (kid, key) = self.signing.as_ref().ok_or(IssueError::NoSigningKey)?;
        if principal.subject().is_empty() {
            return Err(IssueError::UnrepresentablePrincipal("the subject is empty"));
        }
        let permissions: Vec<&str> = principal.permissions().collect();
        if permissions
            .iter()
            .any(|permission| permission.is_empty() || permission.contains(char::is_whitespace))
        {
            return Err(IssueError::UnrepresentablePrincipal(
                "a permission is empty or holds whitespace",
            ));
        }
        let now = self.clock.unix_seconds();
        let expires_at = now.saturating_add(self.lifetime_secs);
        let token_id = uuid::Uuid::now_v7().to_string();
        let claims = IssuedClaims {
            sub: principal.subject(),
            iss: &self.issuer,
            aud: &self.audience,
            exp: expires_at,
            nbf: now,
            iat: now,
            jti: &token_id,
            roles: principal.roles().collect(),
            scope: permissions.join(" "),
            kind: match principal.kind() {
                PrincipalKind::User => TokenKind::User,
                PrincipalKind::Service => TokenKind::Service,
            },
        };
        let mut header = Header::new(self.algorithm.to_jsonwebtoken());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, key)
            .map_err(|error| IssueError::Signing(Box::new(error)))?;
        Ok(IssuedToken {
            token,
            expires_at,
            token_id,
        })
    }

    /// The principal `token` speaks for, if every check holds.
    ///
    /// # Errors
    /// The first check that failed, for the log; see [`AuthError`].
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let key = self.key_for(token)?;
        let claims = jsonwebtoken::decode::<VerifiedClaims>(token, key, &self.validation)
            .map_err(|error| refusal(error.kind()))?
            .claims;
        let now = self.clock.unix_seconds();
        if now >= claims.exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        if now.saturating_add(self.leeway_secs) < claims.nbf {
            return Err(AuthError::NotYetValid);
        }
        if claims.sub.is_empty() {
            return Err(AuthError::InvalidClaims);
        }
        let kind = match claims.kind {
            TokenKind::User => PrincipalKind::User,
            TokenKind::Service => PrincipalKind::Service,
        };
        let principal = claims
            .roles
            .into_iter()
            .fold(Principal::new(claims.sub, kind), Principal::with_role);
        Ok(claims
            .scope
            .split_whitespace()
            .fold(principal, Principal::with_permission))
    }

    /// Reads the header without trusting it, refuses anything but the pinned
    /// algorithm and an access-token type before any signature work, and picks
    /// the key by `kid`.
    fn key_for(&self, token: &str) -> Result<&DecodingKey, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::MalformedToken);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken);
        };
        let header: UntrustedHeader = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(AuthError::MalformedToken)?;
        if header.alg != self.algorithm.name() {
            return Err(AuthError::AlgorithmNotAllowed {
                found: header.alg.parse().ok(),
            });
        }
        if header.crit.is_some() {
            return Err(AuthError::CriticalHeader);
        }
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(AuthError::NotAnAccessToken);
        }
        match header.kid {
            Some(kid) => self.verifying.get(&kid),
            None if self.verifying.len() == 1 => self.verifying.values().next(),
            None => None,
        }
        .ok_or(AuthError::UnknownKey)
    }

    /// Signs and verifies a probe, so that a key pair whose halves do not
    /// belong together stops the service at start-up rather than failing every
    /// sign-in later.
    fn check_signing_key_pair(&self) -> Result<(), JwtConfigError> {
        let Some((kid, _)) = &self.signing else {
            return Ok(());
        };
        let probe = Principal::new("key-pair-probe", PrincipalKind::Service);
        let mismatch = || JwtConfigError::KeyPairMismatch(kid.clone());
        let issued = self.issue(&probe).map_err(|_| mismatch())?;
        self.verify(&issued.token).map_err(|_| mismatch())?;
        Ok(())
    }
}

/// RFC 9068 §4: `at+jwt`, with or without the `application/` prefix, in any case.
fn is_access_token_type(typ: &str) -> bool {
    let bare = match typ.split_at_checked("application/".len()) {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case("application/") => rest,
        _ => typ,
    };
    bare.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
}

fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Json(_) => AuthError::InvalidClaims,
        _ => AuthError::MalformedToken,
    }
}

fn parse_key(
    algorithm: JwtAlgorithm,
    key: &JwtKey,
) -> Result<(Option<EncodingKey>, DecodingKey), JwtConfigError> {
    let kid = || key.kid.clone();
    let invalid = |source: jsonwebtoken::errors::Error| JwtConfigError::InvalidKey {
        kid: kid(),
        algorithm,
        source: Box::new(source),
    };
    let family = algorithm.family();
    match (&key.material, family) {
        (KeyMaterial::SharedSecret(secret), Family::Hmac) => {
            let min_bytes = algorithm.min_secret_bytes();
            if secret.len() < min_bytes {
                return Err(JwtConfigError::SecretTooShort {
                    kid: kid(),
                    algorithm,
                    min_bytes,
                });
            }
            Ok((
                Some(EncodingKey::from_secret(secret.expose())),
                DecodingKey::from_secret(secret.expose()),
            ))
        }
        (KeyMaterial::KeyPair { .. } | KeyMaterial::PublicKey(_), Family::Hmac)
        | (KeyMaterial::SharedSecret(_), _) => Err(JwtConfigError::WrongKeyKind {
            kid: kid(),
            algorithm,
        }),
        (
            KeyMaterial::KeyPair {
                private_pem,
                public_pem,
            },
            _,
        ) => Ok((
            Some(encoding_key(family, private_pem.expose()).map_err(invalid)?),
            decoding_key(family, public_pem.as_bytes()).map_err(invalid)?,
        )),
        (KeyMaterial::PublicKey(public_pem), _) => Ok((
            None,
            decoding_key(family, public_pem.as_bytes()).map_err(invalid)?,
        )),
    }
}

fn encoding_key(family: Family, pem: &[u8]) -> jsonwebtoken::errors::Result<EncodingKey> {
    match family {
        Family::Hmac => Ok(EncodingKey::from_secret(pem)),
        Family::Rsa => EncodingKey::from_rsa_pem(pem),
        Family::Ec => EncodingKey::from_ec_pem(pem),
        Family::Ed => EncodingKey::from_ed_pem(pem),
    }
}

fn decoding_key(family: Family, pem: &[u8]) -> jsonwebtoken::errors::Result<DecodingKey> {
    match family {
        Family::Hmac => Ok(DecodingKey::from_secret(pem)),
        Family::Rsa => DecodingKey::from_rsa_pem(pem),
        Family::Ec => DecodingKey::from_ec_pem(pem),
        Family::Ed => DecodingKey::from_ed_pem(pem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip_and_none_is_not_one() {
        for algorithm in JwtAlgorithm::ALL {
            assert_eq!(algorithm.name().parse(), Ok(algorithm));
        }
        assert!("none".parse::<JwtAlgorithm>().is_err());
        assert!("hs256".parse::<JwtAlgorithm>().is_err());
    }

    #[test]
    fn the_access_token_type_is_recognised_in_its_spellings() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            assert!(is_access_token_type(typ), "{typ}");
        }
        for typ in ["JWT", "refresh+jwt", "application/jwt", "", "application/"] {
            assert!(!is_access_token_type(typ), "{typ}");
        }
    }

    #[test]
    fn a_secret_of_the_wrong_length_or_kind_is_refused_at_start_up() {
        let settings = |algorithm, key| JwtSettings {
            issuer: "https://issuer.example".into(),
            audience: "api".into(),
            algorithm,
            keys: vec![key],
            signing_kid: Some("k1".into()),
            leeway: Duration::from_secs(30),
            access_token_lifetime: Duration::from_secs(900),
        };
        let short = TokenService::new(settings(
            JwtAlgorithm::HS512,
            JwtKey::shared_secret("k1", [7u8; 32].as_slice()),
        ));
        assert!(matches!(
            short,
            Err(JwtConfigError::SecretTooShort { min_bytes: 64, .. })
        ));
        let wrong_kind = TokenService::new(settings(
            JwtAlgorithm::RS256,
            JwtKey::shared_secret("k1", [7u8; 64].as_slice()),
        ));
        assert!(matches!(
            wrong_kind,
            Err(JwtConfigError::WrongKeyKind { .. })
        ));
        let unknown_signer = TokenService::new(JwtSettings {
            signing_kid: Some("k2".into()),
            ..settings(
                JwtAlgorithm::HS256,
                JwtKey::shared_secret("k1", [7u8; 32].as_slice()),
            )
        });
        assert!(matches!(
            unknown_signer,
            Err(JwtConfigError::UnknownSigningKey(_))
        ));
    }

    #[test]
    fn key_material_never_prints() {
        let key = JwtKey::shared_secret("k1", "correct horse battery staple, twice over");
        let printed = format!("{key:?}");
        assert!(printed.contains("[redacted]"), "{printed}");
        assert!(!printed.contains("horse"), "{printed}");
    }
}
