use async_trait::async_trait;
use domain::tasks::{Task, TaskId, TaskRepository, TaskStatus, TaskTitle};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use strata_domain::{
    AggregateRoot, Entity as _, EventEnvelope, Id, Page, PageRequest, Repository, RepositoryError,
    Version,
};
use strata_infrastructure::{Database, repository_error};

use super::task_entity::{ActiveModel, Column, Entity as Tasks, Model};

/// Tasks stored in the `tasks` table through sea-orm, with optimistic
/// concurrency on the `version` column. Each save hands the task's events to the
/// outbox in the same transaction.
#[derive(Debug, Clone)]
pub struct SeaOrmTaskRepository {
    database: Database,
}

impl SeaOrmTaskRepository {
    /// A repository over `database`; it joins the unit of work of the calling task.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// A stored row that no longer satisfies the domain's rules.
#[derive(Debug, thiserror::Error)]
#[error("stored task {id} is invalid: {problem}")]
struct CorruptTask {
    id: uuid::Uuid,
    problem: String,
}

fn storage(error: DbErr) -> RepositoryError {
    RepositoryError::storage(error)
}

fn to_domain(row: Model) -> Result<Task, RepositoryError> {
    let corrupt = |problem: String| {
        RepositoryError::storage(CorruptTask {
            id: row.id,
            problem,
        })
    };
    let title = TaskTitle::parse(&row.title).map_err(|failure| corrupt(failure.to_string()))?;
    let status = TaskStatus::parse(&row.status)
        .ok_or_else(|| corrupt(format!("unknown status {:?}", row.status)))?;
    let version = u64::try_from(row.version).map_err(|_| corrupt("negative version".into()))?;
    Ok(Task::restore(
        Id::from_uuid(row.id),
        title,
        status,
        Version::new(version),
    ))
}

fn stored_version(version: Version) -> i64 {
    i64::try_from(version.value()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Repository<Task> for SeaOrmTaskRepository {
    async fn find(&self, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        let session = self.database.session().await.map_err(storage)?;
        let row = Tasks::find_by_id(id.as_uuid())
            .one(&*session)
            .await
            .map_err(storage)?;
        session.finish().await.map_err(storage)?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, task: &mut Task) -> Result<(), RepositoryError> {
        let mut session = self.database.session().await.map_err(storage)?;
        let loaded = task.version();
        let next = loaded.next();
        if loaded.is_new() {
            ActiveModel {
                id: Set(task.id().as_uuid()),
                title: Set(task.title().to_string()),
                status: Set(task.status().as_str().to_owned()),
                version: Set(stored_version(next)),
            }
            .insert(&*session)
            .await
            .map_err(|error| repository_error(error, Task::KIND, "id"))?;
        } else {
            // One conditional UPDATE is the whole concurrency check: it changes the
            // row only if nobody saved it since it was loaded.
            let updated = Tasks::update_many()
                .col_expr(Column::Title, Expr::value(task.title().to_string()))
                .col_expr(Column::Status, Expr::value(task.status().as_str()))
                .col_expr(Column::Version, Expr::value(stored_version(next)))
                .filter(Column::Id.eq(task.id().as_uuid()))
                .filter(Column::Version.eq(stored_version(loaded)))
                .exec(&*session)
                .await
                .map_err(storage)?;
            if updated.rows_affected == 0 {
                let exists = Tasks::find_by_id(task.id().as_uuid())
                    .select_only()
                    .column(Column::Id)
                    .into_tuple::<uuid::Uuid>()
                    .one(&*session)
                    .await
                    .map_err(storage)?
                    .is_some();
                let id = task.id().to_string();
                return Err(if exists {
                    RepositoryError::Conflict {
                        kind: Task::KIND,
                        id,
                        expected: loaded,
                    }
                } else {
                    RepositoryError::NotFound {
                        kind: Task::KIND,
                        id,
                    }
                });
            }
        }
        let events = EventEnvelope::take_from(task).map_err(RepositoryError::storage)?;
        session.record(events);
        session.finish().await.map_err(storage)?;
        task.mark_saved(next);
        Ok(())
    }
}

#[async_trait]
impl TaskRepository for SeaOrmTaskRepository {
    async fn list(&self, page: PageRequest) -> Result<Page<Task>, RepositoryError> {
        let session = self.database.session().await.map_err(storage)?;
        let total = Tasks::find().count(&*session).await.map_err(storage)?;
        // Ids are UUIDv7, so their order is the order the tasks were created in.
        let rows = Tasks::find()
            .order_by_asc(Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&*session)
            .await
            .map_err(storage)?;
        session.finish().await.map_err(storage)?;
        let items = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::new(items, page, total))
    }
}
