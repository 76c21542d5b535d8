//! Retries of transient failures with exponential backoff and full jitter,
//! under a budget shared by a whole run, and a limit on requests in flight.

use crate::{ErrorClass, ProviderError};
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts for one call, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Retries allowed across a whole run: when a service is down, fail
    /// soon instead of retrying every call to its limit.
    pub budget: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            budget: 200,
        }
    }
}

/// Runs calls, retrying the transient failures. Clones share one budget:
/// a run creates one and hands it to every provider.
#[derive(Debug, Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    budget: Arc<AtomicU32>,
    retries: Arc<AtomicU32>,
    seed: Arc<AtomicU64>,
}

impl Retrier {
    pub fn new(policy: RetryPolicy) -> Retrier {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
            | 1;
        Retrier {
            policy,
            budget: Arc::new(AtomicU32::new(policy.budget)),
            retries: Arc::new(AtomicU32::new(0)),
            seed: Arc::new(AtomicU64::new(seed)),
        }
    }

    /// A retrier with the default policy.
    pub fn default_policy() -> Retrier {
        Retrier::new(RetryPolicy::default())
    }

    /// Retries made so far, across the run (every clone).
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    fn take_budget(&self) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// A random number (xorshift), for jitter.
    fn random(&self) -> u64 {
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        x
    }

    /// The delay before retry `attempt` (1 for the first retry): a random
    /// duration between zero and the exponential ceiling ("full jitter").
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .policy
            .base_delay
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.policy.max_delay);
        let millis = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(self.random() % (millis + 1))
    }

    /// Runs `call`, retrying while it fails with a transient error, the
    /// attempts for this call last and the run's budget allows. `retryable`
    /// may widen what counts as transient for this call (an IAM principal not
    /// yet visible right after it was created, say).
    pub async fn run<T, F, Fut>(
        &self,
        mut call: F,
        retryable: impl Fn(&ProviderError) -> bool,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let transient = error.class == ErrorClass::Transient || retryable(&error);
                    if !transient || attempt >= self.policy.max_attempts || !self.take_budget() {
                        return Err(error);
                    }
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// A limit on requests in flight to one provider.
#[derive(Debug, Clone)]
pub struct Limiter {
    permits: Arc<tokio::sync::Semaphore>,
}

impl Limiter {
    pub fn new(in_flight: usize) -> Limiter {
        Limiter {
            permits: Arc::new(tokio::sync::Semaphore::new(in_flight.max(1))),
        }
    }

    /// Waits for a slot; the request may go while the permit lives.
    pub async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        // The semaphore is never closed, so acquiring cannot fail.
        loop {
            if let Ok(permit) = self.permits.acquire().await {
                return permit;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn quick(budget: u32) -> Retrier {
        Retrier::new(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            budget,
        })
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_permanent_ones_are_not() {
        let retrier = quick(100);
        let calls = AtomicUsize::new(0);
        let result = retrier
            .run(
                || async {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    if n < 2 {
                        Err(ProviderError::new(
                            ErrorClass::Transient,
                            Some("Throttling"),
                            "slow down",
                        ))
                    } else {
                        Ok(n)
                    }
                },
                |_| false,
            )
            .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(retrier.retries(), 2);

        let calls = AtomicUsize::new(0);
        let result: Result<(), _> = retrier
            .run(
                || async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Err(ProviderError::permanent("access denied"))
                },
                |_| false,
            )
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn attempts_and_the_run_budget_are_bounded() {
        let retrier = quick(3);
        let calls = AtomicUsize::new(0);
        let always_throttled = || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(ProviderError::new(ErrorClass::Transient, None, "throttled"))
        };
        assert!(retrier.run(always_throttled, |_| false).await.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 4, "max_attempts");
        calls.store(0, Ordering::Relaxed);
        let always_throttled = || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(ProviderError::new(ErrorClass::Transient, None, "throttled"))
        };
        assert!(retrier.run(always_throttled, |_| false).await.is_err());
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "the budget of 3 retries was spent"
        );
    }

    #[test]
    fn jitter_stays_under_the_exponential_ceiling() {
        let retrier = quick(1);
        for attempt in 1..10 {
            let ceiling = Duration::from_millis(1)
                .saturating_mul(1 << attempt)
                .min(Duration::from_millis(4));
            assert!(retrier.delay(attempt) <= ceiling);
        }
    }
}
