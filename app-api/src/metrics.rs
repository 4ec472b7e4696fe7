//! Prometheus metrics: one [`Metrics`] registry per service, fed by the HTTP
//! layer (`http::metrics`), by the [`UseCaseMetrics`] middleware, and by pool
//! gauges the composition root registers, and written out in the Prometheus
//! text format for `/metrics`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `http_requests_total` | `method`, `route`, `status` | requests answered |
//! | `http_request_duration_seconds` | `method`, `route`, `status` | time to answer |
//! | `use_case_duration_seconds` | `use_case`, `kind`, `outcome` | time per use case; `outcome` is `ok`, `rejected` (a 4xx answer), `unavailable` (503, retry later) or `error` |
//! | `db_pool_connections` | `pool`, `state` (`idle`, `in_use`) | open connections |
//! | `db_pool_max_connections` | `pool` | the pool's limit |
//!
//! `route` is the route's template (`/api/products/{id}`), never the raw path,
//! so ids do not multiply the series; requests that match no route share
//! `route="unmatched"`.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
/// The Prometheus client the registry is built on, for collectors of one's own.
pub use prometheus_client as prometheus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::application::{AppError, Invocation, Middleware, Next, UseCaseOutput};

/// The media type of the Prometheus text format.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UseCaseLabels {
    use_case: &'static str,
    kind: &'static str,
    outcome: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 ms to about 16 s, doubling: fine enough for fast reads, wide enough for a
/// password hash or a slow query.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The service's metrics registry. Cloning shares it.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
    requests: Family<RequestLabels, Counter>,
    request_durations: Timings<RequestLabels>,
    use_case_durations: Timings<UseCaseLabels>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding the request and use-case metrics.
    #[must_use]
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let request_durations: Timings<RequestLabels> =
            Family::new_with_constructor(latency_histogram);
        let use_case_durations: Timings<UseCaseLabels> =
            Family::new_with_constructor(latency_histogram);
        let mut registry = Registry::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status",
            request_durations.clone(),
        );
        registry.register(
            "use_case_duration_seconds",
            "Time to run a use case, by name, kind and outcome (ok, rejected, unavailable, error)",
            use_case_durations.clone(),
        );
        Self {
            registry: Arc::new(RwLock::new(registry)),
            requests,
            request_durations,
            use_case_durations,
        }
    }

    /// Records one answered request. `route` is the matched route's template.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records one run of a use case.
    pub fn observe_use_case(
        &self,
        use_case: &'static str,
        kind: &'static str,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        self.use_case_durations
            .get_or_create(&UseCaseLabels {
                use_case,
                kind,
                outcome: outcome.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Reports the connection pool `pool` on every scrape, asking `usage` for
    /// its state at that moment.
    pub fn register_pool(
        &self,
        pool: impl Into<String>,
        usage: impl Fn() -> PoolUsage + Send + Sync + 'static,
    ) {
        let collector = PoolCollector {
            pool: pool.into(),
            usage: Box::new(usage),
        };
        if let Ok(mut registry) = self.registry.write() {
            registry.register_collector(Box::new(collector));
        }
    }

    /// Adds a collector asked for its values on every scrape, for state kept
    /// elsewhere (background workers, queues).
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        if let Ok(mut registry) = self.registry.write() {
            registry.register_collector(collector);
        }
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Ok(registry) = self.registry.read()
            && let Err(error) =
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        {
            tracing::error!(error = %error, "metrics could not be written");
        }
        text
    }
}

/// How a use case ended, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It was refused for the caller's reasons (invalid input, not found,
    /// forbidden, conflict): the client's to fix.
    Rejected,
    /// It could not run now (overload, storage busy): a retry may succeed.
    Unavailable,
    /// It failed inside: the service's to fix.
    Error,
}

impl Outcome {
    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }

    /// The outcome of `result`.
    #[must_use]
    pub fn of<T>(result: &Result<T, AppError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(AppError::Internal(_)) => Self::Error,
            Err(AppError::Unavailable { .. }) => Self::Unavailable,
            Err(_) => Self::Rejected,
        }
    }
}

/// A connection pool's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolUsage {
    /// Connections open, idle or in use.
    pub open: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most connections the pool will open.
    pub max: u32,
}

struct PoolCollector {
    pool: String,
    usage: Box<dyn Fn() -> PoolUsage + Send + Sync>,
}

impl fmt::Debug for PoolCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolCollector")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let usage = (self.usage)();
        let in_use = usage.open.saturating_sub(usage.idle);
        let mut connections = encoder.encode_descriptor(
            "db_pool_connections",
            "Open database connections, by pool and state (idle, in_use)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (state, value) in [("idle", usage.idle), ("in_use", in_use)] {
            let labels = [("pool", self.pool.as_str()), ("state", state)];
            ConstGauge::new(i64::from(value)).encode(connections.encode_family(&labels)?)?;
        }
        let mut limit = encoder.encode_descriptor(
            "db_pool_max_connections",
            "The most connections the database pool opens",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(usage.max))
            .encode(limit.encode_family(&[("pool", self.pool.as_str())])?)
    }
}

/// Times every use case and counts its outcome. Put it first in the chain so it
/// sees refusals by the middleware after it too.
#[derive(Debug, Clone)]
pub struct UseCaseMetrics {
    metrics: Metrics,
}

impl UseCaseMetrics {
    /// Records into `metrics`.
    #[must_use]
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

#[async_trait]
impl Middleware for UseCaseMetrics {
    fn name(&self) -> &'static str {
        "metrics"
    }

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let name = invocation.name;
        let kind = invocation.kind.as_str();
        let preflight = invocation.preflight;
        let started = Instant::now();
        let result = next.run(invocation).await;
        // A preflight that lets the caller through is followed by the run,
        // which is counted; one that refuses is the only run there is.
        if !preflight || result.is_err() {
            self.metrics
                .observe_use_case(name, kind, Outcome::of(&result), started.elapsed());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_pools_are_written_in_the_prometheus_text_format() {
        let metrics = Metrics::new();
        metrics.observe_request("GET", "/api/products/{id}", 200, Duration::from_millis(3));
        metrics.observe_request("GET", "/api/products/{id}", 200, Duration::from_millis(5));
        metrics.observe_use_case(
            "catalog.get_product",
            "query",
            Outcome::Rejected,
            Duration::from_millis(1),
        );
        metrics.register_pool("database", || PoolUsage {
            open: 3,
            idle: 1,
            max: 10,
        });
        let text = metrics.render();
        assert!(
            text.contains(
                "http_requests_total{method=\"GET\",route=\"/api/products/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
        assert!(text.contains(
            "use_case_duration_seconds_count{use_case=\"catalog.get_product\",kind=\"query\",outcome=\"rejected\"} 1"
        ), "{text}");
        assert!(
            text.contains("db_pool_connections{pool=\"database\",state=\"in_use\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("db_pool_max_connections{pool=\"database\"} 10"),
            "{text}"
        );
    }
}
