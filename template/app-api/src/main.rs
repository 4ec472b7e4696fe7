//! Runs the service — the API and, unless turned off, the web page — and the
//! chores around it: schema migrations, demo data, and showing the
//! configuration.
//!
//! Exit status: 0 on success; 2 for a command line that does not parse; 78
//! (`EX_CONFIG`) for configuration that is not valid; 1 when the work itself
//! fails (a database that cannot be reached, a port in use).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use app_api::bootstrap::{self, Migration};
use app_api::settings::{Settings, env_prefix, load_settings};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use strata_app_api::config::{ConfigError, Environment, Loaded};
use strata_app_api::telemetry::{self, LogFormat};

/// The configuration is not valid (sysexits.h's `EX_CONFIG`).
const EXIT_CONFIG: u8 = 78;

/// What every error line starts with.
const NAME: &str = env!("CARGO_BIN_NAME");

/// The service: its API and web page, schema migrations, demo data and
/// configuration.
#[derive(Debug, Parser)]
#[command(name = NAME, version)]
struct Cli {
    /// Which configuration file to use: development (the default), test or
    /// production.
    #[arg(long, global = true)]
    env: Option<Environment>,

    /// Read `<env>.toml` from this directory instead of the files built in.
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the web page until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Change or show the database schema.
    Migrate {
        #[command(subcommand)]
        direction: Direction,
    },
    /// Add the demo tasks to an empty task list.
    Seed,
    /// Print the configuration in effect, passwords masked.
    Config,
}

#[derive(Debug, Subcommand)]
enum Direction {
    /// Apply every migration not yet applied.
    Up,
    /// Undo the newest applied migrations.
    Down {
        /// How many to undo.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
}

fn main() -> ExitCode {
    let prefix = env_prefix();
    // The variables' names hold the project's name, which the derive attributes
    // cannot, so `--help` learns them here.
    let matches = Cli::command()
        .after_help(format!(
            "Environment: {prefix}_ENV and {prefix}_CONFIG_DIR stand in for --env and \
             --config-dir; {prefix}_<KEY> sets a configuration key ({prefix}_DATABASE_URL, \
             {prefix}_HTTP__SHUTDOWN_GRACE, ...)."
        ))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());

    let environment = match cli.env {
        Some(environment) => environment,
        None => match Environment::from_variable(&format!("{prefix}_ENV")) {
            Ok(environment) => environment,
            Err(error) => return fail_config(&error),
        },
    };
    let config_dir = cli
        .config_dir
        .or_else(|| std::env::var_os(format!("{prefix}_CONFIG_DIR")).map(PathBuf::from));
    let loaded = match load_settings(environment, config_dir.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => return fail_config(&error),
    };
    for variable in loaded.ignored_variables() {
        eprintln!("{NAME}: warning: {variable} is not a configuration key; ignored");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    let code = runtime.block_on(run(
        cli.command.unwrap_or(Command::Serve),
        loaded,
        environment,
    ));
    // Whatever the command wrote stays written even when the process is
    // stopped right after it.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}

async fn run(command: Command, loaded: Loaded<Settings>, environment: Environment) -> ExitCode {
    match command {
        Command::Serve => serve(loaded.into_value(), environment).await,
        Command::Config => {
            println!("# {NAME} configuration for {environment}");
            print!("{}", loaded.render());
            ExitCode::SUCCESS
        }
        Command::Migrate { direction } => {
            let migration = match direction {
                Direction::Up => Migration::Up,
                Direction::Down { steps } => Migration::Down { steps },
                Direction::Status => Migration::Status,
            };
            match bootstrap::run_migration(loaded.value(), migration).await {
                Ok(status) => {
                    for (name, applied) in status {
                        let state = if applied { "applied" } else { "pending" };
                        println!("{state:<8} {name}");
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Seed => match bootstrap::seed(loaded.value()).await {
            Ok(0) => {
                println!("the task list is not empty; nothing added");
                ExitCode::SUCCESS
            }
            Ok(added) => {
                println!("added {added} demo tasks");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
    }
}

async fn serve(settings: Settings, environment: Environment) -> ExitCode {
    telemetry::init(LogFormat::from_env());
    let service = match bootstrap::start(settings).await {
        Ok(service) => service,
        Err(error) => return fail(&error),
    };
    tracing::info!(environment = %environment, "{NAME} started");
    println!("API:      http://{}/api/tasks", service.api_addr);
    match service.web_addr {
        Some(addr) => println!("Web page: http://{addr}/"),
        None => println!(
            "Web page: off (set {}_WEB_PAGE=true to serve it)",
            env_prefix()
        ),
    }
    println!("API docs: http://{}/docs", service.api_addr);
    println!("Press Ctrl+C to stop.");

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    service.shutdown().await;
    tracing::info!("{NAME} stopped");
    ExitCode::SUCCESS
}

fn fail_config(error: &ConfigError) -> ExitCode {
    eprintln!("{NAME}: {error}");
    ExitCode::from(EXIT_CONFIG)
}

fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!(
        "{NAME}: {}",
        strata_app_api::application::error_chain(error)
    );
    ExitCode::FAILURE
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
