//! Interface conventions, checked over any service's OpenAPI document: the
//! same naming, types, lengths, paging, errors, auth and idempotency on every
//! operation. Feature `openapi`.
//!
//! ```ignore
//! let document: serde_json::Value = client.get("/openapi.json").await.json().await?;
//! strata_tests::conventions::check(&document).assert_clean();
//! ```
//!
//! | rule | holds when |
//! |---|---|
//! | `snake_case_names` | every body field and query parameter is `snake_case` |
//! | `bounded_strings` | every string a client sends (body field, query or header parameter) has a `maxLength`, unless it is a UUID, an enum or a constant |
//! | `uuid_ids` | every field or parameter named `id` or `…_id` is a string of format `uuid` (Strata's correlation ids, `request_id` and `trace_id`, are not resource ids) |
//! | `paged_lists` | a list answers `{items, page, per_page, total}` and takes `page` (from 1) and `per_page` (from 1 to a maximum), and only a list takes them |
//! | `problem_errors` | every 4xx and 5xx answer is `application/problem+json` with the `Problem` schema |
//! | `documented_auth` | every unsafe operation declares `security` (`[{}]` when anyone may call it) |
//! | `idempotency_key_header` | an operation taking an `Idempotency-Key` takes it as a header of 1 to 255 visible ASCII characters (`minLength`, `maxLength`, `pattern`) and documents the 409 a reused key answers |
//! | `has_operations` | the document describes at least one operation, so a broken document cannot pass by describing nothing |
//!
//! Each violation is one line naming its rule, the operation and the place.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// The methods that change something.
const UNSAFE: [&str; 4] = ["post", "put", "patch", "delete"];
/// Every method an operation may have.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// One convention a document breaks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The rule's id, such as `bounded_strings`.
    pub rule: &'static str,
    /// Where: `POST /api/products body.name`.
    pub at: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conventions/{}: {}: {}",
            self.rule, self.at, self.problem
        )
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every violation, sorted.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Whether no rule was broken.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// The ids of the rules broken, each once.
    #[must_use]
    pub fn rules_broken(&self) -> BTreeSet<&'static str> {
        self.violations
            .iter()
            .map(|violation| violation.rule)
            .collect()
    }

    /// # Panics
    /// When a rule was broken, listing every violation, one per line.
    pub fn assert_clean(&self) {
        assert!(
            self.is_clean(),
            "the OpenAPI document breaks the interface conventions:\n{}",
            self.violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Checks `document` against every convention.
#[must_use]
pub fn check(document: &Value) -> Report {
    let mut checker = Checker {
        document,
        violations: Vec::new(),
    };
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                operations += 1;
                checker.operation(method, path, item, operation);
            }
        }
    }
    if operations == 0 {
        checker.violation(
            "has_operations",
            "the document".to_owned(),
            "describes no operation",
        );
    }
    let mut violations = checker.violations;
    violations.sort();
    violations.dedup();
    Report { violations }
}

struct Checker<'a> {
    document: &'a Value,
    violations: Vec<Violation>,
}

/// Where a schema sits, and whether a client sends it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Sent,
    Answered,
}

impl Checker<'_> {
    fn violation(&mut self, rule: &'static str, at: String, problem: impl Into<String>) {
        self.violations.push(Violation {
            rule,
            at,
            problem: problem.into(),
        });
    }

    fn operation(&mut self, method: &str, path: &str, item: &Value, operation: &Value) {
        let name = format!("{} {path}", method.to_ascii_uppercase());
        let parameters: Vec<Value> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(operation["parameters"].as_array().into_iter().flatten())
            .map(|parameter| self.resolve(parameter).clone())
            .collect();
        for parameter in &parameters {
            self.parameter(&name, parameter);
        }
        if let Some(body) =
            operation["requestBody"]["content"]["application/json"]["schema"].as_object()
        {
            let mut seen = BTreeSet::new();
            self.schema(
                &name,
                "body",
                &Value::Object(body.clone()),
                Side::Sent,
                &mut seen,
            );
        }
        for (status, response) in operation["responses"].as_object().into_iter().flatten() {
            let response = self.resolve(response).clone();
            self.response(&name, status, &response);
        }
        if UNSAFE.contains(&method) && !operation["security"].is_array() {
            self.violation(
                "documented_auth",
                name.clone(),
                "declares no `security`; use `[{}]` for an operation anyone may call",
            );
        }
        self.paging(&name, method, &parameters, operation);
        self.idempotency(&name, &parameters, operation);
    }

    fn parameter(&mut self, name: &str, parameter: &Value) {
        let parameter_name = parameter["name"].as_str().unwrap_or_default();
        let location = parameter["in"].as_str().unwrap_or_default();
        let at = format!("{name} {location} parameter `{parameter_name}`");
        if location == "query" && !is_snake_case(parameter_name) {
            self.violation("snake_case_names", at.clone(), "is not snake_case");
        }
        let schema = self.resolve(&parameter["schema"]).clone();
        if is_id_name(parameter_name) && !is_uuid(&schema) {
            self.violation(
                "uuid_ids",
                at.clone(),
                "names an id but is not a string of format `uuid`",
            );
        }
        if location != "path" && is_unbounded_string(&schema) {
            self.violation(
                "bounded_strings",
                at.clone(),
                "is a string without `maxLength`",
            );
        }
        let items = self.resolve(&schema["items"]).clone();
        if location != "path" && is_unbounded_string(&items) {
            self.violation(
                "bounded_strings",
                format!("{at}[]"),
                "is a string without `maxLength`",
            );
        }
    }

    fn response(&mut self, name: &str, status: &str, response: &Value) {
        let at = format!("{name} answer {status}");
        if status.starts_with('4') || status.starts_with('5') {
            let problem = &response["content"]["application/problem+json"];
            let schema = self.resolve(&problem["schema"]);
            let is_problem = problem.is_object()
                && schema["properties"]["code"].is_object()
                && schema["properties"]["status"].is_object();
            if !is_problem {
                self.violation(
                    "problem_errors",
                    at,
                    "is not `application/problem+json` with the `Problem` schema",
                );
            }
            return;
        }
        for (media, content) in response["content"].as_object().into_iter().flatten() {
            if media.contains("json") {
                let mut seen = BTreeSet::new();
                self.schema(
                    name,
                    &format!("answer {status}"),
                    &content["schema"],
                    Side::Answered,
                    &mut seen,
                );
            }
        }
    }

    /// Walks `schema` (reached at `at`), following references once each.
    fn schema(
        &mut self,
        name: &str,
        at: &str,
        schema: &Value,
        side: Side,
        seen: &mut BTreeSet<String>,
    ) {
        if let Some(reference) = schema["$ref"].as_str() {
            if !seen.insert(reference.to_owned()) {
                return;
            }
            let resolved = self.resolve(schema).clone();
            self.schema(name, at, &resolved, side, seen);
            return;
        }
        for combined in ["allOf", "anyOf", "oneOf"] {
            for part in schema[combined].as_array().into_iter().flatten() {
                self.schema(name, at, part, side, seen);
            }
        }
        if let Some(items) = schema.get("items") {
            let place = format!("{at}[]");
            if side == Side::Sent && is_unbounded_string(&self.resolve(items).clone()) {
                self.violation(
                    "bounded_strings",
                    format!("{name} {place}"),
                    "is a string without `maxLength`",
                );
            }
            self.schema(name, &place, items, side, seen);
        }
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (field, property) in &properties {
            let place = format!("{name} {at}.{field}");
            if !is_snake_case(field) {
                self.violation("snake_case_names", place.clone(), "is not snake_case");
            }
            let resolved = self.resolve(property).clone();
            if is_id_name(field) && !is_uuid(&resolved) && !is_id_array(&resolved, self) {
                self.violation(
                    "uuid_ids",
                    place.clone(),
                    "names an id but is not a string of format `uuid`",
                );
            }
            if side == Side::Sent && is_unbounded_string(&resolved) {
                self.violation(
                    "bounded_strings",
                    place.clone(),
                    "is a string without `maxLength`",
                );
            }
            self.schema(name, &format!("{at}.{field}"), property, side, seen);
        }
    }

    fn paging(&mut self, name: &str, method: &str, parameters: &[Value], operation: &Value) {
        let query = |wanted: &str| {
            parameters
                .iter()
                .find(|parameter| parameter["in"] == "query" && parameter["name"] == wanted)
        };
        let answer = operation["responses"]["200"]["content"]["application/json"]["schema"].clone();
        let answer = self.resolve(&answer).clone();
        let properties = answer["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        // An answer with an `items` array is a page, unless its `total` is
        // something other than a count (an order's items and its total
        // price, say).
        let total_is_not_a_count = properties
            .get("total")
            .is_some_and(|total| self.resolve(total)["type"] == "object");
        let is_page = !total_is_not_a_count
            && properties
                .get("items")
                .is_some_and(|items| self.resolve(items)["type"] == "array");
        let takes_paging = query("page").is_some() || query("per_page").is_some();
        if method != "get" || !(is_page || takes_paging) {
            return;
        }
        if !is_page {
            self.violation(
                "paged_lists",
                name.to_owned(),
                "takes `page`/`per_page` but does not answer a page (`items`, `page`, `per_page`, `total`)",
            );
            return;
        }
        for field in ["page", "per_page", "total"] {
            if !properties.contains_key(field) {
                self.violation(
                    "paged_lists",
                    name.to_owned(),
                    format!("answers a page without `{field}`"),
                );
            }
        }
        let page = query("page").map(|parameter| self.resolve(&parameter["schema"]).clone());
        let per_page =
            query("per_page").map(|parameter| self.resolve(&parameter["schema"]).clone());
        match page {
            Some(schema) if schema["minimum"] == 1 => {}
            _ => self.violation(
                "paged_lists",
                name.to_owned(),
                "answers a page but takes no `page` query parameter from 1",
            ),
        }
        match per_page {
            Some(schema) if schema["minimum"] == 1 && schema["maximum"].is_number() => {}
            _ => self.violation(
                "paged_lists",
                name.to_owned(),
                "answers a page but takes no `per_page` query parameter from 1 to a maximum",
            ),
        }
    }

    fn idempotency(&mut self, name: &str, parameters: &[Value], operation: &Value) {
        for parameter in parameters {
            let parameter_name = parameter["name"].as_str().unwrap_or_default();
            if !parameter_name.eq_ignore_ascii_case("idempotency-key") {
                continue;
            }
            let at = format!("{name} parameter `{parameter_name}`");
            if parameter["in"] != "header" {
                self.violation("idempotency_key_header", at.clone(), "is not a header");
            }
            let schema = self.resolve(&parameter["schema"]).clone();
            let bounded = schema["type"] == "string"
                && schema["minLength"].as_u64().is_some_and(|min| min >= 1)
                && schema["maxLength"].as_u64().is_some_and(|max| max <= 255)
                && schema["pattern"].is_string();
            if !bounded {
                self.violation(
                    "idempotency_key_header",
                    at.clone(),
                    "is not a string of 1 to 255 characters with a `pattern`",
                );
            }
            if !operation["responses"]["409"].is_object() {
                self.violation(
                    "idempotency_key_header",
                    at,
                    "documents no 409 for a key in use or reused",
                );
            }
        }
    }

    /// `value`, or what its `$ref` (within this document) points at.
    fn resolve<'v>(&'v self, value: &'v Value) -> &'v Value {
        let mut current = value;
        for _ in 0..16 {
            let Some(reference) = current["$ref"].as_str() else {
                return current;
            };
            let Some(pointer) = reference.strip_prefix('#') else {
                return current;
            };
            match self.document.pointer(pointer) {
                Some(target) => current = target,
                None => return current,
            }
        }
        current
    }
}

fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_')
}

/// Correlation ids Strata defines, which are not resource ids: a request id is
/// whatever the client or proxy sent (or a UUID), a trace id is W3C's 32 hex
/// digits.
const CORRELATION_IDS: [&str; 3] = ["request_id", "trace_id", "span_id"];

fn is_id_name(name: &str) -> bool {
    (name == "id" || name.ends_with("_id")) && !CORRELATION_IDS.contains(&name)
}

/// The types a schema allows: `"string"` or `["string", "null"]`.
fn types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(single) => vec![single.as_str()],
        Value::Array(several) => several.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_uuid(schema: &Value) -> bool {
    types(schema).contains(&"string") && schema["format"] == "uuid"
}

fn is_id_array(schema: &Value, checker: &Checker<'_>) -> bool {
    types(schema).contains(&"array") && is_uuid(checker.resolve(&schema["items"]))
}

fn is_unbounded_string(schema: &Value) -> bool {
    let object: Option<&Map<String, Value>> = schema.as_object();
    types(schema).contains(&"string")
        && object.is_some_and(|object| {
            !object.contains_key("maxLength")
                && !object.contains_key("enum")
                && !object.contains_key("const")
        })
        && schema["format"] != "uuid"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A small document that keeps every convention.
    fn keeping() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": { "title": "fixture", "version": "1" },
            "paths": {
                "/api/notes": {
                    "get": {
                        "parameters": [
                            { "name": "page", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                            { "name": "per_page", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } }
                        ],
                        "responses": {
                            "200": { "description": "a page", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NotePage" } } } },
                            "422": { "description": "bad page", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
                        }
                    },
                    "post": {
                        "security": [{ "bearer": [] }],
                        "parameters": [
                            { "name": "Idempotency-Key", "in": "header", "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" } }
                        ],
                        "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewNote" } } } },
                        "responses": {
                            "201": { "description": "made", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Note" } } } },
                            "409": { "description": "key in use", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
                        }
                    }
                }
            },
            "components": {
                "schemas": {
                    "Problem": { "type": "object", "properties": { "code": { "type": "string" }, "status": { "type": "integer" } } },
                    "NewNote": {
                        "type": "object",
                        "properties": {
                            "text": { "type": "string", "maxLength": 200 },
                            "folder_id": { "type": ["string", "null"], "format": "uuid" }
                        }
                    },
                    "Note": {
                        "type": "object",
                        "properties": {
                            "id": { "type": "string", "format": "uuid" },
                            "text": { "type": "string" },
                            "request_id": { "type": "string" }
                        }
                    },
                    "NotePage": {
                        "type": "object",
                        "properties": {
                            "items": { "type": "array", "items": { "$ref": "#/components/schemas/Note" } },
                            "page": { "type": "integer" },
                            "per_page": { "type": "integer" },
                            "total": { "type": "integer" }
                        }
                    }
                }
            }
        })
    }

    /// Asserts `document` breaks `rule` and no other, each violation naming it.
    fn breaks(document: &Value, rule: &str) {
        let report = check(document);
        assert_eq!(
            report.rules_broken(),
            BTreeSet::from([rule]),
            "{:#?}",
            report.violations
        );
        for violation in &report.violations {
            let line = violation.to_string();
            assert!(line.starts_with(&format!("conventions/{rule}: ")), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn the_fixture_keeps_every_convention() {
        check(&keeping()).assert_clean();
    }

    #[test]
    fn a_camel_case_field_breaks_snake_case_names() {
        let mut document = keeping();
        document["components"]["schemas"]["NewNote"]["properties"]["dueDate"] =
            json!({ "type": "string", "maxLength": 10 });
        breaks(&document, "snake_case_names");
    }

    #[test]
    fn a_string_without_a_maximum_breaks_bounded_strings() {
        let mut document = keeping();
        document["components"]["schemas"]["NewNote"]["properties"]["text"] =
            json!({ "type": "string" });
        breaks(&document, "bounded_strings");
    }

    #[test]
    fn a_list_of_strings_without_a_maximum_breaks_bounded_strings() {
        let mut document = keeping();
        document["components"]["schemas"]["NewNote"]["properties"]["tags"] =
            json!({ "type": "array", "maxItems": 5, "items": { "type": "string" } });
        breaks(&document, "bounded_strings");

        let mut document = keeping();
        document["paths"]["/api/notes"]["get"]["parameters"]
            .as_array_mut()
            .expect("parameters")
            .push(json!({
                "name": "tag", "in": "query",
                "schema": { "type": "array", "items": { "type": "string" } }
            }));
        breaks(&document, "bounded_strings");
    }

    #[test]
    fn an_id_that_is_not_a_uuid_breaks_uuid_ids() {
        let mut document = keeping();
        document["components"]["schemas"]["Note"]["properties"]["id"] =
            json!({ "type": "integer" });
        breaks(&document, "uuid_ids");
    }

    #[test]
    fn a_page_without_its_total_or_paging_parameters_breaks_paged_lists() {
        let mut document = keeping();
        document["components"]["schemas"]["NotePage"]["properties"]
            .as_object_mut()
            .expect("properties")
            .remove("total");
        breaks(&document, "paged_lists");

        let mut document = keeping();
        document["paths"]["/api/notes"]["get"]["parameters"] = json!([]);
        breaks(&document, "paged_lists");
    }

    #[test]
    fn a_resource_with_items_and_a_total_price_is_not_a_page() {
        let mut document = keeping();
        document["components"]["schemas"]["Note"]["properties"]["items"] =
            json!({ "type": "array", "maxItems": 10, "items": { "type": "integer" } });
        document["components"]["schemas"]["Note"]["properties"]["total"] =
            json!({ "type": "object", "properties": { "amount_minor": { "type": "integer" } } });
        document["paths"]["/api/notes/{id}"] = json!({
            "get": {
                "responses": {
                    "200": { "description": "a note", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Note" } } } }
                }
            }
        });
        check(&document).assert_clean();
    }

    #[test]
    fn an_error_answer_that_is_not_a_problem_breaks_problem_errors() {
        let mut document = keeping();
        document["paths"]["/api/notes"]["get"]["responses"]["422"] = json!({ "description": "bad page", "content": { "application/json": { "schema": { "type": "object" } } } });
        breaks(&document, "problem_errors");
    }

    #[test]
    fn an_unsafe_operation_without_security_breaks_documented_auth() {
        let mut document = keeping();
        document["paths"]["/api/notes"]["post"]
            .as_object_mut()
            .expect("operation")
            .remove("security");
        breaks(&document, "documented_auth");
    }

    #[test]
    fn an_unbounded_or_misplaced_idempotency_key_breaks_idempotency_key_header() {
        let mut document = keeping();
        document["paths"]["/api/notes"]["post"]["parameters"][0]["schema"] =
            json!({ "type": "string", "maxLength": 255 });
        breaks(&document, "idempotency_key_header");

        let mut document = keeping();
        document["paths"]["/api/notes"]["post"]["responses"]
            .as_object_mut()
            .expect("responses")
            .remove("409");
        breaks(&document, "idempotency_key_header");
    }

    #[test]
    fn a_document_without_operations_breaks_has_operations() {
        breaks(
            &json!({ "openapi": "3.1.0", "paths": {} }),
            "has_operations",
        );
    }
}
