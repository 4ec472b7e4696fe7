//! Idempotency keys (FAULTS.md 22–27 and 29), through the standard chain and at
//! the store, each on a fresh database, on SQLite, PostgreSQL and MySQL. Time is the
//! fixture's hand-moved clock: no test sleeps out a lease.

use std::sync::Arc;
use std::time::Duration;

use strata_app_api::application::AppError;
use strata_domain::ports::{Claim, ClaimToken, Completion, IdempotencyStore};
use strata_infrastructure_tests::pipeline::{
    Fixture, FixtureOptions, WriteNoteOnce, WriteNoteWithKey, user_request,
};
use strata_tests::database::{Engine, TestDatabase};

strata_tests::on_each_engine!(mysql:
    concurrent_requests_with_one_key_run_once,
    a_retry_after_completion_gets_the_first_answer,
    the_same_key_with_other_input_is_refused_and_runs_nothing,
    a_missing_key_where_one_is_required_is_a_bad_request,
    a_key_past_its_retention_is_processed_as_new,
    a_request_that_failed_validation_stores_nothing,
    a_holder_that_died_is_taken_over_after_its_lease_with_one_side_effect,
    a_holder_that_outlives_its_lease_cannot_add_a_second_side_effect,
    one_callers_key_is_never_anothers,
    a_duplicate_of_a_running_request_is_told_at_once,
    a_lost_claim_can_neither_complete_nor_release,
    keys_past_their_retention_are_purged,
);

const LEASE: Duration = Duration::from_secs(60);

async fn start(database: &TestDatabase) -> Arc<Fixture> {
    Arc::new(Fixture::start(database.url(), FixtureOptions::default()).await)
}

fn once(text: &str) -> WriteNoteOnce {
    WriteNoteOnce {
        text: text.into(),
        wait: false,
        die: false,
    }
}

async fn write(
    f: &Fixture,
    subject: &str,
    key: &str,
    command: WriteNoteOnce,
) -> Result<String, AppError> {
    f.dispatcher
        .execute(&user_request(subject, key), command)
        .await
}

async fn concurrent_requests_with_one_key_run_once(database: TestDatabase) {
    let f = start(&database).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let f = Arc::clone(&f);
        requests.spawn(async move { write(&f, "u1", "rush", once("rush")).await });
    }
    let mut ids = Vec::new();
    while let Some(answer) = requests.join_next().await {
        match answer.expect("task ran") {
            Ok(id) => ids.push(id),
            Err(error) => assert_eq!(error.code(), "idempotency_key_in_use", "{error:?}"),
        }
    }
    assert!(!ids.is_empty(), "the first request succeeds");
    assert!(
        ids.windows(2).all(|pair| pair[0] == pair[1]),
        "replays answer the same note: {ids:?}"
    );
    assert_eq!(f.count_saying("rush").await, 1, "exactly one side effect");
    let retry = write(&f, "u1", "rush", once("rush"))
        .await
        .expect("replayed");
    assert_eq!(retry, ids[0]);
}

async fn a_retry_after_completion_gets_the_first_answer(database: TestDatabase) {
    let f = start(&database).await;
    let first = write(&f, "u1", "k", once("once")).await.expect("written");
    let retry = write(&f, "u1", "k", once("once")).await.expect("replayed");
    assert_eq!(retry, first);
    assert_eq!(f.count_saying("once").await, 1);
}

async fn the_same_key_with_other_input_is_refused_and_runs_nothing(database: TestDatabase) {
    let f = start(&database).await;
    write(&f, "u1", "k", once("first")).await.expect("written");
    let other = write(&f, "u1", "k", once("second")).await;
    assert_eq!(other.expect_err("refused").code(), "idempotency_key_reused");
    assert_eq!(f.count_saying("second").await, 0);
}

async fn a_missing_key_where_one_is_required_is_a_bad_request(database: TestDatabase) {
    let f = start(&database).await;
    let request = strata_app_api::application::RequestContext::background().with_principal(
        strata_app_api::application::Principal::new(
            "u1",
            strata_app_api::application::PrincipalKind::User,
        ),
    );
    let error = f
        .dispatcher
        .execute(
            &request,
            WriteNoteWithKey {
                text: "keyless".into(),
            },
        )
        .await
        .expect_err("a key is required");
    assert_eq!(error.code(), "idempotency_key_missing");
    assert_eq!(f.count_saying("keyless").await, 0);
}

async fn a_key_past_its_retention_is_processed_as_new(database: TestDatabase) {
    let f = start(&database).await;
    let first = write(&f, "u1", "k", once("old")).await.expect("written");
    f.clock.advance(Duration::from_secs(24 * 60 * 60 + 1));
    let second = write(&f, "u1", "k", once("new"))
        .await
        .expect("a new request");
    assert_ne!(second, first);
    assert_eq!(f.count_saying("new").await, 1);
}

async fn a_request_that_failed_validation_stores_nothing(database: TestDatabase) {
    let f = start(&database).await;
    let invalid = write(&f, "u1", "k", once("")).await;
    assert_eq!(invalid.expect_err("invalid").code(), "validation_failed");
    write(&f, "u1", "k", once("fixed"))
        .await
        .expect("the retry runs");
    assert_eq!(f.count_saying("fixed").await, 1);
}

async fn a_holder_that_died_is_taken_over_after_its_lease_with_one_side_effect(
    database: TestDatabase,
) {
    let f = start(&database).await;
    let dying = Arc::clone(&f);
    let died = tokio::spawn(async move {
        let command = WriteNoteOnce {
            die: true,
            ..once("survivor")
        };
        write(&dying, "u1", "k", command).await
    })
    .await;
    assert!(died.is_err_and(|error| error.is_panic()), "the holder died");
    let early = write(&f, "u1", "k", once("survivor")).await;
    assert_eq!(
        early.expect_err("its lease still runs").code(),
        "idempotency_key_in_use"
    );
    f.clock.advance(LEASE + Duration::from_secs(1));
    write(&f, "u1", "k", once("survivor"))
        .await
        .expect("the retry takes the key over");
    assert_eq!(
        f.count_saying("survivor").await,
        1,
        "one side effect in total"
    );
}

async fn a_holder_that_outlives_its_lease_cannot_add_a_second_side_effect(database: TestDatabase) {
    let f = start(&database).await;
    let slow = Arc::clone(&f);
    let entered = f.probes.entered.notified();
    let late = tokio::spawn(async move {
        let command = WriteNoteOnce {
            wait: true,
            ..once("paid")
        };
        write(&slow, "u1", "k", command).await
    });
    entered.await;
    f.clock.advance(LEASE + Duration::from_secs(1));
    let retrying = Arc::clone(&f);
    let retry = tokio::spawn(async move { write(&retrying, "u1", "k", once("paid")).await });
    let (late, retry) = match database.engine() {
        // The retry takes the key over and finishes while the late holder waits.
        Engine::Postgres | Engine::MySql => {
            let retry = retry.await.expect("ran");
            f.probes.open_gate();
            (late.await.expect("ran"), retry)
        }
        // The late holder's unit of work holds SQLite's only write lock, so the
        // retry cannot claim the key until the late holder is done.
        Engine::Sqlite => {
            f.probes.open_gate();
            (late.await.expect("ran"), retry.await.expect("ran"))
        }
    };
    match (&late, &retry) {
        (Err(error), Ok(_)) => assert_eq!(error.code(), "idempotency_key_lease_lost"),
        (Ok(first), Ok(replayed)) => assert_eq!(
            first, replayed,
            "the retry was answered from the holder's result"
        ),
        other => panic!("unexpected outcome: {other:?}"),
    }
    match database.engine() {
        Engine::Postgres | Engine::MySql => {
            assert!(late.is_err(), "the late holder's commit is refused")
        }
        // The retry could not take the key over while the holder held the write
        // lock; the holder finished first and the retry got its answer.
        Engine::Sqlite => assert_eq!(
            late.as_ref().ok(),
            retry.as_ref().ok(),
            "the retry replayed the holder's result"
        ),
    }
    assert_eq!(f.count_saying("paid").await, 1, "one side effect in total");
}

async fn one_callers_key_is_never_anothers(database: TestDatabase) {
    let f = start(&database).await;
    let theirs = write(&f, "alice", "shared-key", once("alice's"))
        .await
        .expect("written");
    let mine = write(&f, "bob", "shared-key", once("alice's"))
        .await
        .expect("bob's own request runs");
    assert_ne!(mine, theirs, "bob is never answered with alice's result");
    assert_eq!(f.count_saying("alice's").await, 2);
}

async fn a_duplicate_of_a_running_request_is_told_at_once(database: TestDatabase) {
    let f = start(&database).await;
    let slow = Arc::clone(&f);
    let entered = f.probes.entered.notified();
    let first = tokio::spawn(async move {
        let command = WriteNoteOnce {
            wait: true,
            ..once("running")
        };
        write(&slow, "u1", "k", command).await
    });
    entered.await;
    // The first request holds its unit of work (on SQLite, the write lock) open.
    let duplicate = tokio::time::timeout(
        Duration::from_secs(3),
        write(&f, "u1", "k", once("running")),
    )
    .await
    .expect("answered without waiting for the running request");
    assert_eq!(
        duplicate.expect_err("the first still runs").code(),
        "idempotency_key_in_use"
    );
    f.probes.open_gate();
    let id = first.await.expect("ran").expect("the first completes");
    assert_eq!(
        write(&f, "u1", "k", once("running"))
            .await
            .expect("replayed"),
        id
    );
}

async fn a_lost_claim_can_neither_complete_nor_release(database: TestDatabase) {
    let f = start(&database).await;
    let store = &f.idempotency;
    let Claim::Acquired(lost) = store.claim("key", "fp", LEASE).await.expect("claim") else {
        panic!("a fresh key is acquired");
    };
    f.clock.advance(LEASE + Duration::from_secs(1));
    let Claim::Acquired(current) = store.claim("key", "fp", LEASE).await.expect("claim") else {
        panic!("an expired claim is taken over");
    };
    assert_ne!(lost, current);
    store.release("key", &lost).await.expect("release runs");
    assert_eq!(
        store.claim("key", "fp", LEASE).await.expect("claim"),
        Claim::InProgress,
        "the stale release freed nothing"
    );
    let stale = complete(&f, &lost, b"late").await;
    assert_eq!(stale, Completion::LeaseLost);
    assert_eq!(complete(&f, &current, b"done").await, Completion::Stored);
    assert_eq!(
        store.claim("key", "fp", LEASE).await.expect("claim"),
        Claim::Completed(b"done".to_vec()),
        "the current holder's result, byte for byte"
    );
}

/// Completes `key` with `token` in a unit of work of the fixture's database.
async fn complete(f: &Fixture, token: &ClaimToken, result: &[u8]) -> Completion {
    let unit_of_work = strata_infrastructure::SeaOrmUnitOfWork::new(f.database.clone());
    strata_domain::ports::in_unit_of_work(
        &unit_of_work,
        strata_domain::ports::Propagation::Required,
        async {
            f.idempotency
                .complete("key", token, result)
                .await
                .map_err(AppError::from)
        },
    )
    .await
    .expect("stored in a unit of work")
}

async fn keys_past_their_retention_are_purged(database: TestDatabase) {
    let f = start(&database).await;
    let store = &f.idempotency;
    store.claim("old", "fp", LEASE).await.expect("claim");
    f.clock.advance(Duration::from_secs(23 * 60 * 60));
    store.claim("recent", "fp", LEASE).await.expect("claim");
    assert_eq!(store.purge_expired().await.expect("purged"), 0);
    f.clock.advance(Duration::from_secs(60 * 60));
    assert_eq!(store.purge_expired().await.expect("purged"), 1);
    assert_eq!(
        store.claim("recent", "other", LEASE).await.expect("claim"),
        Claim::Mismatch,
        "a key within its retention stays"
    );
    assert!(matches!(
        store.claim("old", "fp", LEASE).await.expect("claim"),
        Claim::Acquired(_)
    ));
}
