//! A TCC participant for tests and benchmarks: an HTTP service on this
//! machine holding an amount of one thing (stock of an item, a wallet's
//! money) in a database of its own, with the barrier in its transactions and
//! knobs to delay, fail or go down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, Statement, StatementBuilder};
use serde_json::{Value, json};
use strata_app_api::application::AppError;
use strata_domain::ports::{BarrierDecision, BranchOp, Propagation, TccBarrier, in_unit_of_work};
use strata_infrastructure::tcc::{BRANCH_HEADER, BranchSpec, GID_HEADER, SeaOrmTccBarrier};
use strata_infrastructure::{Database, SeaOrmUnitOfWork, migrate_up};

struct NoMigrations;

impl sea_orm_migration::MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        Vec::new()
    }
}

/// Orders calls across participants.
pub static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// What a participant was asked, and what it can be told to do wrong.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Answers 503 to everything.
    pub down: AtomicBool,
    /// Answers 503 to this many confirms before it confirms again.
    pub failing_confirms: AtomicU32,
    /// Waits this long inside a try's transaction, after the barrier.
    pub try_delay_inside_ms: AtomicU64,
    /// Waits this long before a try starts its transaction.
    pub try_delay_before_ms: AtomicU64,
    /// Waits this long inside a cancel's transaction, after the barrier.
    pub cancel_delay_inside_ms: AtomicU64,
    /// Holds each confirm until this many are waiting at once (0: none
    /// held), for at most ten seconds.
    pub confirms_held_until: AtomicU32,
    /// Confirms waiting now.
    pub confirms_waiting: AtomicU32,
    /// Calls received per operation, answered or not.
    pub calls: std::sync::Mutex<HashMap<&'static str, u32>>,
    /// When (in [`SEQUENCE`]) the last cancel arrived.
    pub cancelled_at: AtomicU64,
    /// Business changes made per operation (committed or not).
    pub effects: std::sync::Mutex<HashMap<&'static str, u32>>,
}

impl Knobs {
    /// Calls received of `op`.
    #[must_use]
    pub fn calls(&self, op: &str) -> u32 {
        self.calls
            .lock()
            .expect("calls")
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    /// Business changes made by `op`.
    #[must_use]
    pub fn effects(&self, op: &str) -> u32 {
        self.effects
            .lock()
            .expect("effects")
            .get(op)
            .copied()
            .unwrap_or(0)
    }
}

/// A participant holding an amount of one thing: stock of an item, or a
/// wallet's money. Try moves `quantity` from available to reserved (refused
/// when there is not enough), confirm from reserved to spent, cancel from
/// reserved back to available.
#[derive(Debug)]
pub struct Participant {
    /// Its database.
    pub connected: Database,
    /// What it was asked, and what it is told to do wrong.
    pub knobs: Arc<Knobs>,
    /// Where its branch is served.
    pub url: String,
}

#[derive(Clone)]
struct ParticipantState {
    database: Database,
    unit_of_work: Arc<SeaOrmUnitOfWork>,
    barrier: Arc<SeaOrmTccBarrier>,
    knobs: Arc<Knobs>,
}

async fn business(
    state: &ParticipantState,
    op: BranchOp,
    holder: i64,
    quantity: i64,
) -> Result<(), AppError> {
    let session = state.database.writer().await?;
    let backend = session.get_database_backend();
    let column = |name: &'static str| Expr::col(Alias::new(name));
    // Moves `quantity` from one column to another, if `from` holds it.
    let (from, to) = match op {
        BranchOp::Try => ("available", "reserved"),
        BranchOp::Confirm => ("reserved", "spent"),
        BranchOp::Cancel => ("reserved", "available"),
    };
    let statement = Query::update()
        .table(Alias::new("holding"))
        .value(Alias::new(from), column(from).sub(quantity))
        .value(Alias::new(to), column(to).add(quantity))
        .and_where(column("holder").eq(holder))
        .and_where(column(from).gte(quantity))
        .to_owned();
    let changed = session
        .execute_raw(StatementBuilder::build(&statement, &backend))
        .await
        .map_err(strata_infrastructure::storage_error)?
        .rows_affected();
    session.finish().await?;
    if changed == 0 {
        return Err(AppError::RuleViolated {
            code: "not_enough",
            message: format!("not enough to {}", op.as_str()),
        });
    }
    *state
        .knobs
        .effects
        .lock()
        .expect("effects")
        .entry(op.as_str())
        .or_default() += 1;
    Ok(())
}

async fn branch_route(
    State(state): State<ParticipantState>,
    Path(op): Path<String>,
    headers: HeaderMap,
    Json(payload): Json<Value>,
) -> (StatusCode, String) {
    let Some(op) = BranchOp::from_name(&op) else {
        return (StatusCode::NOT_FOUND, "no such operation".into());
    };
    *state
        .knobs
        .calls
        .lock()
        .expect("calls")
        .entry(op.as_str())
        .or_default() += 1;
    if op == BranchOp::Cancel {
        state
            .knobs
            .cancelled_at
            .store(SEQUENCE.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
    }
    if state.knobs.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down".into());
    }
    if op == BranchOp::Confirm
        && state
            .knobs
            .failing_confirms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "confirm failed".into());
    }
    let held_until = state.knobs.confirms_held_until.load(Ordering::SeqCst);
    if op == BranchOp::Confirm && held_until > 0 {
        state.knobs.confirms_waiting.fetch_add(1, Ordering::SeqCst);
        for _ in 0..1_000 {
            if state.knobs.confirms_waiting.load(Ordering::SeqCst) >= held_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(gid), Some(branch)) = (header(GID_HEADER), header(BRANCH_HEADER)) else {
        return (StatusCode::BAD_REQUEST, "no transaction headers".into());
    };
    let quantity = payload["quantity"].as_i64().unwrap_or(0);
    let holder = payload["holder"].as_i64().unwrap_or(0);
    if op == BranchOp::Try {
        let before = state.knobs.try_delay_before_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(before)).await;
    }
    let inside = match op {
        BranchOp::Try => state.knobs.try_delay_inside_ms.load(Ordering::SeqCst),
        BranchOp::Cancel => state.knobs.cancel_delay_inside_ms.load(Ordering::SeqCst),
        BranchOp::Confirm => 0,
    };
    let outcome = in_unit_of_work(state.unit_of_work.as_ref(), Propagation::Required, async {
        let decision = state.barrier.enter(&gid, &branch, op).await?;
        tokio::time::sleep(Duration::from_millis(inside)).await;
        match decision {
            BarrierDecision::Run => business(&state, op, holder, quantity).await,
            BarrierDecision::Skip => Ok(()),
            BarrierDecision::Refuse => Err(AppError::Conflict {
                code: "cancelled_before",
                message: "this branch was cancelled before its try arrived".into(),
            }),
        }
    })
    .await;
    match outcome {
        Ok(()) => (StatusCode::OK, String::new()),
        Err(AppError::RuleViolated { message, .. } | AppError::Conflict { message, .. }) => {
            (StatusCode::CONFLICT, message)
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

impl Participant {
    /// A participant on the (empty) database at `url`, holding `available`,
    /// serving on a port of its own.
    ///
    /// # Panics
    /// When the database or a port cannot be had.
    pub async fn start(url: &str, available: i64) -> Self {
        let connected = Database::connect(url).await.expect("connected");
        migrate_up::<NoMigrations>(&connected)
            .await
            .expect("migrated");
        let pool = connected.connection().expect("the pool");
        pool.execute_unprepared(
            "CREATE TABLE holding (holder BIGINT NOT NULL PRIMARY KEY, available BIGINT NOT NULL, reserved BIGINT NOT NULL, spent BIGINT NOT NULL)",
        )
        .await
        .expect("table made");
        pool.execute_unprepared(&format!(
            "INSERT INTO holding (holder, available, reserved, spent) VALUES (0, {available}, 0, 0)"
        ))
        .await
        .expect("stocked");
        let knobs = Arc::new(Knobs::default());
        let state = ParticipantState {
            unit_of_work: Arc::new(SeaOrmUnitOfWork::new(connected.clone())),
            barrier: Arc::new(SeaOrmTccBarrier::new(connected.clone())),
            database: connected.clone(),
            knobs: Arc::clone(&knobs),
        };
        let router = axum::Router::new()
            .route("/tcc/holding/{op}", axum::routing::post(branch_route))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            connected,
            knobs,
            url: format!("http://{addr}/tcc/holding"),
        }
    }

    /// Gives it holders `1..=count` besides the first (customers' wallets,
    /// say), each holding `available`.
    ///
    /// # Panics
    /// When the table cannot be written.
    pub async fn open_holders(&self, count: i64, available: i64) {
        let pool = self.connected.connection().expect("the pool");
        for holder in 1..=count {
            pool.execute_unprepared(&format!(
                "INSERT INTO holding (holder, available, reserved, spent) VALUES ({holder}, {available}, 0, 0)"
            ))
            .await
            .expect("opened");
        }
    }

    /// What all its holders hold together: (available, reserved, spent).
    ///
    /// # Panics
    /// When the table cannot be read.
    pub async fn holding(&self) -> (i64, i64, i64) {
        // Summed here: the engines differ in the type `SUM` answers.
        let rows = self
            .connected
            .connection()
            .expect("the pool")
            .query_all_raw(Statement::from_string(
                self.connected.backend(),
                "SELECT available, reserved, spent FROM holding",
            ))
            .await
            .expect("read");
        rows.iter()
            .fold((0, 0, 0), |(available, reserved, spent), row| {
                let get = |column: &str| -> i64 { row.try_get("", column).expect(column) };
                (
                    available + get("available"),
                    reserved + get("reserved"),
                    spent + get("spent"),
                )
            })
    }

    /// The operations its barrier recorded for `gid`, sorted.
    ///
    /// # Panics
    /// When the table cannot be read.
    pub async fn barrier_rows(&self, gid: &str) -> Vec<String> {
        let rows = self
            .connected
            .connection()
            .expect("the pool")
            .query_all_raw(StatementBuilder::build(
                Query::select()
                    .column(Alias::new("op"))
                    .from(Alias::new("strata_tcc_barrier"))
                    .and_where(Expr::col(Alias::new("gid")).eq(gid))
                    .order_by(Alias::new("op"), Order::Asc),
                &self.connected.backend(),
            ))
            .await
            .expect("read");
        rows.iter()
            .map(|row| row.try_get("", "op").expect("an op"))
            .collect()
    }

    /// A branch asking its first holder for `quantity`.
    #[must_use]
    pub fn branch(&self, quantity: i64) -> BranchSpec {
        self.branch_of(0, quantity)
    }

    /// A branch asking holder `holder` for `quantity`.
    #[must_use]
    pub fn branch_of(&self, holder: i64, quantity: i64) -> BranchSpec {
        BranchSpec {
            url: self.url.clone(),
            payload: json!({ "holder": holder, "quantity": quantity }),
        }
    }
}
