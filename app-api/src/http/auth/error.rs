use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::JwtAlgorithm;
use crate::http::Problem;

/// Why credentials were refused.
///
/// The reason is for the server's log (at debug level) only: every variant
/// answers the client with the same 401, so a caller probing with forged tokens
/// learns nothing about which check failed. No variant carries any part of the
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The `Authorization` header is not `<scheme> <credentials>` in visible
    /// ASCII, or was sent more than once.
    #[error("the Authorization header is malformed")]
    MalformedHeader,
    /// The scheme is not one this service accepts.
    #[error("the authorization scheme is not accepted")]
    UnsupportedScheme,
    /// The token is not three base64url parts with a JSON header and claims.
    #[error("the token is malformed")]
    MalformedToken,
    /// The token's header names an algorithm other than the pinned one (`none`
    /// and unknown names show as `None`).
    #[error("the token's algorithm {found:?} is not the one this service accepts")]
    AlgorithmNotAllowed {
        /// What the header claimed, when it is a known algorithm.
        found: Option<JwtAlgorithm>,
    },
    /// The token's header lists critical extensions, which this service does not
    /// understand and so must refuse.
    #[error("the token's header has critical extensions")]
    CriticalHeader,
    /// The token's `typ` says it is not an access token (an ID or refresh token,
    /// say).
    #[error("the token is not an access token")]
    NotAnAccessToken,
    /// No configured key has the token's `kid`, or it has none and several keys
    /// are configured.
    #[error("no key matches the token's key id")]
    UnknownKey,
    /// The signature does not match the header and claims.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// A required claim (`sub`, `iss`, `aud`, `exp`, `nbf`, `kind`) is missing
    /// or has the wrong type.
    #[error("the token lacks a required claim or has one of the wrong type")]
    InvalidClaims,
    /// The token was issued by someone else.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// The token was issued for another service.
    #[error("the token's audience is not this service")]
    WrongAudience,
    /// The token's `exp` has passed (beyond the allowed leeway).
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` is still ahead (beyond the allowed leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// No configured service has the API key presented.
    #[error("the API key is not known")]
    UnknownApiKey,
}

/// The one answer to refused credentials: 401 `invalid_token` with the
/// challenge RFC 6750 prescribes for it.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = Problem::new(StatusCode::UNAUTHORIZED, "invalid_token")
            .with_detail("the credentials sent are not valid")
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        response
    }
}
