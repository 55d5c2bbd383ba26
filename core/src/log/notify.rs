//! Wakes readers waiting for new data (long polls) when any partition of the log grows.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A generation counter with a condition variable: appends bump it, readers wait for it to
/// move past what they saw. Async readers (the broker's long-polling Fetch) subscribe to a
/// watch channel that moves with it.
#[derive(Debug)]
pub struct Notifier {
    generation: Mutex<u64>,
    changed: Condvar,
    watch: tokio::sync::watch::Sender<u64>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            generation: Mutex::new(0),
            changed: Condvar::new(),
            watch: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Notifier {
    /// The current generation; pass it to [`wait_past`](Self::wait_past).
    pub fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Signals that data was appended.
    pub fn notify(&self) {
        let generation = {
            let mut g = self.generation.lock();
            *g += 1;
            *g
        };
        self.changed.notify_all();
        self.watch.send_replace(generation);
    }

    /// A receiver whose `changed()` completes at the next append. Subscribe *before*
    /// reading, so an append between the read and the wait is not missed.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.watch.subscribe()
    }

    /// Blocks until the generation moves past `seen` or `timeout` passes; returns whether it
    /// moved.
    pub fn wait_past(&self, seen: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut generation = self.generation.lock();
        while *generation == seen {
            if self
                .changed
                .wait_until(&mut generation, deadline)
                .timed_out()
            {
                return *generation != seen;
            }
        }
        true
    }
}
