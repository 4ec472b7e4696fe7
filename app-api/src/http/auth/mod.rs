//! Who is calling: access tokens for people, API keys for services, checked once
//! per request by [`with_authentication`] before any handler runs.
//!
//! * `Authorization: Bearer <jwt>` — an access token issued by [`TokenService`]:
//!   signed with the one pinned [`JwtAlgorithm`] by one of the configured keys,
//!   chosen by its `kid`, so keys can be rotated without signing anyone out.
//! * `Authorization: ApiKey <key>` — a service's key, known to [`ApiKeys`] only by
//!   its SHA-256 digest.
//! * No `Authorization` header — the request goes on anonymously; whether its use
//!   case needs a caller is for the application's authorization to decide.
//!
//! Credentials that are sent and do not hold — whatever the reason — are answered
//! at once with one and the same 401 `invalid_token` problem, so a client cannot
//! tell a forged signature from an expired token or an unknown key. The reason
//! goes to the log at debug level; the credential itself never goes anywhere.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::Router;
//! use axum::routing::get;
//! use strata_app_api::application::{Principal, PrincipalKind, RequestContext};
//! use strata_app_api::http::auth::{
//!     Authenticator, JwtAlgorithm, JwtKey, JwtSettings, TokenService, with_authentication,
//! };
//! use strata_app_api::http::{HttpSettings, with_standard_layers};
//!
//! let tokens = Arc::new(
//!     TokenService::new(JwtSettings {
//!         issuer: "https://shop.example".into(),
//!         audience: "shop-api".into(),
//!         algorithm: JwtAlgorithm::HS256,
//!         keys: vec![JwtKey::shared_secret("2026-11", "a secret of at least 32 bytes, from the vault")],
//!         signing_kid: Some("2026-11".into()),
//!         leeway: Duration::from_secs(30),
//!         access_token_lifetime: Duration::from_secs(15 * 60),
//!     })
//!     .expect("valid token settings"),
//! );
//!
//! let routes = Router::new().route(
//!     "/me",
//!     get(|context: RequestContext| async move {
//!         context.principal().map(|caller| caller.subject().to_owned()).unwrap_or_default()
//!     }),
//! );
//! let authenticator = Authenticator::new().with_tokens(Arc::clone(&tokens));
//! // Authentication inside the request scope, which it reads and refines.
//! let app = with_standard_layers(
//!     with_authentication(routes, Arc::new(authenticator)),
//!     HttpSettings::default(),
//! );
//! # let _ = app;
//!
//! let issued = tokens
//!     .issue(&Principal::new("ada", PrincipalKind::User).with_permission("orders.place"))
//!     .expect("signed");
//! let caller = tokens.verify(&issued.token).expect("a token it issued");
//! assert!(caller.has_permission("orders.place"));
//! ```

mod api_key;
mod error;
mod jwt;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

pub use crate::Secret;
pub use api_key::{ApiKeyConfigError, ApiKeys, ServiceCredential};
pub use error::AuthError;
pub use jwt::{
    IssueError, IssuedToken, JwtAlgorithm, JwtConfigError, JwtKey, JwtSettings, KeyMaterial,
    TokenService, UnknownAlgorithm,
};

use crate::application::{Principal, RequestContext};

/// The credentials a service accepts. One with neither tokens nor keys refuses
/// every credential and lets anonymous requests through.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    tokens: Option<Arc<TokenService>>,
    api_keys: Option<ApiKeys>,
}

impl Authenticator {
    /// An authenticator that accepts no credentials yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The same authenticator accepting bearer tokens `tokens` verifies.
    #[must_use]
    pub fn with_tokens(mut self, tokens: Arc<TokenService>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The same authenticator accepting the services' `api_keys`.
    #[must_use]
    pub fn with_api_keys(mut self, api_keys: ApiKeys) -> Self {
        self.api_keys = Some(api_keys);
        self
    }

    /// Who the request's `Authorization` header speaks for: `Ok(None)` when
    /// there is no such header.
    ///
    /// # Errors
    /// Why the credentials were refused.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        // Two headers would leave it to chance which one a proxy, a log or this
        // service reads; none of them gets to choose.
        if values.next().is_some() {
            return Err(AuthError::MalformedHeader);
        }
        let text = value.to_str().map_err(|_| AuthError::MalformedHeader)?;
        let (scheme, credentials) = text
            .trim()
            .split_once(' ')
            .ok_or(AuthError::MalformedHeader)?;
        let credentials = credentials.trim_start();
        if credentials.is_empty() || credentials.contains(char::is_whitespace) {
            return Err(AuthError::MalformedHeader);
        }
        let principal = if scheme.eq_ignore_ascii_case("Bearer") {
            self.tokens
                .as_ref()
                .ok_or(AuthError::UnsupportedScheme)?
                .verify(credentials)?
        } else if scheme.eq_ignore_ascii_case("ApiKey") {
            self.api_keys
                .as_ref()
                .ok_or(AuthError::UnsupportedScheme)?
                .authenticate(credentials)?
        } else {
            return Err(AuthError::UnsupportedScheme);
        };
        Ok(Some(principal))
    }
}

/// Authenticates every request to `router`: a request with acceptable
/// credentials goes on with its [`RequestContext`] acting for the caller, one
/// without goes on anonymously, and one with credentials that do not hold is
/// answered 401 `invalid_token` at once.
///
/// Apply it before [`crate::http::with_standard_layers`], so that it runs inside
/// the request scope whose context it refines (and whose access log records its
/// refusals): `with_standard_layers(with_authentication(routes, auth), settings)`.
pub fn with_authentication(router: Router, authenticator: Arc<Authenticator>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        authenticator,
        authenticate_request,
    ))
}

async fn authenticate_request(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    match authenticator.authenticate(request.headers()) {
        Ok(None) => next.run(request).await,
        Ok(Some(principal)) => {
            let context = request
                .extensions()
                .get::<RequestContext>()
                .cloned()
                .unwrap_or_else(RequestContext::background)
                .with_principal(principal);
            request.extensions_mut().insert(context);
            next.run(request).await
        }
        Err(reason) => {
            tracing::debug!(%reason, "credentials refused");
            reason.into_response()
        }
    }
}
