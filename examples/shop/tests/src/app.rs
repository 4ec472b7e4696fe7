use std::net::SocketAddr;

use shop_app_api::bootstrap::{RunningShop, Settings, start};

use crate::TestDatabase;

/// The whole shop — API and web page — running on random local ports against a
/// database of its own, and an HTTP client to talk to it.
#[derive(Debug)]
pub struct TestApp {
    /// The API's base URL, such as `http://127.0.0.1:41234`.
    pub api: String,
    /// The web page's base URL.
    pub web: String,
    /// A client for both.
    pub client: reqwest::Client,
    shop: Option<RunningShop>,
    database: TestDatabase,
}

impl TestApp {
    /// The URL of `path` on the API.
    #[must_use]
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// The test's database.
    #[must_use]
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// Stops the shop, letting requests in flight finish.
    pub async fn stop(mut self) {
        if let Some(shop) = self.shop.take() {
            shop.shutdown().await;
        }
    }
}

/// The shop with an empty catalog on a fresh SQLite database.
///
/// # Panics
/// When the shop cannot start.
pub async fn spawn_app() -> TestApp {
    spawn(TestDatabase::sqlite(), false).await
}

/// The shop with its demo catalog on a fresh SQLite database, as `cargo run` starts it.
///
/// # Panics
/// When the shop cannot start.
pub async fn spawn_seeded_app() -> TestApp {
    spawn(TestDatabase::sqlite(), true).await
}

/// The shop with an empty catalog on `database`.
///
/// # Panics
/// When the shop cannot start.
pub async fn spawn_app_on(database: TestDatabase) -> TestApp {
    spawn(database, false).await
}

async fn spawn(database: TestDatabase, seed: bool) -> TestApp {
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let shop = start(Settings {
        database_url: database.url().to_owned(),
        api_addr: any_port,
        web_addr: any_port,
        seed,
    })
    .await
    .expect("the shop starts");
    TestApp {
        api: format!("http://{}", shop.api_addr),
        web: format!("http://{}", shop.web_addr),
        client: reqwest::Client::new(),
        shop: Some(shop),
        database,
    }
}
