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
