//! OpenTelemetry export (feature `otel`) against a collector stand-in on
//! loopback: what leaves the process is a real OTLP/HTTP protobuf request, the
//! spans of a request and its use case are in it, in the caller's trace, and
//! nothing waiting is lost when the export stops.
//!
//! Each test installs its subscriber for its own thread only, so the tests
//! neither see each other's spans nor disturb other suites.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::{get, post};
use strata_app_api::application::middleware::Logging;
use strata_app_api::application::{
    Access, AppError, Dispatcher, Query, QueryHandler, RequestContext, UseCaseContext,
};
use strata_app_api::http::{HttpSettings, TRACEPARENT, with_standard_layers};
use strata_app_api::telemetry::{OtlpExport, OtlpSettings, TelemetryError, otlp_layer};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt as _;
use validator::Validate;

const SERVICE: &str = "otlp-export-test";
const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// What the stand-in collector was sent: each request's content type and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Accepts `POST /v1/traces` as an OTLP/HTTP collector does, answering 200
/// with an empty (and so valid, empty) protobuf response.
struct Collector {
    addr: SocketAddr,
    received: Received,
}

impl Collector {
    async fn start() -> Self {
        let received = Received::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(received.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    fn settings(&self) -> OtlpSettings {
        OtlpSettings {
            endpoint: format!("http://{}", self.addr),
            service_name: SERVICE.into(),
        }
    }

    /// Every protobuf body received, joined: enough to look for names and ids.
    fn protobuf(&self) -> Vec<u8> {
        let received = self.received.lock().expect("received lock");
        assert!(!received.is_empty(), "the collector received nothing");
        for (content_type, _) in received.iter() {
            assert_eq!(content_type, "application/x-protobuf");
        }
        received.iter().flat_map(|(_, body)| body.clone()).collect()
    }
}

async fn receive(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    received
        .lock()
        .expect("received lock")
        .push((content_type, body.to_vec()));
    StatusCode::OK
}

/// The export to `collector`, its layer installed for this thread only.
fn export_to(collector: &Collector) -> (OtlpExport, DefaultGuard) {
    let (layer, export) = otlp_layer(&collector.settings()).expect("an exporter");
    let scope = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (export, scope)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
        .collect()
}

#[derive(Validate)]
struct Greeting {
    #[validate(length(min = 1))]
    name: String,
}

impl Query for Greeting {
    type Output = String;
    const NAME: &'static str = "greeting";
    const ACCESS: Access = Access::Anyone;
}

struct Greeter;

#[async_trait]
impl QueryHandler<Greeting> for Greeter {
    async fn ask(&self, _cx: &UseCaseContext, query: Greeting) -> Result<String, AppError> {
        Ok(format!("hello, {}", query.name))
    }
}

fn greeting_api() -> Router {
    let dispatcher = Arc::new(
        Dispatcher::builder()
            .middleware([Arc::new(Logging) as _])
            .query::<Greeting>(Arc::new(Greeter))
            .build(),
    );
    let routes = Router::new().route(
        "/greeting",
        get(move |context: RequestContext| async move {
            dispatcher
                .ask(&context, Greeting { name: "Ada".into() })
                .await
                .unwrap_or_else(|error| error.to_string())
        }),
    );
    with_standard_layers(routes, HttpSettings::default())
}

// Several threads: the export's client and the collector must make progress
// while the test waits on a flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_use_case_are_exported_in_the_callers_trace() {
    let collector = Collector::start().await;
    let (export, _scope) = export_to(&collector);

    let response = greeting_api()
        .oneshot(
            Request::get("/greeting")
                .header(
                    TRACEPARENT,
                    format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"),
                )
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);

    let (flushed, _export) = tokio::task::spawn_blocking(move || (export.flush(), export))
        .await
        .expect("flush thread");
    flushed.expect("flushed");

    let sent = collector.protobuf();
    for name in ["http_request", "use_case", "greeting", SERVICE] {
        assert!(contains(&sent, name.as_bytes()), "{name} was not exported");
    }
    assert!(
        contains(&sent, &hex_bytes(CALLER_TRACE_ID)),
        "the spans are not in the caller's trace"
    );
    assert!(
        contains(&sent, &hex_bytes(CALLER_SPAN_ID)),
        "the request span does not name the caller's span as its parent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_sends_the_spans_still_waiting() {
    let collector = Collector::start().await;
    let (export, _scope) = export_to(&collector);
    tracing::info_span!("left_at_shutdown").in_scope(|| tracing::info!("working"));

    tokio::task::spawn_blocking(move || export.shutdown())
        .await
        .expect("shutdown thread")
        .expect("shut down");

    assert!(contains(&collector.protobuf(), b"left_at_shutdown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_export_sends_the_spans_still_waiting() {
    let collector = Collector::start().await;
    let (export, _scope) = export_to(&collector);
    tracing::info_span!("left_at_drop").in_scope(|| tracing::info!("working"));

    tokio::task::spawn_blocking(move || drop(export))
        .await
        .expect("drop thread");

    assert!(contains(&collector.protobuf(), b"left_at_drop"));
}

#[test]
fn only_plain_http_endpoints_with_a_host_are_accepted() {
    let url = |endpoint: &str| {
        OtlpSettings {
            endpoint: endpoint.into(),
            service_name: SERVICE.into(),
        }
        .traces_url()
    };
    assert_eq!(
        url("http://collector:4318").expect("valid"),
        "http://collector:4318/v1/traces"
    );
    assert_eq!(
        url("http://collector:4318/").expect("valid"),
        "http://collector:4318/v1/traces"
    );
    assert_eq!(
        url("http://collector:4318/v1/traces").expect("valid"),
        "http://collector:4318/v1/traces"
    );
    for bad in [
        "https://collector:4318",
        "collector:4318",
        "http://",
        "http:///v1",
    ] {
        assert!(
            matches!(url(bad), Err(TelemetryError::Endpoint(_))),
            "{bad} was accepted"
        );
    }
    let reason = url("https://user:secret@collector")
        .expect_err("https")
        .to_string();
    assert!(reason.contains("without TLS"), "{reason}");
    assert!(!reason.contains("secret"), "{reason}");
}
