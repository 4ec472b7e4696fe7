//! The use-case pipeline over the real unit of work: each unit-of-work property,
//! on SQLite and (when configured) on PostgreSQL, each time on a fresh database.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::json;
use shop_domain::catalog::{NewProduct, Product, ProductRepository, Sku};
use shop_infrastructure::SeaOrmProductRepository;
use shop_tests::{Engine, TestDatabase, spawn_app_on};
use strata_app_api::application::{
    Access, AppError, Command, CommandHandler, Dispatcher, RequestContext, UseCaseContext,
    middleware,
};
use strata_app_api::http::{HttpSettings, with_standard_layers};
use strata_domain::Repository;
use strata_domain::ports::{Propagation, UnitOfWork};
use strata_infrastructure::{Database, SeaOrmOutbox, SeaOrmUnitOfWork};
use validator::Validate;

macro_rules! on_each_engine {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case(TestDatabase::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(database) = TestDatabase::on(Engine::Postgres).await {
                    super::$case(database).await;
                }
            }
        }
    )*};
}

on_each_engine!(
    a_use_case_that_saves_two_aggregates_then_fails_leaves_neither,
    a_panicking_handler_rolls_back_and_the_next_request_succeeds,
    a_nested_use_case_joins_the_outer_transaction,
    a_caught_inner_failure_undoes_only_the_inner_writes,
    requires_new_commits_independently_where_the_engine_allows,
    events_reach_the_outbox_only_when_their_transaction_commits,
    after_commit_hooks_run_only_after_a_real_commit,
    two_concurrent_updates_of_one_product_give_one_success_and_one_409,
);

/// Saves a product per SKU, then (optionally) fails.
#[derive(Debug, Validate)]
struct SaveProducts {
    skus: Vec<&'static str>,
    then: Then,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Succeed,
    Fail,
    Panic,
}

impl Command for SaveProducts {
    type Output = ();
    const NAME: &'static str = "test.save_products";
    const ACCESS: Access = Access::Anyone;
}

/// Saves `sku`, runs `inner` as a nested use case, ignores its failure if
/// `catch_inner`, then ends as `then` says.
#[derive(Debug, Validate)]
struct SaveAndNest {
    sku: &'static str,
    inner: InnerKind,
    catch_inner: bool,
    then: Then,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InnerKind {
    Joined { sku: &'static str, then: Then },
    New { sku: &'static str },
}

impl Command for SaveAndNest {
    type Output = ();
    const NAME: &'static str = "test.save_and_nest";
    const ACCESS: Access = Access::Anyone;
}

/// Saves `sku` in a unit of work of its own.
#[derive(Debug, Validate)]
struct SaveIndependently {
    sku: &'static str,
}

impl Command for SaveIndependently {
    type Output = ();
    const NAME: &'static str = "test.save_independently";
    const ACCESS: Access = Access::Anyone;
    const PROPAGATION: Propagation = Propagation::RequiresNew;
}

/// Saves `sku` and registers a hook that records whether, when it runs, the
/// product is visible from outside the transaction.
#[derive(Debug, Validate)]
struct SaveWithHook {
    sku: &'static str,
    then: Then,
}

impl Command for SaveWithHook {
    type Output = ();
    const NAME: &'static str = "test.save_with_hook";
    const ACCESS: Access = Access::Anyone;
}

struct Handlers {
    products: Arc<SeaOrmProductRepository>,
    outside: Arc<SeaOrmProductRepository>,
    unit_of_work: Arc<SeaOrmUnitOfWork>,
    hook_saw: Arc<Mutex<Vec<bool>>>,
}

fn product(sku: &str) -> Product {
    Product::create(NewProduct {
        name: format!("Product {sku}"),
        sku: sku.into(),
        price_minor: 1_000,
        currency: "EUR".into(),
        stock: 1,
    })
    .expect("valid product")
}

fn planned_failure() -> AppError {
    AppError::RuleViolated {
        code: "planned_failure",
        message: "the test asked this use case to fail".into(),
    }
}

fn end(then: Then) -> Result<(), AppError> {
    match then {
        Then::Succeed => Ok(()),
        Then::Fail => Err(planned_failure()),
        Then::Panic => panic!("the handler blew up mid-transaction"),
    }
}

#[async_trait]
impl CommandHandler<SaveProducts> for Handlers {
    async fn handle(&self, _cx: &UseCaseContext, command: SaveProducts) -> Result<(), AppError> {
        for sku in command.skus {
            self.products.save(&mut product(sku)).await?;
        }
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<SaveAndNest> for Handlers {
    async fn handle(&self, cx: &UseCaseContext, command: SaveAndNest) -> Result<(), AppError> {
        self.products.save(&mut product(command.sku)).await?;
        let inner = match command.inner {
            InnerKind::Joined { sku, then } => {
                cx.execute(SaveProducts {
                    skus: vec![sku],
                    then,
                })
                .await
            }
            InnerKind::New { sku } => cx.execute(SaveIndependently { sku }).await,
        };
        if !command.catch_inner {
            inner?;
        }
        end(command.then)
    }
}

#[async_trait]
impl CommandHandler<SaveIndependently> for Handlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: SaveIndependently,
    ) -> Result<(), AppError> {
        self.products.save(&mut product(command.sku)).await?;
        Ok(())
    }
}

#[async_trait]
impl CommandHandler<SaveWithHook> for Handlers {
    async fn handle(&self, _cx: &UseCaseContext, command: SaveWithHook) -> Result<(), AppError> {
        self.products.save(&mut product(command.sku)).await?;
        let outside = Arc::clone(&self.outside);
        let hook_saw = Arc::clone(&self.hook_saw);
        let sku = command.sku;
        self.unit_of_work.after_commit(Box::new(move || {
            Box::pin(async move {
                // A plain task with no unit of work: it reads what is committed.
                let visible = tokio::spawn(async move {
                    let sku = Sku::parse(sku).expect("valid sku");
                    outside.find_by_sku(&sku).await.expect("read").is_some()
                })
                .await
                .expect("read task ran");
                hook_saw.lock().expect("not poisoned").push(visible);
            })
        }))?;
        end(command.then)
    }
}

struct Fixture {
    dispatcher: Dispatcher,
    products: Arc<SeaOrmProductRepository>,
    outbox: SeaOrmOutbox,
    hook_saw: Arc<Mutex<Vec<bool>>>,
    engine: Engine,
    _database: TestDatabase,
}

async fn fixture(database: TestDatabase) -> Fixture {
    let pool: Database = database.migrated().await;
    let products = Arc::new(SeaOrmProductRepository::new(pool.clone()));
    let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(pool.clone()));
    let hook_saw = Arc::new(Mutex::new(Vec::new()));
    let handlers = Arc::new(Handlers {
        products: Arc::clone(&products),
        outside: Arc::clone(&products),
        unit_of_work: Arc::clone(&unit_of_work),
        hook_saw: Arc::clone(&hook_saw),
    });
    let dispatcher = Dispatcher::builder()
        .middleware(middleware::standard(unit_of_work))
        .command::<SaveProducts>(handlers.clone())
        .command::<SaveAndNest>(handlers.clone())
        .command::<SaveIndependently>(handlers.clone())
        .command::<SaveWithHook>(handlers)
        .build();
    Fixture {
        dispatcher,
        products,
        outbox: SeaOrmOutbox::new(pool),
        hook_saw,
        engine: database.engine(),
        _database: database,
    }
}

impl Fixture {
    async fn exists(&self, sku: &str) -> bool {
        let sku = Sku::parse(sku).expect("valid sku");
        self.products
            .find_by_sku(&sku)
            .await
            .expect("read")
            .is_some()
    }

    async fn run<C: Command>(&self, command: C) -> Result<C::Output, AppError> {
        self.dispatcher
            .execute(&RequestContext::background(), command)
            .await
    }
}

async fn a_use_case_that_saves_two_aggregates_then_fails_leaves_neither(database: TestDatabase) {
    let f = fixture(database).await;
    let result = f
        .run(SaveProducts {
            skus: vec!["ONE-1", "TWO-2"],
            then: Then::Fail,
        })
        .await;
    assert!(matches!(
        result,
        Err(AppError::RuleViolated {
            code: "planned_failure",
            ..
        })
    ));
    assert!(!f.exists("ONE-1").await);
    assert!(!f.exists("TWO-2").await);
}

async fn a_panicking_handler_rolls_back_and_the_next_request_succeeds(database: TestDatabase) {
    let f = fixture(database).await;
    let app = with_standard_layers(
        Router::new()
            .route(
                "/products/{then}",
                post(
                    |State(dispatcher): State<Dispatcher>,
                     request: RequestContext,
                     axum::extract::Path(then): axum::extract::Path<String>| async move {
                        let (sku, then) = match then.as_str() {
                            "panic" => ("DOOM-1", Then::Panic),
                            _ => ("NEXT-1", Then::Succeed),
                        };
                        dispatcher
                            .execute(
                                &request,
                                SaveProducts {
                                    skus: vec![sku],
                                    then,
                                },
                            )
                            .await
                    },
                ),
            )
            .with_state(f.dispatcher.clone()),
        HttpSettings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("bound address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();

    let panicked = client
        .post(format!("http://{addr}/products/panic"))
        .send()
        .await
        .expect("the server answers despite the panic");
    assert_eq!(panicked.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = panicked.json().await.expect("a problem document");
    assert_eq!(body["code"], "internal_error");
    assert!(
        !body.to_string().contains("blew up"),
        "the panic message stays in the log"
    );
    assert!(
        !f.exists("DOOM-1").await,
        "the panicking handler's write was rolled back"
    );

    let next = client
        .post(format!("http://{addr}/products/next"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(next.status(), StatusCode::OK);
    assert!(f.exists("NEXT-1").await);
    server.abort();
}

async fn a_nested_use_case_joins_the_outer_transaction(database: TestDatabase) {
    let f = fixture(database).await;
    let result = f
        .run(SaveAndNest {
            sku: "OUTER-1",
            inner: InnerKind::Joined {
                sku: "INNER-1",
                then: Then::Succeed,
            },
            catch_inner: false,
            then: Then::Fail,
        })
        .await;
    assert!(result.is_err());
    assert!(!f.exists("OUTER-1").await);
    assert!(
        !f.exists("INNER-1").await,
        "the inner use case succeeded but joined the outer one, which rolled back"
    );

    f.run(SaveAndNest {
        sku: "OUTER-2",
        inner: InnerKind::Joined {
            sku: "INNER-2",
            then: Then::Succeed,
        },
        catch_inner: false,
        then: Then::Succeed,
    })
    .await
    .expect("both succeed");
    assert!(f.exists("OUTER-2").await && f.exists("INNER-2").await);
}

async fn a_caught_inner_failure_undoes_only_the_inner_writes(database: TestDatabase) {
    let f = fixture(database).await;
    f.run(SaveAndNest {
        sku: "OUTER-1",
        inner: InnerKind::Joined {
            sku: "INNER-1",
            then: Then::Fail,
        },
        catch_inner: true,
        then: Then::Succeed,
    })
    .await
    .expect("the outer use case handles the inner failure and succeeds");
    assert!(f.exists("OUTER-1").await);
    assert!(
        !f.exists("INNER-1").await,
        "the failed inner use case's partial write must not be committed"
    );
    let events = f.outbox.oldest(10).await.expect("outbox read");
    assert_eq!(
        events.len(),
        1,
        "only the outer product's event: {events:?}"
    );
}

async fn requires_new_commits_independently_where_the_engine_allows(database: TestDatabase) {
    let f = fixture(database).await;
    let result = f
        .run(SaveAndNest {
            sku: "OUTER-1",
            inner: InnerKind::New { sku: "AUDIT-1" },
            catch_inner: false,
            then: Then::Fail,
        })
        .await;
    assert!(result.is_err());
    assert!(!f.exists("OUTER-1").await);
    match f.engine {
        Engine::Postgres => assert!(
            f.exists("AUDIT-1").await,
            "the independent unit of work committed before the outer one failed"
        ),
        Engine::Sqlite => {
            assert!(
                matches!(result, Err(AppError::Internal(_))),
                "SQLite refuses a second writer at once: {result:?}"
            );
            assert!(!f.exists("AUDIT-1").await);
        }
    }
}

async fn events_reach_the_outbox_only_when_their_transaction_commits(database: TestDatabase) {
    let f = fixture(database).await;
    let _ = f
        .run(SaveProducts {
            skus: vec!["GONE-1", "GONE-2"],
            then: Then::Fail,
        })
        .await;
    assert!(f.outbox.oldest(10).await.expect("outbox read").is_empty());

    f.run(SaveProducts {
        skus: vec!["KEPT-1", "KEPT-2"],
        then: Then::Succeed,
    })
    .await
    .expect("committed");
    let events = f.outbox.oldest(10).await.expect("outbox read");
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["catalog.product_created", "catalog.product_created"]
    );
    assert_eq!(events[0].aggregate_kind, "product");
    assert_eq!(events[0].aggregate_version, 1);
    assert_eq!(events[0].payload["sku"], json!("KEPT-1"));
}

async fn after_commit_hooks_run_only_after_a_real_commit(database: TestDatabase) {
    let f = fixture(database).await;
    let _ = f
        .run(SaveWithHook {
            sku: "ROLLED-1",
            then: Then::Fail,
        })
        .await;
    assert!(f.hook_saw.lock().expect("not poisoned").is_empty());

    f.run(SaveWithHook {
        sku: "KEPT-1",
        then: Then::Succeed,
    })
    .await
    .expect("committed");
    assert_eq!(
        *f.hook_saw.lock().expect("not poisoned"),
        [true],
        "the hook ran once, and saw the committed product from outside the transaction"
    );
}

async fn two_concurrent_updates_of_one_product_give_one_success_and_one_409(
    database: TestDatabase,
) {
    let app = spawn_app_on(database).await;
    let created: serde_json::Value = app
        .post_as_admin(
            "/api/products",
            &json!({
                "name": "Tea pot",
                "sku": "TEA-1",
                "price": { "amount_minor": 1_000, "currency": "EUR" },
                "stock": 1
            }),
        )
        .await
        .json()
        .await
        .expect("JSON");
    let url = app.api_url(&format!(
        "/api/products/{}/price",
        created["id"].as_str().unwrap_or_default()
    ));
    let token = app.admin_token().await.to_owned();
    let change = |amount: i64| {
        app.client
            .put(&url)
            .bearer_auth(&token)
            .json(&json!({ "price": { "amount_minor": amount, "currency": "EUR" }, "version": 1 }))
            .send()
    };
    let (left, right) = tokio::join!(change(900), change(800));
    let mut statuses = [
        left.expect("request sent").status(),
        right.expect("request sent").status(),
    ];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    app.stop().await;
}
