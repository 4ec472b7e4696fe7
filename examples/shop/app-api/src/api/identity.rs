use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shop_domain::identity::Password;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::{ApiJson, MayExecute, Problem};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::application::identity::{
    RefreshOutcome, RefreshSession, RegisterCustomer, SessionToken, SignIn, SignOut, SignedIn,
    UserView,
};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(sign_in))
        .routes(routes!(refresh))
        .routes(routes!(sign_out))
}

// No `Debug`: these bodies hold a password or a token.
/// An account's sign-in address and password.
#[derive(Deserialize, ToSchema)]
#[schema(as = Credentials)]
struct CredentialsBody {
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// A refresh token.
#[derive(Deserialize, ToSchema)]
#[schema(as = RefreshToken)]
struct RefreshBody {
    refresh_token: String,
}

/// A session's tokens.
#[derive(Serialize, ToSchema)]
#[schema(as = Tokens)]
struct TokenResponse {
    /// The bearer token for API calls (a JWT).
    access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Exchanges for new tokens once, at `POST /api/auth/refresh`.
    refresh_token: String,
    /// When the refresh token expires, in Unix seconds.
    refresh_expires_at: u64,
}

/// Opens a customer account.
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "identity",
    request_body = CredentialsBody,
    responses(
        (status = 201, description = "The account was opened", body = UserView),
        (status = 409, description = "`email_taken`: an account has this address", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn register(
    _: MayExecute<RegisterCustomer>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiJson(body): ApiJson<CredentialsBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = RegisterCustomer {
        email: body.email,
        password: Password::offered(&body.password),
    };
    let user = state.dispatcher.execute(&request, command).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Starts a session with an email and password.
#[utoipa::path(
    post,
    path = "/api/auth/sign-in",
    tag = "identity",
    request_body = CredentialsBody,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Unknown account or wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts for this account or client; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn sign_in(
    _: MayExecute<SignIn>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiJson(body): ApiJson<CredentialsBody>,
) -> Result<Response, AppError> {
    let command = SignIn {
        email: body.email,
        password: Password::offered(&body.password),
    };
    let session = state.dispatcher.execute(&request, command).await?;
    tokens(&state, session)
}

/// Exchanges a refresh token for new tokens; each refresh token works once.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "identity",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused; a reused one revokes its whole session", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn refresh(
    _: MayExecute<RefreshSession>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Response, AppError> {
    let command = RefreshSession {
        refresh_token: SessionToken(body.refresh_token),
    };
    match state.dispatcher.execute(&request, command).await? {
        RefreshOutcome::Refreshed(session) => tokens(&state, session),
        RefreshOutcome::Refused => Err(AppError::Unauthenticated),
    }
}

/// Ends a session: its refresh tokens stop working.
#[utoipa::path(
    post,
    path = "/api/auth/sign-out",
    tag = "identity",
    request_body = RefreshBody,
    responses((status = 204, description = "Signed out")),
)]
async fn sign_out(
    _: MayExecute<SignOut>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = SignOut {
        refresh_token: SessionToken(body.refresh_token),
    };
    state.dispatcher.execute(&request, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The access token for the session's principal, and its refresh token; never
/// stored by caches.
fn tokens(state: &AppState, session: SignedIn) -> Result<Response, AppError> {
    let access = state
        .tokens
        .issue(&session.principal)
        .map_err(AppError::internal)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let body = TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_at.saturating_sub(now),
        refresh_token: session.refresh_token.0,
        refresh_expires_at: session.refresh_expires_at,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
