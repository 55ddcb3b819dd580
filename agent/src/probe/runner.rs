//! A long-lived worker thread per check, and the timeout around each blocking job.
//!
//! Owns: the worker thread and the "is a job still stuck" flag. A job that does not
//! return within its timeout is reported [`Outcome::Hung`], and while it stays stuck
//! every later run is [`Outcome::StillHung`] without starting anything: a hung NFS mount
//! costs one blocked thread, never one more per interval. When the stuck job finally
//! returns, the worker takes jobs again.
//!
//! Must never: block its caller beyond the timeout, start a second thread for a check,
//! or read a clock other than through [`crate::clock`].

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Checks do little on their own stack (a syscall, a small buffer); the default 2 MiB
/// per thread would be most of a small agent's memory.
const STACK_SIZE: usize = 256 * 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// What became of one [`Worker::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The job returned in time.
    Done(T),
    /// The job did not return within the timeout; it keeps running on the worker, and
    /// its result will be dropped.
    Hung,
    /// An earlier job is still stuck, so this one was not started.
    StillHung,
}

/// One worker thread that runs a check's blocking jobs, one at a time.
///
/// Dropping the `Worker` lets the thread end once its current job (if any) returns.
#[derive(Debug)]
pub struct Worker {
    jobs: mpsc::Sender<Job>,
    /// Set while a job runs; cleared by the worker before it hands the result back, so a
    /// caller that got `Done` never sees its next run refused.
    busy: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the thread `quorate-<name>` (Linux shows the first 15 bytes).
    pub fn spawn(name: &str) -> io::Result<Worker> {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name(format!("quorate-{name}"))
            .stack_size(STACK_SIZE)
            .spawn(move || {
                // Ends when the Worker (the only sender) is dropped.
                while let Ok(job) = rx.recv() {
                    job();
                }
            })?;
        Ok(Worker {
            jobs,
            busy: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Runs `job` on the worker and waits for it at most `timeout`.
    ///
    /// A job that panics panics the caller, as if it had run inline (the worker itself
    /// survives).
    pub fn run<T, F>(&self, timeout: Duration, job: F) -> Outcome<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Outcome::StillHung;
        }
        // A fresh channel per job: the result of a job given up on lands in a channel
        // nobody reads, never in the next caller's.
        let (done_tx, done_rx) = mpsc::sync_channel::<thread::Result<T>>(1);
        let busy = Arc::clone(&self.busy);
        let wrapped: Job = Box::new(move || {
            // Catch the panic so the worker thread stays alive for the next job; the
            // caller re-raises it.
            let result = panic::catch_unwind(AssertUnwindSafe(job));
            busy.store(false, Ordering::Release);
            // The caller may have timed out and gone; then the result is not wanted.
            let _ = done_tx.send(result);
        });
        if self.jobs.send(wrapped).is_err() {
            // Cannot happen while `self` lives: the thread only ends when `jobs` is
            // dropped, and it catches every panic. Report it as a failure, not a pass.
            self.busy.store(false, Ordering::Release);
            return Outcome::Hung;
        }
        match done_rx.recv_timeout(timeout) {
            Ok(Ok(value)) => Outcome::Done(value),
            Ok(Err(payload)) => panic::resume_unwind(payload),
            Err(mpsc::RecvTimeoutError::Timeout) => Outcome::Hung,
            // The job was dropped without running, which only a dead worker does; see
            // above.
            Err(mpsc::RecvTimeoutError::Disconnected) => Outcome::Hung,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads of this process whose name starts with `prefix` (as Linux truncates it).
    fn threads_named(prefix: &str) -> usize {
        let prefix = &prefix[..prefix.len().min(15)];
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == prefix)
            .count()
    }

    #[test]
    fn fast_job_is_done() {
        let w = Worker::spawn("rt-fast").unwrap();
        assert_eq!(w.run(Duration::from_secs(5), || 7), Outcome::Done(7));
        assert_eq!(
            w.run(Duration::from_secs(5), || "again"),
            Outcome::Done("again")
        );
    }

    #[test]
    fn stuck_job_is_hung_then_still_hung_until_it_returns() {
        let w = Worker::spawn("rt-stk").unwrap();
        // The thread names itself once it runs; a first job makes sure it has.
        assert_eq!(w.run(Duration::from_secs(5), || ()), Outcome::Done(()));
        assert_eq!(threads_named("quorate-rt-stk"), 1);
        let (release, wait) = mpsc::channel::<()>();
        let short = Duration::from_millis(50);

        assert_eq!(
            w.run(short, move || wait.recv().is_ok()),
            Outcome::Hung,
            "a job blocked on a channel does not return in time"
        );
        let started = Arc::new(AtomicBool::new(false));
        for _ in 0..5 {
            let started = Arc::clone(&started);
            let outcome = w.run(short, move || started.store(true, Ordering::SeqCst));
            assert_eq!(outcome, Outcome::StillHung);
        }
        assert_eq!(
            threads_named("quorate-rt-stk"),
            1,
            "no thread per stuck run"
        );

        release.send(()).unwrap();
        // The stuck job returns soon after; the worker then takes jobs again.
        let mut outcome = Outcome::StillHung;
        for _ in 0..200 {
            outcome = w.run(Duration::from_secs(5), || 1);
            if outcome != Outcome::StillHung {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(outcome, Outcome::Done(1));
        assert!(
            !started.load(Ordering::SeqCst),
            "jobs refused as StillHung never run"
        );
        assert_eq!(threads_named("quorate-rt-stk"), 1);
    }

    #[test]
    fn done_is_never_followed_by_a_spurious_still_hung() {
        let w = Worker::spawn("rt-seq").unwrap();
        for i in 0..1000 {
            assert_eq!(w.run(Duration::from_secs(5), move || i), Outcome::Done(i));
        }
    }

    #[test]
    fn a_panicking_job_panics_the_caller_and_the_worker_survives() {
        let w = Worker::spawn("rt-panic").unwrap();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            w.run(Duration::from_secs(5), || panic!("boom"))
        }));
        assert!(caught.is_err());
        assert_eq!(w.run(Duration::from_secs(5), || 2), Outcome::Done(2));
    }

    #[test]
    fn dropping_the_worker_ends_its_thread() {
        let w = Worker::spawn("rt-drop").unwrap();
        assert_eq!(w.run(Duration::from_secs(5), || ()), Outcome::Done(()));
        drop(w);
        for _ in 0..200 {
            if threads_named("quorate-rt-drop") == 0 {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("worker thread still alive after its Worker was dropped");
    }
}
