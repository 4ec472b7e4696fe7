//! What an operator relies on: readiness that follows the database, metrics, and
//! the docs page.

use std::time::Duration;

use serde_json::Value;
use shop_tests::{TestApp, TestDatabase, client_from, spawn_app, spawn_app_on, spawn_app_with};

async fn readiness(app: &TestApp) -> (reqwest::StatusCode, Value) {
    let response = app
        .client
        .get(app.api_url("/health/ready"))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.json().await.expect("a JSON report"))
}

#[tokio::test]
async fn readiness_reports_each_dependency_and_liveness_answers() {
    let app = spawn_app().await;
    let (status, report) = readiness(&app).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{report}");
    assert_eq!(report["status"], "ready");
    assert_eq!(report["checks"]["database"]["status"], "up");
    for worker in ["idempotency_key_purge", "session_purge"] {
        assert_eq!(
            report["checks"][format!("worker.{worker}")]["status"],
            "up",
            "{report}"
        );
    }
    for path in ["/health/live", "/health"] {
        let live = app
            .client
            .get(app.api_url(path))
            .send()
            .await
            .expect("request sent");
        assert_eq!(live.status(), reqwest::StatusCode::OK, "{path}");
    }
}

#[tokio::test]
#[cfg_attr(
    not(strata_postgres),
    ignore = "needs PostgreSQL: set STRATA_TEST_POSTGRES_URL"
)]
async fn readiness_turns_unhealthy_while_the_database_is_unreachable_and_recovers_without_a_restart()
 {
    let database = TestDatabase::postgres().await;
    let app = spawn_app_on(database).await;
    assert_eq!(readiness(&app).await.0, reqwest::StatusCode::OK);

    app.database().set_reachable(false).await;
    let (status, report) = readiness(&app).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["code"], "not_ready");
    assert_eq!(report["checks"]["database"]["status"], "down");
    let live = app
        .client
        .get(app.api_url("/health/live"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(
        live.status(),
        reqwest::StatusCode::OK,
        "an unreachable database is no reason to restart the process"
    );

    app.database().set_reachable(true).await;
    let mut recovered = false;
    for _ in 0..50 {
        if readiness(&app).await.0 == reqwest::StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "readiness did not recover once the database returned"
    );
    let products = app
        .client
        .get(app.api_url("/api/products"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(products.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status_and_time_use_cases() {
    let app = spawn_app().await;
    for path in ["/api/products", "/api/products", "/api/products/nope"] {
        let _ = app.client.get(app.api_url(path)).send().await;
    }
    let response = app
        .client
        .get(app.api_url("/metrics"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|value| value.starts_with("text/plain; version=0.0.4"))
    );
    let text = response.text().await.expect("text");
    for expected in [
        "http_requests_total{method=\"GET\",route=\"/api/products\",status=\"200\"} 2",
        "http_requests_total{method=\"GET\",route=\"/api/products/{id}\",status=\"404\"} 1",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/products\",status=\"200\",le=",
        "use_case_duration_seconds_count{use_case=\"catalog.list_products\",kind=\"query\",outcome=\"ok\"}",
        "db_pool_connections{pool=\"database\",state=\"idle\"}",
        "db_pool_max_connections{pool=\"database\"}",
        "db_pool_max_connections{pool=\"database_reads\"}",
        "worker_up{worker=\"session_purge\"} 1",
        "worker_runs_total{worker=\"idempotency_key_purge\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[tokio::test]
async fn the_docs_page_is_served_with_its_assets_from_the_binary() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let redirect = client
        .get(app.api_url("/docs"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(redirect.status(), reqwest::StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        redirect.headers()[reqwest::header::LOCATION],
        "/docs/index.html"
    );

    let page = app
        .client
        .get(app.api_url("/docs/index.html"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let html = page.text().await.expect("HTML");
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let response = app
            .client
            .get(app.api_url(&format!("/docs/{asset}")))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{asset}");
        if asset == "swagger-initializer.js" {
            let script = response.text().await.expect("text");
            assert!(
                script.contains("/openapi.json"),
                "the page loads this API's document"
            );
        }
    }
    let missing = app
        .client
        .get(app.api_url("/docs/nothing.js"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
}

async fn statuses(
    app: &TestApp,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
    count: usize,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let mut request = client.get(app.api_url("/api/products"));
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        statuses.push(
            request
                .send()
                .await
                .expect("request sent")
                .status()
                .as_u16(),
        );
    }
    statuses
}

#[tokio::test]
async fn the_request_limit_is_configuration_and_honours_only_trusted_proxies() {
    let app = spawn_app_with(|settings| {
        let limit = &mut settings.service.http.client_limit;
        limit.requests = 2;
        limit.burst = 2;
        limit.period = Duration::from_secs(3_600);
        settings.service.http.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a network")];
    })
    .await;
    let proxy = client_from("127.0.0.1");
    assert_eq!(
        statuses(&app, &proxy, Some("198.51.100.1"), 3).await,
        [200, 200, 429]
    );
    assert_eq!(
        statuses(&app, &proxy, Some("203.0.113.5, 198.51.100.2"), 2).await,
        [200, 200],
        "a client behind the proxy is its forwarded address, not what it claims"
    );
    assert_eq!(statuses(&app, &proxy, Some("198.51.100.2"), 1).await, [429]);
    // IPv6 clients behind the proxy share their /64.
    assert_eq!(
        statuses(&app, &proxy, Some("2001:db8:1:2::a"), 2).await,
        [200, 200]
    );
    assert_eq!(
        statuses(&app, &proxy, Some("2001:db8:1:2::b"), 1).await,
        [429]
    );

    // Anyone else's forwarding headers are ignored.
    let stranger = client_from("127.0.0.2");
    assert_eq!(
        statuses(&app, &stranger, Some("198.51.100.10"), 1).await,
        [200]
    );
    assert_eq!(
        statuses(&app, &stranger, Some("198.51.100.11"), 2).await,
        [200, 429]
    );
    app.stop().await;

    let unlimited = spawn_app_with(|settings| {
        settings.service.http.client_limit.enabled = false;
    })
    .await;
    let statuses = statuses(&unlimited, &client_from("127.0.0.3"), None, 300).await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    unlimited.stop().await;
}

#[tokio::test]
async fn a_client_sending_headers_one_byte_a_second_is_cut_off_and_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(|settings| {
        settings.service.http.header_read_timeout = Duration::from_secs(2);
    })
    .await;
    let address = app.api.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let mut sent = 0;
    let mut cut_off = false;
    for byte in b"GET /api/products HTTP/1.1\r\nhost: shop\r\n\r\n" {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        sent += 1;
        let mut buffer = [0_u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buffer)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the slow client kept its connection");
    assert!(sent < 10, "cut off only after {sent} bytes");
    let response = app
        .client
        .get(app.api_url("/api/products"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_product_created_over_http_has_its_event_relayed_and_counted() {
    let app = spawn_app().await;
    let created = app
        .post_as_admin(
            "/api/products",
            &serde_json::json!({
                "name": "Relayed kettle", "sku": "KET-RELAY-1",
                "price": { "amount_minor": 1_999, "currency": "EUR" }, "stock": 3
            }),
        )
        .await;
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    // The consumer's partitions take their leases in parallel: each is
    // reported once its first round has run, in no particular order.
    let expected: Vec<String> = [
        "outbox_pending 0",
        "outbox_dead_letters 0",
        "outbox_publish_failures_total 0",
        "worker_up{worker=\"outbox_relay\"} 1",
        "# TYPE consumer_behind_seconds gauge",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(
        (0..strata_runtime::OutboxConfig::default().partitions).map(|partition| {
            format!(
                "consumer_behind_seconds{{consumer=\"sales_report\",partition=\"{partition}\"}}"
            )
        }),
    )
    .collect();
    let mut text = String::new();
    for _ in 0..150 {
        text = app
            .client
            .get(app.api_url("/metrics"))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("text");
        if expected.iter().all(|line| text.contains(line.as_str()))
            && !text.contains("outbox_published_total 0")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in &expected {
        assert!(text.contains(line.as_str()), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("outbox_published_total 0"),
        "the product's event was published:\n{text}"
    );
    app.stop().await;
}

/// Asks the sales report of today until `ready` is satisfied with it.
async fn report_until(app: &TestApp, ready: impl Fn(&Value) -> bool) -> Value {
    let today = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 86_400) as i64;
    let mut report = Value::Null;
    for _ in 0..150 {
        let response = app
            .get_as_admin(&format!(
                "/api/reports/sales?from={}&to={}",
                day_text(today - 1),
                day_text(today + 1)
            ))
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        report = response.json().await.expect("JSON");
        if ready(&report) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the report never caught up: {report}");
}

/// `YYYY-MM-DD` of `days` since 1970-01-01 (the civil calendar, by hand for
/// the test's own use).
fn day_text(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

async fn catalog_events_reach_the_sales_report(app: TestApp) {
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let created = app
        .client
        .post(app.api_url("/api/products"))
        .bearer_auth(app.admin_token().await)
        .header("traceparent", traceparent)
        .json(&serde_json::json!({
            "name": "Reported kettle", "sku": "KET-REPORT-1",
            "price": { "amount_minor": 1_999, "currency": "EUR" }, "stock": 3
        }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let product: Value = created.json().await.expect("JSON");
    let changed = app
        .client
        .put(app.api_url(&format!("/api/products/{}/price", product["id"].as_str().expect("an id"))))
        .bearer_auth(app.admin_token().await)
        .json(&serde_json::json!({ "price": { "amount_minor": 2_499, "currency": "EUR" }, "version": product["version"] }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(changed.status(), reqwest::StatusCode::OK);

    let report = report_until(&app, |report| {
        report["days"].as_array().is_some_and(|days| {
            days.iter().any(|day| {
                day["products_added"].as_u64() >= Some(1)
                    && day["price_changes"].as_u64() >= Some(1)
            })
        })
    })
    .await;
    let day = report["days"]
        .as_array()
        .and_then(|days| {
            days.iter()
                .find(|day| day["price_changes"].as_u64() >= Some(1))
        })
        .expect("a day with a price change");
    assert_eq!(day["last_price_change"]["product_id"], product["id"]);
    assert_eq!(day["last_price_change"]["price"]["amount_minor"], 2_499);

    // The consumer ran its command in the trace of the request that caused it.
    let audit: Value = app
        .get_as_admin("/api/admin/audit?use_case=reports.record_catalog_event")
        .await
        .json()
        .await
        .expect("JSON");
    let entries = audit["items"].as_array().expect("entries");
    assert!(
        entries.iter().any(
            |entry| entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
                && entry["principal"] == "sales_report"
        ),
        "{audit:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn catalog_events_reach_the_sales_report_through_the_in_process_bus() {
    catalog_events_reach_the_sales_report(spawn_app().await).await;
}

#[tokio::test]
#[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
async fn catalog_events_reach_the_sales_report_through_redis_streams() {
    let url = strata_tests::servers::redis_url();
    let prefix = strata_tests::servers::fresh_prefix("shop");
    let app = spawn_app_with(move |settings| {
        settings.service.redis_url = Some(url.as_str().into());
        settings.service.cache_key_prefix.clone_from(&prefix);
    })
    .await;
    catalog_events_reach_the_sales_report(app).await;
}

#[tokio::test]
#[cfg_attr(
    not(strata_rabbitmq),
    ignore = "needs RabbitMQ: set STRATA_TEST_RABBITMQ_URL"
)]
async fn catalog_events_reach_the_sales_report_through_rabbitmq() {
    let url = strata_tests::servers::rabbitmq_url();
    let prefix = strata_tests::servers::fresh_prefix("shop");
    let declared = prefix.clone();
    let app = spawn_app_with(move |settings| {
        settings.service.rabbitmq_url = Some(url.as_str().into());
        settings.service.cache_key_prefix.clone_from(&prefix);
    })
    .await;
    catalog_events_reach_the_sales_report(app).await;
    // What the shop declared is durable: the broker would keep it.
    let connection = lapin::Connection::connect(
        &strata_tests::servers::rabbitmq_url(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("connected");
    let channel = connection.create_channel().await.expect("a channel");
    for queue in ["sales_report", "sales_report.dead-letters"] {
        channel
            .queue_delete(
                format!("{declared}.{queue}").into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await
            .expect("deleted");
    }
    for exchange in ["events", "dead-letters"] {
        channel
            .exchange_delete(
                format!("{declared}.{exchange}").into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await
            .expect("deleted");
    }
}

#[tokio::test]
async fn a_report_day_that_is_not_a_date_is_refused_and_a_backwards_span_is_empty() {
    let app = spawn_app().await;
    for query in [
        "from=2026-02-30&to=2026-03-01",
        "from=2026-12-01&to=0000-00-00",
    ] {
        let response = app
            .get_as_admin(&format!("/api/reports/sales?{query}"))
            .await;
        assert_eq!(
            response.status(),
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
    }
    let backwards: Value = app
        .get_as_admin("/api/reports/sales?from=2026-12-02&to=2026-12-01")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(backwards["days"], serde_json::json!([]));
    let anonymous = app
        .client
        .get(app.api_url("/api/reports/sales?from=2026-12-01&to=2026-12-01"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn operators_page_the_outboxs_dead_letters_and_retry_only_those_there_are() {
    let app = spawn_app().await;
    let listed = app
        .get_as_admin("/api/admin/outbox/dead-letters?page=1&per_page=10")
        .await;
    assert_eq!(listed.status(), reqwest::StatusCode::OK);
    let page: Value = listed.json().await.expect("JSON");
    assert_eq!(page["total"], 0, "{page}");
    assert_eq!(page["items"], serde_json::json!([]));

    let retried = app
        .post_as_admin(
            "/api/admin/outbox/dead-letters/01900000-0000-7000-8000-000000000000/retry",
            &Value::Null,
        )
        .await;
    assert_eq!(retried.status(), reqwest::StatusCode::NOT_FOUND);

    let customer = app.customer("operator-wannabe@example.com").await;
    let refused = app
        .client
        .get(app.api_url("/api/admin/outbox/dead-letters"))
        .bearer_auth(&customer.access)
        .send()
        .await
        .expect("request sent");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    app.stop().await;
}
