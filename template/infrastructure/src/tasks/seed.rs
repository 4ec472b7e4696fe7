use domain::tasks::{Task, TaskRepository};
use strata_domain::{DomainError, PageRequest, RepositoryError, UnitOfWorkError};

/// Why the demo tasks could not be added.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A demo task broke a domain rule (a bug in the demo data).
    #[error("a demo task is invalid")]
    Invalid(#[from] DomainError),
    /// The repository failed.
    #[error("could not store the demo tasks")]
    Storage(#[from] RepositoryError),
    /// The unit of work around the seeding failed.
    #[error("could not commit the demo tasks")]
    UnitOfWork(#[from] UnitOfWorkError),
}

const DEMO: [&str; 3] = [
    "Read the README",
    "Run the tests: cargo test --workspace",
    "Add a use case of your own",
];

/// Adds a few demo tasks when there are none, so a fresh service has something
/// to show. Returns how many were added. Run it in a unit of work to add all of
/// them or none.
///
/// # Errors
/// When the tasks cannot be read or a task cannot be saved.
pub async fn seed_tasks(tasks: &dyn TaskRepository) -> Result<usize, SeedError> {
    if tasks.list(PageRequest::first()).await?.total > 0 {
        return Ok(0);
    }
    for title in DEMO {
        let mut task = Task::create(title)?;
        tasks.save(&mut task).await?;
    }
    tracing::info!(tasks = DEMO.len(), "added the demo tasks");
    Ok(DEMO.len())
}
