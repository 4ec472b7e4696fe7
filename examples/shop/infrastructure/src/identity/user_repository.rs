use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use shop_domain::identity::{Email, PasswordHash, Role, User, UserId, UserRepository};
use strata_domain::{
    AggregateRoot, Entity as _, EventEnvelope, Id, Repository, RepositoryError, ValidationFailure,
    Version,
};
use strata_infrastructure::{Database, missing_or_stale, repository_error};

use super::entities::user::{ActiveModel, Column, Entity as Users, Model};

/// Users in the `users` table, with optimistic concurrency on `version`.
#[derive(Debug, Clone)]
pub struct SeaOrmUserRepository {
    database: Database,
}

impl SeaOrmUserRepository {
    /// A repository over `database`; it joins the unit of work of the calling task.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stored user {id} is invalid: {reason}")]
struct CorruptUser {
    id: uuid::Uuid,
    reason: String,
}

fn to_domain(row: Model) -> Result<User, RepositoryError> {
    let corrupt = |reason: String| RepositoryError::storage(CorruptUser { id: row.id, reason });
    let email = Email::parse(&row.email)
        .map_err(|failure: ValidationFailure| corrupt(failure.to_string()))?;
    let role =
        Role::parse(&row.role).ok_or_else(|| corrupt(format!("unknown role `{}`", row.role)))?;
    Ok(User::restore(
        Id::from_uuid(row.id),
        email,
        PasswordHash::from_phc(row.password_hash),
        role,
        Version::new(u64::try_from(row.version).unwrap_or_default()),
    ))
}

fn stored(version: Version) -> i64 {
    i64::try_from(version.value()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Repository<User> for SeaOrmUserRepository {
    async fn find(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        let session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        let row = Users::find_by_id(id.as_uuid())
            .one(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        session.finish().await.map_err(RepositoryError::storage)?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, user: &mut User) -> Result<(), RepositoryError> {
        let mut session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        let loaded = user.version();
        let next = loaded.next();
        if loaded.is_new() {
            ActiveModel {
                id: Set(user.id().as_uuid()),
                email: Set(user.email().to_string()),
                password_hash: Set(user.password_hash().as_phc().to_owned()),
                role: Set(user.role().as_str().to_owned()),
                version: Set(stored(next)),
            }
            .insert(&*session)
            .await
            .map_err(|error| repository_error(error, User::KIND, "email"))?;
        } else {
            let updated = Users::update_many()
                .col_expr(Column::Email, Expr::value(user.email().to_string()))
                .col_expr(
                    Column::PasswordHash,
                    Expr::value(user.password_hash().as_phc().to_owned()),
                )
                .col_expr(Column::Role, Expr::value(user.role().as_str()))
                .col_expr(Column::Version, Expr::value(stored(next)))
                .filter(Column::Id.eq(user.id().as_uuid()))
                .filter(Column::Version.eq(stored(loaded)))
                .exec(&*session)
                .await
                .map_err(|error| repository_error(error, User::KIND, "email"))?;
            if updated.rows_affected == 0 {
                return Err(missing_or_stale::<Users>(
                    &*session,
                    user.id().as_uuid(),
                    User::KIND,
                    loaded,
                )
                .await);
            }
        }
        session.record(EventEnvelope::take_from(user).map_err(RepositoryError::storage)?);
        session.finish().await.map_err(RepositoryError::storage)?;
        user.mark_saved(next);
        Ok(())
    }
}

#[async_trait]
impl UserRepository for SeaOrmUserRepository {
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        let session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        let row = Users::find()
            .filter(Column::Email.eq(email.as_str()))
            .one(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        session.finish().await.map_err(RepositoryError::storage)?;
        row.map(to_domain).transpose()
    }
}
