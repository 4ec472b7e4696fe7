//! Idempotency keys over HTTP and at the store, on SQLite and (when configured)
//! PostgreSQL, each case on a fresh database.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_tests::{Engine, TestApp, TestDatabase, spawn_app_on};
use strata_domain::ports::{Claim, IdempotencyStore};
use strata_infrastructure::SeaOrmIdempotencyStore;

macro_rules! on_each_engine {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case(TestDatabase::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(database) = TestDatabase::on(Engine::Postgres).await {
                    super::$case(database).await;
                }
            }
        }
    )*};
}

on_each_engine!(
    a_retry_with_the_same_key_replays_the_first_answer_byte_for_byte,
    fifty_concurrent_requests_with_one_key_make_one_product,
    the_same_key_with_another_body_is_422_and_runs_nothing,
    a_request_that_failed_validation_stores_nothing,
    a_route_that_requires_a_key_refuses_a_request_without_one,
    a_claim_whose_holder_died_is_taken_over_after_its_lease,
    a_key_older_than_its_retention_is_processed_as_new,
);

fn product(sku: &str) -> Value {
    json!({
        "name": "Tea pot",
        "sku": sku,
        "price": { "amount_minor": 2_450, "currency": "EUR" },
        "stock": 7
    })
}

async fn create(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    let token = app.admin_token().await.to_owned();
    app.client
        .post(app.api_url("/api/products"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn product_count(app: &TestApp) -> u64 {
    let page: Value = app
        .client
        .get(app.api_url("/api/products?per_page=100"))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON page");
    page["total"].as_u64().expect("a total")
}

async fn a_retry_with_the_same_key_replays_the_first_answer_byte_for_byte(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    let first = create(&app, "key-1", &product("SKU-1")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers().get("location").cloned();
    let first_body = first.bytes().await.expect("body");

    let retry = create(&app, "key-1", &product("SKU-1")).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers().get("location").cloned(), first_location);
    assert_eq!(retry.bytes().await.expect("body"), first_body);
    assert_eq!(product_count(&app).await, 1);
    app.stop().await;
}

async fn fifty_concurrent_requests_with_one_key_make_one_product(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    let body = product("SKU-RUSH");
    let token = app.admin_token().await.to_owned();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let request = app
            .client
            .post(app.api_url("/api/products"))
            .bearer_auth(&token)
            .header("idempotency-key", "rush-1")
            .json(&body);
        requests.spawn(async move { request.send().await });
    }
    let mut created = 0;
    let mut in_use = 0;
    while let Some(answer) = requests.join_next().await {
        match answer.expect("task ran").expect("request sent").status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => in_use += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created >= 1, "the first request or its replays succeed");
    assert_eq!(created + in_use, 50);
    assert_eq!(product_count(&app).await, 1, "exactly one side effect");
    app.stop().await;
}

async fn the_same_key_with_another_body_is_422_and_runs_nothing(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    assert_eq!(
        create(&app, "key-2", &product("SKU-A")).await.status(),
        StatusCode::CREATED
    );
    let other = create(&app, "key-2", &product("SKU-B")).await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = other.json().await.expect("a problem");
    assert_eq!(problem["code"], "idempotency_key_reused");
    assert_eq!(product_count(&app).await, 1);
    app.stop().await;
}

async fn a_request_that_failed_validation_stores_nothing(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    let invalid = create(&app, "key-3", &json!({ "name": "", "sku": "x", "price": { "amount_minor": 1, "currency": "EUR" }, "stock": 1 })).await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fixed = create(&app, "key-3", &product("SKU-FIXED")).await;
    assert_eq!(fixed.status(), StatusCode::CREATED, "the retry runs");
    assert_eq!(product_count(&app).await, 1);
    app.stop().await;
}

async fn a_route_that_requires_a_key_refuses_a_request_without_one(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    let customer = app.customer("kim@example.com").await;
    let without = app
        .client
        .post(app.api_url("/api/wishlists"))
        .bearer_auth(&customer.access)
        .json(&json!({ "name": "Gifts" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(without.status(), StatusCode::BAD_REQUEST);
    let problem: Value = without.json().await.expect("a problem");
    assert_eq!(problem["code"], "idempotency_key_missing");
    app.stop().await;
}

async fn a_claim_whose_holder_died_is_taken_over_after_its_lease(database: TestDatabase) {
    let store = SeaOrmIdempotencyStore::new(database.migrated().await);
    let lease = Duration::from_millis(200);
    assert_eq!(
        store.claim("k", "fp", lease).await.expect("claim"),
        Claim::Acquired
    );
    // The holder never completes (it died): within the lease a retry is told to wait.
    assert_eq!(
        store.claim("k", "fp", lease).await.expect("claim"),
        Claim::InProgress
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.claim("k", "fp", lease).await.expect("claim"),
        Claim::Acquired
    );
    store.complete("k", b"done").await.expect("completed");
    assert_eq!(
        store.claim("k", "fp", lease).await.expect("claim"),
        Claim::Completed(b"done".to_vec())
    );
    assert_eq!(
        store.claim("k", "other", lease).await.expect("claim"),
        Claim::Mismatch
    );
}

async fn a_key_older_than_its_retention_is_processed_as_new(database: TestDatabase) {
    let store = SeaOrmIdempotencyStore::new(database.migrated().await)
        .with_retention(Duration::from_millis(100));
    let lease = Duration::from_secs(60);
    assert_eq!(
        store.claim("k", "fp", lease).await.expect("claim"),
        Claim::Acquired
    );
    store.complete("k", b"old").await.expect("completed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store
            .claim("k", "another request", lease)
            .await
            .expect("claim"),
        Claim::Acquired,
        "an expired key is forgotten, whatever it held"
    );
}
