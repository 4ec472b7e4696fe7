//! What the use-case pipeline costs: a no-op command dispatched through the full
//! standard chain (logging, validation, unit of work) against a direct call of its
//! handler, with a log subscriber installed at the default level; and through the
//! chain a Strata service runs (the standard one with caching, idempotency keys and
//! the audit trail), its stores in memory so that only the middleware is measured.

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use strata_app_api::application::{
    Access, AppError, Cache, Command, CommandHandler, Dispatcher, KeyRequirement, RequestContext,
    UseCaseContext, middleware,
};
use strata_app_api::telemetry;
use strata_domain::ports::{
    AfterCommit, AuditEntry, AuditFilter, AuditTrail, BoxFuture, CacheError, CacheStore, Claim,
    ClaimToken, Completion, IdempotencyStore, Outcome, Propagation, SystemClock, UnitOfWork,
    UnitOfWorkError,
};
use strata_domain::{Page, PageRequest, RepositoryError};
use validator::Validate;

#[derive(Debug, Validate, serde::Serialize)]
struct Ping {
    #[validate(range(max = 1_000))]
    n: u32,
}

impl Command for Ping {
    type Output = u32;
    const NAME: &'static str = "bench.ping";
    const ACCESS: Access = Access::Anyone;
}

struct Pong;

#[async_trait]
impl CommandHandler<Ping> for Pong {
    async fn handle(&self, _cx: &UseCaseContext, command: Ping) -> Result<u32, AppError> {
        Ok(command.n)
    }
}

/// A unit of work with no database behind it, so the benchmark measures the
/// pipeline and not storage.
struct InMemoryUnitOfWork;

impl UnitOfWork for InMemoryUnitOfWork {
    fn scope<'a>(
        &'a self,
        _propagation: Propagation,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        Box::pin(async move { Ok(work.await) })
    }

    fn after_commit(&self, _hook: AfterCommit) -> Result<(), UnitOfWorkError> {
        Ok(())
    }
}

/// Keeps nothing: the audit middleware's own cost is what is measured.
struct NoTrail;

#[async_trait]
impl AuditTrail for NoTrail {
    async fn record(&self, entry: AuditEntry) -> Result<(), RepositoryError> {
        black_box(entry);
        Ok(())
    }

    async fn record_failure(&self, entry: AuditEntry) -> Result<(), RepositoryError> {
        black_box(entry);
        Ok(())
    }

    async fn search(
        &self,
        _filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, RepositoryError> {
        Ok(Page::new(Vec::new(), page, 0))
    }

    async fn purge_before(&self, _cutoff: std::time::SystemTime) -> Result<u64, RepositoryError> {
        Ok(0)
    }
}

/// Grants every key at once and stores nothing.
struct EveryKeyNew;

#[async_trait]
impl IdempotencyStore for EveryKeyNew {
    async fn claim(
        &self,
        _key: &str,
        _fingerprint: &str,
        _lease: std::time::Duration,
    ) -> Result<Claim, RepositoryError> {
        Ok(Claim::Acquired(ClaimToken::new("bench")))
    }

    async fn complete(
        &self,
        _key: &str,
        _token: &ClaimToken,
        result: &[u8],
    ) -> Result<Completion, RepositoryError> {
        black_box(result);
        Ok(Completion::Stored)
    }

    async fn release(&self, _key: &str, _token: &ClaimToken) -> Result<(), RepositoryError> {
        Ok(())
    }

    async fn purge_expired(&self) -> Result<u64, RepositoryError> {
        Ok(0)
    }
}

/// Holds nothing.
struct NoStore;

#[async_trait]
impl CacheStore for NoStore {
    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(None)
    }

    async fn put(
        &self,
        _key: &str,
        _value: Vec<u8>,
        _ttl: std::time::Duration,
        _tags: &[String],
    ) -> Result<(), CacheError> {
        Ok(())
    }

    async fn invalidate(&self, _keys: &[String], _tags: &[String]) -> Result<(), CacheError> {
        Ok(())
    }
}

fn dispatch(c: &mut Criterion) {
    // The subscriber a service installs (level `info` unless RUST_LOG says
    // otherwise), writing its lines nowhere, as to a pipe: no colour codes.
    let (info_logging, _writer) =
        telemetry::subscriber(telemetry::LogFormat::Pretty, std::io::sink(), false);
    let info_logging = tracing::Dispatch::new(info_logging);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let handler = Arc::new(Pong);
    let dispatcher = Dispatcher::builder()
        .middleware(middleware::standard(Arc::new(InMemoryUnitOfWork)))
        .command::<Ping>(handler.clone())
        .build();
    let request = RequestContext::background();
    let cx = UseCaseContext::new(request.clone(), dispatcher.clone());
    let service_chain = Dispatcher::builder()
        .middleware(
            middleware::Standard::new(Arc::new(InMemoryUnitOfWork))
                .with_cache(Arc::new(Cache::new(Arc::new(NoStore))))
                .with_idempotency(Arc::new(EveryKeyNew))
                .with_audit(Arc::new(NoTrail), Arc::new(SystemClock))
                .build(),
        )
        .idempotent_command::<Ping>(handler.clone(), KeyRequirement::Optional)
        .build();
    let keyed = RequestContext::background()
        .with_client_addr(std::net::IpAddr::from([127, 0, 0, 1]))
        .with_idempotency_key("bench-key");

    // Each case measures a call that succeeds, not a refusal. (Under the log
    // subscriber: a span or event first met with none installed stays switched
    // off for it afterwards.)
    tracing::dispatcher::with_default(&info_logging, || {
        for (chain, request) in [
            (&dispatcher, &request),
            (&service_chain, &request),
            (&service_chain, &keyed),
        ] {
            let outcome = runtime.block_on(chain.execute(request, Ping { n: 7 }));
            assert_eq!(outcome.expect("the command runs"), 7);
        }
    });

    let mut group = c.benchmark_group("no-op command");
    group.bench_function("direct handler call", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(handler.handle(&cx, Ping { n: black_box(7) }).await) });
    });
    // The current-thread runtime polls on this thread, so a thread-local default
    // subscriber sees every span and event the chain makes.
    tracing::dispatcher::with_default(&info_logging, || {
        group.bench_function("full standard chain, logging at info", |b| {
            b.to_async(&runtime).iter(|| async {
                black_box(dispatcher.execute(&request, Ping { n: black_box(7) }).await)
            });
        });
    });
    group.bench_function("full standard chain, no log subscriber", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(dispatcher.execute(&request, Ping { n: black_box(7) }).await)
        });
    });
    tracing::dispatcher::with_default(&info_logging, || {
        group.bench_function(
            "service chain (+ caching, idempotency, audit), logging at info, no key",
            |b| {
                b.to_async(&runtime).iter(|| async {
                    black_box(
                        service_chain
                            .execute(&request, Ping { n: black_box(7) })
                            .await,
                    )
                });
            },
        );
        group.bench_function(
            "service chain (+ caching, idempotency, audit), logging at info, with a key",
            |b| {
                b.to_async(&runtime).iter(|| async {
                    black_box(
                        service_chain
                            .execute(&keyed, Ping { n: black_box(7) })
                            .await,
                    )
                });
            },
        );
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
