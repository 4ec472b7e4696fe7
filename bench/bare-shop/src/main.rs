//! The baseline of `bench/http.sh`: the shop's four catalog endpoints as a
//! team would write them by hand on axum and sea-orm — one handler each, the
//! same rows of the same `products` table, the same JSON — with no use-case
//! pipeline, unit of work, outbox, idempotency keys, audit trail, cache,
//! authentication or logging.
//!
//! ```sh
//! bare-shop --addr 127.0.0.1:9300 --database-url 'sqlite://shop.db'
//! ```

use std::net::SocketAddr;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use clap::{Arg, Command};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, QueryOrder, QuerySelect, Set};
use serde::{Deserialize, Serialize};

mod products {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "products")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub sku: String,
        pub price_minor: i64,
        pub currency: String,
        pub stock: i64,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use products::{ActiveModel, Column, Entity as Products, Model};

#[derive(Serialize, Deserialize)]
struct Price {
    amount_minor: i64,
    currency: String,
}

#[derive(Serialize)]
struct Product {
    id: Uuid,
    name: String,
    sku: String,
    price: Price,
    version: i64,
}

impl From<Model> for Product {
    fn from(row: Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            sku: row.sku,
            price: Price {
                amount_minor: row.price_minor,
                currency: row.currency,
            },
            version: row.version,
        }
    }
}

#[derive(Serialize)]
struct Page {
    items: Vec<Product>,
    page: u64,
    per_page: u64,
    total: u64,
}

#[derive(Deserialize)]
struct Paging {
    page: Option<u64>,
    per_page: Option<u64>,
}

#[derive(Deserialize)]
struct NewProduct {
    name: String,
    sku: String,
    price: Price,
    stock: i64,
}

#[derive(Deserialize)]
struct PriceChange {
    price: Price,
    version: i64,
}

/// Any failure: its status and a one-line reason.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl From<DbErr> for Failure {
    fn from(error: DbErr) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

async fn get_product(
    State(db): State<DatabaseConnection>,
    Path(id): Path<Uuid>,
) -> Result<Json<Product>, Failure> {
    let row = Products::find_by_id(id).one(&db).await?;
    row.map(|row| Json(row.into()))
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "no such product".into()))
}

async fn list_products(
    State(db): State<DatabaseConnection>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page>, Failure> {
    let page = Ord::max(paging.page.unwrap_or(1), 1);
    let per_page = paging.per_page.unwrap_or(20).clamp(1, 100);
    let total = Products::find().count(&db).await?;
    let rows = Products::find()
        .order_by_asc(Column::Id)
        .offset((page - 1) * per_page)
        .limit(per_page)
        .all(&db)
        .await?;
    Ok(Json(Page {
        items: rows.into_iter().map(Product::from).collect(),
        page,
        per_page,
        total,
    }))
}

async fn create_product(
    State(db): State<DatabaseConnection>,
    Json(new): Json<NewProduct>,
) -> Result<Response, Failure> {
    let row = ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(new.name),
        sku: Set(new.sku),
        price_minor: Set(new.price.amount_minor),
        currency: Set(new.price.currency),
        stock: Set(new.stock),
        version: Set(1),
    }
    .insert(&db)
    .await?;
    let location = format!("/api/products/{}", row.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(Product::from(row)),
    )
        .into_response())
}

async fn change_price(
    State(db): State<DatabaseConnection>,
    Path(id): Path<Uuid>,
    Json(change): Json<PriceChange>,
) -> Result<Json<Product>, Failure> {
    let rows = Products::update_many()
        .col_expr(Column::PriceMinor, Expr::value(change.price.amount_minor))
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(change.version))
        .filter(Column::Currency.eq(change.price.currency))
        .exec_with_returning(&db)
        .await?;
    rows.into_iter()
        .next()
        .map(|row| Json(row.into()))
        .ok_or_else(|| {
            Failure(
                StatusCode::CONFLICT,
                "stale version or no such product".into(),
            )
        })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments = Command::new("bare-shop")
        .about("The shop's catalog endpoints on bare axum and sea-orm")
        .arg(
            Arg::new("addr")
                .long("addr")
                .value_parser(clap::value_parser!(SocketAddr))
                .required(true),
        )
        .arg(Arg::new("database-url").long("database-url").required(true))
        .get_matches();
    let addr = arguments
        .get_one::<SocketAddr>("addr")
        .copied()
        .ok_or("--addr is required")?;
    let url = arguments
        .get_one::<String>("database-url")
        .ok_or("--database-url is required")?;
    let mut options = ConnectOptions::new(url.as_str());
    options.max_connections(10).sqlx_logging(false);
    let db = Database::connect(options).await?;
    let app = Router::new()
        .route("/api/products", get(list_products).post(create_product))
        .route("/api/products/{id}", get(get_product))
        .route("/api/products/{id}/price", put(change_price))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
