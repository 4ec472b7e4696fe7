//! Who may do what, over HTTP: accounts, sessions, permissions and a resource only
//! its owner sees.

use reqwest::StatusCode;
use reqwest::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use shop_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, client_from, spawn_app};

fn tea_pot() -> Value {
    json!({
        "name": "Tea pot",
        "sku": "TEA-AUTH-1",
        "price": { "amount_minor": 2_450, "currency": "EUR" },
        "stock": 7
    })
}

async fn status_and_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.api_url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn catalog_writes_need_the_admin_permission() {
    let app = spawn_app().await;

    let anonymous = app
        .client
        .post(app.api_url("/api/products"))
        .json(&tea_pot())
        .send()
        .await
        .expect("request sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );

    let customer = app.customer("cy@example.com").await;
    let forbidden = app
        .client
        .post(app.api_url("/api/products"))
        .bearer_auth(&customer.access)
        .json(&tea_pot())
        .send()
        .await
        .expect("request sent");
    let (status, body) = status_and_body(forbidden).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");

    let created = app.post_as_admin("/api/products", &tea_pot()).await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // Reading the catalog needs no one.
    let listed = app
        .client
        .get(app.api_url("/api/products"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(listed.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_token_that_does_not_hold_is_401_whatever_the_route() {
    let app = spawn_app().await;
    let admin = app.admin_token().await.to_owned();
    let mut tampered = admin.clone();
    tampered.pop();
    tampered.push(if admin.ends_with('A') { 'B' } else { 'A' });
    for header in [
        "Bearer not-a-token".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {tampered}"),
        "Basic YWRtaW46YWRtaW4=".to_owned(),
    ] {
        for path in ["/api/products", "/health"] {
            let response = app
                .client
                .get(app.api_url(path))
                .header(reqwest::header::AUTHORIZATION, &header)
                .send()
                .await
                .expect("request sent");
            let (status, body) = status_and_body(response).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{header} on {path}");
            assert_eq!(body["code"], "invalid_token");
            assert!(
                !body.to_string().contains(&tampered[..20]),
                "the token is not echoed"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn registration_checks_its_input_and_never_echoes_the_password() {
    let app = spawn_app().await;
    let short = "short-pw";
    let response = app
        .client
        .post(app.api_url("/api/auth/register"))
        .json(&json!({ "email": "not an email", "password": short }))
        .send()
        .await
        .expect("request sent");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["email", "password"]);
    assert!(!body.to_string().contains(short));

    app.customer("dee@example.com").await;
    let again = app
        .client
        .post(app.api_url("/api/auth/register"))
        .json(&json!({ "email": "DEE@example.com", "password": "another long password" }))
        .send()
        .await
        .expect("request sent");
    let (status, body) = status_and_body(again).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "email_taken");
    assert_eq!(body["errors"][0]["field"], "email", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_account_get_the_same_401() {
    let app = spawn_app().await;
    let mut answers = Vec::new();
    for (email, password) in [
        (ADMIN_EMAIL, "not the admin password"),
        ("nobody@example.com", "not the admin password"),
    ] {
        let response = app
            .client
            .post(app.api_url("/api/auth/sign-in"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request sent");
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!body.to_string().contains(password));
        answers.push(body);
    }
    assert_eq!(answers[0], answers[1]);
    app.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_session() {
    let app = spawn_app().await;
    let first = app.customer("eve@example.com").await;

    let rotated = refresh(&app, &first.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.expect("JSON tokens");
    let second = rotated["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_owned();
    assert_ne!(second, first.refresh);
    let fresh_access = rotated["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let mine = app
        .client
        .get(app.api_url("/api/wishlists"))
        .bearer_auth(&fresh_access)
        .send()
        .await
        .expect("request sent");
    assert_eq!(mine.status(), StatusCode::OK, "the new access token works");

    // The first token again: someone else has a copy.
    let reused = refresh(&app, &first.refresh).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    // ...so the rightful holder's newer token stops working too.
    let revoked = refresh(&app, &second).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);

    let unknown = refresh(&app, "no-such-token").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn_app().await;
    let session = app.customer("fay@example.com").await;
    let out = app
        .client
        .post(app.api_url("/api/auth/sign-out"))
        .json(&json!({ "refresh_token": session.refresh }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        refresh(&app, &session.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_failing_to_sign_in_to_an_account_is_throttled() {
    let app = spawn_app().await;
    let attempt = |password: &'static str| {
        app.client
            .post(app.api_url("/api/auth/sign-in"))
            .json(&json!({ "email": "gus@example.com", "password": password }))
            .send()
    };
    app.customer("gus@example.com").await;
    // Successful sign-ins (registration's own) count for nothing.
    for _ in 0..5 {
        let response = attempt("wrong password!").await.expect("request sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = attempt("password of gus@example.com")
        .await
        .expect("request sent");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = throttled
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry_after >= 1);
    app.stop().await;
}

#[tokio::test]
async fn strangers_guessing_the_admins_password_do_not_lock_the_admin_out() {
    let app = spawn_app().await;
    let url = app.api_url("/api/auth/sign-in");
    let mut refused = 0;
    for stranger in 0..50 {
        let client = client_from(&format!("127.0.0.{}", 2 + stranger % 5));
        let response = client
            .post(&url)
            .json(&json!({ "email": ADMIN_EMAIL, "password": format!("guess number {stranger}") }))
            .send()
            .await
            .expect("request sent");
        assert!(
            matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{}",
            response.status()
        );
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused > 0, "each guessing client is stopped after a few");

    let admin = client_from("127.0.0.1")
        .post(&url)
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(
        admin.status(),
        StatusCode::OK,
        "the admin signs in from its own address"
    );
    app.stop().await;
}

#[tokio::test]
async fn guesses_sent_at_once_are_counted_before_any_password_is_checked() {
    let app = spawn_app().await;
    let url = app.api_url("/api/auth/sign-in");
    let client = client_from("127.0.0.30");
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..20 {
        let guess = client
            .post(&url)
            .json(&json!({ "email": ADMIN_EMAIL, "password": format!("parallel guess {n}") }))
            .send();
        guesses.spawn(guess);
    }
    let mut checked = 0;
    while let Some(response) = guesses.join_next().await {
        let status = response.expect("joined").expect("request sent").status();
        match status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        checked <= 5,
        "{checked} passwords were checked; the limit is 5 failures a minute per account and client"
    );

    let admin = client_from("127.0.0.1")
        .post(&url)
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(admin.status(), StatusCode::OK);
    // Successes are not counted: the admin signs in again and again.
    for _ in 0..6 {
        let again = client_from("127.0.0.1")
            .post(&url)
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(again.status(), StatusCode::OK);
    }
    app.stop().await;
}

#[tokio::test]
async fn registration_is_throttled_per_client() {
    let app = spawn_app().await;
    let client = client_from("127.0.0.20");
    let mut answers = Vec::new();
    for n in 0..31 {
        let response = client
            .post(app.api_url("/api/auth/register"))
            .json(&json!({ "email": format!("flood{n}@example.com"), "password": "a long enough password" }))
            .send()
            .await
            .expect("request sent");
        answers.push(response.status());
    }
    assert!(
        answers[..30]
            .iter()
            .all(|status| *status == StatusCode::CREATED),
        "{answers:?}"
    );
    assert_eq!(answers[30], StatusCode::TOO_MANY_REQUESTS);
    // Another client registers as usual.
    let other = client_from("127.0.0.21")
        .post(app.api_url("/api/auth/register"))
        .json(&json!({ "email": "calm@example.com", "password": "a long enough password" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(other.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn a_wishlist_is_shown_only_to_its_owner_and_staff() {
    let app = spawn_app().await;
    let product: Value = app
        .post_as_admin("/api/products", &tea_pot())
        .await
        .json()
        .await
        .expect("JSON product");
    let product_id = product["id"].as_str().expect("an id").to_owned();
    let owner = app.customer("hal@example.com").await;
    let other = app.customer("ivy@example.com").await;

    let created = app
        .client
        .post(app.api_url("/api/wishlists"))
        .bearer_auth(&owner.access)
        .header("idempotency-key", "birthday-list-1")
        .json(&json!({ "name": "Birthday" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    let wishlist: Value = created.json().await.expect("JSON wishlist");
    let url = app.api_url(&format!(
        "/api/wishlists/{}",
        wishlist["id"].as_str().expect("an id")
    ));

    let added = app
        .client
        .post(format!("{url}/products"))
        .bearer_auth(&owner.access)
        .json(&json!({ "product_id": product_id }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(added.status(), StatusCode::OK);

    let get = |token: String| app.client.get(&url).bearer_auth(token).send();
    let (status, mine) = status_and_body(get(owner.access.clone()).await.expect("sent")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["products"], json!([product_id]));

    let (status, theirs) = status_and_body(get(other.access.clone()).await.expect("sent")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another customer's wishlist is not there for them"
    );
    assert!(
        !theirs.to_string().contains("Birthday"),
        "and none of its data leaks"
    );
    let missing = app
        .client
        .get(app.api_url("/api/wishlists/0191a6a4-0000-7000-8000-000000000000"))
        .bearer_auth(&other.access)
        .send()
        .await
        .expect("request sent");
    let (_, missing) = status_and_body(missing).await;
    assert_eq!(
        theirs["code"], missing["code"],
        "the same answer as for no wishlist at all"
    );

    let meddling = app
        .client
        .post(format!("{url}/products"))
        .bearer_auth(&other.access)
        .json(&json!({ "product_id": product_id }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(meddling.status(), StatusCode::NOT_FOUND);

    let admin = app.admin_token().await.to_owned();
    let (status, _) = status_and_body(get(admin).await.expect("sent")).await;
    assert_eq!(status, StatusCode::OK, "staff may read any wishlist");

    let theirs_listed: Value = app
        .client
        .get(app.api_url("/api/wishlists"))
        .bearer_auth(&other.access)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(theirs_listed["total"], 0);
    app.stop().await;
}

#[tokio::test]
async fn callers_are_refused_before_anything_they_sent_is_read() {
    use strata_tests::service::{Caller, assert_callers_are_asked_first};

    let app = spawn_app().await;
    let document: Value = app
        .client
        .get(app.api_url("/openapi.json"))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("the document is JSON");
    let api = app.api_client();

    assert_callers_are_asked_first(api, &document, Caller::Anonymous).await;
    let customer = app.customer("probe@example.com").await;
    assert_callers_are_asked_first(
        api,
        &document,
        Caller::Holding {
            token: &customer.access,
            permissions: &[],
        },
    )
    .await;
    let admin = app.admin_token().await.to_owned();
    assert_callers_are_asked_first(
        api,
        &document,
        Caller::Holding {
            token: &admin,
            permissions: &[
                "catalog.write",
                "wishlists.read_any",
                "audit.read",
                "outbox.operate",
                "reports.read",
                "orders.read_any",
                "tcc.operate",
            ],
        },
    )
    .await;

    // The one request three ways: who is asked first, then what.
    let malformed = |token: Option<&str>| {
        let request = app
            .client
            .post(app.api_url("/api/products"))
            .header("content-type", "application/json")
            .body(r#"{"name": 7, "price": "#);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    let anonymous = malformed(None).send().await.expect("request sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let forbidden = malformed(Some(&customer.access))
        .send()
        .await
        .expect("request sent");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let wrong_field = app
        .client
        .post(app.api_url("/api/products"))
        .bearer_auth(&admin)
        .json(&json!({"name": 7, "sku": "S", "price": {"amount_minor": 1, "currency": "EUR"}, "stock": 1}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(wrong_field.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let broken = malformed(Some(&admin)).send().await.expect("request sent");
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn sign_ups_do_not_stall_other_writes() {
    let app = spawn_app().await;
    let product: Value = app
        .post_as_admin("/api/products", &tea_pot())
        .await
        .json()
        .await
        .expect("JSON product");
    let id = product["id"].as_str().expect("an id").to_owned();
    let admin = app.admin_token().await.to_owned();

    let registrations: Vec<_> = (0..30)
        .map(|n| {
            let url = app.api_url("/api/auth/register");
            tokio::spawn(async move {
                client_from(&format!("127.0.1.{}", n + 1))
                    .post(url)
                    .json(&json!({ "email": format!("rush{n}@example.com"), "password": "a long enough password" }))
                    .send()
                    .await
                    .expect("request sent")
                    .status()
            })
        })
        .collect();
    let mut slowest = std::time::Duration::ZERO;
    let mut version = product["version"].as_u64().expect("a version");
    for step in 1..=10 {
        let started = std::time::Instant::now();
        let response = app
            .client
            .put(app.api_url(&format!("/api/products/{id}/price")))
            .bearer_auth(&admin)
            .json(&json!({ "price": { "amount_minor": 2_450 + step, "currency": "EUR" }, "version": version }))
            .send()
            .await
            .expect("request sent");
        slowest = slowest.max(started.elapsed());
        assert_eq!(response.status(), StatusCode::OK, "price change {step}");
        version = response.json::<Value>().await.expect("JSON")["version"]
            .as_u64()
            .expect("a version");
    }
    for registration in registrations {
        let status = registration.await.expect("ran");
        assert_eq!(status, StatusCode::CREATED);
    }
    eprintln!("slowest price change during 30 sign-ups: {slowest:?}");
    assert!(
        slowest < std::time::Duration::from_secs(2),
        "every price change is answered within 2 s while clients sign up; the slowest took {slowest:?}"
    );
    app.stop().await;
}
