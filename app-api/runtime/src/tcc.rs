//! The recovery worker of the service's distributed transactions, and their
//! counts on `/metrics`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strata_app_api::metrics::Metrics;
use strata_app_api::metrics::prometheus::collector::Collector;
use strata_app_api::metrics::prometheus::encoding::{DescriptorEncoder, EncodeMetric};
use strata_app_api::metrics::prometheus::metrics::gauge::ConstGauge;
use strata_app_api::workers::{Worker, WorkerContext, WorkerError};
use strata_infrastructure::tcc::{Coordinator, TransactionCounts, TransactionState};

use crate::consumer::lock;

/// How often the counts are read again.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Drives the transactions an initiator left unfinished — timed out while
/// prepared, or with confirms or cancels to retry — on every instance, each
/// transaction claimed by one at a time; and keeps the counts for metrics.
pub(crate) struct RecoveryWorker {
    pub(crate) coordinator: Coordinator,
    pub(crate) interval: Duration,
    pub(crate) counts: Arc<Mutex<Option<TransactionCounts>>>,
}

impl RecoveryWorker {
    async fn count(&self, last: &mut Option<Instant>) {
        if last.is_some_and(|at| at.elapsed() < COUNT_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        match self.coordinator.counts().await {
            Ok(counts) => *lock(&self.counts) = Some(counts),
            Err(error) => {
                tracing::debug!(%error, "the distributed transactions could not be counted")
            }
        }
    }
}

#[async_trait]
impl Worker for RecoveryWorker {
    fn name(&self) -> &str {
        "tcc_recovery"
    }

    async fn run(&self, mut context: WorkerContext) -> Result<(), WorkerError> {
        let mut counted = None;
        while !context.is_stopping() {
            // As many as it drives at once, so each is driven as soon as it
            // is claimed, well within its lease.
            let pass = self.coordinator.settings().recovery_concurrency.max(1);
            let taken = self
                .coordinator
                .recover_once(u64::try_from(pass).unwrap_or(u64::MAX))
                .await?;
            self.count(&mut counted).await;
            context.beat();
            // A full pass means more may be due: go on at once.
            if taken < pass && !context.sleep(self.interval).await {
                break;
            }
        }
        Ok(())
    }
}

/// Reports the last counts on every scrape.
#[derive(Debug)]
struct Counted(Arc<Mutex<Option<TransactionCounts>>>);

impl Collector for Counted {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(counts) = lock(&self.0).clone() else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "tcc_transactions",
            "Distributed transactions this service coordinates, by state",
            None,
            ConstGauge::new(0_i64).metric_type(),
        )?;
        for state in [
            TransactionState::Prepared,
            TransactionState::Submitted,
            TransactionState::Aborting,
            TransactionState::Succeeded,
            TransactionState::Failed,
        ] {
            let count = counts
                .by_state
                .iter()
                .find(|(known, _)| *known == state)
                .map_or(0, |(_, count)| *count);
            let labels = [("state", state.as_str())];
            let metric = family.encode_family(&labels)?;
            ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX)).encode(metric)?;
        }
        let metric = ConstGauge::new(i64::try_from(counts.flagged).unwrap_or(i64::MAX));
        let flagged = encoder.encode_descriptor(
            "tcc_flagged",
            "Distributed transactions waiting for an operator",
            None,
            metric.metric_type(),
        )?;
        metric.encode(flagged)
    }
}

/// Reports `counts` on `/metrics`.
pub(crate) fn report_to(metrics: &Metrics, counts: &Arc<Mutex<Option<TransactionCounts>>>) {
    metrics.register_collector(Box::new(Counted(Arc::clone(counts))));
}
