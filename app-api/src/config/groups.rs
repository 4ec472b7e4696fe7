//! Settings groups a service's configuration embeds, each defined, checked and
//! documented once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Invalid, duration};
use crate::application::middleware::IDEMPOTENCY_LEASE;

/// How idempotency keys are kept (`[idempotency]` in a configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a claim on a key protects a request still running; must outlast
    /// the request timeout, or a retry could take over a key whose request is
    /// still at work.
    #[serde(with = "duration")]
    pub lease: Duration,
    /// How long a completed request is remembered by its key; a retry after it
    /// runs as new. Must be longer than the lease.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// How often keys past their retention are purged.
    #[serde(with = "duration")]
    pub purge_interval: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            lease: IDEMPOTENCY_LEASE,
            retention: Duration::from_secs(24 * 60 * 60),
            purge_interval: Duration::from_secs(60 * 60),
        }
    }
}

impl IdempotencySettings {
    /// Checks the group, found under `group` in the configuration, against the
    /// longest a request may take.
    ///
    /// # Errors
    /// The first key that breaks a rule.
    pub fn check(&self, group: &str, request_timeout: Duration) -> Result<(), Invalid> {
        if self.lease <= request_timeout {
            return Err(Invalid::new(
                format!("{group}.lease"),
                format!(
                    "must be longer than the request timeout ({}), or a retry could take over \
                     a key whose request is still running",
                    duration::format(request_timeout)
                ),
            ));
        }
        if self.retention <= self.lease {
            return Err(Invalid::new(
                format!("{group}.retention"),
                "must be longer than the lease",
            ));
        }
        if self.purge_interval.is_zero() {
            return Err(Invalid::new(
                format!("{group}.purge_interval"),
                "must be more than zero",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_must_outlast_the_request_timeout() {
        let settings = IdempotencySettings::default();
        settings
            .check("idempotency", Duration::from_secs(30))
            .expect("the defaults hold");
        let error = settings
            .check("idempotency", Duration::from_secs(90))
            .expect_err("a 60 s lease under a 90 s timeout");
        assert_eq!(error.key(), "idempotency.lease");
        assert!(
            error.reason().contains("request timeout"),
            "{}",
            error.reason()
        );
    }

    #[test]
    fn retention_must_outlast_the_lease() {
        let settings = IdempotencySettings {
            retention: Duration::from_secs(30),
            ..IdempotencySettings::default()
        };
        let error = settings
            .check("idempotency", Duration::from_secs(10))
            .expect_err("retention shorter than the lease");
        assert_eq!(
            error,
            Invalid::new("idempotency.retention", "must be longer than the lease")
        );
    }
}
