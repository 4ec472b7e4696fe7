//! The recovery worker of the service's distributed transactions.

use std::time::Duration;

use async_trait::async_trait;
use strata_app_api::workers::{Worker, WorkerContext, WorkerError};
use strata_infrastructure::tcc::Coordinator;

/// How many due transactions one pass takes at most.
const PASS: u64 = 100;

/// Drives the transactions an initiator left unfinished — timed out while
/// prepared, or with confirms or cancels to retry — on every instance, each
/// transaction claimed by one at a time.
pub(crate) struct RecoveryWorker {
    pub(crate) coordinator: Coordinator,
    pub(crate) interval: Duration,
}

#[async_trait]
impl Worker for RecoveryWorker {
    fn name(&self) -> &str {
        "tcc_recovery"
    }

    async fn run(&self, mut context: WorkerContext) -> Result<(), WorkerError> {
        while !context.is_stopping() {
            let taken = self.coordinator.recover_once(PASS).await?;
            context.beat();
            // A full pass means more may be due: go on at once.
            if taken < PASS as usize && !context.sleep(self.interval).await {
                break;
            }
        }
        Ok(())
    }
}
