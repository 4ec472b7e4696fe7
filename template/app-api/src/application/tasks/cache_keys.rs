//! The task cache's keys and lifetimes, in one place so that what queries cache
//! and what commands invalidate cannot drift apart.

use std::time::Duration;

use domain::tasks::TaskId;

/// Tags every cached page of the task listing.
pub(super) const TASK_LISTINGS: &str = "tasks:list";
/// How long one task may be served from the cache. Commands on this instance
/// invalidate at once; without Redis, other instances' changes show after this.
pub(super) const TASK_TTL: Duration = Duration::from_secs(60);
/// How long a listing page may be served from the cache.
pub(super) const LISTING_TTL: Duration = Duration::from_secs(30);
/// How long "no such task" may be served from the cache.
pub(super) const NOT_FOUND_TTL: Duration = Duration::from_secs(10);

/// The key of one task.
pub(super) fn task(id: TaskId) -> String {
    format!("tasks:task:{id}")
}
