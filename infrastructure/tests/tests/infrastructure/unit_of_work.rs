//! The unit of work's promises (ARCHITECTURE.md, "Unit of work"; FAULTS.md
//! 28 and 30–33), each on a fresh database, on SQLite, PostgreSQL and MySQL.

use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_app_api::application::AppError;
use strata_domain::ports::{AuditTrail, CacheStore, Propagation, in_unit_of_work};
use strata_domain::{Id, Repository};
use strata_infrastructure::{DatabaseOptions, SeaOrmUnitOfWork};
use strata_infrastructure_tests::notes::Note;
use strata_infrastructure_tests::pipeline::{
    COUNT_KEY, CountNotes, EditNote, EditTwice, Fixture, FixtureOptions, HoldUnitOfWork, HookKind,
    Inner, PrepareOutside, ReadNote, Sibling, Then, UsePoolInside, WriteAndNest,
    WriteFromSpawnedTask, WriteNoteOnce, WriteNotes, WriteOnOtherDatabaseAlone,
    WriteOnTwoDatabases, WriteSiblings, WriteThenCount, WriteWithHooks, note_key, planned_failure,
    user_request,
};
use strata_tests::database::{Engine, TestDatabase};

strata_tests::on_each_engine!(mysql:
    a_use_case_that_writes_two_aggregates_then_fails_leaves_neither,
    a_panicking_handler_rolls_back_and_the_next_use_case_succeeds,
    a_nested_use_case_joins_the_outer_unit_of_work,
    a_caught_inner_failure_undoes_only_the_inner_writes,
    requires_new_commits_on_its_own_where_the_engine_allows,
    events_reach_the_outbox_only_when_their_transaction_commits,
    after_commit_hooks_run_only_after_a_real_commit,
    a_stale_write_is_refused_never_lost,
    concurrent_nested_use_cases_keep_exactly_the_survivors_writes,
    a_write_beside_a_failing_nested_use_case_is_kept,
    a_write_from_a_spawned_task_is_refused_not_committed_on_its_own,
    the_raw_pool_is_refused_inside_a_unit_of_work,
    a_read_session_outside_a_unit_of_work_cannot_write,
    a_read_session_outside_a_unit_of_work_cannot_record_events,
    each_read_outside_a_unit_of_work_sees_what_committed_before_it,
    one_use_case_on_two_databases_has_a_unit_of_work_on_each,
    a_repository_of_another_database_never_joins_this_ones_transaction,
    an_idempotency_store_on_another_database_is_refused_not_half_kept,
    requires_new_on_a_row_its_caller_holds_fails_within_the_lock_timeout,
    an_exhausted_pool_answers_busy_instead_of_hanging,
    a_cached_query_inside_a_command_sees_its_writes_and_caches_nothing,
    a_cache_entry_is_dropped_after_the_commit_not_before,
    after_commit_hooks_run_even_when_the_caller_goes_away,
    a_panicking_hook_leaves_the_commit_standing,
    a_repository_may_write_through_another_while_it_holds_a_session,
    a_query_asked_on_a_task_running_a_unit_of_work_caches_nothing,
    work_outside_a_unit_of_work_holds_no_transaction_and_its_nested_writes_are_audited,
    a_suspended_unit_of_work_keeps_its_writes_apart_from_the_work_outside_it,
);

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn is_planned_failure<T: std::fmt::Debug>(result: &Result<T, AppError>) -> bool {
    matches!(
        result,
        Err(AppError::RuleViolated {
            code: "planned_failure",
            ..
        })
    )
}

/// Runs `command` on a task of its own, returning once its handler has
/// begun (it tells the probes so).
async fn run_until_entered<C>(
    f: &std::sync::Arc<Fixture>,
    command: C,
) -> tokio::task::JoinHandle<Result<C::Output, AppError>>
where
    C: strata_app_api::application::Command + Send + 'static,
    C::Output: Send + 'static,
{
    let runner = std::sync::Arc::clone(f);
    let entered = f.probes.entered.notified();
    let running = tokio::spawn(async move { runner.run(command).await });
    entered.await;
    running
}

async fn start(database: &TestDatabase) -> Fixture {
    Fixture::start(database.url(), FixtureOptions::default()).await
}

/// The fixture on `database` and a second database of the same engine.
async fn start_on_two(database: &TestDatabase) -> (Fixture, TestDatabase) {
    let other = TestDatabase::on(database.engine()).await;
    let fixture = Fixture::start(
        database.url(),
        FixtureOptions {
            other_database_url: Some(other.url().to_owned()),
            ..FixtureOptions::default()
        },
    )
    .await;
    (fixture, other)
}

async fn a_use_case_that_writes_two_aggregates_then_fails_leaves_neither(database: TestDatabase) {
    let f = start(&database).await;
    let result = f
        .run(WriteNotes {
            texts: texts(&["one", "two"]),
            then: Then::Fail,
        })
        .await;
    assert!(is_planned_failure(&result), "{result:?}");
    assert!(!f.exists("one").await && !f.exists("two").await);
}

async fn a_panicking_handler_rolls_back_and_the_next_use_case_succeeds(database: TestDatabase) {
    let f = std::sync::Arc::new(start(&database).await);
    let panicking = std::sync::Arc::clone(&f);
    let outcome = tokio::spawn(async move {
        panicking
            .run(WriteNotes {
                texts: texts(&["doomed"]),
                then: Then::Panic,
            })
            .await
    })
    .await;
    assert!(outcome.is_err_and(|error| error.is_panic()));
    assert!(!f.exists("doomed").await, "the panicking handler's write");
    f.run(WriteNotes {
        texts: texts(&["next"]),
        then: Then::Succeed,
    })
    .await
    .expect("the next use case runs on a healthy pool");
    assert!(f.exists("next").await);
}

async fn a_nested_use_case_joins_the_outer_unit_of_work(database: TestDatabase) {
    let f = start(&database).await;
    let nest = |outer: &str, inner: &str, then| WriteAndNest {
        text: outer.into(),
        inner: Inner::Joined {
            text: inner.into(),
            then: Then::Succeed,
        },
        catch_inner: false,
        then,
    };
    assert!(f.run(nest("outer-1", "inner-1", Then::Fail)).await.is_err());
    assert!(!f.exists("outer-1").await);
    assert!(
        !f.exists("inner-1").await,
        "the inner use case succeeded but joined the outer one, which rolled back"
    );
    f.run(nest("outer-2", "inner-2", Then::Succeed))
        .await
        .expect("both succeed");
    assert!(f.exists("outer-2").await && f.exists("inner-2").await);
}

async fn a_caught_inner_failure_undoes_only_the_inner_writes(database: TestDatabase) {
    let f = start(&database).await;
    f.run(WriteAndNest {
        text: "outer".into(),
        inner: Inner::Joined {
            text: "inner".into(),
            then: Then::Fail,
        },
        catch_inner: true,
        then: Then::Succeed,
    })
    .await
    .expect("the outer use case handles the inner failure and succeeds");
    assert!(f.exists("outer").await);
    assert!(
        !f.exists("inner").await,
        "the failed inner use case's write is never committed"
    );
    let events = f.outbox.oldest(10).await.expect("outbox read");
    assert_eq!(events.len(), 1, "only the outer note's event: {events:?}");
}

async fn requires_new_commits_on_its_own_where_the_engine_allows(database: TestDatabase) {
    let f = start(&database).await;
    let result = f
        .run(WriteAndNest {
            text: "outer".into(),
            inner: Inner::New {
                text: "audit".into(),
            },
            catch_inner: false,
            then: Then::Fail,
        })
        .await;
    assert!(result.is_err());
    assert!(!f.exists("outer").await);
    match database.engine() {
        Engine::Postgres | Engine::MySql => assert!(
            f.exists("audit").await,
            "the independent unit of work committed before the outer one failed"
        ),
        Engine::Sqlite => {
            assert!(
                matches!(result, Err(AppError::Internal(_))),
                "SQLite refuses a second writer at once: {result:?}"
            );
            assert!(!f.exists("audit").await);
        }
    }
}

async fn events_reach_the_outbox_only_when_their_transaction_commits(database: TestDatabase) {
    let f = start(&database).await;
    let _ = f
        .run(WriteNotes {
            texts: texts(&["gone-1", "gone-2"]),
            then: Then::Fail,
        })
        .await;
    assert!(f.outbox.oldest(10).await.expect("outbox read").is_empty());

    let request = strata_app_api::application::RequestContext::background();
    f.dispatcher
        .execute(
            &request,
            WriteNotes {
                texts: texts(&["kept-1", "kept-2"]),
                then: Then::Succeed,
            },
        )
        .await
        .expect("committed");
    let events = f.outbox.oldest(10).await.expect("outbox read");
    let trace = request.trace().header_value();
    assert!(
        events
            .iter()
            .all(|event| event.traceparent.as_deref() == Some(trace.as_str())),
        "each event carries the trace of the request that caused it: {events:?}"
    );
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["notes.note_written", "notes.note_written"]);
    assert_eq!(events[0].aggregate_kind, "note");
    assert_eq!(events[0].aggregate_version, 1);
    assert_eq!(events[0].payload["text"], "kept-1");
}

async fn after_commit_hooks_run_only_after_a_real_commit(database: TestDatabase) {
    let f = start(&database).await;
    let _ = f
        .run(WriteWithHooks {
            text: "rolled back".into(),
            hooks: vec![HookKind::Observe],
            then: Then::Fail,
        })
        .await;
    assert!(f.probes.hook_saw().is_empty());

    f.run(WriteWithHooks {
        text: "kept".into(),
        hooks: vec![HookKind::Observe],
        then: Then::Succeed,
    })
    .await
    .expect("committed");
    assert_eq!(
        f.probes.hook_saw(),
        [true],
        "the hook ran once, and saw the committed note from outside the transaction"
    );
}

async fn a_stale_write_is_refused_never_lost(database: TestDatabase) {
    let f = start(&database).await;
    f.run(WriteNotes {
        texts: texts(&["draft"]),
        then: Then::Succeed,
    })
    .await
    .expect("written");
    let id = note_id(&f, "draft").await;
    let edit = |text: &str| EditNote {
        id,
        text: text.into(),
        version: 1,
    };
    let (left, right) = tokio::join!(f.run(edit("left")), f.run(edit("right")));
    let outcomes = [left.is_ok(), right.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "one edit wins: {left:?} {right:?}"
    );
    let loser = if left.is_ok() { right } else { left };
    assert_eq!(
        loser.expect_err("the other is refused").code(),
        "stale_version"
    );
    let view = f.ask(ReadNote { id }).await.expect("read");
    assert_eq!(view.version, 2, "exactly one update happened");
}

/// The id of the note saying `text`, from the outbox, which records every note
/// written.
async fn note_id(f: &Fixture, text: &str) -> Id<strata_infrastructure_tests::notes::Note> {
    let events = f.outbox.oldest(100).await.expect("outbox read");
    let event = events
        .iter()
        .find(|event| event.payload["text"] == text)
        .expect("the note was written");
    event.aggregate_id.parse().expect("a note id")
}

fn sibling(text: &str, pause_ms: u64, then: Then) -> Sibling {
    Sibling {
        text: text.into(),
        pause: Duration::from_millis(pause_ms),
        then,
    }
}

async fn concurrent_nested_use_cases_keep_exactly_the_survivors_writes(database: TestDatabase) {
    let f = start(&database).await;
    // The failing sibling finishes first, then last; started first, then second.
    let cases = [
        (
            "a",
            sibling("a-fails", 0, Then::Fail),
            sibling("a-keeps", 80, Then::Succeed),
        ),
        (
            "b",
            sibling("b-fails", 80, Then::Fail),
            sibling("b-keeps", 0, Then::Succeed),
        ),
        (
            "c",
            sibling("c-keeps", 0, Then::Succeed),
            sibling("c-fails", 80, Then::Fail),
        ),
        (
            "d",
            sibling("d-keeps", 80, Then::Succeed),
            sibling("d-fails", 0, Then::Fail),
        ),
    ];
    for (case, first, second) in cases {
        let outer = format!("{case}-outer");
        f.run(WriteSiblings {
            text: outer.clone(),
            write_alongside: false,
            first,
            second,
        })
        .await
        .expect("the outer use case ignores its siblings' failures and commits");
        assert!(f.exists(&outer).await, "case {case}: the outer write");
        assert!(
            f.exists(&format!("{case}-keeps")).await,
            "case {case}: the surviving sibling's write is committed"
        );
        assert!(
            !f.exists(&format!("{case}-fails")).await,
            "case {case}: the failed sibling's write is undone"
        );
    }
}

async fn a_write_beside_a_failing_nested_use_case_is_kept(database: TestDatabase) {
    let f = start(&database).await;
    f.run(WriteSiblings {
        text: "outer".into(),
        write_alongside: true,
        first: sibling("fails", 50, Then::Fail),
        second: sibling("keeps", 0, Then::Succeed),
    })
    .await
    .expect("committed");
    assert!(f.exists("outer").await, "the outer write made alongside");
    assert!(f.exists("keeps").await);
    assert!(!f.exists("fails").await);
}

async fn a_write_from_a_spawned_task_is_refused_not_committed_on_its_own(database: TestDatabase) {
    let f = start(&database).await;
    let met = f
        .run(WriteFromSpawnedTask {
            text: "from a spawned task".into(),
        })
        .await
        .expect("the command itself runs");
    let reason = met.expect_err("the spawned task's write is refused");
    assert!(reason.contains("outside any unit of work"), "{reason}");
    assert!(!f.exists("from a spawned task").await);
}

async fn the_raw_pool_is_refused_inside_a_unit_of_work(database: TestDatabase) {
    let f = start(&database).await;
    let met = f
        .run(UsePoolInside {
            reason: "test".into(),
        })
        .await
        .expect("the command itself runs");
    let reason = met.expect_err("the pool is not handed out inside a unit of work");
    assert!(reason.contains("inside a unit of work"), "{reason}");
    f.database
        .connection()
        .expect("outside any unit of work the pool is there for start-up work");
}

async fn a_read_session_outside_a_unit_of_work_cannot_write(database: TestDatabase) {
    let f = start(&database).await;
    let refused = f.notes.insert_while_reading("sneaked in").await;
    assert!(refused.is_err(), "the read-only session wrote");
    assert!(!f.exists("sneaked in").await);
}

async fn a_read_session_outside_a_unit_of_work_cannot_record_events(database: TestDatabase) {
    let f = start(&database).await;
    let refused = f.notes.record_while_reading("recorded").await;
    let reason = strata_app_api::application::error_chain(&refused.expect_err("refused"));
    assert!(reason.contains("recorded on a read session"), "{reason}");
    assert!(f.outbox.oldest(10).await.expect("outbox read").is_empty());
}

/// Outside a unit of work a read runs each statement on its own, as a
/// read-committed transaction does: a commit made between two statements of one
/// read session is seen by the second.
async fn each_read_outside_a_unit_of_work_sees_what_committed_before_it(database: TestDatabase) {
    let f = start(&database).await;
    let counts = f
        .notes
        .count_saying_around("meanwhile", async {
            f.run(WriteNotes {
                texts: texts(&["meanwhile"]),
                then: Then::Succeed,
            })
            .await
            .expect("committed");
        })
        .await
        .expect("read");
    assert_eq!(counts, (0, 1), "the second count saw the commit before it");
}

async fn one_use_case_on_two_databases_has_a_unit_of_work_on_each(database: TestDatabase) {
    let (f, _other) = start_on_two(&database).await;
    let other_notes = f.other_notes.clone().expect("a second database");
    let result = f
        .run(WriteOnTwoDatabases {
            text: "on a".into(),
            other_text: "on b".into(),
            then: Then::Fail,
        })
        .await;
    assert!(is_planned_failure(&result), "{result:?}");
    assert!(
        !f.exists("on a").await,
        "the main database's work rolled back"
    );
    assert_eq!(
        other_notes.count_saying("on b").await.expect("read"),
        1,
        "the other database's unit of work committed on its own: nothing is atomic across \
         databases"
    );
    assert!(
        !f.exists("on b").await,
        "the other database's write never ran in the main database's transaction"
    );
}

async fn a_repository_of_another_database_never_joins_this_ones_transaction(
    database: TestDatabase,
) {
    let (f, _other) = start_on_two(&database).await;
    let other_notes = f.other_notes.clone().expect("a second database");
    let met = f
        .run(WriteOnOtherDatabaseAlone {
            text: "stray".into(),
        })
        .await
        .expect("the command itself runs");
    let reason = met.expect_err("no unit of work of the other database runs");
    assert!(reason.contains("outside any unit of work"), "{reason}");
    assert_eq!(other_notes.count_saying("stray").await.expect("read"), 0);
    assert!(!f.exists("stray").await);
}

async fn an_idempotency_store_on_another_database_is_refused_not_half_kept(database: TestDatabase) {
    let other = TestDatabase::on(database.engine()).await;
    let f = Fixture::start(
        database.url(),
        FixtureOptions {
            other_database_url: Some(other.url().to_owned()),
            idempotency_on_other_database: true,
            ..FixtureOptions::default()
        },
    )
    .await;
    let result = f
        .dispatcher
        .execute(
            &user_request("u1", "k-1"),
            WriteNoteOnce {
                text: "paid once".into(),
                wait: false,
                die: false,
            },
        )
        .await;
    assert!(
        matches!(result, Err(AppError::Internal(_))),
        "the result cannot commit with the side effect: {result:?}"
    );
    assert!(
        !f.exists("paid once").await,
        "no side effect is kept without its idempotency record"
    );
}

async fn requires_new_on_a_row_its_caller_holds_fails_within_the_lock_timeout(
    database: TestDatabase,
) {
    let f = Fixture::start(
        database.url(),
        FixtureOptions {
            database: DatabaseOptions {
                lock_timeout: Duration::from_millis(300),
                ..DatabaseOptions::default()
            },
            ..FixtureOptions::default()
        },
    )
    .await;
    f.run(WriteNotes {
        texts: texts(&["contended"]),
        then: Then::Succeed,
    })
    .await
    .expect("written");
    let id = note_id(&f, "contended").await;
    let inner = tokio::time::timeout(Duration::from_secs(20), f.run(EditTwice { id }))
        .await
        .expect("never a hang")
        .expect("the outer use case decides what happens next and commits");
    let code = inner.expect_err("the independent edit cannot have the row");
    match database.engine() {
        // It waited for the caller's row lock until the lock timeout.
        Engine::Postgres | Engine::MySql => assert_eq!(code, "storage_busy"),
        // SQLite refuses a second writer at once.
        Engine::Sqlite => assert_eq!(code, "internal_error"),
    }
    let view = f.ask(ReadNote { id }).await.expect("read");
    assert_eq!(view.text, "outer edit", "the outer work committed");
}

async fn an_exhausted_pool_answers_busy_instead_of_hanging(database: TestDatabase) {
    let f = std::sync::Arc::new(
        Fixture::start(
            database.url(),
            FixtureOptions {
                database: DatabaseOptions {
                    max_connections: 1,
                    acquire_timeout: Duration::from_millis(300),
                    ..DatabaseOptions::default()
                },
                ..FixtureOptions::default()
            },
        )
        .await,
    );
    let held = run_until_entered(
        &f,
        HoldUnitOfWork {
            reason: "hold".into(),
        },
    )
    .await;
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        f.run(WriteNotes {
            texts: texts(&["no connection"]),
            then: Then::Succeed,
        }),
    )
    .await
    .expect("never a hang");
    let error = refused.expect_err("no connection was free");
    assert!(
        matches!(
            error,
            AppError::Unavailable {
                code: "storage_busy",
                ..
            }
        ),
        "{error:?}"
    );
    f.probes.open_gate();
    held.await.expect("ran").expect("the holder commits");
}

/// SQLite lets one transaction write at a time: writers that arrive while
/// one writes go next in the order they came, not in whatever order their
/// polls of the lock happen to find it free.
#[tokio::test]
async fn sqlite_writers_waiting_for_the_lock_write_in_the_order_they_came() {
    use sea_orm::ConnectionTrait as _;
    let database = TestDatabase::on(Engine::Sqlite).await;
    let f = std::sync::Arc::new(start(&database).await);
    let held = run_until_entered(
        &f,
        HoldUnitOfWork {
            reason: "hold".into(),
        },
    )
    .await;
    let names = ["first", "second", "third", "fourth", "fifth"];
    let mut writers = Vec::new();
    for name in names {
        let writer = std::sync::Arc::clone(&f);
        writers.push(tokio::spawn(async move {
            writer
                .run(WriteNotes {
                    texts: texts(&[name]),
                    then: Then::Succeed,
                })
                .await
        }));
        // Each writer is waiting before the next one comes.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    f.probes.open_gate();
    held.await.expect("ran").expect("the holder commits");
    for writer in writers {
        writer.await.expect("ran").expect("each writer commits");
    }
    let rows = f
        .database
        .connection()
        .expect("outside a unit of work")
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT text FROM notes ORDER BY rowid",
        ))
        .await
        .expect("notes");
    let written: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "text").expect("text"))
        .collect();
    assert_eq!(written, texts(&names));
}

async fn a_cached_query_inside_a_command_sees_its_writes_and_caches_nothing(
    database: TestDatabase,
) {
    let f = start(&database).await;
    let count = || CountNotes {
        reason: "outside".into(),
    };
    assert_eq!(f.ask(count()).await.expect("counted"), 0);
    assert!(
        f.cache.get(COUNT_KEY).await.expect("get").is_some(),
        "the count is cached"
    );
    f.cache
        .invalidate(&[COUNT_KEY.to_owned()], &[])
        .await
        .expect("invalidated");

    let result = f
        .run(WriteThenCount {
            text: "uncommitted".into(),
            then: Then::Fail,
        })
        .await;
    assert!(is_planned_failure(&result));
    assert_eq!(f.probes.counts_seen(), [1], "the command saw its own write");
    assert_eq!(
        f.cache.get(COUNT_KEY).await.expect("get"),
        None,
        "no cache store holds the rolled-back count"
    );
    assert_eq!(f.ask(count()).await.expect("counted"), 0);
}

async fn a_cache_entry_is_dropped_after_the_commit_not_before(database: TestDatabase) {
    let f = start(&database).await;
    f.run(WriteNotes {
        texts: texts(&["v1"]),
        then: Then::Succeed,
    })
    .await
    .expect("written");
    let id = note_id(&f, "v1").await;
    let read = f.ask(ReadNote { id }).await.expect("read and cached");
    assert_eq!(read.text, "v1");
    f.probes.watch(note_key(id));

    f.run(EditNote {
        id,
        text: "v2".into(),
        version: read.version,
    })
    .await
    .expect("edited");
    assert_eq!(
        f.probes.cached_at_commit(),
        [true],
        "while the edit's transaction was still open, its cache entry was kept: a reader then \
         would only have cached the old value again"
    );
    assert_eq!(f.cache.get(&note_key(id)).await.expect("get"), None);
    assert_eq!(f.ask(ReadNote { id }).await.expect("read").text, "v2");
}

async fn after_commit_hooks_run_even_when_the_caller_goes_away(database: TestDatabase) {
    let f = start(&database).await;
    let committed = f.probes.committed.notified();
    tokio::select! {
        _ = f.run(WriteWithHooks {
            text: "committed".into(),
            hooks: vec![HookKind::SignalThenPause, HookKind::Count, HookKind::Count],
            then: Then::Succeed,
        }) => panic!("the caller was meant to go away before the hooks finished"),
        () = committed => {}
    }
    // The request's future is gone, as when a client disconnects.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while f.probes.hooks_done.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hooks after the caller left never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(f.exists("committed").await);
}

async fn a_panicking_hook_leaves_the_commit_standing(database: TestDatabase) {
    let f = start(&database).await;
    f.run(WriteWithHooks {
        text: "kept".into(),
        hooks: vec![HookKind::Panic, HookKind::Count],
        then: Then::Succeed,
    })
    .await
    .expect("a failing hook is not the command's failure");
    assert!(f.exists("kept").await);
    assert_eq!(
        f.probes.hooks_done.load(Ordering::SeqCst),
        1,
        "the hook after the panicking one still ran"
    );
}

async fn a_repository_may_write_through_another_while_it_holds_a_session(database: TestDatabase) {
    let f = start(&database).await;
    let unit_of_work = SeaOrmUnitOfWork::new(f.database.clone());
    let mut second = Note::write("second");
    tokio::time::timeout(
        Duration::from_secs(20),
        in_unit_of_work(&unit_of_work, Propagation::Required, async {
            f.notes.write_while_writing("first", &mut second).await
        }),
    )
    .await
    .expect("writers never wait for each other")
    .expect("both written");
    assert!(f.exists("first").await && f.exists("second").await);
}

async fn a_query_asked_on_a_task_running_a_unit_of_work_caches_nothing(database: TestDatabase) {
    let f = start(&database).await;
    let unit_of_work = SeaOrmUnitOfWork::new(f.database.clone());
    let seen: Result<u64, AppError> =
        in_unit_of_work(&unit_of_work, Propagation::Required, async {
            f.notes.save(&mut Note::write("uncommitted")).await?;
            // Straight to the dispatcher, not through a command's context.
            let count = f
                .ask(CountNotes {
                    reason: "inside".into(),
                })
                .await?;
            assert_eq!(count, 1, "the unit of work's own write is seen");
            Err(planned_failure())
        })
        .await;
    assert!(is_planned_failure(&seen));
    assert_eq!(f.cache.get(COUNT_KEY).await.expect("get"), None);
}

#[tokio::test]
async fn a_read_session_on_an_in_memory_database_cannot_keep_a_write() {
    let f = Fixture::start("sqlite::memory:", FixtureOptions::default()).await;
    let refused = f.notes.insert_while_reading("sneaked in").await;
    let reason = strata_app_api::application::error_chain(&refused.expect_err("refused"));
    assert!(reason.contains("a read session wrote"), "{reason}");
    assert!(!f.exists("sneaked in").await);
}

async fn work_outside_a_unit_of_work_holds_no_transaction_and_its_nested_writes_are_audited(
    database: TestDatabase,
) {
    let f = std::sync::Arc::new(start(&database).await);
    let preparing = run_until_entered(
        &f,
        PrepareOutside {
            text: "prepared".into(),
        },
    )
    .await;
    // While it waits, nothing of it holds the database: another command writes.
    tokio::time::timeout(
        Duration::from_secs(10),
        f.run(WriteNotes {
            texts: texts(&["meanwhile"]),
            then: Then::Succeed,
        }),
    )
    .await
    .expect("the writer is free while the work outside waits")
    .expect("committed");
    f.probes.open_gate();
    preparing.await.expect("ran").expect("prepared");
    assert!(
        f.probes.outside_write_refused.load(Ordering::SeqCst),
        "a write outside any unit of work is refused"
    );
    assert!(f.exists("prepared").await && f.exists("meanwhile").await);
    assert!(!f.exists("outside").await);

    let entries = f
        .audit
        .search(
            &strata_domain::ports::AuditFilter {
                use_case: Some("notes.prepare_outside".into()),
                ..Default::default()
            },
            strata_domain::PageRequest::first(),
        )
        .await
        .expect("searched");
    assert_eq!(entries.items.len(), 1, "{entries:?}");
    let entry = &entries.items[0];
    assert_eq!(entry.outcome, "ok");
    assert_eq!(entry.changes.len(), 1, "the nested unit of work's note");
    assert_eq!(entry.changes[0].kind, "note");
    assert_eq!(
        (
            entry.changes[0].version_before,
            entry.changes[0].version_after
        ),
        (0, 1)
    );
}

async fn a_suspended_unit_of_work_keeps_its_writes_apart_from_the_work_outside_it(
    database: TestDatabase,
) {
    let f = start(&database).await;
    let engine = database.engine();
    let unit_of_work = SeaOrmUnitOfWork::new(f.database.clone());
    let uow = &unit_of_work;
    let notes = &f.notes;
    let database = &f.database;
    let outer: Result<(), AppError> = in_unit_of_work(uow, Propagation::Required, async move {
        notes.save(&mut Note::write("outer")).await?;
        let inner: Result<(), AppError> =
            in_unit_of_work(uow, Propagation::NotSupported, async move {
                assert_eq!(
                    notes.count_saying("outer").await?,
                    0,
                    "work outside the unit of work reads outside its transaction"
                );
                assert!(
                    notes.save(&mut Note::write("outside")).await.is_err(),
                    "and may not write"
                );
                in_unit_of_work(uow, Propagation::Required, async move {
                    notes.save(&mut Note::write("independent")).await?;
                    Ok::<_, AppError>(())
                })
                .await
            })
            .await;
        match engine {
            Engine::Postgres | Engine::MySql => {
                inner.expect("an independent unit of work commits on its own")
            }
            Engine::Sqlite => assert!(
                inner.is_err(),
                "SQLite's writer is the suspended unit of work's: refused at once"
            ),
        }
        let outside: Result<(), AppError> =
            in_unit_of_work(uow, Propagation::NotSupported, async move {
                // Bounded: on SQLite a wait here would be for the caller's own lock.
                let autonomous =
                    tokio::time::timeout(Duration::from_secs(10), database.autonomous())
                        .await
                        .expect("answered at once");
                let pool = database.connection();
                match engine {
                    Engine::Postgres | Engine::MySql => {
                        autonomous
                            .expect("a transaction of its own")
                            .finish()
                            .await?;
                        pool.expect("the pool, for statements that commit on their own");
                    }
                    Engine::Sqlite => {
                        assert!(autonomous.is_err(), "the writer is the suspended unit's");
                        assert!(pool.is_err(), "the writer is the suspended unit's");
                    }
                }
                Ok(())
            })
            .await;
        outside?;
        Err(planned_failure())
    })
    .await;
    assert!(outer.is_err());
    assert!(!f.exists("outer").await && !f.exists("outside").await);
    assert_eq!(f.exists("independent").await, engine != Engine::Sqlite);
}
