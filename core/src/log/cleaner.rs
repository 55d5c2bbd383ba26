//! The background thread that flushes interval-durability partitions, aborts transactions
//! past their timeout and runs retention and compaction. It owns no data: each pass takes a snapshot of the topics and works on
//! partitions through their own locks, so it never holds up appends or reads.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::dir::LogInner;

/// Signals the background thread to stop and waits for it.
pub(crate) struct Background {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Background {
    pub fn start(
        inner: std::sync::Weak<LogInner>,
        cleaner_interval: Duration,
        tick: Duration,
    ) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sluice-log-background".into())
            .spawn(move || {
                let mut last_clean = Instant::now();
                loop {
                    {
                        let (lock, cvar) = &*thread_stop;
                        let mut stopped = lock.lock();
                        if !*stopped {
                            cvar.wait_for(&mut stopped, tick);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    let Some(inner) = inner.upgrade() else { return };
                    inner.flush_due();
                    inner.expire_transactions();
                    if last_clean.elapsed() >= cleaner_interval {
                        last_clean = Instant::now();
                        inner.clean_all();
                    }
                }
            })?;
        Ok(Background {
            stop,
            handle: Some(handle),
        })
    }

    pub fn stop(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock() = true;
        cvar.notify_all();
        if let Some(handle) = self.handle.take()
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}
