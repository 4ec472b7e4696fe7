//! An in-process [`RateLimiter`]: the generic cell rate algorithm (GCRA), which
//! behaves as a token bucket but keeps one instant per key instead of a count and
//! a timestamp.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strata_domain::{RateLimitError, RateLimiter};

/// A monotonic clock: what the limiter measures time with.
///
/// Monotonic rather than the wall clock on purpose: a wall clock stepped back by
/// a time correction would lock every client out for the length of the step.
pub type MonotonicClock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How many attempts a key may make: `requests` per `period` on average, and up
/// to `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Attempts allowed per period, on average.
    pub requests: u32,
    /// The period the average is taken over.
    pub period: Duration,
    /// Attempts allowed back to back by a key that has been quiet.
    pub burst: u32,
}

impl RateLimit {
    /// `requests` per `period`, all of which may come at once.
    #[must_use]
    pub fn per(requests: u32, period: Duration) -> Self {
        Self {
            requests,
            period,
            burst: requests,
        }
    }

    /// The same limit allowing `burst` attempts back to back.
    #[must_use]
    pub fn with_burst(self, burst: u32) -> Self {
        Self { burst, ..self }
    }
}

/// A [`RateLimit`] that cannot work: a zero count, period or burst.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a rate limit needs at least one request per non-zero period and a burst of at least one")]
pub struct InvalidRateLimit;

/// A [`RateLimiter`] that keeps its counts in this process's memory.
///
/// Each instance of a service counts on its own, so behind a load balancer the
/// effective limit is the configured one times the number of instances.
///
/// Memory stays bounded: a key whose allowance has refilled is forgotten (it
/// would behave exactly as a key never seen), and when `max_keys` keys are
/// still tracked the ones closest to refilling are forgotten first.
pub struct InMemoryRateLimiter {
    /// The time one attempt "costs": `period / requests`.
    interval: Duration,
    /// How far ahead of now a key's theoretical arrival time may run: `burst`
    /// attempts' worth.
    tolerance: Duration,
    period: Duration,
    max_keys: usize,
    clock: MonotonicClock,
    state: Mutex<State>,
}

struct State {
    /// For each key, the theoretical arrival time of its next attempt: when the
    /// key would be idle again were it to stop now.
    next_free: HashMap<Box<str>, Instant>,
    last_sweep: Instant,
}

impl std::fmt::Debug for InMemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRateLimiter")
            .field("interval", &self.interval)
            .field("tolerance", &self.tolerance)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl InMemoryRateLimiter {
    /// How many keys are tracked unless [`InMemoryRateLimiter::with_max_keys`]
    /// says otherwise.
    pub const DEFAULT_MAX_KEYS: usize = 100_000;

    /// A limiter applying `limit` to every key, timed by the machine's clock.
    ///
    /// # Errors
    /// [`InvalidRateLimit`] for a zero count, period or burst.
    pub fn new(limit: RateLimit) -> Result<Self, InvalidRateLimit> {
        if limit.requests == 0 || limit.burst == 0 || limit.period.is_zero() {
            return Err(InvalidRateLimit);
        }
        let interval = limit.period / limit.requests;
        if interval.is_zero() {
            return Err(InvalidRateLimit);
        }
        let clock: MonotonicClock = Arc::new(Instant::now);
        Ok(Self {
            interval,
            tolerance: interval.saturating_mul(limit.burst),
            period: limit.period,
            max_keys: Self::DEFAULT_MAX_KEYS,
            state: Mutex::new(State {
                next_free: HashMap::new(),
                last_sweep: clock(),
            }),
            clock,
        })
    }

    /// The same limiter timed by `clock` (a test's clock it moves by hand).
    #[must_use]
    pub fn with_clock(mut self, clock: MonotonicClock) -> Self {
        self.lock().last_sweep = clock();
        self.clock = clock;
        self
    }

    /// The same limiter tracking at most `max_keys` keys (at least one).
    #[must_use]
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// How many keys are tracked now.
    #[must_use]
    pub fn tracked_keys(&self) -> usize {
        self.lock().next_free.len()
    }

    /// Takes one attempt back from `key` at `now`.
    fn give_back(&self, key: &str, now: Instant) {
        let mut state = self.lock();
        if let Some(next_free) = state.next_free.get_mut(key) {
            match next_free.checked_sub(self.interval) {
                Some(earlier) if earlier > now => *next_free = earlier,
                // Back to a full allowance: nothing left to remember.
                _ => {
                    state.next_free.remove(key);
                }
            }
        }
    }

    /// Whether `key` may make an attempt at `now`; records it when so.
    fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        if now.saturating_duration_since(state.last_sweep) >= self.period {
            state.forget_idle(now);
            state.last_sweep = now;
        }
        let next_free = state.next_free.get(key).copied().unwrap_or(now).max(now) + self.interval;
        let ahead = next_free - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        if let Some(entry) = state.next_free.get_mut(key) {
            *entry = next_free;
        } else {
            if state.next_free.len() >= self.max_keys {
                state.forget_idle(now);
                state.make_room(self.max_keys);
            }
            state.next_free.insert(key.into(), next_free);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a map of instants, valid after any panic: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn forget_idle(&mut self, now: Instant) {
        self.next_free.retain(|_, next_free| *next_free > now);
    }

    /// Forgets the tenth of the keys closest to refilling, so a flood of new keys
    /// pays for one sort per many insertions rather than one scan each.
    fn make_room(&mut self, max_keys: usize) {
        if self.next_free.len() < max_keys {
            return;
        }
        let mut instants: Vec<Instant> = self.next_free.values().copied().collect();
        let drop = (max_keys / 10).max(1).min(instants.len() - 1);
        let (_, cutoff, _) = instants.select_nth_unstable(drop);
        let cutoff = *cutoff;
        self.next_free.retain(|_, next_free| *next_free > cutoff);
    }
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn acquire(&self, key: &str) -> Result<(), RateLimitError> {
        self.admit(key, (self.clock)())
            .map_err(|retry_after| RateLimitError::Limited { retry_after })
    }

    async fn forgive(&self, key: &str) -> Result<(), RateLimitError> {
        self.give_back(key, (self.clock)());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that moves only when the test says so.
    #[derive(Clone)]
    struct HandClock(Arc<Mutex<Instant>>);

    impl HandClock {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(Instant::now())))
        }

        fn advance(&self, by: Duration) {
            *self.0.lock().expect("clock lock") += by;
        }

        fn as_clock(&self) -> MonotonicClock {
            let instant = Arc::clone(&self.0);
            Arc::new(move || *instant.lock().expect("clock lock"))
        }
    }

    fn limiter(limit: RateLimit, clock: &HandClock) -> InMemoryRateLimiter {
        InMemoryRateLimiter::new(limit)
            .expect("a valid limit")
            .with_clock(clock.as_clock())
    }

    fn retry_after(result: Result<(), RateLimitError>) -> Duration {
        match result {
            Err(RateLimitError::Limited { retry_after }) => retry_after,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_burst_passes_and_the_next_attempt_is_told_when_to_retry() {
        let clock = HandClock::new();
        let limiter = limiter(
            RateLimit::per(2, Duration::from_secs(10)).with_burst(3),
            &clock,
        );
        for attempt in 1..=3 {
            assert!(
                limiter.acquire("client:a").await.is_ok(),
                "attempt {attempt} is within the burst"
            );
        }
        assert_eq!(
            retry_after(limiter.acquire("client:a").await),
            Duration::from_secs(5)
        );
    }

    #[tokio::test]
    async fn a_forgiven_attempt_is_given_back_and_never_more() {
        let clock = HandClock::new();
        let limiter = limiter(RateLimit::per(2, Duration::from_secs(10)), &clock);
        limiter.acquire("k").await.expect("first");
        limiter.acquire("k").await.expect("second");
        limiter.forgive("k").await.expect("forgiven");
        limiter
            .acquire("k")
            .await
            .expect("the forgiven attempt again");
        assert_eq!(
            retry_after(limiter.acquire("k").await),
            Duration::from_secs(5)
        );

        for _ in 0..5 {
            limiter.forgive("k").await.expect("forgiven");
        }
        assert_eq!(limiter.tracked_keys(), 0, "a full allowance is forgotten");
        limiter.acquire("k").await.expect("first");
        limiter.acquire("k").await.expect("second");
        assert!(
            limiter.acquire("k").await.is_err(),
            "forgiving more than was spent banks nothing"
        );
        limiter.forgive("never seen").await.expect("a no-op");
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[tokio::test]
    async fn the_allowance_refills_as_the_clock_advances() {
        let clock = HandClock::new();
        let limiter = limiter(RateLimit::per(2, Duration::from_secs(10)), &clock);
        limiter.acquire("k").await.expect("first");
        limiter.acquire("k").await.expect("second");
        assert!(limiter.acquire("k").await.is_err());

        clock.advance(Duration::from_secs(4));
        assert_eq!(
            retry_after(limiter.acquire("k").await),
            Duration::from_secs(1)
        );
        clock.advance(Duration::from_secs(1));
        limiter
            .acquire("k")
            .await
            .expect("one interval later, one more");
        assert!(limiter.acquire("k").await.is_err());

        clock.advance(Duration::from_secs(10));
        limiter.acquire("k").await.expect("refilled");
        limiter.acquire("k").await.expect("refilled to the burst");
    }

    #[tokio::test]
    async fn refusals_do_not_use_up_allowance() {
        let clock = HandClock::new();
        let limiter = limiter(RateLimit::per(1, Duration::from_secs(1)), &clock);
        limiter.acquire("k").await.expect("first");
        for _ in 0..50 {
            assert!(limiter.acquire("k").await.is_err());
        }
        clock.advance(Duration::from_secs(1));
        limiter
            .acquire("k")
            .await
            .expect("hammering while refused does not push the retry time back");
    }

    #[tokio::test]
    async fn keys_are_counted_independently() {
        let clock = HandClock::new();
        let limiter = limiter(RateLimit::per(1, Duration::from_secs(60)), &clock);
        limiter.acquire("client:a").await.expect("a's first");
        assert!(limiter.acquire("client:a").await.is_err());
        limiter
            .acquire("client:b")
            .await
            .expect("b is not charged for a");
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten() {
        let clock = HandClock::new();
        let limiter = limiter(RateLimit::per(5, Duration::from_secs(10)), &clock);
        for key in ["a", "b", "c"] {
            limiter.acquire(key).await.expect("allowed");
        }
        assert_eq!(limiter.tracked_keys(), 3);

        clock.advance(Duration::from_secs(10));
        limiter.acquire("d").await.expect("allowed");
        assert_eq!(limiter.tracked_keys(), 1, "only the key just seen is kept");
    }

    #[tokio::test]
    async fn memory_stays_bounded_under_a_flood_of_new_keys() {
        let clock = HandClock::new();
        let limiter =
            limiter(RateLimit::per(1, Duration::from_secs(3_600)), &clock).with_max_keys(100);
        for n in 0..1_000 {
            clock.advance(Duration::from_millis(1));
            limiter
                .acquire(&format!("client:{n}"))
                .await
                .expect("each new key has its allowance");
        }
        assert!(limiter.tracked_keys() <= 100, "{}", limiter.tracked_keys());
        assert!(
            limiter.acquire("client:999").await.is_err(),
            "the most recent keys are still limited"
        );
    }

    #[test]
    fn unusable_limits_are_refused() {
        assert!(InMemoryRateLimiter::new(RateLimit::per(0, Duration::from_secs(1))).is_err());
        assert!(InMemoryRateLimiter::new(RateLimit::per(1, Duration::ZERO)).is_err());
        assert!(
            InMemoryRateLimiter::new(RateLimit::per(1, Duration::from_secs(1)).with_burst(0))
                .is_err()
        );
    }
}
