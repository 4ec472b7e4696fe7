//! The OpenAPI document: generated from the routes, covering every route the
//! API serves, and valid OpenAPI 3.1 by the OpenAPI Initiative's own schema.

use std::collections::BTreeSet;

use axum::routing::get;
use serde_json::Value;
use strata_tests::openapi::{
    METHODS, concrete_path, documented_operations, openapi_3_1_violations, served_paths,
};
use test_kit::{TestApp, spawn_api_only};

/// Which methods the app serves at `path`, found by asking: a method the route
/// does not have is answered 405.
async fn served_methods(app: &TestApp, path: &str) -> BTreeSet<String> {
    let concrete = concrete_path(path);
    let mut methods = BTreeSet::new();
    for method in METHODS {
        let response = app
            .client
            .request(
                method.to_uppercase().parse().expect("a method"),
                app.api_url(&concrete),
            )
            .send()
            .await
            .expect("request sent");
        if response.status() != reqwest::StatusCode::METHOD_NOT_ALLOWED {
            methods.insert(method.to_owned());
        }
    }
    methods
}

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.api_url("/openapi.json"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.json().await.expect("a JSON document")
}

#[tokio::test]
async fn every_route_the_api_serves_is_in_the_openapi_document_and_nothing_else() {
    let app = spawn_api_only().await;
    let document = document(&app).await;
    let paths = served_paths(app.api_router());
    assert!(
        paths.contains("/openapi.json") && paths.contains("/api/tasks"),
        "found only {paths:?}: has axum's Debug output changed?"
    );

    let mut served = BTreeSet::new();
    for path in &paths {
        for method in served_methods(&app, path).await {
            served.insert((method, path.clone()));
        }
    }
    let documented = documented_operations(&document);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served without a description: {undocumented:?}; described but not served: {unserved:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_route_added_without_a_description_is_noticed() {
    let app = spawn_api_only().await;
    let documented = documented_operations(&document(&app).await);
    let with_extra = app
        .api_router()
        .clone()
        .route("/undocumented", get(|| async { "hidden" }));
    let paths = served_paths(&with_extra);
    assert!(paths.contains("/undocumented"));
    assert!(!documented.iter().any(|(_, path)| path == "/undocumented"));
    app.stop().await;
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let app = spawn_api_only().await;
    let document = document(&app).await;
    let violations = openapi_3_1_violations(&document);
    assert!(
        violations.is_empty(),
        "not valid OpenAPI 3.1: {violations:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn task_operations_describe_their_answers_and_errors_are_problems() {
    let app = spawn_api_only().await;
    let document = document(&app).await;
    let operation = |method: &str, path: &str| document["paths"][path][method].clone();

    let created = operation("post", "/api/tasks")["responses"].clone();
    assert_eq!(
        created["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Task"
    );
    assert!(created["422"]["content"]["application/problem+json"].is_object());
    let parameters = operation("post", "/api/tasks")["parameters"].clone();
    assert!(
        parameters
            .as_array()
            .is_some_and(|all| all.iter().any(|p| p["name"] == "Idempotency-Key")),
        "{parameters}"
    );
    let not_found = &operation("get", "/api/tasks/{id}")["responses"]["404"];
    assert_eq!(
        not_found["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(operation("post", "/api/tasks/{id}/complete")["responses"]["409"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn callers_are_refused_before_anything_they_sent_is_read() {
    use strata_tests::service::{Caller, assert_callers_are_asked_first};

    let app = spawn_api_only().await;
    let document = document(&app).await;
    assert_callers_are_asked_first(app.api_client(), &document, Caller::Anonymous).await;
    app.stop().await;
}

#[tokio::test]
async fn the_document_follows_the_interface_conventions() {
    let app = spawn_api_only().await;
    let document = document(&app).await;
    strata_tests::conventions::check(&document).assert_clean();
    app.stop().await;
}
