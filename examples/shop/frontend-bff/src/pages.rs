//! The customer's pages: catalog, product, sign-up and sign-in, cart and
//! checkout, orders, wallet.

use std::fmt::Write as _;
use std::time::Duration;

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use strata_bff::html::escape;
use strata_bff::{Call, Origin, Section, Session, Tokens, UpstreamError};
use uuid::Uuid;

use crate::Web;
use crate::view::{
    Notice, Price, Viewer, csrf_field, missing, money, page, pager, percent_encode, unavailable,
};

const PER_PAGE: u32 = 12;
const CART: &str = "cart";
const NOTICE: &str = "notice";
/// The most units of one product a cart line holds.
const MAX_QUANTITY: u32 = 99;
/// The most lines a cart holds (an order takes 50 at most).
const MAX_LINES: usize = 50;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Product {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) sku: String,
    pub(crate) price: Price,
}

#[derive(Debug, Deserialize)]
struct ProductPage {
    items: Vec<Product>,
    page: u32,
    total: u64,
}

#[derive(Debug, Deserialize)]
struct Stock {
    available: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CartLine {
    product_id: Uuid,
    quantity: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct OrderItem {
    product_id: Uuid,
    quantity: u32,
    unit_price: Price,
}

#[derive(Debug, Clone, Deserialize)]
struct Order {
    id: Uuid,
    status: String,
    reason: Option<String>,
    total: Price,
    items: Vec<OrderItem>,
    placed_at_ms: i64,
}

#[derive(Debug, Deserialize)]
struct OrderPage {
    items: Vec<Order>,
    page: u32,
    total: u64,
}

#[derive(Debug, Deserialize)]
struct Wallet {
    balance: Price,
    frozen: Price,
}

/// The claims of the access token the navigation reads.
#[derive(Debug, Default, Deserialize)]
struct Claims {
    #[serde(default)]
    scope: String,
}

/// The viewer of this request, for the navigation.
pub(crate) async fn viewer(session: &Session) -> Viewer {
    let cart: Vec<CartLine> = session.get(CART).await.unwrap_or_default();
    let claims: Option<Claims> = session.claims().await;
    Viewer {
        signed_in: session.is_signed_in().await,
        admin: claims.is_some_and(|claims| claims.scope.split(' ').any(|p| p == "tcc.operate")),
        csrf: session.csrf_token().await,
        cart_items: cart.iter().map(|line| line.quantity).sum(),
    }
}

/// Keeps `notice` for the next page this session sees.
pub(crate) async fn flash(session: &Session, notice: Notice) {
    session.set(NOTICE, &notice).await;
}

pub(crate) async fn take_flash(session: &Session) -> Option<Notice> {
    session.take(NOTICE).await
}

/// The user's bearer token, or the answer that sends them to sign in.
pub(crate) async fn bearer(
    session: &Session,
    origin: &Origin,
    back_to: &str,
) -> Result<String, Response> {
    match session.access_token(origin).await {
        Ok(Some(token)) => Ok(token),
        Ok(None) => {
            Err(Redirect::to(&format!("/sign-in?next={}", percent_encode(back_to))).into_response())
        }
        Err(_) => Err(unavailable(&viewer(session).await, "Your account").into_response()),
    }
}

/// A local path to go back to after signing in; anything else goes home.
fn local(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn catalog_page(
    web: &Web,
    origin: &Origin,
    page: u32,
    matching: Option<&str>,
) -> Result<serde_json::Value, UpstreamError> {
    let api = web.api.clone();
    let origin = origin.clone();
    let mut query = format!("page={page}&per_page={PER_PAGE}");
    if let Some(text) = matching {
        query.push_str("&q=");
        query.push_str(&percent_encode(text));
    }
    web.catalog
        .get_or_load(&format!("products?{query}"), move || async move {
            api.get_json(&origin, &format!("/api/products?{query}"))
                .await
        })
        .await
}

pub(crate) async fn product_of(
    web: &Web,
    origin: &Origin,
    id: Uuid,
) -> Result<Product, UpstreamError> {
    let api = web.api.clone();
    let origin = origin.clone();
    let value = web
        .catalog
        .get_or_load(&format!("product/{id}"), move || async move {
            api.get_json(&origin, &format!("/api/products/{id}")).await
        })
        .await?;
    serde_json::from_value(value).map_err(|error| UpstreamError::Unreadable(error.to_string()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Paging {
    page: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CatalogQuery {
    page: Option<u32>,
    q: Option<String>,
}

pub(crate) async fn catalog(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Query(query): Query<CatalogQuery>,
) -> Response {
    let viewer = viewer(&session).await;
    let notice = take_flash(&session).await;
    let number = query.page.unwrap_or(1).clamp(1, 10_000);
    let matching: Option<String> = query
        .q
        .map(|text| text.trim().chars().take(100).collect::<String>())
        .filter(|text| !text.is_empty());
    let products = match catalog_page(&web, &origin, number, matching.as_deref()).await {
        Ok(value) => serde_json::from_value::<ProductPage>(value).ok(),
        Err(error) if error.status() == Some(422) => None,
        Err(_) => return unavailable(&viewer, "The catalog"),
    };
    let mut main = format!(
        "<h1>Catalog</h1>\n<form role=\"search\" method=\"get\" action=\"/\"><label for=\"q\">\
         Search by name or SKU</label><input id=\"q\" name=\"q\" type=\"search\" maxlength=\"100\" \
         value=\"{}\"> <button type=\"submit\">Search</button></form>\n",
        escape(matching.as_deref().unwrap_or(""))
    );
    let Some(products) = products else {
        main.push_str("<p>There is no such page.</p><p><a href=\"/\">First page</a></p>");
        return page(&viewer, "Catalog", notice.as_ref(), &main).into_response();
    };
    let pages = products.total.div_ceil(u64::from(PER_PAGE)).max(1);
    let found = matching
        .as_deref()
        .map(|text| format!(" matching “{}”", escape(text)))
        .unwrap_or_default();
    let _ = writeln!(
        main,
        "<p id=\"catalog-summary\">{} products{found} · page {} of {pages}</p>\n\
         <div class=\"cards\" id=\"products\">",
        products.total, products.page
    );
    for product in &products.items {
        let _ = writeln!(
            main,
            "<article class=\"card\"><h2><a href=\"/products/{}\">{}</a></h2><p>{}</p>\
             <p><strong>{}</strong></p>{}</article>",
            product.id,
            escape(&product.name),
            escape(&product.sku),
            escape(&money(&product.price)),
            add_form(&viewer, product.id, "Add to cart"),
        );
    }
    let query = matching
        .as_deref()
        .map(|text| format!("q={}&amp;", escape(&percent_encode(text))))
        .unwrap_or_default();
    main.push_str("</div>\n");
    main.push_str(&pager("Pages", "/", &query, products.page, pages, ""));
    page(&viewer, "Catalog", notice.as_ref(), &main).into_response()
}

fn add_form(viewer: &Viewer, product: Uuid, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/cart/items\">{}<input type=\"hidden\" name=\"product_id\" \
         value=\"{product}\"><label for=\"q-{product}\">Quantity</label><input id=\"q-{product}\" \
         name=\"quantity\" type=\"number\" min=\"1\" max=\"{MAX_QUANTITY}\" value=\"1\" required> \
         <button type=\"submit\">{}</button></form>",
        csrf_field(viewer),
        escape(label)
    )
}

pub(crate) async fn product(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Path(id): Path<String>,
) -> Response {
    let viewer = viewer(&session).await;
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(&viewer);
    };
    let stock_path = format!("/api/inventory/{id}");
    let stock_call = web.api.get_json::<Stock>(&origin, &stock_path);
    let (product, stock) = tokio::join!(
        product_of(&web, &origin, id),
        Section::load("The stock level", stock_call)
    );
    let product = match product {
        Ok(product) => product,
        Err(error) if error.status() == Some(404) => return not_found(&viewer),
        Err(_) => return unavailable(&viewer, "This product"),
    };
    let stock = match stock.ready() {
        Some(stock) if stock.available == 0 => "<p id=\"stock\">Out of stock</p>".to_owned(),
        Some(stock) => format!("<p id=\"stock\">{} in stock</p>", stock.available),
        None => missing("The stock level"),
    };
    let main = format!(
        "<h1>{}</h1>\n<p>SKU {}</p>\n<p><strong>{}</strong></p>\n{stock}\n{}",
        escape(&product.name),
        escape(&product.sku),
        escape(&money(&product.price)),
        add_form(&viewer, product.id, "Add to cart")
    );
    page(&viewer, &product.name, None, &main).into_response()
}

fn not_found(viewer: &Viewer) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            viewer,
            "Not found",
            None,
            "<h1>Not found</h1><p>There is nothing here. <a href=\"/\">Back to the catalog</a></p>",
        ),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AccountForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

fn account_form(
    viewer: &Viewer,
    action: &str,
    title: &str,
    form: &AccountForm,
    errors: &[(&str, String)],
) -> String {
    let error_of = |field: &str| {
        errors
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| {
                format!(
                    "<p class=\"field-error\" id=\"{field}-error\">{}</p>",
                    escape(message)
                )
            })
            .unwrap_or_default()
    };
    let described = |field: &str| {
        if errors.iter().any(|(name, _)| *name == field) {
            format!(" aria-invalid=\"true\" aria-describedby=\"{field}-error\"")
        } else {
            String::new()
        }
    };
    let autocomplete = if action == "/sign-up" {
        "new-password"
    } else {
        "current-password"
    };
    format!(
        "<h1>{}</h1>\n<form method=\"post\" action=\"{action}\">{}\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" \
         autocomplete=\"email\" required value=\"{}\"{}>{}\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" \
         type=\"password\" autocomplete=\"{autocomplete}\" required{}>{}\
         <p><button type=\"submit\">{}</button></p></form>",
        escape(title),
        csrf_field(viewer),
        escape(&local(form.next.as_deref())),
        escape(&form.email),
        described("email"),
        error_of("email"),
        described("password"),
        error_of("password"),
        escape(title),
    )
}

pub(crate) async fn sign_up_form(session: Session, Query(next): Query<Next>) -> Response {
    let viewer = viewer(&session).await;
    let form = AccountForm {
        next: next.next,
        ..AccountForm::default()
    };
    let main = account_form(&viewer, "/sign-up", "Sign up", &form, &[])
        + "<p>Have an account? <a href=\"/sign-in\">Sign in</a></p>";
    page(&viewer, "Sign up", None, &main).into_response()
}

pub(crate) async fn sign_in_form(session: Session, Query(next): Query<Next>) -> Response {
    let viewer = viewer(&session).await;
    let notice = take_flash(&session).await;
    let form = AccountForm {
        next: next.next,
        ..AccountForm::default()
    };
    let main = account_form(&viewer, "/sign-in", "Sign in", &form, &[])
        + "<p>New here? <a href=\"/sign-up\">Sign up</a></p>";
    page(&viewer, "Sign in", notice.as_ref(), &main).into_response()
}

fn field_errors(error: &UpstreamError) -> Vec<(&'static str, String)> {
    let Some(problem) = error.problem() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for field in ["email", "password"] {
        if let Some(message) = problem.field(field) {
            errors.push((field, message.to_owned()));
        }
    }
    errors
}

async fn start_session(
    web: &Web,
    session: &Session,
    origin: &Origin,
    form: &AccountForm,
) -> Result<(), UpstreamError> {
    let tokens = web
        .api
        .send::<Tokens>(
            origin,
            Call::post(
                "/api/auth/sign-in",
                serde_json::json!({"email": form.email, "password": form.password}),
            ),
        )
        .await?;
    session.sign_in(tokens.body).await;
    Ok(())
}

pub(crate) async fn sign_up(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Form(form): Form<AccountForm>,
) -> Response {
    let registered = web
        .api
        .send::<serde_json::Value>(
            &origin,
            Call::post(
                "/api/auth/register",
                serde_json::json!({"email": form.email, "password": form.password}),
            ),
        )
        .await;
    let outcome = match registered {
        Ok(_) => start_session(&web, &session, &origin, &form).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => {
            flash(&session, Notice::done("Welcome! Your account is open.")).await;
            Redirect::to(&local(form.next.as_deref())).into_response()
        }
        Err(error) => {
            let viewer = viewer(&session).await;
            if error.is_outage() {
                return unavailable(&viewer, "Sign-up");
            }
            let mut errors = field_errors(&error);
            let notice = match error.problem().map(|problem| problem.code.as_str()) {
                Some("email_taken") => {
                    errors = vec![(
                        "email",
                        "An account with this email exists; sign in instead.".into(),
                    )];
                    Notice::error("That email is taken.")
                }
                Some("too_many_requests") => {
                    Notice::error("Too many attempts; wait a minute and try again.")
                }
                _ => Notice::error("Please correct the form."),
            };
            let main = account_form(&viewer, "/sign-up", "Sign up", &form, &errors);
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&viewer, "Sign up", Some(&notice), &main),
            )
                .into_response()
        }
    }
}

pub(crate) async fn sign_in(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Form(form): Form<AccountForm>,
) -> Response {
    match start_session(&web, &session, &origin, &form).await {
        Ok(()) => Redirect::to(&local(form.next.as_deref())).into_response(),
        Err(error) => {
            let viewer = viewer(&session).await;
            if error.is_outage() {
                return unavailable(&viewer, "Sign-in");
            }
            let notice = if error.status() == Some(429) {
                Notice::error("Too many attempts; wait a minute and try again.")
            } else {
                Notice::error("The email or password is not right.")
            };
            let form = AccountForm {
                password: String::new(),
                ..form
            };
            let main = account_form(&viewer, "/sign-in", "Sign in", &form, &[]);
            (
                StatusCode::UNAUTHORIZED,
                page(&viewer, "Sign in", Some(&notice), &main),
            )
                .into_response()
        }
    }
}

pub(crate) async fn sign_out(State(web): State<Web>, session: Session, origin: Origin) -> Response {
    if let Some(refresh_token) = session.sign_out().await {
        let revoked = web
            .api
            .send::<Option<serde_json::Value>>(
                &origin,
                Call::post(
                    "/api/auth/sign-out",
                    serde_json::json!({"refresh_token": refresh_token}),
                ),
            )
            .await;
        if let Err(error) = revoked {
            tracing::warn!(error = %error, "the refresh token could not be revoked at sign-out");
        }
    }
    flash(&session, Notice::done("You are signed out.")).await;
    Redirect::to("/").into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    product_id: String,
    quantity: String,
}

pub(crate) async fn add_to_cart(session: Session, Form(form): Form<AddForm>) -> Response {
    let (Ok(product_id), Ok(quantity)) = (
        Uuid::parse_str(&form.product_id),
        form.quantity.trim().parse::<u32>(),
    ) else {
        flash(&session, Notice::error("Choose a quantity from 1 to 99.")).await;
        return Redirect::to("/cart").into_response();
    };
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        flash(&session, Notice::error("Choose a quantity from 1 to 99.")).await;
        return Redirect::to(&format!("/products/{product_id}")).into_response();
    }
    let mut cart: Vec<CartLine> = session.get(CART).await.unwrap_or_default();
    if let Some(line) = cart.iter_mut().find(|line| line.product_id == product_id) {
        line.quantity = (line.quantity + quantity).min(MAX_QUANTITY);
    } else if cart.len() < MAX_LINES {
        cart.push(CartLine {
            product_id,
            quantity,
        });
    } else {
        flash(&session, Notice::error("The cart is full.")).await;
        return Redirect::to("/cart").into_response();
    }
    session.set(CART, &cart).await;
    flash(&session, Notice::done("Added to your cart.")).await;
    Redirect::to("/cart").into_response()
}

pub(crate) async fn remove_from_cart(session: Session, Path(id): Path<String>) -> Response {
    let mut cart: Vec<CartLine> = session.get(CART).await.unwrap_or_default();
    cart.retain(|line| line.product_id.to_string() != id);
    session.set(CART, &cart).await;
    Redirect::to("/cart").into_response()
}

pub(crate) async fn cart(State(web): State<Web>, session: Session, origin: Origin) -> Response {
    let notice = take_flash(&session).await;
    render_cart(&web, &session, &origin, notice.as_ref(), StatusCode::OK).await
}

async fn render_cart(
    web: &Web,
    session: &Session,
    origin: &Origin,
    notice: Option<&Notice>,
    status: StatusCode,
) -> Response {
    let viewer = viewer(session).await;
    let cart: Vec<CartLine> = session.get(CART).await.unwrap_or_default();
    let mut main = String::from("<h1>Your cart</h1>\n");
    if cart.is_empty() {
        main.push_str(
            "<p id=\"cart-empty\">Your cart is empty. <a href=\"/\">Browse the catalog</a></p>",
        );
        return (status, page(&viewer, "Cart", notice, &main)).into_response();
    }
    main.push_str("<table id=\"cart\"><thead><tr><th>Product</th><th class=\"num\">Quantity</th><th class=\"num\">Price</th><th><span class=\"skip\">Remove</span></th></tr></thead><tbody>\n");
    let mut total: Option<Price> = None;
    let mut complete = true;
    for line in &cart {
        let (name, price) = match product_of(web, origin, line.product_id).await {
            Ok(product) => {
                let amount = product
                    .price
                    .amount_minor
                    .saturating_mul(i64::from(line.quantity));
                total = Some(match total {
                    Some(sum) => Price {
                        amount_minor: sum.amount_minor.saturating_add(amount),
                        currency: sum.currency,
                    },
                    None => Price {
                        amount_minor: amount,
                        currency: product.price.currency.clone(),
                    },
                });
                (escape(&product.name), escape(&money(&product.price)))
            }
            Err(_) => {
                complete = false;
                ("(details unavailable)".to_owned(), "—".to_owned())
            }
        };
        let _ = writeln!(
            main,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{price}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/cart/items/{}/remove\">{}\
             <button class=\"secondary\" type=\"submit\" aria-label=\"Remove {name}\">Remove</button></form></td></tr>",
            line.quantity,
            line.product_id,
            csrf_field(&viewer),
        );
    }
    main.push_str("</tbody></table>\n");
    if let Some(total) = total.filter(|_| complete) {
        let _ = writeln!(
            main,
            "<p>Total <strong id=\"cart-total\">{}</strong></p>",
            escape(&money(&total))
        );
    } else {
        main.push_str(&missing("The total"));
    }
    // A fresh key per rendering of the cart: sending this form twice (a
    // double click, a reload) places one order.
    let _ = write!(
        main,
        "<form method=\"post\" action=\"/checkout\">{}<input type=\"hidden\" name=\"key\" value=\"{}\">\
         <button id=\"checkout\" type=\"submit\">Place order</button></form>",
        csrf_field(&viewer),
        Uuid::new_v4()
    );
    (status, page(&viewer, "Cart", notice, &main)).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckoutForm {
    key: String,
}

pub(crate) async fn checkout(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Form(form): Form<CheckoutForm>,
) -> Response {
    let token = match bearer(&session, &origin, "/cart").await {
        Ok(token) => token,
        Err(response) => return response,
    };
    let Ok(key) = Uuid::parse_str(&form.key) else {
        return render_cart(
            &web,
            &session,
            &origin,
            Some(&Notice::error("Please place the order again.")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let lines = lines_sent_with(&session, key).await;
    if lines.is_empty() {
        return render_cart(
            &web,
            &session,
            &origin,
            Some(&Notice::error("Your cart is empty.")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let body = serde_json::json!({
        "items": lines.iter().map(|line| serde_json::json!({"product_id": line.product_id, "quantity": line.quantity})).collect::<Vec<_>>()
    });
    let mut waited = 0;
    let placed = loop {
        let call = Call::post("/api/orders", body.clone())
            .bearer(token.clone())
            .idempotency_key(key.to_string());
        match web.api.send::<Order>(&origin, call).await {
            // The first send of this key is still running: its answer is
            // this one's too.
            Err(error)
                if error
                    .problem()
                    .is_some_and(|problem| problem.code == "idempotency_key_in_use")
                    && waited < 50 =>
            {
                waited += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            outcome => break outcome,
        }
    };
    match placed {
        Ok(order) => {
            let cart: Vec<CartLine> = session.get(CART).await.unwrap_or_default();
            if cart == lines {
                session.set(CART, &Vec::<CartLine>::new()).await;
            }
            let text = match order.body.status.as_str() {
                "confirmed" => "Thank you! Your order is confirmed.",
                _ => "Your order is placed and being confirmed.",
            };
            flash(&session, Notice::done(text)).await;
            Redirect::to(&format!("/orders/{}", order.body.id)).into_response()
        }
        Err(error) if error.is_outage() => unavailable(&viewer(&session).await, "Checkout"),
        Err(error) => {
            forget_checkout(&session, key).await;
            let text = match error.problem().map(|problem| problem.code.as_str()) {
                Some("out_of_stock") => "Not enough stock for your order. Nothing was reserved or charged; change the quantities and try again.".to_owned(),
                Some("insufficient_funds") => "Your wallet does not hold enough for this order. Nothing was reserved or charged; top up your wallet and try again.".to_owned(),
                _ => format!(
                    "The order could not be placed: {}",
                    error.problem().map_or("please try again", |problem| problem.message())
                ),
            };
            render_cart(
                &web,
                &session,
                &origin,
                Some(&Notice::error(text)),
                StatusCode::CONFLICT,
            )
            .await
        }
    }
}

/// The checkouts a session keeps: the lines each key was first sent with.
const CHECKOUTS: &str = "checkouts";
/// How many of the latest checkouts are kept.
const KEPT_CHECKOUTS: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkout {
    key: Uuid,
    lines: Vec<CartLine>,
}

/// The lines `key` was first sent with, or — on its first send — the cart's,
/// kept for the next: a second send of the form repeats the same request, so
/// app-api answers the same order even after the cart was emptied.
async fn lines_sent_with(session: &Session, key: Uuid) -> Vec<CartLine> {
    let mut kept: Vec<Checkout> = session.get(CHECKOUTS).await.unwrap_or_default();
    if let Some(found) = kept.iter().find(|checkout| checkout.key == key) {
        return found.lines.clone();
    }
    let cart: Vec<CartLine> = session.get(CART).await.unwrap_or_default();
    kept.push(Checkout {
        key,
        lines: cart.clone(),
    });
    if kept.len() > KEPT_CHECKOUTS {
        kept.remove(0);
    }
    session.set(CHECKOUTS, &kept).await;
    cart
}

/// Forgets a checkout that was refused: the form is sent again with a new key.
async fn forget_checkout(session: &Session, key: Uuid) {
    let mut kept: Vec<Checkout> = session.get(CHECKOUTS).await.unwrap_or_default();
    kept.retain(|checkout| checkout.key != key);
    session.set(CHECKOUTS, &kept).await;
}

fn status_label(order: &Order) -> String {
    match (order.status.as_str(), order.reason.as_deref()) {
        ("confirmed", _) => "Confirmed".into(),
        ("pending", _) => "Pending".into(),
        ("cancelled", Some("out_of_stock")) => "Cancelled: out of stock".into(),
        ("cancelled", Some("insufficient_funds")) => "Cancelled: insufficient funds".into(),
        ("cancelled", Some("timeout")) => "Cancelled: timed out".into(),
        (other, _) => other.to_owned(),
    }
}

pub(crate) async fn orders(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Query(paging): Query<Paging>,
) -> Response {
    let token = match bearer(&session, &origin, "/orders").await {
        Ok(token) => token,
        Err(response) => return response,
    };
    let viewer = viewer(&session).await;
    let number = paging.page.unwrap_or(1).clamp(1, 10_000);
    let call = Call::get(format!("/api/orders?page={number}&per_page=20")).bearer(token);
    let orders = match web.api.send::<OrderPage>(&origin, call).await {
        Ok(answer) => answer.body,
        Err(error) if error.status() == Some(422) => OrderPage {
            items: Vec::new(),
            page: number,
            total: 0,
        },
        Err(_) => return unavailable(&viewer, "Your orders"),
    };
    let mut main = String::from("<h1>My orders</h1>\n");
    if orders.items.is_empty() {
        main.push_str("<p>No orders yet. <a href=\"/\">Browse the catalog</a></p>");
    } else {
        main.push_str("<table id=\"orders\"><thead><tr><th>Order</th><th>Status</th><th class=\"num\">Total</th></tr></thead><tbody>\n");
        for order in &orders.items {
            let _ = writeln!(
                main,
                "<tr><td><a href=\"/orders/{}\">{}</a></td><td class=\"status-{}\">{}</td><td class=\"num\">{}</td></tr>",
                order.id,
                short(order.id),
                escape(&order.status),
                escape(&status_label(order)),
                escape(&money(&order.total)),
            );
        }
        main.push_str("</tbody></table>");
        let pages = orders.total.div_ceil(20).max(1);
        main.push_str(&pager("Pages", "/orders", "", orders.page, pages, ""));
    }
    page(&viewer, "My orders", None, &main).into_response()
}

fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

async fn fetch_order(
    web: &Web,
    session: &Session,
    origin: &Origin,
    id: &str,
) -> Result<Result<Order, UpstreamError>, Response> {
    let token = bearer(session, origin, &format!("/orders/{id}")).await?;
    let Ok(id) = Uuid::parse_str(id) else {
        return Err(not_found(&viewer(session).await));
    };
    let call = Call::get(format!("/api/orders/{id}")).bearer(token);
    Ok(web
        .api
        .send::<Order>(origin, call)
        .await
        .map(|answer| answer.body))
}

pub(crate) async fn order(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Path(id): Path<String>,
) -> Response {
    let order = match fetch_order(&web, &session, &origin, &id).await {
        Ok(order) => order,
        Err(response) => return response,
    };
    let viewer = viewer(&session).await;
    let notice = take_flash(&session).await;
    let order = match order {
        Ok(order) => order,
        Err(error) if error.status() == Some(404) => return not_found(&viewer),
        Err(_) => return unavailable(&viewer, "This order"),
    };
    let mut main = format!("<h1>Order {}</h1>\n", short(order.id));
    let live = if order.status == "pending" {
        format!(" data-live-order=\"{}\"", order.id)
    } else {
        String::new()
    };
    let _ = writeln!(
        main,
        "<p>Status: <strong id=\"order-status\" class=\"status-{}\" aria-live=\"polite\"{live}>{}</strong></p>",
        escape(&order.status),
        escape(&status_label(&order))
    );
    if order.status == "pending" {
        main.push_str("<p id=\"pending-hint\">The shop is still confirming this order; this page updates by itself.</p><noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>\n");
    }
    main.push_str("<table id=\"order-items\"><thead><tr><th>Product</th><th class=\"num\">Quantity</th><th class=\"num\">Unit price</th></tr></thead><tbody>\n");
    for item in &order.items {
        let name = product_of(&web, &origin, item.product_id)
            .await
            .map_or_else(|_| item.product_id.to_string(), |product| product.name);
        let _ = writeln!(
            main,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&name),
            item.quantity,
            escape(&money(&item.unit_price))
        );
    }
    let _ = write!(
        main,
        "</tbody></table>\n<p>Total <strong>{}</strong></p><p><small>Placed {} (UTC)</small></p>",
        escape(&money(&order.total)),
        crate::admin::when(order.placed_at_ms)
    );
    page(&viewer, "Order", notice.as_ref(), &main).into_response()
}

/// The order's status for the page's script: `{status, label}`.
pub(crate) async fn order_status(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Path(id): Path<String>,
) -> Response {
    let order = match fetch_order(&web, &session, &origin, &id).await {
        Ok(order) => order,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    match order {
        Ok(order) => {
            Json(serde_json::json!({"status": order.status, "label": status_label(&order)}))
                .into_response()
        }
        Err(error) if error.status() == Some(404) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

pub(crate) async fn wallet(State(web): State<Web>, session: Session, origin: Origin) -> Response {
    let token = match bearer(&session, &origin, "/wallet").await {
        Ok(token) => token,
        Err(response) => return response,
    };
    let viewer = viewer(&session).await;
    let notice = take_flash(&session).await;
    let wallet = match web
        .api
        .send::<Wallet>(&origin, Call::get("/api/wallet").bearer(token))
        .await
    {
        Ok(answer) => answer.body,
        Err(_) => return unavailable(&viewer, "Your wallet"),
    };
    let main = format!(
        "<h1>Wallet</h1>\n<p>Balance <strong id=\"balance\">{}</strong></p>\n<p>Held for orders being placed <span id=\"frozen\">{}</span></p>\n\
         <h2>Top up</h2>\n<form method=\"post\" action=\"/wallet/top-ups\">{}\
         <input type=\"hidden\" name=\"key\" value=\"{}\"><input type=\"hidden\" name=\"currency\" value=\"{}\">\
         <label for=\"amount\">Amount ({})</label><input id=\"amount\" name=\"amount\" inputmode=\"decimal\" \
         pattern=\"[0-9]{{1,7}}([.,][0-9]{{1,2}})?\" required placeholder=\"50.00\"> <button type=\"submit\">Top up</button></form>",
        escape(&money(&wallet.balance)),
        escape(&money(&wallet.frozen)),
        csrf_field(&viewer),
        Uuid::new_v4(),
        escape(&wallet.balance.currency),
        escape(&wallet.balance.currency),
    );
    page(&viewer, "Wallet", notice.as_ref(), &main).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct TopUpForm {
    key: String,
    amount: String,
    currency: String,
}

/// `12`, `12.5`, `12.50` or `12,50` as minor units.
fn parse_amount(text: &str) -> Option<i64> {
    let text = text.trim().replace(',', ".");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() || whole.len() > 7 || fraction.len() > 2 {
        return None;
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    Some(whole * 100 + fraction)
}

pub(crate) async fn top_up(
    State(web): State<Web>,
    session: Session,
    origin: Origin,
    Form(form): Form<TopUpForm>,
) -> Response {
    let token = match bearer(&session, &origin, "/wallet").await {
        Ok(token) => token,
        Err(response) => return response,
    };
    let amount = parse_amount(&form.amount).filter(|amount| *amount > 0);
    let (Some(amount), Ok(key)) = (amount, Uuid::parse_str(&form.key)) else {
        flash(
            &session,
            Notice::error("Enter an amount such as 50 or 12.50."),
        )
        .await;
        return Redirect::to("/wallet").into_response();
    };
    let call = Call::post(
        "/api/wallet/top-ups",
        serde_json::json!({"amount": {"amount_minor": amount, "currency": form.currency}}),
    )
    .bearer(token)
    .idempotency_key(key.to_string());
    match web.api.send::<Wallet>(&origin, call).await {
        Ok(_) => {
            flash(
                &session,
                Notice::done(format!(
                    "Topped up {}.",
                    crate::view::format_minor(amount, &form.currency)
                )),
            )
            .await
        }
        Err(error) if error.is_outage() => return unavailable(&viewer(&session).await, "Top-ups"),
        Err(error) => {
            let text = error
                .problem()
                .map_or("The top-up was refused.", |problem| problem.message())
                .to_owned();
            flash(&session, Notice::error(text)).await;
        }
    }
    Redirect::to("/wallet").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_minor_units() {
        assert_eq!(parse_amount("12"), Some(1200));
        assert_eq!(parse_amount("12.5"), Some(1250));
        assert_eq!(parse_amount(" 12,05 "), Some(1205));
        assert_eq!(parse_amount("0.01"), Some(1));
        for bad in ["", ".5", "1.234", "-3", "1e3", "12345678", "1.2.3"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_a_local_path_is_followed_after_sign_in() {
        assert_eq!(local(Some("/orders")), "/orders");
        for elsewhere in [
            "//evil.example",
            "https://evil.example",
            "/\\\\evil",
            "orders",
        ] {
            assert_eq!(local(Some(elsewhere)), "/", "{elsewhere}");
        }
        assert_eq!(local(None), "/");
    }
}
