//! Wakes readers waiting for new data (long polls) when any partition of the log grows.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A generation counter with a condition variable: appends bump it, readers wait for it to
/// move past what they saw.
#[derive(Debug, Default)]
pub struct Notifier {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Notifier {
    /// The current generation; pass it to [`wait_past`](Self::wait_past).
    pub fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Signals that data was appended.
    pub fn notify(&self) {
        *self.generation.lock() += 1;
        self.changed.notify_all();
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
