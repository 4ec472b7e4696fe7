//! The sea-orm repository and unit of work, on SQLite and (when configured) on
//! PostgreSQL. Each case runs once per engine, each time on a fresh database.

use std::sync::Arc;

use shop_domain::catalog::{Money, NewProduct, Product, ProductRepository};
use shop_infrastructure::SeaOrmProductRepository;
use shop_tests::{Engine, TestDatabase};
use strata_domain::ports::{Propagation, in_unit_of_work};
use strata_domain::{
    AggregateRoot, Entity, PageRequest, Repository, RepositoryError, UnitOfWork, UnitOfWorkError,
    Version,
};
use strata_infrastructure::SeaOrmUnitOfWork;

/// Runs an `async fn(TestDatabase)` once on SQLite and once on PostgreSQL.
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
    a_saved_product_reads_back_equal_at_version_one,
    a_stale_save_is_a_conflict_and_changes_nothing,
    of_two_concurrent_updates_one_wins_and_one_conflicts,
    a_duplicate_sku_is_reported_as_duplicate,
    listing_pages_in_creation_order_with_a_total,
    a_failing_unit_of_work_leaves_none_of_its_writes,
    a_committed_unit_of_work_keeps_all_of_its_writes,
    a_panicking_unit_of_work_rolls_back_and_the_next_one_works,
    a_nested_unit_of_work_joins_the_outer_transaction,
);

fn product(sku: &str) -> Product {
    Product::create(NewProduct {
        name: format!("Product {sku}"),
        sku: sku.into(),
        price_minor: 1_000,
        currency: "EUR".into(),
        stock: 5,
    })
    .expect("valid product")
}

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, "EUR").expect("valid money")
}

struct Fixture {
    products: Arc<SeaOrmProductRepository>,
    unit_of_work: SeaOrmUnitOfWork,
    _database: TestDatabase,
}

async fn fixture(database: TestDatabase) -> Fixture {
    let pool = database.migrated().await;
    Fixture {
        products: Arc::new(SeaOrmProductRepository::new(pool.clone())),
        unit_of_work: SeaOrmUnitOfWork::new(pool),
        _database: database,
    }
}

/// What a unit of work under test can fail with.
#[derive(Debug)]
enum Failure {
    Planned,
    #[allow(dead_code)] // carried for the assertion messages
    Repository(RepositoryError),
    #[allow(dead_code)]
    UnitOfWork(UnitOfWorkError),
}

impl From<RepositoryError> for Failure {
    fn from(error: RepositoryError) -> Self {
        Self::Repository(error)
    }
}

impl From<UnitOfWorkError> for Failure {
    fn from(error: UnitOfWorkError) -> Self {
        Self::UnitOfWork(error)
    }
}

async fn a_saved_product_reads_back_equal_at_version_one(database: TestDatabase) {
    let f = fixture(database).await;
    let mut tea = product("TEA-1");
    f.products.save(&mut tea).await.expect("saved");
    assert_eq!(tea.version(), Version::new(1));

    let found = f
        .products
        .find(tea.id())
        .await
        .expect("read")
        .expect("present");
    tea.take_events();
    assert_eq!(found, tea);
    let by_sku = f
        .products
        .find_by_sku(tea.sku())
        .await
        .expect("read")
        .expect("present");
    assert_eq!(by_sku.id(), tea.id());
}

async fn a_stale_save_is_a_conflict_and_changes_nothing(database: TestDatabase) {
    let f = fixture(database).await;
    let mut tea = product("TEA-1");
    f.products.save(&mut tea).await.expect("saved");
    let mut stale = tea.clone();

    tea.change_price(eur(900)).expect("same currency");
    f.products.save(&mut tea).await.expect("first update");
    stale.change_price(eur(800)).expect("same currency");
    let error = f.products.save(&mut stale).await.expect_err("stale");

    assert!(
        matches!(error, RepositoryError::Conflict { expected, .. } if expected == Version::new(1))
    );
    let stored = f
        .products
        .find(tea.id())
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored.price(), eur(900));
    assert_eq!(stored.version(), Version::new(2));
}

async fn of_two_concurrent_updates_one_wins_and_one_conflicts(database: TestDatabase) {
    let f = fixture(database).await;
    let mut tea = product("TEA-1");
    f.products.save(&mut tea).await.expect("saved");

    let update = |amount: i64| {
        let products = Arc::clone(&f.products);
        let mut copy = tea.clone();
        tokio::spawn(async move {
            copy.change_price(eur(amount)).expect("same currency");
            products.save(&mut copy).await
        })
    };
    let (left, right) = tokio::join!(update(700), update(600));
    let outcomes = [left.expect("task ran"), right.expect("task ran")];

    let wins = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let conflicts = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(RepositoryError::Conflict { .. })))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{outcomes:?}");
    let stored = f
        .products
        .find(tea.id())
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored.version(), Version::new(2));
}

async fn a_duplicate_sku_is_reported_as_duplicate(database: TestDatabase) {
    let f = fixture(database).await;
    f.products.save(&mut product("TEA-1")).await.expect("saved");
    let error = f
        .products
        .save(&mut product("TEA-1"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(error, RepositoryError::Duplicate { key: "sku", .. }),
        "{error:?}"
    );
}

async fn listing_pages_in_creation_order_with_a_total(database: TestDatabase) {
    let f = fixture(database).await;
    for n in 0..5 {
        f.products
            .save(&mut product(&format!("SKU-{n}")))
            .await
            .expect("saved");
    }
    let page = f
        .products
        .list(PageRequest::new(2, 2).expect("valid"))
        .await
        .expect("listed");
    let skus: Vec<_> = page.items.iter().map(|p| p.sku().to_string()).collect();
    assert_eq!(skus, ["SKU-2", "SKU-3"]);
    assert_eq!(page.total, 5);
    assert_eq!(page.total_pages(), 3);
}

async fn a_failing_unit_of_work_leaves_none_of_its_writes(database: TestDatabase) {
    let f = fixture(database).await;
    let (mut first, mut second) = (product("ONE-1"), product("TWO-2"));
    let result: Result<(), Failure> =
        in_unit_of_work(&f.unit_of_work, Propagation::Required, async {
            f.products.save(&mut first).await?;
            f.products.save(&mut second).await?;
            Err(Failure::Planned)
        })
        .await;

    assert!(matches!(result, Err(Failure::Planned)));
    assert!(f.products.find(first.id()).await.expect("read").is_none());
    assert!(f.products.find(second.id()).await.expect("read").is_none());
}

async fn a_committed_unit_of_work_keeps_all_of_its_writes(database: TestDatabase) {
    let f = fixture(database).await;
    let (mut first, mut second) = (product("ONE-1"), product("TWO-2"));
    in_unit_of_work::<_, Failure, _>(&f.unit_of_work, Propagation::Required, async {
        f.products.save(&mut first).await?;
        f.products.save(&mut second).await?;
        Ok(())
    })
    .await
    .expect("committed");

    assert!(f.products.find(first.id()).await.expect("read").is_some());
    assert!(f.products.find(second.id()).await.expect("read").is_some());
}

async fn a_panicking_unit_of_work_rolls_back_and_the_next_one_works(database: TestDatabase) {
    let f = Arc::new(fixture(database).await);
    let mut doomed = product("DOOM-1");
    let doomed_id = doomed.id();
    let worker = Arc::clone(&f);
    let panicked = tokio::spawn(async move {
        let _: Result<(), Failure> =
            in_unit_of_work(&worker.unit_of_work, Propagation::Required, async {
                worker.products.save(&mut doomed).await?;
                panic!("the handler blew up mid-transaction");
            })
            .await;
    })
    .await;
    assert!(panicked.is_err_and(|error| error.is_panic()));
    assert!(f.products.find(doomed_id).await.expect("read").is_none());

    let mut next = product("NEXT-1");
    in_unit_of_work::<_, Failure, _>(&f.unit_of_work, Propagation::Required, async {
        f.products.save(&mut next).await?;
        Ok(())
    })
    .await
    .expect("the next unit of work commits");
    assert!(f.products.find(next.id()).await.expect("read").is_some());
}

async fn a_nested_unit_of_work_joins_the_outer_transaction(database: TestDatabase) {
    let f = fixture(database).await;
    let mut inner_product = product("INNER-1");
    let unit_of_work: &dyn UnitOfWork = &f.unit_of_work;
    let result: Result<(), Failure> = in_unit_of_work(unit_of_work, Propagation::Required, async {
        in_unit_of_work::<_, Failure, _>(unit_of_work, Propagation::Required, async {
            f.products.save(&mut inner_product).await?;
            Ok(())
        })
        .await?;
        // The inner one "committed", but it joined this one, which now fails.
        Err(Failure::Planned)
    })
    .await;

    assert!(matches!(result, Err(Failure::Planned)));
    assert!(
        f.products
            .find(inner_product.id())
            .await
            .expect("read")
            .is_none(),
        "the inner unit of work's write must go with the outer rollback"
    );
}
