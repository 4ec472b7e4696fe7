use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use strata_domain::ValidationFailure;
use strata_domain::ports::{ClaimToken, Propagation};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::use_case::InputRules;
use super::{
    Access, AppError, CachePolicy, Dispatcher, Invalidation, RequestContext, UseCaseContext,
};

/// Whether a use case changes the system or only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseCaseKind {
    /// A [`super::Command`].
    Command,
    /// A [`super::Query`].
    Query,
}

impl UseCaseKind {
    /// `command` or `query`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Query => "query",
        }
    }
}

/// A use case's input, type-erased so that one middleware chain serves every use
/// case.
pub trait UseCaseInput: Any + Send + Sync {
    /// Checks the input's `validator` rules.
    ///
    /// # Errors
    /// One entry per invalid field.
    fn validate_input(&self) -> Result<(), ValidationFailure>;

    /// The input, for a middleware that knows its concrete type.
    fn as_any(&self) -> &dyn Any;

    /// The input, for the handler at the end of the chain.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<T: InputRules + Send + Sync + 'static> UseCaseInput for T {
    fn validate_input(&self) -> Result<(), ValidationFailure> {
        self.check_rules()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A use case's answer, type-erased on its way back through the chain.
pub type UseCaseOutput = Box<dyn Any + Send>;

/// Turns a use case's answer into bytes and back, for the cache and the
/// idempotency store; made for the concrete output type at registration.
#[derive(Clone, Copy)]
pub struct OutputCodec {
    encode: fn(&(dyn Any + Send)) -> Result<Vec<u8>, AppError>,
    decode: fn(&[u8]) -> Result<UseCaseOutput, AppError>,
}

impl std::fmt::Debug for OutputCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputCodec")
    }
}

impl OutputCodec {
    /// The codec of `T`, as JSON.
    #[must_use]
    pub fn of<T: Serialize + DeserializeOwned + Send + 'static>() -> Self {
        Self {
            encode: |output| {
                let value = output.downcast_ref::<T>().ok_or_else(|| {
                    AppError::Internal("an output of an unexpected type reached its codec".into())
                })?;
                serde_json::to_vec(value).map_err(AppError::internal)
            },
            decode: |bytes| {
                serde_json::from_slice::<T>(bytes)
                    .map(|value| Box::new(value) as UseCaseOutput)
                    .map_err(AppError::internal)
            },
        }
    }

    /// The output as bytes.
    ///
    /// # Errors
    /// When it cannot be serialized.
    pub fn encode(&self, output: &UseCaseOutput) -> Result<Vec<u8>, AppError> {
        (self.encode)(output.as_ref())
    }

    /// An output from bytes.
    ///
    /// # Errors
    /// When the bytes are not this output type's.
    pub fn decode(&self, bytes: &[u8]) -> Result<UseCaseOutput, AppError> {
        (self.decode)(bytes)
    }
}

/// The idempotency key of the request this invocation serves, and what the
/// request was, to recognise a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyPlan {
    /// The key as stored: a digest of the caller (principal kind and subject, or
    /// an anonymous caller's network), the use case and the client's key, so
    /// no two callers or use cases share one.
    pub key: String,
    /// A digest of the input; the same key with another input is refused.
    pub fingerprint: String,
    /// Set once the key is claimed: what proves this request still holds it
    /// when its result is stored.
    pub token: Option<ClaimToken>,
}

/// One run of one use case, as the middleware sees it: a [`UseCaseCall`],
/// whose fields it reads and changes in place (`invocation.name`,
/// `invocation.audit.take()`). Boxed, so handing it from middleware to
/// middleware — into each one's future — moves a pointer, not the call.
pub struct Invocation(Box<UseCaseCall>);

impl Invocation {
    /// An invocation of `call`.
    #[must_use]
    pub fn new(call: UseCaseCall) -> Self {
        Self(Box::new(call))
    }

    /// The call, to take its fields apart.
    #[must_use]
    pub fn into_call(self) -> UseCaseCall {
        *self.0
    }
}

impl std::ops::Deref for Invocation {
    type Target = UseCaseCall;

    fn deref(&self) -> &UseCaseCall {
        &self.0
    }
}

impl std::ops::DerefMut for Invocation {
    fn deref_mut(&mut self) -> &mut UseCaseCall {
        &mut self.0
    }
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What an [`Invocation`] carries: the use case, the request, the input and
/// what the middleware before have decided about it.
pub struct UseCaseCall {
    /// The use case's stable name.
    pub name: &'static str,
    /// Command or query.
    pub kind: UseCaseKind,
    /// Who may run it.
    pub access: Access,
    /// For commands, how their unit of work joins a running one; `None` for
    /// queries, which run without one.
    pub propagation: Option<Propagation>,
    /// The request being served.
    pub request: RequestContext,
    /// 0 for a use case the API called, 1 for one that use case called, and so on.
    pub depth: usize,
    /// Whether a command encloses this use case, so it runs inside that
    /// command's unit of work and may see writes not committed yet.
    pub within_command: bool,
    /// The input.
    pub input: Box<dyn UseCaseInput>,
    /// For a cached query, how its answer is cached.
    pub cache: Option<CachePolicy>,
    /// For a command, what it makes stale.
    pub invalidates: Invalidation,
    /// For an idempotent command called with a key, the key.
    pub idempotency: Option<IdempotencyPlan>,
    /// How the output turns into bytes, when its type allows.
    pub codec: Option<OutputCodec>,
    /// Whether the audit trail records it (commands only).
    pub audited: bool,
    /// Set by the audit middleware for the command it records.
    pub audit: Option<super::middleware::AuditDraft>,
    /// Whether this run only asks if the caller may run the use case, before
    /// its input is read ([`super::Dispatcher::may_execute`]): the input is a
    /// placeholder, and the chain stops after authorization.
    pub preflight: bool,
}

impl std::fmt::Debug for UseCaseCall {
    // The input is left out on purpose: it may hold passwords or personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("depth", &self.depth)
            .field("preflight", &self.preflight)
            .field("request_id", &self.request.request_id())
            .finish_non_exhaustive()
    }
}

/// A concern applied around every use case — logging, validation, transactions —
/// written once. It does its part and calls `next.run(invocation)` to go on, or
/// answers without calling it to stop the chain. A middleware that only checks a
/// call before it runs implements [`Middleware::guard`] instead of `handle`.
#[async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// A short name, used to show and test the chain's order.
    fn name(&self) -> &'static str;

    /// Whether it has anything to do for `call`, as the chain reaches it. One
    /// that has not is passed over without being called — and without the
    /// future a call allocates. A middleware that does nothing for some use
    /// cases (queries, calls without a key) says so here; its `handle` must
    /// still pass such a call on unchanged if it is called.
    fn applies_to(&self, call: &UseCaseCall) -> bool {
        let _ = call;
        true
    }

    /// For a middleware that only checks a call and then passes it on
    /// unchanged — authorization, validation — the check: `Some(Ok(()))` to go
    /// on, `Some(Err(_))` to refuse. The chain runs it in place, without the
    /// future a call of [`Middleware::handle`] allocates. `None`, the default,
    /// for a middleware that wraps the rest of the chain in `handle`.
    fn guard(&self, call: &UseCaseCall) -> Option<Result<(), AppError>> {
        let _ = call;
        None
    }

    /// Handles one invocation. The default runs [`Middleware::guard`] and passes
    /// the invocation on, as the chain itself does for a guard.
    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        if let Some(verdict) = self.guard(&invocation) {
            verdict?;
        }
        next.run(invocation).await
    }
}

/// The rest of the chain after the current middleware.
pub struct Next<'a> {
    pub(crate) middleware: &'a [Arc<dyn Middleware>],
    pub(crate) endpoint: &'a dyn Endpoint,
    pub(crate) dispatcher: &'a Dispatcher,
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &self.middleware.len())
            .finish_non_exhaustive()
    }
}

impl Next<'_> {
    /// Runs the rest of the chain and, at its end, the handler.
    ///
    /// # Errors
    /// Whatever a later middleware or the handler answers.
    pub async fn run(self, invocation: Invocation) -> Result<UseCaseOutput, AppError> {
        let mut remaining = self.middleware;
        while let Some((first, rest)) = remaining.split_first() {
            remaining = rest;
            if !first.applies_to(&invocation) {
                continue;
            }
            match first.guard(&invocation) {
                Some(verdict) => verdict?,
                None => {
                    return first
                        .handle(
                            invocation,
                            Next {
                                middleware: rest,
                                endpoint: self.endpoint,
                                dispatcher: self.dispatcher,
                            },
                        )
                        .await;
                }
            }
        }
        let call = invocation.into_call();
        let cx = UseCaseContext::nested(
            call.request,
            self.dispatcher.clone(),
            call.depth,
            Some((call.name, call.kind)),
            call.within_command,
        );
        self.endpoint.call(cx, call.input.into_any()).await
    }
}

/// A registered handler behind the type-erased chain.
#[async_trait]
pub(crate) trait Endpoint: Send + Sync {
    async fn call(
        &self,
        cx: UseCaseContext,
        input: Box<dyn Any + Send>,
    ) -> Result<UseCaseOutput, AppError>;

    /// How the output turns into bytes, when registered with a serializable output.
    fn codec(&self) -> Option<OutputCodec>;

    /// For a command registered as idempotent: whether a key is required, and
    /// how to digest its input (only done when a key came with the request).
    fn idempotency(&self) -> Option<(KeyRequirement, Fingerprint)>;

    /// Applies the resource policy, if any, to an answer (fresh or cached).
    fn check(&self, request: &RequestContext, output: &UseCaseOutput) -> Result<(), AppError>;
}

/// A digest of a command's input, `None` when it cannot be made.
pub(crate) type Fingerprint = fn(&dyn Any) -> Option<String>;

/// Whether an idempotent command must be called with an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRequirement {
    /// Without a key the command runs as usual.
    Optional,
    /// Without a key the request is refused (400).
    Required,
}
