//! The `shop` binary as a shell user and an orchestrator meet it: started as a
//! process, stopped with SIGTERM, refused bad configuration.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ADMIN_EMAIL: &str = "admin@shop.test";
const ADMIN_PASSWORD: &str = "admin password for tests";

fn shop() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    command
        .env("SHOP_ENV", "test")
        .env_remove("SHOP_CONFIG_DIR")
        .env_remove("SHOP_DATABASE_URL")
        .env_remove("SHOP_API_ADDR")
        .env_remove("SHOP_WEB_ADDR")
        .env("RUST_LOG", "info");
    command
}

/// A running shop and the address its API printed.
struct Running {
    child: Child,
    api: String,
    output: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(command: &mut Command) -> Running {
    start_announcing(command, "Shop API:")
}

/// Starts the shop and waits for the line starting with `announcement` that
/// names its address.
fn start_announcing(command: &mut Command, announcement: &str) -> Running {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shop binary starts");
    let (lines, output) = mpsc::channel();
    // Owned by `Running` from here on, so the process is reaped however the
    // test ends.
    let mut running = Running {
        child,
        api: String::new(),
        output,
    };
    let stdout = running.child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = running
            .output
            .recv_timeout(remaining)
            .expect("the shop prints its API address within 30 s");
        if let Some(url) = line.strip_prefix(announcement) {
            running.api = url
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches("/api/products")
                .to_owned();
            return running;
        }
    }
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn a_request_in_flight_when_sigterm_arrives_completes_with_200() {
    let mut running = start(
        shop()
            .env("SHOP_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("SHOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SHOP_HTTP__SHUTDOWN_GRACE", "10s"),
    );
    let body = format!(r#"{{"email":"{ADMIN_EMAIL}","password":"{ADMIN_PASSWORD}"}}"#);
    let (head, tail) = body.split_at(body.len() / 2);

    // The request is sent up to half its body: the server has it and is
    // reading the rest when the signal arrives.
    let mut client = TcpStream::connect(&running.api).expect("connect to the API");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        client,
        "POST /api/auth/sign-in HTTP/1.1\r\nhost: shop\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{head}",
        body.len()
    )
    .expect("request head written");
    client.flush().expect("flushed");
    std::thread::sleep(Duration::from_millis(300));

    kill(running.child.id(), "-TERM");
    let stopped_accepting = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&running.api).is_ok() {
        assert!(
            Instant::now() < stopped_accepting,
            "the API still accepts connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    client
        .write_all(tail.as_bytes())
        .expect("rest of the body written");
    let mut answer = String::new();
    client.read_to_string(&mut answer).expect("answer read");
    let status = running.child.wait().expect("the shop exits");
    // Every line the shop wrote before it exited: the reader thread forwards
    // them until the pipe closes, which may be after the exit is seen.
    let mut log = Vec::new();
    while let Ok(line) = running.output.recv_timeout(Duration::from_secs(10)) {
        log.push(line);
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}\n{log:#?}");
    assert!(answer.contains("access_token"), "{answer}");

    assert!(status.success(), "exit status {status}");
    assert!(
        log.iter().any(|line| line.contains("shop stopped")),
        "the last log line is written before exit: {log:#?}"
    );
    assert!(
        !log.iter().any(|line| line.contains("did not stop")),
        "every background worker stopped within the grace period: {log:#?}"
    );
}

#[test]
fn a_bad_configuration_value_stops_start_up_with_one_line_naming_the_key() {
    let output = shop()
        .env("SHOP_HTTP__SHUTDOWN_GRACE", "soon")
        .output()
        .expect("the shop binary runs");
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(
            "shop: configuration key `http.shutdown_grace` (from environment variable \
             SHOP_HTTP__SHUTDOWN_GRACE) is not valid: expected a duration"
        ),
        "{stderr}"
    );
}

#[test]
fn a_secret_that_breaks_a_rule_is_named_but_never_printed() {
    let output = shop()
        .env("SHOP_JWT_SECRET", "hunter2")
        .output()
        .expect("the shop binary runs");
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`jwt_secret`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn config_prints_the_effective_configuration_with_secrets_masked() {
    let output = shop()
        .args(["config"])
        .env(
            "SHOP_JWT_SECRET",
            "a signing key of more than thirty-two bytes",
        )
        .env("SHOP_API_ADDR", "127.0.0.1:9999")
        .output()
        .expect("the shop binary runs");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("jwt_secret = \"[redacted]\""), "{stdout}");
    assert!(!stdout.contains("signing key"), "{stdout}");
    assert!(
        stdout.contains("api_addr = \"127.0.0.1:9999\"  # from environment variable SHOP_API_ADDR"),
        "{stdout}"
    );
}

#[test]
fn serving_one_context_alone_without_the_shared_signing_key_is_a_configuration_error() {
    let output = shop()
        .args(["serve", "--only", "inventory"])
        .env_remove("SHOP_JWT_SECRET")
        .output()
        .expect("the shop binary runs");
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("shop: configuration key `jwt_secret` is not set"),
        "{stderr}"
    );
}

#[test]
fn serving_a_context_the_service_does_not_have_is_a_configuration_error() {
    let output = shop()
        .args(["serve", "--only", "payroll"])
        .env(
            "SHOP_JWT_SECRET",
            "a signing key of more than thirty-two bytes",
        )
        .output()
        .expect("the shop binary runs");
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`only`") && stderr.contains("inventory, wallet"),
        "{stderr}"
    );
}

#[test]
fn a_mistyped_command_is_a_usage_error() {
    let output = shop()
        .args(["serv"])
        .output()
        .expect("the shop binary runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("serve"));
}

#[test]
fn migrate_reports_each_migration_and_seed_fills_an_empty_catalog() {
    let directory = std::env::temp_dir().join(format!("shop-cli-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a directory");
    let url = format!("sqlite://{}/cli.db?mode=rwc", directory.display());
    let inventory = format!("sqlite://{}/cli-inventory.db?mode=rwc", directory.display());
    let wallet = format!("sqlite://{}/cli-wallet.db?mode=rwc", directory.display());
    let run = |args: &[&str]| {
        let output = shop()
            .args(args)
            .env("SHOP_DATABASE_URL", &url)
            .env("SHOP_INVENTORY__DATABASE_URL", &inventory)
            .env("SHOP_WALLET__DATABASE_URL", &wallet)
            .output()
            .expect("the shop binary runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let pending = run(&["migrate", "status"]);
    assert!(
        pending.lines().all(|line| line.starts_with("pending")),
        "{pending}"
    );
    let applied = run(&["migrate", "up"]);
    assert!(
        applied.lines().all(|line| line.starts_with("applied")),
        "{applied}"
    );
    // The inventory's and the wallet's databases are migrated with the shop's.
    for context in ["inventory/", "wallet/"] {
        assert!(
            applied.lines().any(|line| line.contains(context)),
            "{applied}"
        );
    }
    assert!(run(&["seed"]).starts_with("added 5 demo products"));
    assert!(run(&["seed"]).contains("nothing added"));
    // No relay ran: the catalog's events wait in the outbox.
    let status = run(&["outbox", "status"]);
    assert!(status.contains("pending      5"), "{status}");
    assert!(status.contains("dead         0"), "{status}");
    let retry = |id: &str| {
        shop()
            .args(["outbox", "retry", id])
            .env("SHOP_DATABASE_URL", &url)
            .output()
            .expect("the shop binary runs")
    };
    let unknown = retry("01900000-0000-7000-8000-000000000000");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no dead-lettered event has that id"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    assert_eq!(retry("not-an-id").status.code(), Some(2), "a usage error");
    let rolled_back = run(&["migrate", "down", "--steps", "1"]);
    let last = rolled_back.lines().last().unwrap_or_default();
    assert!(last.starts_with("pending"), "{rolled_back}");
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn log_lines_carry_no_colour_codes_when_stdout_is_not_a_terminal() {
    let mut child = shop()
        .env("SHOP_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("SHOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shop binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let announced = line.starts_with("Shop API:");
        seen.push(line);
        if announced {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|line| line.contains("INFO")),
        "some log lines were written: {seen:#?}"
    );
    assert!(
        seen.iter().all(|line| !line.contains('\u{1b}')),
        "{seen:#?}"
    );
}

#[test]
fn a_wildcard_cors_origin_is_a_configuration_error_not_a_panic() {
    let output = shop()
        .env("SHOP_HTTP__CORS_ALLOWED_ORIGINS", r#"["*"]"#)
        .output()
        .expect("the shop binary runs");
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`http.cors_allowed_origins[0]`"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn config_masks_a_password_in_a_urls_query_string() {
    let output = shop()
        .args(["config"])
        .env(
            "SHOP_DATABASE_URL",
            "postgres://db.internal/shop?user=shop&password=hunter2&sslmode=require",
        )
        .env(
            "SHOP_REDIS_URL",
            "redis://cache.internal:6379/0?password=swordfish",
        )
        .output()
        .expect("the shop binary runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(!stdout.contains("swordfish"), "{stdout}");
    assert!(stdout.contains("sslmode=require"), "{stdout}");
}

/// The inventory run as a process of its own: its branch reached through a
/// proxy that, once every try of a burst of orders has passed, kills the
/// inventory as the first confirm arrives.
mod separate_processes {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use serde_json::{Value, json};

    use super::*;

    const ORDERS: usize = 5;
    const SECRET: &str = "a signing key the shop's processes share, 32+ bytes";

    #[derive(Clone)]
    struct Proxy {
        target: String,
        client: reqwest::Client,
        tries: Arc<AtomicU32>,
        inventory_pid: Arc<AtomicU32>,
        killed: Arc<AtomicBool>,
    }

    async fn forward(
        State(proxy): State<Proxy>,
        Path(op): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, Bytes) {
        if op == "confirm" && !proxy.killed.load(Ordering::SeqCst) {
            // Every order's try first, then the inventory dies as the
            // confirms are being sent.
            let deadline = Instant::now() + Duration::from_secs(20);
            while proxy.tries.load(Ordering::SeqCst) < ORDERS as u32 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if !proxy.killed.swap(true, Ordering::SeqCst) {
                kill(proxy.inventory_pid.load(Ordering::SeqCst), "-KILL");
            }
            return (StatusCode::BAD_GATEWAY, Bytes::new());
        }
        let mut request = proxy
            .client
            .post(format!("{}/internal/inventory/branch/{op}", proxy.target))
            .body(body);
        for (name, value) in &headers {
            if name.as_str().starts_with("x-strata-")
                || name == "authorization"
                || name == "content-type"
                || name == "traceparent"
            {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(response) => {
                let status = StatusCode::from_u16(response.status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                if op == "try" && status == StatusCode::OK {
                    proxy.tries.fetch_add(1, Ordering::SeqCst);
                }
                (status, response.bytes().await.unwrap_or_default())
            }
            Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port()
    }

    fn inventory(directory: &std::path::Path, port: u16, redis: &str, prefix: &str) -> Running {
        start_announcing(
            shop()
                .args(["serve", "--only", "inventory"])
                .env(
                    "SHOP_DATABASE_URL",
                    format!(
                        "sqlite://{}/inventory-service.db?mode=rwc",
                        directory.display()
                    ),
                )
                .env(
                    "SHOP_INVENTORY__DATABASE_URL",
                    format!("sqlite://{}/inventory.db?mode=rwc", directory.display()),
                )
                .env("SHOP_INTERNAL_ADDR", format!("127.0.0.1:{port}"))
                .env("SHOP_JWT_SECRET", SECRET)
                .env("SHOP_REDIS_URL", redis)
                .env("SHOP_CACHE_KEY_PREFIX", prefix),
            "Shop inventory:",
        )
    }

    async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        (status, response.json().await.unwrap_or(Value::Null))
    }

    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_inventory_killed_while_confirms_are_sent_and_restarted_a_minute_later_confirms_every_order_once()
     {
        let Ok(redis) = std::env::var("STRATA_TEST_REDIS_URL") else {
            eprintln!(
                "skipped: the shop's processes share their events through Redis; set \
                 STRATA_TEST_REDIS_URL"
            );
            return;
        };
        let directory = tempfile::tempdir().expect("a directory");
        let prefix = format!("shop-processes-{}", std::process::id());
        let port = free_port();
        let first = inventory(directory.path(), port, &redis, &prefix);

        let proxy = Proxy {
            target: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            tries: Arc::default(),
            inventory_pid: Arc::new(AtomicU32::new(first.child.id())),
            killed: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds");
        let proxy_addr = listener.local_addr().expect("an address");
        let routes = axum::Router::new()
            .route(
                "/internal/inventory/branch/{op}",
                axum::routing::post(forward),
            )
            .with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, routes).await });

        let main = start(
            shop()
                .env(
                    "SHOP_DATABASE_URL",
                    format!("sqlite://{}/shop.db?mode=rwc", directory.path().display()),
                )
                .env(
                    "SHOP_WALLET__DATABASE_URL",
                    format!("sqlite://{}/wallet.db?mode=rwc", directory.path().display()),
                )
                .env("SHOP_INVENTORY__URL", format!("http://{proxy_addr}"))
                .env("SHOP_JWT_SECRET", SECRET)
                .env("SHOP_REDIS_URL", &redis)
                .env("SHOP_CACHE_KEY_PREFIX", &prefix)
                .env("SHOP_TCC__RETRY_INTERVAL", "500ms")
                .env("SHOP_ADMIN_EMAIL", ADMIN_EMAIL)
                .env("SHOP_ADMIN_PASSWORD", ADMIN_PASSWORD),
        );
        let api = format!("http://{}", main.api);
        let stock_url = |product: &str| format!("http://{}/api/inventory/{product}", first.api);
        let client = reqwest::Client::new();
        let sign_in = |email: &str, password: &str| {
            let client = client.clone();
            let url = format!("{api}/api/auth/sign-in");
            let body = json!({ "email": email, "password": password });
            async move {
                let (status, tokens) =
                    json_of(client.post(url).json(&body).send().await.expect("sent")).await;
                assert_eq!(status, StatusCode::OK, "{tokens}");
                tokens["access_token"].as_str().expect("a token").to_owned()
            }
        };
        let admin = sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let (status, product) = json_of(
            client
                .post(format!("{api}/api/products"))
                .bearer_auth(&admin)
                .json(&json!({
                    "name": "Tea", "sku": "TEA-PROCESS",
                    "price": { "amount_minor": 100, "currency": "EUR" }, "stock": 50
                }))
                .send()
                .await
                .expect("sent"),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{product}");
        let product = product["id"].as_str().expect("an id").to_owned();
        let stock = |url: String| {
            let client = client.clone();
            async move { json_of(client.get(url).send().await.expect("sent")).await }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while stock(stock_url(&product)).await.0 != StatusCode::OK {
            assert!(
                Instant::now() < deadline,
                "the inventory never got the product's stock"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let email = "customer@shop.test";
        let password = "a customer's password";
        let registered = client
            .post(format!("{api}/api/auth/register"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("sent");
        assert_eq!(registered.status().as_u16(), 201);
        let customer = sign_in(email, password).await;
        let topped = client
            .post(format!("{api}/api/wallet/top-ups"))
            .bearer_auth(&customer)
            .header("Idempotency-Key", "top-up")
            .json(&json!({ "amount": { "amount_minor": 10_000, "currency": "EUR" } }))
            .send()
            .await
            .expect("sent");
        assert_eq!(topped.status().as_u16(), 200);

        let mut placing = Vec::new();
        for n in 0..ORDERS {
            let request = client
                .post(format!("{api}/api/orders"))
                .bearer_auth(&customer)
                .header("Idempotency-Key", format!("order-{n}"))
                .json(&json!({ "items": [{ "product_id": product, "quantity": 1 }] }));
            placing.push(tokio::spawn(async move {
                json_of(request.send().await.expect("sent")).await
            }));
        }
        for placed in placing {
            let (status, order) = placed.await.expect("an answer");
            assert_eq!(
                status,
                StatusCode::ACCEPTED,
                "pending while the inventory is down: {order}"
            );
            assert_eq!(order["status"], "pending");
        }
        assert!(proxy.killed.load(Ordering::SeqCst));
        drop(first);

        tokio::time::sleep(Duration::from_secs(60)).await;
        let second = inventory(directory.path(), port, &redis, &prefix);
        proxy
            .inventory_pid
            .store(second.child.id(), Ordering::SeqCst);

        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, orders) = json_of(
                client
                    .get(format!("{api}/api/orders"))
                    .bearer_auth(&customer)
                    .send()
                    .await
                    .expect("sent"),
            )
            .await;
            let confirmed = orders["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|order| order["status"] == "confirmed")
                .count();
            if confirmed == ORDERS {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "orders not all confirmed: {orders}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let second_stock = format!("http://{}/api/inventory/{product}", second.api);
        let (_, levels) = stock(second_stock).await;
        assert_eq!(
            levels,
            json!({ "product_id": product, "available": 45, "reserved": 0, "sold": 5 }),
            "each deduction made once"
        );
        let (_, wallet) = json_of(
            client
                .get(format!("{api}/api/wallet"))
                .bearer_auth(&customer)
                .send()
                .await
                .expect("sent"),
        )
        .await;
        assert_eq!(wallet["balance"]["amount_minor"], 9_500);
        assert_eq!(wallet["frozen"]["amount_minor"], 0);
        drop(main);
        drop(second);
    }
}
