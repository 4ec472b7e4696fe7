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
    assert!(html.contains("6 products in the catalog"));
    app.stop().await;
}
