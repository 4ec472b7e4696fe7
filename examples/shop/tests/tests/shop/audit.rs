//! The audit trail over HTTP: who did what, when, and how it ended — read by an
//! administrator, never holding a secret.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_tests::{ADMIN_PASSWORD, TestApp, spawn_app};

async fn trail(app: &TestApp, query: &str) -> Value {
    let response = app
        .client
        .get(app.api_url(&format!("/api/admin/audit{query}")))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("a page")
}

/// The trail's entries for `use_case`, once `count` of them are there (a
/// failure is recorded in the background).
async fn entries_of(app: &TestApp, use_case: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = trail(app, &format!("?use_case={use_case}&per_page=100")).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= count {
            return items;
        }
        assert!(Instant::now() < deadline, "{use_case}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_changes_are_on_record_whether_they_succeed_conflict_or_are_forbidden() {
    let app = spawn_app().await;
    let created: Value = app
        .post_as_admin(
            "/api/products",
            &json!({
                "name": "Tea pot",
                "sku": "TEA-AUDIT",
                "price": { "amount_minor": 1_000, "currency": "EUR" },
                "stock": 1
            }),
        )
        .await
        .json()
        .await
        .expect("a product");
    let id = created["id"].as_str().expect("an id").to_owned();
    let change = |token: String, version: u64| {
        let url = app.api_url(&format!("/api/products/{id}/price"));
        let client = app.client.clone();
        async move {
            client
                .put(url)
                .bearer_auth(token)
                .json(&json!({ "price": { "amount_minor": 900, "currency": "EUR" }, "version": version }))
                .send()
                .await
                .expect("request sent")
                .status()
        }
    };
    let admin = app.admin_token().await.to_owned();
    assert_eq!(change(admin.clone(), 1).await, StatusCode::OK);
    assert_eq!(change(admin, 1).await, StatusCode::CONFLICT);
    let customer = app.customer("eve@example.com").await;
    assert_eq!(change(customer.access, 2).await, StatusCode::FORBIDDEN);

    let entries = entries_of(&app, "catalog.change_product_price", 3).await;
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|entry| entry["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        outcomes,
        ["forbidden", "stale_version", "ok"],
        "newest first"
    );
    let ok = &entries[2];
    assert_eq!(ok["principal_kind"], "user");
    assert_eq!(
        ok["changes"],
        json!([{ "kind": "product", "id": id, "version_before": 1, "version_after": 2 }])
    );
    assert!(ok["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(ok["trace_id"].as_str().is_some_and(|id| id.len() == 32));
    assert_ne!(
        entries[0]["principal"], ok["principal"],
        "the customer, not the admin"
    );
    let by_product = trail(&app, &format!("?aggregate={id}")).await;
    assert_eq!(
        by_product["total"], 2,
        "its creation and its price change: {by_product}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_entry_holds_a_password_or_a_token() {
    let app = spawn_app().await;
    let password = "a password only this test knows";
    let registered = app
        .client
        .post(app.api_url("/api/auth/register"))
        .json(&json!({ "email": "kim@example.com", "password": password }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let tokens = app.sign_in("kim@example.com", password).await;
    let refreshed = app
        .client
        .post(app.api_url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": tokens.refresh }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(refreshed.status(), StatusCode::OK);
    let wrong = app
        .client
        .post(app.api_url("/api/auth/sign-in"))
        .json(&json!({ "email": "kim@example.com", "password": "not the password at all" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    entries_of(&app, "identity.sign_in", 3).await;
    let everything = trail(&app, "?per_page=100").await.to_string();
    for secret in [
        password,
        ADMIN_PASSWORD,
        "not the password at all",
        tokens.access.as_str(),
        tokens.refresh.as_str(),
    ] {
        assert!(
            !everything.contains(secret),
            "the trail holds a secret: {everything}"
        );
    }
    assert!(everything.contains("\"outcome\":\"unauthenticated\""));
    // Registration hashes outside any unit of work and stores the account in
    // one of its own; its entry still names the account it made.
    let registration = &entries_of(&app, "identity.register_customer", 1).await[0];
    assert_eq!(registration["outcome"], "ok");
    let changes = registration["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{registration}");
    assert_eq!(changes[0]["kind"], "user");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_those_allowed_read_the_trail() {
    let app = spawn_app().await;
    let anonymous = app
        .client
        .get(app.api_url("/api/admin/audit"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let customer = app.customer("mo@example.com").await;
    let forbidden = app
        .client
        .get(app.api_url("/api/admin/audit"))
        .bearer_auth(&customer.access)
        .send()
        .await
        .expect("request sent");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}
