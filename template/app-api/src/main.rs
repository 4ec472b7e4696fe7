//! Runs the service — the API and, unless turned off, the web page — until
//! interrupted. Settings come from `config/defaults.env` and the environment.

use app_api::bootstrap::start;
use app_api::settings::Settings;
use strata_app_api::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init(LogFormat::from_env());

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let service = match start(settings).await {
        Ok(service) => service,
        Err(error) => {
            eprintln!(
                "error: {}",
                strata_app_api::application::error_chain(&error)
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("API:      http://{}/api/tasks", service.api_addr);
    match service.web_addr {
        Some(addr) => println!("Web page: http://{addr}/"),
        None => println!("Web page: off (set APP_WEB_PAGE=true to serve it)"),
    }
    println!("Press Ctrl+C to stop.");

    shutdown_signal().await;
    tracing::info!("shutting down; finishing requests in flight");
    service.shutdown().await;
    std::process::ExitCode::SUCCESS
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
