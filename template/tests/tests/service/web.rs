//! The web page, served by the BFF from data it fetches from the API over HTTP.

use reqwest::StatusCode;
use serde_json::json;
use test_kit::{spawn_api_only, spawn_app};

#[tokio::test]
async fn the_page_lists_the_tasks_the_api_serves() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.api_url("/api/tasks"))
        .json(&json!({ "title": "Buy <milk> & bread" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::CREATED);

    let web = app.web.as_deref().expect("the web page is served");
    let page = app.client.get(web).send().await.expect("request sent");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("an HTML page");
    assert!(html.contains("Buy &lt;milk&gt; &amp; bread"), "{html}");
    assert!(html.contains("1 task, 1 open."), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn with_the_page_turned_off_only_the_api_is_served() {
    let app = spawn_api_only().await;
    assert!(app.web.is_none());
    let health = app
        .client
        .get(app.api_url("/health/live"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(health.status(), StatusCode::OK);
    app.stop().await;
}
