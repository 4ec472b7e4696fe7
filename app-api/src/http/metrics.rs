//! Request metrics for every route, and `GET /metrics` in the Prometheus text
//! format. See [`crate::metrics`] for what is recorded.

use std::time::Instant;

use axum::Router;
use axum::extract::{Extension, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::{CONTENT_TYPE, Metrics};

/// Counts and times every request `router` answers, by method, route template
/// and status. Apply it last (outermost), so requests refused by the rate
/// limit, authentication or the timeout are counted too.
pub fn with_request_metrics(router: Router, metrics: Metrics) -> Router {
    router.layer(axum::middleware::from_fn_with_state(metrics, record))
}

async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Every metric, in the Prometheus text format.
#[cfg_attr(feature = "openapi", utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((
        status = 200,
        description = "Every metric, in the Prometheus text format (version 0.0.4)",
        body = String,
        content_type = "text/plain; version=0.0.4",
    )),
))]
pub async fn metrics(Extension(metrics): Extension<Metrics>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        metrics.render(),
    )
        .into_response()
}

/// `GET /metrics` over `metrics`, for a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(metrics: Metrics) -> Router<S> {
    Router::new()
        .route("/metrics", get(self::metrics))
        .layer(Extension(metrics))
}

/// The same route with its OpenAPI description.
#[cfg(feature = "openapi")]
pub fn api_routes<S: Clone + Send + Sync + 'static>(
    metrics: Metrics,
) -> utoipa_axum::router::OpenApiRouter<S> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(self::metrics))
        .layer(Extension(metrics))
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_route_template_and_served_as_text() {
        let registry = Metrics::new();
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .merge(routes(registry.clone()));
        let app = with_request_metrics(app, registry);
        for path in ["/items/1", "/items/2", "/nothing-here"] {
            let _ = app
                .clone()
                .oneshot(
                    axum::http::Request::builder()
                        .uri(path)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await;
        }
        let response = app
            .oneshot(
                axum::http::Request::builder()
                    .uri("/metrics")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(
                "http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1"
            ),
            "{text}"
        );
    }
}
