//! The sea-orm task repository on SQLite and (when configured) PostgreSQL, each
//! case on a fresh database; writes run in a unit of work, as every write must.

use domain::tasks::{Task, TaskRepository};
use infrastructure::{SeaOrmTaskRepository, migrate};
use strata_domain::ports::{Propagation, in_unit_of_work};
use strata_domain::{AggregateRoot, Entity, PageRequest, Repository, RepositoryError, Version};
use strata_infrastructure::{Database, SeaOrmUnitOfWork};
use strata_tests::database::TestDatabase;

strata_tests::on_each_engine!(
    a_saved_task_reads_back_equal_at_version_one,
    a_stale_save_is_a_conflict_and_changes_nothing,
    a_failing_unit_of_work_leaves_none_of_its_writes,
);

struct Fixture {
    tasks: SeaOrmTaskRepository,
    unit_of_work: SeaOrmUnitOfWork,
    _database: TestDatabase,
}

impl Fixture {
    async fn new(database: TestDatabase) -> Self {
        let pool = Database::connect(database.url())
            .await
            .expect("the database opens");
        migrate(&pool).await.expect("the schema migrates");
        Self {
            tasks: SeaOrmTaskRepository::new(pool.clone()),
            unit_of_work: SeaOrmUnitOfWork::new(pool),
            _database: database,
        }
    }

    /// Saves `task` in a unit of work of its own.
    async fn save(&self, task: &mut Task) -> Result<(), RepositoryError> {
        in_unit_of_work(&self.unit_of_work, Propagation::Required, async {
            self.tasks.save(task).await
        })
        .await
    }
}

fn task(title: &str) -> Task {
    Task::create(title).expect("a valid title")
}

async fn a_saved_task_reads_back_equal_at_version_one(database: TestDatabase) {
    let f = Fixture::new(database).await;
    let mut saved = task("Water the plants");
    f.save(&mut saved).await.expect("saved");
    assert_eq!(saved.version(), Version::new(1));
    assert!(
        saved.pending_events().is_empty(),
        "events went to the outbox"
    );

    let found = f.tasks.find(saved.id()).await.expect("read");
    assert_eq!(found, Some(saved));
}

async fn a_stale_save_is_a_conflict_and_changes_nothing(database: TestDatabase) {
    let f = Fixture::new(database).await;
    let mut current = task("Sweep");
    f.save(&mut current).await.expect("saved");
    let mut stale = current.clone();

    current.complete().expect("open");
    f.save(&mut current).await.expect("first update");
    stale.complete().expect("open in the stale copy");
    let error = f.save(&mut stale).await.expect_err("stale");

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

async fn a_failing_unit_of_work_leaves_none_of_its_writes(database: TestDatabase) {
    let f = Fixture::new(database).await;
    let (mut first, mut second) = (task("One"), task("Two"));
    let result: Result<(), RepositoryError> =
        in_unit_of_work(&f.unit_of_work, Propagation::Required, async {
            f.tasks.save(&mut first).await?;
            f.tasks.save(&mut second).await?;
            Err(RepositoryError::NotFound {
                kind: "task",
                id: "the test's planned failure".into(),
            })
        })
        .await;

    assert!(
        matches!(result, Err(RepositoryError::NotFound { .. })),
        "{result:?}"
    );
    let page = f.tasks.list(PageRequest::first()).await.expect("listed");
    assert_eq!(page.total, 0);
}
