//! Who before what: a handler names the use case it runs, first among its
//! extractors, and the caller is refused (401, 403) before anything of the
//! request — path, query, idempotency key, body — is read.
//!
//! ```
//! use axum::extract::State;
//! use axum::Json;
//! use strata_app_api::application::{AppError, Dispatcher, RequestContext};
//! use strata_app_api::http::{ApiJson, MayExecute};
//! # use strata_app_api::application::{Access, Command};
//! # #[derive(serde::Deserialize, strata_app_api::validator::Validate)]
//! # #[validate(crate = "strata_app_api::validator")]
//! # struct Archive { id: u64 }
//! # impl Command for Archive {
//! #     type Output = ();
//! #     const NAME: &'static str = "notes.archive";
//! #     const ACCESS: Access = Access::Permission("notes.write");
//! # }
//!
//! async fn archive(
//!     _: MayExecute<Archive>,
//!     State(dispatcher): State<Dispatcher>,
//!     request: RequestContext,
//!     ApiJson(command): ApiJson<Archive>,
//! ) -> Result<Json<()>, AppError> {
//!     Ok(Json(dispatcher.execute(&request, command).await?))
//! }
//! # let _ = archive;
//! ```

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::application::{AppError, Command, Dispatcher, Query, RequestContext};

/// Refuses a caller who may not execute command `C` — as its declared access
/// and the dispatcher's authorization say, logged and audited like any other
/// refusal — before the extractors after it read the request. Put it first.
pub struct MayExecute<C>(PhantomData<fn() -> C>);

/// Refuses a caller who may not ask query `Q` before the extractors after it
/// read the request (see [`MayExecute`]). Put it first.
pub struct MayAsk<Q>(PhantomData<fn() -> Q>);

impl<C> std::fmt::Debug for MayExecute<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MayExecute")
    }
}

impl<Q> std::fmt::Debug for MayAsk<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MayAsk")
    }
}

impl<S, C> FromRequestParts<S> for MayExecute<C>
where
    S: Send + Sync,
    C: Command,
    Dispatcher: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let request = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        Dispatcher::from_ref(state)
            .may_execute::<C>(&request)
            .await?;
        Ok(Self(PhantomData))
    }
}

impl<S, Q> FromRequestParts<S> for MayAsk<Q>
where
    S: Send + Sync,
    Q: Query,
    Dispatcher: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let request = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        Dispatcher::from_ref(state).may_ask::<Q>(&request).await?;
        Ok(Self(PhantomData))
    }
}
