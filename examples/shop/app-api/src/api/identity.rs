use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shop_domain::identity::Password;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::ApiJson;

use super::AppState;
use crate::application::identity::{
    RefreshOutcome, RefreshSession, RegisterCustomer, SessionToken, SignIn, SignOut, SignedIn,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/register", post(register))
        .route("/sign-in", post(sign_in))
        .route("/refresh", post(refresh))
        .route("/sign-out", post(sign_out))
}

// No `Debug`: these bodies hold a password or a token.
#[derive(Deserialize)]
struct CredentialsBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    refresh_expires_at: u64,
}

async fn register(
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

async fn sign_in(
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

async fn refresh(
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

async fn sign_out(
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
