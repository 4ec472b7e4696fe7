//! A scaled-out shop: two instances, one database, one Redis. The cache's own
//! promises on every store are tested beside it, in `infrastructure/tests`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_tests::{TestApp, TestDatabase, spawn_two_instances_sharing_redis};
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
