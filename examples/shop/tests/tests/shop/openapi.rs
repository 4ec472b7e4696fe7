//! The OpenAPI document: generated from the routes, covering every route the
//! API serves, and valid OpenAPI 3.1 by the OpenAPI Initiative's own schema.

use std::collections::BTreeSet;

use axum::routing::get;
use serde_json::Value;
use shop_tests::{TestApp, spawn_app, spawn_app_with};
use strata_tests::openapi::{
    METHODS, concrete_path, documented_operations, openapi_3_1_violations, served_paths,
};

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
    // Every method of every path is asked, more than one client may ask at
    // once: the per-client limit would answer for the routes.
    let app = spawn_app_with(|settings| settings.service.http.client_limit.enabled = false).await;
    let document = document(&app).await;
    let paths = served_paths(app.api_router());
    assert!(
        paths.len() >= 15,
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
}

#[tokio::test]
async fn a_route_added_without_a_description_is_noticed() {
    let app = spawn_app().await;
    let documented = documented_operations(&document(&app).await);
    let with_extra = app
        .api_router()
        .clone()
        .route("/undocumented", get(|| async { "hidden" }));
    let paths = served_paths(&with_extra);
    assert!(paths.contains("/undocumented"));
    assert!(!documented.iter().any(|(_, path)| path == "/undocumented"));
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let violations = openapi_3_1_violations(&document);
    assert!(
        violations.is_empty(),
        "not valid OpenAPI 3.1: {violations:#?}"
    );
}

#[tokio::test]
async fn protected_operations_declare_the_bearer_scheme_and_errors_are_problems() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["bearerFormat"],
        "JWT"
    );
    let secured = |method: &str, path: &str| {
        document["paths"][path][method]["security"]
            .as_array()
            .is_some_and(|all| {
                all.iter()
                    .any(|requirement| requirement.get("bearer").is_some())
            })
    };
    for (method, path) in [
        ("post", "/api/products"),
        ("put", "/api/products/{id}/price"),
        ("get", "/api/wishlists"),
        ("post", "/api/wishlists"),
        ("get", "/api/wishlists/{id}"),
        ("post", "/api/wishlists/{id}/products"),
    ] {
        assert!(
            secured(method, path),
            "{method} {path} should need a bearer token"
        );
        assert!(
            document["paths"][path][method]["responses"]["401"].is_object(),
            "{method} {path} documents its 401"
        );
    }
    for (method, path) in [
        ("get", "/api/products"),
        ("post", "/api/auth/sign-in"),
        ("post", "/api/auth/register"),
        ("get", "/health/ready"),
    ] {
        assert!(!secured(method, path), "{method} {path} is public");
    }
    let not_found = &document["paths"]["/api/products/{id}"]["get"]["responses"]["404"];
    assert_eq!(
        not_found["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    let created = &document["paths"]["/api/products"]["post"]["responses"];
    assert_eq!(
        created["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Product"
    );
    assert!(created["422"]["content"]["application/problem+json"].is_object());
}

#[tokio::test]
async fn the_document_follows_the_interface_conventions() {
    let app = spawn_app().await;
    let document = document(&app).await;
    strata_tests::conventions::check(&document).assert_clean();
    app.stop().await;
}
