//! The operator's pages: every distributed transaction by state with its
//! branches, retry and force; dead letters of the outbox and the consumers;
//! the audit trail; orders and revenue per day from the sales report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use strata_bff::html::escape;
use strata_bff::{Call, Origin, Section, Session, UpstreamError};

use crate::Web;
use crate::pages::{bearer, flash, take_flash, viewer};
use crate::view::{
    Notice, Viewer, csrf_field, format_minor, missing, page, pager, percent_encode, unavailable,
};

const STATES: [&str; 6] = [
    "prepared",
    "submitted",
    "aborting",
    "succeeded",
    "failed",
    "flagged",
];
const CONSUMERS: [&str; 2] = ["sales_report", "inventory_stock"];

/// A time in milliseconds since the epoch, as UTC.
pub(crate) fn when(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms).map_or_else(
        || "—".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    items: Vec<T>,
    page: u32,
    total: u64,
}

#[derive(Debug, Deserialize)]
struct Branch {
    branch: String,
    url: String,
    state: String,
    attempts: u32,
    last_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Transaction {
    gid: String,
    kind: String,
    state: String,
    reason: Option<String>,
    attempts: u32,
    flagged: bool,
    last_error: Option<String>,
    next_retry_at_ms: i64,
    created_at_ms: i64,
    #[serde(default)]
    branches: Vec<Branch>,
}

#[derive(Debug, Deserialize)]
struct OutboxDeadLetter {
    id: uuid::Uuid,
    aggregate_kind: String,
    event_type: String,
    attempts: u32,
    last_error: String,
    dead_at_ms: i64,
}

#[derive(Debug, Deserialize)]
struct ConsumerDeadLetter {
    number: i64,
    consumer: String,
    event_type: Option<String>,
    reason: String,
    dead_at_ms: i64,
}

#[derive(Debug, Deserialize)]
struct AuditRecord {
    at_ms: i64,
    principal: Option<String>,
    use_case: String,
    outcome: String,
}

#[derive(Debug, Deserialize)]
struct ReportPrice {
    amount_minor: i64,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct ProductSales {
    day: String,
    units: u64,
    revenue: ReportPrice,
}

#[derive(Debug, Deserialize)]
struct SalesReport {
    sales: Vec<ProductSales>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Filter {
    state: Option<String>,
    page: Option<u32>,
}

async fn admin_token(
    session: &Session,
    origin: &Origin,
    back_to: &str,
) -> Result<(String, Viewer), Response> {
    let token = bearer(session, origin, back_to).await?;
    let viewer = viewer(session).await;
    if !viewer.admin {
        return Err((
            StatusCode::FORBIDDEN,
            page(
                &viewer,
                "Not allowed",
                None,
                "<h1>Not allowed</h1><p>The dashboard is for the shop's operators.</p>",
            ),
        )
            .into_response());
    }
    Ok((token, viewer))
}

async fn fetch<T: serde::de::DeserializeOwned>(
    web: &Web,
    origin: &Origin,
    token: &str,
    path: String,
) -> Result<T, UpstreamError> {
    Ok(web
        .api
        .send::<T>(origin, Call::get(path).bearer(token.to_owned()))
        .await?
        .body)
}

pub(crate) async fn dashboard(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Query(filter): Query<Filter>,
) -> Response {
    let (token, viewer) = match admin_token(&session, &origin, "/admin").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let notice = take_flash(&session).await;
    let state = filter
        .state
        .filter(|state| STATES.contains(&state.as_str()));
    let number = filter.page.unwrap_or(1).clamp(1, 10_000);
    let mut transactions_path = format!("/api/admin/transactions?page={number}&per_page=20");
    if let Some(state) = &state {
        let _ = write!(transactions_path, "&state={state}");
    }
    let today = chrono::DateTime::from_timestamp(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |now| now.as_secs()),
        )
        .unwrap_or(0),
        0,
    )
    .unwrap_or_default()
    .date_naive();
    let from = today - chrono::Days::new(13);
    let (transactions, outbox, sales_report, inventory_stock, audit, report, messaging) = tokio::join!(
        Section::load(
            "Transactions",
            fetch::<Page<Transaction>>(&web, &origin, &token, transactions_path)
        ),
        Section::load(
            "Outbox dead letters",
            fetch::<Page<OutboxDeadLetter>>(
                &web,
                &origin,
                &token,
                "/api/admin/outbox/dead-letters?per_page=20".into()
            )
        ),
        Section::load(
            "Sales report consumer dead letters",
            fetch::<Page<ConsumerDeadLetter>>(
                &web,
                &origin,
                &token,
                format!(
                    "/api/admin/consumers/{}/dead-letters?per_page=20",
                    CONSUMERS[0]
                )
            )
        ),
        Section::load(
            "Inventory consumer dead letters",
            fetch::<Page<ConsumerDeadLetter>>(
                &web,
                &origin,
                &token,
                format!(
                    "/api/admin/consumers/{}/dead-letters?per_page=20",
                    CONSUMERS[1]
                )
            )
        ),
        Section::load(
            "The audit trail",
            fetch::<Page<AuditRecord>>(
                &web,
                &origin,
                &token,
                "/api/admin/audit?per_page=15".into()
            )
        ),
        Section::load(
            "The sales chart",
            fetch::<SalesReport>(
                &web,
                &origin,
                &token,
                format!("/api/reports/sales?from={from}&to={today}")
            )
        ),
        Section::load(
            "Outbox and consumer figures",
            messaging_figures(&web, &origin, &token)
        ),
    );
    let everything_missing =
        transactions.ready().is_none() && audit.ready().is_none() && report.ready().is_none();
    if everything_missing {
        return unavailable(&viewer, "The dashboard");
    }
    let mut main = String::from("<h1>Dashboard</h1>\n");
    main.push_str("<section aria-labelledby=\"tx-heading\"><h2 id=\"tx-heading\">Distributed transactions</h2>\n<nav aria-label=\"Transaction states\"><ul class=\"pager\">");
    let _ = write!(
        main,
        "<li><a href=\"/admin\"{}>All</a></li>",
        if state.is_none() {
            " aria-current=\"page\""
        } else {
            ""
        }
    );
    for name in STATES {
        let current = if state.as_deref() == Some(name) {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            main,
            "<li><a href=\"/admin?state={name}\"{current}>{name}</a></li>"
        );
    }
    main.push_str("</ul></nav>\n");
    match transactions.ready() {
        Some(page_of) if page_of.items.is_empty() => main.push_str("<p>No transactions.</p>"),
        Some(page_of) => {
            main.push_str("<table id=\"transactions\"><thead><tr><th>Transaction</th><th>Kind</th><th>State</th><th class=\"num\">Attempts</th><th>Last error</th><th>Next retry</th><th>Started</th></tr></thead><tbody>\n");
            for tx in &page_of.items {
                let _ = writeln!(
                    main,
                    "<tr><td><a href=\"/admin/transactions/{}\">{}</a></td><td>{}</td><td>{}{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&tx.gid),
                    escape(&tx.gid),
                    escape(&tx.kind),
                    escape(&tx.state),
                    if tx.flagged {
                        " <strong>(needs an operator)</strong>"
                    } else {
                        ""
                    },
                    tx.attempts,
                    escape(tx.last_error.as_deref().unwrap_or("")),
                    next_retry(tx),
                    when(tx.created_at_ms),
                );
            }
            main.push_str("</tbody></table>\n");
            let pages = page_of.total.div_ceil(20).max(1);
            let filter = state
                .as_ref()
                .map(|state| format!("state={state}&amp;"))
                .unwrap_or_default();
            main.push_str(&pager(
                "Transaction pages",
                "/admin",
                &filter,
                page_of.page,
                pages,
                &format!(
                    "page {} of {pages} · {} transactions",
                    page_of.page, page_of.total
                ),
            ));
        }
        None => main.push_str(&missing("Transactions")),
    }
    main.push_str("</section>\n<section aria-labelledby=\"chart-heading\"><h2 id=\"chart-heading\">Units sold and revenue, last 14 days</h2>\n");
    match report.ready() {
        Some(report) => main.push_str(&chart(report, from, today)),
        None => main.push_str(&missing("The sales chart")),
    }
    main.push_str("</section>\n<section aria-labelledby=\"messaging-heading\"><h2 id=\"messaging-heading\">Outbox and consumers</h2>\n");
    match messaging.ready() {
        Some(figures) => main.push_str(&render_messaging(figures)),
        None => main.push_str(&missing("Outbox and consumer figures")),
    }
    main.push_str("</section>\n<section aria-labelledby=\"dead-heading\"><h2 id=\"dead-heading\">Dead letters</h2>\n<h3>Outbox</h3>\n");
    match outbox.ready() {
        Some(page_of) if page_of.items.is_empty() => main.push_str("<p>None.</p>"),
        Some(page_of) => {
            main.push_str("<table id=\"outbox-dead-letters\"><thead><tr><th>Event</th><th>Aggregate</th><th class=\"num\">Attempts</th><th>Last error</th><th>Dead since</th></tr></thead><tbody>");
            for letter in &page_of.items {
                let _ = write!(
                    main,
                    "<tr><td>{} <small>{}</small></td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&letter.event_type),
                    letter.id,
                    escape(&letter.aggregate_kind),
                    letter.attempts,
                    escape(&letter.last_error),
                    when(letter.dead_at_ms)
                );
            }
            main.push_str("</tbody></table>");
        }
        None => main.push_str(&missing("Outbox dead letters")),
    }
    for (name, section) in [
        (CONSUMERS[0], &sales_report),
        (CONSUMERS[1], &inventory_stock),
    ] {
        let _ = writeln!(main, "<h3>Consumer {name}</h3>");
        match section.ready() {
            Some(page_of) if page_of.items.is_empty() => main.push_str("<p>None.</p>"),
            Some(page_of) => {
                main.push_str("<table><thead><tr><th>Number</th><th>Event</th><th>Reason</th><th>Dead since</th></tr></thead><tbody>");
                for letter in &page_of.items {
                    let _ = write!(
                        main,
                        "<tr><td>{} <small>{}</small></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        letter.number,
                        escape(&letter.consumer),
                        escape(letter.event_type.as_deref().unwrap_or("(unreadable)")),
                        escape(&letter.reason),
                        when(letter.dead_at_ms)
                    );
                }
                main.push_str("</tbody></table>");
            }
            None => main.push_str(&missing("These dead letters")),
        }
    }
    main.push_str("</section>\n<section aria-labelledby=\"audit-heading\"><h2 id=\"audit-heading\">Audit trail</h2>\n");
    match audit.ready() {
        Some(page_of) => {
            main.push_str("<table id=\"audit\"><thead><tr><th>When</th><th>Who</th><th>Use case</th><th>Outcome</th></tr></thead><tbody>");
            for record in &page_of.items {
                let _ = write!(
                    main,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    when(record.at_ms),
                    escape(record.principal.as_deref().unwrap_or("anonymous")),
                    escape(&record.use_case),
                    escape(&record.outcome)
                );
            }
            main.push_str("</tbody></table>");
        }
        None => main.push_str(&missing("The audit trail")),
    }
    main.push_str("</section>");
    page(&viewer, "Dashboard", notice.as_ref(), &main).into_response()
}

/// What the service's metrics say about its messaging.
#[derive(Debug, Default)]
struct Messaging {
    outbox_pending: f64,
    outbox_oldest_seconds: f64,
    outbox_dead_letters: f64,
    /// Per consumer: seconds its furthest-behind partition is behind, and
    /// for a consumer group, messages not delivered and not acknowledged.
    consumers: BTreeMap<String, (f64, Option<f64>, Option<f64>)>,
}

async fn messaging_figures(
    web: &Web,
    origin: &Origin,
    token: &str,
) -> Result<Messaging, UpstreamError> {
    let text = web.api.get_text(origin, "/metrics", Some(token)).await?;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .map_err(|error| UpstreamError::Unreadable(error.to_string()))?;
    let mut figures = Messaging::default();
    for sample in &scrape.samples {
        let value = match sample.value {
            prometheus_parse::Value::Gauge(value)
            | prometheus_parse::Value::Counter(value)
            | prometheus_parse::Value::Untyped(value) => value,
            _ => continue,
        };
        let consumer = sample.labels.get("consumer").map(str::to_owned);
        match (sample.metric.as_str(), consumer) {
            ("outbox_pending", _) => figures.outbox_pending = value,
            ("outbox_oldest_pending_age_seconds", _) => figures.outbox_oldest_seconds = value,
            ("outbox_dead_letters", _) => figures.outbox_dead_letters = value,
            ("consumer_behind_seconds", Some(consumer)) => {
                let entry = figures.consumers.entry(consumer).or_default();
                entry.0 = entry.0.max(value);
            }
            ("consumer_lag", Some(consumer)) => {
                figures.consumers.entry(consumer).or_default().1 = Some(value)
            }
            ("consumer_pending", Some(consumer)) => {
                figures.consumers.entry(consumer).or_default().2 = Some(value)
            }
            _ => {}
        }
    }
    Ok(figures)
}

fn render_messaging(figures: &Messaging) -> String {
    let mut html = format!(
        "<dl id=\"outbox\"><dt>Outbox events not published yet</dt><dd id=\"outbox-depth\">{}</dd>\
         <dt>Oldest of them</dt><dd>{:.1} s</dd><dt>Outbox dead letters</dt><dd>{}</dd></dl>\n",
        figures.outbox_pending, figures.outbox_oldest_seconds, figures.outbox_dead_letters
    );
    if figures.consumers.is_empty() {
        html.push_str("<p>No consumer has reported yet.</p>");
        return html;
    }
    html.push_str("<table id=\"consumers\"><thead><tr><th>Consumer</th><th class=\"num\">Behind</th><th class=\"num\">Not delivered</th><th class=\"num\">Not acknowledged</th></tr></thead><tbody>");
    let count =
        |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |value| value.to_string());
    for (name, (behind, lag, pending)) in &figures.consumers {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"num\">{behind:.1} s</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(name),
            count(*lag),
            count(*pending)
        );
    }
    html.push_str("</tbody></table>");
    html
}

fn next_retry(tx: &Transaction) -> String {
    if matches!(tx.state.as_str(), "succeeded" | "failed") {
        "—".into()
    } else {
        when(tx.next_retry_at_ms)
    }
}

/// Bars of units sold and revenue per day, as inline SVG with the figures
/// in a table beside it for screen readers and text browsers.
fn chart(report: &SalesReport, from: chrono::NaiveDate, to: chrono::NaiveDate) -> String {
    let mut days: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut day = from;
    while day <= to {
        days.insert(day.to_string(), (0, 0));
        day = day.succ_opt().unwrap_or(to + chrono::Days::new(1));
    }
    let mut currency = String::from("EUR");
    for sale in &report.sales {
        let entry = days.entry(sale.day.clone()).or_default();
        entry.0 += sale.units;
        entry.1 = entry.1.saturating_add(sale.revenue.amount_minor);
        currency.clone_from(&sale.revenue.currency);
    }
    let most_units = days
        .values()
        .map(|(units, _)| *units)
        .max()
        .unwrap_or(0)
        .max(1);
    let most_revenue = days
        .values()
        .map(|(_, revenue)| *revenue)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = 24 * days.len();
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"chart-heading\" viewBox=\"0 0 {width} 110\" width=\"100%\" height=\"160\" preserveAspectRatio=\"none\">"
    );
    for (index, (_, (units, revenue))) in days.iter().enumerate() {
        let x = index * 24;
        let units_height = (*units * 100 / most_units) as usize;
        let revenue_height =
            usize::try_from(revenue.saturating_mul(100) / most_revenue).unwrap_or(0);
        let _ = write!(
            svg,
            "<rect class=\"orders\" x=\"{}\" y=\"{}\" width=\"10\" height=\"{units_height}\"></rect>\
             <rect class=\"revenue\" x=\"{}\" y=\"{}\" width=\"10\" height=\"{revenue_height}\"></rect>",
            x + 1,
            105 - units_height,
            x + 12,
            105 - revenue_height,
        );
    }
    svg.push_str("</svg>\n<p><span style=\"color:#457b9d\">■</span> units sold <span style=\"color:#e76f51\">■</span> revenue</p>\n");
    svg.push_str("<details><summary>Figures</summary><table id=\"sales\"><thead><tr><th>Day</th><th class=\"num\">Units</th><th class=\"num\">Revenue</th></tr></thead><tbody>");
    for (day, (units, revenue)) in &days {
        let _ = write!(
            svg,
            "<tr><td>{day}</td><td class=\"num\">{units}</td><td class=\"num\">{}</td></tr>",
            escape(&format_minor(*revenue, &currency))
        );
    }
    svg.push_str("</tbody></table></details>");
    svg
}

pub(crate) async fn transaction(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Path(gid): Path<String>,
) -> Response {
    let (token, viewer) = match admin_token(&session, &origin, "/admin").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let notice = take_flash(&session).await;
    if gid.len() > 64 {
        return (
            StatusCode::NOT_FOUND,
            page(&viewer, "Not found", None, "<h1>No such transaction</h1>"),
        )
            .into_response();
    }
    let tx = match fetch::<Transaction>(
        &web,
        &origin,
        &token,
        format!("/api/admin/transactions/{}", percent_encode(&gid)),
    )
    .await
    {
        Ok(tx) => tx,
        Err(error) if error.status() == Some(404) => {
            return (StatusCode::NOT_FOUND, page(&viewer, "Not found", None, "<h1>No such transaction</h1><p><a href=\"/admin\">Back to the dashboard</a></p>")).into_response();
        }
        Err(_) => return unavailable(&viewer, "This transaction"),
    };
    let mut main = format!(
        "<p><a href=\"/admin\">Dashboard</a></p><h1>Transaction {}</h1>\n<dl>\
         <dt>Kind</dt><dd>{}</dd><dt>State</dt><dd id=\"tx-state\">{}{}</dd><dt>Reason</dt><dd>{}</dd>\
         <dt>Attempts</dt><dd>{}</dd><dt>Last error</dt><dd>{}</dd><dt>Next retry</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd></dl>\n",
        escape(&tx.gid),
        escape(&tx.kind),
        escape(&tx.state),
        if tx.flagged {
            " (needs an operator)"
        } else {
            ""
        },
        escape(tx.reason.as_deref().unwrap_or("—")),
        tx.attempts,
        escape(tx.last_error.as_deref().unwrap_or("—")),
        next_retry(&tx),
        when(tx.created_at_ms),
    );
    main.push_str("<h2>Branches</h2><table id=\"branches\"><thead><tr><th>Branch</th><th>Participant</th><th>State</th><th class=\"num\">Attempts</th><th>Last error</th></tr></thead><tbody>\n");
    for branch in &tx.branches {
        let _ = writeln!(
            main,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&branch.branch),
            escape(&branch.url),
            escape(&branch.state),
            branch.attempts,
            escape(branch.last_error.as_deref().unwrap_or(""))
        );
    }
    main.push_str("</tbody></table>\n");
    if !matches!(tx.state.as_str(), "succeeded" | "failed") {
        let _ = write!(
            main,
            "<h2>Repair</h2><form class=\"inline\" method=\"post\" action=\"/admin/transactions/{gid}/retry\">{csrf}\
             <button type=\"submit\">Retry now</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/admin/transactions/{gid}/force\">{csrf}\
             <label for=\"force-state\">Force to</label><select id=\"force-state\" name=\"state\">\
             <option value=\"succeeded\">succeeded</option><option value=\"failed\">failed</option></select> \
             <button class=\"secondary\" type=\"submit\">Force</button></form>",
            gid = escape(&percent_encode(&tx.gid)),
            csrf = csrf_field(&viewer),
        );
    }
    page(&viewer, "Transaction", notice.as_ref(), &main).into_response()
}

pub(crate) async fn retry(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Path(gid): Path<String>,
) -> Response {
    repair(&web, &session, &origin, &gid, "retry", None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ForceForm {
    state: String,
}

pub(crate) async fn force(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Path(gid): Path<String>,
    Form(form): Form<ForceForm>,
) -> Response {
    repair(&web, &session, &origin, &gid, "force", Some(form.state)).await
}

async fn repair(
    web: &Web,
    session: &Session,
    origin: &Origin,
    gid: &str,
    action: &str,
    state: Option<String>,
) -> Response {
    let back = format!("/admin/transactions/{}", percent_encode(gid));
    let (token, viewer) = match admin_token(session, origin, &back).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let path = format!("/api/admin/transactions/{}/{action}", percent_encode(gid));
    let call = match state {
        Some(state) => Call::post(path, serde_json::json!({ "state": state })),
        None => Call::post_empty(path),
    }
    .bearer(token);
    match web
        .api
        .send::<Option<serde_json::Value>>(origin, call)
        .await
    {
        Ok(_) => {
            flash(
                session,
                Notice::done(if action == "retry" {
                    "The recovery worker takes it up now."
                } else {
                    "Forced."
                }),
            )
            .await
        }
        Err(error) if error.is_outage() => return unavailable(&viewer, "Repairs"),
        Err(error) => {
            let text = error
                .problem()
                .map_or("The shop refused it.", |problem| problem.message())
                .to_owned();
            flash(session, Notice::error(text)).await;
        }
    }
    Redirect::to(&back).into_response()
}
