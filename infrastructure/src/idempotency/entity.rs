//! The `strata_idempotency_keys` table as sea-orm sees it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "strata_idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub fingerprint: String,
    pub state: String,
    #[sea_orm(column_type = "Blob", nullable)]
    pub result: Option<Vec<u8>>,
    pub created_at: i64,
    pub locked_until: i64,
    pub claim_token: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
