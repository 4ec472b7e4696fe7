//! `shop`: runs the sample shop — the API and the web page — and the chores
//! around it: schema migrations, demo data, and showing the configuration.
//!
//! Exit status: 0 on success; 2 for a command line that does not parse; 78
//! (`EX_CONFIG`) for configuration that is not valid; 1 when the work itself
//! fails (a database that cannot be reached, a port in use).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shop_app_api::bootstrap::{self, Migration, Settings};
use strata_app_api::config::{ConfigError, Environment, Loaded};
use strata_app_api::telemetry::{self, LogFormat};

/// The configuration is not valid (sysexits.h's `EX_CONFIG`).
const EXIT_CONFIG: u8 = 78;

/// The Strata sample shop: its API and web page, schema migrations, demo data
/// and configuration.
#[derive(Debug, Parser)]
#[command(name = "shop", version)]
struct Cli {
    /// Which configuration file to use: development, test or production.
    #[arg(long, global = true, env = "SHOP_ENV", default_value = "development")]
    env: Environment,

    /// Read `<env>.toml` from this directory instead of the files built in.
    #[arg(long, global = true, env = "SHOP_CONFIG_DIR", value_name = "DIR")]
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
    /// Add the demo products to an empty catalog.
    Seed,
    /// Print the configuration in effect, secrets masked.
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
    let cli = Cli::parse();
    let loaded = match bootstrap::load_settings(cli.env, cli.config_dir.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => return fail_config(&error),
    };
    for variable in loaded.ignored_variables() {
        eprintln!("shop: warning: {variable} is not a configuration key; ignored");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    let code = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), loaded, cli.env));
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
            println!("# shop configuration for {environment}");
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
                println!("the catalog already has products; nothing added");
                ExitCode::SUCCESS
            }
            Ok(added) => {
                println!("added {added} demo products");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
    }
}

async fn serve(settings: Settings, environment: Environment) -> ExitCode {
    let telemetry = match Telemetry::start(&settings) {
        Ok(telemetry) => telemetry,
        Err(error) => return fail(&error),
    };
    let shop = match bootstrap::start(settings).await {
        Ok(shop) => shop,
        Err(error) => return fail(&error),
    };
    tracing::info!(environment = %environment, "shop started");
    println!("Shop API:      http://{}/api/products", shop.api_addr);
    println!("Shop web page: http://{}/", shop.web_addr);
    println!("API docs:      http://{}/docs", shop.api_addr);
    println!("Press Ctrl+C to stop.");

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    shop.shutdown().await;
    tracing::info!("shop stopped");
    telemetry.stop().await;
    ExitCode::SUCCESS
}

/// The log set-up, and what it leaves to do at exit: with the `otel` feature and
/// `otlp_endpoint` set, send the spans of the last moments.
#[derive(Debug)]
struct Telemetry {
    #[cfg(feature = "otel")]
    export: Option<telemetry::OtlpExport>,
}

impl Telemetry {
    #[cfg(feature = "otel")]
    fn start(settings: &Settings) -> Result<Self, telemetry::TelemetryError> {
        let export = telemetry::init_with(LogFormat::from_env(), settings.otlp())?;
        Ok(Self { export })
    }

    // Without the feature `otlp_endpoint` was refused when the settings were checked.
    #[cfg(not(feature = "otel"))]
    fn start(_settings: &Settings) -> Result<Self, std::convert::Infallible> {
        telemetry::init(LogFormat::from_env());
        Ok(Self {})
    }

    async fn stop(self) {
        #[cfg(feature = "otel")]
        if let Some(export) = self.export {
            // Shutting down waits on the collector, which a runtime thread must not.
            let outcome = tokio::task::spawn_blocking(move || export.shutdown()).await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => eprintln!("shop: warning: {}", report(&error)),
                Err(error) => eprintln!("shop: warning: {}", report(&error)),
            }
        }
    }
}

fn fail_config(error: &ConfigError) -> ExitCode {
    eprintln!("shop: {error}");
    ExitCode::from(EXIT_CONFIG)
}

fn fail(error: &dyn std::error::Error) -> ExitCode {
    eprintln!("shop: {}", report(error));
    ExitCode::FAILURE
}

fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
