//! The shop's sea-orm product repository, on SQLite and (when configured) on
//! PostgreSQL and MySQL. Each case runs once per engine, each time on a fresh database;
//! writes run in a unit of work, as every write must. The unit of work's own
//! promises are tested beside it, in `infrastructure/tests`.

use std::sync::Arc;

use shop_domain::catalog::{Money, NewProduct, Product, ProductRepository};
use shop_infrastructure::SeaOrmProductRepository;
use shop_tests::{TestDatabase, migrated};
use strata_domain::ports::{Propagation, in_unit_of_work};
use strata_domain::{AggregateRoot, Entity, PageRequest, Repository, RepositoryError, Version};
use strata_infrastructure::SeaOrmUnitOfWork;

strata_tests::on_each_engine!(mysql:
    a_saved_product_reads_back_equal_at_version_one,
    a_stale_save_is_a_conflict_and_changes_nothing,
    of_two_concurrent_updates_one_wins_and_one_conflicts,
    a_duplicate_sku_is_reported_as_duplicate,
    listing_pages_in_creation_order_with_a_total,
    a_search_matches_name_or_sku_ignoring_case_and_wildcards,
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
    let pool = migrated(&database).await;
    Fixture {
        products: Arc::new(SeaOrmProductRepository::new(pool.clone())),
        unit_of_work: SeaOrmUnitOfWork::new(pool),
        _database: database,
    }
}

impl Fixture {
    /// Saves `product` in a unit of work of its own.
    async fn save(&self, product: &mut Product) -> Result<(), RepositoryError> {
        in_unit_of_work(&self.unit_of_work, Propagation::Required, async {
            self.products.save(product).await
        })
        .await
    }
}

async fn a_saved_product_reads_back_equal_at_version_one(database: TestDatabase) {
    let f = fixture(database).await;
    let mut tea = product("TEA-1");
    f.save(&mut tea).await.expect("saved");
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
    f.save(&mut tea).await.expect("saved");
    let mut stale = tea.clone();

    tea.change_price(eur(900)).expect("same currency");
    f.save(&mut tea).await.expect("first update");
    stale.change_price(eur(800)).expect("same currency");
    let error = f.save(&mut stale).await.expect_err("stale");

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
    f.save(&mut tea).await.expect("saved");

    let f = Arc::new(f);
    let update = |amount: i64| {
        let f = Arc::clone(&f);
        let mut copy = tea.clone();
        tokio::spawn(async move {
            copy.change_price(eur(amount)).expect("same currency");
            f.save(&mut copy).await
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
    f.save(&mut product("TEA-1")).await.expect("saved");
    let error = f.save(&mut product("TEA-1")).await.expect_err("duplicate");
    assert!(
        matches!(error, RepositoryError::Duplicate { key: "sku", .. }),
        "{error:?}"
    );
}

async fn listing_pages_in_creation_order_with_a_total(database: TestDatabase) {
    let f = fixture(database).await;
    for n in 0..5 {
        f.save(&mut product(&format!("SKU-{n}")))
            .await
            .expect("saved");
    }
    let page = f
        .products
        .list(None, PageRequest::new(2, 2).expect("valid"))
        .await
        .expect("listed");
    let skus: Vec<_> = page.items.iter().map(|p| p.sku().to_string()).collect();
    assert_eq!(skus, ["SKU-2", "SKU-3"]);
    assert_eq!(page.total, 5);
    assert_eq!(page.total_pages(), 3);
}

async fn a_search_matches_name_or_sku_ignoring_case_and_wildcards(database: TestDatabase) {
    let f = fixture(database).await;
    for sku in ["GREEN-1", "TEA-1", "MATCHA-1", "TEA-2"] {
        f.save(&mut product(sku)).await.expect("saved");
    }
    let search = |text: &'static str| {
        let products = f.products.clone();
        async move {
            products
                .list(
                    Some(text.to_owned()),
                    PageRequest::new(1, 10).expect("valid"),
                )
                .await
                .expect("listed")
        }
    };
    let found = search("tea").await;
    let skus: Vec<_> = found.items.iter().map(|p| p.sku().to_string()).collect();
    assert_eq!(skus, ["TEA-1", "TEA-2"]);
    assert_eq!(found.total, 2);
    assert_eq!(search("product matcha").await.total, 1, "by name");
    assert_eq!(search("%").await.total, 0, "a wildcard matches itself");
    assert_eq!(search("_").await.total, 0, "a wildcard matches itself");
}
