//! `validator` rules for catalog inputs. Each delegates to the value object's own
//! constructor, so the domain stays the one source of truth for what is valid.

use shop_domain::catalog::{Currency, Money, ProductName, Sku, Stock};
use validator::ValidationError;

fn check<T>(parsed: Result<T, strata_domain::ValidationFailure>) -> Result<(), ValidationError> {
    parsed.map(drop).map_err(|failure| failure.to_field_error())
}

pub(super) fn product_name(name: &str) -> Result<(), ValidationError> {
    check(ProductName::parse(name))
}

pub(super) fn sku(sku: &str) -> Result<(), ValidationError> {
    check(Sku::parse(sku))
}

pub(super) fn stock(units: i64) -> Result<(), ValidationError> {
    check(Stock::new(units))
}

pub(super) fn currency(code: &str) -> Result<(), ValidationError> {
    check(Currency::parse(code))
}

pub(super) fn amount_minor(amount: i64) -> Result<(), ValidationError> {
    // Any valid currency will do: the amount's range does not depend on it.
    check(Money::new(amount, "EUR"))
}
