//! Idempotency keys over HTTP on the shop, on SQLite and (when configured)
//! PostgreSQL and MySQL, each case on a fresh database. The store's own promises (leases,
//! fencing, retention, purging) are tested beside it, in `infrastructure/tests`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_tests::{TestApp, TestDatabase, spawn_app_on};

strata_tests::on_each_engine!(mysql:
    a_retry_with_the_same_key_replays_the_first_answer_byte_for_byte,
    twenty_concurrent_requests_with_one_key_make_one_wishlist,
    the_same_key_with_another_body_is_409_and_runs_nothing,
    a_request_that_failed_validation_stores_nothing,
    a_route_that_requires_a_key_refuses_a_request_without_one,
    another_customer_with_the_same_key_is_never_answered_with_mine,
    a_key_that_is_not_visible_ascii_is_a_bad_request,
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

async fn create_wishlist(app: &TestApp, access: &str, key: &[u8], name: &str) -> reqwest::Response {
    app.client
        .post(app.api_url("/api/wishlists"))
        .bearer_auth(access)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(key).expect("a header value"),
        )
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("request sent")
}

async fn wishlist_count(app: &TestApp, access: &str) -> u64 {
    let page: Value = app
        .client
        .get(app.api_url("/api/wishlists"))
        .bearer_auth(access)
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

/// Wishlists have nothing unique about them, so only the key stands between
/// twenty requests and twenty wishlists.
async fn twenty_concurrent_requests_with_one_key_make_one_wishlist(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    let customer = app.customer("rush@example.com").await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = app
            .client
            .post(app.api_url("/api/wishlists"))
            .bearer_auth(&customer.access)
            .header("idempotency-key", "rush-1")
            .json(&json!({ "name": "Rush" }));
        requests.spawn(async move { request.send().await });
    }
    let (mut created, mut in_use) = (Vec::new(), 0);
    while let Some(answer) = requests.join_next().await {
        let response = answer.expect("task ran").expect("request sent");
        match response.status() {
            StatusCode::CREATED => created.push(response.bytes().await.expect("body")),
            StatusCode::CONFLICT => {
                let problem: Value = response.json().await.expect("a problem");
                assert_eq!(problem["code"], "idempotency_key_in_use");
                in_use += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!created.is_empty(), "the first request succeeds");
    assert!(
        created.windows(2).all(|pair| pair[0] == pair[1]),
        "every 201 is the first one's answer"
    );
    assert_eq!(created.len() + in_use, 20);
    assert_eq!(
        wishlist_count(&app, &customer.access).await,
        1,
        "exactly one side effect"
    );
    app.stop().await;
}

async fn the_same_key_with_another_body_is_409_and_runs_nothing(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    assert_eq!(
        create(&app, "key-2", &product("SKU-A")).await.status(),
        StatusCode::CREATED
    );
    let other = create(&app, "key-2", &product("SKU-B")).await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
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

async fn another_customer_with_the_same_key_is_never_answered_with_mine(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    let alice = app.customer("alice@example.com").await;
    let bob = app.customer("bob@example.com").await;
    let mine = create_wishlist(&app, &alice.access, b"shared-key", "Alice's").await;
    assert_eq!(mine.status(), StatusCode::CREATED);
    let mine: Value = mine.json().await.expect("a wishlist");
    let theirs = create_wishlist(&app, &bob.access, b"shared-key", "Alice's").await;
    assert_eq!(
        theirs.status(),
        StatusCode::CREATED,
        "bob's own request runs"
    );
    let theirs: Value = theirs.json().await.expect("a wishlist");
    assert_ne!(theirs["id"], mine["id"], "bob never sees alice's result");
    assert_eq!(wishlist_count(&app, &alice.access).await, 1);
    assert_eq!(wishlist_count(&app, &bob.access).await, 1);
    app.stop().await;
}

async fn a_key_that_is_not_visible_ascii_is_a_bad_request(database: TestDatabase) {
    let app = spawn_app_on(database).await;
    let customer = app.customer("keys@example.com").await;
    let too_long = vec![b'k'; 256];
    for key in [&b"with space"[..], b"caf\xc3\xa9", b"\xff\xfe", &too_long] {
        let response = create_wishlist(&app, &customer.access, key, "Gifts").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{key:?}");
        let problem: Value = response.json().await.expect("a problem");
        assert_eq!(problem["code"], "idempotency_key_invalid");
    }
    assert_eq!(wishlist_count(&app, &customer.access).await, 0);
    app.stop().await;
}
