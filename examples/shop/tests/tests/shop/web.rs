//! The web page, served by the BFF from data it fetches from the API over HTTP.

use reqwest::StatusCode;
use serde_json::json;
use shop_tests::spawn_seeded_app;

#[tokio::test]
async fn the_page_lists_the_products_the_api_serves() {
    let app = spawn_seeded_app().await;
    let created = app
        .post_as_admin(
            "/api/products",
            &json!({
            "name": "Matcha <ceremonial> & co",
            "sku": "MATCHA-30",
            "price": { "amount_minor": 2_800, "currency": "EUR" },
            "stock": 9
            }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let response = app.client.get(&app.web).send().await.expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("an HTML page");
    assert!(html.contains("Cast-iron tea pot"), "{html}");
    assert!(html.contains("TOWEL-LIN"));
    assert!(html.contains("49.00 EUR"));
    assert!(html.contains("Matcha &lt;ceremonial&gt; &amp; co"));
    assert!(html.contains("6 products · page 1 of 1"));
    app.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_a_form_without_its_csrf_token_is_refused() {
    let app = spawn_seeded_app().await;
    let response = app.client.get(&app.web).send().await.expect("request sent");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let session = cookie.split(';').next().expect("name=value").to_owned();
    let html = response.text().await.expect("an HTML page");
    let token = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field in the page")
        .to_owned();
    let product = html
        .split("name=\"product_id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a product in the page")
        .to_owned();
    let add = |body: String| {
        app.client
            .post(format!("{}/cart/items", app.web))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };

    let refused = add(format!("product_id={product}&quantity=1"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // The token with its first character changed: a guess one character off.
    let first = if token.starts_with('0') { '1' } else { '0' };
    let forged = add(format!(
        "product_id={product}&quantity=1&_csrf={first}{}",
        &token[1..]
    ))
    .send()
    .await
    .expect("request sent");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let added = add(format!("product_id={product}&quantity=2&_csrf={token}"))
        .send()
        .await
        .expect("request sent");
    // Sent on to the cart.
    assert_eq!(added.status(), StatusCode::OK);
    assert_eq!(added.url().path(), "/cart");
    let cart = app
        .client
        .get(format!("{}/cart", app.web))
        .header("cookie", &session)
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("an HTML page");
    assert!(cart.contains("<span id=\"cart-count\">2</span>"), "{cart}");
    app.stop().await;
}

#[tokio::test]
async fn a_price_change_reaches_the_product_page_before_its_cached_copy_would_expire() {
    let app = spawn_seeded_app().await;
    let created = app
        .post_as_admin(
            "/api/products",
            &json!({
                "name": "Genmaicha",
                "sku": "GENMAI-1",
                "price": { "amount_minor": 900, "currency": "EUR" },
                "stock": 3
            }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let product: serde_json::Value = created.json().await.expect("the product");
    let id = product["id"].as_str().expect("an id").to_owned();
    let page_url = format!("{}/products/{id}", app.web);
    let page = || async {
        app.client
            .get(&page_url)
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("an HTML page")
    };
    let first_read = std::time::Instant::now();
    assert!(page().await.contains("9.00 EUR"));

    let token = app.admin_token().await.to_owned();
    let changed = app
        .client
        .put(format!("{}/api/products/{id}/price", app.api))
        .bearer_auth(&token)
        .json(&json!({"price": {"amount_minor": 1150, "currency": "EUR"}, "version": product["version"]}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(changed.status(), StatusCode::OK);

    // The web app keeps a product fresh for 5 s; the product's event drops
    // it sooner.
    let mut shown = String::new();
    while first_read.elapsed() < std::time::Duration::from_secs(4) {
        shown = page().await;
        if shown.contains("11.50 EUR") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(shown.contains("11.50 EUR"), "{shown}");
    app.stop().await;
}
