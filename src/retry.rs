//! The one retry policy: exponential backoff with jitter, honouring a wait
//! the other side asks for, for at most a given time. The delivery engine
//! retries passing send failures with it, the S3 source what the SDK
//! does not retry itself (a body that fails part way), and GitHub's client
//! its API calls (rate limits included).

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable as _};

/// Exponential backoff with jitter from `min_delay` to `max_delay`, for at
/// most `retry_for` from the first failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retry_for: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    #[must_use]
    pub fn new(retry_for: Duration) -> Self {
        Self {
            retry_for,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }

    #[must_use]
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }

    /// The wait before the next try, or `None` to give up: at least what
    /// the other side `asked` for (`Retry-After`), and never past
    /// `deadline`.
    #[must_use]
    pub fn next_wait(
        &self,
        asked: Duration,
        backoff: Option<Duration>,
        deadline: Instant,
    ) -> Option<Duration> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || asked > left {
            return None;
        }
        Some(backoff?.max(asked).min(left))
    }

    /// Runs `op` until it succeeds, fails in a way `transient` says will
    /// not pass, or the retry time is up; each retry is logged with `what`.
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        op: F,
        transient: impl FnMut(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        self.run_asked(what, op, transient, |_| Duration::ZERO)
            .await
    }

    /// As [`RetryPolicy::run`], waiting at least what each failure `asked`
    /// for (a `Retry-After`, a rate limit's reset).
    pub async fn run_asked<T, E, F, Fut>(
        &self,
        what: &str,
        op: F,
        transient: impl FnMut(&E) -> bool,
        asked: impl Fn(&E) -> Duration,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let deadline = Instant::now() + self.retry_for;
        op.retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(transient)
            .adjust(|e, backoff| self.next_wait(asked(e), backoff, deadline))
            .notify(|e, wait| {
                tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "{what}: trying again");
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_asked_for_is_honoured_and_capped_by_the_retry_time() {
        let p = RetryPolicy::new(Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(30);
        let backoff = Some(Duration::from_millis(250));
        assert_eq!(
            p.next_wait(Duration::from_secs(3), backoff, deadline),
            Some(Duration::from_secs(3)),
            "Retry-After over the backoff"
        );
        let w = p.next_wait(Duration::ZERO, backoff, deadline).unwrap();
        assert_eq!(w, Duration::from_millis(250), "the backoff alone");
        assert_eq!(
            p.next_wait(Duration::from_secs(31), backoff, deadline),
            None,
            "a wait past the retry time gives up now"
        );
        let big = p
            .next_wait(Duration::ZERO, Some(Duration::from_secs(300)), deadline)
            .unwrap();
        assert!(big <= Duration::from_secs(30), "never past the deadline");
        assert_eq!(
            p.next_wait(Duration::ZERO, backoff, Instant::now()),
            None,
            "time is up"
        );
    }

    /// Runs an operation that fails with `errors` in turn, then succeeds;
    /// only "reset" may pass. Gives the outcome and the number of tries.
    async fn attempt(errors: &[&str]) -> (Result<u32, String>, u32) {
        let p = RetryPolicy {
            retry_for: Duration::from_secs(60),
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
        };
        let mut tries = 0;
        let r = p
            .run(
                "test",
                || {
                    tries += 1;
                    let outcome = errors
                        .get(tries as usize - 1)
                        .map_or(Ok(tries), |e| Err((*e).to_owned()));
                    async move { outcome }
                },
                |e: &String| e == "reset",
            )
            .await;
        (r, tries)
    }

    #[tokio::test]
    async fn run_retries_what_passes_and_stops_at_what_does_not() {
        assert_eq!(attempt(&["reset", "reset"]).await, (Ok(3), 3));
        assert_eq!(
            attempt(&["reset", "denied", "reset"]).await,
            (Err("denied".to_owned()), 2)
        );
    }
}
