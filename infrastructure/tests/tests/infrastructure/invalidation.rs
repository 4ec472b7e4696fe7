//! The invalidation journal: what a unit of work makes stale in the cache is
//! owed exactly when the unit of work commits, until it is settled, on
//! SQLite, PostgreSQL and MySQL.

use std::time::Duration;

use strata_app_api::application::AppError;
use strata_domain::ports::{InvalidationJournal, Propagation, in_unit_of_work};
use strata_infrastructure::{SeaOrmInvalidationJournal, SeaOrmUnitOfWork};
use strata_infrastructure_tests::pipeline::{Fixture, FixtureOptions};
use strata_tests::database::TestDatabase;

strata_tests::on_each_engine!(mysql:
    an_entry_is_owed_once_its_unit_of_work_commits_and_never_if_it_rolls_back,
    owed_entries_come_oldest_first_and_only_once_old_enough,
    a_settled_entry_is_owed_no_more,
    an_entry_is_written_only_inside_a_unit_of_work,
);

fn names(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

struct Journal {
    journal: SeaOrmInvalidationJournal,
    unit_of_work: SeaOrmUnitOfWork,
}

impl Journal {
    async fn start(database: &TestDatabase) -> Self {
        let f = Fixture::start(database.url(), FixtureOptions::default()).await;
        Self {
            journal: SeaOrmInvalidationJournal::new(f.database.clone()),
            unit_of_work: SeaOrmUnitOfWork::new(f.database.clone()),
        }
    }

    /// Records `keys` and `tags` in a unit of work that then commits or, when
    /// `commit` is false, rolls back.
    async fn record(&self, keys: &[&str], tags: &[&str], commit: bool) -> uuid::Uuid {
        let mut recorded = None;
        let outcome: Result<(), AppError> =
            in_unit_of_work(&self.unit_of_work, Propagation::Required, async {
                recorded = Some(self.journal.record(&names(keys), &names(tags)).await?);
                if commit {
                    Ok(())
                } else {
                    Err(AppError::internal(std::io::Error::other("rolled back")))
                }
            })
            .await;
        assert_eq!(outcome.is_ok(), commit);
        recorded.expect("recorded")
    }

    async fn owed_ids(&self, age: Duration) -> Vec<uuid::Uuid> {
        self.journal
            .owed(age, 100)
            .await
            .expect("the journal reads")
            .into_iter()
            .map(|entry| entry.id)
            .collect()
    }
}

async fn an_entry_is_owed_once_its_unit_of_work_commits_and_never_if_it_rolls_back(
    database: TestDatabase,
) {
    let j = Journal::start(&database).await;
    j.record(&["product:1"], &[], false).await;
    assert!(j.owed_ids(Duration::ZERO).await.is_empty());

    let id = j
        .record(&["product:1", "product:2"], &["products"], true)
        .await;
    let owed = j.journal.owed(Duration::ZERO, 100).await.expect("reads");
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].id, id);
    assert_eq!(owed[0].keys, names(&["product:1", "product:2"]));
    assert_eq!(owed[0].tags, names(&["products"]));
}

async fn owed_entries_come_oldest_first_and_only_once_old_enough(database: TestDatabase) {
    let j = Journal::start(&database).await;
    let first = j.record(&["a"], &[], true).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = j.record(&["b"], &[], true).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let third = j.record(&[], &["c"], true).await;

    assert_eq!(j.owed_ids(Duration::ZERO).await, vec![first, second, third]);
    assert_eq!(
        j.journal
            .owed(Duration::ZERO, 2)
            .await
            .expect("reads")
            .len(),
        2,
        "at most the limit"
    );
    assert!(
        j.owed_ids(Duration::from_secs(60)).await.is_empty(),
        "entries younger than the age are left to their commits"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fourth = j.record(&["d"], &[], true).await;
    let old_enough = j.owed_ids(Duration::from_millis(200)).await;
    assert_eq!(old_enough, vec![first, second, third]);
    assert!(!old_enough.contains(&fourth));
}

async fn a_settled_entry_is_owed_no_more(database: TestDatabase) {
    let j = Journal::start(&database).await;
    let first = j.record(&["a"], &[], true).await;
    let second = j.record(&["b"], &[], true).await;
    let third = j.record(&["c"], &[], true).await;
    j.journal
        .settle(&[first, third, uuid::Uuid::now_v7()])
        .await
        .expect("settled");
    assert_eq!(j.owed_ids(Duration::ZERO).await, vec![second]);
    j.journal.settle(&[]).await.expect("nothing to settle");
    j.journal.settle(&[second]).await.expect("settled");
    assert!(j.owed_ids(Duration::ZERO).await.is_empty());
}

async fn an_entry_is_written_only_inside_a_unit_of_work(database: TestDatabase) {
    let j = Journal::start(&database).await;
    assert!(
        j.journal.record(&names(&["a"]), &[]).await.is_err(),
        "outside a unit of work nothing would make the entry part of a change"
    );
    assert!(j.owed_ids(Duration::ZERO).await.is_empty());
}
