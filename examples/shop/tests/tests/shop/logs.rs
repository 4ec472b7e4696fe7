//! What the shop writes to its log: enough to follow a request, never a secret.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use serde_json::json;
use shop_tests::{ADMIN_PASSWORD, spawn_app};
use tracing_subscriber::fmt::MakeWriter;

/// Every log line written in this test binary, as JSON, at every level.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn captured_logs() -> CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .try_init()
            .expect("the first log subscriber of this test binary");
        logs
    })
    .clone()
}

#[tokio::test]
async fn bearer_tokens_and_passwords_never_reach_the_log() {
    let logs = captured_logs();
    let app = spawn_app().await;
    let token = app.admin_token().await.to_owned();
    let password = "hunter2-correct-horse-battery";

    let accepted = app
        .client
        .post(app.api_url("/api/products"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("x-request-id", "log-test-accepted")
        .json(&json!({
            "name": "Tea pot",
            "sku": "TEA-LOG-1",
            "price": { "amount_minor": 1_000, "currency": "EUR" },
            "stock": 1
        }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(accepted.status(), StatusCode::CREATED);

    // A secret sent where a number belongs, and in a query string.
    let rejected = app
        .client
        .post(app.api_url(&format!("/api/products?access_token={token}")))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("x-request-id", "log-test-rejected")
        .json(&json!({
            "name": password,
            "sku": "TEA-LOG-2",
            "price": { "amount_minor": password, "currency": "EUR" },
            "stock": 1
        }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(rejected.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = rejected.text().await.expect("a problem document");
    assert!(
        !body.contains(password),
        "the problem echoes the secret: {body}"
    );
    app.stop().await;

    let text = logs.text();
    assert!(
        text.contains("log-test-accepted") && text.contains("log-test-rejected"),
        "both requests were logged with their ids:\n{text}"
    );
    assert!(
        text.contains("catalog.create_product"),
        "the use case span is logged"
    );
    assert!(
        text.lines()
            .any(|line| line.contains("catalog.create_product")
                && line.contains("\"principal\":\"")
                && line.contains("\"outcome\":\"ok\"")),
        "the use case span names who ran it and how it ended:\n{text}"
    );
    assert!(
        !text.contains(&token),
        "a bearer token reached the log:\n{text}"
    );
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        !text.contains(signature),
        "a token's signature reached the log"
    );
    assert!(
        !text.contains(ADMIN_PASSWORD),
        "the password used to sign in reached the log"
    );
    assert!(
        !text.contains(password),
        "a password reached the log:\n{text}"
    );
}
