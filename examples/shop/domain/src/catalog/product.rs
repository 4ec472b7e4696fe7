use serde::Serialize;
use strata_domain::{
    AggregateRoot, AggregateState, DomainError, DomainEvent, Entity, Id, ValidationFailure, Version,
};

use super::{Money, ProductName, Sku, Stock};

/// A product's identity.
pub type ProductId = Id<Product>;

/// What a client supplies to create a product, before any of it is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// The display name.
    pub name: String,
    /// The stock-keeping unit.
    pub sku: String,
    /// The price in minor units.
    pub price_minor: i64,
    /// The price's currency code.
    pub currency: String,
    /// The units it starts with; the inventory keeps its stock from then on.
    pub stock: i64,
}

/// What happened to a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProductEvent {
    /// The product joined the catalog.
    Created {
        /// The new product.
        id: ProductId,
        /// Its SKU.
        sku: Sku,
        /// Its first price.
        price: Money,
        /// Its first units, for the inventory, which keeps its stock from
        /// then on.
        stock: Stock,
    },
    /// The product's price changed.
    PriceChanged {
        /// The product.
        id: ProductId,
        /// The price before.
        from: Money,
        /// The price now.
        to: Money,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Created { .. } => "catalog.product_created",
            Self::PriceChanged { .. } => "catalog.product_price_changed",
        }
    }
}

/// A product in the catalog: the aggregate root of the catalog context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    id: ProductId,
    name: ProductName,
    sku: Sku,
    price: Money,
    stock: Stock,
    state: AggregateState<ProductEvent>,
}

impl Product {
    /// Creates a product from untrusted input, checking every field at once so the
    /// client hears about all of its mistakes in one answer.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming each bad field: `name`, `sku`,
    /// `price.amount_minor`, `price.currency`, `stock`.
    pub fn create(input: NewProduct) -> Result<Self, DomainError> {
        let mut failure = ValidationFailure::default();
        let name = keep(ProductName::parse(&input.name), "name", &mut failure);
        let sku = keep(Sku::parse(&input.sku), "sku", &mut failure);
        let price = keep(
            Money::new(input.price_minor, &input.currency),
            "price",
            &mut failure,
        );
        let stock = keep(Stock::new(input.stock), "stock", &mut failure);
        match (name, sku, price, stock) {
            (Some(name), Some(sku), Some(price), Some(stock)) => {
                let id = ProductId::generate();
                let mut product = Self {
                    id,
                    name,
                    sku: sku.clone(),
                    price,
                    stock,
                    state: AggregateState::new(),
                };
                product.record(ProductEvent::Created {
                    id,
                    sku,
                    price,
                    stock,
                });
                Ok(product)
            }
            _ => Err(DomainError::Invalid(failure)),
        }
    }

    /// Rebuilds a product that was saved before, at the version it was saved at.
    /// Used by repositories; records no event.
    #[must_use]
    pub fn restore(
        id: ProductId,
        name: ProductName,
        sku: Sku,
        price: Money,
        stock: Stock,
        version: Version,
    ) -> Self {
        Self {
            id,
            name,
            sku,
            price,
            stock,
            state: AggregateState::loaded(version),
        }
    }

    /// Sets a new price. The currency of a product never changes: prices already
    /// quoted and orders already placed are in it.
    ///
    /// # Errors
    /// `currency_mismatch` when `price` is in another currency.
    pub fn change_price(&mut self, price: Money) -> Result<(), DomainError> {
        if price.currency() != self.price.currency() {
            return Err(DomainError::RuleViolated {
                code: "currency_mismatch",
                message: format!(
                    "the price must stay in {}, the product's currency",
                    self.price.currency()
                ),
            });
        }
        if price != self.price {
            let from = self.price;
            self.price = price;
            self.record(ProductEvent::PriceChanged {
                id: self.id,
                from,
                to: price,
            });
        }
        Ok(())
    }

    /// The display name.
    #[must_use]
    pub fn name(&self) -> &ProductName {
        &self.name
    }

    /// The stock-keeping unit.
    #[must_use]
    pub fn sku(&self) -> &Sku {
        &self.sku
    }

    /// The current price.
    #[must_use]
    pub fn price(&self) -> Money {
        self.price
    }

    /// The units it started with (its stock is the inventory's).
    #[must_use]
    pub fn stock(&self) -> Stock {
        self.stock
    }
}

fn keep<T>(
    parsed: Result<T, ValidationFailure>,
    field: &str,
    failure: &mut ValidationFailure,
) -> Option<T> {
    parsed.map_err(|error| failure.absorb(field, error)).ok()
}

impl Entity for Product {
    type Id = ProductId;

    fn id(&self) -> ProductId {
        self.id
    }
}

impl AggregateRoot for Product {
    type Event = ProductEvent;
    const KIND: &'static str = "product";

    fn state(&self) -> &AggregateState<ProductEvent> {
        &self.state
    }

    fn state_mut(&mut self) -> &mut AggregateState<ProductEvent> {
        &mut self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tea_pot() -> NewProduct {
        NewProduct {
            name: "Tea pot".into(),
            sku: "TEA-POT-1".into(),
            price_minor: 2499,
            currency: "EUR".into(),
            stock: 10,
        }
    }

    fn eur(amount_minor: i64) -> Money {
        Money::new(amount_minor, "EUR").expect("valid money")
    }

    #[test]
    fn given_valid_input_when_created_then_it_is_new_and_records_created() {
        let mut product = Product::create(tea_pot()).expect("valid input");

        assert!(product.version().is_new());
        assert_eq!(product.sku().as_str(), "TEA-POT-1");
        assert_eq!(
            product.take_events(),
            [ProductEvent::Created {
                id: product.id(),
                sku: product.sku().clone(),
                price: eur(2499),
                stock: Stock::new(10).expect("valid stock"),
            }]
        );
        assert!(product.pending_events().is_empty());
    }

    #[test]
    fn given_several_bad_fields_when_created_then_each_is_named() {
        let input = NewProduct {
            name: String::new(),
            sku: "x".into(),
            price_minor: -5,
            currency: "EURO".into(),
            stock: -1,
        };

        let Err(DomainError::Invalid(failure)) = Product::create(input) else {
            panic!("invalid input must be refused");
        };

        let fields: Vec<_> = failure
            .violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "price.amount_minor",
                "price.currency",
                "sku",
                "stock"
            ]
        );
    }

    #[test]
    fn given_a_saved_product_when_its_price_changes_then_price_changed_is_recorded() {
        let id = ProductId::generate();
        let mut product = Product::restore(
            id,
            ProductName::parse("Tea pot").expect("valid"),
            Sku::parse("TEA-1").expect("valid"),
            eur(2499),
            Stock::new(3).expect("valid"),
            Version::new(4),
        );

        product.change_price(eur(1999)).expect("same currency");

        assert_eq!(product.price(), eur(1999));
        assert_eq!(product.version(), Version::new(4));
        assert_eq!(
            product.take_events(),
            [ProductEvent::PriceChanged {
                id,
                from: eur(2499),
                to: eur(1999),
            }]
        );
    }

    #[test]
    fn given_the_same_price_when_changed_then_nothing_is_recorded() {
        let mut product = Product::create(tea_pot()).expect("valid");
        product.take_events();

        product.change_price(eur(2499)).expect("same currency");

        assert!(product.pending_events().is_empty());
    }

    #[test]
    fn given_another_currency_when_price_changes_then_it_is_refused() {
        let mut product = Product::create(tea_pot()).expect("valid");
        let usd = Money::new(100, "USD").expect("valid");

        let error = product.change_price(usd).expect_err("currency is fixed");

        assert!(matches!(
            error,
            DomainError::RuleViolated {
                code: "currency_mismatch",
                ..
            }
        ));
        assert_eq!(product.price(), eur(2499));
    }
}
