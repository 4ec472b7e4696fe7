use strata_infrastructure::Database;
use strata_tests::database::TestDatabase;

/// A connection pool to `database`, with the shop's schema applied.
///
/// # Panics
/// When the database cannot be opened or migrated.
pub async fn migrated(database: &TestDatabase) -> Database {
    let pool = Database::connect(database.url())
        .await
        .expect("open the test database");
    shop_infrastructure::migrate(&pool)
        .await
        .expect("migrate the test database");
    pool
}
