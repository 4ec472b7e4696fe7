//! The OpenAPI document: generated from the routes, covering every route the
//! API serves, and valid OpenAPI 3.1 by the OpenAPI Initiative's own schema.

use std::collections::BTreeSet;

use axum::routing::get;
use serde_json::Value;
use test_kit::{TestApp, spawn_api_only};

/// The JSON Schema of OpenAPI 3.1 documents; see `fixtures/README.md` for where
/// it comes from.
const OPENAPI_3_1_SCHEMA: &str = include_str!("../../fixtures/openapi-3.1.schema.json");

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The paths an axum router serves, read from its `Debug` output: axum has no
/// other way to list them, and the document must be checked against what is
/// served rather than against a list kept by hand. Each route appears there as
/// `RouteId(n): "/path/{param}"`; if axum ever prints them otherwise, this finds
/// nothing and the test fails rather than passing vacuously.
fn served_paths(router: &axum::Router) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let main = text.split("fallback_router").next().unwrap_or(&text);
    main.split("RouteId(")
        .skip(1)
        .filter_map(|entry| entry.split_once("): \"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Which methods the app serves at `path`, found by asking: a method the route
/// does not have is answered 405.
async fn served_methods(app: &TestApp, path: &str) -> BTreeSet<String> {
    let concrete: String = path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "0190f0f0-0000-7000-8000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
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

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
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
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1.")),
        "{}",
        document["openapi"]
    );

    let schema: Value = serde_json::from_str(OPENAPI_3_1_SCHEMA).expect("the schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("the OpenAPI schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not valid OpenAPI 3.1: {errors:#?}");
    let mut broken = document.clone();
    broken["paths"]["/api/tasks"]["get"]["responses"]["200"]["content"] = Value::from("none");
    assert!(
        !validator.is_valid(&broken),
        "the validator must see a malformed response"
    );

    // The OpenAPI schema leaves Schema Objects open; each must be valid JSON
    // Schema 2020-12, and every reference must lead somewhere.
    let components = document["components"]["schemas"]
        .as_object()
        .expect("component schemas");
    for (name, component) in components {
        assert!(
            jsonschema::draft202012::meta::is_valid(component),
            "components.schemas.{name} is not valid JSON Schema"
        );
    }
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer));
        assert!(target.is_some(), "{reference} leads nowhere");
    }
    app.stop().await;
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.push(reference.clone());
            }
            for child in map.values() {
                collect_references(child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_references(item, out);
            }
        }
        _ => {}
    }
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
