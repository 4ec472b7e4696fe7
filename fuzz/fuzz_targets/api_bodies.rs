//! Every operation of the shop's OpenAPI document, called through the whole
//! API stack (routing, extractors, authentication, idempotency keys,
//! validation, use cases, an SQLite database) with a generated JSON body,
//! query string, path segment and `Idempotency-Key`, as nobody, a customer
//! or the administrator. No answer is a 5xx but a 503 with `Retry-After`;
//! every refusal is `application/problem+json` with a stable `code`.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, header};
use http_body_util::BodyExt;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use shop_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    operations: Vec<(Method, String)>,
    product: String,
    tokens: Mutex<(Instant, String, String)>,
}

const CUSTOMER: &str = "fuzz@shop.test";

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let (app, operations, product, admin, customer) = runtime.block_on(async {
            let app = shop_tests::spawn_app_with(|settings| {
                settings.service.http.client_limit.enabled = false;
            })
            .await;
            let document: Value = app
                .client
                .get(app.api_url("/openapi.json"))
                .send()
                .await
                .expect("the document")
                .json()
                .await
                .expect("JSON");
            let mut operations = Vec::new();
            for (path, item) in document["paths"].as_object().expect("paths") {
                for method in item.as_object().expect("an item").keys() {
                    if let Ok(method) = method.to_uppercase().parse::<Method>() {
                        operations.push((method, path.clone()));
                    }
                }
            }
            operations
                .sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
            let created = app
                .post_as_admin(
                    "/api/products",
                    &json!({
                        "name": "Fuzzed tea",
                        "sku": "FUZZ-TEA",
                        "price": { "amount_minor": 500, "currency": "EUR" },
                        "stock": 1000
                    }),
                )
                .await;
            let product: Value = created.json().await.expect("a product");
            let admin = app.admin_token().await.to_owned();
            let customer = app.customer(CUSTOMER).await.access;
            (
                app,
                operations,
                product["id"].as_str().expect("an id").to_owned(),
                admin,
                customer,
            )
        });
        Fixture {
            runtime,
            app,
            operations,
            product,
            tokens: Mutex::new((Instant::now(), admin, customer)),
        }
    })
}

#[derive(Debug, Arbitrary)]
struct Input {
    operation: u8,
    who: u8,
    known_id: bool,
    segment: String,
    query: String,
    key: Option<String>,
    json: bool,
    body: Vec<u8>,
}

/// `text` as one path segment.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let fixture = fixture();
    let (method, template) =
        &fixture.operations[usize::from(input.operation) % fixture.operations.len()];
    let mut path = String::new();
    for part in template.split('/').skip(1) {
        path.push('/');
        if part.starts_with('{') {
            if input.known_id {
                path.push_str(&fixture.product);
            } else {
                path.push_str(&segment(&input.segment));
            }
        } else {
            path.push_str(part);
        }
    }
    if !input.query.is_empty() {
        path.push('?');
        path.push_str(&input.query);
    }
    let Ok(mut request) = Request::builder()
        .method(method.clone())
        .uri(&path)
        .body(Body::from(input.body.clone()))
    else {
        // Not a URI a client could send.
        return;
    };
    let (admin, customer) = {
        let mut tokens = fixture.tokens.lock().expect("tokens");
        // Access tokens last minutes: a long run signs in again.
        if tokens.0.elapsed() > Duration::from_secs(300) {
            let (admin, customer) = fixture.runtime.block_on(async {
                let admin = fixture.app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
                let customer = fixture
                    .app
                    .sign_in(CUSTOMER, &format!("password of {CUSTOMER}"))
                    .await;
                (admin.access, customer.access)
            });
            *tokens = (Instant::now(), admin, customer);
        }
        (tokens.1.clone(), tokens.2.clone())
    };
    let headers = request.headers_mut();
    match input.who % 3 {
        1 => {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {customer}")).expect("a header"),
            );
        }
        2 => {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {admin}")).expect("a header"),
            );
        }
        _ => {}
    }
    if let Some(key) = &input.key
        && let Ok(value) = HeaderValue::from_bytes(key.as_bytes())
    {
        headers.insert("idempotency-key", value);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if input.json {
            "application/json"
        } else {
            "text/plain"
        }),
    );
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));

    let router = fixture.app.api_router().clone();
    let (status, content_type, retry_after, body) = fixture.runtime.block_on(async move {
        let response = router.oneshot(request).await.expect("an answer");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let retry_after = response.headers().contains_key(header::RETRY_AFTER);
        let body = response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        (status, content_type, retry_after, body)
    });
    let shown = String::from_utf8_lossy(&body);
    if status.is_server_error() {
        assert!(
            status.as_u16() == 503 && retry_after,
            "{method} {path} answered {status}: {shown}"
        );
    }
    if status.is_client_error() || status.is_server_error() {
        assert!(
            content_type.starts_with("application/problem+json"),
            "{method} {path} answered {status} as {content_type:?}: {shown}"
        );
        let problem: Value = serde_json::from_slice(&body).expect("a problem is JSON");
        assert!(
            problem["code"]
                .as_str()
                .is_some_and(|code| !code.is_empty()),
            "{method} {path} answered {status} without a code: {shown}"
        );
    }
});
