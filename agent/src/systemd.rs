//! What the agent tells systemd (`Type=notify`): READY, STATUS, RELOADING, STOPPING and
//! WATCHDOG.
//!
//! Owns: when each notification is due. READY is sent once the agent has heard a majority
//! of its voters and its first round of checks is done (so right after `systemctl start`
//! returns, `/ready` answers), or one election timeout after start when it has heard no
//! majority (a lone first node must still start), or at the latest [`READY_AT_THE_LATEST`]
//! after start (a slow check must not fail the start). STATUS is sent when the role or
//! term changes. WATCHDOG is sent from
//! the driver loop itself, so a wedged driver — not just a live process — misses its
//! pings and systemd restarts it.
//!
//! Must never block or fail the agent. The notify socket is a unix datagram socket whose
//! queue is short (`net.unix.max_dgram_qlen`, 10 by default): a send blocks once systemd
//! falls behind reading it, so sends happen on a thread of their own (`quorate-notify`)
//! fed by a small bounded queue, and a message that does not fit is dropped (a missed
//! ping is what a wedged agent would cause anyway). Without `NOTIFY_SOCKET` (a terminal,
//! a test) nothing is started and every call does nothing.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// One notification, owned so it can cross to the sending thread.
#[derive(Debug)]
enum Message {
    Ready,
    Status(String),
    Watchdog,
    Reloading,
    Stopping,
}

/// The sending end of the `quorate-notify` thread; `None` outside systemd.
#[derive(Debug, Clone)]
pub struct Sender(Option<mpsc::SyncSender<Vec<Message>>>);

impl Sender {
    /// Starts the sending thread when systemd gave a notify socket.
    pub fn start() -> Self {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Sender(None);
        }
        let (tx, rx) = mpsc::sync_channel::<Vec<Message>>(16);
        let spawned = std::thread::Builder::new()
            .name("quorate-notify".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for batch in rx {
                    let states: Vec<NotifyState<'_>> = batch
                        .iter()
                        .map(|m| match m {
                            Message::Ready => NotifyState::Ready,
                            Message::Status(s) => NotifyState::Status(s),
                            Message::Watchdog => NotifyState::Watchdog,
                            Message::Reloading => NotifyState::Reloading,
                            Message::Stopping => NotifyState::Stopping,
                        })
                        .collect();
                    if let Err(e) = sd_notify::notify(&states) {
                        tracing::debug!("cannot notify systemd: {e}");
                    }
                }
            });
        match spawned {
            Ok(_) => Sender(Some(tx)),
            Err(e) => {
                tracing::warn!("cannot start the systemd notification thread: {e}");
                Sender(None)
            }
        }
    }

    fn send(&self, batch: Vec<Message>) {
        if let (Some(tx), false) = (&self.0, batch.is_empty()) {
            // Full: systemd is not reading; dropping beats blocking the driver.
            let _ = tx.try_send(batch);
        }
    }

    /// `systemctl reload` in progress: systemd shows `reloading` until [`reloaded`].
    ///
    /// [`reloaded`]: Self::reloaded
    pub fn reloading(&self) {
        self.send(vec![Message::Reloading]);
    }

    /// The reload is over (applied or refused); the service is ready again.
    pub fn reloaded(&self) {
        self.send(vec![Message::Ready]);
    }

    /// The agent is leaving: systemd shows `deactivating` while it hands over.
    pub fn stopping(&self) {
        self.send(vec![
            Message::Stopping,
            Message::Status("leaving the cluster".into()),
        ]);
    }
}

/// READY goes out by then whatever the checks say: systemd's start timeout (90 s by
/// default) must not fail a start because a check is slow; `/ready` keeps telling the
/// balancer the truth.
pub const READY_AT_THE_LATEST: Duration = Duration::from_secs(30);

/// How far the agent has come since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// It has heard a majority of its voters since it started.
    pub joined: bool,
    /// Its first round of checks is done.
    pub checked: bool,
}

/// Notification state owned by the driver. Pure bookkeeping plus one syscall per send.
#[derive(Debug)]
pub struct Notifier {
    sender: Sender,
    started: Instant,
    ready_after: Duration,
    ready: bool,
    /// `ready_after` has passed: the next READY deadline is the latest one.
    waited: bool,
    status: Option<Status>,
    /// Half of `WatchdogSec` when systemd asked for pings.
    watchdog: Option<Duration>,
    last_ping: Instant,
}

impl Notifier {
    /// `ready_after`: how long to wait for a majority before declaring READY anyway.
    pub fn new(sender: Sender, now: Instant, ready_after: Duration) -> Self {
        Self {
            sender,
            started: now,
            ready_after,
            ready: false,
            waited: false,
            status: None,
            // systemd's advice (sd_watchdog_enabled(3)): ping at half the interval.
            watchdog: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_ping: now,
        }
    }

    /// Called after every turn of the driver loop.
    pub fn turn(&mut self, now: Instant, progress: Progress, status: Status) {
        let mut states = Vec::new();
        let up = now.saturating_duration_since(self.started);
        self.waited |= up >= self.ready_after;
        if !self.ready
            && (progress.joined && progress.checked
                || !progress.joined && up >= self.ready_after
                || up >= READY_AT_THE_LATEST)
        {
            self.ready = true;
            states.push(Message::Ready);
        }
        if self.ready && self.status != Some(status) {
            self.status = Some(status);
            states.push(Message::Status(status.to_string()));
        }
        if let Some(every) = self.watchdog
            && now.saturating_duration_since(self.last_ping) >= every
        {
            self.last_ping = now;
            states.push(Message::Watchdog);
        }
        self.sender.send(states);
    }

    /// When the driver must turn again at the latest for the next READY or ping.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ready = (!self.ready).then(|| {
            self.started
                + if self.waited {
                    READY_AT_THE_LATEST
                } else {
                    self.ready_after
                }
        });
        let ping = self.watchdog.map(|every| self.last_ping + every);
        match (ready, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    pub fn sender(&self) -> &Sender {
        &self.sender
    }
}

/// What `systemctl status quorate` shows on its `Status:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub role: proto::Role,
    pub term: u64,
    pub alive_voters: usize,
    pub voters: usize,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, term {}, {}/{} voters alive",
            self.role, self.term, self.alive_voters, self.voters
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_waits_for_a_majority_and_the_checks_or_the_election_timeout() {
        #[allow(clippy::disallowed_methods)] // a fixed origin for a pure test
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let s = Status {
            role: proto::Role::Secondary,
            term: 1,
            alive_voters: 1,
            voters: 3,
        };
        let (nothing, joined, done) = (
            Progress {
                joined: false,
                checked: false,
            },
            Progress {
                joined: true,
                checked: false,
            },
            Progress {
                joined: true,
                checked: true,
            },
        );
        let mut n = Notifier::new(Sender(None), t0, ms(450));
        n.turn(t0 + ms(100), nothing, s);
        assert!(!n.is_ready());
        assert_eq!(n.poll_timeout(), Some(t0 + ms(450)));
        // A majority, but checks pending: not yet, even past the election timeout.
        n.turn(t0 + ms(200), joined, s);
        n.turn(t0 + ms(2000), joined, s);
        assert!(!n.is_ready());
        // …and the loop is not woken again until the latest READY.
        assert_eq!(n.poll_timeout(), Some(t0 + READY_AT_THE_LATEST));
        n.turn(t0 + ms(2100), done, s);
        assert!(n.is_ready());

        // A lone node: READY one election timeout after start.
        let mut alone = Notifier::new(Sender(None), t0, ms(450));
        alone.turn(t0 + ms(449), nothing, s);
        assert!(!alone.is_ready());
        alone.turn(t0 + ms(450), nothing, s);
        assert!(alone.is_ready());

        // Checks that never finish do not fail the start.
        let mut slow = Notifier::new(Sender(None), t0, ms(450));
        slow.turn(t0 + READY_AT_THE_LATEST - ms(1), joined, s);
        assert!(!slow.is_ready());
        slow.turn(t0 + READY_AT_THE_LATEST, joined, s);
        assert!(slow.is_ready());
    }
}
