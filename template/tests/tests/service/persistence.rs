//! The sea-orm repository and unit of work on a real SQLite database.

use domain::tasks::{Task, TaskRepository};
use infrastructure::{SeaOrmTaskRepository, migrate};
use strata_domain::ports::{Propagation, in_unit_of_work};
use strata_domain::{
    AggregateRoot, Entity, PageRequest, Repository, RepositoryError, UnitOfWorkError, Version,
};
use strata_infrastructure::{Database, SeaOrmUnitOfWork};
use tempfile::TempDir;
use test_kit::fresh_sqlite;

struct Fixture {
    tasks: SeaOrmTaskRepository,
    unit_of_work: SeaOrmUnitOfWork,
    _data: TempDir,
}

async fn fixture() -> Fixture {
    let (url, data) = fresh_sqlite();
    let database = Database::connect(&url).await.expect("the database opens");
    migrate(&database).await.expect("the schema migrates");
    Fixture {
        tasks: SeaOrmTaskRepository::new(database.clone()),
        unit_of_work: SeaOrmUnitOfWork::new(database),
        _data: data,
    }
}

fn task(title: &str) -> Task {
    Task::create(title).expect("a valid title")
}

#[derive(Debug)]
enum Failure {
    Planned,
    #[allow(dead_code)] // carried for the assertion messages
    Repository(RepositoryError),
    #[allow(dead_code)]
    UnitOfWork(UnitOfWorkError),
}

impl From<RepositoryError> for Failure {
    fn from(error: RepositoryError) -> Self {
        Self::Repository(error)
    }
}

impl From<UnitOfWorkError> for Failure {
    fn from(error: UnitOfWorkError) -> Self {
        Self::UnitOfWork(error)
    }
}

#[tokio::test]
async fn a_saved_task_reads_back_equal_at_version_one() {
    let f = fixture().await;
    let mut saved = task("Water the plants");
    f.tasks.save(&mut saved).await.expect("saved");
    assert_eq!(saved.version(), Version::new(1));
    assert!(
        saved.pending_events().is_empty(),
        "events went to the outbox"
    );

    let found = f.tasks.find(saved.id()).await.expect("read");
    assert_eq!(found, Some(saved));
}

#[tokio::test]
async fn a_stale_save_is_a_conflict_and_changes_nothing() {
    let f = fixture().await;
    let mut current = task("Sweep");
    f.tasks.save(&mut current).await.expect("saved");
    let mut stale = current.clone();

    current.complete().expect("open");
    f.tasks.save(&mut current).await.expect("first update");
    stale.complete().expect("open in the stale copy");
    let error = f.tasks.save(&mut stale).await.expect_err("stale");

    assert!(
        matches!(error, RepositoryError::Conflict { expected, .. } if expected == Version::new(1)),
        "{error:?}"
    );
    let stored = f
        .tasks
        .find(current.id())
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored.version(), Version::new(2));
}

#[tokio::test]
async fn a_failing_unit_of_work_leaves_none_of_its_writes() {
    let f = fixture().await;
    let (mut first, mut second) = (task("One"), task("Two"));
    let result: Result<(), Failure> =
        in_unit_of_work(&f.unit_of_work, Propagation::Required, async {
            f.tasks.save(&mut first).await?;
            f.tasks.save(&mut second).await?;
            Err(Failure::Planned)
        })
        .await;

    assert!(matches!(result, Err(Failure::Planned)), "{result:?}");
    let page = f.tasks.list(PageRequest::first()).await.expect("listed");
    assert_eq!(page.total, 0);
}
