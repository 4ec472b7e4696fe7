use async_trait::async_trait;
use strata_domain::{Page, PageRequest, Repository, RepositoryError};

use super::Task;

/// Where tasks are kept: the repository port the infrastructure implements.
#[async_trait]
pub trait TaskRepository: Repository<Task> {
    /// One page of tasks, oldest first.
    async fn list(&self, page: PageRequest) -> Result<Page<Task>, RepositoryError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`TaskRepository`] for application tests.
    pub TaskRepository {}

    #[async_trait]
    impl Repository<Task> for TaskRepository {
        async fn find(&self, id: super::TaskId) -> Result<Option<Task>, RepositoryError>;
        async fn save(&self, aggregate: &mut Task) -> Result<(), RepositoryError>;
    }

    #[async_trait]
    impl TaskRepository for TaskRepository {
        async fn list(&self, page: PageRequest) -> Result<Page<Task>, RepositoryError>;
    }
}
