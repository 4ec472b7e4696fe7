//! Liveness and readiness.
//!
//! * `GET /health/live` (and `GET /health`) answers 200 while the process
//!   serves requests at all: a failing liveness probe means "restart me".
//! * `GET /health/ready` runs every [`HealthCheck`] at once, each within a time
//!   limit, and answers 200 when all pass, 503 when any fails, with each
//!   dependency's state: a failing readiness probe means "send me no traffic
//!   for now", and it recovers by itself when the dependency does.
//!
//! A check's failure is logged with its cause; the answer says only `down` and
//! whether it failed or timed out, so a public probe leaks no connection detail.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// Why a dependency is not usable.
pub type CheckError = Box<dyn std::error::Error + Send + Sync>;

/// One dependency the service needs in order to serve: a database, a cache, a
/// broker. Implement it for an adapter, or wrap a closure with [`check_fn`].
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// The dependency's name in the readiness answer (`database`, `redis`).
    fn name(&self) -> &str;

    /// Succeeds when the dependency answers; as cheap as possible (`SELECT 1`).
    ///
    /// # Errors
    /// Why the dependency cannot be used now.
    async fn check(&self) -> Result<(), CheckError>;
}

/// A [`HealthCheck`] named `name` that runs `check`.
pub fn check_fn<F, Fut, E>(name: impl Into<String>, check: F) -> impl HealthCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<CheckError>,
{
    FnCheck {
        name: name.into(),
        check,
    }
}

struct FnCheck<F> {
    name: String,
    check: F,
}

#[async_trait]
impl<F, Fut, E> HealthCheck for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<CheckError>,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), CheckError> {
        (self.check)().await.map_err(Into::into)
    }
}

/// The checks readiness runs, and how long each may take. Clones share the
/// checks: one added later (a background worker's, once it is known) is run by
/// every clone, the one the routes hold included.
#[derive(Clone)]
pub struct Readiness {
    checks: Arc<RwLock<Vec<Arc<dyn HealthCheck>>>>,
    timeout: Duration,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .checks()
            .iter()
            .map(|check| check.name().to_owned())
            .collect();
        f.debug_struct("Readiness")
            .field("checks", &names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// No checks yet; each check gets two seconds.
    #[must_use]
    pub fn new() -> Self {
        Self {
            checks: Arc::new(RwLock::new(Vec::new())),
            timeout: Duration::from_secs(2),
        }
    }

    /// Adds `check`.
    #[must_use]
    pub fn with(self, check: impl HealthCheck) -> Self {
        self.add(check);
        self
    }

    /// Adds `check`, for this readiness and every clone of it.
    pub fn add(&self, check: impl HealthCheck) {
        self.checks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(check));
    }

    fn checks(&self) -> Vec<Arc<dyn HealthCheck>> {
        self.checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Gives each check `timeout` before it counts as down. Keep it below the
    /// probe's own timeout, so the probe gets an answer that names the culprit.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs every check at once and reports each dependency's state.
    pub async fn report(&self) -> ReadinessReport {
        let runs = self.checks().into_iter().map(|check| {
            let timeout = self.timeout;
            async move {
                let started = Instant::now();
                let outcome = tokio::time::timeout(timeout, check.check()).await;
                let elapsed_ms = started.elapsed().as_secs_f64() * 1_000.0;
                let state = match outcome {
                    Ok(Ok(())) => DependencyState::up(elapsed_ms),
                    Ok(Err(error)) => {
                        tracing::warn!(
                            dependency = check.name(),
                            error = %crate::application::error_chain(error.as_ref()),
                            "readiness check failed"
                        );
                        DependencyState::down("failed", elapsed_ms)
                    }
                    Err(_) => {
                        tracing::warn!(
                            dependency = check.name(),
                            timeout_ms = timeout.as_millis(),
                            "readiness check timed out"
                        );
                        DependencyState::down("timed out", elapsed_ms)
                    }
                };
                (check.name().to_owned(), state)
            }
        });
        let checks: BTreeMap<String, DependencyState> = join_all(runs).await.into_iter().collect();
        let ready = checks.values().all(|state| state.status == "up");
        ReadinessReport {
            status: if ready { "ready" } else { "unready" },
            checks,
        }
    }
}

/// Runs `futures` concurrently on this task and collects their outputs in order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The readiness answer: `ready` or `unready`, and each dependency's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadinessReport {
    /// `ready` when every dependency is up, `unready` otherwise.
    #[cfg_attr(feature = "openapi", schema(example = "ready"))]
    pub status: &'static str,
    /// Each dependency by name.
    pub checks: BTreeMap<String, DependencyState>,
}

impl ReadinessReport {
    /// Whether every dependency is up.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

/// One dependency's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DependencyState {
    /// `up` or `down`.
    pub status: &'static str,
    /// For a dependency that is down: `failed` or `timed out`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// How long the check took, in milliseconds.
    pub duration_ms: f64,
}

impl DependencyState {
    fn up(duration_ms: f64) -> Self {
        Self {
            status: "up",
            reason: None,
            duration_ms,
        }
    }

    fn down(reason: &'static str, duration_ms: f64) -> Self {
        Self {
            status: "down",
            reason: Some(reason),
            duration_ms,
        }
    }
}

/// The liveness answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Liveness {
    /// Always `ok`.
    #[cfg_attr(feature = "openapi", schema(example = "ok"))]
    pub status: &'static str,
}

/// The process is up and serving requests.
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/health",
    tag = "health",
    operation_id = "health",
    responses((status = 200, description = "The process is serving requests", body = Liveness)),
))]
pub async fn health() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// The process is up and serving requests: the liveness probe.
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    operation_id = "health_live",
    responses((status = 200, description = "The process is serving requests", body = Liveness)),
))]
pub async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Whether every dependency answers: the readiness probe.
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    operation_id = "health_ready",
    responses(
        (status = 200, description = "Every dependency is up", body = ReadinessReport),
        (status = 503, description = "`not_ready`: a dependency is down or timed out; `checks` holds each dependency's state", body = crate::http::Problem, content_type = "application/problem+json"),
    ),
))]
pub async fn ready(Extension(readiness): Extension<Readiness>) -> Response {
    let report = readiness.report().await;
    if report.is_ready() {
        return (StatusCode::OK, Json(report)).into_response();
    }
    let mut response = crate::http::Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready")
        .with_detail("a dependency is down or timed out")
        .with_extension(
            "checks",
            serde_json::to_value(&report.checks).unwrap_or_default(),
        )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("5"),
    );
    response
}

/// `/health`, `/health/live` and `/health/ready` over `readiness`, for a router
/// of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .layer(Extension(readiness))
}

/// The same routes with their OpenAPI descriptions.
#[cfg(feature = "openapi")]
pub fn api_routes<S: Clone + Send + Sync + 'static>(
    readiness: Readiness,
) -> utoipa_axum::router::OpenApiRouter<S> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(health))
        .routes(utoipa_axum::routes!(live))
        .routes(utoipa_axum::routes!(ready))
        .layer(Extension(readiness))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    use super::*;

    async fn ask(readiness: Readiness) -> (StatusCode, serde_json::Value) {
        let response = routes::<()>(readiness)
            .oneshot(
                axum::http::Request::builder()
                    .uri("/health/ready")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let status = response.status();
        let body = to_bytes(response.into_body(), 4_096).await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    #[tokio::test]
    async fn readiness_follows_its_dependencies_without_a_restart() {
        let up = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&up);
        let readiness = Readiness::new().with(check_fn("database", move || {
            let up = flag.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err(std::io::Error::other("connection refused"))
                }
            }
        }));

        let (status, body) = ask(readiness.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["database"]["status"], "up");

        up.store(false, Ordering::SeqCst);
        let (status, body) = ask(readiness.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "not_ready");
        assert_eq!(body["checks"]["database"]["status"], "down");
        assert_eq!(body["checks"]["database"]["reason"], "failed");
        assert!(
            !body.to_string().contains("refused"),
            "the cause stays in the log"
        );

        up.store(true, Ordering::SeqCst);
        let (status, _) = ask(readiness).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_check_that_hangs_is_down_within_the_time_limit() {
        let readiness = Readiness::new()
            .timeout(Duration::from_millis(50))
            .with(check_fn("slow", || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<(), CheckError>(())
            }))
            .with(check_fn("fast", || async { Ok::<(), CheckError>(()) }));
        let started = Instant::now();
        let (status, body) = ask(readiness).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["slow"]["reason"], "timed out");
        assert_eq!(body["checks"]["fast"]["status"], "up");
    }

    #[tokio::test]
    async fn liveness_answers_on_both_paths() {
        for path in ["/health", "/health/live"] {
            let response = routes::<()>(Readiness::new())
                .oneshot(
                    axum::http::Request::builder()
                        .uri(path)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
}
