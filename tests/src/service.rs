//! A service spawned in-process on ports the system picks, against a database of
//! its own, with an HTTP client to call it and an assertion for problem answers:
//! the `spawn_app` of a black-box suite, written once.
//!
//! ```ignore
//! let service = TestService::<Shop>::spawn(TestDatabase::sqlite(), |_| {}).await;
//! let response = service.api().get("/api/products/not-an-id").await;
//! assert_problem(response, 400, "invalid_path").await;
//! service.stop().await;
//! ```

use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use strata_app_api::config::Environment;
use strata_runtime::{Running, Service, Settings, load_settings, start};

use crate::database::TestDatabase;

/// A running service and what it runs on.
pub struct TestService<S: Service> {
    running: Option<Running<S>>,
    database: Arc<TestDatabase>,
    api: ApiClient,
}

impl<S: Service> std::fmt::Debug for TestService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestService")
            .field("service", &S::name())
            .field("api", &self.api.base)
            .finish_non_exhaustive()
    }
}

impl<S: Service> TestService<S> {
    /// Starts `S` with its test configuration on `database`, after `customize`
    /// changed the settings; the API is the router served as `api`.
    ///
    /// # Panics
    /// When the configuration does not load or the service does not start.
    pub async fn spawn(database: TestDatabase, customize: impl FnOnce(&mut Settings<S>)) -> Self {
        Self::spawn_on(Arc::new(database), customize).await
    }

    /// [`TestService::spawn`] on a database other instances may share.
    ///
    /// # Panics
    /// When the configuration does not load or the service does not start.
    pub async fn spawn_on(
        database: Arc<TestDatabase>,
        customize: impl FnOnce(&mut Settings<S>),
    ) -> Self {
        let mut settings = load_settings::<S>(Environment::Test, None, Some(Vec::new()))
            .unwrap_or_else(|error| panic!("the test configuration of {}: {error}", S::name()))
            .into_value();
        settings.service.database_url = database.url().into();
        settings.service.api_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        customize(&mut settings);
        let running = start::<S>(Environment::Test, settings)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{} starts: {}",
                    S::name(),
                    strata_app_api::application::error_chain(&error)
                )
            });
        let api = ApiClient::new(format!(
            "http://{}",
            running
                .addr("api")
                .expect("the service serves a router named `api`")
        ));
        Self {
            running: Some(running),
            database,
            api,
        }
    }

    /// A client of the API.
    #[must_use]
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The base URL of the router served as `name` (`http://127.0.0.1:41234`).
    ///
    /// # Panics
    /// When no router has that name, or after [`TestService::stop`].
    #[must_use]
    pub fn base_url(&self, name: &str) -> String {
        let addr = self
            .running()
            .addr(name)
            .unwrap_or_else(|| panic!("{} serves no router named `{name}`", S::name()));
        format!("http://{addr}")
    }

    /// The running service.
    ///
    /// # Panics
    /// After [`TestService::stop`].
    #[must_use]
    pub fn running(&self) -> &Running<S> {
        self.running.as_ref().expect("the service is running")
    }

    /// The test's database.
    #[must_use]
    pub fn database(&self) -> &Arc<TestDatabase> {
        &self.database
    }

    /// Stops the service, letting requests in flight finish.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// An HTTP client of one base URL, optionally sending a bearer token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    bearer: Option<String>,
}

impl ApiClient {
    /// A client of `base` (`http://127.0.0.1:41234`).
    #[must_use]
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
            bearer: None,
        }
    }

    /// The same client sending `token` as `Authorization: Bearer`.
    #[must_use]
    pub fn with_bearer(&self, token: &str) -> Self {
        Self {
            bearer: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The URL of `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, with the bearer token if there is one, to finish and
    /// send.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET path`.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn get(&self, path: &str) -> Response {
        send(self.request(Method::GET, path)).await
    }

    /// `POST path` with `body` as JSON.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        send(self.request(Method::POST, path).json(body)).await
    }

    /// `PUT path` with `body` as JSON.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn put(&self, path: &str, body: &Value) -> Response {
        send(self.request(Method::PUT, path).json(body)).await
    }

    /// `DELETE path`.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn delete(&self, path: &str) -> Response {
        send(self.request(Method::DELETE, path)).await
    }
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("the request is sent")
}

/// Asserts that `response` is an RFC 9457 problem with `status` and the stable
/// `code`, and answers the problem document for further checks.
///
/// # Panics
/// When it is not.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(
        actual, status,
        "expected {status} {code}, got {actual}: {text}"
    );
    assert!(
        content_type.starts_with("application/problem+json"),
        "expected problem+json, got {content_type:?}: {text}"
    );
    let problem: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("a problem document ({error}): {text}"));
    assert_eq!(problem["code"], code, "{problem}");
    assert_eq!(problem["status"], status, "{problem}");
    problem
}

/// Who a probe of [`assert_callers_are_asked_first`] calls as.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// No credentials.
    Anonymous,
    /// A bearer token granting `permissions`.
    Holding {
        /// The access token.
        token: &'a str,
        /// The permissions it grants.
        permissions: &'a [&'a str],
    },
}

/// Checks that `document`'s operations decide who may call before they read
/// anything the caller sent, and that the document says so truthfully.
///
/// Every operation is called as `caller` with a request wrong in every way it
/// can be: a body that is not JSON, query values and path ids that do not
/// parse, an `Idempotency-Key` that is not one. An operation that declares
/// `security` answers 401 to an anonymous caller and 403 to one lacking a
/// permission its requirements name (OpenAPI 3.1 lets a bearer requirement
/// list the permissions it needs); one that does not declare it never answers
/// 401 or 403 to such a request. One line per operation that does otherwise.
///
/// # Panics
/// When an operation does otherwise, or a request cannot be sent.
pub async fn assert_callers_are_asked_first(api: &ApiClient, document: &Value, caller: Caller<'_>) {
    let client = match caller {
        Caller::Anonymous => ApiClient::new(api.base.clone()),
        Caller::Holding { token, .. } => api.with_bearer(token),
    };
    let mut failures = Vec::new();
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let Ok(verb) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            if !matches!(
                verb,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                continue;
            }
            let expected = expected_refusal(operation, caller);
            let url = garbled_url(path, operation);
            let response = send(
                client
                    .request(verb.clone(), &url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("idempotency-key", "not a key")
                    .body("{\"not json"),
            )
            .await;
            let status = response.status().as_u16();
            let wrong = match expected {
                Some(refusal) => status != refusal,
                None => status == 401 || status == 403,
            };
            if wrong {
                failures.push(format!(
                    "{verb} {path}: answered {status} to a garbled request, expected {}",
                    expected.map_or_else(
                        || "anything but 401/403 (the document declares no security)".to_owned(),
                        |refusal| format!("{refusal} before the request is read"),
                    )
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// 401 or 403 when `operation` requires what `caller` does not have; `None`
/// when it lets `caller` through to read the request.
fn expected_refusal(operation: &Value, caller: Caller<'_>) -> Option<u16> {
    let requirements = operation["security"].as_array()?;
    if requirements.is_empty()
        || requirements.iter().any(|requirement| {
            requirement
                .as_object()
                .is_some_and(serde_json::Map::is_empty)
        })
    {
        return None;
    }
    let Caller::Holding { permissions, .. } = caller else {
        return Some(401);
    };
    let satisfied = requirements.iter().any(|requirement| {
        requirement
            .as_object()
            .into_iter()
            .flatten()
            .all(|(_, scopes)| {
                scopes.as_array().into_iter().flatten().all(|scope| {
                    scope
                        .as_str()
                        .is_some_and(|scope| permissions.contains(&scope))
                })
            })
    });
    (!satisfied).then_some(403)
}

/// `path` with every path parameter and query parameter given a value that
/// does not parse as anything but text.
fn garbled_url(path: &str, operation: &Value) -> String {
    let mut url = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        url.push_str(&rest[..open]);
        url.push_str("not-an-id%20%25");
        rest = rest[open..]
            .find('}')
            .map_or("", |close| &rest[open + close + 1..]);
    }
    url.push_str(rest);
    let query: Vec<String> = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|parameter| parameter["in"] == "query")
        .filter_map(|parameter| parameter["name"].as_str())
        .map(|name| format!("{name}=%25garbled%00"))
        .collect();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    url
}
