//! How far behind the service's consumers are, for `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use strata_app_api::metrics::Metrics;
use strata_app_api::metrics::prometheus::collector::Collector;
use strata_app_api::metrics::prometheus::encoding::{DescriptorEncoder, EncodeMetric};
use strata_app_api::metrics::prometheus::metrics::gauge::ConstGauge;
use strata_infrastructure::consumer::GroupStatus;

use crate::consumer::lock;

/// What the consumers last saw: per consumer and partition (`""` for a
/// group), when the oldest message not applied yet was recorded; per group,
/// its backlog.
/// When the oldest message waiting was recorded, in milliseconds since the
/// Unix epoch; `None` when none waits.
type OldestWaiting = Option<i64>;

#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerGauges {
    behind: Arc<Mutex<BTreeMap<(String, String), OldestWaiting>>>,
    backlog: Arc<Mutex<BTreeMap<String, GroupStatus>>>,
}

impl ConsumerGauges {
    /// `consumer`'s `partition` (`None` for a group) has messages waiting
    /// since `oldest_recorded_ms`, or none (`None`).
    pub(crate) fn behind(
        &self,
        consumer: &str,
        partition: Option<u32>,
        oldest_recorded_ms: Option<i64>,
    ) {
        let partition = partition.map(|partition| partition.to_string());
        lock(&self.behind).insert(
            (consumer.to_owned(), partition.unwrap_or_default()),
            oldest_recorded_ms,
        );
    }

    /// `consumer`'s group has `status` as its backlog.
    pub(crate) fn backlog(&self, consumer: &str, status: GroupStatus) {
        lock(&self.backlog).insert(consumer.to_owned(), status);
    }

    /// Reports them on every scrape of `metrics`.
    pub(crate) fn report_to(&self, metrics: &Metrics) {
        metrics.register_collector(Box::new(Collected(self.clone())));
    }
}

#[derive(Debug)]
struct Collected(ConsumerGauges);

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, &str)>, i64)],
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family =
        encoder.encode_descriptor(name, help, None, ConstGauge::new(0_i64).metric_type())?;
    for (labels, value) in rows {
        let metric = family.encode_family(labels)?;
        ConstGauge::new(*value).encode(metric)?;
    }
    Ok(())
}

impl Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        let behind = lock(&self.0.behind).clone();
        let rows: Vec<(Vec<(&str, &str)>, i64)> = behind
            .iter()
            .map(|((consumer, partition), oldest)| {
                let age = oldest.map_or(0, |oldest| (now_ms - oldest).max(0) / 1_000);
                let mut labels = vec![("consumer", consumer.as_str())];
                if !partition.is_empty() {
                    labels.push(("partition", partition.as_str()));
                }
                (labels, age)
            })
            .collect();
        gauge(
            &mut encoder,
            "consumer_behind_seconds",
            "Age of the oldest message a consumer has not applied yet, per partition (0 when caught up)",
            &rows,
        )?;
        let backlog = lock(&self.0.backlog).clone();
        let pending: Vec<(Vec<(&str, &str)>, i64)> = backlog
            .iter()
            .filter_map(|(consumer, status)| {
                status.pending.map(|pending| {
                    (
                        vec![("consumer", consumer.as_str())],
                        i64::try_from(pending).unwrap_or(i64::MAX),
                    )
                })
            })
            .collect();
        gauge(
            &mut encoder,
            "consumer_pending",
            "Messages delivered to a member of a consumer group and not acknowledged yet",
            &pending,
        )?;
        let lag: Vec<(Vec<(&str, &str)>, i64)> = backlog
            .iter()
            .filter_map(|(consumer, status)| {
                status.lag.map(|lag| {
                    (
                        vec![("consumer", consumer.as_str())],
                        i64::try_from(lag).unwrap_or(i64::MAX),
                    )
                })
            })
            .collect();
        gauge(
            &mut encoder,
            "consumer_lag",
            "Messages not delivered to any member of a consumer group yet",
            &lag,
        )
    }
}
