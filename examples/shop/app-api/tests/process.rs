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
        if let Some(url) = line.strip_prefix("Shop API:") {
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
    let log: Vec<String> = running.output.try_iter().collect();
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
    let run = |args: &[&str]| {
        let output = shop()
            .args(args)
            .env("SHOP_DATABASE_URL", &url)
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
