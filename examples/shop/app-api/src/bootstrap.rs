//! The composition root: the one module that names the infrastructure and the
//! web page and wires them into the application. Everything around it — the
//! command line, configuration, the database and migrations, the cache,
//! idempotency keys, readiness, metrics, workers, serving and shutdown — is
//! the service runtime's (`strata-runtime`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shop_infrastructure::{
    Argon2PasswordHasher, InventoryMigrator, Migrator, SeaOrmOrderRepository,
    SeaOrmProductRepository, SeaOrmRefreshTokens, SeaOrmSalesReportStore, SeaOrmStockLedger,
    SeaOrmUserRepository, SeaOrmWallets, SeaOrmWishlistRepository, TccOrderPlacement,
    WalletMigrator, seed_catalog,
};
use strata_app_api::Secret;
use strata_app_api::application::audit::{AuditTrailReader, ReadAuditTrail};
use strata_app_api::application::consumers::{
    ConsumerOperator, ListConsumerDeadLetters, RetryConsumerDeadLetter,
};
use strata_app_api::application::outbox::{ListDeadLetters, OutboxOperator, RetryDeadLetter};
use strata_app_api::application::transactions::{
    ForceTransaction, GetTransaction, ListTransactions, RetryTransaction, TransactionOperator,
};
use strata_app_api::application::{Dispatcher, RequestContext};
use strata_app_api::config::{ConfigError, Environment};
use strata_app_api::http::auth::{JwtAlgorithm, JwtKey, JwtSettings, TokenService};
use strata_app_api::workers::Periodic;
use strata_bff::Upstream;
use strata_domain::ports::{RateLimiter, SystemClock};
use strata_infrastructure::consumer::GroupSettings;
use strata_infrastructure::{InMemoryRateLimiter, RateLimit, SeaOrmOutbox};
use strata_runtime::{
    BoxError, ContextDatabase, Resources, Service, Settings, Startup, in_transaction,
};
use utoipa_axum::router::OpenApiRouter;

use crate::api::{self, AppState, internal_router, router, shop_routes};
use crate::application::catalog::{self, Catalog};
use crate::application::identity::{
    self, EnsureAdministrator, Identity, IdentityPorts, IdentitySettings, PurgeExpiredSessions,
    Throttles,
};
use crate::application::inventory::{self, Inventory};
use crate::application::ordering::{self, Ordering, OrderingPorts, SettleOrders};
use crate::application::permissions::{ordering_principal, system_principal};
use crate::application::reports::{self, Reports};
use crate::application::wallet::{self, WalletService};
use crate::application::wishlists::{self, Wishlists};
use crate::messaging::{CatalogEventsToInventory, EventsToReport};
use crate::settings::{AdminSettings, CONFIG_FILES, ShopSettings, check_for};

/// The sample shop, as the service runtime runs it.
#[derive(Debug)]
pub struct Shop;

#[async_trait]
impl Service for Shop {
    type Settings = ShopSettings;
    type Migrator = Migrator;

    fn name() -> &'static str {
        "shop"
    }

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn config_files() -> &'static [(Environment, &'static str)] {
        &CONFIG_FILES
    }

    fn demo_data() -> &'static str {
        "demo products"
    }

    fn check(settings: &Settings<Self>, environment: Environment) -> Result<(), ConfigError> {
        let split = settings.service.only.is_some()
            || settings.app.inventory.url.is_some()
            || settings.app.wallet.url.is_some();
        check_for(environment, &settings.app, split)
    }

    fn contexts(settings: &ShopSettings) -> Vec<ContextDatabase> {
        vec![
            ContextDatabase::new::<InventoryMigrator>(
                "inventory",
                settings.inventory.database_url.clone(),
            ),
            ContextDatabase::new::<WalletMigrator>("wallet", settings.wallet.database_url.clone()),
        ]
    }

    async fn seed(resources: &Resources<Self>) -> Result<usize, BoxError> {
        let products = SeaOrmProductRepository::new(resources.database().clone());
        Ok(in_transaction(resources, seed_catalog(&products)).await?)
    }

    async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError> {
        let settings = startup.settings().clone();
        let tokens = Arc::new(token_service(settings.jwt_secret.clone())?);
        if let Some(only) = startup.only().map(str::to_owned) {
            return start_context(startup, &only, tokens).await;
        }
        let database = startup.database().clone();
        let products = Arc::new(SeaOrmProductRepository::new(database.clone()));
        let identity = Identity::new(
            IdentityPorts {
                users: Arc::new(SeaOrmUserRepository::new(database.clone())),
                hasher: Arc::new(Argon2PasswordHasher::default()),
                tokens: Arc::new(SeaOrmRefreshTokens::new(database.clone())),
                clock: Arc::new(SystemClock),
                unit_of_work: startup.unit_of_work(),
            },
            Throttles {
                failed_sign_ins_per_account_and_client: throttle(RateLimit::per(
                    5,
                    Duration::from_secs(60),
                ))?,
                failed_sign_ins_per_client: throttle(RateLimit::per(30, Duration::from_secs(60)))?,
                registrations_per_client: throttle(RateLimit::per(
                    30,
                    Duration::from_secs(60 * 60),
                ))?,
            },
            IdentitySettings::default(),
        )
        .await?;
        let wishlists = Wishlists::new(
            Arc::new(SeaOrmWishlistRepository::new(database.clone())),
            products.clone(),
        );
        // The listeners are bound first: a context hosted here is called at
        // the internal address, over HTTP, as one run on its own would be.
        let api = startup
            .bind("api", startup.service_settings().api_addr)
            .await?;
        let internal = startup.bind("internal", settings.internal_addr).await?;
        let here = format!("http://{}", internal.addr());
        let inventory_url = settings
            .inventory
            .url
            .clone()
            .unwrap_or_else(|| here.clone());
        let wallet_url = settings.wallet.url.clone().unwrap_or_else(|| here.clone());
        let issuer = Arc::clone(&tokens);
        let coordinator = startup.coordinator(Some(Arc::new(move || {
            issuer
                .issue(&ordering_principal())
                .map(|issued| issued.token)
                .map_err(|error| tracing::error!(%error, "no service token for a branch call"))
                .ok()
        })));
        let ordering = Ordering::new(
            OrderingPorts {
                orders: Arc::new(SeaOrmOrderRepository::new(database.clone())),
                products: products.clone(),
                placement: Arc::new(TccOrderPlacement::new(
                    coordinator.clone(),
                    format!(
                        "{}{}",
                        inventory_url.trim_end_matches('/'),
                        api::inventory::BRANCH_PATH
                    ),
                    format!(
                        "{}{}",
                        wallet_url.trim_end_matches('/'),
                        api::wallet::BRANCH_PATH
                    ),
                )),
                unit_of_work: startup.unit_of_work(),
                clock: Arc::new(SystemClock),
            },
            // Longer than one branch call: the request has begun its
            // transaction by then, or died.
            startup.service_settings().tcc.call_timeout,
        );
        let dispatcher = catalog::register(startup.dispatcher(), Arc::new(Catalog::new(products)));
        let dispatcher = ordering::register(dispatcher, Arc::new(ordering));
        let dispatcher = identity::register(dispatcher, Arc::new(identity));
        let operator = Arc::new(OutboxOperator::new(Arc::new(SeaOrmOutbox::new(
            database.clone(),
        ))));
        let reports = Reports::new(Arc::new(SeaOrmSalesReportStore::new(database.clone())));
        let dispatcher = wishlists::register(dispatcher, Arc::new(wishlists));
        let dispatcher = reports::register(dispatcher, Arc::new(reports))
            .query::<ReadAuditTrail>(Arc::new(AuditTrailReader::new(startup.audit_trail())))
            .query::<ListDeadLetters>(operator.clone())
            .command::<RetryDeadLetter>(operator);
        let transactions = Arc::new(TransactionOperator::new(Arc::new(coordinator)));
        let consumers = Arc::new(ConsumerOperator::new(startup.consumer_dead_letters()));
        let dispatcher = dispatcher
            .query::<ListConsumerDeadLetters>(consumers.clone())
            .command::<RetryConsumerDeadLetter>(consumers)
            .query::<ListTransactions>(transactions.clone())
            .query::<GetTransaction>(transactions.clone())
            .command::<RetryTransaction>(transactions.clone())
            .command::<ForceTransaction>(transactions)
            .build();
        // The report adds up counts and keeps the latest price change, so it
        // is right in any order: read in order where the bus keeps a log, as
        // a group on RabbitMQ.
        let report = EventsToReport::new(dispatcher.clone());
        if startup.reads_in_order() {
            startup.consume("sales_report", report)?;
        } else {
            startup.consume_group("sales_report", report, GroupSettings::default())?;
        }

        // The web app's catalog cache forgets a product when its events say
        // it changed.
        let catalog_cache = shop_bff::CatalogCache::default();
        let invalidation = CatalogToWebCache(catalog_cache.clone());
        if startup.reads_in_order() {
            startup.consume("web_catalog_cache", invalidation)?;
        } else {
            startup.consume_group("web_catalog_cache", invalidation, GroupSettings::default())?;
        }

        ensure_administrator(&dispatcher, &settings.admin).await?;
        startup.worker(session_purge(dispatcher.clone()));
        startup.worker(order_settlement(
            dispatcher.clone(),
            startup.service_settings().tcc.retry_interval,
        ));

        let web = startup.bind("web", settings.web_addr).await?;
        let state = AppState::new(dispatcher, tokens);
        let mut routes = shop_routes();
        let mut branches = OpenApiRouter::new();
        for (name, remote) in [
            ("inventory", settings.inventory.url.is_some()),
            ("wallet", settings.wallet.url.is_some()),
        ] {
            if !remote {
                let (public, branch) = context_routes(startup, name, &state).await?;
                routes = routes.merge(public);
                branches = branches.merge(branch);
            }
        }
        let internal_router = internal_router(
            state.clone(),
            branches,
            startup.http_settings(),
            startup.operations(),
        );
        let (api_router, _document) = router(
            state,
            routes,
            startup.http_settings(),
            startup.client_limiter()?,
            startup.operations(),
        );
        let upstream = Upstream::new(
            settings
                .web
                .api_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", api.addr())),
        )?;
        startup.announce(format!("Shop API:      http://{}/api/products", api.addr()));
        startup.announce(format!("Shop web page: http://{}/", web.addr()));
        startup.announce(format!("API docs:      http://{}/docs", api.addr()));
        startup.serve(api, api_router);
        startup.serve(internal, internal_router);
        let web_settings = shop_bff::WebSettings {
            secure_cookie: settings.web.secure_cookie,
        };
        startup.serve(
            web,
            shop_bff::router(upstream, &web_settings, &catalog_cache),
        );
        Ok(())
    }
}

/// Wires context `name` (`inventory`, `wallet`) on its own database: its use
/// cases on the context's middleware, its TCC participant behind the
/// context's barrier, its consumers; answers its public routes and its
/// branch routes, over `state`'s tokens and the context's dispatcher.
async fn context_routes(
    startup: &mut Startup<Shop>,
    name: &str,
    state: &AppState,
) -> Result<(OpenApiRouter<AppState>, OpenApiRouter<AppState>), BoxError> {
    let context = startup.context(name).await?;
    let barrier = startup.context_barrier(&context);
    let database = context.database().clone();
    Ok(match name {
        "inventory" => {
            let handlers = Arc::new(Inventory::new(Arc::new(SeaOrmStockLedger::new(database))));
            let dispatcher = inventory::register(context.dispatcher(), &handlers, &barrier).build();
            startup.consume_in(
                &context,
                "inventory_stock",
                CatalogEventsToInventory::new(dispatcher.clone()),
            )?;
            let state = state.over(dispatcher);
            (
                api::inventory::routes(state.clone()),
                api::inventory::branch_routes(state),
            )
        }
        _ => {
            let handlers = Arc::new(WalletService::new(Arc::new(SeaOrmWallets::new(database))));
            let dispatcher = wallet::register(context.dispatcher(), &handlers, &barrier).build();
            let state = state.over(dispatcher);
            (
                api::wallet::routes(state.clone()),
                api::wallet::branch_routes(state),
            )
        }
    })
}

/// Runs context `name` alone (`shop serve --only inventory`): its public
/// routes on `api_addr`, its branch on `internal_addr`.
async fn start_context(
    startup: &mut Startup<Shop>,
    name: &str,
    tokens: Arc<TokenService>,
) -> Result<(), BoxError> {
    let api = startup
        .bind("api", startup.service_settings().api_addr)
        .await?;
    let internal = startup
        .bind("internal", startup.settings().internal_addr)
        .await?;
    // The shop's own use cases are not served here; the state's dispatcher
    // is the context's for each of its routes.
    let state = AppState::new(startup.dispatcher().build(), tokens);
    let (routes, branches) = context_routes(startup, name, &state).await?;
    let (api_router, _document) = router(
        state.clone(),
        routes,
        startup.http_settings(),
        startup.client_limiter()?,
        startup.operations(),
    );
    let internal_router = internal_router(
        state,
        branches,
        startup.http_settings(),
        startup.operations(),
    );
    startup.announce(format!("Shop {name}:          http://{}", api.addr()));
    startup.announce(format!("Shop {name} branch:   http://{}", internal.addr()));
    startup.serve(api, api_router);
    startup.serve(internal, internal_router);
    Ok(())
}

/// Makes the configured administrator account, through its use case, as the
/// shop itself.
async fn ensure_administrator(
    dispatcher: &Dispatcher,
    admin: &AdminSettings,
) -> Result<(), BoxError> {
    let (Some(email), Some(password)) = (&admin.email, &admin.password) else {
        return Ok(());
    };
    let password = password.expose_str().ok_or("admin.password is not UTF-8")?;
    let made = dispatcher
        .execute(
            &RequestContext::background().with_principal(system_principal()),
            EnsureAdministrator {
                email: email.clone(),
                password: shop_domain::identity::Password::offered(password),
            },
        )
        .await?;
    if made {
        tracing::info!(email = %email, "made the administrator account");
    }
    Ok(())
}

/// Forgets expired refresh tokens every hour, through its use case.
fn session_purge(dispatcher: Dispatcher) -> impl strata_app_api::workers::Worker {
    Periodic::new("session_purge", Duration::from_secs(60 * 60), move || {
        let dispatcher = dispatcher.clone();
        async move {
            let request = RequestContext::background().with_principal(system_principal());
            let command = PurgeExpiredSessions {
                reason: "schedule".into(),
            };
            let purged = dispatcher.execute(&request, command).await?;
            if purged > 0 {
                tracing::info!(purged, "forgot expired refresh tokens");
            }
            Ok(())
        }
    })
}

/// Settles the orders whose transaction finished after their request ended,
/// through its use case, every `interval`.
fn order_settlement(
    dispatcher: Dispatcher,
    interval: Duration,
) -> impl strata_app_api::workers::Worker {
    Periodic::new("order_settlement", interval, move || {
        let dispatcher = dispatcher.clone();
        async move {
            let request = RequestContext::background().with_principal(system_principal());
            let settled = dispatcher
                .execute(&request, SettleOrders { page: 100 })
                .await?;
            if settled > 0 {
                tracing::info!(
                    settled,
                    "settled orders whose transaction ended after their request"
                );
            }
            Ok(())
        }
    })
}

/// Access tokens: HS256 with the configured key, or a random one.
fn token_service(secret: Option<Secret>) -> Result<TokenService, BoxError> {
    let secret = secret.unwrap_or_else(|| {
        tracing::warn!(
            "SHOP_JWT_SECRET is not set: access tokens are signed with a random key and \
             stop working when the process ends"
        );
        Secret::from(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    });
    Ok(TokenService::new(JwtSettings {
        issuer: "shop".into(),
        audience: "shop-api".into(),
        algorithm: JwtAlgorithm::HS256,
        keys: vec![JwtKey::shared_secret("shop-1", secret)],
        signing_kid: Some("shop-1".into()),
        leeway: Duration::from_secs(30),
        access_token_lifetime: Duration::from_secs(15 * 60),
    })?)
}

fn throttle(limit: RateLimit) -> Result<Arc<dyn RateLimiter>, BoxError> {
    Ok(Arc::new(InMemoryRateLimiter::new(limit)?))
}

/// Drops what the web app holds about a product when an event of it arrives
/// (consumer `web_catalog_cache`).
struct CatalogToWebCache(shop_bff::CatalogCache);

#[async_trait::async_trait]
impl strata_app_api::messaging::MessageHandler for CatalogToWebCache {
    fn wants(&self, topic: &str) -> bool {
        topic == "product"
    }

    async fn handle(
        &self,
        _request: &strata_app_api::application::RequestContext,
        message: &strata_domain::ports::Message,
    ) -> Result<(), strata_app_api::application::AppError> {
        self.0.product_changed(&message.key).await;
        Ok(())
    }
}
