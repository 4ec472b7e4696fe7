use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use strata_domain::validator::ValidateLength;
use strata_domain::{
    AggregateRoot, AggregateState, DomainError, DomainEvent, Entity, Id, Page, PageRequest,
    Repository, RepositoryError, ValidationFailure, Version,
};

use crate::catalog::ProductId;
use crate::identity::UserId;

/// A wishlist's identity.
pub type WishlistId = Id<Wishlist>;

/// A wishlist's name: 1 to 80 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WishlistName(String);

impl WishlistName {
    /// The longest name accepted, in characters.
    pub const MAX_CHARS: u64 = 80;
    /// What a name looks like: printable, not only white space.
    pub const PATTERN: &str = strata_domain::text::PRINTABLE;

    /// Parses a name.
    ///
    /// # Errors
    /// When it is empty or longer than 80 characters, or holds control characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationFailure> {
        let name = raw.trim();
        if !name.validate_length(Some(1), Some(Self::MAX_CHARS), None)
            || !strata_domain::text::is_printable(name)
        {
            return Err(ValidationFailure::single(
                "",
                "length",
                "must be 1 to 80 printable characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WishlistName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened to a wishlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WishlistEvent {
    /// A customer started a wishlist.
    Created {
        /// The wishlist.
        id: WishlistId,
        /// Its owner.
        owner: UserId,
    },
    /// A product was added.
    ProductAdded {
        /// The wishlist.
        id: WishlistId,
        /// The product.
        product: ProductId,
    },
}

impl DomainEvent for WishlistEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Created { .. } => "wishlists.wishlist_created",
            Self::ProductAdded { .. } => "wishlists.product_added",
        }
    }
}

/// Products a customer keeps for later; the wishlist context's aggregate root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wishlist {
    id: WishlistId,
    owner: UserId,
    name: WishlistName,
    products: Vec<ProductId>,
    state: AggregateState<WishlistEvent>,
}

impl Wishlist {
    /// The most products one wishlist holds.
    pub const MAX_PRODUCTS: usize = 100;

    /// A new, empty wishlist of `owner`.
    #[must_use]
    pub fn create(owner: UserId, name: WishlistName) -> Self {
        let id = WishlistId::generate();
        let mut wishlist = Self {
            id,
            owner,
            name,
            products: Vec::new(),
            state: AggregateState::new(),
        };
        wishlist.record(WishlistEvent::Created { id, owner });
        wishlist
    }

    /// Rebuilds a stored wishlist.
    #[must_use]
    pub fn restore(
        id: WishlistId,
        owner: UserId,
        name: WishlistName,
        products: Vec<ProductId>,
        version: Version,
    ) -> Self {
        Self {
            id,
            owner,
            name,
            products,
            state: AggregateState::loaded(version),
        }
    }

    /// Adds `product`; adding one already there changes nothing.
    ///
    /// # Errors
    /// `wishlist_full` when it already holds [`Self::MAX_PRODUCTS`].
    pub fn add(&mut self, product: ProductId) -> Result<(), DomainError> {
        if self.products.contains(&product) {
            return Ok(());
        }
        if self.products.len() >= Self::MAX_PRODUCTS {
            return Err(DomainError::RuleViolated {
                code: "wishlist_full",
                message: format!("a wishlist holds at most {} products", Self::MAX_PRODUCTS),
            });
        }
        self.products.push(product);
        self.record(WishlistEvent::ProductAdded {
            id: self.id,
            product,
        });
        Ok(())
    }

    /// Whose it is.
    #[must_use]
    pub fn owner(&self) -> UserId {
        self.owner
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &WishlistName {
        &self.name
    }

    /// The products, in the order they were added.
    #[must_use]
    pub fn products(&self) -> &[ProductId] {
        &self.products
    }
}

impl Entity for Wishlist {
    type Id = WishlistId;

    fn id(&self) -> WishlistId {
        self.id
    }
}

impl AggregateRoot for Wishlist {
    type Event = WishlistEvent;
    const KIND: &'static str = "wishlist";

    fn state(&self) -> &AggregateState<WishlistEvent> {
        &self.state
    }

    fn state_mut(&mut self) -> &mut AggregateState<WishlistEvent> {
        &mut self.state
    }
}

/// Where wishlists are kept.
#[async_trait]
pub trait WishlistRepository: Repository<Wishlist> {
    /// One page of `owner`'s wishlists, oldest first.
    async fn list_by_owner(
        &self,
        owner: UserId,
        page: PageRequest,
    ) -> Result<Page<Wishlist>, RepositoryError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`WishlistRepository`].
    pub WishlistRepository {}

    #[async_trait]
    impl Repository<Wishlist> for WishlistRepository {
        async fn find(&self, id: WishlistId) -> Result<Option<Wishlist>, RepositoryError>;
        async fn save(&self, aggregate: &mut Wishlist) -> Result<(), RepositoryError>;
    }

    #[async_trait]
    impl WishlistRepository for WishlistRepository {
        async fn list_by_owner(&self, owner: UserId, page: PageRequest) -> Result<Page<Wishlist>, RepositoryError>;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_name_the_document_allows_is_accepted(
            raw in crate::text::tests::matching(WishlistName::PATTERN, 1, 80)
        ) {
            prop_assert!(WishlistName::parse(&raw).is_ok());
        }
    }

    fn wishlist() -> Wishlist {
        Wishlist::create(
            UserId::generate(),
            WishlistName::parse("Birthday").expect("valid"),
        )
    }

    #[test]
    fn given_a_wishlist_when_a_product_is_added_twice_then_it_is_held_once() {
        let mut list = wishlist();
        list.take_events();
        let product = ProductId::generate();

        list.add(product).expect("room");
        list.add(product).expect("already there");

        assert_eq!(list.products(), [product]);
        assert_eq!(
            list.take_events(),
            [WishlistEvent::ProductAdded {
                id: list.id(),
                product
            }]
        );
    }

    #[test]
    fn given_a_full_wishlist_when_a_product_is_added_then_it_is_refused() {
        let mut list = wishlist();
        for _ in 0..Wishlist::MAX_PRODUCTS {
            list.add(ProductId::generate()).expect("room");
        }
        let error = list.add(ProductId::generate()).expect_err("full");
        assert!(matches!(
            error,
            DomainError::RuleViolated {
                code: "wishlist_full",
                ..
            }
        ));
        assert_eq!(list.products().len(), Wishlist::MAX_PRODUCTS);
    }

    #[test]
    fn names_are_bounded() {
        assert!(WishlistName::parse("  ").is_err());
        assert!(WishlistName::parse(&"x".repeat(81)).is_err());
        assert_eq!(
            WishlistName::parse(" Gifts ").expect("valid").as_str(),
            "Gifts"
        );
    }
}
