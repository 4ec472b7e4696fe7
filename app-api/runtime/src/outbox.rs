//! The outbox relay as one of the service's background workers, and its
//! metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use strata_app_api::metrics::Metrics;
use strata_app_api::metrics::prometheus::encoding::{DescriptorEncoder, EncodeMetric};
use strata_app_api::metrics::prometheus::metrics::counter::ConstCounter;
use strata_app_api::metrics::prometheus::metrics::gauge::ConstGauge;
use strata_app_api::workers::{Worker, WorkerContext, WorkerError};
use strata_infrastructure::SeaOrmOutbox;
use strata_infrastructure::outbox::{OutboxRelay, OutboxStatus, RelayPass};

/// How often the relay re-reads the outbox's depth for metrics.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// What the relay did since the service started, and the outbox's depth when
/// last read.
#[derive(Debug, Default)]
pub(crate) struct RelayCounters {
    published: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    pending: AtomicU64,
    dead: AtomicU64,
    oldest_pending_at_ms: AtomicI64,
}

impl RelayCounters {
    fn add(&self, pass: RelayPass) {
        self.published
            .fetch_add(pass.published as u64, Ordering::Relaxed);
        self.failed.fetch_add(pass.failed as u64, Ordering::Relaxed);
        self.dead_lettered
            .fetch_add(pass.dead as u64, Ordering::Relaxed);
    }

    fn set(&self, status: OutboxStatus) {
        self.pending.store(status.pending, Ordering::Relaxed);
        self.dead.store(status.dead, Ordering::Relaxed);
        self.oldest_pending_at_ms
            .store(status.oldest_pending_at_ms.unwrap_or(0), Ordering::Relaxed);
    }
}

/// The relay run by the worker supervisor: restarted with backoff when the
/// outbox cannot be read, stopped on shutdown.
pub(crate) struct RelayWorker {
    pub(crate) relay: OutboxRelay,
    pub(crate) outbox: SeaOrmOutbox,
    pub(crate) counters: Arc<RelayCounters>,
}

#[async_trait]
impl Worker for RelayWorker {
    fn name(&self) -> &str {
        "outbox_relay"
    }

    async fn run(&self, context: WorkerContext) -> Result<(), WorkerError> {
        let mut stop = context.clone();
        let (passes, mut passed) = tokio::sync::watch::channel(RelayPass::default());
        let counters = Arc::clone(&self.counters);
        let relaying = self
            .relay
            .run(async move { stop.stopping().await }, move |pass| {
                counters.add(pass);
                context.beat();
                passes.send_replace(pass);
            });
        // Read beside the relay, never while it waits (on a database with one
        // connection, the two take turns), and at most every STATUS_EVERY.
        let watching = async {
            let mut last_read: Option<tokio::time::Instant> = None;
            while passed.changed().await.is_ok() {
                if last_read.is_some_and(|at| at.elapsed() < STATUS_EVERY) {
                    continue;
                }
                if let Ok(status) = self.outbox.status().await {
                    self.counters.set(status);
                }
                last_read = Some(tokio::time::Instant::now());
            }
        };
        // The watcher ends when the relay drops its sender, that is, when the
        // relay returned.
        let (relayed, ()) = tokio::join!(relaying, watching);
        relayed.map_err(Into::into)
    }
}

/// Reports the relay's counters and the outbox's depth on every scrape.
#[derive(Debug)]
struct OutboxCollector(Arc<RelayCounters>);

impl strata_app_api::metrics::prometheus::collector::Collector for OutboxCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = &self.0;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        let counter = |encoder: &mut DescriptorEncoder, name, help, value: &AtomicU64| {
            let metric = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric_encoder =
                encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(metric_encoder)
        };
        counter(
            &mut encoder,
            "outbox_published",
            "Outbox events the broker confirmed",
            &counters.published,
        )?;
        counter(
            &mut encoder,
            "outbox_publish_failures",
            "Failed attempts to publish an outbox event",
            &counters.failed,
        )?;
        counter(
            &mut encoder,
            "outbox_dead_lettered",
            "Outbox events dead-lettered after their last attempt",
            &counters.dead_lettered,
        )?;
        let gauge = |encoder: &mut DescriptorEncoder, name, help, value: i64| {
            let metric = ConstGauge::new(value);
            let metric_encoder =
                encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(metric_encoder)
        };
        gauge(
            &mut encoder,
            "outbox_pending",
            "Outbox events not published yet",
            i64::try_from(counters.pending.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut encoder,
            "outbox_dead_letters",
            "Outbox events waiting for an operator",
            i64::try_from(counters.dead.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        )?;
        let oldest = counters.oldest_pending_at_ms.load(Ordering::Relaxed);
        let age = if oldest > 0 {
            (now_ms - oldest).max(0) / 1_000
        } else {
            0
        };
        gauge(
            &mut encoder,
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox event not published yet",
            age,
        )
    }
}

pub(crate) fn report_to(metrics: &Metrics, counters: &Arc<RelayCounters>) {
    metrics.register_collector(Box::new(OutboxCollector(Arc::clone(counters))));
}
