use std::sync::Arc;

use serde_json::{Value, json};
use shop_app_api::Shop;
use shop_app_api::settings::AdminSettings;
use strata_app_api::Secret;
use strata_tests::service::{ApiClient, TestService};
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
/// database of its own (through `strata_tests::service`), and an HTTP client to
/// talk to it.
#[derive(Debug)]
pub struct TestApp {
    /// The API's base URL, such as `http://127.0.0.1:41234`.
    pub api: String,
    /// The web page's base URL.
    pub web: String,
    /// The internal API's base URL (the branches other services call).
    pub internal: String,
    /// A client for both.
    pub client: reqwest::Client,
    service: TestService<Shop>,
    admin: OnceCell<String>,
    /// The inventory's and the wallet's databases, on the shop's engine.
    contexts: Vec<Arc<TestDatabase>>,
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

    /// A GET of `path` as the administrator.
    pub async fn get_as_admin(&self, path: &str) -> reqwest::Response {
        let token = self.admin_token().await.to_owned();
        self.client
            .get(self.api_url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// The router the API serves, for tests that inspect its routes.
    ///
    /// # Panics
    /// After [`TestApp::stop`].
    pub fn api_router(&self) -> &axum::Router {
        self.service
            .running()
            .router("api")
            .expect("the shop serves its API")
    }

    /// A client of the API (`strata_tests::service::ApiClient`).
    #[must_use]
    pub fn api_client(&self) -> &ApiClient {
        self.service.api()
    }

    /// The test's database.
    #[must_use]
    pub fn database(&self) -> &TestDatabase {
        self.service.database()
    }

    /// The inventory's database.
    #[must_use]
    pub fn inventory_database(&self) -> &TestDatabase {
        &self.contexts[0]
    }

    /// The wallet's database.
    #[must_use]
    pub fn wallet_database(&self) -> &TestDatabase {
        &self.contexts[1]
    }

    /// Another instance of the shop on this one's databases, with the
    /// settings `customize` makes.
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn another_instance(
        &self,
        customize: impl FnOnce(&mut strata_runtime::Settings<Shop>),
    ) -> TestApp {
        spawn_sharing(
            Arc::clone(self.service.database()),
            self.contexts.clone(),
            false,
            customize,
        )
        .await
    }

    /// Stops the shop, letting requests in flight finish.
    pub async fn stop(self) {
        self.service.stop().await;
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

/// The shop with an empty catalog on a fresh SQLite database, after
/// `customize` changed its settings.
///
/// # Panics
/// When the shop cannot start.
pub async fn spawn_app_with(customize: impl Fn(&mut strata_runtime::Settings<Shop>)) -> TestApp {
    spawn_with(Arc::new(TestDatabase::sqlite()), false, customize).await
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
    let prefix = format!("shop-test-{}", uuid::Uuid::now_v7().simple());
    spawn_two_instances(database, |settings| {
        settings.service.redis_url = Some(redis_url.into());
        settings.service.cache_key_prefix.clone_from(&prefix);
    })
    .await
}

/// Two instances of the shop on one database, both with the settings
/// `customize` makes; an access token from one is accepted by the other.
///
/// # Panics
/// When a shop cannot start.
pub async fn spawn_two_instances(
    database: TestDatabase,
    customize: impl Fn(&mut strata_runtime::Settings<Shop>),
) -> (TestApp, TestApp) {
    let database = Arc::new(database);
    let secret = format!("a shared signing key {}", uuid::Uuid::now_v7().simple());
    let shared = |settings: &mut strata_runtime::Settings<Shop>| {
        settings.app.jwt_secret = Some(Secret::from(secret.clone()));
        customize(settings);
    };
    let contexts = context_databases(database.engine()).await;
    let first = spawn_sharing(Arc::clone(&database), contexts.clone(), false, shared).await;
    let second = spawn_sharing(database, contexts, false, shared).await;
    (first, second)
}

async fn spawn(database: TestDatabase, seed: bool) -> TestApp {
    spawn_with(Arc::new(database), seed, |_| {}).await
}

/// Fresh databases for the inventory and the wallet, on `engine`.
async fn context_databases(engine: crate::Engine) -> Vec<Arc<TestDatabase>> {
    vec![
        Arc::new(TestDatabase::on(engine).await),
        Arc::new(TestDatabase::on(engine).await),
    ]
}

async fn spawn_with(
    database: Arc<TestDatabase>,
    seed: bool,
    customize: impl FnOnce(&mut strata_runtime::Settings<Shop>),
) -> TestApp {
    let contexts = context_databases(database.engine()).await;
    spawn_sharing(database, contexts, seed, customize).await
}

async fn spawn_sharing(
    database: Arc<TestDatabase>,
    contexts: Vec<Arc<TestDatabase>>,
    seed: bool,
    customize: impl FnOnce(&mut strata_runtime::Settings<Shop>),
) -> TestApp {
    let (inventory, wallet) = (contexts[0].url().to_owned(), contexts[1].url().to_owned());
    let service = TestService::<Shop>::spawn_on(database, |settings| {
        settings.service.seed = seed;
        settings.app.inventory.database_url = inventory.as_str().into();
        settings.app.wallet.database_url = wallet.as_str().into();
        settings.app.admin = AdminSettings {
            email: Some(ADMIN_EMAIL.into()),
            password: Some(Secret::from(ADMIN_PASSWORD.to_owned())),
        };
        customize(settings);
    })
    .await;
    TestApp {
        api: service.base_url("api"),
        web: service.base_url("web"),
        internal: service.base_url("internal"),
        client: reqwest::Client::new(),
        service,
        admin: OnceCell::new(),
        contexts,
    }
}

/// A client calling from `address` (any of 127.0.0.0/8 reaches the test shop),
/// so tests can pose as many clients.
///
/// # Panics
/// When `address` is not an IP address.
#[must_use]
pub fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(address.parse().expect("an address")))
        .build()
        .expect("a client")
}
