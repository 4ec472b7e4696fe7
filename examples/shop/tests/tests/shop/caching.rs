//! The cache on every store: one loader under a stampede, invalidation only after
//! a commit, and a scaled-out shop (two instances, one database, one Redis).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strata_app_api::application::{
    Access, AppError, Cache, CachePolicy, Command, CommandHandler, Dispatcher, Invalidation,
    RequestContext, UseCaseContext, middleware,
};
use strata_domain::ports::CacheStore;
use strata_infrastructure::{
    InMemoryCacheStore, RedisCacheConfig, RedisCacheStore, SeaOrmUnitOfWork, TwoLevelCacheConfig,
    TwoLevelCacheStore,
};
use validator::Validate;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_tests::{TestApp, TestDatabase, spawn_two_instances_sharing_redis};

const REDIS_URL_VARIABLE: &str = "STRATA_TEST_REDIS_URL";

async fn price_seen_by(app: &TestApp, id: &str) -> i64 {
    let product: Value = app
        .client
        .get(app.api_url(&format!("/api/products/{id}")))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON product");
    product["price"]["amount_minor"].as_i64().expect("a price")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_is_not_served_stale_by_the_other() {
    let Ok(redis_url) = std::env::var(REDIS_URL_VARIABLE) else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "note: the two-instance cache test skipped: set {REDIS_URL_VARIABLE} (e.g. redis://127.0.0.1:6379) to run it"
        );
        return;
    };
    let (first, second) =
        spawn_two_instances_sharing_redis(TestDatabase::sqlite(), &redis_url).await;
    let created: Value = first
        .post_as_admin(
            "/api/products",
            &json!({
                "name": "Tea pot",
                "sku": "TEA-SHARED",
                "price": { "amount_minor": 1_000, "currency": "EUR" },
                "stock": 3
            }),
        )
        .await
        .json()
        .await
        .expect("JSON product");
    let id = created["id"].as_str().expect("an id").to_owned();

    // Both instances now hold the product in their local cache level.
    assert_eq!(price_seen_by(&first, &id).await, 1_000);
    assert_eq!(price_seen_by(&second, &id).await, 1_000);

    let changed = first
        .client
        .put(first.api_url(&format!("/api/products/{id}/price")))
        .bearer_auth(first.admin_token().await)
        .json(&json!({ "price": { "amount_minor": 750, "currency": "EUR" }, "version": 1 }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(changed.status(), StatusCode::OK);

    // The invalidation travels over Redis pub/sub; once it has arrived the second
    // instance must answer with the new price.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let seen = price_seen_by(&second, &id).await;
        if seen == 750 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second instance still serves {seen}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(price_seen_by(&first, &id).await, 750);
    first.stop().await;
    second.stop().await;
}

/// Every cache store the shop can run on: in-process always, Redis and two-level
/// when a Redis server is configured (each under a fresh key prefix).
fn stores() -> Vec<(&'static str, Arc<dyn CacheStore>)> {
    let mut stores: Vec<(&'static str, Arc<dyn CacheStore>)> =
        vec![("in-process", Arc::new(InMemoryCacheStore::default()))];
    if let Ok(url) = std::env::var(REDIS_URL_VARIABLE) {
        let config = || {
            RedisCacheConfig::new(
                &url,
                format!("cache-test-{}", uuid::Uuid::now_v7().simple()),
            )
            .expect("a valid Redis URL")
        };
        stores.push((
            "redis",
            Arc::new(RedisCacheStore::new(config()).expect("a Redis store")),
        ));
        stores.push((
            "two-level",
            Arc::new(
                TwoLevelCacheStore::new(TwoLevelCacheConfig::new(config()))
                    .expect("a two-level store"),
            ),
        ));
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_misses_run_the_loader_once_on_every_store() {
    for (name, store) in stores() {
        let cache = Arc::new(Cache::new(store));
        let loads = Arc::new(AtomicUsize::new(0));
        let policy = CachePolicy::new("stampede", Duration::from_secs(30));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let (cache, loads, policy) = (Arc::clone(&cache), Arc::clone(&loads), policy.clone());
            callers.spawn(async move {
                cache
                    .get_or_load(&policy, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, AppError>("sencha".to_owned())
                    })
                    .await
            });
        }
        while let Some(answer) = callers.join_next().await {
            assert_eq!(
                answer.expect("task ran").expect("loaded"),
                "sencha",
                "{name}"
            );
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "{name}: one loader");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_committed_command_invalidates_on_every_store() {
    for (name, store) in stores() {
        let database = TestDatabase::sqlite();
        let pool = database.migrated().await;
        let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(pool));
        let cache = Arc::new(Cache::new(Arc::clone(&store)));
        let dispatcher = Dispatcher::builder()
            .middleware(
                middleware::Standard::new(unit_of_work)
                    .with_cache(cache)
                    .build(),
            )
            .command::<Forget>(Arc::new(Forgetter))
            .build();
        store
            .put(
                "answer",
                b"old".to_vec(),
                Duration::from_secs(30),
                &["answers".into()],
            )
            .await
            .expect("cached");

        let failed = dispatcher
            .execute(&RequestContext::background(), Forget { fail: true })
            .await;
        assert!(failed.is_err());
        assert_eq!(
            store.get("answer").await.expect("read"),
            Some(b"old".to_vec()),
            "{name}: a rolled-back command invalidates nothing"
        );

        dispatcher
            .execute(&RequestContext::background(), Forget { fail: false })
            .await
            .expect("committed");
        assert_eq!(store.get("answer").await.expect("read"), None, "{name}");
    }
}

/// Makes every answer tagged `answers` stale, then fails if asked to.
#[derive(Debug, Validate)]
struct Forget {
    fail: bool,
}

impl Command for Forget {
    type Output = ();
    const NAME: &'static str = "test.forget";
    const ACCESS: Access = Access::Anyone;

    fn invalidates(&self) -> Invalidation {
        Invalidation::none().tag("answers")
    }
}

struct Forgetter;

#[async_trait]
impl CommandHandler<Forget> for Forgetter {
    async fn handle(&self, _cx: &UseCaseContext, command: Forget) -> Result<(), AppError> {
        if command.fail {
            return Err(AppError::RuleViolated {
                code: "planned_failure",
                message: "the test asked this command to fail".into(),
            });
        }
        Ok(())
    }
}
