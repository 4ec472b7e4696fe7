//! What the use-case pipeline costs: a no-op command dispatched through the full
//! standard chain (logging, validation, unit of work) against a direct call of its
//! handler, with a log subscriber installed at the default level.

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use strata_app_api::application::{
    Access, AppError, Command, CommandHandler, Dispatcher, RequestContext, UseCaseContext,
    middleware,
};
use strata_domain::ports::{
    AfterCommit, BoxFuture, Outcome, Propagation, UnitOfWork, UnitOfWorkError,
};
use validator::Validate;

#[derive(Debug, Validate)]
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

fn dispatch(c: &mut Criterion) {
    let info_logging = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .finish();
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
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
