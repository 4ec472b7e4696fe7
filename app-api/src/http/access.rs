//! Who before what: a handler's first extractor names the use case it runs,
//! and the caller is refused (401, 403) before anything of the request — path,
//! query, idempotency key, body — is read. The extractor is also how the
//! handler runs that use case, so the use case asked about and the one run
//! cannot differ.
//!
//! ```
//! use axum::Json;
//! use strata_app_api::application::AppError;
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
//!     may: MayExecute<Archive>,
//!     ApiJson(command): ApiJson<Archive>,
//! ) -> Result<Json<()>, AppError> {
//!     Ok(Json(may.execute(command).await?))
//! }
//! # let _ = archive;
//! ```

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::application::{AppError, Command, Dispatcher, Query, RequestContext};

/// Refuses a caller who may not execute command `C` — as its declared access
/// and the dispatcher's authorization say, logged and audited like any other
/// refusal — before the extractors after it read the request, and then runs
/// `C` for the caller who may ([`MayExecute::execute`]). Put it first.
pub struct MayExecute<C> {
    dispatcher: Dispatcher,
    request: RequestContext,
    command: PhantomData<fn() -> C>,
}

/// Refuses a caller who may not ask query `Q` before the extractors after it
/// read the request, and then asks `Q` for the caller who may
/// ([`MayAsk::ask`]; see [`MayExecute`]). Put it first.
pub struct MayAsk<Q> {
    dispatcher: Dispatcher,
    request: RequestContext,
    query: PhantomData<fn() -> Q>,
}

impl<C: Command> MayExecute<C> {
    /// Executes `command` for the caller this extractor let through.
    ///
    /// # Errors
    /// As [`Dispatcher::execute`].
    pub async fn execute(self, command: C) -> Result<C::Output, AppError> {
        self.dispatcher.execute(&self.request, command).await
    }

    /// The request the command runs for.
    #[must_use]
    pub fn request(&self) -> &RequestContext {
        &self.request
    }
}

impl<Q: Query> MayAsk<Q> {
    /// Asks `query` for the caller this extractor let through.
    ///
    /// # Errors
    /// As [`Dispatcher::ask`].
    pub async fn ask(self, query: Q) -> Result<Q::Output, AppError> {
        self.dispatcher.ask(&self.request, query).await
    }

    /// The request the query runs for.
    #[must_use]
    pub fn request(&self) -> &RequestContext {
        &self.request
    }
}

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
        let dispatcher = Dispatcher::from_ref(state);
        dispatcher.may_execute::<C>(&request).await?;
        Ok(Self {
            dispatcher,
            request,
            command: PhantomData,
        })
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
        let dispatcher = Dispatcher::from_ref(state);
        dispatcher.may_ask::<Q>(&request).await?;
        Ok(Self {
            dispatcher,
            request,
            query: PhantomData,
        })
    }
}
