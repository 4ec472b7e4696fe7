use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::pipeline::{
    Endpoint, Fingerprint, IdempotencyPlan, Invocation, KeyRequirement, Middleware, Next,
    OutputCodec, UseCaseCall, UseCaseInput, UseCaseKind, UseCaseOutput,
};
use super::{
    AppError, CachePolicy, Command, CommandHandler, Invalidation, Query, QueryHandler,
    RequestContext, ResourcePolicy, UseCaseContext,
};

/// Runs every use case through one ordered chain of middleware, then its handler.
///
/// Built once at start-up with [`Dispatcher::builder`]; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    middleware: Vec<Arc<dyn Middleware>>,
    endpoints: HashMap<TypeId, Arc<dyn Endpoint>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("middleware", &self.middleware_names())
            .field("use_cases", &self.inner.endpoints.len())
            .finish()
    }
}

/// Assembles a [`Dispatcher`]: the middleware chain and a handler per use case.
#[derive(Default)]
pub struct DispatcherBuilder {
    middleware: Vec<Arc<dyn Middleware>>,
    endpoints: HashMap<TypeId, Arc<dyn Endpoint>>,
}

impl std::fmt::Debug for DispatcherBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherBuilder")
            .field("middleware", &self.middleware.len())
            .field("use_cases", &self.endpoints.len())
            .finish()
    }
}

impl DispatcherBuilder {
    /// Appends middleware to the chain; the first added runs outermost.
    #[must_use]
    pub fn middleware(mut self, middleware: impl IntoIterator<Item = Arc<dyn Middleware>>) -> Self {
        self.middleware.extend(middleware);
        self
    }

    /// Registers the handler of command `C`, replacing any earlier one.
    #[must_use]
    pub fn command<C: Command>(mut self, handler: Arc<dyn CommandHandler<C>>) -> Self {
        self.endpoints.insert(
            TypeId::of::<C>(),
            Arc::new(CommandEndpoint {
                handler,
                idempotent: None,
            }),
        );
        self
    }

    /// Registers the handler of command `C` as idempotent: called with an
    /// idempotency key, a retry with the same key and input is answered with the
    /// first call's stored result instead of running again (see the idempotency
    /// middleware). The result is stored in the command's unit of work, so a
    /// command that runs without one (`Propagation::NotSupported`) does not
    /// compile here.
    #[must_use]
    pub fn idempotent_command<C>(
        mut self,
        handler: Arc<dyn CommandHandler<C>>,
        requirement: KeyRequirement,
    ) -> Self
    where
        C: Command + Serialize,
        C::Output: Serialize + DeserializeOwned,
    {
        const {
            assert!(
                !matches!(
                    C::PROPAGATION,
                    strata_domain::ports::Propagation::NotSupported
                ),
                "an idempotent command stores its result in its unit of work: it cannot be \
                 `Propagation::NotSupported`"
            );
        }
        self.endpoints.insert(
            TypeId::of::<C>(),
            Arc::new(CommandEndpoint {
                handler,
                idempotent: Some(Idempotent {
                    requirement,
                    codec: OutputCodec::of::<C::Output>(),
                    fingerprint: fingerprint::<C>,
                }),
            }),
        );
        self
    }

    /// Registers the handler of query `Q`, replacing any earlier one. Its answer is
    /// cached when the query declares a [`Query::cache_policy`].
    #[must_use]
    pub fn query<Q>(mut self, handler: Arc<dyn QueryHandler<Q>>) -> Self
    where
        Q: Query,
        Q::Output: Serialize + DeserializeOwned,
    {
        self.endpoints.insert(
            TypeId::of::<Q>(),
            Arc::new(QueryEndpoint {
                handler,
                policy: None,
            }),
        );
        self
    }

    /// Registers the handler of query `Q`, whose answer is shown to the caller only
    /// if `policy` allows it (for instance, only to its owner).
    #[must_use]
    pub fn guarded_query<Q>(
        mut self,
        handler: Arc<dyn QueryHandler<Q>>,
        policy: impl ResourcePolicy<Q::Output>,
    ) -> Self
    where
        Q: Query,
        Q::Output: Serialize + DeserializeOwned,
    {
        self.endpoints.insert(
            TypeId::of::<Q>(),
            Arc::new(QueryEndpoint {
                handler,
                policy: Some(Box::new(policy)),
            }),
        );
        self
    }

    /// The finished dispatcher.
    #[must_use]
    pub fn build(self) -> Dispatcher {
        Dispatcher {
            inner: Arc::new(Inner {
                middleware: self.middleware,
                endpoints: self.endpoints,
            }),
        }
    }
}

impl Dispatcher {
    /// Starts assembling a dispatcher.
    #[must_use]
    pub fn builder() -> DispatcherBuilder {
        DispatcherBuilder::default()
    }

    /// The middleware names, outermost first.
    #[must_use]
    pub fn middleware_names(&self) -> Vec<&'static str> {
        self.inner.middleware.iter().map(|m| m.name()).collect()
    }

    /// Runs `command` for `request` through the chain.
    ///
    /// # Errors
    /// What the middleware or the handler answer; an internal error when no
    /// handler is registered for `C`.
    pub async fn execute<C: Command>(
        &self,
        request: &RequestContext,
        command: C,
    ) -> Result<C::Output, AppError> {
        self.dispatch_command(request, 0, false, command).await
    }

    /// Runs `query` for `request` through the chain.
    ///
    /// # Errors
    /// What the middleware or the handler answer; an internal error when no
    /// handler is registered for `Q`.
    pub async fn ask<Q: Query>(
        &self,
        request: &RequestContext,
        query: Q,
    ) -> Result<Q::Output, AppError> {
        self.dispatch_query(request, 0, false, query).await
    }

    /// Whether the caller of `request` may execute `C`, asked before its input is
    /// read: the chain runs up to and including authorization, so a refusal is
    /// logged and audited as any other, and nothing after it (validation, the
    /// unit of work, the handler) runs. The HTTP kit's `MayExecute` asks this
    /// before a body is parsed, so a caller who may not run a use case never
    /// learns what its input looks like.
    ///
    /// # Errors
    /// 401 or 403 ([`AppError::Unauthenticated`], [`AppError::Forbidden`]) as
    /// the authorization middleware answers; an internal error when no handler
    /// is registered for `C`.
    pub async fn may_execute<C: Command>(&self, request: &RequestContext) -> Result<(), AppError> {
        self.preflight::<C>(command_invocation::<C>(
            request,
            Position::Preflight,
            Box::new(NotRead),
            Invalidation::none(),
        ))
        .await
    }

    /// Whether the caller of `request` may ask `Q`, before its input is read
    /// (see [`Dispatcher::may_execute`]).
    ///
    /// # Errors
    /// As [`Dispatcher::may_execute`].
    pub async fn may_ask<Q: Query>(&self, request: &RequestContext) -> Result<(), AppError> {
        self.preflight::<Q>(query_invocation::<Q>(
            request,
            Position::Preflight,
            Box::new(NotRead),
            None,
        ))
        .await
    }

    async fn preflight<I: 'static>(&self, invocation: Invocation) -> Result<(), AppError> {
        let name = invocation.name;
        if !self.inner.endpoints.contains_key(&TypeId::of::<I>()) {
            return Err(AppError::Internal(
                format!("no handler is registered for `{name}`").into(),
            ));
        }
        // Nobody is refused a use case anyone may run.
        if invocation.access == super::Access::Anyone {
            return Ok(());
        }
        let middleware = &self.inner.middleware;
        // A chain without authorization still honours the declared access.
        let Some(last) = middleware
            .iter()
            .position(|middleware| middleware.name() == AUTHORIZATION)
        else {
            return invocation.access.check(invocation.request.principal());
        };
        let next = Next {
            middleware: &middleware[..=last],
            endpoint: &Allowed,
            dispatcher: self,
        };
        next.run(invocation).await.map(drop)
    }

    pub(crate) async fn dispatch_command<C: Command>(
        &self,
        request: &RequestContext,
        depth: usize,
        within_command: bool,
        command: C,
    ) -> Result<C::Output, AppError> {
        let invalidates = command.invalidates();
        let invocation = command_invocation::<C>(
            request,
            Position::Nested {
                depth,
                within_command,
            },
            Box::new(command),
            invalidates,
        );
        self.run::<C, C::Output>(invocation).await
    }

    pub(crate) async fn dispatch_query<Q: Query>(
        &self,
        request: &RequestContext,
        depth: usize,
        within_command: bool,
        query: Q,
    ) -> Result<Q::Output, AppError> {
        let cache = query.cache_policy();
        let invocation = query_invocation::<Q>(
            request,
            Position::Nested {
                depth,
                within_command,
            },
            Box::new(query),
            cache,
        );
        self.run::<Q, Q::Output>(invocation).await
    }

    async fn run<I: 'static, O: 'static>(&self, mut invocation: Invocation) -> Result<O, AppError> {
        let name = invocation.name;
        let endpoint = self
            .inner
            .endpoints
            .get(&TypeId::of::<I>())
            .ok_or_else(|| {
                AppError::Internal(format!("no handler is registered for `{name}`").into())
            })?;
        invocation.codec = endpoint.codec();
        // Idempotency belongs to the request: only the use case it called directly
        // is remembered, not the ones that use case calls. A caller who may not
        // run the use case hears that from authorization, not about its key.
        if invocation.depth == 0
            && invocation
                .access
                .check(invocation.request.principal())
                .is_ok()
            && let Some((requirement, fingerprint)) = endpoint.idempotency()
        {
            invocation.idempotency = idempotency_plan(&invocation, requirement, fingerprint)?;
        }
        let request = invocation.request.clone();
        let next = Next {
            middleware: &self.inner.middleware,
            endpoint: endpoint.as_ref(),
            dispatcher: self,
        };
        let output = next.run(invocation).await?;
        endpoint.check(&request, &output)?;
        output.downcast::<O>().map(|output| *output).map_err(|_| {
            AppError::Internal(format!("a middleware replaced the output of `{name}`").into())
        })
    }
}

/// Where an invocation stands: a preflight before the input is read, or a run
/// at some depth of nesting.
#[derive(Clone, Copy)]
enum Position {
    Preflight,
    Nested { depth: usize, within_command: bool },
}

impl Position {
    fn invocation(
        self,
        request: &RequestContext,
        name: &'static str,
        kind: UseCaseKind,
        access: super::Access,
        input: Box<dyn UseCaseInput>,
    ) -> UseCaseCall {
        let (depth, within_command) = match self {
            Self::Preflight => (0, false),
            Self::Nested {
                depth,
                within_command,
            } => (depth, within_command),
        };
        UseCaseCall {
            name,
            kind,
            access,
            propagation: None,
            request: request.clone(),
            depth,
            within_command,
            input,
            cache: None,
            invalidates: Invalidation::none(),
            idempotency: None,
            codec: None,
            audited: false,
            audit: None,
            preflight: matches!(self, Self::Preflight),
        }
    }
}

fn command_invocation<C: Command>(
    request: &RequestContext,
    position: Position,
    input: Box<dyn UseCaseInput>,
    invalidates: Invalidation,
) -> Invocation {
    Invocation::new(UseCaseCall {
        propagation: Some(C::PROPAGATION),
        invalidates,
        audited: C::AUDITED,
        ..position.invocation(request, C::NAME, UseCaseKind::Command, C::ACCESS, input)
    })
}

fn query_invocation<Q: Query>(
    request: &RequestContext,
    position: Position,
    input: Box<dyn UseCaseInput>,
    cache: Option<CachePolicy>,
) -> Invocation {
    Invocation::new(UseCaseCall {
        cache,
        ..position.invocation(request, Q::NAME, UseCaseKind::Query, Q::ACCESS, input)
    })
}

/// The name the authorization middleware goes by, where a preflight stops.
pub(crate) const AUTHORIZATION: &str = "authorization";

/// The input of a preflight, which reads none.
struct NotRead;

impl validator::Validate for NotRead {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

/// Where a preflight ends once authorization let it through.
struct Allowed;

#[async_trait]
impl Endpoint for Allowed {
    async fn call(
        &self,
        _cx: UseCaseContext,
        _input: Box<dyn Any + Send>,
    ) -> Result<UseCaseOutput, AppError> {
        Ok(Box::new(()))
    }

    fn codec(&self) -> Option<OutputCodec> {
        None
    }

    fn idempotency(&self) -> Option<(KeyRequirement, Fingerprint)> {
        None
    }

    fn check(&self, _request: &RequestContext, _output: &UseCaseOutput) -> Result<(), AppError> {
        Ok(())
    }
}

struct Idempotent {
    requirement: KeyRequirement,
    codec: OutputCodec,
    fingerprint: Fingerprint,
}

struct CommandEndpoint<C: Command> {
    handler: Arc<dyn CommandHandler<C>>,
    idempotent: Option<Idempotent>,
}

#[async_trait]
impl<C: Command> Endpoint for CommandEndpoint<C> {
    async fn call(
        &self,
        cx: UseCaseContext,
        input: Box<dyn Any + Send>,
    ) -> Result<UseCaseOutput, AppError> {
        let command = downcast::<C>(input, C::NAME)?;
        let output = self.handler.handle(&cx, command).await?;
        Ok(Box::new(output))
    }

    fn codec(&self) -> Option<OutputCodec> {
        self.idempotent.as_ref().map(|idempotent| idempotent.codec)
    }

    fn idempotency(&self) -> Option<(KeyRequirement, Fingerprint)> {
        let idempotent = self.idempotent.as_ref()?;
        Some((idempotent.requirement, idempotent.fingerprint))
    }

    fn check(&self, _request: &RequestContext, _output: &UseCaseOutput) -> Result<(), AppError> {
        Ok(())
    }
}

struct QueryEndpoint<Q: Query> {
    handler: Arc<dyn QueryHandler<Q>>,
    policy: Option<Box<dyn ResourcePolicy<Q::Output>>>,
}

#[async_trait]
impl<Q> Endpoint for QueryEndpoint<Q>
where
    Q: Query,
    Q::Output: Serialize + DeserializeOwned,
{
    async fn call(
        &self,
        cx: UseCaseContext,
        input: Box<dyn Any + Send>,
    ) -> Result<UseCaseOutput, AppError> {
        let query = downcast::<Q>(input, Q::NAME)?;
        let output = self.handler.ask(&cx, query).await?;
        Ok(Box::new(output))
    }

    fn codec(&self) -> Option<OutputCodec> {
        Some(OutputCodec::of::<Q::Output>())
    }

    fn idempotency(&self) -> Option<(KeyRequirement, Fingerprint)> {
        None
    }

    // After the whole chain, so an answer served from the cache is checked too.
    fn check(&self, request: &RequestContext, output: &UseCaseOutput) -> Result<(), AppError> {
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let output = output.downcast_ref::<Q::Output>().ok_or_else(|| {
            AppError::Internal(format!("a middleware replaced the output of `{}`", Q::NAME).into())
        })?;
        policy.check(request.principal(), output)
    }
}

/// A digest of a command's input: SHA-256 of its JSON form.
fn fingerprint<C: Command + Serialize>(input: &dyn Any) -> Option<String> {
    let command = input.downcast_ref::<C>()?;
    let json = serde_json::to_vec(command).ok()?;
    Some(crate::hex(&Sha256::digest(&json)))
}

/// The longest idempotency key accepted; a key is 1 to this many visible ASCII
/// characters.
pub const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

fn idempotency_plan(
    invocation: &Invocation,
    requirement: KeyRequirement,
    fingerprint: Fingerprint,
) -> Result<Option<IdempotencyPlan>, AppError> {
    let request = &invocation.request;
    let Some(key) = request.idempotency_key() else {
        return match requirement {
            KeyRequirement::Required => Err(AppError::BadRequest {
                code: "idempotency_key_missing",
                message: "this request needs an `Idempotency-Key` header".into(),
            }),
            KeyRequirement::Optional => Ok(None),
        };
    };
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LENGTH
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(AppError::BadRequest {
            code: "idempotency_key_invalid",
            message: format!(
                "an `Idempotency-Key` is 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters \
                 (no spaces or control characters)"
            ),
        });
    }
    // Whose key it is: a signed-in caller's own, or an anonymous caller's
    // network's. Anonymous callers never share one namespace, where anyone could
    // replay or block anyone else's key.
    let (kind, owner) = match (request.principal(), request.client_network()) {
        (Some(principal), _) => (principal.kind().as_str(), principal.subject().to_owned()),
        (None, Some(network)) => ("anonymous", network),
        (None, None) => {
            return Err(AppError::BadRequest {
                code: "idempotency_key_unscoped",
                message: "an `Idempotency-Key` needs a caller: sign in, or call over a \
                          connection whose address is known"
                    .into(),
            });
        }
    };
    // An input that cannot be digested is not remembered.
    let Some(fingerprint) = fingerprint(invocation.input.as_any()) else {
        return Ok(None);
    };
    Ok(Some(IdempotencyPlan {
        key: scoped_key(&[kind, &owner, invocation.name, key]),
        fingerprint,
        token: None,
    }))
}

/// SHA-256 over each part prefixed by its length: no two different lists of
/// parts give the same bytes, so no caller's key can pose as another's.
fn scoped_key(parts: &[&str]) -> String {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    crate::hex(&digest.finalize())
}

fn downcast<T: 'static>(input: Box<dyn Any + Send>, name: &str) -> Result<T, AppError> {
    input.downcast::<T>().map(|input| *input).map_err(|_| {
        AppError::Internal(format!("a middleware replaced the input of `{name}`").into())
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use strata_domain::ports::{MockUnitOfWork, Outcome, Propagation};
    use validator::Validate;

    use super::*;
    use crate::application::PrincipalKind;
    use crate::application::{Access, middleware};

    /// Records the order in which it and the handler were reached.
    struct Tracer {
        name: &'static str,
        seen: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl Middleware for Tracer {
        fn name(&self) -> &'static str {
            self.name
        }

        async fn handle(
            &self,
            invocation: Invocation,
            next: Next<'_>,
        ) -> Result<UseCaseOutput, AppError> {
            self.seen.lock().expect("not poisoned").push(format!(
                "{} > {} @{}",
                self.name, invocation.name, invocation.depth
            ));
            next.run(invocation).await
        }
    }

    #[derive(Debug, Validate)]
    struct Greet {
        #[validate(length(min = 1, message = "must not be empty"))]
        name: String,
    }

    impl Command for Greet {
        type Output = String;
        const NAME: &'static str = "test.greet";
        const ACCESS: Access = Access::Anyone;
    }

    #[derive(Debug, Validate)]
    struct GreetTwice {
        name: String,
    }

    impl Command for GreetTwice {
        type Output = String;
        const NAME: &'static str = "test.greet_twice";
        const ACCESS: Access = Access::Anyone;
    }

    #[derive(Debug)]
    struct Count;

    // `validator` derives need named fields; an input without any has no rules.
    impl Validate for Count {
        fn validate(&self) -> Result<(), validator::ValidationErrors> {
            Ok(())
        }
    }

    impl Query for Count {
        type Output = usize;
        const NAME: &'static str = "test.count";
        const ACCESS: Access = Access::Anyone;
    }

    struct Greeter {
        seen: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl CommandHandler<Greet> for Greeter {
        async fn handle(&self, cx: &UseCaseContext, command: Greet) -> Result<String, AppError> {
            self.seen
                .lock()
                .expect("not poisoned")
                .push(format!("handler for {}", cx.request().request_id()));
            Ok(format!("hello, {}", command.name))
        }
    }

    #[async_trait]
    impl CommandHandler<GreetTwice> for Greeter {
        async fn handle(
            &self,
            cx: &UseCaseContext,
            command: GreetTwice,
        ) -> Result<String, AppError> {
            let first = cx
                .execute(Greet {
                    name: command.name.clone(),
                })
                .await?;
            let second = cx.execute(Greet { name: command.name }).await?;
            Ok(format!("{first} / {second}"))
        }
    }

    #[async_trait]
    impl QueryHandler<Count> for Greeter {
        async fn ask(&self, _cx: &UseCaseContext, _query: Count) -> Result<usize, AppError> {
            Ok(self.seen.lock().expect("not poisoned").len())
        }
    }

    fn traced(seen: &Arc<Mutex<Vec<String>>>) -> Dispatcher {
        let greeter = Arc::new(Greeter {
            seen: Arc::clone(seen),
        });
        let tracer = |name| -> Arc<dyn Middleware> {
            Arc::new(Tracer {
                name,
                seen: Arc::clone(seen),
            })
        };
        Dispatcher::builder()
            .middleware([tracer("outer"), tracer("inner")])
            .command::<Greet>(greeter.clone())
            .command::<GreetTwice>(greeter.clone())
            .query::<Count>(greeter)
            .build()
    }

    #[derive(Debug, Validate, Serialize)]
    struct Launch {
        #[validate(length(min = 1))]
        target: String,
    }

    impl Command for Launch {
        type Output = ();
        const NAME: &'static str = "test.launch";
        const ACCESS: Access = Access::Permission("rockets.launch");
    }

    #[async_trait]
    impl CommandHandler<Launch> for Greeter {
        async fn handle(&self, _cx: &UseCaseContext, _command: Launch) -> Result<(), AppError> {
            self.seen
                .lock()
                .expect("not poisoned")
                .push("launched".into());
            Ok(())
        }
    }

    /// A [`Tracer`] with something to do for queries only.
    struct QueriesOnly(Tracer);

    #[async_trait]
    impl Middleware for QueriesOnly {
        fn name(&self) -> &'static str {
            self.0.name
        }

        fn applies_to(&self, call: &UseCaseCall) -> bool {
            call.kind == UseCaseKind::Query
        }

        async fn handle(
            &self,
            invocation: Invocation,
            next: Next<'_>,
        ) -> Result<UseCaseOutput, AppError> {
            self.0.handle(invocation, next).await
        }
    }

    #[tokio::test]
    async fn a_middleware_with_nothing_to_do_for_a_use_case_is_passed_over() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let greeter = Arc::new(Greeter {
            seen: Arc::clone(&seen),
        });
        let tracer = |name| Tracer {
            name,
            seen: Arc::clone(&seen),
        };
        let dispatcher = Dispatcher::builder()
            .middleware([
                Arc::new(tracer("outer")) as Arc<dyn Middleware>,
                Arc::new(QueriesOnly(tracer("queries"))),
                Arc::new(tracer("inner")),
            ])
            .command::<Greet>(greeter.clone())
            .query::<Count>(greeter)
            .build();
        let request = RequestContext::new("req-9", crate::application::TraceContext::start());

        dispatcher
            .execute(&request, Greet { name: "ada".into() })
            .await
            .expect("greeted");
        dispatcher.ask(&request, Count).await.expect("counted");

        assert_eq!(
            *seen.lock().expect("not poisoned"),
            [
                "outer > test.greet @0",
                "inner > test.greet @0",
                "handler for req-9",
                "outer > test.count @0",
                "queries > test.count @0",
                "inner > test.count @0",
            ]
        );
    }

    #[tokio::test]
    async fn a_preflight_runs_the_chain_up_to_authorization_and_never_the_handler() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tracer = |name| -> Arc<dyn Middleware> {
            Arc::new(Tracer {
                name,
                seen: Arc::clone(&seen),
            })
        };
        let dispatcher = Dispatcher::builder()
            .middleware([
                tracer("before"),
                Arc::new(middleware::Authorization),
                tracer("after"),
            ])
            .command::<Launch>(Arc::new(Greeter {
                seen: Arc::clone(&seen),
            }))
            .build();
        let anonymous = RequestContext::new("req-1", crate::application::TraceContext::start());
        let customer = anonymous
            .clone()
            .with_principal(crate::application::Principal::new("c", PrincipalKind::User));
        let pilot = anonymous.clone().with_principal(
            crate::application::Principal::new("p", PrincipalKind::User)
                .with_permission("rockets.launch"),
        );

        assert!(matches!(
            dispatcher.may_execute::<Launch>(&anonymous).await,
            Err(AppError::Unauthenticated)
        ));
        assert!(matches!(
            dispatcher.may_execute::<Launch>(&customer).await,
            Err(AppError::Forbidden(_))
        ));
        dispatcher
            .may_execute::<Launch>(&pilot)
            .await
            .expect("the pilot may launch");
        assert_eq!(
            *seen.lock().expect("not poisoned"),
            vec![
                "before > test.launch @0",
                "before > test.launch @0",
                "before > test.launch @0"
            ],
            "the chain stops at authorization, allowed or not"
        );
        // An unregistered use case is a wiring fault, not a refusal.
        assert!(matches!(
            dispatcher.may_execute::<Greet>(&pilot).await,
            Err(AppError::Internal(_))
        ));
    }

    #[cfg(feature = "metrics")]
    #[tokio::test]
    async fn a_use_case_asked_about_first_is_counted_once() {
        use crate::metrics::{Metrics, UseCaseMetrics};
        let metrics = Metrics::new();
        let dispatcher = Dispatcher::builder()
            .middleware([
                Arc::new(UseCaseMetrics::new(metrics.clone())) as Arc<dyn Middleware>,
                Arc::new(middleware::Authorization),
            ])
            .command::<Launch>(Arc::new(Greeter {
                seen: Arc::new(Mutex::new(Vec::new())),
            }))
            .build();
        let anonymous = RequestContext::new("req-3", crate::application::TraceContext::start());
        let pilot = anonymous.clone().with_principal(
            crate::application::Principal::new("p", PrincipalKind::User)
                .with_permission("rockets.launch"),
        );
        dispatcher
            .may_execute::<Launch>(&pilot)
            .await
            .expect("the pilot may launch");
        dispatcher
            .execute(
                &pilot,
                Launch {
                    target: "moon".into(),
                },
            )
            .await
            .expect("launched");
        assert!(dispatcher.may_execute::<Launch>(&anonymous).await.is_err());
        let text = metrics.render();
        let count = |outcome: &str| {
            let series = format!(
                "use_case_duration_seconds_count{{use_case=\"test.launch\",kind=\"command\",outcome=\"{outcome}\"}} 1"
            );
            text.contains(&series)
        };
        assert!(count("ok"), "{text}");
        assert!(count("rejected"), "{text}");
    }

    #[tokio::test]
    async fn a_caller_refused_a_use_case_hears_nothing_about_its_idempotency_key() {
        let dispatcher = Dispatcher::builder()
            .middleware([Arc::new(middleware::Authorization) as Arc<dyn Middleware>])
            .idempotent_command::<Launch>(
                Arc::new(Greeter {
                    seen: Arc::new(Mutex::new(Vec::new())),
                }),
                KeyRequirement::Required,
            )
            .build();
        let anonymous = RequestContext::new("req-2", crate::application::TraceContext::start());
        let refused = dispatcher
            .execute(
                &anonymous.clone().with_idempotency_key("not a key"),
                Launch {
                    target: "moon".into(),
                },
            )
            .await;
        assert!(
            matches!(refused, Err(AppError::Unauthenticated)),
            "{refused:?}"
        );
        let refused = dispatcher
            .execute(
                &anonymous,
                Launch {
                    target: "moon".into(),
                },
            )
            .await;
        assert!(
            matches!(refused, Err(AppError::Unauthenticated)),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn every_use_case_passes_the_chain_in_declared_order_then_its_handler() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let request = RequestContext::new("req-7", crate::application::TraceContext::start());

        let answer = traced(&seen)
            .execute(&request, Greet { name: "Ada".into() })
            .await
            .expect("greeted");

        assert_eq!(answer, "hello, Ada");
        assert_eq!(
            *seen.lock().expect("not poisoned"),
            [
                "outer > test.greet @0",
                "inner > test.greet @0",
                "handler for req-7"
            ]
        );
    }

    #[tokio::test]
    async fn a_nested_use_case_runs_through_the_whole_chain_again_one_level_deeper() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = traced(&seen)
            .execute(
                &RequestContext::background(),
                GreetTwice { name: "Bo".into() },
            )
            .await
            .expect("greeted");

        assert_eq!(answer, "hello, Bo / hello, Bo");
        let seen = seen.lock().expect("not poisoned");
        assert_eq!(seen[0], "outer > test.greet_twice @0");
        assert_eq!(seen[2], "outer > test.greet @1");
        assert_eq!(seen[3], "inner > test.greet @1");
        assert_eq!(seen.len(), 8);
    }

    #[tokio::test]
    async fn the_standard_chain_is_logging_authorization_validation_then_transaction() {
        let dispatcher = Dispatcher::builder()
            .middleware(middleware::standard(Arc::new(MockUnitOfWork::new())))
            .build();
        assert_eq!(
            dispatcher.middleware_names(),
            ["logging", "authorization", "validation", "transaction"]
        );
    }

    #[tokio::test]
    async fn invalid_commands_are_refused_before_a_transaction_begins() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().never();
        let dispatcher = Dispatcher::builder()
            .middleware(middleware::standard(Arc::new(unit_of_work)))
            .command::<Greet>(Arc::new(Greeter {
                seen: Arc::clone(&seen),
            }))
            .build();

        let error = dispatcher
            .execute(
                &RequestContext::background(),
                Greet {
                    name: String::new(),
                },
            )
            .await
            .expect_err("empty name");

        let AppError::Invalid(failure) = error else {
            panic!("expected a validation failure");
        };
        assert_eq!(failure.violations()[0].field, "name");
        assert!(
            seen.lock().expect("not poisoned").is_empty(),
            "the handler never ran"
        );
    }

    #[tokio::test]
    async fn commands_run_in_a_unit_of_work_and_queries_without_one() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work
            .expect_begin()
            .withf(|propagation| *propagation == Propagation::Required)
            .times(1)
            .returning(|_| Ok(()));
        unit_of_work
            .expect_finish()
            .withf(|decision| *decision == Outcome::Commit)
            .times(1)
            .returning(Ok);
        let greeter = Arc::new(Greeter {
            seen: Arc::clone(&seen),
        });
        let dispatcher = Dispatcher::builder()
            .middleware(middleware::standard(Arc::new(unit_of_work)))
            .command::<Greet>(greeter.clone())
            .query::<Count>(greeter)
            .build();

        let request = RequestContext::background();
        dispatcher
            .execute(&request, Greet { name: "Cy".into() })
            .await
            .expect("greeted");
        let count = dispatcher.ask(&request, Count).await.expect("counted");
        assert_eq!(count, 1);
    }

    #[tokio::test]
    async fn a_use_case_without_a_handler_is_an_internal_error() {
        let dispatcher = Dispatcher::builder().build();
        let error = dispatcher
            .ask(&RequestContext::background(), Count)
            .await
            .expect_err("nothing registered");
        assert!(matches!(error, AppError::Internal(_)));
        assert!(
            crate::application::error_chain(&error).contains("test.count"),
            "the error names the use case"
        );
    }

    #[derive(Debug, Validate)]
    struct Restock {
        units: u32,
    }

    impl Command for Restock {
        type Output = u32;
        const NAME: &'static str = "test.restock";
        const ACCESS: Access = Access::Permission("stock.write");
    }

    struct Stockroom {
        ran: Arc<Mutex<u32>>,
    }

    #[async_trait]
    impl CommandHandler<Restock> for Stockroom {
        async fn handle(&self, _cx: &UseCaseContext, command: Restock) -> Result<u32, AppError> {
            *self.ran.lock().expect("not poisoned") += 1;
            Ok(command.units)
        }
    }

    fn stockroom(unit_of_work: MockUnitOfWork, ran: &Arc<Mutex<u32>>) -> Dispatcher {
        Dispatcher::builder()
            .middleware(middleware::standard(Arc::new(unit_of_work)))
            .command::<Restock>(Arc::new(Stockroom {
                ran: Arc::clone(ran),
            }))
            .build()
    }

    fn caller(permission: Option<&str>) -> RequestContext {
        let principal =
            crate::application::Principal::new("u1", crate::application::PrincipalKind::User);
        let principal = match permission {
            Some(permission) => principal.with_permission(permission),
            None => principal,
        };
        RequestContext::background().with_principal(principal)
    }

    #[tokio::test]
    async fn a_use_case_refused_by_authorization_never_opens_a_transaction_or_runs() {
        let ran = Arc::new(Mutex::new(0));
        for (request, expected) in [
            (RequestContext::background(), "unauthenticated"),
            (caller(Some("stock.read")), "forbidden"),
        ] {
            let mut unit_of_work = MockUnitOfWork::new();
            unit_of_work.expect_begin().never();
            let error = stockroom(unit_of_work, &ran)
                .execute(&request, Restock { units: 3 })
                .await
                .expect_err("refused");
            assert_eq!(error.code(), expected);
        }
        assert_eq!(*ran.lock().expect("not poisoned"), 0);
    }

    #[tokio::test]
    async fn a_caller_with_the_permission_runs_the_use_case_in_a_unit_of_work() {
        let ran = Arc::new(Mutex::new(0));
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().times(1).returning(|_| Ok(()));
        unit_of_work
            .expect_finish()
            .withf(|decision| *decision == Outcome::Commit)
            .times(1)
            .returning(Ok);
        let units = stockroom(unit_of_work, &ran)
            .execute(&caller(Some("stock.write")), Restock { units: 3 })
            .await
            .expect("allowed");
        assert_eq!(units, 3);
        assert_eq!(*ran.lock().expect("not poisoned"), 1);
    }

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Note {
        owner: String,
    }

    impl crate::application::Owned for Note {
        const KIND: &'static str = "note";
        fn owner(&self) -> &str {
            &self.owner
        }
        fn resource_id(&self) -> String {
            "n1".into()
        }
    }

    #[derive(Debug, Validate)]
    struct ReadNote {
        owner: String,
    }

    impl Query for ReadNote {
        type Output = Note;
        const NAME: &'static str = "test.read_note";
        const ACCESS: Access = Access::SignedIn;
    }

    struct Notes;

    #[async_trait]
    impl QueryHandler<ReadNote> for Notes {
        async fn ask(&self, _cx: &UseCaseContext, query: ReadNote) -> Result<Note, AppError> {
            Ok(Note { owner: query.owner })
        }
    }

    #[tokio::test]
    async fn a_guarded_query_answers_only_those_its_policy_allows() {
        let dispatcher = Dispatcher::builder()
            .middleware(middleware::standard(Arc::new(MockUnitOfWork::new())))
            .guarded_query::<ReadNote>(
                Arc::new(Notes),
                crate::application::OwnerOr("notes.read_any"),
            )
            .build();
        let mine = dispatcher
            .ask(&caller(None), ReadNote { owner: "u1".into() })
            .await
            .expect("the owner reads it");
        assert_eq!(mine.owner, "u1");
        let theirs = dispatcher
            .ask(&caller(None), ReadNote { owner: "u2".into() })
            .await
            .expect_err("not the owner");
        assert!(matches!(theirs, AppError::NotFound { kind: "note", .. }));
        dispatcher
            .ask(
                &caller(Some("notes.read_any")),
                ReadNote { owner: "u2".into() },
            )
            .await
            .expect("staff read any");
    }

    #[derive(Debug, Validate, serde::Serialize)]
    struct PlaceOrder {
        units: u32,
    }

    impl Command for PlaceOrder {
        type Output = u32;
        const NAME: &'static str = "test.place_order";
        const ACCESS: Access = Access::Anyone;
    }

    struct Orders {
        placed: Arc<Mutex<u32>>,
        fail: bool,
    }

    #[async_trait]
    impl CommandHandler<PlaceOrder> for Orders {
        async fn handle(&self, _cx: &UseCaseContext, command: PlaceOrder) -> Result<u32, AppError> {
            *self.placed.lock().expect("not poisoned") += 1;
            if self.fail {
                return Err(AppError::RuleViolated {
                    code: "out_of_stock",
                    message: "none left".into(),
                });
            }
            Ok(command.units * 10)
        }
    }

    fn orders(
        store: strata_domain::ports::MockIdempotencyStore,
        unit_of_work: MockUnitOfWork,
        requirement: KeyRequirement,
        fail: bool,
        placed: &Arc<Mutex<u32>>,
    ) -> Dispatcher {
        Dispatcher::builder()
            .middleware(
                middleware::Standard::new(Arc::new(unit_of_work))
                    .with_idempotency(Arc::new(store))
                    .build(),
            )
            .idempotent_command::<PlaceOrder>(
                Arc::new(Orders {
                    placed: Arc::clone(placed),
                    fail,
                }),
                requirement,
            )
            .build()
    }

    fn with_key(key: &str) -> RequestContext {
        caller(None).with_idempotency_key(key)
    }

    fn token() -> strata_domain::ports::ClaimToken {
        strata_domain::ports::ClaimToken::new("t-1")
    }

    /// The key the store is asked to claim for `request` placing an order.
    async fn stored_key(request: RequestContext) -> Result<String, AppError> {
        let seen = Arc::new(Mutex::new(None));
        let mut store = strata_domain::ports::MockIdempotencyStore::new();
        let into = Arc::clone(&seen);
        store.expect_claim().returning(move |key, _, _| {
            *into.lock().expect("not poisoned") = Some(key.to_owned());
            Ok(strata_domain::ports::Claim::InProgress)
        });
        let placed = Arc::new(Mutex::new(0));
        let error = orders(
            store,
            MockUnitOfWork::new(),
            KeyRequirement::Optional,
            false,
            &placed,
        )
        .execute(&request, PlaceOrder { units: 1 })
        .await
        .expect_err("the key is in use or refused");
        let key = seen.lock().expect("not poisoned").take();
        key.ok_or(error)
    }

    fn committing() -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().returning(|_| Ok(()));
        unit_of_work.expect_finish().returning(Ok);
        unit_of_work
    }

    #[tokio::test]
    async fn a_required_key_that_is_missing_is_a_bad_request_and_nothing_runs() {
        let placed = Arc::new(Mutex::new(0));
        let mut store = strata_domain::ports::MockIdempotencyStore::new();
        store.expect_claim().never();
        let error = orders(
            store,
            MockUnitOfWork::new(),
            KeyRequirement::Required,
            false,
            &placed,
        )
        .execute(&RequestContext::background(), PlaceOrder { units: 1 })
        .await
        .expect_err("no key");
        assert_eq!(error.code(), "idempotency_key_missing");
        assert_eq!(*placed.lock().expect("not poisoned"), 0);
    }

    #[tokio::test]
    async fn a_completed_key_replays_the_stored_result_without_running() {
        let placed = Arc::new(Mutex::new(0));
        let mut store = strata_domain::ports::MockIdempotencyStore::new();
        store
            .expect_claim()
            .returning(|_, _, _| Ok(strata_domain::ports::Claim::Completed(b"30".to_vec())));
        let answer = orders(
            store,
            MockUnitOfWork::new(),
            KeyRequirement::Optional,
            false,
            &placed,
        )
        .execute(&with_key("k-1"), PlaceOrder { units: 3 })
        .await
        .expect("replayed");
        assert_eq!(answer, 30);
        assert_eq!(*placed.lock().expect("not poisoned"), 0);
    }

    #[tokio::test]
    async fn a_key_in_use_or_reused_for_other_input_is_refused() {
        use strata_domain::ports::Claim;
        for (claim, code) in [
            (Claim::InProgress, "idempotency_key_in_use"),
            (Claim::Mismatch, "idempotency_key_reused"),
        ] {
            let placed = Arc::new(Mutex::new(0));
            let mut store = strata_domain::ports::MockIdempotencyStore::new();
            store.expect_claim().return_once(move |_, _, _| Ok(claim));
            let error = orders(
                store,
                MockUnitOfWork::new(),
                KeyRequirement::Optional,
                false,
                &placed,
            )
            .execute(&with_key("k-2"), PlaceOrder { units: 1 })
            .await
            .expect_err("refused");
            assert_eq!(error.code(), code);
            assert_eq!(*placed.lock().expect("not poisoned"), 0);
        }
    }

    #[tokio::test]
    async fn an_acquired_key_stores_the_result_inside_the_unit_of_work() {
        let placed = Arc::new(Mutex::new(0));
        let mut sequence = mockall::Sequence::new();
        let mut store = strata_domain::ports::MockIdempotencyStore::new();
        let mut unit_of_work = MockUnitOfWork::new();
        store
            .expect_claim()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, _| Ok(strata_domain::ports::Claim::Acquired(token())));
        unit_of_work
            .expect_begin()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Ok(()));
        store
            .expect_complete()
            .withf(|_, token, result| *token == self::token() && result == b"20")
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, _| Ok(strata_domain::ports::Completion::Stored));
        unit_of_work
            .expect_finish()
            .withf(|decision| *decision == Outcome::Commit)
            .times(1)
            .in_sequence(&mut sequence)
            .returning(Ok);
        store.expect_release().never();
        let answer = orders(
            store,
            unit_of_work,
            KeyRequirement::Optional,
            false,
            &placed,
        )
        .execute(&with_key("k-3"), PlaceOrder { units: 2 })
        .await
        .expect("placed");
        assert_eq!(answer, 20);
    }

    #[tokio::test]
    async fn a_failed_request_frees_its_key_and_stores_nothing() {
        let placed = Arc::new(Mutex::new(0));
        let mut store = strata_domain::ports::MockIdempotencyStore::new();
        store
            .expect_claim()
            .returning(|_, _, _| Ok(strata_domain::ports::Claim::Acquired(token())));
        store.expect_complete().never();
        store
            .expect_release()
            .withf(|_, token| *token == self::token())
            .times(1)
            .returning(|_, _| Ok(()));
        let error = orders(store, committing(), KeyRequirement::Optional, true, &placed)
            .execute(&with_key("k-4"), PlaceOrder { units: 2 })
            .await
            .expect_err("out of stock");
        assert_eq!(error.code(), "out_of_stock");
    }

    #[tokio::test]
    async fn a_holder_that_lost_its_lease_rolls_back_and_answers_409() {
        let placed = Arc::new(Mutex::new(0));
        let mut store = strata_domain::ports::MockIdempotencyStore::new();
        store
            .expect_claim()
            .returning(|_, _, _| Ok(strata_domain::ports::Claim::Acquired(token())));
        store
            .expect_complete()
            .returning(|_, _, _| Ok(strata_domain::ports::Completion::LeaseLost));
        store.expect_release().returning(|_, _| Ok(()));
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().returning(|_| Ok(()));
        unit_of_work
            .expect_finish()
            .withf(|decision| *decision == Outcome::Rollback)
            .times(1)
            .returning(Ok);
        let error = orders(
            store,
            unit_of_work,
            KeyRequirement::Optional,
            false,
            &placed,
        )
        .execute(&with_key("k-5"), PlaceOrder { units: 2 })
        .await
        .expect_err("the lease was lost");
        assert_eq!(error.code(), "idempotency_key_lease_lost");
    }

    #[tokio::test]
    async fn keys_are_scoped_to_the_caller_and_the_use_case_without_ambiguity() {
        let user = |subject: &str| {
            RequestContext::background()
                .with_principal(crate::application::Principal::new(
                    subject,
                    crate::application::PrincipalKind::User,
                ))
                .with_idempotency_key("k")
        };
        let service = RequestContext::background()
            .with_principal(crate::application::Principal::new(
                "u1",
                crate::application::PrincipalKind::Service,
            ))
            .with_idempotency_key("k");
        let first = stored_key(user("u1")).await.expect("scoped");
        assert_eq!(first.len(), 64, "a fixed-length digest: {first}");
        assert_eq!(first, stored_key(user("u1")).await.expect("scoped"));
        assert_ne!(first, stored_key(user("u2")).await.expect("scoped"));
        assert_ne!(
            first,
            stored_key(service).await.expect("scoped"),
            "a service named like a user is another caller"
        );
        // Separators inside the parts cannot make two callers' keys meet.
        let tricky = |subject: &str, key: &str| {
            RequestContext::background()
                .with_principal(crate::application::Principal::new(
                    subject,
                    crate::application::PrincipalKind::User,
                ))
                .with_idempotency_key(key)
        };
        assert_ne!(
            stored_key(tricky("a|b", "c")).await.expect("scoped"),
            stored_key(tricky("a", "b|c")).await.expect("scoped")
        );
    }

    #[tokio::test]
    async fn anonymous_keys_are_scoped_by_network_and_refused_without_one() {
        let from = |addr: &str| {
            RequestContext::background()
                .with_client_addr(addr.parse().expect("an address"))
                .with_idempotency_key("k")
        };
        assert_eq!(
            stored_key(from("2001:db8:1:2::1")).await.expect("scoped"),
            stored_key(from("2001:db8:1:2::99")).await.expect("scoped"),
            "one /64 is one client"
        );
        assert_ne!(
            stored_key(from("203.0.113.1")).await.expect("scoped"),
            stored_key(from("203.0.113.2")).await.expect("scoped")
        );
        let unscoped = stored_key(RequestContext::background().with_idempotency_key("k"))
            .await
            .expect_err("no caller, no network");
        assert_eq!(unscoped.code(), "idempotency_key_unscoped");
    }

    #[tokio::test]
    async fn keys_that_are_not_visible_ascii_or_too_long_are_a_bad_request() {
        for key in [
            String::new(),
            "with space".to_owned(),
            "tab\there".to_owned(),
            "caf\u{e9}".to_owned(),
            "k".repeat(256),
        ] {
            let error = stored_key(with_key(&key)).await.expect_err("refused");
            assert_eq!(error.code(), "idempotency_key_invalid", "{key:?}");
        }
        stored_key(with_key(&"k".repeat(255)))
            .await
            .expect("255 visible characters are a key");
    }

    #[derive(Debug, Validate)]
    struct Snoop {
        units: u32,
    }

    impl Query for Snoop {
        type Output = u32;
        const NAME: &'static str = "test.snoop";
        const ACCESS: Access = Access::Anyone;
    }

    struct Snooper;

    #[async_trait]
    impl QueryHandler<Snoop> for Snooper {
        async fn ask(&self, cx: &UseCaseContext, query: Snoop) -> Result<u32, AppError> {
            cx.execute(Restock { units: query.units }).await
        }
    }

    #[tokio::test]
    async fn a_query_that_runs_a_command_is_refused_before_the_command_runs() {
        let ran = Arc::new(Mutex::new(0));
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().never();
        let dispatcher = Dispatcher::builder()
            .middleware(middleware::standard(Arc::new(unit_of_work)))
            .command::<Restock>(Arc::new(Stockroom {
                ran: Arc::clone(&ran),
            }))
            .query::<Snoop>(Arc::new(Snooper))
            .build();
        let error = dispatcher
            .ask(&caller(Some("stock.write")), Snoop { units: 1 })
            .await
            .expect_err("refused");
        let chain = crate::application::error_chain(&error);
        assert!(
            chain.contains("test.snoop") && chain.contains("test.restock"),
            "{chain}"
        );
        assert_eq!(*ran.lock().expect("not poisoned"), 0);
    }
}
