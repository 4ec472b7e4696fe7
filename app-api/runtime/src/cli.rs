//! The command line every service shares: `serve` (the default), `migrate up`,
//! `migrate down [--steps N]`, `migrate status`, `seed` and `config`, with
//! `--env` and `--config-dir`.
//!
//! Exit status: 0 done; 1 the work failed (a database that cannot be reached, a
//! port in use); 2 the command line is wrong; 78 (`EX_CONFIG`) the
//! configuration is not valid. Errors go to stderr as one `<name>: ...` line.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use strata_app_api::application::error_chain;
use strata_app_api::config::{ConfigError, Environment, Loaded, Loader, Origin};

use crate::running::{Migration, OutboxCommand, OutboxReport, migrate, outbox, seed, start};
use crate::service::{Service, Settings};
use crate::telemetry::Telemetry;

/// The configuration is not valid (sysexits.h's `EX_CONFIG`).
pub const EXIT_CONFIG: u8 = 78;

/// The command line is wrong.
pub const EXIT_USAGE: u8 = 2;

/// Runs service `S` as its command line says, and answers the exit status:
/// the whole of a service's `main`.
#[must_use]
pub fn main<S: Service>() -> ExitCode {
    main_with::<S>(std::env::args_os())
}

/// [`main`] with the given arguments (the first is the program's name).
#[must_use]
pub fn main_with<S: Service>(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let matches = match command::<S>().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let prefix = S::env_prefix();
    // A bad `--env` is a usage error (2); a bad `<PREFIX>_ENV`, configuration (78).
    let environment = match matches.get_one::<Environment>("env") {
        Some(environment) => *environment,
        None => match Environment::from_variable(&format!("{prefix}_ENV")) {
            Ok(environment) => environment,
            Err(error) => {
                eprintln!("{}: {error}", S::name());
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    let config_dir = matches
        .get_one::<PathBuf>("config-dir")
        .cloned()
        .or_else(|| std::env::var_os(format!("{prefix}_CONFIG_DIR")).map(PathBuf::from));
    let loaded = match load_settings::<S>(environment, config_dir.as_deref(), None) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{}: {error}", S::name());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for variable in loaded.ignored_variables() {
        eprintln!(
            "{}: warning: {variable} is not a configuration key; ignored",
            S::name()
        );
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail::<S>(&error),
    };
    let code = runtime.block_on(run::<S>(&matches, loaded, environment));
    // Whatever the command wrote stays written even when the process is stopped
    // right after it.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}

fn command<S: Service>() -> Command {
    let prefix = S::env_prefix();
    let migrate = Command::new("migrate")
        .about("Change or show the database schema")
        .subcommand_required(true)
        .subcommand(Command::new("up").about("Apply every migration not yet applied"))
        .subcommand(
            Command::new("down")
                .about("Undo the newest applied migrations")
                .arg(
                    Arg::new("steps")
                        .long("steps")
                        .help("How many to undo")
                        .value_parser(clap::value_parser!(u32))
                        .default_value("1"),
                ),
        )
        .subcommand(Command::new("status").about("List every migration and whether it is applied"));
    Command::new(S::name())
        .version(S::version())
        .about(format!(
            "{}: serve it, migrate its schema, seed its demo data, show its configuration \
             or its outbox",
            S::name()
        ))
        .arg(
            Arg::new("env")
                .long("env")
                .global(true)
                .help(format!(
                    "Which configuration file to use: development (the default), test or \
                     production [env: {prefix}_ENV]"
                ))
                .value_parser(clap::builder::ValueParser::new(parse_environment)),
        )
        .arg(
            Arg::new("config-dir")
                .long("config-dir")
                .global(true)
                .value_name("DIR")
                .help(format!(
                    "Read `<env>.toml` from this directory instead of the files built in \
                     [env: {prefix}_CONFIG_DIR]"
                ))
                .value_parser(clap::value_parser!(PathBuf))
                .action(ArgAction::Set),
        )
        .subcommand(
            Command::new("serve")
                .about("Serve until SIGTERM or Ctrl-C (the default command)")
                .arg(
                    Arg::new("only")
                        .long("only")
                        .value_name("CONTEXT")
                        .help(format!(
                            "Run only this context of the service, as a process of its own \
                             [env: {prefix}_ONLY]"
                        )),
                ),
        )
        .subcommand(migrate)
        .subcommand(Command::new("seed").about("Add the demo data to an empty database"))
        .subcommand(
            Command::new("config").about("Print the configuration in effect, secrets masked"),
        )
        .subcommand(
            Command::new("outbox")
                .about("Show the outbox, or retry a dead-lettered event")
                .subcommand_required(true)
                .subcommand(
                    Command::new("status")
                        .about("Count the events waiting and dead, and list the dead letters"),
                )
                .subcommand(
                    Command::new("retry")
                        .about("Give a dead-lettered event a fresh set of attempts")
                        .arg(
                            Arg::new("id")
                                .required(true)
                                .help("The event's id, as `outbox status` lists it")
                                .value_parser(clap::value_parser!(uuid::Uuid)),
                        ),
                ),
        )
}

fn parse_environment(text: &str) -> Result<Environment, String> {
    text.parse()
        .map_err(|error: strata_app_api::config::UnknownEnvironment| error.to_string())
}

/// Loads service `S`'s configuration for `environment`: the runtime's defaults
/// and the service's, then `<environment>.toml` (compiled in, or read from
/// `config_dir`), then `<PREFIX>_*` variables (`variables`, or the process
/// environment), then the service's own rules for the environment.
///
/// # Errors
/// One line naming the file or key at fault and why.
pub fn load_settings<S: Service>(
    environment: Environment,
    config_dir: Option<&Path>,
    variables: Option<Vec<(String, String)>>,
) -> Result<Loaded<Settings<S>>, ConfigError> {
    let mut loader = Loader::new(S::env_prefix()).reserve(["ENV", "CONFIG_DIR"]);
    if let Some(variables) = variables {
        loader = loader.variables(variables);
    }
    let loader = match config_dir {
        Some(dir) => loader.read_file(&dir.join(format!("{environment}.toml")))?,
        None => loader.file(
            format!("config/{environment}.toml (built in)"),
            S::config_files()
                .iter()
                .find(|(name, _)| *name == environment)
                .map_or("", |(_, text)| *text),
        ),
    };
    let loaded = loader.load_pair::<_, S::Settings>(S::defaults())?;
    check::<S>(loaded.value(), environment, loaded.origin("only"))?;
    Ok(loaded)
}

/// The runtime's own rules over loaded settings, then the service's
/// (`Service::check`).
fn check<S: Service>(
    settings: &Settings<S>,
    environment: Environment,
    only_from: Origin,
) -> Result<(), ConfigError> {
    if let Some(only) = &settings.service.only {
        let contexts: Vec<String> = S::contexts(&settings.app)
            .iter()
            .map(|context| context.name().to_owned())
            .collect();
        if !contexts.contains(only) {
            return Err(ConfigError::Invalid {
                key: "only".into(),
                origin: only_from,
                reason: if contexts.is_empty() {
                    format!("{} has no context to run alone", S::name())
                } else {
                    format!(
                        "{} has no context by that name; it has {}",
                        S::name(),
                        contexts.join(", ")
                    )
                },
            });
        }
    }
    S::check(settings, environment)
}

async fn run<S: Service>(
    matches: &ArgMatches,
    loaded: Loaded<Settings<S>>,
    environment: Environment,
) -> ExitCode {
    match matches.subcommand() {
        None => serve::<S>(loaded.into_value(), environment).await,
        Some(("serve", serving)) => {
            let mut settings = loaded.into_value();
            if let Some(only) = serving.get_one::<String>("only") {
                settings.service.only = Some(only.clone());
                let origin = Origin::Argument("--only".into());
                if let Err(error) = check::<S>(&settings, environment, origin) {
                    eprintln!("{}: {error}", S::name());
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
            serve::<S>(settings, environment).await
        }
        Some(("config", _)) => {
            println!("# {} configuration for {environment}", S::name());
            print!("{}", loaded.render());
            ExitCode::SUCCESS
        }
        Some(("migrate", direction)) => {
            let migration = match direction.subcommand() {
                Some(("down", down)) => Migration::Down {
                    steps: down.get_one::<u32>("steps").copied().unwrap_or(1),
                },
                Some(("status", _)) => Migration::Status,
                _ => Migration::Up,
            };
            match migrate::<S>(loaded.value(), migration).await {
                Ok(status) => {
                    for (name, applied) in status {
                        let state = if applied { "applied" } else { "pending" };
                        println!("{state:<8} {name}");
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => fail::<S>(&error),
            }
        }
        Some(("seed", _)) => match seed::<S>(environment, loaded.into_value()).await {
            Ok(0) => {
                println!("the database already has {}; nothing added", S::demo_data());
                ExitCode::SUCCESS
            }
            Ok(added) => {
                println!("added {added} {}", S::demo_data());
                ExitCode::SUCCESS
            }
            Err(error) => fail::<S>(&error),
        },
        Some(("outbox", what)) => {
            let command = match what.subcommand() {
                Some(("retry", retry)) => match retry.get_one::<uuid::Uuid>("id") {
                    Some(id) => OutboxCommand::Retry(*id),
                    None => OutboxCommand::Status,
                },
                _ => OutboxCommand::Status,
            };
            match outbox::<S>(loaded.value(), command).await {
                Ok(report) => print_outbox::<S>(&report),
                Err(error) => fail::<S>(&error),
            }
        }
        Some((other, _)) => {
            eprintln!("{}: no command `{other}`", S::name());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn print_outbox<S: Service>(report: &OutboxReport) -> ExitCode {
    match report {
        OutboxReport::Status(status, dead_letters) => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| {
                    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
                });
            println!("pending      {}", status.pending);
            println!("dead         {}", status.dead);
            match status.oldest_pending_at_ms {
                Some(at) => println!("oldest       {}s", (now_ms - at).max(0) / 1_000),
                None => println!("oldest       -"),
            }
            println!("most tries   {}", status.most_attempts);
            for dead in dead_letters {
                println!(
                    "dead letter  {} {} {}#{} v{} after {} attempts: {}",
                    dead.id,
                    dead.event_type,
                    dead.aggregate_kind,
                    dead.aggregate_id,
                    dead.aggregate_version,
                    dead.attempts,
                    dead.last_error
                );
            }
            ExitCode::SUCCESS
        }
        OutboxReport::Retried(true) => {
            println!("the event will be published again");
            ExitCode::SUCCESS
        }
        OutboxReport::Retried(false) => {
            eprintln!("{}: no dead-lettered event has that id", S::name());
            ExitCode::FAILURE
        }
    }
}

async fn serve<S: Service>(settings: Settings<S>, environment: Environment) -> ExitCode {
    let telemetry = match Telemetry::start(&settings.service, S::name()) {
        Ok(telemetry) => telemetry,
        Err(error) => return fail::<S>(error.as_ref()),
    };
    let running = match start::<S>(environment, settings).await {
        Ok(running) => running,
        Err(error) => return fail::<S>(&error),
    };
    tracing::info!(environment = %environment, "{} started", S::name());
    for line in running.announcements() {
        println!("{line}");
    }
    println!("Press Ctrl+C to stop.");

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    running.shutdown().await;
    tracing::info!("{} stopped", S::name());
    telemetry.stop(S::name()).await;
    ExitCode::SUCCESS
}

fn fail<S: Service>(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("{}: {}", S::name(), error_chain(error));
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
