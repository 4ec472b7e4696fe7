use std::fmt;

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel,
    PrimaryKeyTrait, QueryFilter,
};
use serde::Serialize;
use strata_domain::ports::AggregateChange;
use strata_domain::{AggregateRoot, EventEnvelope, RepositoryError, Version};

use crate::{Database, missing_or_stale, repository_error};

/// A version as stored in a `BIGINT` column.
#[must_use]
pub fn stored_version(version: Version) -> i64 {
    i64::try_from(version.value()).unwrap_or(i64::MAX)
}

/// Saves an aggregate whose table has a version column, the way every Strata
/// repository does: a new aggregate is inserted; a loaded one is updated by one
/// conditional `UPDATE ... WHERE id = ? AND version = <loaded>`, which changes the
/// row only if nobody saved it since it was loaded — otherwise a
/// [`RepositoryError::Conflict`] (or `NotFound`), never a lost update. The
/// aggregate's recorded events go to the outbox with the write, and the aggregate
/// is marked saved at the next version.
///
/// `row` builds the complete row for a given stored version; `unique` lists the
/// table's unique columns and the field each is to clients, so a duplicate names
/// the one it clashed on (see [`crate::repository_error`]).
///
/// # Errors
/// Conflict, not found, duplicate, or storage failure.
pub async fn save_versioned<A, M>(
    database: &Database,
    aggregate: &mut A,
    id: <<M::Entity as EntityTrait>::PrimaryKey as PrimaryKeyTrait>::ValueType,
    columns: (
        <M::Entity as EntityTrait>::Column,
        <M::Entity as EntityTrait>::Column,
    ),
    unique: &[(&'static str, &'static str)],
    row: impl FnOnce(i64) -> M + Send,
) -> Result<(), RepositoryError>
where
    A: AggregateRoot,
    A::Event: Serialize,
    M: ActiveModelTrait + ActiveModelBehavior + Send + 'static,
    <M::Entity as EntityTrait>::Model: IntoActiveModel<M>,
    <<M::Entity as EntityTrait>::PrimaryKey as PrimaryKeyTrait>::ValueType:
        Clone + fmt::Display + Into<sea_orm::Value>,
{
    let (id_column, version_column) = columns;
    let mut session = database.writer().await?;
    let loaded = aggregate.version();
    let next = loaded.next();
    let row = row(stored_version(next));
    if loaded.is_new() {
        row.insert(&session)
            .await
            .map_err(|error| repository_error(error, A::KIND, unique))?;
    } else {
        let updated = <M::Entity as EntityTrait>::update_many()
            .set(row)
            .filter(id_column.eq(id.clone()))
            .filter(version_column.eq(stored_version(loaded)))
            .exec(&session)
            .await
            .map_err(|error| repository_error(error, A::KIND, unique))?;
        if updated.rows_affected == 0 {
            return Err(missing_or_stale::<M::Entity>(&session, id, A::KIND, loaded).await);
        }
    }
    session.record(EventEnvelope::take_from(aggregate).map_err(RepositoryError::storage)?);
    session.record_change(AggregateChange {
        kind: A::KIND.to_owned(),
        id: aggregate.id().to_string(),
        version_before: loaded.value(),
        version_after: next.value(),
    });
    session.finish().await?;
    aggregate.mark_saved(next);
    Ok(())
}
