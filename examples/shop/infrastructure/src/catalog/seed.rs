use shop_domain::catalog::{NewProduct, Product, ProductRepository};
use strata_domain::{DomainError, PageRequest, RepositoryError, UnitOfWorkError};

/// Why the demo catalog could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A demo product broke a domain rule (a bug in the demo data).
    #[error("demo product is invalid")]
    Invalid(#[from] DomainError),
    /// The repository failed.
    #[error("could not store the demo catalog")]
    Storage(#[from] RepositoryError),
    /// The unit of work around the seeding failed.
    #[error("could not commit the demo catalog")]
    UnitOfWork(#[from] UnitOfWorkError),
}

const DEMO: [(&str, &str, i64, i64); 5] = [
    ("Cast-iron tea pot", "TEA-POT-01", 4_900, 12),
    ("Porcelain cup, set of two", "CUP-SET-02", 1_850, 40),
    ("Sencha, 100 g", "SENCHA-100", 1_200, 75),
    ("Bamboo whisk", "WHISK-01", 1_599, 0),
    ("Tea towel, linen", "TOWEL-LIN", 990, 25),
];

/// Adds a few demo products when the catalog is empty, so a fresh shop has
/// something to show. Returns how many were added. Run it in a unit of work to
/// add all of them or none.
///
/// # Errors
/// When the catalog cannot be read or a product cannot be saved.
pub async fn seed_catalog(products: &dyn ProductRepository) -> Result<usize, SeedError> {
    if products.list(None, PageRequest::first()).await?.total > 0 {
        return Ok(0);
    }
    for (name, sku, price_minor, stock) in DEMO {
        let mut product = Product::create(NewProduct {
            name: name.into(),
            sku: sku.into(),
            price_minor,
            currency: "EUR".into(),
            stock,
        })?;
        products.save(&mut product).await?;
    }
    tracing::info!(products = DEMO.len(), "seeded the demo catalog");
    Ok(DEMO.len())
}
