//! The audit trail (ARCHITECTURE.md, "Audit trail"): an entry per command that
//! commits with it, failures recorded on their own, searchable and purged, on
//! SQLite, PostgreSQL and MySQL.

use std::time::{Duration, SystemTime};

use strata_app_api::application::{AppError, Principal, PrincipalKind, RequestContext};
use strata_domain::PageRequest;
use strata_domain::ports::{AuditEntry, AuditFilter, AuditTrail};
use strata_infrastructure_tests::pipeline::{
    EditNote, Fixture, FixtureOptions, Inner, Then, WriteAndNest, WriteNotes,
};
use strata_tests::database::TestDatabase;

strata_tests::on_each_engine!(mysql:
    a_command_that_commits_leaves_an_entry_with_the_aggregates_it_changed,
    a_command_that_fails_leaves_an_entry_and_no_changes,
    entries_are_found_by_principal_use_case_aggregate_and_time_newest_first,
    entries_past_their_retention_are_purged,
);

fn as_user(subject: &str) -> RequestContext {
    RequestContext::background().with_principal(Principal::new(subject, PrincipalKind::User))
}

async fn everything(f: &Fixture) -> Vec<AuditEntry> {
    f.audit
        .search(
            &AuditFilter::default(),
            PageRequest::new(1, 100).expect("a page"),
        )
        .await
        .expect("searched")
        .items
}

async fn a_command_that_commits_leaves_an_entry_with_the_aggregates_it_changed(
    database: TestDatabase,
) {
    let f = Fixture::start(database.url(), FixtureOptions::default()).await;
    let request = as_user("ada");
    f.dispatcher
        .execute(
            &request,
            WriteAndNest {
                text: "outer".into(),
                inner: Inner::Joined {
                    text: "inner".into(),
                    then: Then::Succeed,
                },
                catch_inner: false,
                then: Then::Succeed,
            },
        )
        .await
        .expect("committed");
    let entries = everything(&f).await;
    assert_eq!(
        entries.len(),
        1,
        "one entry for the request's command: {entries:?}"
    );
    let entry = &entries[0];
    assert_eq!(entry.use_case, "notes.write_and_nest");
    assert_eq!(entry.outcome, "ok");
    assert_eq!(
        (entry.principal_kind.as_str(), entry.principal.as_deref()),
        ("user", Some("ada"))
    );
    assert_eq!(entry.request_id, request.request_id());
    assert_eq!(entry.trace_id, request.trace().trace_id());
    let versions: Vec<(&str, u64, u64)> = entry
        .changes
        .iter()
        .map(|change| {
            (
                change.kind.as_str(),
                change.version_before,
                change.version_after,
            )
        })
        .collect();
    assert_eq!(
        versions,
        [("note", 0, 1), ("note", 0, 1)],
        "the outer note and the nested use case's"
    );

    let id = entry.changes[0].id.parse().expect("a note id");
    f.dispatcher
        .execute(
            &as_user("ada"),
            EditNote {
                id,
                text: "edited".into(),
                version: 1,
            },
        )
        .await
        .expect("edited");
    let edit = &everything(&f).await[0];
    assert_eq!(edit.use_case, "notes.edit_note");
    assert_eq!(
        (
            edit.changes[0].version_before,
            edit.changes[0].version_after
        ),
        (1, 2)
    );
}

async fn a_command_that_fails_leaves_an_entry_and_no_changes(database: TestDatabase) {
    let f = Fixture::start(database.url(), FixtureOptions::default()).await;
    let failed = f
        .dispatcher
        .execute(
            &as_user("bo"),
            WriteNotes {
                texts: vec!["rolled back".into()],
                then: Then::Fail,
            },
        )
        .await;
    assert!(matches!(failed, Err(AppError::RuleViolated { .. })));
    f.database.settle().await;
    let entries = everything(&f).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].outcome, "planned_failure");
    assert!(entries[0].changes.is_empty(), "nothing it wrote was kept");
    assert!(!f.exists("rolled back").await);
}

async fn entries_are_found_by_principal_use_case_aggregate_and_time_newest_first(
    database: TestDatabase,
) {
    let f = Fixture::start(database.url(), FixtureOptions::default()).await;
    let write = |subject: &'static str, text: &'static str| {
        let f = &f;
        async move {
            f.dispatcher
                .execute(
                    &as_user(subject),
                    WriteNotes {
                        texts: vec![text.into()],
                        then: Then::Succeed,
                    },
                )
                .await
                .expect("written");
        }
    };
    write("ada", "first").await;
    f.clock.advance(Duration::from_secs(60));
    let between = AuditEntry::millis(strata_domain::ports::Clock::now(&f.clock));
    write("bo", "second").await;
    f.clock.advance(Duration::from_secs(60));
    write("ada", "third").await;

    let find = |filter: AuditFilter| {
        let f = &f;
        async move {
            f.audit
                .search(&filter, PageRequest::new(1, 10).expect("a page"))
                .await
                .expect("searched")
        }
    };
    let all = find(AuditFilter::default()).await;
    assert_eq!(all.total, 3);
    assert!(
        all.items
            .windows(2)
            .all(|pair| pair[0].at_ms >= pair[1].at_ms),
        "newest first"
    );
    let ada = find(AuditFilter {
        principal: Some("ada".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(ada.total, 2);
    let later = find(AuditFilter {
        from_ms: Some(between),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(later.total, 2, "the second and the third");
    let earlier = find(AuditFilter {
        to_ms: Some(between),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(earlier.total, 1);
    let second = all.items[1].changes[0].id.clone();
    let by_aggregate = find(AuditFilter {
        aggregate: Some(second),
        use_case: Some("notes.write_notes".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(by_aggregate.total, 1);
    assert_eq!(by_aggregate.items[0].principal.as_deref(), Some("bo"));
}

async fn entries_past_their_retention_are_purged(database: TestDatabase) {
    let f = Fixture::start(database.url(), FixtureOptions::default()).await;
    f.dispatcher
        .execute(
            &as_user("ada"),
            WriteNotes {
                texts: vec!["old".into()],
                then: Then::Succeed,
            },
        )
        .await
        .expect("written");
    let entry_time = everything(&f).await[0].at_ms;
    let just_after = SystemTime::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(entry_time).expect("after 1970") + 1);
    assert_eq!(
        f.audit
            .purge_before(just_after - Duration::from_millis(2))
            .await
            .expect("purged"),
        0
    );
    assert_eq!(f.audit.purge_before(just_after).await.expect("purged"), 1);
    assert!(everything(&f).await.is_empty());
}
