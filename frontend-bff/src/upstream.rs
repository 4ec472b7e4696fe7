use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

const REQUEST_ID: &str = "x-request-id";
const TRACEPARENT: &str = "traceparent";
const IDEMPOTENCY_KEY: &str = "idempotency-key";
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The browser request a BFF call is made for: its request id (kept, or made
/// here) and W3C trace context, forwarded upstream so the API's log lines join
/// the BFF's, and the browser's address, sent as `X-Forwarded-For` so the API
/// can limit each browser on its own once it trusts the BFF as a proxy
/// (`http.trusted_proxies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    request_id: String,
    traceparent: Option<String>,
    client: Option<std::net::IpAddr>,
}

impl Origin {
    /// The origin described by incoming `headers`: their `x-request-id` when it is
    /// short visible ASCII (else a new id) and their `traceparent`, if any.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let request_id = text(REQUEST_ID)
            .filter(|id| {
                !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        let traceparent = text(TRACEPARENT)
            .filter(|value| value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        Self {
            request_id,
            traceparent,
            client: None,
        }
    }

    /// The same origin, made on behalf of the browser at `client`.
    #[must_use]
    pub fn for_client(mut self, client: std::net::IpAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// The request id forwarded upstream.
    #[must_use]
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Adds the trace context and the client's address to `request`.
    fn describe(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(traceparent) = &self.traceparent {
            request = request.header(TRACEPARENT, traceparent);
        }
        if let Some(client) = self.client {
            request = request.header(X_FORWARDED_FOR, client.to_string());
        }
        request
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let origin = Self::from_headers(&parts.headers);
        Ok(
            match parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            {
                Some(axum::extract::ConnectInfo(peer)) => origin.for_client(peer.ip()),
                None => origin,
            },
        )
    }
}

/// An RFC 9457 problem the upstream answered with, as far as a page needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// The stable code, such as `out_of_stock` or `validation_failed`.
    #[serde(default)]
    pub code: String,
    /// A short summary.
    #[serde(default)]
    pub title: String,
    /// A sentence for a person, when the upstream gave one.
    #[serde(default)]
    pub detail: Option<String>,
    /// Field by field, for a refused input.
    #[serde(default)]
    pub errors: Vec<FieldProblem>,
}

/// One field's reason a request was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FieldProblem {
    /// The field's dotted path.
    #[serde(default)]
    pub field: String,
    /// A stable reason.
    #[serde(default)]
    pub code: String,
    /// A sentence for a person.
    #[serde(default)]
    pub message: String,
}

impl Problem {
    /// What to tell a person: the detail, else the title, else the code.
    #[must_use]
    pub fn message(&self) -> &str {
        match &self.detail {
            Some(detail) if !detail.is_empty() => detail,
            _ if !self.title.is_empty() => &self.title,
            _ => &self.code,
        }
    }

    /// The message for `field`, if the upstream refused it.
    #[must_use]
    pub fn field(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|error| error.field == field)
            .map(|error| error.message.as_str())
    }
}

/// Why a call to the upstream API did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is not an absolute http(s) URL.
    #[error("`{0}` is not an http:// or https:// URL")]
    InvalidBaseUrl(String),
    /// The upstream could not be reached or did not answer in time.
    #[error("the upstream API is unreachable")]
    Unreachable(#[source] reqwest::Error),
    /// The upstream answered with an error status.
    #[error("the upstream API answered {status}")]
    Status {
        /// The status it answered.
        status: u16,
        /// The problem it described, when it answered `application/problem+json`.
        problem: Option<Problem>,
    },
    /// The upstream's answer was not the JSON expected.
    #[error("the upstream API's answer could not be read: {0}")]
    Unreadable(String),
}

impl UpstreamError {
    /// Whether the upstream is down or overloaded rather than refusing this
    /// call: unreachable, timed out, or answering 502, 503 or 504.
    #[must_use]
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Status { status, .. } => matches!(status, 502..=504),
            Self::InvalidBaseUrl(_) | Self::Unreadable(_) => false,
        }
    }

    /// The status the upstream answered, if it answered one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem the upstream answered, if any.
    #[must_use]
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Status { problem, .. } => problem.as_ref(),
            _ => None,
        }
    }
}

/// One call to make: method, path, and what travels with it.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    path_and_query: String,
    body: Option<serde_json::Value>,
    bearer: Option<String>,
    idempotency_key: Option<String>,
}

impl Call {
    fn new(method: Method, path_and_query: impl Into<String>) -> Self {
        Self {
            method,
            path_and_query: path_and_query.into(),
            body: None,
            bearer: None,
            idempotency_key: None,
        }
    }

    /// `GET path_and_query` (starting with `/`).
    pub fn get(path_and_query: impl Into<String>) -> Self {
        Self::new(Method::GET, path_and_query)
    }

    /// `POST path` with a JSON `body`.
    pub fn post(path: impl Into<String>, body: serde_json::Value) -> Self {
        Self::new(Method::POST, path).json(body)
    }

    /// `POST path` with no body: an action on the resource at `path`.
    pub fn post_empty(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// `PUT path` with a JSON `body`.
    pub fn put(path: impl Into<String>, body: serde_json::Value) -> Self {
        Self::new(Method::PUT, path).json(body)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// Sends `body` as JSON.
    #[must_use]
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sends `token` as `Authorization: Bearer` (the user's, or a service's).
    #[must_use]
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Sends `key` as `Idempotency-Key`, which also lets an unsafe call be
    /// retried: the upstream replays the first answer instead of acting twice.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Whether sending it again cannot act twice: a safe or idempotent
    /// method, or any call that carries an idempotency key.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        ) || self.idempotency_key.is_some()
    }
}

/// What a successful call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// The status, such as 201 or 202.
    pub status: u16,
    /// The body, read as `T` (`null` when there was none).
    pub body: T,
}

/// How calls are made: the per-call timeout, and how often and how soon a
/// retryable call that met an outage is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPolicy {
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts after the first, for retryable calls only.
    pub retries: u32,
    /// The wait before the first retry; each further one doubles it.
    pub backoff: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(100),
        }
    }
}

/// A client for one upstream API (app-api): a bounded timeout on every call,
/// retries only for calls that cannot act twice, the browser request's id
/// and trace context forwarded.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base_url: String,
    policy: CallPolicy,
}

impl Upstream {
    /// A client for the API at `base_url`, such as `http://127.0.0.1:8080`,
    /// with the default [`CallPolicy`].
    ///
    /// # Errors
    /// When `base_url` is not an http(s) URL or the client cannot be built.
    pub fn new(base_url: impl Into<String>) -> Result<Self, UpstreamError> {
        Self::with_policy(base_url, CallPolicy::default())
    }

    /// A client for the API at `base_url` making calls as `policy` says.
    ///
    /// # Errors
    /// When `base_url` is not an http(s) URL or the client cannot be built.
    pub fn with_policy(
        base_url: impl Into<String>,
        policy: CallPolicy,
    ) -> Result<Self, UpstreamError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(UpstreamError::InvalidBaseUrl(base_url));
        }
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(2)))
            .build()
            .map_err(UpstreamError::Unreachable)?;
        Ok(Self {
            client,
            base_url,
            policy,
        })
    }

    /// The base URL calls are made against.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET`s `path_and_query` (starting with `/`) on behalf of the request
    /// `origin` and reads the JSON answer.
    ///
    /// # Errors
    /// When the upstream is unreachable, answers an error status, or answers
    /// something other than the expected JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        origin: &Origin,
        path_and_query: &str,
    ) -> Result<T, UpstreamError> {
        Ok(self.send(origin, Call::get(path_and_query)).await?.body)
    }

    /// `GET`s `path_and_query` as text (a metrics document, say), with the
    /// same retries as any read.
    ///
    /// # Errors
    /// When the upstream is unreachable or answers an error status.
    pub async fn get_text(
        &self,
        origin: &Origin,
        path_and_query: &str,
        bearer: Option<&str>,
    ) -> Result<String, UpstreamError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        self.with_retries(self.policy.retries, || async {
            let mut request =
                origin.describe(self.client.get(&url).header(REQUEST_ID, &origin.request_id));
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(UpstreamError::Unreachable)?;
            if !response.status().is_success() {
                return Err(UpstreamError::Status {
                    status: response.status().as_u16(),
                    problem: None,
                });
            }
            response
                .text()
                .await
                .map_err(|error| UpstreamError::Unreadable(error.to_string()))
        })
        .await
    }

    /// Makes `call` on behalf of `origin`; a retryable call that met an
    /// outage is tried again as the policy says.
    ///
    /// # Errors
    /// When the upstream is unreachable, answers an error status (its problem
    /// read when it sent one), or answers something other than a `T`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        origin: &Origin,
        call: Call,
    ) -> Result<Answer<T>, UpstreamError> {
        let retries = if call.is_retryable() {
            self.policy.retries
        } else {
            0
        };
        self.with_retries(retries, || self.attempt(origin, &call))
            .await
    }

    /// Runs `once` until it succeeds, fails other than by an outage, or
    /// `retries` more attempts were made, backing off between them.
    async fn with_retries<T, F, Fut>(&self, retries: u32, once: F) -> Result<T, UpstreamError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        let mut wait = self.policy.backoff;
        let mut attempt = 0;
        loop {
            match once().await {
                Err(error) if error.is_outage() && attempt < retries => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %error, "retrying an upstream call");
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                outcome => return outcome,
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        origin: &Origin,
        call: &Call,
    ) -> Result<Answer<T>, UpstreamError> {
        let url = format!("{}{}", self.base_url, call.path_and_query);
        let mut request = self
            .client
            .request(call.method.clone(), &url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(REQUEST_ID, &origin.request_id);
        request = origin.describe(request);
        if let Some(token) = &call.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(UpstreamError::Unreachable)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let problem = response.json::<Problem>().await.ok();
            tracing::warn!(method = %call.method, path = %call.path_and_query, status, code = problem.as_ref().map(|problem| problem.code.as_str()), "upstream answered an error");
            return Err(UpstreamError::Status { status, problem });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|error| UpstreamError::Unreadable(error.to_string()))?;
        let body = if bytes.is_empty() {
            serde_json::from_slice(b"null")
        } else {
            serde_json::from_slice(&bytes)
        };
        body.map(|body| Answer { status, body }).map_err(|error| {
            tracing::warn!(path = %call.path_and_query, error = %error, "upstream answer was not the JSON expected");
            UpstreamError::Unreadable(error.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn refuses_a_base_url_without_a_scheme() {
        assert!(matches!(
            Upstream::new("127.0.0.1:8080"),
            Err(UpstreamError::InvalidBaseUrl(_))
        ));
    }

    #[test]
    fn drops_a_trailing_slash_so_paths_join_cleanly() {
        let upstream = Upstream::new("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(upstream.base_url(), "http://127.0.0.1:8080");
    }

    fn origin() -> Origin {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, "page-req-1".parse().expect("valid header"));
        headers.insert(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("valid header"),
        );
        Origin::from_headers(&headers)
    }

    async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        (format!("http://{addr}"), server)
    }

    fn quick() -> CallPolicy {
        CallPolicy {
            timeout: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_reported_not_panicked() {
        // Nothing listens on port 1 here.
        let upstream = Upstream::with_policy("http://127.0.0.1:1", quick()).expect("valid");
        let result = upstream
            .get_json::<serde_json::Value>(&origin(), "/health")
            .await;
        let error = result.expect_err("nothing listens");
        assert!(matches!(error, UpstreamError::Unreachable(_)));
        assert!(error.is_outage());
    }

    #[tokio::test]
    async fn the_request_id_trace_context_token_and_key_travel_upstream() {
        let echo = axum::Router::new().route(
            "/echo",
            axum::routing::post(|headers: HeaderMap, body: String| async move {
                let text = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                axum::Json(serde_json::json!({
                    "request_id": text(REQUEST_ID),
                    "traceparent": text(TRACEPARENT),
                    "authorization": text("authorization"),
                    "key": text(IDEMPOTENCY_KEY),
                    "forwarded_for": text(X_FORWARDED_FOR),
                    "body": body,
                }))
            }),
        );
        let (base, server) = serve(echo).await;
        let upstream = Upstream::new(base).expect("valid");
        let call = Call::post("/echo", serde_json::json!({"a": 1}))
            .bearer("t0ken")
            .idempotency_key("k-1");
        let browser = std::net::IpAddr::from([203, 0, 113, 7]);
        let seen: Answer<serde_json::Value> = upstream
            .send(&origin().for_client(browser), call)
            .await
            .expect("echoed");

        assert_eq!(seen.status, 200);
        assert_eq!(seen.body["request_id"], "page-req-1");
        assert_eq!(
            seen.body["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(seen.body["authorization"], "Bearer t0ken");
        assert_eq!(seen.body["key"], "k-1");
        assert_eq!(seen.body["forwarded_for"], "203.0.113.7");
        assert_eq!(seen.body["body"], "{\"a\":1}");
        server.abort();
    }

    /// A route that answers 503 `failures` times, then 201, counting calls.
    fn flaky(failures: u32) -> (axum::Router, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let router = axum::Router::new().route(
            "/flaky",
            axum::routing::any(move || {
                let calls = counted.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < failures {
                        StatusCode::SERVICE_UNAVAILABLE.into_response()
                    } else {
                        (
                            StatusCode::CREATED,
                            axum::Json(serde_json::json!({"ok": true})),
                        )
                            .into_response()
                    }
                }
            }),
        );
        (router, calls)
    }

    #[tokio::test]
    async fn a_read_that_meets_an_outage_is_tried_again() {
        let (router, calls) = flaky(2);
        let (base, server) = serve(router).await;
        let upstream = Upstream::with_policy(base, quick()).expect("valid");
        let answer: Answer<serde_json::Value> = upstream
            .send(&origin(), Call::get("/flaky"))
            .await
            .expect("the third attempt succeeds");
        assert_eq!(answer.status, 201);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        server.abort();
    }

    #[tokio::test]
    async fn an_unsafe_call_is_sent_once_unless_it_carries_an_idempotency_key() {
        let (router, calls) = flaky(1);
        let (base, server) = serve(router).await;
        let upstream = Upstream::with_policy(base, quick()).expect("valid");
        let error = upstream
            .send::<serde_json::Value>(&origin(), Call::post("/flaky", serde_json::json!({})))
            .await
            .expect_err("no second attempt");
        assert_eq!(error.status(), Some(503));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let answer: Answer<serde_json::Value> = upstream
            .send(
                &origin(),
                Call::post("/flaky", serde_json::json!({})).idempotency_key("k"),
            )
            .await
            .expect("retried with its key");
        assert_eq!(answer.status, 201);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        server.abort();
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried_and_its_problem_is_read() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let router = axum::Router::new().route(
            "/orders",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        StatusCode::CONFLICT,
                        [("content-type", "application/problem+json")],
                        r#"{"type":"about:blank","title":"Conflict","status":409,"code":"out_of_stock","detail":"Not enough stock","errors":[{"field":"items","code":"range","message":"too many"}]}"#,
                    )
                }
            }),
        );
        let (base, server) = serve(router).await;
        let upstream = Upstream::with_policy(base, quick()).expect("valid");
        let error = upstream
            .send::<serde_json::Value>(&origin(), Call::get("/orders"))
            .await
            .expect_err("refused");
        assert!(!error.is_outage());
        let problem = error.problem().expect("a problem");
        assert_eq!(problem.code, "out_of_stock");
        assert_eq!(problem.message(), "Not enough stock");
        assert_eq!(problem.field("items"), Some("too many"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        server.abort();
    }

    #[tokio::test]
    async fn an_empty_answer_reads_as_null() {
        let router = axum::Router::new().route(
            "/gone",
            axum::routing::delete(|| async { StatusCode::NO_CONTENT }),
        );
        let (base, server) = serve(router).await;
        let upstream = Upstream::new(base).expect("valid");
        let answer: Answer<Option<serde_json::Value>> = upstream
            .send(&origin(), Call::delete("/gone"))
            .await
            .expect("no content");
        assert_eq!(answer.status, 204);
        assert_eq!(answer.body, None);
        server.abort();
    }

    #[test]
    fn a_missing_or_unusable_request_id_is_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, "has space".parse().expect("valid header"));
        let origin = Origin::from_headers(&headers);
        assert_ne!(origin.request_id(), "has space");
        assert!(!origin.request_id().is_empty());
    }
}
