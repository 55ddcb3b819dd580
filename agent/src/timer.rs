//! A deadline timer on its own timerfd: the driver's wait for the core's next deadline.
//!
//! Why not `tokio::time`: tokio's timer wheel files a deadline by the bits in which it
//! differs from the wheel's current tick, so a deadline only a few milliseconds ahead
//! that crosses a 64 ms boundary lands in the second level, and the runtime wakes at the
//! slot's start to move it down, then again at the deadline. The driver's next deadline
//! is always 25–75 ms ahead, so it crossed such a boundary about every other beat. A
//! timerfd wakes the process once, at the deadline, through the same epoll as the
//! sockets. (quinn's connection timers stay on tokio's wheel: tried on timerfds, the
//! `timerfd_settime` quinn's many re-arms cost more CPU than the wake-ups they saved;
//! docs/benchmarks.md has the figures.)
//!
//! Deadlines are rounded up to the next whole millisecond of a process-wide epoch, as
//! tokio does.
//!
//! This module only wakes; it never reads a clock for a decision (the callers compare
//! `clock::now()` with their deadlines themselves) and owns nothing but its fd.

use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// One deadline on a timerfd (CLOCK_MONOTONIC, the clock of [`Instant`]). Armed by
/// [`set`](Self::set); [`poll_expired`](Self::poll_expired) is ready once it passed.
#[derive(Debug)]
pub struct Deadline {
    fd: AsyncFd<OwnedFd>,
    armed: Option<Instant>,
}

impl Deadline {
    /// A disarmed timer. Needs a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(Self {
            fd: crate::net::register(fd, Interest::READABLE)?,
            armed: None,
        })
    }

    /// Arms the timer for `at` (at once if `at` has passed), replacing any earlier
    /// setting. Setting the same deadline again costs nothing.
    pub fn set(&mut self, at: Instant) -> io::Result<()> {
        let at = quantize(at);
        if self.armed == Some(at) {
            return Ok(());
        }
        // Relative: `Instant` does not expose its clock reading. A zero value would
        // disarm the timer, so a passed deadline fires after 1 ns.
        let after = at
            .saturating_duration_since(crate::clock::now())
            .max(Duration::from_nanos(1));
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: Timespec {
                tv_sec: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: after.subsec_nanos().into(),
            },
        };
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        self.armed = Some(at);
        Ok(())
    }

    /// Ready once the armed deadline passed (then disarmed); pending while disarmed.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed.is_none() {
            return Poll::Pending;
        }
        loop {
            let Ok(mut guard) = ready!(self.fd.poll_read_ready(cx)) else {
                // The reactor is gone (the runtime shuts down): nothing will wake us.
                return Poll::Pending;
            };
            let mut count = [0u8; 8];
            match rustix::io::read(self.fd.get_ref(), &mut count) {
                Ok(_) => {
                    self.armed = None;
                    return Poll::Ready(());
                }
                Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                // A timerfd read fails only with EAGAIN (not expired yet) or on a
                // broken fd; waking is the safe answer, the caller checks the clock.
                Err(_) => {
                    self.armed = None;
                    return Poll::Ready(());
                }
            }
        }
    }

    /// Waits until `at` (see [`set`](Self::set)). Should the timerfd refuse the setting
    /// (it cannot, for a deadline this computed), tokio's timer stands in.
    pub async fn until(&mut self, at: Instant) {
        if let Err(e) = self.set(at) {
            tracing::debug!("timerfd not armed ({e}); tokio's timer stands in");
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        poll_fn(|cx| self.poll_expired(cx)).await;
    }
}

/// `at`, rounded up to a whole millisecond after the process's timer epoch.
fn quantize(at: Instant) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(crate::clock::now);
    let Some(since) = at.checked_duration_since(epoch) else {
        return at;
    };
    let ms = u64::try_from(since.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    epoch.checked_add(Duration::from_millis(ms)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// It fires at the deadline, not before; re-arming replaces the deadline; a passed
    /// deadline fires at once; a disarmed timer never does.
    #[test]
    fn fires_at_the_deadline_and_rearms() {
        rt().block_on(async {
            let mut d = Deadline::new().unwrap();
            let t0 = crate::clock::now();
            d.until(t0 + Duration::from_millis(30)).await;
            assert!(crate::clock::now() >= t0 + Duration::from_millis(30));
            // Re-armed later before it fires: the later deadline holds.
            d.set(crate::clock::now() + Duration::from_millis(5))
                .unwrap();
            let later = crate::clock::now() + Duration::from_millis(40);
            d.until(later).await;
            assert!(crate::clock::now() >= later);
            // A deadline in the past fires at once.
            d.until(t0).await;
            // Disarmed: pending.
            let pending =
                tokio::time::timeout(Duration::from_millis(20), poll_fn(|cx| d.poll_expired(cx)))
                    .await;
            assert!(pending.is_err());
        });
    }
}
