use async_trait::async_trait;
use domain::tasks::{Task, TaskId, TaskRepository, TaskStatus, TaskTitle};
use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder, QuerySelect, Set};
use strata_domain::{Entity as _, Id, Page, PageRequest, Repository, RepositoryError, Version};
use strata_infrastructure::{Database, save_versioned, storage_error};

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

#[async_trait]
impl Repository<Task> for SeaOrmTaskRepository {
    async fn find(&self, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Tasks::find_by_id(id.as_uuid())
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, task: &mut Task) -> Result<(), RepositoryError> {
        let id = task.id().as_uuid();
        let title = task.title().to_string();
        let status = task.status().as_str().to_owned();
        save_versioned(
            &self.database,
            task,
            id,
            (Column::Id, Column::Version),
            &[("id", "id")],
            move |version| ActiveModel {
                id: Set(id),
                title: Set(title),
                status: Set(status),
                version: Set(version),
            },
        )
        .await
    }
}

#[async_trait]
impl TaskRepository for SeaOrmTaskRepository {
    async fn list(&self, page: PageRequest) -> Result<Page<Task>, RepositoryError> {
        let session = self.database.reader().await?;
        let total = Tasks::find().count(&session).await.map_err(storage_error)?;
        // Ids are UUIDv7, so their order is the order the tasks were created in.
        let rows = Tasks::find()
            .order_by_asc(Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let items = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::new(items, page, total))
    }
}
