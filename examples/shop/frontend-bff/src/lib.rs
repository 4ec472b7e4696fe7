//! The sample shop's backend for its web page. It serves the page and fetches the
//! data for it from app-api over HTTP; it never touches the database.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Deserialize;
use strata_bff::html::{escape, page};
use strata_bff::{Origin, Upstream};

/// A product as the page needs it, read from app-api's JSON.
#[derive(Debug, Deserialize)]
struct Product {
    name: String,
    sku: String,
    price: Price,
}

#[derive(Debug, Deserialize)]
struct Price {
    amount_minor: i64,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct ProductPage {
    items: Vec<Product>,
    total: u64,
}

/// The web routes, fetching from the app-api at `api`.
pub fn router(api: Upstream) -> Router {
    Router::new().route("/", get(catalog_page)).with_state(api)
}

async fn catalog_page(State(api): State<Upstream>, origin: Origin) -> impl IntoResponse {
    match api
        .get_json::<ProductPage>(&origin, "/api/products?page=1&per_page=100")
        .await
    {
        Ok(products) => (StatusCode::OK, render_catalog(&products)),
        Err(error) => {
            tracing::warn!(error = %error, "the catalog page could not load its products");
            (
                StatusCode::BAD_GATEWAY,
                page(
                    "Shop — unavailable",
                    "<h1>Shop</h1>\n<p class=\"error\">The catalog is unavailable right now. \
                     Please try again in a moment.</p>",
                ),
            )
        }
    }
}

fn render_catalog(products: &ProductPage) -> Html<String> {
    let mut body = String::from("<h1>Shop</h1>\n");
    let _ = writeln!(body, "<p>{} products in the catalog.</p>", products.total);
    body.push_str(
        "<table id=\"products\">\n<thead><tr><th>Name</th><th>SKU</th>\
         <th class=\"num\">Price</th></tr></thead>\n<tbody>\n",
    );
    for product in &products.items {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&product.name),
            escape(&product.sku),
            escape(&format_price(&product.price)),
        );
    }
    body.push_str("</tbody>\n</table>");
    page("Shop — catalog", &body)
}

fn format_price(price: &Price) -> String {
    let sign = if price.amount_minor < 0 { "-" } else { "" };
    let minor = price.amount_minor.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        minor / 100,
        minor % 100,
        price.currency
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_product_escaped() {
        let products = ProductPage {
            items: vec![Product {
                name: "<b>Tea</b> & cake".into(),
                sku: "TEA-1".into(),
                price: Price {
                    amount_minor: 1205,
                    currency: "EUR".into(),
                },
            }],
            total: 1,
        };
        let Html(html) = render_catalog(&products);
        assert!(html.contains("&lt;b&gt;Tea&lt;/b&gt; &amp; cake"));
        assert!(html.contains("12.05 EUR"));
        assert!(html.contains("1 products in the catalog"));
    }
}
