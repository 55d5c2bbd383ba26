//! Retrying outside failures: exponential backoff from 100 ms to 30 s, for at most the
//! pipeline's `retry_timeout_ms`, then the error is returned (the pipeline fails loudly).

use std::time::{Duration, Instant};

use crate::error::Error;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// The backoff state of one connector.
#[derive(Debug)]
pub(crate) struct Backoff {
    timeout: Duration,
    /// When the current run of failures began (`None`: not failing).
    since: Option<Instant>,
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new(timeout: Duration) -> Backoff {
        Backoff {
            timeout,
            since: None,
            delay: FIRST_DELAY,
        }
    }

    /// After a failure: how long to wait before trying again, or the error back if it is
    /// not retriable or the failures have lasted past the timeout.
    pub(crate) fn next(&mut self, error: Error) -> Result<(Duration, Error), Error> {
        if !error.is_retriable() {
            return Err(error);
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.timeout {
            return Err(Error::Unavailable {
                what: "gave up".into(),
                reason: format!("still failing after {:?} of retries: {error}", self.timeout),
            });
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Ok((delay, error))
    }

    /// After a success: the next failure starts a new run.
    pub(crate) fn reset(&mut self) {
        self.since = None;
        self.delay = FIRST_DELAY;
    }
}

/// Waits out a retriable failure of a connector (or returns the error, marking it failed).
pub(crate) async fn wait(
    stats: &super::stats::ConnectorStats,
    backoff: &mut Backoff,
    error: Error,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Error> {
    use super::stats::State;
    let (delay, error) = match backoff.next(error) {
        Ok(next) => next,
        Err(e) => {
            stats.set(State::Failed(e.to_string()));
            return Err(e);
        }
    };
    tracing::warn!(role = stats.role, name = %stats.name, error = %error, ?delay, "failed; retrying from the last committed position");
    stats.set(State::Retrying(error.to_string()));
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_outside_failures_until_the_timeout_only() {
        // Proves: unavailable systems are retried with growing delays; other errors and
        // failures lasting past the timeout come straight back.
        let mut b = Backoff::new(Duration::from_millis(50));
        let (d1, _) = b.next(Error::unavailable("db", "refused")).unwrap();
        let (d2, _) = b.next(Error::unavailable("db", "refused")).unwrap();
        assert!(d2 > d1);
        assert!(b.next(Error::config("bad")).is_err());
        std::thread::sleep(Duration::from_millis(60));
        let err = b
            .next(Error::unavailable("db", "refused"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("still failing"), "{err}");
        b.reset();
        assert!(b.next(Error::unavailable("db", "refused")).is_ok());
    }
}
