use serde::{Deserialize, Serialize};

use crate::ValidationFailure;

/// Which page of a listing to return: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    per_page: u32,
}

impl PageRequest {
    /// The largest page a client may ask for; keeps one request's cost bounded.
    pub const MAX_PER_PAGE: u32 = 100;
    /// The page size when the client does not choose one.
    pub const DEFAULT_PER_PAGE: u32 = 20;

    /// Page `page` (from 1) of `per_page` items (1 to [`Self::MAX_PER_PAGE`]).
    ///
    /// # Errors
    /// Names each out-of-range field.
    pub fn new(page: u32, per_page: u32) -> Result<Self, ValidationFailure> {
        let mut failure = ValidationFailure::default();
        if page == 0 {
            failure.absorb(
                "",
                ValidationFailure::single("page", "range", "must be 1 or more"),
            );
        }
        if per_page == 0 || per_page > Self::MAX_PER_PAGE {
            failure.absorb(
                "",
                ValidationFailure::single(
                    "per_page",
                    "range",
                    format!("must be between 1 and {}", Self::MAX_PER_PAGE),
                ),
            );
        }
        failure.into_result().map(|()| Self { page, per_page })
    }

    /// The first page at the default size.
    #[must_use]
    pub const fn first() -> Self {
        Self {
            page: 1,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }

    /// The 1-based page number.
    #[must_use]
    pub const fn page(self) -> u32 {
        self.page
    }

    /// The page size.
    #[must_use]
    pub const fn per_page(self) -> u32 {
        self.per_page
    }

    /// How many items come before this page.
    #[must_use]
    pub const fn offset(self) -> u64 {
        (self.page as u64 - 1) * self.per_page as u64
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first()
    }
}

/// One page of a listing, with what a client needs to fetch the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page, in listing order.
    pub items: Vec<T>,
    /// The 1-based page number.
    pub page: u32,
    /// The page size that was asked for.
    pub per_page: u32,
    /// How many items the whole listing holds.
    pub total: u64,
}

impl<T> Page<T> {
    /// A page of `items` answering `request`, out of `total`.
    #[must_use]
    pub fn new(items: Vec<T>, request: PageRequest, total: u64) -> Self {
        Self {
            items,
            page: request.page,
            per_page: request.per_page,
            total,
        }
    }

    /// How many pages the listing has at this page size.
    #[must_use]
    pub fn total_pages(&self) -> u64 {
        self.total.div_ceil(u64::from(self.per_page.max(1)))
    }

    /// The same page with each item converted.
    pub fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(convert).collect(),
            page: self.page,
            per_page: self.per_page,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_the_items_before_the_page() {
        assert_eq!(PageRequest::new(1, 20).expect("valid").offset(), 0);
        assert_eq!(PageRequest::new(3, 25).expect("valid").offset(), 50);
    }

    #[test]
    fn rejects_page_zero_and_oversized_pages_naming_each_field() {
        let failure = PageRequest::new(0, 101).expect_err("both out of range");
        let fields: Vec<_> = failure
            .violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["page", "per_page"]);
    }

    #[test]
    fn counts_pages_rounding_up() {
        let page = Page::new(vec![1, 2], PageRequest::new(1, 2).expect("valid"), 5);
        assert_eq!(page.total_pages(), 3);
        assert_eq!(page.map(|n| n * 10).items, [10, 20]);
    }
}
