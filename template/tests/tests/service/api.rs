//! The API over HTTP, as a client sees it.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use serde_json::{Value, json};
use test_kit::{TestApp, spawn_app};

async fn create(app: &TestApp, title: &str) -> reqwest::Response {
    app.client
        .post(app.api_url("/api/tasks"))
        .json(&json!({ "title": title }))
        .send()
        .await
        .expect("request sent")
}

async fn create_with_key(app: &TestApp, key: &str, title: &str) -> reqwest::Response {
    app.client
        .post(app.api_url("/api/tasks"))
        .header("idempotency-key", key)
        .json(&json!({ "title": title }))
        .send()
        .await
        .expect("request sent")
}

async fn created(app: &TestApp, title: &str) -> Value {
    let response = create(app, title).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("the created task as JSON")
}

async fn complete(app: &TestApp, task: &Value, version: &Value) -> reqwest::Response {
    let id = task["id"].as_str().expect("the task has an id");
    app.client
        .post(app.api_url(&format!("/api/tasks/{id}/complete")))
        .json(&json!({ "version": version }))
        .send()
        .await
        .expect("request sent")
}

async fn read(app: &TestApp, path: &str) -> Value {
    let response = app
        .client
        .get(app.api_url(path))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.expect("JSON")
}

/// Checks `response` is an RFC 9457 problem with `status` and returns its body.
async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], status.as_u16());
    body
}

#[tokio::test]
async fn a_created_task_is_open_and_can_be_read_back_where_location_says() {
    let app = spawn_app().await;
    let response = create(&app, "  Water the plants ").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("a Location header");
    let task: Value = response.json().await.expect("JSON");
    assert_eq!(task["title"], "Water the plants");
    assert_eq!(task["status"], "open");
    assert_eq!(task["version"], 1);

    let read: Value = app
        .client
        .get(app.api_url(&location))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(read, task);

    let list: Value = app
        .client
        .get(app.api_url("/api/tasks?page=1&per_page=10"))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], task["id"]);
    app.stop().await;
}

#[tokio::test]
async fn a_blank_title_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let body = problem(create(&app, "   ").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(body["errors"][0]["field"], "title");
    app.stop().await;
}

#[tokio::test]
async fn completing_uses_optimistic_concurrency_and_happens_once() {
    let app = spawn_app().await;
    let task = created(&app, "Sweep the floor").await;
    let path = format!("/api/tasks/{}", task["id"].as_str().expect("an id"));
    // Read first, so the answers below come from a cache the command must
    // have invalidated.
    assert_eq!(read(&app, &path).await["status"], "open");
    assert_eq!(read(&app, "/api/tasks").await["items"][0]["status"], "open");

    let done = complete(&app, &task, &task["version"]).await;
    assert_eq!(done.status(), StatusCode::OK);
    let done: Value = done.json().await.expect("JSON");
    assert_eq!(done["status"], "done");
    assert_eq!(done["version"], 2);
    assert_eq!(read(&app, &path).await, done);
    assert_eq!(read(&app, "/api/tasks").await["items"][0], done);

    let stale = complete(&app, &task, &task["version"]).await;
    assert_eq!(
        problem(stale, StatusCode::CONFLICT).await["code"],
        "stale_version"
    );

    let again = complete(&app, &task, &done["version"]).await;
    assert_eq!(
        problem(again, StatusCode::CONFLICT).await["code"],
        "already_done"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_tasks_paths_and_bad_input_are_client_errors() {
    let app = spawn_app().await;
    let unknown = app
        .client
        .get(app.api_url("/api/tasks/0190f0f0-0000-7000-8000-000000000000"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(
        problem(unknown, StatusCode::NOT_FOUND).await["code"],
        "not_found"
    );

    let not_an_id = app
        .client
        .get(app.api_url("/api/tasks/not-an-id"))
        .send()
        .await
        .expect("request sent");
    assert!(not_an_id.status().is_client_error());

    let malformed = app
        .client
        .post(app.api_url("/api/tasks"))
        .header(CONTENT_TYPE, "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .expect("request sent");
    problem(malformed, StatusCode::BAD_REQUEST).await;

    let too_many = app
        .client
        .get(app.api_url("/api/tasks?per_page=1000"))
        .send()
        .await
        .expect("request sent");
    problem(too_many, StatusCode::UNPROCESSABLE_ENTITY).await;

    let nowhere = app
        .client
        .get(app.api_url("/api/nowhere"))
        .send()
        .await
        .expect("request sent");
    problem(nowhere, StatusCode::NOT_FOUND).await;
    app.stop().await;
}

#[tokio::test]
async fn a_create_retried_with_its_idempotency_key_answers_the_same_and_adds_one_task() {
    let app = spawn_app().await;
    let first = create_with_key(&app, "retry-1", "Call the plumber").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let location = first.headers().get(LOCATION).cloned();
    let body = first.bytes().await.expect("body");

    let retry = create_with_key(&app, "retry-1", "Call the plumber").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers().get(LOCATION).cloned(), location);
    assert_eq!(retry.bytes().await.expect("body"), body);

    let reused = create_with_key(&app, "retry-1", "Call the electrician").await;
    assert_eq!(
        problem(reused, StatusCode::CONFLICT).await["code"],
        "idempotency_key_reused"
    );
    assert_eq!(read(&app, "/api/tasks").await["total"], 1);

    let without_key = create(&app, "Call the plumber").await;
    assert_eq!(without_key.status(), StatusCode::CREATED);
    assert_eq!(read(&app, "/api/tasks").await["total"], 2);
    app.stop().await;
}

#[tokio::test]
async fn task_reads_carry_an_etag_and_answer_304_while_unchanged() {
    let app = spawn_app().await;
    let task = created(&app, "Defrost the freezer").await;
    let path = format!("/api/tasks/{}", task["id"].as_str().expect("an id"));
    let get = |etag: Option<&str>| {
        let mut request = app.client.get(app.api_url(&path));
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        request.send()
    };

    let first = get(None).await.expect("request sent");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[CACHE_CONTROL], "no-cache");
    let etag = first.headers()[ETAG]
        .to_str()
        .expect("an ASCII ETag")
        .to_owned();

    let unchanged = get(Some(&etag)).await.expect("request sent");
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert!(unchanged.bytes().await.expect("body").is_empty());

    assert_eq!(
        complete(&app, &task, &task["version"]).await.status(),
        StatusCode::OK
    );
    let changed = get(Some(&etag)).await.expect("request sent");
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()[ETAG].to_str().ok(), Some(etag.as_str()));
    app.stop().await;
}
