use async_trait::async_trait;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use shop_domain::identity::{Email, PasswordHash, Role, User, UserId, UserRepository};
use strata_domain::{Entity as _, Id, Repository, RepositoryError, ValidationFailure, Version};
use strata_infrastructure::{Database, save_versioned, storage_error};

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

#[async_trait]
impl Repository<User> for SeaOrmUserRepository {
    async fn find(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Users::find_by_id(id.as_uuid())
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, user: &mut User) -> Result<(), RepositoryError> {
        let id = user.id().as_uuid();
        let email = user.email().to_string();
        let password_hash = user.password_hash().as_phc().to_owned();
        let role = user.role().as_str().to_owned();
        save_versioned(
            &self.database,
            user,
            id,
            (Column::Id, Column::Version),
            &[("email", "email"), ("id", "id")],
            move |version| ActiveModel {
                id: Set(id),
                email: Set(email),
                password_hash: Set(password_hash),
                role: Set(role),
                version: Set(version),
            },
        )
        .await
    }
}

#[async_trait]
impl UserRepository for SeaOrmUserRepository {
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Users::find()
            .filter(Column::Email.eq(email.as_str()))
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(to_domain).transpose()
    }
}
