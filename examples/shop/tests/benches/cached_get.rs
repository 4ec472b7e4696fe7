//! What the cache saves: `GetProduct` through the full pipeline, served from the
//! in-process cache against the same query read from SQLite every time.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use shop_app_api::application::catalog::{self, Catalog, CreateProduct, GetProduct, PriceInput};
use shop_infrastructure::SeaOrmProductRepository;
use shop_tests::TestDatabase;
use strata_app_api::application::{
    Cache, Dispatcher, Principal, PrincipalKind, RequestContext, middleware,
};
use strata_domain::ports::CacheStore;
use strata_infrastructure::{InMemoryCacheStore, SeaOrmUnitOfWork};

fn cached_get(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let database = TestDatabase::sqlite();
    let (cached, uncached, id) = runtime.block_on(async {
        let pool = shop_tests::migrated(&database).await;
        let products = Arc::new(SeaOrmProductRepository::new(pool.clone()));
        let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(pool));
        let store: Arc<dyn CacheStore> = Arc::new(InMemoryCacheStore::with_max_bytes(1 << 20));
        let build = |chain| {
            catalog::register(
                Dispatcher::builder().middleware(chain),
                Arc::new(Catalog::new(products.clone())),
            )
            .build()
        };
        let cached = build(
            middleware::Standard::new(unit_of_work.clone())
                .with_cache(Arc::new(Cache::new(store)))
                .build(),
        );
        let uncached = build(middleware::standard(unit_of_work));
        let admin = RequestContext::background().with_principal(
            Principal::new("bench", PrincipalKind::User).with_permission("catalog.write"),
        );
        let product = uncached
            .execute(
                &admin,
                CreateProduct {
                    name: "Tea pot".into(),
                    sku: "BENCH-1".into(),
                    price: PriceInput {
                        amount_minor: 2_450,
                        currency: "EUR".into(),
                    },
                    stock: 3,
                },
            )
            .await
            .expect("created");
        (cached, uncached, product.id)
    });
    let request = RequestContext::background();

    let mut group = c.benchmark_group("GetProduct");
    group.bench_function("uncached (SQLite read)", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(uncached.ask(&request, GetProduct { id }).await) });
    });
    group.bench_function("cached (in-process)", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(cached.ask(&request, GetProduct { id }).await) });
    });
    group.finish();
}

criterion_group!(benches, cached_get);
criterion_main!(benches);
