use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shop_domain::identity::{Email, Password};
use strata_app_api::application::AppError;
use strata_app_api::http::openapi::rules;
use strata_app_api::http::{DocumentedJson, MayExecute, Problem};
use utoipa::ToSchema;
use utoipa::openapi::schema::{KnownFormat, Object, SchemaFormat};
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
/// A new account's sign-in address and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewAccount)]
struct NewAccountBody {
    /// The sign-in address.
    #[schema(schema_with = email, example = "ada@example.com")]
    email: String,
    /// The password to set.
    #[schema(schema_with = new_password)]
    password: String,
}

/// An account's sign-in address and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Credentials)]
struct CredentialsBody {
    /// The sign-in address.
    #[schema(schema_with = email, example = "ada@example.com")]
    email: String,
    /// The password.
    #[schema(schema_with = password)]
    password: String,
}

/// A refresh token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RefreshToken)]
struct RefreshBody {
    /// The refresh token a sign-in or refresh answered with.
    #[schema(schema_with = refresh_token)]
    refresh_token: String,
}

fn email() -> Object {
    rules::text(3, Email::MAX_CHARS, Some(Email::PATTERN))
}

fn new_password() -> Object {
    let mut schema = rules::text(Password::MIN_CHARS as u64, Password::MAX_CHARS as u64, None);
    schema.format = Some(SchemaFormat::KnownFormat(KnownFormat::Password));
    schema
}

fn password() -> Object {
    let mut schema = rules::text(1, Password::MAX_CHARS as u64, None);
    schema.format = Some(SchemaFormat::KnownFormat(KnownFormat::Password));
    schema
}

fn refresh_token() -> Object {
    rules::text(1, 512, None)
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
    security(()),
    request_body = NewAccountBody,
    responses(
        (status = 201, description = "The account was opened", body = UserView),
        (status = 409, description = "`email_taken`: an account has this address (the field is named in `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this client; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn register(
    may: MayExecute<RegisterCustomer>,
    DocumentedJson(body): DocumentedJson<NewAccountBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = RegisterCustomer {
        email: body.email,
        password: Password::offered(&body.password),
    };
    let user = may.execute(command).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Starts a session with an email and password.
#[utoipa::path(
    post,
    path = "/api/auth/sign-in",
    tag = "identity",
    security(()),
    request_body = CredentialsBody,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Unknown account or wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts from this client; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn sign_in(
    may: MayExecute<SignIn>,
    State(state): State<AppState>,
    DocumentedJson(body): DocumentedJson<CredentialsBody>,
) -> Result<Response, AppError> {
    let command = SignIn {
        email: body.email,
        password: Password::offered(&body.password),
    };
    let session = may.execute(command).await?;
    tokens(&state, session)
}

/// Exchanges a refresh token for new tokens; each refresh token works once.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "identity",
    security(()),
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused; a reused one revokes its whole session", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn refresh(
    may: MayExecute<RefreshSession>,
    State(state): State<AppState>,
    DocumentedJson(body): DocumentedJson<RefreshBody>,
) -> Result<Response, AppError> {
    let command = RefreshSession {
        refresh_token: SessionToken(body.refresh_token),
    };
    match may.execute(command).await? {
        RefreshOutcome::Refreshed(session) => tokens(&state, session),
        RefreshOutcome::Refused => Err(AppError::Unauthenticated),
    }
}

/// Ends a session: its refresh tokens stop working.
#[utoipa::path(
    post,
    path = "/api/auth/sign-out",
    tag = "identity",
    security(()),
    request_body = RefreshBody,
    responses((status = 204, description = "Signed out")),
)]
async fn sign_out(
    may: MayExecute<SignOut>,
    DocumentedJson(body): DocumentedJson<RefreshBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = SignOut {
        refresh_token: SessionToken(body.refresh_token),
    };
    may.execute(command).await?;
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
