//! `shop`: runs the sample shop — the API and the web page — until interrupted.

use shop_app_api::bootstrap::{Settings, start};
use strata_app_api::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init(LogFormat::from_env());

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("shop: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let shop = match start(settings).await {
        Ok(shop) => shop,
        Err(error) => {
            eprintln!("shop: {}", report(&error));
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("Shop API:      http://{}/api/products", shop.api_addr);
    println!("Shop web page: http://{}/", shop.web_addr);
    println!("Press Ctrl+C to stop.");

    shutdown_signal().await;
    tracing::info!("shutting down; finishing requests in flight");
    shop.shutdown().await;
    std::process::ExitCode::SUCCESS
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
