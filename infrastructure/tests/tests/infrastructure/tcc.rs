//! TCC and saga on SQLite, PostgreSQL and MySQL: FAULTS.md 1–14, each asserting the
//! participants' stored balances, the calls they received and the final
//! statuses. The coordinator and each participant have a database of their
//! own; the participants are real HTTP services on this machine, with the
//! barrier in their own transactions, and knobs to delay, fail or go down.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use serde_json::json;
use strata_domain::ports::{BranchOp, Clock, ManualClock};
use strata_infrastructure::tcc::{
    BRANCH_HEADER, BranchSpec, Coordinator, Faults, GID_HEADER, HttpBranchTransport, Outcome,
    Phase, TccSettings, TransactionState,
};
use strata_infrastructure::{Database, migrate_up};
use strata_infrastructure_tests::tcc::Participant;
use strata_tests::database::{Engine, TestDatabase};

strata_tests::on_each_engine!(mysql:
    tries_that_succeed_are_confirmed_once_each,
    a_refused_try_cancels_every_branch_and_holds_nothing,
    a_transaction_an_operator_forces_while_it_is_cancelled_reports_what_was_forced,
    f01_an_initiator_dead_after_prepare_aborts_after_the_timeout_with_empty_cancels,
    f02_an_initiator_dead_before_submit_aborts_and_releases_the_reservations,
    f03_a_coordinator_dead_after_submit_is_finished_by_recovery_once,
    f04_a_confirm_whose_status_was_lost_is_sent_again_and_skipped,
    f05_a_try_that_outlives_its_call_and_its_cancel_nets_to_nothing_in_both_orders,
    f06_f07_duplicate_calls_answer_success_and_act_once,
    f08_a_cancel_with_no_try_leaves_a_tombstone_and_no_business_write,
    f09_a_try_after_its_cancel_is_refused_and_the_transaction_stays_failed,
    f10_two_identical_cancels_at_once_compensate_once,
    f11_a_confirm_that_keeps_failing_is_flagged_and_never_aborted,
    f12_a_participant_down_for_a_while_is_confirmed_when_back,
    f13_a_failed_saga_step_compensates_the_steps_in_reverse,
    f14_two_recovery_workers_finish_each_transaction_once,
    a_recovery_pass_drives_its_transactions_side_by_side,
    random_faults_then_recovery_leave_every_transaction_terminal_and_everything_conserved,
    concurrent_orders_never_oversell,
);

struct NoMigrations;

impl sea_orm_migration::MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        Vec::new()
    }
}

/// A participant on a fresh database of `engine`, and that database.
async fn participant(engine: Engine, available: i64) -> (TestDatabase, Participant) {
    let database = TestDatabase::on(engine).await;
    let participant = Participant::start(database.url(), available).await;
    (database, participant)
}

/// Dies at the phases it is given, once each.
#[derive(Default)]
struct CrashAt {
    phases: std::sync::Mutex<Vec<Phase>>,
}

#[async_trait]
impl Faults for CrashAt {
    async fn crash_at(&self, phase: &Phase, _gid: &str) -> bool {
        let mut phases = self.phases.lock().expect("phases");
        match phases.iter().position(|wanted| wanted == phase) {
            Some(index) => {
                phases.remove(index);
                true
            }
            None => false,
        }
    }
}

struct Shop {
    _databases: Vec<TestDatabase>,
    database: Database,
    clock: ManualClock,
    inventory: Participant,
    wallet: Participant,
    settings: TccSettings,
}

impl Shop {
    async fn start(engine: Engine) -> Self {
        let database = TestDatabase::on(engine).await;
        let connected = Database::connect(database.url()).await.expect("connected");
        migrate_up::<NoMigrations>(&connected)
            .await
            .expect("migrated");
        let (inventory_database, inventory) = participant(engine, 10).await;
        let (wallet_database, wallet) = participant(engine, 1_000).await;
        Self {
            _databases: vec![database, inventory_database, wallet_database],
            database: connected,
            clock: ManualClock::starting_now(),
            inventory,
            wallet,
            settings: TccSettings {
                timeout: Duration::from_secs(30),
                retry_interval: Duration::from_secs(1),
                max_doublings: 3,
                lease: Duration::from_secs(10),
                recovery_concurrency: 16,
            },
        }
    }

    fn coordinator(&self) -> Coordinator {
        self.coordinator_with(Duration::from_secs(5))
    }

    fn coordinator_with(&self, call_timeout: Duration) -> Coordinator {
        Coordinator::new(
            self.database.clone(),
            Arc::new(HttpBranchTransport::new(call_timeout)),
            self.settings,
        )
        .with_clock(Arc::new(self.clock.clone()))
    }

    fn crashing(&self, phases: Vec<Phase>) -> Coordinator {
        self.coordinator().with_faults(Arc::new(CrashAt {
            phases: std::sync::Mutex::new(phases),
        }))
    }

    /// An order of `items` units for `price` each: stock and money.
    fn order(&self, items: i64, price: i64) -> Vec<BranchSpec> {
        vec![
            self.inventory.branch(items),
            self.wallet.branch(items * price),
        ]
    }

    /// Moves the clock past the transaction timeout and the initiator's
    /// lease, as if it had died long enough ago.
    fn past_the_initiator(&self) {
        self.clock
            .advance(self.settings.timeout + self.settings.lease + Duration::from_secs(1));
    }

    async fn recover_until_quiet(&self, coordinator: &Coordinator) {
        for _ in 0..50 {
            if coordinator.recover_once(100).await.expect("a pass") == 0 {
                return;
            }
            self.clock.advance(Duration::from_secs(120));
        }
        panic!("recovery never went quiet");
    }

    async fn state(&self, gid: &str) -> TransactionState {
        self.coordinator()
            .get(gid)
            .await
            .expect("read")
            .expect("stored")
            .state
    }
}

async fn tries_that_succeed_are_confirmed_once_each(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let outcome = shop
        .coordinator()
        .tcc("order-1", shop.order(2, 30), None)
        .await
        .expect("ran");
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(shop.inventory.holding().await, (8, 0, 2));
    assert_eq!(shop.wallet.holding().await, (940, 0, 60));
    for participant in [&shop.inventory, &shop.wallet] {
        assert_eq!(participant.knobs.calls("try"), 1);
        assert_eq!(participant.knobs.calls("confirm"), 1);
        assert_eq!(participant.knobs.calls("cancel"), 0);
        assert_eq!(
            participant.barrier_rows("order-1").await,
            ["confirm", "try"]
        );
    }
    let view = shop
        .coordinator()
        .get("order-1")
        .await
        .expect("read")
        .expect("stored");
    assert!(
        view.branches
            .iter()
            .all(|branch| branch.state == "confirmed")
    );
    assert!(matches!(
        shop.coordinator()
            .tcc("order-1", shop.order(1, 30), None)
            .await,
        Err(strata_infrastructure::tcc::TccError::Duplicate(_))
    ));
}

async fn a_refused_try_cancels_every_branch_and_holds_nothing(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    // 11 units against a stock of 10.
    let outcome = shop
        .coordinator()
        .tcc("order-1", shop.order(11, 30), None)
        .await
        .expect("ran");
    let Outcome::Failed { reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("not enough"), "{reason}");
    assert_eq!(shop.inventory.holding().await, (10, 0, 0));
    assert_eq!(
        shop.wallet.holding().await,
        (1_000, 0, 0),
        "the money frozen is released"
    );
    assert_eq!(shop.wallet.knobs.effects("cancel"), 1);
    assert_eq!(
        shop.inventory.knobs.effects("cancel"),
        0,
        "an empty compensation: the refused try changed nothing"
    );
    assert_eq!(shop.state("order-1").await, TransactionState::Failed);
}

/// An operator who forces a transaction to `failed` while its initiator
/// cancels its branches: the initiator's own move to `failed` finds it moved.
struct ForcedDuringTheCancels {
    operator: Coordinator,
    forced: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Faults for ForcedDuringTheCancels {
    async fn crash_at(&self, phase: &Phase, gid: &str) -> bool {
        if let Phase::BranchAnswered {
            op: BranchOp::Cancel,
            ..
        } = phase
            && !self.forced.swap(true, Ordering::SeqCst)
        {
            self.operator
                .force(gid, TransactionState::Failed)
                .await
                .expect("forced");
        }
        false
    }
}

async fn a_transaction_an_operator_forces_while_it_is_cancelled_reports_what_was_forced(
    database: TestDatabase,
) {
    let shop = Shop::start(database.engine()).await;
    let initiator = shop
        .coordinator()
        .with_faults(Arc::new(ForcedDuringTheCancels {
            operator: shop.coordinator(),
            forced: std::sync::atomic::AtomicBool::new(false),
        }));
    // 11 units against a stock of 10: refused, then cancelled.
    let outcome = initiator
        .tcc("order-1", shop.order(11, 30), None)
        .await
        .expect("ran");
    assert_eq!(
        outcome,
        Outcome::Failed {
            reason: "forced by an operator".to_owned()
        },
        "what the transaction holds, not what the initiator meant to write"
    );
    assert_eq!(shop.state("order-1").await, TransactionState::Failed);
}

async fn f01_an_initiator_dead_after_prepare_aborts_after_the_timeout_with_empty_cancels(
    database: TestDatabase,
) {
    let shop = Shop::start(database.engine()).await;
    let died = shop
        .crashing(vec![Phase::Prepared])
        .tcc("order-1", shop.order(1, 30), None)
        .await;
    assert!(died.is_err());
    let recovery = shop.coordinator();
    assert_eq!(
        recovery.recover_once(100).await.expect("a pass"),
        0,
        "not before the timeout"
    );
    shop.past_the_initiator();
    shop.recover_until_quiet(&recovery).await;
    assert_eq!(shop.state("order-1").await, TransactionState::Failed);
    for participant in [&shop.inventory, &shop.wallet] {
        assert_eq!(participant.knobs.calls("try"), 0);
        assert_eq!(participant.knobs.calls("cancel"), 1);
        assert_eq!(participant.knobs.effects("cancel"), 0, "empty compensation");
        assert_eq!(
            participant.barrier_rows("order-1").await,
            ["cancel", "try"],
            "a tombstone for the try"
        );
    }
    assert_eq!(shop.inventory.holding().await, (10, 0, 0));
    assert_eq!(shop.wallet.holding().await, (1_000, 0, 0));
}

async fn f02_an_initiator_dead_before_submit_aborts_and_releases_the_reservations(
    database: TestDatabase,
) {
    let shop = Shop::start(database.engine()).await;
    let died = shop
        .crashing(vec![Phase::TriesAnswered])
        .tcc("order-1", shop.order(3, 30), None)
        .await;
    assert!(died.is_err());
    assert_eq!(shop.inventory.holding().await, (7, 3, 0), "reserved");
    shop.past_the_initiator();
    shop.recover_until_quiet(&shop.coordinator()).await;
    assert_eq!(shop.state("order-1").await, TransactionState::Failed);
    assert_eq!(shop.inventory.holding().await, (10, 0, 0));
    assert_eq!(shop.wallet.holding().await, (1_000, 0, 0));
    assert_eq!(shop.inventory.knobs.effects("cancel"), 1);
    assert_eq!(shop.wallet.knobs.effects("cancel"), 1);
}

async fn f03_a_coordinator_dead_after_submit_is_finished_by_recovery_once(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let died = shop
        .crashing(vec![Phase::Submitted])
        .tcc("order-1", shop.order(2, 30), None)
        .await;
    assert!(died.is_err());
    assert_eq!(shop.state("order-1").await, TransactionState::Submitted);
    shop.past_the_initiator();
    shop.recover_until_quiet(&shop.coordinator()).await;
    assert_eq!(shop.state("order-1").await, TransactionState::Succeeded);
    assert_eq!(shop.inventory.holding().await, (8, 0, 2));
    assert_eq!(shop.wallet.holding().await, (940, 0, 60));
    assert_eq!(shop.inventory.knobs.effects("confirm"), 1);
    assert_eq!(shop.wallet.knobs.effects("confirm"), 1);
}

async fn f04_a_confirm_whose_status_was_lost_is_sent_again_and_skipped(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let died = shop
        .crashing(vec![Phase::BranchAnswered {
            branch: "01".into(),
            op: BranchOp::Confirm,
        }])
        .tcc("order-1", shop.order(2, 30), None)
        .await;
    assert!(died.is_err());
    shop.past_the_initiator();
    shop.recover_until_quiet(&shop.coordinator()).await;
    assert_eq!(shop.state("order-1").await, TransactionState::Succeeded);
    assert_eq!(shop.inventory.knobs.calls("confirm"), 2, "sent again");
    assert_eq!(shop.inventory.knobs.effects("confirm"), 1, "done once");
    assert_eq!(shop.inventory.holding().await, (8, 0, 2));
    assert_eq!(shop.wallet.holding().await, (940, 0, 60));
}

async fn f05_a_try_that_outlives_its_call_and_its_cancel_nets_to_nothing_in_both_orders(
    database: TestDatabase,
) {
    let shop = Shop::start(database.engine()).await;
    let coordinator = shop.coordinator_with(Duration::from_millis(300));

    // The try commits while the cancel runs: it holds its transaction open
    // past the call's timeout; the cancel waits for it, then compensates.
    shop.inventory
        .knobs
        .try_delay_inside_ms
        .store(900, Ordering::SeqCst);
    let outcome = coordinator
        .tcc("order-1", shop.order(2, 30), None)
        .await
        .expect("ran");
    shop.inventory
        .knobs
        .try_delay_inside_ms
        .store(0, Ordering::SeqCst);
    let settled = match outcome {
        Outcome::Pending { .. } => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            shop.clock.advance(Duration::from_secs(60));
            shop.recover_until_quiet(&coordinator).await;
            shop.state("order-1").await
        }
        Outcome::Failed { .. } => TransactionState::Failed,
        Outcome::Succeeded => TransactionState::Succeeded,
    };
    assert_eq!(settled, TransactionState::Failed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(shop.inventory.holding().await, (10, 0, 0), "net zero");
    assert_eq!(shop.wallet.holding().await, (1_000, 0, 0));

    // The try arrives after its cancel: refused at the barrier.
    shop.inventory
        .knobs
        .try_delay_before_ms
        .store(900, Ordering::SeqCst);
    let outcome = coordinator
        .tcc("order-2", shop.order(2, 30), None)
        .await
        .expect("ran");
    assert!(
        matches!(outcome, Outcome::Failed { .. } | Outcome::Pending { .. }),
        "{outcome:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    shop.clock.advance(Duration::from_secs(60));
    shop.recover_until_quiet(&coordinator).await;
    assert_eq!(shop.state("order-2").await, TransactionState::Failed);
    assert_eq!(
        shop.inventory.holding().await,
        (10, 0, 0),
        "the late try did nothing"
    );
    assert_eq!(shop.wallet.holding().await, (1_000, 0, 0));
    assert_eq!(
        shop.inventory.barrier_rows("order-2").await,
        ["cancel", "try"]
    );
}

async fn f06_f07_duplicate_calls_answer_success_and_act_once(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let client = reqwest::Client::new();
    let call = |op: &'static str, gid: &'static str| {
        let client = client.clone();
        let url = format!("{}/{op}", shop.inventory.url);
        async move {
            client
                .post(url)
                .header(GID_HEADER, gid)
                .header(BRANCH_HEADER, "01")
                .json(&json!({ "quantity": 2 }))
                .send()
                .await
                .expect("answered")
                .status()
        }
    };
    for _ in 0..3 {
        assert_eq!(call("try", "g-confirm").await, StatusCode::OK);
    }
    assert_eq!(shop.inventory.holding().await, (8, 2, 0), "reserved once");
    for _ in 0..3 {
        assert_eq!(call("confirm", "g-confirm").await, StatusCode::OK);
    }
    assert_eq!(shop.inventory.holding().await, (8, 0, 2), "confirmed once");
    assert_eq!(call("try", "g-cancel").await, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(call("cancel", "g-cancel").await, StatusCode::OK);
    }
    assert_eq!(shop.inventory.holding().await, (8, 0, 2), "cancelled once");
    assert_eq!(shop.inventory.knobs.effects("try"), 2);
    assert_eq!(shop.inventory.knobs.effects("confirm"), 1);
    assert_eq!(shop.inventory.knobs.effects("cancel"), 1);
}

async fn f08_a_cancel_with_no_try_leaves_a_tombstone_and_no_business_write(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let status = reqwest::Client::new()
        .post(format!("{}/cancel", shop.inventory.url))
        .header(GID_HEADER, "g-1")
        .header(BRANCH_HEADER, "01")
        .json(&json!({ "quantity": 2 }))
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shop.inventory.holding().await, (10, 0, 0));
    assert_eq!(shop.inventory.knobs.effects("cancel"), 0);
    assert_eq!(shop.inventory.barrier_rows("g-1").await, ["cancel", "try"]);
}

async fn f09_a_try_after_its_cancel_is_refused_and_the_transaction_stays_failed(
    database: TestDatabase,
) {
    let shop = Shop::start(database.engine()).await;
    let died = shop
        .crashing(vec![Phase::Prepared])
        .tcc("order-1", shop.order(2, 30), None)
        .await;
    assert!(died.is_err());
    shop.past_the_initiator();
    shop.recover_until_quiet(&shop.coordinator()).await;
    assert_eq!(shop.state("order-1").await, TransactionState::Failed);
    // The try the dead initiator had sent arrives now.
    let status = reqwest::Client::new()
        .post(format!("{}/try", shop.inventory.url))
        .header(GID_HEADER, "order-1")
        .header(BRANCH_HEADER, "01")
        .json(&json!({ "quantity": 2 }))
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(shop.inventory.holding().await, (10, 0, 0));
    assert_eq!(shop.inventory.knobs.effects("try"), 0);
    assert!(
        shop.coordinator()
            .force("order-1", TransactionState::Succeeded)
            .await
            .is_err(),
        "a failed transaction is never submitted or succeeded"
    );
    assert_eq!(shop.state("order-1").await, TransactionState::Failed);
}

async fn f10_two_identical_cancels_at_once_compensate_once(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let client = reqwest::Client::new();
    let send = |op: &'static str| {
        let client = client.clone();
        let url = format!("{}/{op}", shop.inventory.url);
        async move {
            client
                .post(url)
                .header(GID_HEADER, "g-1")
                .header(BRANCH_HEADER, "01")
                .json(&json!({ "quantity": 2 }))
                .send()
                .await
                .expect("answered")
                .status()
        }
    };
    assert_eq!(send("try").await, StatusCode::OK);
    shop.inventory
        .knobs
        .cancel_delay_inside_ms
        .store(300, Ordering::SeqCst);
    let (first, second) = tokio::join!(send("cancel"), send("cancel"));
    assert_eq!((first, second), (StatusCode::OK, StatusCode::OK));
    assert_eq!(shop.inventory.knobs.effects("cancel"), 1);
    assert_eq!(shop.inventory.holding().await, (10, 0, 0));
}

async fn f11_a_confirm_that_keeps_failing_is_flagged_and_never_aborted(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    shop.wallet
        .knobs
        .failing_confirms
        .store(u32::MAX, Ordering::SeqCst);
    let alerts = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let alerted = Arc::clone(&alerts);
    let coordinator = shop.coordinator().with_alert(Arc::new(move |gid: &str| {
        alerted.lock().expect("alerts").push(gid.to_owned());
    }));
    let outcome = coordinator
        .tcc("order-1", shop.order(1, 30), None)
        .await
        .expect("ran");
    assert_eq!(
        outcome,
        Outcome::Pending {
            state: TransactionState::Submitted
        }
    );
    let mut pauses = Vec::new();
    for _ in 0..10 {
        let view = coordinator
            .get("order-1")
            .await
            .expect("read")
            .expect("stored");
        if view.flagged {
            break;
        }
        let now = shop.clock.now();
        let now_ms = i64::try_from(
            now.duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("ms");
        pauses.push(view.next_retry_at_ms - now_ms);
        shop.clock.advance(Duration::from_millis(
            u64::try_from(view.next_retry_at_ms - now_ms).unwrap_or(0),
        ));
        coordinator.recover_once(10).await.expect("a pass");
    }
    let view = coordinator
        .get("order-1")
        .await
        .expect("read")
        .expect("stored");
    assert!(view.flagged, "waits for an operator: {view:?}");
    assert_eq!(
        *alerts.lock().expect("alerts"),
        ["order-1"],
        "the alert hook called once"
    );
    assert_eq!(view.state, TransactionState::Submitted, "never aborted");
    assert!(
        pauses.windows(2).all(|pair| pair[1] == pair[0] * 2),
        "doubling intervals: {pauses:?}"
    );
    assert_eq!(pauses.len(), 4, "{pauses:?}");
    let calls = shop.wallet.knobs.calls("confirm");
    shop.clock.advance(Duration::from_secs(3_600));
    assert_eq!(
        coordinator.recover_once(10).await.expect("a pass"),
        0,
        "left alone"
    );
    assert_eq!(shop.wallet.knobs.calls("confirm"), calls);
    // The operator fixes the wallet and retries.
    shop.wallet
        .knobs
        .failing_confirms
        .store(0, Ordering::SeqCst);
    coordinator.retry("order-1").await.expect("retried");
    shop.recover_until_quiet(&coordinator).await;
    assert_eq!(shop.state("order-1").await, TransactionState::Succeeded);
    assert_eq!(shop.wallet.holding().await, (970, 0, 30));
    assert_eq!(shop.inventory.knobs.effects("confirm"), 1);
}

async fn f12_a_participant_down_for_a_while_is_confirmed_when_back(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let coordinator = shop.coordinator();
    let died = shop
        .crashing(vec![Phase::Submitted])
        .tcc("order-1", shop.order(1, 30), None)
        .await;
    assert!(died.is_err());
    shop.inventory.knobs.down.store(true, Ordering::SeqCst);
    shop.past_the_initiator();
    for _ in 0..3 {
        coordinator.recover_once(10).await.expect("a pass");
        shop.clock.advance(Duration::from_secs(60));
    }
    let view = coordinator
        .get("order-1")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(view.state, TransactionState::Submitted);
    assert!(view.attempts >= 2, "{view:?}");
    assert_eq!(
        shop.wallet.knobs.effects("confirm"),
        1,
        "the other branch is done"
    );
    shop.inventory.knobs.down.store(false, Ordering::SeqCst);
    shop.recover_until_quiet(&coordinator).await;
    let view = coordinator
        .get("order-1")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(view.state, TransactionState::Succeeded);
    assert_eq!(shop.inventory.knobs.effects("confirm"), 1);
    assert_eq!(shop.inventory.holding().await, (9, 0, 1));
}

async fn f13_a_failed_saga_step_compensates_the_steps_in_reverse(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let (_third_database, third) = participant(database.engine(), 0).await;
    let outcome = shop
        .coordinator()
        .saga(
            "saga-1",
            vec![
                shop.inventory.branch(2),
                shop.wallet.branch(60),
                third.branch(1),
            ],
            None,
        )
        .await
        .expect("ran");
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert_eq!(shop.inventory.holding().await, (10, 0, 0));
    assert_eq!(shop.wallet.holding().await, (1_000, 0, 0));
    assert_eq!(
        third.knobs.effects("cancel"),
        0,
        "step 3's compensation is empty"
    );
    assert_eq!(third.barrier_rows("saga-1").await, ["cancel", "try"]);
    let view = shop
        .coordinator()
        .get("saga-1")
        .await
        .expect("read")
        .expect("stored");
    assert!(
        view.branches
            .iter()
            .all(|branch| branch.state == "cancelled"),
        "{view:?}"
    );
    // In reverse: the third's cancel came first, the inventory's last.
    let calls = [&third, &shop.wallet, &shop.inventory]
        .iter()
        .map(|participant| participant.knobs.calls("cancel"))
        .collect::<Vec<_>>();
    assert_eq!(calls, [1, 1, 1]);
    let at = [&third, &shop.wallet, &shop.inventory]
        .iter()
        .map(|participant| participant.knobs.cancelled_at.load(Ordering::SeqCst))
        .collect::<Vec<_>>();
    assert!(at[0] < at[1] && at[1] < at[2], "{at:?}");
}

async fn f14_two_recovery_workers_finish_each_transaction_once(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    for n in 0..6 {
        let died = shop
            .crashing(vec![Phase::Submitted])
            .tcc(&format!("order-{n}"), shop.order(1, 10), None)
            .await;
        assert!(died.is_err());
    }
    shop.past_the_initiator();
    let (first, second) = (shop.coordinator(), shop.coordinator());
    let (a, b) = tokio::join!(first.recover_once(100), second.recover_once(100));
    let taken = a.expect("a pass") + b.expect("a pass");
    assert_eq!(taken, 6, "each taken by one of them");
    shop.recover_until_quiet(&first).await;
    for n in 0..6 {
        assert_eq!(
            shop.state(&format!("order-{n}")).await,
            TransactionState::Succeeded
        );
    }
    assert_eq!(shop.inventory.knobs.effects("confirm"), 6);
    assert_eq!(
        shop.inventory.knobs.calls("confirm"),
        6,
        "no branch called twice"
    );
    assert_eq!(shop.inventory.holding().await, (4, 0, 6));
    assert_eq!(shop.wallet.holding().await, (940, 0, 60));
}

/// A participant slow to answer holds up one pass only as long as its
/// slowest call, not as long as all its calls one after another: eight
/// transactions whose confirms the inventory answers only once all eight are
/// waiting at once are finished by one pass.
async fn a_recovery_pass_drives_its_transactions_side_by_side(database: TestDatabase) {
    let shop = Shop::start(database.engine()).await;
    let gids: Vec<String> = (1..=8).map(|number| format!("order-{number}")).collect();
    let crashing = shop.crashing(vec![Phase::Submitted; gids.len()]);
    for gid in &gids {
        assert!(crashing.tcc(gid, shop.order(1, 10), None).await.is_err());
    }
    shop.inventory
        .knobs
        .confirms_held_until
        .store(8, Ordering::SeqCst);
    shop.past_the_initiator();
    let coordinator = shop.coordinator_with(Duration::from_secs(3));
    assert_eq!(coordinator.recover_once(8).await.expect("a pass"), 8);
    for gid in &gids {
        assert_eq!(shop.state(gid).await, TransactionState::Succeeded, "{gid}");
    }
    assert_eq!(shop.inventory.knobs.effects("confirm"), 8);
    assert_eq!(shop.inventory.holding().await, (2, 0, 8));
}

async fn random_faults_then_recovery_leave_every_transaction_terminal_and_everything_conserved(
    database: TestDatabase,
) {
    const ORDERS: usize = 300;
    const CUSTOMERS: u64 = 20;
    let shop = Shop::start(database.engine()).await;
    // Stock for most orders, and customers who cannot pay for every one.
    shop.inventory.open_holders(1, 400).await;
    shop.wallet
        .open_holders(i64::try_from(CUSTOMERS).expect("small"), 100)
        .await;
    let (stock, _, _) = shop.inventory.holding().await;
    let (money, _, _) = shop.wallet.holding().await;
    // A deterministic sequence, so a failure can be replayed.
    let mut seed: u64 = 0x0005_eed0_f7cc;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let phases = |pick: u64| match pick {
        0 => vec![Phase::Prepared],
        1 => vec![Phase::TriesAnswered],
        2 => vec![Phase::Submitted],
        3 => vec![Phase::BranchAnswered {
            branch: "01".into(),
            op: BranchOp::Confirm,
        }],
        4 => vec![Phase::BranchAnswered {
            branch: "02".into(),
            op: BranchOp::Cancel,
        }],
        _ => Vec::new(),
    };
    let mut outcomes = Vec::new();
    for n in 0..ORDERS {
        // Now and then a participant fails its confirms for a while.
        if next(10) == 0 {
            shop.wallet
                .knobs
                .failing_confirms
                .store(2, Ordering::SeqCst);
        }
        let quantity = i64::try_from(next(3) + 1).expect("small");
        let customer = i64::try_from(next(CUSTOMERS) + 1).expect("small");
        let coordinator = shop.crashing(phases(next(8)));
        let gid = format!("order-{n}");
        let branches = vec![
            shop.inventory.branch_of(1, quantity),
            shop.wallet.branch_of(customer, quantity * 10),
        ];
        outcomes.push(coordinator.tcc(&gid, branches, None).await);
    }
    shop.wallet
        .knobs
        .failing_confirms
        .store(0, Ordering::SeqCst);
    shop.past_the_initiator();
    shop.recover_until_quiet(&shop.coordinator()).await;

    let mut sold = 0;
    for n in 0..ORDERS {
        let view = shop
            .coordinator()
            .get(&format!("order-{n}"))
            .await
            .expect("read")
            .expect("stored");
        assert!(view.state.is_terminal(), "{view:?}");
        if view.state == TransactionState::Succeeded {
            assert!(
                view.branches
                    .iter()
                    .all(|branch| branch.state == "confirmed")
            );
            sold += 1;
        } else {
            assert!(
                view.branches
                    .iter()
                    .all(|branch| branch.state == "cancelled"),
                "{view:?}"
            );
        }
    }
    let (available, reserved, spent) = shop.inventory.holding().await;
    assert_eq!(reserved, 0, "nothing held");
    assert_eq!(available + spent, stock, "stock conserved");
    let (balance, frozen, paid) = shop.wallet.holding().await;
    assert_eq!(frozen, 0, "nothing frozen");
    assert_eq!(balance + paid, money, "money conserved");
    assert_eq!(
        paid,
        spent * 10,
        "each unit sold was paid for, and nothing else"
    );
    assert!(sold > 0, "some orders went through: {outcomes:?}");
    assert!(sold < ORDERS, "some customers could not pay: {outcomes:?}");
}

async fn concurrent_orders_never_oversell(database: TestDatabase) {
    let shop = Arc::new(Shop::start(database.engine()).await);
    let orders = match database.engine() {
        Engine::Postgres | Engine::MySql => 40,
        Engine::Sqlite => 14,
    };
    let mut running = Vec::new();
    for n in 0..orders {
        let shop = Arc::clone(&shop);
        running.push(tokio::spawn(async move {
            shop.coordinator()
                .tcc(&format!("order-{n}"), shop.order(1, 10), None)
                .await
        }));
    }
    let mut succeeded = 0;
    for order in running {
        match order.await.expect("ran").expect("stored") {
            Outcome::Succeeded => succeeded += 1,
            Outcome::Failed { .. } => {}
            Outcome::Pending { state } => panic!("left {state:?}"),
        }
    }
    assert_eq!(succeeded, 10, "exactly the stock");
    assert_eq!(shop.inventory.holding().await, (0, 0, 10));
    assert_eq!(shop.wallet.holding().await, (900, 0, 100));
}

/// The Promela model of the protocol, checked by `bench/model-check.sh`.
const MODEL: &str = include_str!("../../model/tcc.pml");

/// The words of `line` between `open` and the next `)`, split at commas.
fn arguments<'a>(line: &'a str, open: &str) -> Option<Vec<&'a str>> {
    let start = line.find(open)? + open.len();
    let end = start + line[start..].find(')')?;
    Some(line[start..end].split(',').map(str::trim).collect())
}

#[test]
fn the_model_and_the_code_share_their_tables() {
    use std::collections::BTreeSet;
    use strata_domain::ports::BarrierDecision;

    // Every move the model makes, against every move the code allows.
    let state = |name: &str| {
        TransactionState::from_name(&name.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("the model's state {name} is not the code's"))
    };
    let modelled: BTreeSet<(&str, &str)> = MODEL
        .lines()
        .filter_map(|line| arguments(line, "MOVE("))
        // The moves themselves (states in capitals), not the inline's
        // parameters or prose; from NONE is the transaction's creation.
        .filter(|arguments| {
            arguments.len() == 2
                && arguments
                    .iter()
                    .all(|word| word.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        })
        .filter(|arguments| arguments[0] != "NONE")
        .map(|arguments| (state(arguments[0]).as_str(), state(arguments[1]).as_str()))
        .collect();
    let coded: BTreeSet<(&str, &str)> = [
        TransactionState::Prepared,
        TransactionState::Submitted,
        TransactionState::Aborting,
        TransactionState::Succeeded,
        TransactionState::Failed,
    ]
    .into_iter()
    .flat_map(|from| {
        from.successors()
            .iter()
            .map(move |to| (from.as_str(), to.as_str()))
    })
    .collect();
    assert_eq!(modelled, coded);

    // The model's barrier table, row by row, against `barrier::decide`.
    let mut rows = 0;
    for line in MODEL.lines().filter(|line| line.contains("-> d = ")) {
        let words: Vec<&str> = line
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|word| !word.is_empty())
            .collect();
        // :: op == TRY && first == 1 && second == 0 -> d = RUN
        let [_, op, _, first, _, second, _, decision] = words[..] else {
            panic!("a barrier row the test cannot read: {line}");
        };
        let op = BranchOp::from_name(&op.to_ascii_lowercase()).expect("an operation");
        let decision = match decision {
            "RUN" => BarrierDecision::Run,
            "SKIP" => BarrierDecision::Skip,
            "REFUSE" => BarrierDecision::Refuse,
            other => panic!("no decision {other}"),
        };
        assert_eq!(
            strata_infrastructure::tcc::decide(op, first == "1", second == "1"),
            decision,
            "{line}"
        );
        rows += 1;
    }
    assert_eq!(rows, 12, "three operations by two facts of two values each");
}
