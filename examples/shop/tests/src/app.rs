use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use shop_app_api::bootstrap::{AdminSettings, RunningShop, Settings, start};
use strata_app_api::http::auth::Secret;
use tokio::sync::OnceCell;

use crate::TestDatabase;

/// The administrator account every test shop starts with.
pub const ADMIN_EMAIL: &str = "admin@shop.test";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin password for tests";

/// The tokens a sign-in answers with.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The bearer token for API calls.
    pub access: String,
    /// The refresh token that continues the session.
    pub refresh: String,
}

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
    database: Arc<TestDatabase>,
    admin: OnceCell<String>,
}

impl TestApp {
    /// The URL of `path` on the API.
    #[must_use]
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// Signs in with `email` and `password`.
    ///
    /// # Panics
    /// When the sign-in is refused.
    pub async fn sign_in(&self, email: &str, password: &str) -> Tokens {
        let response = self
            .client
            .post(self.api_url("/api/auth/sign-in"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "sign-in of {email}"
        );
        let body: Value = response.json().await.expect("JSON tokens");
        Tokens {
            access: body["access_token"]
                .as_str()
                .expect("an access token")
                .to_owned(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned(),
        }
    }

    /// Registers a customer with `email` and signs them in.
    ///
    /// # Panics
    /// When registration or sign-in is refused.
    pub async fn customer(&self, email: &str) -> Tokens {
        let password = format!("password of {email}");
        let response = self
            .client
            .post(self.api_url("/api/auth/register"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::CREATED,
            "registration of {email}"
        );
        self.sign_in(email, &password).await
    }

    /// An access token of the administrator (signed in once per test shop).
    pub async fn admin_token(&self) -> &str {
        self.admin
            .get_or_init(|| async { self.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.access })
            .await
    }

    /// A POST of `body` to `path` as the administrator.
    pub async fn post_as_admin(&self, path: &str, body: &Value) -> reqwest::Response {
        let token = self.admin_token().await.to_owned();
        self.client
            .post(self.api_url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// The router the API serves, for tests that inspect its routes.
    ///
    /// # Panics
    /// After [`TestApp::stop`].
    pub fn api_router(&self) -> &axum::Router {
        self.shop
            .as_ref()
            .expect("the shop is running")
            .api_router()
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

/// Two instances of the shop on one database and one Redis server (under a key
/// prefix of their own), as a scaled-out deployment runs; an access token from one
/// is accepted by the other.
///
/// # Panics
/// When a shop cannot start.
pub async fn spawn_two_instances_sharing_redis(
    database: TestDatabase,
    redis_url: &str,
) -> (TestApp, TestApp) {
    let database = Arc::new(database);
    let prefix = format!("shop-test-{}", uuid::Uuid::now_v7().simple());
    let secret = format!("a shared signing key for {prefix}");
    let shared = |settings: &mut Settings| {
        settings.redis_url = Some(redis_url.into());
        settings.cache_key_prefix.clone_from(&prefix);
        settings.jwt_secret = Some(Secret::from(secret.clone()));
    };
    let first = spawn_with(Arc::clone(&database), false, shared).await;
    let second = spawn_with(database, false, shared).await;
    (first, second)
}

async fn spawn(database: TestDatabase, seed: bool) -> TestApp {
    spawn_with(Arc::new(database), seed, |_| {}).await
}

async fn spawn_with(
    database: Arc<TestDatabase>,
    seed: bool,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut settings = Settings {
        database_url: database.url().into(),
        api_addr: any_port,
        web_addr: any_port,
        seed,
        jwt_secret: None,
        admin: AdminSettings {
            email: Some(ADMIN_EMAIL.into()),
            password: Some(Secret::from(ADMIN_PASSWORD.to_owned())),
        },
        ..Settings::default()
    };
    customize(&mut settings);
    let shop = start(settings).await.expect("the shop starts");
    TestApp {
        api: format!("http://{}", shop.api_addr),
        web: format!("http://{}", shop.web_addr),
        client: reqwest::Client::new(),
        shop: Some(shop),
        database,
        admin: OnceCell::new(),
    }
}
