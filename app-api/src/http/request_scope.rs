use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use super::Problem;
use crate::application::{RequestContext, TraceContext};

/// The request-id header, accepted from clients and proxies and echoed back.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The W3C Trace Context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The idempotency-key header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// How the HTTP layers treat every request.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// How long a request may take before it is answered 503 `request_timeout`
    /// (and its unit of work, if any, rolled back).
    pub request_timeout: Duration,
    /// Origins allowed to call from a browser; empty means same-origin only.
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// The reverse proxies whose forwarding header says who the client is
    /// (see [`super::client_address`]); none by default.
    pub trusted_proxies: super::TrustedProxies,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
            trusted_proxies: super::TrustedProxies::default(),
        }
    }
}

/// Wraps `router` in the layers every Strata API wants, outermost first:
/// CORS; the request scope (request id, trace context, deadline, timeout, one
/// access-log line per request); response compression; and a guard that turns a
/// panicking handler into a 500 problem while the server keeps serving.
pub fn with_standard_layers(router: Router, settings: HttpSettings) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(settings.cors_allowed_origins.clone()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::AUTHORIZATION,
            REQUEST_ID,
            TRACEPARENT,
            IDEMPOTENCY_KEY,
        ])
        .expose_headers([REQUEST_ID, TRACEPARENT]);
    router
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(settings),
            request_scope,
        ))
        .layer(cors)
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned());
    tracing::error!(panic = %message, "a handler panicked; its unit of work was rolled back");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        .with_detail("the server could not complete the request")
        .into_response()
}

async fn request_scope(
    State(settings): State<Arc<HttpSettings>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_acceptable_request_id(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let incoming = request
        .headers()
        .get(&TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse);
    let trace = incoming
        .as_ref()
        .map_or_else(TraceContext::start, TraceContext::child);
    let mut context = RequestContext::new(request_id.clone(), trace.clone())
        .with_deadline(started + settings.request_timeout);
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        context = context.with_client_addr(super::client_address(
            peer.ip(),
            request.headers(),
            &settings.trusted_proxies,
        ));
    }
    // Taken as sent, even when it is not text: a key that is not visible ASCII
    // is refused (400) by the use case, never silently ignored.
    if let Some(key) = request.headers().get(&IDEMPOTENCY_KEY) {
        context = context.with_idempotency_key(String::from_utf8_lossy(key.as_bytes()));
    }
    request.extensions_mut().insert(context);

    let method = request.method().clone();
    // The route template, not the raw URL: no ids, no query string, so nothing a
    // client put in the URL (such as a token) reaches the log.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "http_request",
        method = %method,
        route = %route,
        request_id = %request_id,
        trace_id = %trace.trace_id(),
    );
    #[cfg(feature = "otel")]
    if let Some(caller) = &incoming {
        crate::telemetry::continue_trace(&span, caller);
    }
    let mut response = match tokio::time::timeout(
        settings.request_timeout,
        next.run(request).instrument(span.clone()),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => {
            let mut response = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "request_timeout")
                .with_detail("the request took longer than the server allows")
                .into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
            response
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&trace.header_value()) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    tracing::info!(
        parent: &span,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1_000.0,
        "request finished"
    );
    response
}

/// A client-supplied request id is kept only when it is short, visible ASCII;
/// anything else is replaced so logs stay clean.
fn is_acceptable_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The request's context, put there by the request scope; a fresh one (with
/// new ids) when the route runs without the standard layers.
impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_else(Self::background))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::header;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app(settings: HttpSettings) -> Router {
        let routes = Router::new()
            .route(
                "/context",
                get(|context: RequestContext| async move {
                    format!("{} {}", context.request_id(), context.trace().trace_id())
                }),
            )
            .route("/big", get(|| async { "tea ".repeat(4_096) }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .route("/panic", get(explode));
        with_standard_layers(routes, settings)
    }

    async fn explode() -> &'static str {
        panic!("handler bug")
    }

    async fn send(router: Router, request: axum::http::Request<Body>) -> Response {
        router.oneshot(request).await.expect("infallible")
    }

    fn get_request(path: &str) -> axum::http::request::Builder {
        axum::http::Request::builder().uri(path)
    }

    fn header_of(response: &Response, name: &HeaderName) -> Option<String> {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    #[tokio::test]
    async fn a_request_id_is_generated_or_echoed_and_reaches_the_context() {
        let generated = send(
            app(HttpSettings::default()),
            get_request("/context")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        let id = header_of(&generated, &REQUEST_ID).expect("an id is always answered");
        let body = to_bytes(generated.into_body(), 1_024).await.expect("body");
        assert!(String::from_utf8_lossy(&body).starts_with(&id));

        let echoed = send(
            app(HttpSettings::default()),
            get_request("/context")
                .header(&REQUEST_ID, "client-id-42")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(
            header_of(&echoed, &REQUEST_ID).as_deref(),
            Some("client-id-42")
        );

        let replaced = send(
            app(HttpSettings::default()),
            get_request("/context")
                .header(&REQUEST_ID, "x".repeat(500))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_ne!(header_of(&replaced, &REQUEST_ID), Some("x".repeat(500)));
    }

    #[tokio::test]
    async fn an_incoming_trace_is_continued() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let response = send(
            app(HttpSettings::default()),
            get_request("/context")
                .header(&TRACEPARENT, incoming)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        let outgoing = header_of(&response, &TRACEPARENT).expect("a traceparent is answered");
        assert!(outgoing.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert_ne!(outgoing, incoming, "this service's own span id");
        let body = to_bytes(response.into_body(), 1_024).await.expect("body");
        assert!(String::from_utf8_lossy(&body).ends_with("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[tokio::test]
    async fn cors_answers_only_allowed_origins() {
        let settings = HttpSettings {
            cors_allowed_origins: vec![HeaderValue::from_static("https://shop.example")],
            ..HttpSettings::default()
        };
        let preflight = |origin: &'static str| {
            axum::http::Request::builder()
                .method(Method::OPTIONS)
                .uri("/context")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                .body(Body::empty())
                .expect("request")
        };
        let allowed = send(app(settings.clone()), preflight("https://shop.example")).await;
        assert_eq!(
            header_of(&allowed, &header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(),
            Some("https://shop.example")
        );
        let refused = send(app(settings), preflight("https://evil.example")).await;
        assert_eq!(
            header_of(&refused, &header::ACCESS_CONTROL_ALLOW_ORIGIN),
            None
        );
    }

    #[tokio::test]
    async fn responses_are_compressed_when_the_client_accepts_it() {
        let response = send(
            app(HttpSettings::default()),
            get_request("/big")
                .header(header::ACCEPT_ENCODING, "gzip")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(
            header_of(&response, &header::CONTENT_ENCODING).as_deref(),
            Some("gzip")
        );
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert!(body.len() < 4_096, "{} bytes is not compressed", body.len());
    }

    #[tokio::test]
    async fn a_request_over_its_time_is_a_503_problem() {
        let settings = HttpSettings {
            request_timeout: Duration::from_millis(50),
            ..HttpSettings::default()
        };
        let response = send(
            app(settings),
            get_request("/slow").body(Body::empty()).expect("request"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            header_of(&response, &header::RETRY_AFTER).as_deref(),
            Some("1")
        );
        let body = to_bytes(response.into_body(), 1_024).await.expect("body");
        assert!(String::from_utf8_lossy(&body).contains("request_timeout"));
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_problem_and_the_router_keeps_serving() {
        let router = app(HttpSettings::default());
        let panicked = send(
            router.clone(),
            get_request("/panic").body(Body::empty()).expect("request"),
        )
        .await;
        assert_eq!(panicked.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(header_of(&panicked, &REQUEST_ID).is_some());
        let body = to_bytes(panicked.into_body(), 1_024).await.expect("body");
        assert!(!String::from_utf8_lossy(&body).contains("handler bug"));

        let next = send(
            router,
            get_request("/context")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(next.status(), StatusCode::OK);
    }
}
