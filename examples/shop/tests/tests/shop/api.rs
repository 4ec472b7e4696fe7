//! The API over HTTP, as a client sees it.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use shop_tests::{TestApp, spawn_app, spawn_seeded_app};

const PROBLEM_JSON: &str = "application/problem+json";

fn tea_pot() -> Value {
    json!({
        "name": "Tea pot",
        "sku": "TEA-POT-9",
        "price": { "amount_minor": 2_450, "currency": "EUR" },
        "stock": 7
    })
}

async fn create(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post_as_admin("/api/products", body).await
}

async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some(PROBLEM_JSON));
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["code"].is_string(),
        "a problem has a stable code: {body}"
    );
    body
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| error["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn health_is_ok() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.api_url("/health"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_fresh_shop_lists_its_seeded_products() {
    let app = spawn_seeded_app().await;
    let page: Value = app
        .client
        .get(app.api_url("/api/products"))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(page["total"], 5);
    assert_eq!(page["page"], 1);
    assert_eq!(page["items"][0]["sku"], "TEA-POT-01");
    app.stop().await;
}

#[tokio::test]
async fn a_created_product_can_be_read_back_from_its_location() {
    let app = spawn_app().await;
    let response = create(&app, &tea_pot()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .expect("a Location header")
        .to_owned();
    let created: Value = response.json().await.expect("JSON product");
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["price"],
        json!({ "amount_minor": 2_450, "currency": "EUR" })
    );

    let fetched: Value = app
        .client
        .get(app.api_url(&location))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON product");
    assert_eq!(fetched, created);
    app.stop().await;
}

#[tokio::test]
async fn products_are_listed_in_pages_oldest_first() {
    let app = spawn_app().await;
    for n in 0..3 {
        let mut body = tea_pot();
        body["sku"] = json!(format!("SKU-{n}"));
        assert_eq!(create(&app, &body).await.status(), StatusCode::CREATED);
    }
    let page: Value = app
        .client
        .get(app.api_url("/api/products?page=2&per_page=2"))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["sku"], "SKU-2");
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_product_is_422_naming_every_bad_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let response = create(
        &app,
        &json!({
            "name": "   ",
            "sku": "-x",
            "price": { "amount_minor": -1, "currency": "EURO" },
            "stock": -3
        }),
    )
    .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["code"], "validation_failed");
    let mut named = fields(&body);
    named.sort();
    named.dedup();
    assert_eq!(
        named,
        [
            "name",
            "price.amount_minor",
            "price.currency",
            "sku",
            "stock"
        ]
    );

    let page: Value = app
        .client
        .get(app.api_url("/api/products"))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(page["total"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_value_of_the_wrong_type_or_a_missing_field_is_422_naming_it() {
    let app = spawn_app().await;
    let mut wrong_type = tea_pot();
    wrong_type["stock"] = json!("many");
    let body = problem(
        create(&app, &wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&body), ["stock"]);

    let missing = json!({ "name": "Tea", "sku": "TEA-1", "stock": 1 });
    let body = problem(
        create(&app, &missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&body), ["price"]);
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let admin = app.admin_token().await.to_owned();
    for body in ["{\"name\": ", "not json", "{\"name\": \"x\"} trailing", ""] {
        let response = app
            .client
            .post(app.api_url("/api/products"))
            .bearer_auth(&admin)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        let problem = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["code"], "malformed_json", "body {body:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_400() {
    let app = spawn_app().await;
    let payload = tea_pot().to_string();
    let admin = app.admin_token().await.to_owned();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app
            .client
            .post(app.api_url("/api/products"))
            .bearer_auth(&admin)
            .body(payload.clone());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let response = request.send().await.expect("request sent");
        let problem = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["code"], "unsupported_content_type");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let mut body = tea_pot();
    body["name"] = json!("x".repeat(200_000));
    let response = create(&app, &body).await;
    let problem = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(problem["code"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_or_malformed_id_is_404() {
    let app = spawn_app().await;
    for path in [
        "/api/products/0191a6a4-0000-7000-8000-000000000000",
        "/api/products/not-an-id",
    ] {
        let response = app
            .client
            .get(app.api_url(path))
            .send()
            .await
            .expect("request sent");
        let problem = problem(response, StatusCode::NOT_FOUND).await;
        assert_eq!(problem["code"], "not_found");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.api_url("/api/nothing-here"))
        .send()
        .await
        .expect("request sent");
    problem(response, StatusCode::NOT_FOUND).await;
    let response = app
        .client
        .delete(app.api_url("/api/products"))
        .send()
        .await
        .expect("request sent");
    problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    app.stop().await;
}

#[tokio::test]
async fn a_second_product_with_the_same_sku_is_409() {
    let app = spawn_app().await;
    assert_eq!(create(&app, &tea_pot()).await.status(), StatusCode::CREATED);
    let mut again = tea_pot();
    again["name"] = json!("Another tea pot");
    let problem = problem(create(&app, &again).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["code"], "sku_taken");
    assert_eq!(fields(&problem), ["sku"], "the problem names the field");
    assert_eq!(problem["errors"][0]["code"], "taken");
    app.stop().await;
}

#[tokio::test]
async fn a_price_change_from_a_stale_version_is_409_and_loses_nothing() {
    let app = spawn_app().await;
    let created: Value = create(&app, &tea_pot()).await.json().await.expect("JSON");
    let url = app.api_url(&format!(
        "/api/products/{}/price",
        created["id"].as_str().unwrap_or_default()
    ));
    let token = app.admin_token().await.to_owned();
    let change = |amount: i64, version: u64| {
        app.client
            .put(&url)
            .bearer_auth(&token)
            .json(&json!({ "price": { "amount_minor": amount, "currency": "EUR" }, "version": version }))
            .send()
    };

    let first = change(1_999, 1).await.expect("request sent");
    assert_eq!(first.status(), StatusCode::OK);
    let changed: Value = first.json().await.expect("JSON");
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["price"]["amount_minor"], 1_999);

    let stale = change(2_999, 1).await.expect("request sent");
    let problem = problem(stale, StatusCode::CONFLICT).await;
    assert_eq!(problem["code"], "stale_version");

    let current: Value = app
        .client
        .get(app.api_url(&format!(
            "/api/products/{}",
            created["id"].as_str().unwrap_or_default()
        )))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(current["price"]["amount_minor"], 1_999);
    assert_eq!(current["version"], 2);
    app.stop().await;
}

#[tokio::test]
async fn a_price_in_another_currency_is_refused_by_the_domain() {
    let app = spawn_app().await;
    let created: Value = create(&app, &tea_pot()).await.json().await.expect("JSON");
    let response = app
        .client
        .put(app.api_url(&format!(
            "/api/products/{}/price",
            created["id"].as_str().unwrap_or_default()
        )))
        .bearer_auth(app.admin_token().await)
        .json(&json!({ "price": { "amount_minor": 100, "currency": "USD" }, "version": 1 }))
        .send()
        .await
        .expect("request sent");
    let problem = problem(response, StatusCode::CONFLICT).await;
    assert_eq!(problem["code"], "currency_mismatch");
    app.stop().await;
}

#[tokio::test]
async fn bad_paging_parameters_are_client_errors() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.api_url("/api/products?per_page=1000"))
        .send()
        .await
        .expect("request sent");
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&body), ["per_page"]);

    let response = app
        .client
        .get(app.api_url("/api/products?page=-1"))
        .send()
        .await
        .expect("request sent");
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["code"], "invalid_query");
    app.stop().await;
}

#[tokio::test]
async fn no_hostile_input_makes_the_server_answer_500() {
    let app = spawn_app().await;
    let created: Value = create(&app, &tea_pot()).await.json().await.expect("JSON");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let bodies = [
        json!(null),
        json!([]),
        json!(42),
        json!({}),
        json!({ "name": null, "sku": null, "price": null, "stock": null }),
        json!({ "name": "x", "sku": "ABC", "price": { "amount_minor": 1e300, "currency": "EUR" }, "stock": 1 }),
        json!({ "name": "x", "sku": "ABC", "price": { "amount_minor": i64::MAX, "currency": "EUR" }, "stock": u64::MAX }),
        json!({ "name": "\u{0}", "sku": "\u{202e}ABC", "price": { "amount_minor": 1, "currency": "€€€" }, "stock": 1 }),
        json!({ "price": { "amount_minor": -5, "currency": "EUR" }, "version": -1 }),
        json!({ "price": { "amount_minor": 5, "currency": "EUR" }, "version": u64::MAX }),
    ];
    let targets = [
        ("POST", app.api_url("/api/products")),
        ("PUT", app.api_url(&format!("/api/products/{id}/price"))),
        ("PUT", app.api_url("/api/products/%00/price")),
    ];
    for (method, url) in &targets {
        for body in &bodies {
            let request = match *method {
                "POST" => app.client.post(url),
                _ => app.client.put(url),
            }
            .bearer_auth(app.admin_token().await);
            let response = request.json(body).send().await.expect("request sent");
            let status = response.status();
            assert!(
                status.is_client_error() || status.is_success(),
                "{method} {url} with {body} answered {status}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_changed_product_is_never_served_stale_from_the_cache() {
    let app = spawn_app().await;
    let created: Value = create(&app, &tea_pot()).await.json().await.expect("JSON");
    let url = app.api_url(&format!(
        "/api/products/{}",
        created["id"].as_str().unwrap_or_default()
    ));
    let read = || async {
        let response = app.client.get(&url).send().await.expect("request sent");
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body: Value = response.json().await.expect("JSON product");
        (body, etag)
    };
    let (before, etag) = read().await;
    let etag = etag.expect("cacheable reads carry an ETag");
    let not_modified = app
        .client
        .get(&url)
        .header(reqwest::header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("request sent");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);

    let changed = app
        .client
        .put(format!("{url}/price"))
        .bearer_auth(app.admin_token().await)
        .json(&json!({ "price": { "amount_minor": 999, "currency": "EUR" }, "version": before["version"] }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(changed.status(), StatusCode::OK);

    let (after, new_etag) = read().await;
    assert_eq!(
        after["price"]["amount_minor"], 999,
        "the cached copy was dropped on commit"
    );
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()));
    let listed: Value = app
        .client
        .get(app.api_url("/api/products"))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(
        listed["items"][0]["price"]["amount_minor"], 999,
        "listings too"
    );
    app.stop().await;
}

strata_tests::on_each_engine!(mysql: two_concurrent_price_changes_of_one_product_give_one_200_and_one_409);

async fn two_concurrent_price_changes_of_one_product_give_one_200_and_one_409(
    database: shop_tests::TestDatabase,
) {
    let app = shop_tests::spawn_app_on(database).await;
    let created: Value = app
        .post_as_admin(
            "/api/products",
            &json!({
                "name": "Tea pot",
                "sku": "TEA-1",
                "price": { "amount_minor": 1_000, "currency": "EUR" },
                "stock": 1
            }),
        )
        .await
        .json()
        .await
        .expect("JSON");
    let url = app.api_url(&format!(
        "/api/products/{}/price",
        created["id"].as_str().unwrap_or_default()
    ));
    let token = app.admin_token().await.to_owned();
    let change = |amount: i64| {
        app.client
            .put(&url)
            .bearer_auth(&token)
            .json(&json!({ "price": { "amount_minor": amount, "currency": "EUR" }, "version": 1 }))
            .send()
    };
    let (left, right) = tokio::join!(change(900), change(800));
    let mut statuses = [
        left.expect("request sent").status(),
        right.expect("request sent").status(),
    ];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    app.stop().await;
}
