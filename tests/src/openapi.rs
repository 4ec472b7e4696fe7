//! Checks of an API's OpenAPI document against what its router serves, and
//! against the OpenAPI 3.1 schema. Feature `openapi`.

use std::collections::BTreeSet;

use serde_json::Value;

/// The JSON Schema of OpenAPI 3.1 documents; `fixtures/README.md` says where it
/// comes from.
const OPENAPI_3_1_SCHEMA: &str = include_str!("../fixtures/openapi-3.1.schema.json");

/// The HTTP methods the coverage checks look at.
pub const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The paths an axum router serves, read from its `Debug` output: axum has no
/// other way to list them, and a document must be checked against what is
/// served rather than against a list kept by hand. Each route appears there as
/// `RouteId(n): "/path/{param}"`; if axum ever prints them otherwise, this finds
/// nothing, so a caller asserting a minimum fails rather than passing vacuously.
#[must_use]
pub fn served_paths<S>(router: &axum::Router<S>) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let main = text.split("fallback_router").next().unwrap_or(&text);
    main.split("RouteId(")
        .skip(1)
        .filter_map(|entry| entry.split_once("): \"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// `path` with each `{parameter}` replaced by an id, to send a request to.
#[must_use]
pub fn concrete_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "0190f0f0-0000-7000-8000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `(method, path)` the document describes.
#[must_use]
pub fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if item.get(method).is_some() {
                    operations.insert((method.to_owned(), path.clone()));
                }
            }
        }
    }
    operations
}

/// What makes `document` not a valid OpenAPI 3.1 document: violations of the
/// OpenAPI Initiative's schema, component schemas that are not valid JSON Schema
/// 2020-12 (the OpenAPI schema leaves them open), and `$ref`s that lead nowhere.
/// Empty when it is valid.
#[must_use]
pub fn openapi_3_1_violations(document: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    if !document["openapi"]
        .as_str()
        .is_some_and(|version| version.starts_with("3.1."))
    {
        violations.push(format!("`openapi` is {}, not 3.1.x", document["openapi"]));
    }
    match serde_json::from_str::<Value>(OPENAPI_3_1_SCHEMA)
        .map_err(|error| error.to_string())
        .and_then(|schema| jsonschema::draft202012::new(&schema).map_err(|error| error.to_string()))
    {
        Ok(validator) => violations.extend(
            validator
                .iter_errors(document)
                .map(|error| format!("{} at {}", error, error.instance_path())),
        ),
        Err(error) => violations.push(format!("the OpenAPI 3.1 schema does not load: {error}")),
    }
    if let Some(components) = document["components"]["schemas"].as_object() {
        for (name, component) in components {
            if !jsonschema::draft202012::meta::is_valid(component) {
                violations.push(format!(
                    "components.schemas.{name} is not valid JSON Schema"
                ));
            }
        }
    }
    let mut references = Vec::new();
    collect_references(document, &mut references);
    for reference in references {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer));
        if target.is_none() {
            violations.push(format!("{reference} leads nowhere"));
        }
    }
    violations
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

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use serde_json::json;

    use super::*;

    fn minimal() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": { "title": "t", "version": "1" },
            "paths": {
                "/tea/{id}": {
                    "get": {
                        "responses": {
                            "200": {
                                "description": "ok",
                                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Tea" } } }
                            }
                        }
                    }
                }
            },
            "components": { "schemas": { "Tea": { "type": "object" } } }
        })
    }

    #[test]
    fn a_valid_document_has_no_violations_and_a_broken_one_has() {
        assert_eq!(openapi_3_1_violations(&minimal()), Vec::<String>::new());

        let mut malformed = minimal();
        malformed["paths"]["/tea/{id}"]["get"]["responses"]["200"]["content"] = Value::from("none");
        assert!(!openapi_3_1_violations(&malformed).is_empty());

        let mut dangling = minimal();
        dangling["components"]["schemas"] = json!({});
        assert!(
            openapi_3_1_violations(&dangling)
                .iter()
                .any(|violation| violation.contains("leads nowhere"))
        );

        let mut old = minimal();
        old["openapi"] = Value::from("3.0.3");
        assert!(!openapi_3_1_violations(&old).is_empty());
    }

    #[test]
    fn served_paths_and_documented_operations_are_read_from_the_sources() {
        let router: axum::Router = axum::Router::new()
            .route("/tea/{id}", get(|| async { "tea" }))
            .route("/cups", get(|| async { "cups" }));
        let paths = served_paths(&router);
        assert_eq!(
            paths,
            BTreeSet::from(["/cups".to_owned(), "/tea/{id}".to_owned()])
        );
        assert_eq!(
            concrete_path("/tea/{id}"),
            "/tea/0190f0f0-0000-7000-8000-000000000000"
        );
        assert_eq!(
            documented_operations(&minimal()),
            BTreeSet::from([("get".to_owned(), "/tea/{id}".to_owned())])
        );
    }
}
