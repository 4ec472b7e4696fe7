//! What an operator relies on: liveness, readiness that reports the database,
//! metrics, and the docs page.

use reqwest::StatusCode;
use serde_json::Value;
use test_kit::{TestApp, spawn_api_only};

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(app.api_url(path))
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn liveness_answers_and_readiness_reports_the_database() {
    let app = spawn_api_only().await;
    for path in ["/health/live", "/health"] {
        assert_eq!(get(&app, path).await.status(), StatusCode::OK, "{path}");
    }
    let ready = get(&app, "/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let report: Value = ready.json().await.expect("a JSON report");
    assert_eq!(report["status"], "ready");
    assert_eq!(report["checks"]["database"]["status"], "up");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status_and_time_use_cases() {
    let app = spawn_api_only().await;
    for path in [
        "/api/tasks",
        "/api/tasks",
        "/api/tasks/0190f0f0-0000-7000-8000-000000000000",
    ] {
        get(&app, path).await;
    }
    let response = get(&app, "/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|value| value.starts_with("text/plain; version=0.0.4"))
    );
    let text = response.text().await.expect("text");
    for expected in [
        "http_requests_total{method=\"GET\",route=\"/api/tasks\",status=\"200\"} 2",
        "http_requests_total{method=\"GET\",route=\"/api/tasks/{id}\",status=\"404\"} 1",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/tasks\",status=\"200\",le=",
        "use_case_duration_seconds_count{use_case=\"tasks.list_tasks\",kind=\"query\",outcome=\"ok\"}",
        "db_pool_connections{pool=\"database\",state=\"idle\"}",
        "db_pool_max_connections{pool=\"database\"}",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_docs_page_is_served_with_its_assets_from_the_binary() {
    let app = spawn_api_only().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let redirect = client
        .get(app.api_url("/docs"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        redirect.headers()[reqwest::header::LOCATION],
        "/docs/index.html"
    );

    let page = get(&app, "/docs/index.html").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("HTML").contains("swagger-ui"));
    let script = get(&app, "/docs/swagger-initializer.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.text().await.expect("text").contains("/openapi.json"),
        "the page loads this API's document"
    );
    assert_eq!(
        get(&app, "/docs/nothing.js").await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
