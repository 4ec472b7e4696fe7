//! The behaviour every cache store promises, run against each backend, and what
//! the two-level store adds: invalidations reach every instance, and an
//! unreachable Redis fails calls quickly instead of hanging them.
//!
//! The in-process store is always tested. Redis and two-level suites run when
//! `STRATA_TEST_REDIS_URL` names a server (`redis://127.0.0.1:6379`) at build
//! time, and are listed as ignored otherwise; each test works under a key prefix
//! of its own, so they run in parallel and leave nothing that outlives its TTL.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use strata_app_api::application::{AppError, Cache, CachePolicy, Invalidation};
use strata_domain::ports::CacheStore;
use strata_infrastructure::InMemoryCacheStore;

/// Long enough never to expire during a test, short enough that nothing a test
/// leaves in Redis stays long.
const LONG: Duration = Duration::from_secs(60);

fn names(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// Polls `check` until it holds, failing the test after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The promises of [`CacheStore`], whatever the backend.
mod behaviour {
    use super::*;

    pub async fn returns_what_was_put(store: &dyn CacheStore) {
        store
            .put("greeting", b"hello".to_vec(), LONG, &[])
            .await
            .expect("put");

        assert_eq!(
            store.get("greeting").await.expect("get"),
            Some(b"hello".to_vec())
        );
    }

    pub async fn a_missing_key_is_none(store: &dyn CacheStore) {
        assert_eq!(store.get("never-put").await.expect("get"), None);
    }

    pub async fn putting_again_replaces_the_value(store: &dyn CacheStore) {
        store
            .put("k", b"first".to_vec(), LONG, &[])
            .await
            .expect("put");
        store
            .put("k", b"second".to_vec(), LONG, &[])
            .await
            .expect("put");

        assert_eq!(store.get("k").await.expect("get"), Some(b"second".to_vec()));
    }

    pub async fn an_entry_expires_after_its_ttl(store: &dyn CacheStore) {
        let ttl = Duration::from_secs(1);
        let put_at = Instant::now();
        store
            .put("brief", b"soon gone".to_vec(), ttl, &[])
            .await
            .expect("put");
        store
            .put("lasting", b"still here".to_vec(), LONG, &[])
            .await
            .expect("put");
        assert_eq!(
            store.get("brief").await.expect("get"),
            Some(b"soon gone".to_vec())
        );

        eventually(Duration::from_secs(3), "the entry expires", || async {
            store.get("brief").await.expect("get").is_none()
        })
        .await;

        assert!(
            put_at.elapsed() >= ttl,
            "expired early, after {:?}",
            put_at.elapsed()
        );
        assert_eq!(
            store.get("lasting").await.expect("get"),
            Some(b"still here".to_vec())
        );
    }

    pub async fn a_zero_ttl_leaves_nothing(store: &dyn CacheStore) {
        store
            .put("k", b"old".to_vec(), LONG, &[])
            .await
            .expect("put");
        store
            .put("k", b"new".to_vec(), Duration::ZERO, &[])
            .await
            .expect("put");

        assert_eq!(store.get("k").await.expect("get"), None);
    }

    pub async fn invalidating_a_key_removes_only_it(store: &dyn CacheStore) {
        store.put("a", b"1".to_vec(), LONG, &[]).await.expect("put");
        store.put("b", b"2".to_vec(), LONG, &[]).await.expect("put");

        store
            .invalidate(&names(&["a", "not-there"]), &[])
            .await
            .expect("invalidate");

        assert_eq!(store.get("a").await.expect("get"), None);
        assert_eq!(store.get("b").await.expect("get"), Some(b"2".to_vec()));
    }

    pub async fn invalidating_a_tag_removes_only_its_keys(store: &dyn CacheStore) {
        store
            .put("page-1", b"p1".to_vec(), LONG, &names(&["products"]))
            .await
            .expect("put");
        store
            .put(
                "page-2",
                b"p2".to_vec(),
                LONG,
                &names(&["products", "featured"]),
            )
            .await
            .expect("put");
        store
            .put("banner", b"b".to_vec(), LONG, &names(&["featured"]))
            .await
            .expect("put");
        store
            .put("untagged", b"u".to_vec(), LONG, &[])
            .await
            .expect("put");

        store
            .invalidate(&[], &names(&["products"]))
            .await
            .expect("invalidate");

        assert_eq!(store.get("page-1").await.expect("get"), None);
        assert_eq!(store.get("page-2").await.expect("get"), None);
        assert_eq!(store.get("banner").await.expect("get"), Some(b"b".to_vec()));
        assert_eq!(
            store.get("untagged").await.expect("get"),
            Some(b"u".to_vec())
        );
    }

    pub async fn a_key_put_after_its_tag_was_invalidated_stays(store: &dyn CacheStore) {
        let tags = names(&["products"]);
        store
            .put("page", b"old".to_vec(), LONG, &tags)
            .await
            .expect("put");
        store.invalidate(&[], &tags).await.expect("invalidate");

        store
            .put("page", b"new".to_vec(), LONG, &tags)
            .await
            .expect("put");

        assert_eq!(store.get("page").await.expect("get"), Some(b"new".to_vec()));
    }
}

/// One `#[tokio::test]` per promise for the backend `make` builds, with the
/// attributes given (an `ignore` when the backend's server is not configured).
macro_rules! behaviour_suite {
    ($backend:ident, $make:path $(, #[$attribute:meta])*) => {
        mod $backend {
            use super::*;

            behaviour_suite!(@tests $make; [$(#[$attribute])*];
                returns_what_was_put,
                a_missing_key_is_none,
                putting_again_replaces_the_value,
                an_entry_expires_after_its_ttl,
                a_zero_ttl_leaves_nothing,
                invalidating_a_key_removes_only_it,
                invalidating_a_tag_removes_only_its_keys,
                a_key_put_after_its_tag_was_invalidated_stays,
            );
        }
    };
    (@tests $make:path; $attributes:tt; $($promise:ident),+ $(,)?) => {
        $(
            behaviour_suite!(@test $make; $attributes; $promise);
        )+
    };
    (@test $make:path; [$(#[$attribute:meta])*]; $promise:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attribute])*
        async fn $promise() {
            behaviour::$promise(&$make().await).await;
        }
    };
}

async fn in_memory_store() -> InMemoryCacheStore {
    InMemoryCacheStore::default()
}

/// The query cache in front of a store: a hundred callers missing one key at
/// once run its loader once, and all get its answer.
async fn a_hundred_concurrent_misses_run_the_loader_once(store: Arc<dyn CacheStore>) {
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
        assert_eq!(answer.expect("task ran").expect("loaded"), "sencha");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one loader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stampede_on_the_in_process_store_loads_once() {
    a_hundred_concurrent_misses_run_the_loader_once(Arc::new(in_memory_store().await)).await;
}

/// The query cache in front of a store: a value a reader loaded before a
/// writer's commit, whose invalidation then ran while the reader was still
/// loading, is answered to that reader but never stored — else it would be
/// served, old, until its TTL. Through the key, and through a tag.
async fn a_value_loaded_across_an_invalidation_is_not_kept(store: Arc<dyn CacheStore>) {
    let cache = Arc::new(Cache::new(Arc::clone(&store)));
    for (key, invalidation) in [
        ("tea:1", Invalidation::none().key("tea:1")),
        ("tea:2", Invalidation::none().tag("teas")),
    ] {
        let policy = CachePolicy::new(key, Duration::from_secs(30)).tagged("teas");
        let answer = cache
            .get_or_load(&policy, || async {
                // The writer commits and invalidates while this load runs.
                cache.invalidate(&invalidation).await;
                Ok::<_, AppError>("old".to_owned())
            })
            .await
            .expect("loaded");
        assert_eq!(answer, "old", "the reader gets what it loaded");
        assert_eq!(
            store.get(key).await.expect("reads"),
            None,
            "{key}: what was loaded before the invalidation is not kept"
        );
        let fresh = cache
            .get_or_load(&policy, || async { Ok::<_, AppError>("new".to_owned()) })
            .await
            .expect("loaded");
        assert_eq!(fresh, "new");
        assert!(
            store.get(key).await.expect("reads").is_some(),
            "{key}: a load that no invalidation crossed is kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_across_an_invalidation_is_not_kept_in_the_in_process_store() {
    a_value_loaded_across_an_invalidation_is_not_kept(Arc::new(in_memory_store().await)).await;
}

behaviour_suite!(in_memory, in_memory_store);

mod with_redis {
    use std::collections::HashSet;
    use std::sync::LazyLock;

    use strata_infrastructure::{
        RedisCacheConfig, RedisCacheStore, TwoLevelCacheConfig, TwoLevelCacheStore,
    };
    use tokio::sync::{RwLock, RwLockReadGuard};

    use super::*;

    /// The test that kills a listener's connection finds it as the pub/sub
    /// connection that appeared while it made its store. Tests that count on
    /// their own listeners staying up hold this for reading; that test holds it
    /// for writing, so no other listener appears meanwhile.
    static LISTENERS: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

    use strata_tests::servers::{fresh_prefix, redis_url};

    fn config(url: &str, prefix: &str) -> RedisCacheConfig {
        RedisCacheConfig::new(url, prefix).expect("a valid Redis URL")
    }

    fn redis_store_under(url: &str, prefix: &str) -> RedisCacheStore {
        RedisCacheStore::new(config(url, prefix)).expect("a Redis store")
    }

    async fn listening_store(config: TwoLevelCacheConfig) -> TwoLevelCacheStore {
        let store = TwoLevelCacheStore::new(config).expect("a two-level store");
        eventually(
            Duration::from_secs(2),
            "the listener subscribes",
            || async { store.is_listening() },
        )
        .await;
        store
    }

    async fn redis_store() -> RedisCacheStore {
        redis_store_under(&redis_url(), &fresh_prefix("cache"))
    }

    async fn two_level_store() -> TwoLevelCacheStore {
        listening_store(TwoLevelCacheConfig::new(config(
            &redis_url(),
            &fresh_prefix("cache"),
        )))
        .await
    }

    behaviour_suite!(
        redis,
        redis_store,
        #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    );
    behaviour_suite!(
        two_level,
        two_level_store,
        #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn the_shared_stores_answer_readiness_through_their_own_client() {
        let redis = redis_store().await;
        let two_level = two_level_store().await;
        for store in [&redis as &dyn CacheStore, &two_level] {
            assert!(store.is_remote());
            store.ping().await.expect("PONG");
        }
        let local = in_memory_store().await;
        assert!(!local.is_remote());
        local.ping().await.expect("always there");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn a_stampede_on_the_redis_store_loads_once() {
        a_hundred_concurrent_misses_run_the_loader_once(Arc::new(redis_store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn a_stampede_on_the_two_level_store_loads_once() {
        a_hundred_concurrent_misses_run_the_loader_once(Arc::new(two_level_store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn a_load_across_an_invalidation_is_not_kept_in_redis() {
        a_value_loaded_across_an_invalidation_is_not_kept(Arc::new(redis_store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn a_load_across_an_invalidation_is_not_kept_in_the_two_level_store() {
        a_value_loaded_across_an_invalidation_is_not_kept(Arc::new(two_level_store().await)).await;
    }

    /// Two instances of a service sharing one Redis, and a plain Redis store under
    /// the same prefix to change values behind their backs.
    struct Instances {
        a: TwoLevelCacheStore,
        b: TwoLevelCacheStore,
        shared: RedisCacheStore,
        _listeners_stay_up: RwLockReadGuard<'static, ()>,
    }

    async fn two_instances() -> Instances {
        let url = redis_url();
        let guard = LISTENERS.read().await;
        let prefix = fresh_prefix("cache");
        let instance = || listening_store(TwoLevelCacheConfig::new(config(&url, &prefix)));
        Instances {
            a: instance().await,
            b: instance().await,
            shared: redis_store_under(&url, &prefix),
            _listeners_stay_up: guard,
        }
    }

    async fn value(store: &dyn CacheStore, key: &str) -> Option<Vec<u8>> {
        store.get(key).await.expect("get")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn an_invalidation_on_one_instance_reaches_the_local_copy_on_another() {
        let Instances { a, b, shared, .. } = two_instances().await;
        a.put("k", b"v1".to_vec(), LONG, &[]).await.expect("put");
        assert_eq!(value(&a, "k").await, Some(b"v1".to_vec()));
        assert_eq!(value(&b, "k").await, Some(b"v1".to_vec()));
        shared
            .put("k", b"changed behind their backs".to_vec(), LONG, &[])
            .await
            .expect("put");
        assert_eq!(
            value(&b, "k").await,
            Some(b"v1".to_vec()),
            "B answers from its local copy"
        );

        a.invalidate(&names(&["k"]), &[]).await.expect("invalidate");

        eventually(Duration::from_secs(2), "B drops its copy", || async {
            value(&b, "k").await.is_none()
        })
        .await;
        b.put("k", b"v2".to_vec(), LONG, &[]).await.expect("put");
        assert_eq!(value(&b, "k").await, Some(b"v2".to_vec()));
        assert_eq!(value(&a, "k").await, Some(b"v2".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn a_tag_invalidation_reaches_copies_an_instance_only_read() {
        let Instances { a, b, shared, .. } = two_instances().await;
        let products = names(&["products"]);
        a.put("page-1", b"p1".to_vec(), LONG, &products)
            .await
            .expect("put");
        a.put("other", b"o".to_vec(), LONG, &[]).await.expect("put");
        // B learns the values by reading them, so it never saw their tags.
        assert_eq!(value(&b, "page-1").await, Some(b"p1".to_vec()));
        assert_eq!(value(&b, "other").await, Some(b"o".to_vec()));
        shared
            .put("page-1", b"changed".to_vec(), LONG, &products)
            .await
            .expect("put");
        assert_eq!(value(&b, "page-1").await, Some(b"p1".to_vec()));

        a.invalidate(&[], &products).await.expect("invalidate");

        eventually(
            Duration::from_secs(2),
            "B drops the tagged copy",
            || async { value(&b, "page-1").await.is_none() },
        )
        .await;
        assert_eq!(value(&b, "other").await, Some(b"o".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn a_local_copy_lives_no_longer_than_the_local_ttl() {
        let url = redis_url();
        let _listeners_stay_up = LISTENERS.read().await;
        let prefix = fresh_prefix("cache");
        let local_ttl = Duration::from_secs(2);
        let store = listening_store(
            TwoLevelCacheConfig::new(config(&url, &prefix)).with_local_ttl(local_ttl),
        )
        .await;
        let shared = redis_store_under(&url, &prefix);
        store
            .put("k", b"v1".to_vec(), LONG, &[])
            .await
            .expect("put");
        let changed_at = Instant::now();
        shared
            .put("k", b"v2".to_vec(), LONG, &[])
            .await
            .expect("put");
        assert_eq!(value(&store, "k").await, Some(b"v1".to_vec()));

        eventually(Duration::from_secs(6), "the local copy expires", || async {
            value(&store, "k").await == Some(b"v2".to_vec())
        })
        .await;

        assert!(changed_at.elapsed() <= local_ttl + Duration::from_secs(2));
    }

    async fn pubsub_connections(redis: &::redis::Client) -> HashSet<String> {
        let mut connection = redis
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        let clients: String = ::redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut connection)
            .await
            .expect("CLIENT LIST");
        clients
            .lines()
            .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn a_listener_whose_connection_drops_empties_the_local_level_and_resubscribes() {
        let url = redis_url();
        let _no_other_listener_appears = LISTENERS.write().await;
        let admin = ::redis::Client::open(url.as_str()).expect("a client");
        let prefix = fresh_prefix("cache");
        let before = pubsub_connections(&admin).await;
        let store = listening_store(TwoLevelCacheConfig::new(config(&url, &prefix))).await;
        let listener = pubsub_connections(&admin).await;
        let listener: Vec<&String> = listener.difference(&before).collect();
        assert_eq!(
            listener.len(),
            1,
            "one new pub/sub connection: the listener"
        );
        let shared = redis_store_under(&url, &prefix);
        shared
            .put("k", b"v1".to_vec(), LONG, &[])
            .await
            .expect("put");
        assert_eq!(value(&store, "k").await, Some(b"v1".to_vec()));
        shared
            .put("k", b"v2".to_vec(), LONG, &[])
            .await
            .expect("put");
        assert_eq!(value(&store, "k").await, Some(b"v1".to_vec()));

        let mut connection = admin
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        let () = ::redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(listener[0])
            .query_async(&mut connection)
            .await
            .map(|_: i64| ())
            .expect("CLIENT KILL");

        eventually(
            Duration::from_secs(2),
            "the local copy is dropped",
            || async { value(&store, "k").await == Some(b"v2".to_vec()) },
        )
        .await;
        eventually(
            Duration::from_secs(3),
            "the listener resubscribes",
            || async { store.is_listening() },
        )
        .await;
        assert_eq!(value(&store, "k").await, Some(b"v2".to_vec()));
        shared
            .invalidate(&names(&["k"]), &[])
            .await
            .expect("invalidate");
        eventually(
            Duration::from_secs(2),
            "invalidations arrive again",
            || async { value(&store, "k").await.is_none() },
        )
        .await;
    }

    /// Nothing listens on port 1; connecting is refused at once.
    fn unreachable() -> RedisCacheConfig {
        RedisCacheConfig::new("redis://127.0.0.1:1", fresh_prefix("cache"))
            .expect("a valid Redis URL")
            .with_connection_timeout(Duration::from_millis(300))
            .with_response_timeout(Duration::from_millis(300))
    }

    async fn fails_quickly(store: &dyn CacheStore) {
        let limit = Duration::from_secs(2);
        for attempt in 0..2 {
            let started = Instant::now();
            assert!(store.get("k").await.is_err(), "get, attempt {attempt}");
            assert!(
                store
                    .put("k", b"v".to_vec(), LONG, &names(&["t"]))
                    .await
                    .is_err(),
                "put, attempt {attempt}"
            );
            assert!(
                store
                    .invalidate(&names(&["k"]), &names(&["t"]))
                    .await
                    .is_err(),
                "invalidate, attempt {attempt}"
            );
            assert!(store.ping().await.is_err(), "ping, attempt {attempt}");
            assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_redis_fails_redis_store_calls_quickly() {
        fails_quickly(&RedisCacheStore::new(unreachable()).expect("a Redis store")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_redis_fails_two_level_store_calls_quickly() {
        let store = TwoLevelCacheStore::new(TwoLevelCacheConfig::new(unreachable()))
            .expect("a two-level store");

        fails_quickly(&store).await;

        assert!(!store.is_listening());
    }
}
