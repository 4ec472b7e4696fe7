//! The binary as a shell user and an orchestrator meet it: refused bad
//! configuration, printed configuration, schema and demo-data commands.

use std::process::{Command, Output};

use app_api::App;
use app_api::settings::project_name;
use strata_runtime::Service as _;

fn env_prefix() -> String {
    App::env_prefix()
}

/// The binary, with none of the service's variables from the caller's
/// environment and the test environment's configuration.
fn service() -> Command {
    // Cargo names the variable after the binary, which is named after the
    // project, so it is looked up at run time rather than with `env!`.
    let variable = format!("CARGO_BIN_EXE_{}", project_name());
    let binary = std::env::var_os(&variable)
        .unwrap_or_else(|| panic!("{variable} is set by `cargo test`; run the tests with it"));
    let prefix = format!("{}_", env_prefix());
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(&prefix) {
            command.env_remove(name);
        }
    }
    command.env(format!("{prefix}ENV"), "test");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

#[test]
fn a_bad_configuration_value_stops_start_up_with_one_line_naming_the_key() {
    let prefix = env_prefix();
    let variable = format!("{prefix}_HTTP__SHUTDOWN_GRACE");
    let output = run(service().env(&variable, "soon"));
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{}: configuration key `http.shutdown_grace` (from environment variable \
             {variable}) is not valid: expected a duration",
            project_name()
        )),
        "{stderr}"
    );

    let unknown = run(service().env(format!("{prefix}_ENV"), "staging"));
    assert_eq!(unknown.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains(&format!("{prefix}_ENV")),
        "names the variable"
    );
}

#[test]
fn config_prints_the_effective_configuration_with_passwords_masked() {
    let prefix = env_prefix();
    let output = run(service()
        .arg("config")
        .env(
            format!("{prefix}_DATABASE_URL"),
            "postgres://app:hunter2@db/app",
        )
        .env(format!("{prefix}_API_ADDR"), "127.0.0.1:9999"));
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        stdout.contains("postgres://app:[redacted]@db/app"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "api_addr = \"127.0.0.1:9999\"  # from environment variable {prefix}_API_ADDR"
        )),
        "{stdout}"
    );
}

#[test]
fn a_mistyped_command_is_a_usage_error() {
    let output = run(service().arg("serv"));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("serve"));
}

#[test]
fn migrate_reports_each_migration_and_seed_fills_an_empty_task_list() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", data.path().join("cli.db").display());
    let variable = format!("{}_DATABASE_URL", env_prefix());
    let succeed = |args: &[&str]| {
        let output = run(service().args(args).env(&variable, &url));
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let pending = succeed(&["migrate", "status"]);
    assert!(
        pending.lines().all(|line| line.starts_with("pending")),
        "{pending}"
    );
    let applied = succeed(&["migrate", "up"]);
    assert!(
        applied.lines().all(|line| line.starts_with("applied")),
        "{applied}"
    );
    assert!(succeed(&["seed"]).starts_with("added 3 demo tasks"));
    assert!(succeed(&["seed"]).contains("nothing added"));
    let rolled_back = succeed(&["migrate", "down", "--steps", "1"]);
    let last = rolled_back.lines().last().unwrap_or_default();
    assert!(last.starts_with("pending"), "{rolled_back}");
}
