//! Helpers for HTML rendered on the server: escaping and a page shell.

use std::fmt::Write as _;

use axum::response::Html;

/// Escapes text for use in HTML element content and quoted attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A complete HTML5 page with `title` (escaped here) and `body` (already HTML).
pub fn page(title: &str, body: &str) -> Html<String> {
    let mut html = String::with_capacity(body.len() + 512);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title),
    );
    Html(html)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;\
padding:0 1rem;color:#222}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.5rem;border-bottom:1px solid #ddd}\
td.num,th.num{text-align:right}.error{color:#a00}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_page_escapes_its_title() {
        let Html(html) = page("<script>", "<p>hi</p>");
        assert!(html.contains("<title>&lt;script&gt;</title>"));
        assert!(html.contains("<p>hi</p>"));
    }
}
