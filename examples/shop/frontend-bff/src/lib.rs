//! The sample shop's web app, served by its backend-for-frontend: pages
//! rendered on the server from app-api's answers (never from the database),
//! usable without JavaScript, from sign-up to checkout, and an operator's
//! dashboard. The browser holds only an opaque session cookie; its tokens
//! stay here.

mod admin;
mod pages;
mod view;

use std::time::Duration;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use strata_bff::{HotCache, SessionSettings, Sessions, Upstream, session_layer};

/// How the web app runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// Whether the session cookie is sent over HTTPS only; off only to
    /// develop over plain HTTP.
    pub secure_cookie: bool,
}

/// Catalog pages and products as app-api answered them: served from memory
/// while fresh (5 s), stale for up to five minutes while one refresh runs
/// (or while the API is down), and dropped when the catalog's events say a
/// product changed.
#[derive(Clone, Debug)]
pub struct CatalogCache {
    entries: HotCache<serde_json::Value>,
}

impl Default for CatalogCache {
    fn default() -> Self {
        Self {
            entries: HotCache::new(Duration::from_secs(5), Duration::from_secs(300), 10_000),
        }
    }
}

impl CatalogCache {
    /// Forgets what is held about product `id` and every catalog page, which
    /// may list it.
    pub async fn product_changed(&self, id: &str) {
        self.entries.invalidate(&format!("product/{id}")).await;
        self.entries.invalidate_all();
    }
}

/// What every page handler shares.
#[derive(Clone)]
pub(crate) struct Web {
    pub(crate) api: Upstream,
    pub(crate) catalog: HotCache<serde_json::Value>,
}

/// The web app's routes, fetching from the app-api at `api` and keeping
/// catalog data in `catalog`.
pub fn router(api: Upstream, settings: &WebSettings, catalog: &CatalogCache) -> Router {
    let sessions = Sessions::new(
        SessionSettings {
            cookie_name: "shop_session".into(),
            secure: settings.secure_cookie,
            ..SessionSettings::default()
        },
        api.clone(),
    );
    let web = Web {
        api,
        catalog: catalog.entries.clone(),
    };
    Router::new()
        .route("/", get(pages::catalog))
        .route("/products/{id}", get(pages::product))
        .route("/sign-up", get(pages::sign_up_form).post(pages::sign_up))
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/cart", get(pages::cart))
        .route("/cart/items", post(pages::add_to_cart))
        .route("/cart/items/{id}/remove", post(pages::remove_from_cart))
        .route("/checkout", post(pages::checkout))
        .route("/orders", get(pages::orders))
        .route("/orders/{id}", get(pages::order))
        .route("/orders/{id}/status", get(pages::order_status))
        .route("/wallet", get(pages::wallet))
        .route("/wallet/top-ups", post(pages::top_up))
        .route("/admin", get(admin::dashboard))
        .route("/admin/transactions/{gid}", get(admin::transaction))
        .route("/admin/transactions/{gid}/retry", post(admin::retry))
        .route("/admin/transactions/{gid}/force", post(admin::force))
        .route("/static/app.js", get(script))
        .layer(axum::middleware::from_fn_with_state(
            sessions,
            session_layer,
        ))
        .with_state(web)
}

async fn script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("app.js"),
    )
}
