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
