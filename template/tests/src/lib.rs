//! Test kit: the whole service spawned on random local ports against a fresh
//! SQLite database, and an HTTP client to talk to it.

use std::net::SocketAddr;

use app_api::bootstrap::{RunningService, start};
use app_api::settings::Settings;
use tempfile::TempDir;

/// The service — API and web page — running for one test.
#[derive(Debug)]
pub struct TestApp {
    /// The API's base URL, such as `http://127.0.0.1:41234`.
    pub api: String,
    /// The web page's base URL, when it is served.
    pub web: Option<String>,
    /// A client for both.
    pub client: reqwest::Client,
    service: Option<RunningService>,
    _data: TempDir,
}

impl TestApp {
    /// The URL of `path` on the API.
    #[must_use]
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// The router the API serves, for tests that inspect its routes.
    ///
    /// # Panics
    /// After [`TestApp::stop`].
    pub fn api_router(&self) -> &axum::Router {
        self.service
            .as_ref()
            .expect("the service is running")
            .api_router()
    }

    /// Stops the service, letting requests in flight finish.
    pub async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
    }
}

/// The service with its web page, on a database of its own.
///
/// # Panics
/// When the service cannot start.
pub async fn spawn_app() -> TestApp {
    spawn(true).await
}

/// The service without its web page, as `web_page = false` starts it.
///
/// # Panics
/// When the service cannot start.
pub async fn spawn_api_only() -> TestApp {
    spawn(false).await
}

/// A fresh, empty SQLite database file that lives as long as the returned
/// directory: its URL and the directory.
///
/// # Panics
/// When no temporary directory can be made.
#[must_use]
pub fn fresh_sqlite() -> (String, TempDir) {
    let data = tempfile::tempdir().expect("a temporary directory for the database");
    let url = format!(
        "sqlite://{}?mode=rwc",
        data.path().join("test.db").display()
    );
    (url, data)
}

async fn spawn(web_page: bool) -> TestApp {
    let (database_url, data) = fresh_sqlite();
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let service = start(Settings {
        database_url: database_url.into(),
        api_addr: any_port,
        web_page,
        web_addr: any_port,
        seed: false,
        ..Settings::default()
    })
    .await
    .expect("the service starts");
    TestApp {
        api: format!("http://{}", service.api_addr),
        web: service.web_addr.map(|addr| format!("http://{addr}")),
        client: reqwest::Client::new(),
        service: Some(service),
        _data: data,
    }
}
