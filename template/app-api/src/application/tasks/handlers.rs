use std::sync::Arc;

use async_trait::async_trait;
use domain::tasks::{Task, TaskRepository};
use strata_app_api::application::{AppError, CommandHandler, QueryHandler, UseCaseContext};
use strata_domain::{AggregateRoot, Page, PageRequest, RepositoryError, Version};

use super::{CompleteTask, CreateTask, GetTask, ListTasks, TaskView};

/// The task use cases' handlers, over the repository they need. Each holds the
/// business step alone: the pipeline validates, logs and runs the unit of work.
#[derive(Clone)]
pub struct TaskHandlers {
    tasks: Arc<dyn TaskRepository>,
}

impl std::fmt::Debug for TaskHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandlers").finish_non_exhaustive()
    }
}

impl TaskHandlers {
    /// Handlers over a task repository.
    #[must_use]
    pub fn new(tasks: Arc<dyn TaskRepository>) -> Self {
        Self { tasks }
    }
}

#[async_trait]
impl CommandHandler<CreateTask> for TaskHandlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: CreateTask,
    ) -> Result<TaskView, AppError> {
        let mut task = Task::create(&command.title)?;
        self.tasks.save(&mut task).await?;
        Ok(TaskView::from(&task))
    }
}

#[async_trait]
impl CommandHandler<CompleteTask> for TaskHandlers {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: CompleteTask,
    ) -> Result<TaskView, AppError> {
        let expected = Version::new(command.expected_version);
        let mut task = self
            .tasks
            .find(command.id)
            .await?
            .ok_or_else(|| AppError::not_found(Task::KIND, command.id))?;
        // Checked here as well as by the repository, so a client acting on an old
        // read hears "stale" rather than a rule decided on state it never saw.
        if task.version() != expected {
            return Err(RepositoryError::Conflict {
                kind: Task::KIND,
                id: command.id.to_string(),
                expected,
            }
            .into());
        }
        task.complete()?;
        self.tasks.save(&mut task).await?;
        Ok(TaskView::from(&task))
    }
}

#[async_trait]
impl QueryHandler<GetTask> for TaskHandlers {
    async fn ask(&self, _cx: &UseCaseContext, query: GetTask) -> Result<TaskView, AppError> {
        self.tasks
            .find(query.id)
            .await?
            .map(|task| TaskView::from(&task))
            .ok_or_else(|| AppError::not_found(Task::KIND, query.id))
    }
}

#[async_trait]
impl QueryHandler<ListTasks> for TaskHandlers {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: ListTasks,
    ) -> Result<Page<TaskView>, AppError> {
        let request = PageRequest::new(query.page, query.per_page)?;
        let page = self.tasks.list(request).await?;
        Ok(page.map(|task| TaskView::from(&task)))
    }
}

#[cfg(test)]
mod tests {
    //! The handlers run through the real pipeline, with mockall doubles of the ports.

    use domain::tasks::{MockTaskRepository, TaskId, TaskStatus, TaskTitle};
    use mockall::predicate::eq;
    use strata_app_api::application::{Dispatcher, RequestContext, middleware};
    use strata_domain::Entity;
    use strata_domain::ports::{MockUnitOfWork, Outcome, Propagation};

    use super::*;
    use crate::application::tasks::register;

    fn unit_of_work_expecting(outcome: Outcome) -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work
            .expect_begin()
            .with(eq(Propagation::Required))
            .times(1)
            .returning(|_| Ok(()));
        unit_of_work
            .expect_finish()
            .with(eq(outcome))
            .times(1)
            .returning(Ok);
        unit_of_work
    }

    fn untouched_unit_of_work() -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().never();
        unit_of_work
    }

    fn dispatcher(tasks: MockTaskRepository, unit_of_work: MockUnitOfWork) -> Dispatcher {
        let handlers = Arc::new(TaskHandlers::new(Arc::new(tasks)));
        register(
            Dispatcher::builder().middleware(middleware::standard(Arc::new(unit_of_work))),
            handlers,
        )
        .build()
    }

    fn stored(status: TaskStatus, version: u64) -> Task {
        Task::restore(
            TaskId::generate(),
            TaskTitle::parse("Water the plants").expect("valid"),
            status,
            Version::new(version),
        )
    }

    fn request() -> RequestContext {
        RequestContext::background()
    }

    #[tokio::test]
    async fn create_saves_a_new_task_once_and_commits() {
        let mut tasks = MockTaskRepository::new();
        tasks
            .expect_save()
            .withf(|task| task.version().is_new() && task.title().as_str() == "Water the plants")
            .times(1)
            .returning(|task| {
                task.mark_saved(Version::new(1));
                Ok(())
            });

        let view = dispatcher(tasks, unit_of_work_expecting(Outcome::Commit))
            .execute(
                &request(),
                CreateTask {
                    title: " Water the plants ".into(),
                },
            )
            .await
            .expect("created");

        assert_eq!(view.title, "Water the plants");
        assert_eq!(view.status, "open");
        assert_eq!(view.version, 1);
    }

    #[tokio::test]
    async fn an_invalid_title_touches_neither_repository_nor_unit_of_work() {
        let mut tasks = MockTaskRepository::new();
        tasks.expect_save().never();

        let error = dispatcher(tasks, untouched_unit_of_work())
            .execute(&request(), CreateTask { title: " ".into() })
            .await
            .expect_err("blank title");

        let AppError::Invalid(failure) = error else {
            panic!("expected a validation failure, got {error:?}");
        };
        let fields: Vec<_> = failure
            .violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["title"]);
    }

    #[tokio::test]
    async fn complete_saves_the_task_loaded_at_the_expected_version() {
        let task = stored(TaskStatus::Open, 2);
        let id = task.id();
        let mut tasks = MockTaskRepository::new();
        tasks
            .expect_find()
            .with(eq(id))
            .times(1)
            .returning(move |_| Ok(Some(task.clone())));
        tasks
            .expect_save()
            .withf(|task| task.status() == TaskStatus::Done)
            .times(1)
            .returning(|task| {
                task.mark_saved(Version::new(3));
                Ok(())
            });

        let view = dispatcher(tasks, unit_of_work_expecting(Outcome::Commit))
            .execute(
                &request(),
                CompleteTask {
                    id,
                    expected_version: 2,
                },
            )
            .await
            .expect("completed");

        assert_eq!(view.status, "done");
        assert_eq!(view.version, 3);
    }

    #[tokio::test]
    async fn completing_from_a_stale_version_is_refused_without_saving() {
        let task = stored(TaskStatus::Open, 5);
        let id = task.id();
        let mut tasks = MockTaskRepository::new();
        tasks
            .expect_find()
            .returning(move |_| Ok(Some(task.clone())));
        tasks.expect_save().never();

        let error = dispatcher(tasks, unit_of_work_expecting(Outcome::Rollback))
            .execute(
                &request(),
                CompleteTask {
                    id,
                    expected_version: 4,
                },
            )
            .await
            .expect_err("stale");

        assert!(matches!(
            error,
            AppError::Conflict {
                code: "stale_version",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn completing_a_done_task_breaks_a_rule_and_rolls_back() {
        let task = stored(TaskStatus::Done, 2);
        let id = task.id();
        let mut tasks = MockTaskRepository::new();
        tasks
            .expect_find()
            .returning(move |_| Ok(Some(task.clone())));
        tasks.expect_save().never();

        let error = dispatcher(tasks, unit_of_work_expecting(Outcome::Rollback))
            .execute(
                &request(),
                CompleteTask {
                    id,
                    expected_version: 2,
                },
            )
            .await
            .expect_err("already done");

        assert!(matches!(
            error,
            AppError::RuleViolated {
                code: "already_done",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn completing_an_unknown_task_is_not_found() {
        let mut tasks = MockTaskRepository::new();
        tasks.expect_find().returning(|_| Ok(None));

        let error = dispatcher(tasks, unit_of_work_expecting(Outcome::Rollback))
            .execute(
                &request(),
                CompleteTask {
                    id: TaskId::generate(),
                    expected_version: 1,
                },
            )
            .await
            .expect_err("unknown");

        assert!(matches!(error, AppError::NotFound { kind: "task", .. }));
    }

    #[tokio::test]
    async fn queries_run_without_a_unit_of_work() {
        let mut tasks = MockTaskRepository::new();
        tasks
            .expect_list()
            .withf(|page| page.page() == 2 && page.per_page() == 1)
            .times(1)
            .returning(|page| Ok(Page::new(vec![stored(TaskStatus::Open, 1)], page, 3)));

        let page = dispatcher(tasks, untouched_unit_of_work())
            .ask(
                &request(),
                ListTasks {
                    page: 2,
                    per_page: 1,
                },
            )
            .await
            .expect("listed");

        assert_eq!(page.total, 3);
        assert_eq!(page.items.len(), 1);
    }
}
