//! Pages built from several upstream calls made at once, where one failed
//! call takes out its own section of the page, not the page.

use std::fmt::Display;
use std::future::Future;

/// One part of a page: its data, or why it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section<T> {
    /// The data arrived.
    Ready(T),
    /// It did not; the page says what is missing and renders the rest.
    Missing {
        /// What the section shows, for the message: "your orders".
        what: &'static str,
    },
}

impl<T> Section<T> {
    /// Awaits `load` for the section showing `what`; a failure is logged and
    /// becomes [`Section::Missing`].
    pub async fn load<E: Display>(
        what: &'static str,
        load: impl Future<Output = Result<T, E>>,
    ) -> Self {
        match load.await {
            Ok(value) => Self::Ready(value),
            Err(error) => {
                tracing::warn!(section = what, error = %error, "a page section could not load");
                Self::Missing { what }
            }
        }
    }

    /// The data, if it arrived.
    pub fn ready(&self) -> Option<&T> {
        match self {
            Self::Ready(value) => Some(value),
            Self::Missing { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_failed_section_leaves_the_others_whole() {
        let (orders, wallet) = tokio::join!(
            Section::load("your orders", async { Err::<u32, _>("upstream down") }),
            Section::load("your wallet", async { Ok::<_, String>(5_u32) }),
        );
        assert_eq!(
            orders,
            Section::Missing {
                what: "your orders"
            }
        );
        assert_eq!(wallet.ready(), Some(&5));
    }
}
