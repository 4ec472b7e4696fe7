//! Background workers: the jobs a service runs beside its requests — relaying
//! the outbox, consuming streams, recovering transactions, purging what expired.
//!
//! A [`Worker`] is started with the service and runs until told to stop. The
//! supervisor ([`Workers`]) gives each one:
//!
//! * a stop signal on shutdown and a bounded time to finish
//!   ([`RunningWorkers::shutdown`]); one that overruns it is abandoned;
//! * a restart after it fails (an error or a panic), after a pause that doubles
//!   with each failure in a row up to a ceiling, and starts again from the first
//!   step once the worker makes progress;
//! * a readiness check of its own (`worker.<name>`): down while it fails again and
//!   again, or when it stops making progress for longer than it said it may;
//! * metrics (feature `metrics`): runs, failures and the time of the last success.
//!
//! A worker that does something every so often is a [`Periodic`].
//!
//! ```
//! use std::time::Duration;
//! use strata_app_api::workers::{Periodic, RestartPolicy, Workers};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut workers = Workers::new(RestartPolicy::default());
//! workers.add(Periodic::new("tidy_up", Duration::from_secs(60), || async {
//!     // delete what expired...
//!     Ok(())
//! }));
//! let running = workers.start();
//! running.shutdown(Duration::from_secs(5)).await;
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::application::error_chain;

/// Why a worker's run failed.
pub type WorkerError = Box<dyn std::error::Error + Send + Sync>;

/// A job the service runs in the background for as long as it runs.
#[async_trait]
pub trait Worker: Send + Sync + 'static {
    /// A short, stable name for logs, readiness and metrics (`outbox_relay`).
    fn name(&self) -> &str;

    /// Does the work until `context` says the service is stopping, then returns
    /// `Ok`. Call [`WorkerContext::beat`] whenever it made progress. An `Err` or
    /// a panic counts as a failure: the worker is run again after a pause.
    ///
    /// # Errors
    /// Why this run failed.
    async fn run(&self, context: WorkerContext) -> Result<(), WorkerError>;

    /// How long the worker may go without a [`WorkerContext::beat`] before
    /// readiness reports it stalled; `None` for a worker that may wait for work
    /// indefinitely.
    fn stall_after(&self) -> Option<Duration> {
        None
    }
}

/// What a running worker is given: the stop signal, and where it reports
/// progress.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    stop: watch::Receiver<bool>,
    status: Arc<Status>,
}

impl WorkerContext {
    /// Whether the service is stopping.
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the service starts stopping.
    pub async fn stopping(&mut self) {
        let _ = self.stop.wait_for(|stop| *stop).await;
    }

    /// Waits `duration`, or less if the service starts stopping; answers whether
    /// the worker should go on.
    pub async fn sleep(&mut self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => !self.is_stopping(),
            () = self.stopping() => false,
        }
    }

    /// Records that the worker made progress: it is alive, and its failures in a
    /// row are behind it.
    pub fn beat(&self) {
        self.status.beat();
    }
}

/// A worker that runs `job` every `interval` (the first time at once), and is
/// stalled when three intervals pass without a successful run.
pub struct Periodic<F> {
    name: String,
    interval: Duration,
    job: F,
}

impl<F> std::fmt::Debug for Periodic<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl<F, Fut> Periodic<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), WorkerError>> + Send + 'static,
{
    /// A worker named `name` that runs `job` every `interval`.
    pub fn new(name: impl Into<String>, interval: Duration, job: F) -> Self {
        Self {
            name: name.into(),
            interval,
            job,
        }
    }
}

#[async_trait]
impl<F, Fut> Worker for Periodic<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), WorkerError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, mut context: WorkerContext) -> Result<(), WorkerError> {
        loop {
            (self.job)().await?;
            context.beat();
            if !context.sleep(self.interval).await {
                return Ok(());
            }
        }
    }

    fn stall_after(&self) -> Option<Duration> {
        Some(self.interval.saturating_mul(3))
    }
}

/// How failed workers are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The pause after the first failure; it doubles with each failure in a row.
    pub first_pause: Duration,
    /// The longest pause.
    pub max_pause: Duration,
    /// How many failures in a row make the worker count as down in readiness.
    pub failures_before_down: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(60),
            failures_before_down: 3,
        }
    }
}

impl RestartPolicy {
    fn pause_after(&self, failures_in_a_row: u32) -> Duration {
        let doublings = failures_in_a_row.saturating_sub(1).min(31);
        self.first_pause
            .saturating_mul(1 << doublings)
            .min(self.max_pause)
    }
}

/// What the supervisor knows of one worker.
#[derive(Debug)]
struct Status {
    name: String,
    stall_after: Option<Duration>,
    runs: AtomicU64,
    failures: AtomicU64,
    state: Mutex<State>,
    /// The task running the worker now, to stop one that overruns shutdown.
    running: Mutex<Option<tokio::task::AbortHandle>>,
}

#[derive(Debug, Clone)]
struct State {
    failures_in_a_row: u32,
    last_progress: Instant,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
    ended: bool,
}

impl Status {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn beat(&self) {
        let mut state = self.state();
        state.failures_in_a_row = 0;
        state.last_progress = Instant::now();
        state.last_success = Some(SystemTime::now());
    }

    /// Why the worker cannot be counted on now, if it cannot.
    fn trouble(&self, policy: &RestartPolicy) -> Option<String> {
        let state = self.state();
        if state.ended {
            return Some("it has stopped".into());
        }
        if state.failures_in_a_row >= policy.failures_before_down {
            return Some(format!(
                "it failed {} times in a row; last: {}",
                state.failures_in_a_row,
                state.last_error.as_deref().unwrap_or("a panic")
            ));
        }
        match self.stall_after {
            Some(limit) if state.last_progress.elapsed() > limit => Some(format!(
                "it made no progress for {} s",
                state.last_progress.elapsed().as_secs()
            )),
            _ => None,
        }
    }
}

/// The workers of a service, before they start.
pub struct Workers {
    policy: RestartPolicy,
    workers: Vec<(Arc<dyn Worker>, Arc<Status>)>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.workers.iter().map(|(_, s)| s.name.as_str()).collect();
        f.debug_struct("Workers")
            .field("policy", &self.policy)
            .field("workers", &names)
            .finish()
    }
}

impl Default for Workers {
    fn default() -> Self {
        Self::new(RestartPolicy::default())
    }
}

impl Workers {
    /// No workers yet; failed ones are restarted as `policy` says.
    #[must_use]
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            workers: Vec::new(),
        }
    }

    /// Adds `worker`.
    pub fn add(&mut self, worker: impl Worker) {
        let status = Arc::new(Status {
            name: worker.name().to_owned(),
            stall_after: worker.stall_after(),
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            running: Mutex::new(None),
            state: Mutex::new(State {
                failures_in_a_row: 0,
                last_progress: Instant::now(),
                last_success: None,
                last_error: None,
                ended: false,
            }),
        });
        self.workers.push((Arc::new(worker), status));
    }

    /// The names of the workers, in the order they were added.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.workers.iter().map(|(_, s)| s.name.clone()).collect()
    }

    /// One readiness check per worker, named `worker.<name>`.
    #[cfg(feature = "http")]
    #[must_use]
    pub fn health_checks(&self) -> Vec<WorkerCheck> {
        self.workers
            .iter()
            .map(|(_, status)| WorkerCheck {
                name: format!("worker.{}", status.name),
                status: Arc::clone(status),
                policy: self.policy,
            })
            .collect()
    }

    /// Reports each worker's runs, failures and last success in `metrics`.
    #[cfg(feature = "metrics")]
    pub fn report_to(&self, metrics: &crate::metrics::Metrics) {
        metrics.register_collector(Box::new(WorkerCollector {
            statuses: self.workers.iter().map(|(_, s)| Arc::clone(s)).collect(),
            policy: self.policy,
        }));
    }

    /// Starts every worker on a task of its own.
    #[must_use]
    pub fn start(self) -> RunningWorkers {
        let (stop, stopped) = watch::channel(false);
        let handles = self
            .workers
            .into_iter()
            .map(|(worker, status)| {
                let handle = tokio::spawn(supervise(
                    worker,
                    Arc::clone(&status),
                    self.policy,
                    stopped.clone(),
                ));
                (status, handle)
            })
            .collect();
        RunningWorkers { stop, handles }
    }
}

/// Runs `worker` until the stop signal, restarting it after each failure.
async fn supervise(
    worker: Arc<dyn Worker>,
    status: Arc<Status>,
    policy: RestartPolicy,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            break;
        }
        status.runs.fetch_add(1, Ordering::Relaxed);
        status.state().last_progress = Instant::now();
        let context = WorkerContext {
            stop: stop.clone(),
            status: Arc::clone(&status),
        };
        let running = Arc::clone(&worker);
        // On a task of its own, so a panic is caught and counted like an error.
        let task = tokio::spawn(async move { running.run(context).await });
        *status
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        let outcome = task.await;
        let reason = match outcome {
            Ok(Ok(())) if *stop.borrow() => break,
            Ok(Ok(())) => "it returned before the service stopped".to_owned(),
            Ok(Err(error)) => error_chain(error.as_ref()),
            Err(join) if join.is_panic() => "it panicked".to_owned(),
            Err(join) => join.to_string(),
        };
        status.failures.fetch_add(1, Ordering::Relaxed);
        let failures_in_a_row = {
            let mut state = status.state();
            state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
            state.last_error = Some(reason.clone());
            state.failures_in_a_row
        };
        let pause = policy.pause_after(failures_in_a_row);
        tracing::error!(
            worker = %status.name,
            failures_in_a_row,
            retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            error = %reason,
            "a worker failed; it will be started again"
        );
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    status.state().ended = true;
}

/// Started workers: what stops them.
#[derive(Debug)]
pub struct RunningWorkers {
    stop: watch::Sender<bool>,
    handles: Vec<(Arc<Status>, JoinHandle<()>)>,
}

impl RunningWorkers {
    /// Tells every worker to stop and waits up to `grace` for all of them; those
    /// still running then are abandoned and named in the log and the answer.
    pub async fn shutdown(self, grace: Duration) -> Vec<String> {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let mut overran = Vec::new();
        for (status, mut handle) in self.handles {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                tracing::warn!(
                    worker = %status.name,
                    grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    "a worker did not stop within the grace period; stopped"
                );
                handle.abort();
                let task = status
                    .running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(task) = task {
                    task.abort();
                }
                status.state().ended = true;
                overran.push(status.name.clone());
            }
        }
        overran
    }
}

/// A worker's readiness: down while it keeps failing, has stalled or stopped.
#[cfg(feature = "http")]
#[derive(Debug)]
pub struct WorkerCheck {
    name: String,
    status: Arc<Status>,
    policy: RestartPolicy,
}

#[cfg(feature = "http")]
#[async_trait]
impl crate::http::health::HealthCheck for WorkerCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), crate::http::health::CheckError> {
        match self.status.trouble(&self.policy) {
            Some(reason) => Err(reason.into()),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct WorkerCollector {
    statuses: Vec<Arc<Status>>,
    policy: RestartPolicy,
}

#[cfg(feature = "metrics")]
impl prometheus_client::collector::Collector for WorkerCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;

        let mut family = |name: &str,
                          help: &str,
                          kind: MetricType,
                          value: &dyn Fn(&Status) -> Option<f64>|
         -> Result<(), std::fmt::Error> {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for status in &self.statuses {
                let Some(value) = value(status) else { continue };
                let labels = [("worker", status.name.as_str())];
                match kind {
                    MetricType::Counter => {
                        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?
                    }
                    _ => ConstGauge::new(value).encode(metric.encode_family(&labels)?)?,
                }
            }
            Ok(())
        };
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        family(
            "worker_runs",
            "Times each background worker was started (restarts included)",
            MetricType::Counter,
            &|status| Some(status.runs.load(Ordering::Relaxed) as f64),
        )?;
        #[allow(clippy::cast_precision_loss)]
        family(
            "worker_failures",
            "Runs of each background worker that ended in an error or a panic",
            MetricType::Counter,
            &|status| Some(status.failures.load(Ordering::Relaxed) as f64),
        )?;
        family(
            "worker_last_success_timestamp_seconds",
            "When each background worker last made progress (Unix time)",
            MetricType::Gauge,
            &|status| {
                let success = status.state().last_success?;
                let since = success.duration_since(SystemTime::UNIX_EPOCH).ok()?;
                Some(since.as_secs_f64())
            },
        )?;
        family(
            "worker_up",
            "1 while a background worker is healthy, 0 while it keeps failing, stalls or stopped",
            MetricType::Gauge,
            &|status| {
                Some(if status.trouble(&self.policy).is_some() {
                    0.0
                } else {
                    1.0
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::http::health::HealthCheck;

    /// Panics on its first `panics` runs, then beats and waits to be stopped.
    struct Flaky {
        panics: usize,
        runs: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Worker for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }

        async fn run(&self, mut context: WorkerContext) -> Result<(), WorkerError> {
            let run = self.runs.fetch_add(1, Ordering::SeqCst);
            assert!(run >= self.panics, "the worker blew up");
            context.beat();
            context.stopping().await;
            Ok(())
        }
    }

    /// Never looks at the stop signal.
    struct Deaf;

    #[async_trait]
    impl Worker for Deaf {
        fn name(&self) -> &str {
            "deaf"
        }

        async fn run(&self, _context: WorkerContext) -> Result<(), WorkerError> {
            std::future::pending::<()>().await;
            Ok(())
        }
    }

    fn quick() -> RestartPolicy {
        RestartPolicy {
            first_pause: Duration::from_millis(100),
            max_pause: Duration::from_secs(1),
            failures_before_down: 3,
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_that_panics_is_restarted_and_is_down_only_while_it_keeps_failing() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut workers = Workers::new(quick());
        workers.add(Flaky {
            panics: 4,
            runs: Arc::clone(&runs),
        });
        let checks = workers.health_checks();
        let running = workers.start();
        // Failures at 0, +100 ms, +200 ms: three in a row, the pauses doubling.
        settle().await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let down = checks[0]
            .check()
            .await
            .expect_err("three failures in a row");
        assert!(down.to_string().contains("3 times in a row"), "{down}");
        assert_eq!(checks[0].name(), "worker.flaky");
        // The fourth run (after 400 ms) fails too, the fifth (after 800 ms) beats.
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 5);
        checks[0]
            .check()
            .await
            .expect("healthy again once it made progress");
        assert!(running.shutdown(Duration::from_secs(1)).await.is_empty());
        let stopped = checks[0].check().await.expect_err("stopped");
        assert!(stopped.to_string().contains("stopped"), "{stopped}");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_every_worker_within_the_grace_and_abandons_one_that_will_not() {
        let mut workers = Workers::default();
        workers.add(Periodic::new("tidy", Duration::from_secs(60), || async {
            Ok(())
        }));
        workers.add(Deaf);
        let checks = workers.health_checks();
        let running = workers.start();
        settle().await;
        let overran = running.shutdown(Duration::from_secs(2)).await;
        assert_eq!(overran, ["deaf"]);
        let stopped = checks[1]
            .check()
            .await
            .expect_err("the deaf worker was stopped");
        assert!(stopped.to_string().contains("stopped"), "{stopped}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_periodic_worker_that_stops_making_progress_is_stalled() {
        let hang = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hangs = Arc::clone(&hang);
        let mut workers = Workers::default();
        workers.add(Periodic::new("purge", Duration::from_secs(10), move || {
            let hangs = Arc::clone(&hangs);
            async move {
                if hangs.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        }));
        let checks = workers.health_checks();
        let running = workers.start();
        settle().await;
        checks[0].check().await.expect("ran once");
        hang.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(25)).await;
        settle().await;
        checks[0]
            .check()
            .await
            .expect("within three intervals of its last run");
        tokio::time::sleep(Duration::from_secs(10)).await;
        settle().await;
        let stalled = checks[0].check().await.expect_err("stalled");
        assert!(stalled.to_string().contains("no progress"), "{stalled}");
        running.shutdown(Duration::from_millis(10)).await;
    }

    #[test]
    fn pauses_double_up_to_the_ceiling() {
        let policy = RestartPolicy::default();
        let pauses: Vec<u64> = (1..=8).map(|n| policy.pause_after(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[cfg(feature = "metrics")]
    #[tokio::test(start_paused = true)]
    async fn runs_failures_and_health_are_reported_as_metrics() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut workers = Workers::new(quick());
        workers.add(Flaky {
            panics: 1,
            runs: Arc::clone(&runs),
        });
        let metrics = crate::metrics::Metrics::new();
        workers.report_to(&metrics);
        let running = workers.start();
        settle().await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        settle().await;
        let text = metrics.render();
        assert!(
            text.contains("worker_runs_total{worker=\"flaky\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("worker_failures_total{worker=\"flaky\"} 1"),
            "{text}"
        );
        assert!(text.contains("worker_up{worker=\"flaky\"} 1"), "{text}");
        assert!(
            text.contains("worker_last_success_timestamp_seconds{worker=\"flaky\"}"),
            "{text}"
        );
        running.shutdown(Duration::from_secs(1)).await;
    }
}
