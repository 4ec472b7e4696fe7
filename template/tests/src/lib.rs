//! Test kit: the whole service spawned on random local ports against a fresh
//! database (through `strata_tests::service`), and an HTTP client to talk to it.

use app_api::App;
use strata_tests::database::TestDatabase;
use strata_tests::service::{ApiClient, TestService};

/// The service — API and web page — running for one test.
#[derive(Debug)]
pub struct TestApp {
    /// The API's base URL, such as `http://127.0.0.1:41234`.
    pub api: String,
    /// The web page's base URL, when it is served.
    pub web: Option<String>,
    /// A client for both.
    pub client: reqwest::Client,
    service: TestService<App>,
}

impl TestApp {
    /// The URL of `path` on the API.
    #[must_use]
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// A client of the API (`strata_tests::service::ApiClient`).
    #[must_use]
    pub fn api_client(&self) -> &ApiClient {
        self.service.api()
    }

    /// The router the API serves, for tests that inspect its routes.
    ///
    /// # Panics
    /// After [`TestApp::stop`].
    pub fn api_router(&self) -> &axum::Router {
        self.service
            .running()
            .router("api")
            .expect("the service serves its API")
    }

    /// Stops the service, letting requests in flight finish.
    pub async fn stop(self) {
        self.service.stop().await;
    }
}

/// The service with its web page, on a database of its own.
///
/// # Panics
/// When the service cannot start.
pub async fn spawn_app() -> TestApp {
    spawn(TestDatabase::sqlite(), true).await
}

/// The service without its web page, as `web_page = false` starts it.
///
/// # Panics
/// When the service cannot start.
pub async fn spawn_api_only() -> TestApp {
    spawn(TestDatabase::sqlite(), false).await
}

/// The service with its web page on `database`.
///
/// # Panics
/// When the service cannot start.
pub async fn spawn_app_on(database: TestDatabase) -> TestApp {
    spawn(database, true).await
}

async fn spawn(database: TestDatabase, web_page: bool) -> TestApp {
    let service = TestService::<App>::spawn(database, |settings| {
        settings.service.seed = false;
        settings.app.web_page = web_page;
    })
    .await;
    let web = service
        .running()
        .addr("web")
        .map(|addr| format!("http://{addr}"));
    TestApp {
        api: service.base_url("api"),
        web,
        client: reqwest::Client::new(),
        service,
    }
}
