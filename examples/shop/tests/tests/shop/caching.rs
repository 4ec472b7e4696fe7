//! A scaled-out shop: two instances, one database, one Redis; and a shop with
//! its query cache switched off. The cache's own promises on every store are
//! tested beside it, in `infrastructure/tests`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_tests::{TestApp, TestDatabase, spawn_two_instances, spawn_two_instances_sharing_redis};
use strata_tests::servers::redis_url;

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
#[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
async fn a_change_through_one_instance_is_not_served_stale_by_the_other() {
    let (first, second) =
        spawn_two_instances_sharing_redis(TestDatabase::sqlite(), &redis_url()).await;
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

async fn create_product(app: &TestApp, sku: &str, amount_minor: i64) -> String {
    let created: Value = app
        .post_as_admin(
            "/api/products",
            &json!({
                "name": "Tea pot",
                "sku": sku,
                "price": { "amount_minor": amount_minor, "currency": "EUR" },
                "stock": 3
            }),
        )
        .await
        .json()
        .await
        .expect("JSON product");
    created["id"].as_str().expect("an id").to_owned()
}

async fn change_price(app: &TestApp, id: &str, amount_minor: i64) {
    let changed = app
        .client
        .put(app.api_url(&format!("/api/products/{id}/price")))
        .bearer_auth(app.admin_token().await)
        .json(
            &json!({ "price": { "amount_minor": amount_minor, "currency": "EUR" }, "version": 1 }),
        )
        .send()
        .await
        .expect("request sent");
    assert_eq!(changed.status(), StatusCode::OK);
}

/// Without Redis each instance caches in its own memory, so the one that did
/// not make a change serves its cached copy until it expires — unless the
/// cache is switched off (`[cache] enabled = false`), when every read asks
/// the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_switched_off_every_read_asks_the_database() {
    let (first, second) = spawn_two_instances(TestDatabase::sqlite(), |settings| {
        settings.service.cache.enabled = false;
    })
    .await;
    let id = create_product(&first, "TEA-UNCACHED", 1_000).await;
    assert_eq!(price_seen_by(&second, &id).await, 1_000);
    change_price(&first, &id, 750).await;
    assert_eq!(price_seen_by(&second, &id).await, 750);
    first.stop().await;
    second.stop().await;
}

/// The same two instances with the cache on, the default: the second serves
/// what it cached. This is what makes the test above a test of the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_on_and_no_redis_each_instance_serves_its_own_copy() {
    let (first, second) = spawn_two_instances(TestDatabase::sqlite(), |_| {}).await;
    let id = create_product(&first, "TEA-CACHED", 1_000).await;
    assert_eq!(price_seen_by(&second, &id).await, 1_000);
    change_price(&first, &id, 750).await;
    assert_eq!(price_seen_by(&second, &id).await, 1_000);
    first.stop().await;
    second.stop().await;
}

/// A Redis user of the test's own, whose rights the test takes away and gives
/// back: the shop's Redis refusing one command is a fault on the real server.
struct RedisUser {
    admin: redis::aio::MultiplexedConnection,
    name: String,
    url: String,
}

impl RedisUser {
    async fn create() -> Self {
        let admin_url = redis_url();
        let client = redis::Client::open(admin_url.as_str()).expect("a Redis URL");
        let mut admin = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis answers");
        let name = format!("shop-test-{}", uuid::Uuid::now_v7().simple());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&name)
            .arg("on")
            .arg(format!(">{password}"))
            .arg("~*")
            .arg("&*")
            .arg("+@all")
            .query_async(&mut admin)
            .await
            .expect("the user is created");
        let address = admin_url
            .trim_start_matches("redis://")
            .rsplit('@')
            .next()
            .expect("a host");
        let url = format!("redis://{name}:{password}@{address}");
        Self { admin, name, url }
    }

    /// Sets the user's rights to `rule` (`-unlink`, `+unlink`).
    async fn set(&mut self, rule: &str) {
        let () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&self.name)
            .arg(rule)
            .query_async(&mut self.admin)
            .await
            .expect("the user's rights change");
    }

    async fn delete(mut self) {
        let _: i64 = redis::cmd("ACL")
            .arg("DELUSER")
            .arg(&self.name)
            .query_async(&mut self.admin)
            .await
            .expect("the user is deleted");
    }
}

async fn price_seen_within(app: &TestApp, id: &str, expected: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let seen = price_seen_by(app, id).await;
        if seen == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still serves {seen} after {within:?}, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Redis refuses the invalidation after a price change has committed (as it
/// does when it is unreachable, or when the instance dies between the two):
/// the change still answers 200, the old price is cached in Redis, and once
/// Redis takes commands again the invalidation the commit still owes is
/// applied — the old price is not served until the entry's TTL runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
async fn an_invalidation_redis_refused_is_applied_once_it_takes_commands_again() {
    let mut user = RedisUser::create().await;
    let prefix = format!("shop-test-{}", uuid::Uuid::now_v7().simple());
    let (first, second) = spawn_two_instances(TestDatabase::sqlite(), |settings| {
        settings.service.redis_url = Some(user.url.clone().into());
        settings.service.cache_key_prefix.clone_from(&prefix);
        settings.service.cache.catch_up_interval = Duration::from_millis(200);
        settings.service.cache.catch_up_after = Duration::from_millis(200);
    })
    .await;
    let id = create_product(&first, "TEA-OWED", 1_000).await;
    assert_eq!(price_seen_by(&first, &id).await, 1_000);
    assert_eq!(price_seen_by(&second, &id).await, 1_000);

    user.set("-unlink").await;
    change_price(&first, &id, 750).await;
    // The fault took: the old price is still in Redis, for both instances.
    assert_eq!(price_seen_by(&first, &id).await, 1_000);
    user.set("+unlink").await;

    price_seen_within(&first, &id, 750, Duration::from_secs(5)).await;
    price_seen_within(&second, &id, 750, Duration::from_secs(5)).await;
    let mut caught_up = 0;
    for app in [&first, &second] {
        let text = app
            .client
            .get(app.api_url("/metrics"))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("text");
        caught_up += text
            .lines()
            .find_map(|line| line.strip_prefix("cache_invalidations_caught_up_total "))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .expect("the catch-up's counter");
    }
    assert!(caught_up >= 1, "a catch-up applied the owed invalidation");
    first.stop().await;
    second.stop().await;
    user.delete().await;
}

/// An instance owes an invalidation Redis refused; the next instance to
/// start on the database applies it before it serves, however long the
/// periodic catch-up waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
async fn an_invalidation_owed_when_an_instance_starts_is_applied_before_it_serves() {
    let mut user = RedisUser::create().await;
    let prefix = format!("shop-test-{}", uuid::Uuid::now_v7().simple());
    let url = user.url.clone();
    let settings = |settings: &mut strata_runtime::Settings<shop_app_api::Shop>| {
        settings.service.redis_url = Some(url.clone().into());
        settings.service.cache_key_prefix.clone_from(&prefix);
        settings.service.cache.catch_up_interval = Duration::from_secs(3_600);
        settings.service.cache.catch_up_after = Duration::from_secs(3_600);
    };
    let first = shop_tests::spawn_app_with(settings).await;
    let id = create_product(&first, "TEA-LEFT-OWED", 1_000).await;
    assert_eq!(price_seen_by(&first, &id).await, 1_000);
    user.set("-unlink").await;
    change_price(&first, &id, 750).await;
    user.set("+unlink").await;
    let next = first.another_instance(settings).await;
    first.stop().await;

    assert_eq!(price_seen_by(&next, &id).await, 750);
    next.stop().await;
    user.delete().await;
}
