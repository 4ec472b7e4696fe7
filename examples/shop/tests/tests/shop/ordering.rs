//! Orders placed across the inventory and the wallet, each with a database of
//! its own, as a TCC over HTTP; the wallet and stock a customer sees; the
//! transactions an administrator sees and repairs.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_tests::{
    Engine, TestApp, TestDatabase, Tokens, client_from, spawn_app, spawn_app_on, spawn_app_with,
};

/// A product of `price` minor units (EUR) with `stock` units, once the
/// inventory has its stock.
async fn product(app: &TestApp, sku: &str, price: i64, stock: i64) -> String {
    let response = app
        .post_as_admin(
            "/api/products",
            &json!({
                "name": format!("Product {sku}"),
                "sku": sku,
                "price": { "amount_minor": price, "currency": "EUR" },
                "stock": stock
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.expect("a product")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    // The inventory learns of the product from the catalog's event.
    for _ in 0..200 {
        if stock_of(app, &id).await.is_some() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("product {id} never got its stock");
}

async fn stock_of(app: &TestApp, product: &str) -> Option<Value> {
    let response = app
        .client
        .get(app.api_url(&format!("/api/inventory/{product}")))
        .send()
        .await
        .expect("request sent");
    (response.status() == StatusCode::OK).then_some(response.json().await.expect("stock"))
}

async fn stock(app: &TestApp, product: &str) -> (u64, u64, u64) {
    let stock = stock_of(app, product).await.expect("the product has stock");
    let count = |name: &str| stock[name].as_u64().expect("a count");
    (count("available"), count("reserved"), count("sold"))
}

async fn top_up(app: &TestApp, who: &Tokens, key: &str, amount: i64) -> reqwest::Response {
    app.client
        .post(app.api_url("/api/wallet/top-ups"))
        .bearer_auth(&who.access)
        .header("Idempotency-Key", key)
        .json(&json!({ "amount": { "amount_minor": amount, "currency": "EUR" } }))
        .send()
        .await
        .expect("request sent")
}

async fn wallet(app: &TestApp, who: &Tokens) -> (i64, i64) {
    let response = app
        .client
        .get(app.api_url("/api/wallet"))
        .bearer_auth(&who.access)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("a wallet");
    (
        body["balance"]["amount_minor"].as_i64().expect("a balance"),
        body["frozen"]["amount_minor"]
            .as_i64()
            .expect("frozen money"),
    )
}

async fn order(app: &TestApp, who: &Tokens, key: &str, items: &[(&str, i64)]) -> reqwest::Response {
    let items: Vec<Value> = items
        .iter()
        .map(|(product, quantity)| json!({ "product_id": product, "quantity": quantity }))
        .collect();
    app.client
        .post(app.api_url("/api/orders"))
        .bearer_auth(&who.access)
        .header("Idempotency-Key", key)
        .json(&json!({ "items": items }))
        .send()
        .await
        .expect("request sent")
}

/// Yesterday and tomorrow (UTC) as `YYYY-MM-DD`: a report between them holds
/// what was sold now, even when the day changes while a test runs.
fn around_today() -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let today = chrono::DateTime::from_timestamp(i64::try_from(now.as_secs()).expect("seconds"), 0)
        .expect("a time")
        .date_naive();
    let day = |date: Option<chrono::NaiveDate>| date.expect("a day").format("%Y-%m-%d").to_string();
    (day(today.pred_opt()), day(today.succ_opt()))
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.api_url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

async fn places_an_order_across_inventory_and_wallet(app: &TestApp) {
    let tea = product(app, "TEA-1", 1_250, 5).await;
    let cup = product(app, "CUP-1", 300, 10).await;
    let alice = app.customer("alice@shop.test").await;
    assert_eq!(
        top_up(app, &alice, "top-up-1", 5_000).await.status(),
        StatusCode::OK
    );
    // A retried top-up adds the money once.
    assert_eq!(
        top_up(app, &alice, "top-up-1", 5_000).await.status(),
        StatusCode::OK
    );
    assert_eq!(wallet(app, &alice).await, (5_000, 0));

    let response = order(app, &alice, "order-1", &[(&tea, 2), (&cup, 3)]).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("a Location");
    let placed: Value = response.json().await.expect("an order");
    assert_eq!(placed["status"], "confirmed");
    assert_eq!(
        placed["total"],
        json!({ "amount_minor": 3_400, "currency": "EUR" })
    );
    assert_eq!(placed["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(stock(app, &tea).await, (3, 0, 2));
    assert_eq!(stock(app, &cup).await, (7, 0, 3));
    assert_eq!(wallet(app, &alice).await, (1_600, 0));

    // The same key answers the same order and takes nothing twice.
    let again = order(app, &alice, "order-1", &[(&tea, 2), (&cup, 3)]).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again.json::<Value>().await.expect("an order")["id"],
        placed["id"]
    );
    assert_eq!(stock(app, &tea).await, (3, 0, 2));
    assert_eq!(wallet(app, &alice).await, (1_600, 0));
    // ... and with another order, it is refused.
    let reused = order(app, &alice, "order-1", &[(&tea, 1)]).await;
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    assert_eq!(
        reused.json::<Value>().await.expect("a problem")["code"],
        "idempotency_key_reused"
    );

    // The customer sees it; another customer does not; staff do.
    let mine = get(app, &alice.access, &location).await;
    assert_eq!(mine.status(), StatusCode::OK);
    let list: Value = get(app, &alice.access, "/api/orders")
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], placed["id"]);
    let bob = app.customer("bob@shop.test").await;
    assert_eq!(
        get(app, &bob.access, &location).await.status(),
        StatusCode::NOT_FOUND
    );
    let bobs: Value = get(app, &bob.access, "/api/orders")
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(bobs["total"], 0);
    let admin = app.admin_token().await.to_owned();
    assert_eq!(get(app, &admin, &location).await.status(), StatusCode::OK);

    // The sales report counts what was sold, from the order's event.
    let (from, to) = around_today();
    let mut sales = Value::Null;
    for _ in 0..200 {
        let report: Value = app
            .get_as_admin(&format!("/api/reports/sales?from={from}&to={to}"))
            .await
            .json()
            .await
            .expect("a report");
        if report["sales"]
            .as_array()
            .is_some_and(|sales| sales.len() == 2)
        {
            sales = report["sales"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let sold = |product: &str| {
        sales
            .as_array()
            .into_iter()
            .flatten()
            .find(|line| line["product_id"] == product)
            .map(|line| {
                (
                    line["units"].clone(),
                    line["revenue"]["amount_minor"].clone(),
                )
            })
    };
    assert_eq!(sold(&tea), Some((json!(2), json!(2_500))), "{sales}");
    assert_eq!(sold(&cup), Some((json!(3), json!(900))), "{sales}");

    // The administrator sees its transaction, branch by branch.
    let gid = placed["id"].as_str().expect("an id");
    let transaction: Value = get(app, &admin, &format!("/api/admin/transactions/{gid}"))
        .await
        .json()
        .await
        .expect("a transaction");
    assert_eq!(transaction["state"], "succeeded");
    let branches = transaction["branches"].as_array().expect("branches");
    assert_eq!(branches.len(), 2);
    assert!(
        branches.iter().all(|branch| branch["state"] == "confirmed"),
        "{transaction}"
    );
    let succeeded: Value = get(app, &admin, "/api/admin/transactions?state=succeeded")
        .await
        .json()
        .await
        .expect("a page");
    assert!(
        succeeded["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|item| item["gid"] == gid),
        "{succeeded}"
    );
    let retry = app
        .client
        .post(app.api_url(&format!("/api/admin/transactions/{gid}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request sent");
    assert_eq!(retry.status(), StatusCode::CONFLICT);
    assert_eq!(
        get(app, &alice.access, "/api/admin/transactions")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(app, &admin, "/api/admin/transactions/no-such-gid")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_order_is_placed_across_inventory_and_wallet_on_sqlite() {
    let app = spawn_app().await;
    places_an_order_across_inventory_and_wallet(&app).await;
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(strata_postgres),
    ignore = "needs PostgreSQL: set STRATA_TEST_POSTGRES_URL"
)]
async fn an_order_is_placed_across_inventory_and_wallet_on_postgres() {
    let app = spawn_app_on(TestDatabase::on(Engine::Postgres).await).await;
    places_an_order_across_inventory_and_wallet(&app).await;
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(strata_mysql),
    ignore = "needs MySQL or MariaDB: set STRATA_TEST_MYSQL_URL"
)]
async fn an_order_is_placed_across_inventory_and_wallet_on_mysql() {
    let app = spawn_app_on(TestDatabase::on(Engine::MySql).await).await;
    places_an_order_across_inventory_and_wallet(&app).await;
    app.stop().await;
}

/// A wallet that never answers: the order's transaction aborts, its cancel
/// of the wallet's branch fails at every retry, and past the retry bound it
/// waits for an operator, who retries it (still failing, it is flagged again)
/// and then forces it to `failed`, over the API, on the shop's own SQLite
/// database.
#[tokio::test]
async fn an_operator_retries_then_forces_a_transaction_whose_participant_never_answers() {
    // Port 1 is never served here: every call is refused.
    let unreachable = "http://127.0.0.1:1".to_owned();
    let app = spawn_app_with(move |settings| {
        settings.app.wallet.url = Some(unreachable.clone());
        let tcc = &mut settings.service.tcc;
        tcc.timeout = Duration::from_millis(300);
        tcc.call_timeout = Duration::from_millis(200);
        tcc.retry_interval = Duration::from_millis(10);
        tcc.recovery_interval = Duration::from_millis(20);
        tcc.max_doublings = 1;
    })
    .await;
    let admin = app.admin_token().await.to_owned();
    let tea = product(&app, "TEA-NEVER", 500, 10).await;
    let alice = app.customer("alice@shop.test").await;
    let placed = order(&app, &alice, "never-1", &[(&tea, 1)]).await;
    assert!(
        [StatusCode::ACCEPTED, StatusCode::CONFLICT].contains(&placed.status()),
        "{}",
        placed.status()
    );

    let flagged = || async {
        for _ in 0..400 {
            let page: Value = get(&app, &admin, "/api/admin/transactions?state=aborting")
                .await
                .json()
                .await
                .expect("a page");
            if let Some(item) = page["items"]
                .as_array()
                .and_then(|items| items.iter().find(|item| item["flagged"] == true))
            {
                return item["gid"].as_str().expect("a gid").to_owned();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the transaction was never flagged for an operator");
    };
    let gid = flagged().await;
    let retried = app
        .client
        .post(app.api_url(&format!("/api/admin/transactions/{gid}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request sent");
    assert_eq!(retried.status(), StatusCode::NO_CONTENT);
    // Retried, its cancel fails again until the bound is passed once more.
    assert_eq!(flagged().await, gid);

    let forced = app
        .client
        .post(app.api_url(&format!("/api/admin/transactions/{gid}/force")))
        .bearer_auth(&admin)
        .json(&json!({ "state": "failed" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(forced.status(), StatusCode::NO_CONTENT);
    let transaction: Value = get(&app, &admin, &format!("/api/admin/transactions/{gid}"))
        .await
        .json()
        .await
        .expect("a transaction");
    assert_eq!(transaction["state"], "failed", "{transaction}");
    assert_eq!(transaction["flagged"], false, "{transaction}");
    // Both repairs are in the audit trail, as the administrator's.
    let audit: Value = get(&app, &admin, "/api/admin/audit?per_page=100")
        .await
        .json()
        .await
        .expect("a page");
    for use_case in ["tcc.retry_transaction", "tcc.force_transaction"] {
        assert!(
            audit["items"].as_array().is_some_and(|items| items
                .iter()
                .any(|item| item["use_case"] == use_case && item["outcome"] == "ok")),
            "{use_case} not in {audit}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_order_without_stock_or_money_is_cancelled_and_holds_nothing() {
    let app = spawn_app().await;
    let tea = product(&app, "TEA-2", 1_000, 3).await;
    let carol = app.customer("carol@shop.test").await;
    assert_eq!(
        top_up(&app, &carol, "t", 2_500).await.status(),
        StatusCode::OK
    );

    let too_many = order(&app, &carol, "o-1", &[(&tea, 4)]).await;
    assert_eq!(too_many.status(), StatusCode::CONFLICT);
    let problem: Value = too_many.json().await.expect("a problem");
    assert_eq!(problem["code"], "out_of_stock");
    assert_eq!(problem["order"]["status"], "cancelled");
    assert_eq!(problem["order"]["reason"], "out_of_stock");
    assert_eq!(stock(&app, &tea).await, (3, 0, 0));
    assert_eq!(wallet(&app, &carol).await, (2_500, 0));

    let too_dear = order(&app, &carol, "o-2", &[(&tea, 3)]).await;
    assert_eq!(too_dear.status(), StatusCode::CONFLICT);
    let problem: Value = too_dear.json().await.expect("a problem");
    assert_eq!(problem["code"], "insufficient_funds");
    assert_eq!(stock(&app, &tea).await, (3, 0, 0));
    assert_eq!(wallet(&app, &carol).await, (2_500, 0));

    // A retry answers the same cancelled order.
    let again = order(&app, &carol, "o-2", &[(&tea, 3)]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        again.json::<Value>().await.expect("a problem")["order"]["id"],
        problem["order"]["id"]
    );

    let orders: Value = get(&app, &carol.access, "/api/orders")
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(orders["total"], 2);
    let admin = app.admin_token().await.to_owned();
    let failed: Value = get(&app, &admin, "/api/admin/transactions?state=failed")
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(failed["total"], 2);
    app.stop().await;
}

#[tokio::test]
async fn orders_and_top_ups_refuse_what_they_cannot_do() {
    let app = spawn_app().await;
    let tea = product(&app, "TEA-3", 100, 3).await;
    let dave = app.customer("dave@shop.test").await;
    let no_key = app
        .client
        .post(app.api_url("/api/orders"))
        .bearer_auth(&dave.access)
        .json(&json!({ "items": [{ "product_id": tea, "quantity": 1 }] }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(no_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        no_key.json::<Value>().await.expect("a problem")["code"],
        "idempotency_key_missing"
    );

    let unknown = order(&app, &dave, "u", &[(&uuid::Uuid::now_v7().to_string(), 1)]).await;
    assert_eq!(unknown.status(), StatusCode::CONFLICT);
    assert_eq!(
        unknown.json::<Value>().await.expect("a problem")["code"],
        "unknown_product"
    );
    for (key, quantity) in [("zero", 0), ("negative", -1), ("huge", 1_001)] {
        let bad = order(&app, &dave, key, &[(&tea, quantity)]).await;
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY, "{quantity}");
    }
    let empty = order(&app, &dave, "empty", &[]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let twice = order(&app, &dave, "twice", &[(&tea, 1), (&tea, 1)]).await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    assert_eq!(
        twice.json::<Value>().await.expect("a problem")["code"],
        "product_repeated"
    );
    let anonymous = app
        .client
        .post(app.api_url("/api/orders"))
        .header("Idempotency-Key", "anon")
        .json(&json!({ "items": [{ "product_id": tea, "quantity": 1 }] }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(wallet(&app, &dave).await, (0, 0));
    let zero = top_up(&app, &dave, "zero", 0).await;
    assert_eq!(zero.status(), StatusCode::CONFLICT);
    assert_eq!(
        zero.json::<Value>().await.expect("a problem")["code"],
        "top_up_empty"
    );
    assert_eq!(
        top_up(&app, &dave, "eur", 500).await.status(),
        StatusCode::OK
    );
    let dollars = app
        .client
        .post(app.api_url("/api/wallet/top-ups"))
        .bearer_auth(&dave.access)
        .header("Idempotency-Key", "usd")
        .json(&json!({ "amount": { "amount_minor": 500, "currency": "USD" } }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(dollars.status(), StatusCode::CONFLICT);
    assert_eq!(
        dollars.json::<Value>().await.expect("a problem")["code"],
        "currency_mismatch"
    );
    assert_eq!(wallet(&app, &dave).await, (500, 0));

    // The participants' branches are served on the internal listener only,
    // and answer nobody but ordering's service token.
    let public = app
        .client
        .post(app.api_url("/internal/wallet/branch/try"))
        .bearer_auth(&dave.access)
        .json(&json!({}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let branch = app
        .client
        .post(format!("{}/internal/wallet/branch/try", app.internal))
        .bearer_auth(&dave.access)
        .header("x-strata-gid", "g")
        .header("x-strata-branch", "b")
        .json(&json!({
            "order_id": uuid::Uuid::now_v7(),
            "owner_id": uuid::Uuid::now_v7(),
            "amount": { "amount_minor": 1, "currency": "EUR" }
        }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(branch.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn sells_no_more_than_it_has(app: &TestApp, stock_units: i64, orders: usize) {
    let tea = product(app, "TEA-OVERSELL", 100, stock_units).await;
    // Each customer calls from an address of their own, as customers do,
    // within the per-client request limit.
    let mut customers = Vec::new();
    for n in 0..8 {
        let customer = app.customer(&format!("buyer{n}@shop.test")).await;
        assert_eq!(
            top_up(app, &customer, "t", 100_000).await.status(),
            StatusCode::OK
        );
        customers.push((customer, client_from(&format!("127.0.1.{}", n + 1))));
    }
    let mut placing = Vec::new();
    for n in 0..orders {
        let (customer, client) = customers[n % customers.len()].clone();
        let tea = tea.clone();
        let url = app.api_url("/api/orders");
        placing.push(tokio::spawn(async move {
            // As a client does: an overloaded shop (503) or a busy client
            // limit (429) is asked again after `Retry-After`, with the same
            // key; a pending order is looked at until it ends.
            // A connection the shop closed under the request (a kept-alive
            // one it timed out) is asked again too: the key makes it safe.
            let mut overloaded = 0;
            loop {
                let sent = client
                    .post(&url)
                    .bearer_auth(&customer.access)
                    .header("Idempotency-Key", format!("order-{n}"))
                    .json(&json!({ "items": [{ "product_id": tea, "quantity": 1 }] }))
                    .send()
                    .await;
                let response = match sent {
                    Ok(response) => response,
                    Err(error) if overloaded < 20 => {
                        overloaded += 1;
                        eprintln!("order {n} asked again after {error}");
                        continue;
                    }
                    Err(error) => panic!("order {n} could not be sent: {error}"),
                };
                let status = response.status();
                if status != StatusCode::SERVICE_UNAVAILABLE
                    && status != StatusCode::TOO_MANY_REQUESTS
                    && status != StatusCode::ACCEPTED
                {
                    return (status, overloaded);
                }
                overloaded += 1;
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.min(2))).await;
            }
        }));
    }
    let mut confirmed = 0;
    let mut retried = 0;
    for placed in placing {
        let (status, overloaded) = placed.await.expect("an answer");
        retried += overloaded;
        match status {
            StatusCode::CREATED => confirmed += 1,
            StatusCode::CONFLICT => {}
            other => panic!("an order answered {other}"),
        }
    }
    eprintln!("orders asked again after 503, 429 or 202: {retried}");
    assert_eq!(confirmed, stock_units);
    assert_eq!(
        stock(app, &tea).await,
        (0, 0, u64::try_from(stock_units).unwrap_or(0))
    );
    let mut spent = 0;
    for (customer, _) in &customers {
        let (balance, frozen) = wallet(app, customer).await;
        assert_eq!(frozen, 0);
        spent += 100_000 - balance;
    }
    assert_eq!(spent, stock_units * 100, "money is conserved");
}

#[tokio::test]
async fn concurrent_orders_never_oversell_on_sqlite() {
    let app = spawn_app().await;
    sells_no_more_than_it_has(&app, 5, 20).await;
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(strata_postgres),
    ignore = "needs PostgreSQL: set STRATA_TEST_POSTGRES_URL"
)]
async fn concurrent_orders_never_oversell_on_postgres() {
    let app = spawn_app_on(TestDatabase::on(Engine::Postgres).await).await;
    sells_no_more_than_it_has(&app, 50, 200).await;
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(strata_mysql),
    ignore = "needs MySQL or MariaDB: set STRATA_TEST_MYSQL_URL"
)]
async fn concurrent_orders_never_oversell_on_mysql() {
    let app = spawn_app_on(TestDatabase::on(Engine::MySql).await).await;
    sells_no_more_than_it_has(&app, 50, 200).await;
    app.stop().await;
}

#[tokio::test]
async fn a_consumer_dead_letter_is_listed_with_its_reason_and_applied_again_once_repaired() {
    use sea_orm::ConnectionTrait;
    use strata_domain::ports::{EventEnvelope, Outbox, Propagation, in_unit_of_work};

    let app = spawn_app().await;
    let product = uuid::Uuid::now_v7();
    // A product event the inventory cannot read: its stock is not a number.
    let database = strata_infrastructure::Database::connect(app.database().url())
        .await
        .expect("the shop's database");
    let outbox = strata_infrastructure::SeaOrmOutbox::new(database.clone());
    let unit_of_work = strata_infrastructure::SeaOrmUnitOfWork::new(database.clone());
    let event = EventEnvelope {
        id: uuid::Uuid::now_v7(),
        aggregate_kind: "product".into(),
        aggregate_id: product.to_string(),
        aggregate_version: 1,
        event_type: "catalog.product_created".into(),
        payload: json!({ "type": "created", "id": product, "stock": "many" }),
        traceparent: None,
    };
    let appended: Result<(), strata_domain::RepositoryError> = in_unit_of_work(
        &unit_of_work,
        Propagation::Required,
        outbox.append(vec![event]),
    )
    .await;
    appended.expect("the event is in the outbox");

    let admin = app.admin_token().await.to_owned();
    let path = "/api/admin/consumers/inventory_stock/dead-letters";
    let mut dead = Value::Null;
    for _ in 0..200 {
        dead = get(&app, &admin, path).await.json().await.expect("a page");
        if dead["total"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(dead["total"], 1, "{dead}");
    let letter = &dead["items"][0];
    assert_eq!(letter["event_type"], "catalog.product_created");
    assert!(
        letter["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("not a product event")),
        "{letter}"
    );
    let id = letter["number"].as_i64().expect("a number");
    let retry = |id: i64| {
        let client = app.client.clone();
        let url = app.api_url(&format!("{path}/{id}/retry"));
        let admin = admin.clone();
        async move {
            client
                .post(url)
                .bearer_auth(admin)
                .send()
                .await
                .expect("sent")
        }
    };
    let again = retry(id).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        again.json::<Value>().await.expect("a problem")["code"],
        "dead_letter_failed"
    );
    assert!(stock_of(&app, &product.to_string()).await.is_none());

    // An operator repairs the message where it lies, and applies it again.
    let inventory = sea_orm::Database::connect(app.inventory_database().url())
        .await
        .expect("the inventory's database");
    inventory
        .execute_unprepared(
            "UPDATE strata_consumer_dead_letters SET message = replace(message, '\"many\"', '7')",
        )
        .await
        .expect("repaired");
    assert_eq!(retry(id).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(stock(&app, &product.to_string()).await, (7, 0, 0));
    let dead: Value = get(&app, &admin, path).await.json().await.expect("a page");
    assert_eq!(dead["total"], 0);
    assert_eq!(retry(id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get(
            &app,
            &admin,
            "/api/admin/consumers/no_such_consumer/dead-letters"
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
