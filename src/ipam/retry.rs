//! The one retry policy of every provider: exponential backoff with jitter for idempotent
//! requests, honouring a server's `Retry-After`. Writes are only ever sent again when they
//! certainly never left (see [`RetryPolicy::unsent`]).

use std::future::Future;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::provider::IpamError;

/// Longest wait a server's `Retry-After` may impose on one retry (a stuck sync is worse).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How often and how patiently a provider repeats a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each later one, plus up to the same again as jitter.
    pub first_delay: Duration,
    /// The doubling stops at this wait (jitter comes on top).
    pub max_delay: Duration,
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_factor(2.0)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .with_jitter()
    }

    /// The wait before attempt `attempt + 1` (the first retry is `attempt` 1) for a loop that
    /// cannot be written as one request: the same backoff and jitter, or the server's
    /// `Retry-After` (bounded by [`MAX_RETRY_AFTER`]).
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(MAX_RETRY_AFTER);
        }
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_factor(2.0)
            .with_max_delay(self.max_delay)
            .with_max_times(usize::MAX)
            .with_jitter()
            .build();
        delays
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay)
    }

    /// Runs an idempotent request (a GET), again after each transient failure while attempts
    /// remain; a server's `Retry-After` replaces the computed wait.
    pub async fn idempotent<T, F, Fut>(&self, request: F) -> Result<T, IpamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, IpamError>>,
    {
        request
            .retry(self.backoff())
            .when(IpamError::is_transient)
            .adjust(|error, delay| {
                delay.map(|d| error.retry_after().map_or(d, |r| r.min(MAX_RETRY_AFTER)))
            })
            .await
    }

    /// Runs a non-idempotent request (a write), again only while `unsent` says the failed
    /// attempt certainly never reached the server; anything else may have been applied.
    pub async fn unsent<T, E, F, Fut>(
        &self,
        request: F,
        unsent: impl FnMut(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        request.retry(self.backoff()).when(unsent).await
    }
}

/// The wait a `Retry-After` header asks for, given in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::header::HeaderValue;

    use super::*;

    const QUICK: RetryPolicy = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    };

    fn server_error(retry_after: Option<Duration>) -> IpamError {
        IpamError::Server {
            server: "s".into(),
            detail: "d".into(),
            retry_after,
        }
    }

    /// How many times `QUICK` calls an operation that always fails with `error()`.
    async fn calls_until_it_gives_up(error: fn() -> IpamError) -> u32 {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = QUICK
            .idempotent(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(error())
            })
            .await;
        assert!(result.is_err());
        calls.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn transient_failures_are_retried_up_to_the_attempts() {
        assert_eq!(calls_until_it_gives_up(|| server_error(None)).await, 3);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let not_found = || IpamError::NotFound {
            server: "s".into(),
            detail: "d".into(),
        };
        assert_eq!(calls_until_it_gives_up(not_found).await, 1);
    }

    #[tokio::test]
    async fn retry_after_sets_the_wait() {
        let started = std::time::Instant::now();
        let calls = AtomicU32::new(0);
        let result = QUICK
            .idempotent(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(server_error(Some(Duration::from_millis(150))))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result, Ok(7));
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn writes_go_again_only_when_unsent() {
        let calls = AtomicU32::new(0);
        let result: Result<(), bool> = QUICK
            .unsent(
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    Err(n == 0)
                },
                |unsent| *unsent,
            )
            .await;
        assert_eq!(result, Err(false));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn waits_double_with_jitter_up_to_the_cap_and_follow_retry_after() {
        let p = RetryPolicy {
            attempts: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
        };
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 800), (9, 800)] {
            let w = p.wait(attempt, None).as_millis() as u64;
            // Jitter adds up to the same again on top of the doubled wait.
            assert!((base..=2 * base).contains(&w), "attempt {attempt}: {w} ms");
        }
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(p.wait(1, Some(Duration::from_secs(3600))), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
