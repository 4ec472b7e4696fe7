//! The page shell every page shares, and the small formatting helpers.

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use strata_bff::html::escape;

/// Who is looking, as the navigation needs it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Viewer {
    pub(crate) signed_in: bool,
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    pub(crate) cart_items: u32,
}

/// An amount of money as app-api writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Price {
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
}

pub(crate) fn money(price: &Price) -> String {
    format_minor(price.amount_minor, &price.currency)
}

pub(crate) fn format_minor(amount_minor: i64, currency: &str) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let minor = amount_minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", minor / 100, minor % 100)
}

/// The hidden field that carries the CSRF token in every form.
pub(crate) fn csrf_field(viewer: &Viewer) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        strata_bff::session::CSRF_FIELD,
        escape(&viewer.csrf)
    )
}

/// A whole page: navigation, an optional notice, and `main`.
pub(crate) fn page(
    viewer: &Viewer,
    title: &str,
    notice: Option<&Notice>,
    main: &str,
) -> Html<String> {
    let mut body = String::with_capacity(main.len() + 2048);
    body.push_str("<a class=\"skip\" href=\"#main\">Skip to content</a>\n<header><nav aria-label=\"Main\"><ul>\n");
    body.push_str("<li><a href=\"/\">Catalog</a></li>\n");
    let _ = writeln!(
        body,
        "<li><a href=\"/cart\">Cart (<span id=\"cart-count\">{}</span>)</a></li>",
        viewer.cart_items
    );
    if viewer.signed_in {
        body.push_str(
            "<li><a href=\"/orders\">My orders</a></li>\n<li><a href=\"/wallet\">Wallet</a></li>\n",
        );
        if viewer.admin {
            body.push_str("<li><a href=\"/admin\">Dashboard</a></li>\n");
        }
        let _ = writeln!(
            body,
            "<li><form method=\"post\" action=\"/sign-out\">{}<button type=\"submit\">Sign out</button></form></li>",
            csrf_field(viewer)
        );
    } else {
        body.push_str("<li><a href=\"/sign-in\">Sign in</a></li>\n<li><a href=\"/sign-up\">Sign up</a></li>\n");
    }
    body.push_str("</ul></nav></header>\n<main id=\"main\" tabindex=\"-1\">\n");
    if let Some(notice) = notice {
        let _ = writeln!(
            body,
            "<p class=\"notice {}\" role=\"{}\">{}</p>",
            notice.kind.class(),
            if notice.kind == NoticeKind::Error {
                "alert"
            } else {
                "status"
            },
            escape(&notice.text)
        );
    }
    body.push_str(main);
    body.push_str("\n</main>\n");
    Html(shell(title, &body))
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — Shop</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n\
         <script src=\"/static/app.js\" defer></script>\n</body>\n</html>\n",
        escape(title)
    )
}

/// A message at the top of a page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub(crate) struct Notice {
    pub(crate) kind: NoticeKind,
    pub(crate) text: String,
}

impl Notice {
    pub(crate) fn error(text: impl Into<String>) -> Self {
        Self {
            kind: NoticeKind::Error,
            text: text.into(),
        }
    }

    pub(crate) fn done(text: impl Into<String>) -> Self {
        Self {
            kind: NoticeKind::Done,
            text: text.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub(crate) enum NoticeKind {
    Done,
    Error,
}

impl NoticeKind {
    fn class(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Error => "error",
        }
    }
}

/// `text` for a URL's path segment or query value: everything but the
/// unreserved characters (RFC 3986) percent-encoded.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Links to the pages before and after `page` of `pages`, at
/// `{path}?{query}page=N` (`query` is empty or ends with `&amp;`), with
/// `summary` between them.
pub(crate) fn pager(
    label: &str,
    path: &str,
    query: &str,
    page: u32,
    pages: u64,
    summary: &str,
) -> String {
    let mut html = format!("<nav class=\"pager\" aria-label=\"{}\">", escape(label));
    if page > 1 {
        let _ = write!(
            html,
            "<a href=\"{path}?{query}page={}\" rel=\"prev\">Previous page</a>",
            page - 1
        );
    }
    if !summary.is_empty() {
        let _ = write!(html, "<span>{summary}</span>");
    }
    if u64::from(page) < pages {
        let _ = write!(
            html,
            "<a href=\"{path}?{query}page={}\" rel=\"next\">Next page</a>",
            page + 1
        );
    }
    html.push_str("</nav>");
    html
}

/// A page that says the shop's API cannot be reached: 503, retried by the
/// browser after a few seconds.
pub(crate) fn unavailable(viewer: &Viewer, what: &str) -> Response {
    let main = format!(
        "<h1>Temporarily unavailable</h1>\n<p class=\"degraded\" role=\"alert\">{} cannot be \
         loaded right now: the shop's service is not answering. This page tries again by \
         itself.</p>\n<p><a href=\"\">Try again now</a></p>",
        escape(what)
    );
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        page(viewer, "Unavailable", None, &main),
    )
        .into_response();
    response
        .headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("5"));
    response
        .headers_mut()
        .insert("refresh", axum::http::HeaderValue::from_static("5"));
    response
}

/// The message for a section of a page that could not load.
pub(crate) fn missing(what: &str) -> String {
    format!(
        "<p class=\"degraded\" role=\"status\">{} cannot be shown right now; the rest of the \
         page is up to date.</p>",
        escape(what)
    )
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa;line-height:1.5}\
header{background:#1d3557;color:#fff}\
header ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:0 auto;padding:.75rem 1rem;max-width:64rem;align-items:center}\
header a,header button{color:#fff;background:none;border:0;font:inherit;cursor:pointer;padding:.25rem;text-decoration:underline}\
header form{margin:0}\
ul.pager{list-style:none;padding:0;flex-wrap:wrap}\
[aria-current=page]{font-weight:bold}\
main{max-width:64rem;margin:1.5rem auto;padding:0 1rem}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;color:#000;padding:.5rem;z-index:1}\
a:focus,button:focus,input:focus,select:focus{outline:3px solid #f4a261;outline-offset:2px}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{text-align:left;padding:.5rem;border-bottom:1px solid #ddd;vertical-align:top}\
td.num,th.num{text-align:right}\
form.inline{display:inline}\
label{display:block;margin:.5rem 0 .25rem}\
input,select{font:inherit;padding:.4rem;max-width:100%}\
button{font:inherit;padding:.4rem .9rem;cursor:pointer;background:#1d3557;color:#fff;border:0;border-radius:4px}\
button.secondary{background:#6c757d}\
.notice{padding:.75rem 1rem;border-radius:4px}\
.notice.error,.degraded{background:#fdecea;color:#8a1c1c;padding:.75rem 1rem;border-radius:4px}\
.notice.done{background:#e6f4ea;color:#1e4620}\
.field-error{color:#8a1c1c;margin:.25rem 0}\
.status-pending{color:#8a5a00}.status-confirmed{color:#1e4620}.status-cancelled{color:#8a1c1c}\
.pager{display:flex;gap:1rem;margin:1rem 0}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:1rem}\
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1rem}\
.chart rect.orders{fill:#457b9d}.chart rect.revenue{fill:#e76f51}\
@media (max-width:40rem){th,td{padding:.35rem}main{margin:1rem auto}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_with_two_decimals_and_a_sign() {
        assert_eq!(format_minor(1205, "EUR"), "12.05 EUR");
        assert_eq!(format_minor(-5, "EUR"), "-0.05 EUR");
    }

    #[test]
    fn the_pager_links_only_to_pages_that_exist_and_keeps_the_query() {
        let first = pager("Pages", "/", "q=tea&amp;", 1, 3, "");
        assert!(!first.contains("Previous page"));
        assert!(first.contains("href=\"/?q=tea&amp;page=2\" rel=\"next\""));
        let middle = pager("Pages", "/orders", "", 2, 3, "page 2 of 3");
        assert!(middle.contains("href=\"/orders?page=1\" rel=\"prev\""));
        assert!(middle.contains("<span>page 2 of 3</span>"));
        assert!(middle.contains("href=\"/orders?page=3\" rel=\"next\""));
        let last = pager("Pages", "/", "", 3, 3, "");
        assert!(!last.contains("Next page"));
    }

    #[test]
    fn the_page_escapes_the_notice_and_carries_the_csrf_token() {
        let viewer = Viewer {
            signed_in: true,
            admin: false,
            csrf: "tok\"en".into(),
            cart_items: 2,
        };
        let Html(html) = page(&viewer, "T", Some(&Notice::error("<b>no</b>")), "<p>x</p>");
        assert!(html.contains("&lt;b&gt;no&lt;/b&gt;"));
        assert!(html.contains("value=\"tok&quot;en\""));
        assert!(!html.contains("/admin"), "no dashboard link for a customer");
    }
}
