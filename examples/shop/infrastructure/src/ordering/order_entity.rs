//! The `orders` table as sea-orm sees it. Lines are a JSON array: they are
//! always read and written with their order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer: Uuid,
    pub status: String,
    pub reason: Option<String>,
    pub total_minor: i64,
    pub currency: String,
    #[sea_orm(column_type = "Text")]
    pub lines: String,
    pub placed_at: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
