use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use shop_domain::identity::{RefreshToken, RefreshTokens, TokenFamily, UserId};
use strata_domain::{Id, RepositoryError};
use strata_infrastructure::{Database, storage_error};

use super::entities::refresh_token::{ActiveModel, Column, Entity as Tokens};

/// Refresh tokens in the `refresh_tokens` table. Only a SHA-256 of each token is
/// stored: the tokens are 244 random bits, so a fast hash is enough to make a
/// stolen table useless.
#[derive(Debug, Clone)]
pub struct SeaOrmRefreshTokens {
    database: Database,
}

impl SeaOrmRefreshTokens {
    /// Tokens in `database`; calls join the unit of work of the calling task.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn new_token() -> String {
    // Two v4 UUIDs: 244 bits from the operating system's random source.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[async_trait]
impl RefreshTokens for SeaOrmRefreshTokens {
    async fn issue(
        &self,
        user: UserId,
        family: TokenFamily,
        expires_at: u64,
    ) -> Result<String, RepositoryError> {
        let token = new_token();
        let session = self.database.writer().await?;
        ActiveModel {
            token_hash: Set(digest(&token)),
            family: Set(family.as_uuid()),
            user_id: Set(user.as_uuid()),
            expires_at: Set(i64::try_from(expires_at).unwrap_or(i64::MAX)),
            used: Set(false),
            revoked: Set(false),
        }
        .insert(&session)
        .await
        .map_err(storage_error)?;
        session.finish().await?;
        Ok(token)
    }

    async fn find(&self, token: &str) -> Result<Option<RefreshToken>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Tokens::find_by_id(digest(token))
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(row.map(|row| RefreshToken {
            family: Id::from_uuid(row.family),
            user: Id::from_uuid(row.user_id),
            expires_at: u64::try_from(row.expires_at).unwrap_or_default(),
            used: row.used,
            revoked: row.revoked,
        }))
    }

    async fn consume(&self, token: &str) -> Result<bool, RepositoryError> {
        let session = self.database.writer().await?;
        let updated = Tokens::update_many()
            .col_expr(Column::Used, Expr::value(true))
            .filter(Column::TokenHash.eq(digest(token)))
            .filter(Column::Used.eq(false))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(updated.rows_affected == 1)
    }

    async fn revoke_family(&self, family: TokenFamily) -> Result<(), RepositoryError> {
        let session = self.database.writer().await?;
        Tokens::update_many()
            .col_expr(Column::Revoked, Expr::value(true))
            .filter(Column::Family.eq(family.as_uuid()))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await
    }

    async fn purge_expired(&self, now: u64) -> Result<u64, RepositoryError> {
        let session = self.database.writer().await?;
        let purged = Tokens::delete_many()
            .filter(Column::ExpiresAt.lte(i64::try_from(now).unwrap_or(i64::MAX)))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(purged.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_only_as_a_digest() {
        let (first, second) = (new_token(), new_token());
        assert_eq!(first.len(), 64);
        assert_ne!(first, second);
        assert_eq!(digest(&first).len(), 64);
        assert_ne!(digest(&first), first);
        assert_eq!(digest(&first), digest(&first));
    }
}
