//! The TUI's connection to the cluster: one thread that stays subscribed to some member's
//! operator channel, forwards what it hears as [`ConnMsg`]s, and carries the operator's
//! commands.
//!
//! When the attached agent goes away (closed, or silent past [`SILENCE`], about a second:
//! agents send a keep-alive four times a second), it dials every member it learned from
//! the last snapshot ([`Members`]) at once and attaches to the first whose subscription
//! brings a snapshot ([`first_to_answer`]); the others are dropped. When every one fails,
//! it waits per [`Backoff`] and tries them all again. The screen meanwhile keeps the last
//! view, marked stale by its age, and says whom it is trying, then `reconnecting`.
//!
//! Owns: the thread, its private tokio runtime and the [`CtlClient`]s. Must never touch
//! the terminal or decide what to show: it reports, [`State`](super::state::State)
//! folds.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::task::Poll;
use std::time::Duration;

use proto::ctl::{CtlCommand, EventRecord};
use proto::status::ClusterStatus;
use quorate_agent::clock;
use quorate_agent::config::TlsPaths;
use quorate_agent::ctl::client::{
    CtlClient, CtlError, EventItem, Members, Outcome, SILENCE, Snapshot, Subscription, Update,
};
use quorate_agent::net::transport::Backoff;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use tokio::sync::mpsc;

use super::state::ConnStatus;

/// The most spent reading the journal on attaching; the live view matters more.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the connection thread tells the UI.
#[derive(Debug)]
pub enum ConnMsg {
    Status(ConnStatus),
    Snapshot(Box<ClusterStatus>),
    Event(EventRecord),
    /// A command's outcome: what was done, or why not.
    CommandResult(Result<String, String>),
}

/// The handle the UI keeps: commands go in; dropping it stops the thread.
pub struct Conn {
    commands: mpsc::UnboundedSender<CtlCommand>,
}

impl Conn {
    /// Starts the thread, attached first to `first`.
    pub fn start(
        first: SocketAddr,
        bind: Option<SocketAddr>,
        tls: TlsPaths,
        to_ui: std_mpsc::Sender<ConnMsg>,
    ) -> std::io::Result<Self> {
        let (commands, rx) = mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("quorate-conn".into())
            .spawn(move || rt.block_on(run(first, bind, tls, to_ui, rx)))?;
        Ok(Self { commands })
    }

    /// Sends a command to the attached agent; its outcome comes back as
    /// [`ConnMsg::CommandResult`].
    pub fn send(&self, command: CtlCommand) {
        // The thread only ends when the UI is gone.
        let _ = self.commands.send(command);
    }
}

/// Why a session with one agent ended.
enum Ended {
    /// The UI is gone: stop.
    Ui,
    Lost(String),
}

/// A subscription that has brought its first snapshot: what winning a round yields.
struct Attached {
    client: CtlClient,
    sub: Subscription,
    first: Snapshot,
}

async fn run(
    first: SocketAddr,
    bind: Option<SocketAddr>,
    tls: TlsPaths,
    to_ui: std_mpsc::Sender<ConnMsg>,
    mut commands: mpsc::UnboundedReceiver<CtlCommand>,
) {
    let mut rng = SmallRng::from_os_rng();
    let mut backoff = Backoff::default();
    let mut last: Option<ClusterStatus> = None;
    // Whom the next round dials: the configured agent alone until one has been attached.
    let mut round = vec![first];
    // The agent lost last, and why.
    let mut lost: Option<(SocketAddr, String)> = None;
    let mut attempt = 0u32;
    loop {
        let trying = ConnStatus::Connecting {
            to: describe_round(&round, last.as_ref()),
        };
        if to_ui.send(ConnMsg::Status(trying)).is_err() {
            return;
        }
        // Only the configured agent is dialed from the configured local address: the
        // others are other machines' addresses.
        let dial = first_to_answer(&round, |addr| {
            attach(addr, &tls, if addr == first { bind } else { None })
        });
        let Some(outcome) = refusing_commands(dial, &mut commands, &to_ui).await else {
            return;
        };
        match outcome {
            Ok((addr, attached)) => {
                backoff.reset();
                attempt = 0;
                let error = match session(attached, &to_ui, &mut commands, &mut last).await {
                    Ended::Ui => return,
                    Ended::Lost(error) => error,
                };
                // No wait after a loss: the other members are most likely fine.
                round = Members::after_losing(addr, last.as_ref()).order().to_vec();
                lost = Some((addr, error));
            }
            Err(failures) => {
                attempt += 1;
                let delay = backoff.next_delay(&mut rng);
                let (last_addr, error) = match &lost {
                    Some((addr, why)) => (*addr, format!("{why}; then {}", summary(&failures))),
                    None => (first, summary(&failures)),
                };
                let sent = to_ui.send(ConnMsg::Status(ConnStatus::Reconnecting {
                    last: name_of(last_addr, last.as_ref()),
                    attempt,
                    retry_at: clock::now() + delay,
                    error,
                }));
                if sent.is_err() {
                    return;
                }
                if refusing_commands(tokio::time::sleep(delay), &mut commands, &to_ui)
                    .await
                    .is_none()
                {
                    return;
                }
            }
        }
    }
}

/// Connects to `addr`, subscribes, and waits for the first snapshot: an agent counts as
/// attached only once it has shown its view.
async fn attach(
    addr: SocketAddr,
    tls: &TlsPaths,
    bind: Option<SocketAddr>,
) -> Result<Attached, CtlError> {
    let client = CtlClient::connect(addr, tls, bind).await?;
    let mut sub = client.subscribe().await?;
    let what = match sub.next_within(SILENCE).await? {
        Some(Update::Snapshot(first)) => {
            return Ok(Attached {
                client,
                sub,
                first: *first,
            });
        }
        Some(Update::Event(_)) => "an event before the first snapshot",
        None => "the subscription ended before the first snapshot",
    };
    Err(CtlError::Unexpected {
        addr,
        what: what.into(),
    })
}

/// Runs `dial` for every address of `addrs` at once. The first to succeed wins, with its
/// address; the others are dropped unfinished (a connection being set up is closed).
/// When every one fails: each address with its error, in the order of `addrs`.
async fn first_to_answer<T, E, Fut>(
    addrs: &[SocketAddr],
    dial: impl Fn(SocketAddr) -> Fut,
) -> Result<(SocketAddr, T), Vec<(SocketAddr, E)>>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut dials: Vec<Option<Pin<Box<Fut>>>> =
        addrs.iter().map(|&a| Some(Box::pin(dial(a)))).collect();
    let mut failed: Vec<Option<E>> = addrs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut running = false;
        for (i, slot) in dials.iter_mut().enumerate() {
            let Some(d) = slot else { continue };
            match d.as_mut().poll(cx) {
                Poll::Ready(Ok(t)) => return Poll::Ready(Ok((addrs[i], t))),
                Poll::Ready(Err(e)) => {
                    failed[i] = Some(e);
                    *slot = None;
                }
                Poll::Pending => running = true,
            }
        }
        if running {
            return Poll::Pending;
        }
        let errors = addrs
            .iter()
            .zip(std::mem::take(&mut failed))
            .filter_map(|(a, e)| Some((*a, e?)))
            .collect();
        Poll::Ready(Err(errors))
    })
    .await
}

/// Runs `work` while refusing every command typed meanwhile: not queued, because the
/// operator must see them fail rather than have them fire minutes later. `None` when the
/// UI is gone.
async fn refusing_commands<T>(
    work: impl Future<Output = T>,
    commands: &mut mpsc::UnboundedReceiver<CtlCommand>,
    to_ui: &std_mpsc::Sender<ConnMsg>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            cmd = commands.recv() => {
                cmd?;
                let refused = ConnMsg::CommandResult(Err(
                    "not connected to any agent; try again once reconnected".into(),
                ));
                to_ui.send(refused).ok()?;
            }
        }
    }
}

/// The node the last snapshot says is at `addr`, or the address.
fn name_of(addr: SocketAddr, last: Option<&ClusterStatus>) -> String {
    last.and_then(|s| {
        s.nodes
            .iter()
            .find(|n| n.addr.parse() == Ok(addr))
            .map(|n| n.node.clone())
    })
    .unwrap_or_else(|| addr.to_string())
}

/// Whom a round dials, for the header: `n1` or `any of n2, n3, n1`.
fn describe_round(round: &[SocketAddr], last: Option<&ClusterStatus>) -> String {
    let names: Vec<String> = round.iter().map(|&a| name_of(a, last)).collect();
    match names.as_slice() {
        [one] => one.clone(),
        _ => format!("any of {}", names.join(", ")),
    }
}

/// A failed round in one line: the most likely member's error, and how many failed.
fn summary(failures: &[(SocketAddr, CtlError)]) -> String {
    match failures {
        [] => "no member to try".into(),
        [(_, e)] => e.to_string(),
        [(_, e), ..] => format!("none of {} members answered ({e}, …)", failures.len()),
    }
}

/// One subscription to one agent, until it ends.
async fn session(
    attached: Attached,
    to_ui: &std_mpsc::Sender<ConnMsg>,
    commands: &mut mpsc::UnboundedReceiver<CtlCommand>,
    last: &mut Option<ClusterStatus>,
) -> Ended {
    let Attached {
        client,
        mut sub,
        first,
    } = attached;
    let connected = ConnMsg::Status(ConnStatus::Connected {
        to: client.addr().to_string(),
        since: clock::now(),
    });
    *last = Some(first.status.clone());
    if to_ui.send(connected).is_err()
        || to_ui
            .send(ConnMsg::Snapshot(Box::new(first.status)))
            .is_err()
    {
        return Ended::Ui;
    }
    // What happened before the TUI attached (the agent's journal), so the event log
    // is not empty after a restart or a reconnect; the state drops what it already has.
    // Subscribed first, so nothing that happens meanwhile is missed (it waits on the
    // subscription).
    if let Ok(mut history) = client.events(None, false).await {
        while let Ok(Ok(Some(EventItem::Event(e)))) =
            tokio::time::timeout(HISTORY_TIMEOUT, history.next()).await
        {
            if to_ui.send(ConnMsg::Event(e)).is_err() {
                return Ended::Ui;
            }
        }
    }
    loop {
        // The read is kept across commands: a frame half-read must not be dropped.
        let next = sub.next_within(SILENCE);
        tokio::pin!(next);
        let update = loop {
            tokio::select! {
                update = &mut next => break update,
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Ended::Ui };
                    let result = match client.command(cmd).await {
                        Ok(Outcome::Done(message)) => Ok(message),
                        Ok(Outcome::Refused(reason)) => Err(reason),
                        Err(e) => Err(e.to_string()),
                    };
                    if to_ui.send(ConnMsg::CommandResult(result)).is_err() {
                        return Ended::Ui;
                    }
                }
            }
        };
        let msg = match update {
            Ok(Some(Update::Snapshot(s))) => {
                *last = Some(s.status.clone());
                ConnMsg::Snapshot(Box::new(s.status))
            }
            Ok(Some(Update::Event(e))) => ConnMsg::Event(e),
            Ok(None) => {
                return Ended::Lost(format!(
                    "{}: the agent ended the subscription",
                    client.addr()
                ));
            }
            Err(e) => return Ended::Lost(e.to_string()),
        };
        if to_ui.send(msg).is_err() {
            return Ended::Ui;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::ui::fixtures;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Yields `n` times, then gives `result`: a dial that takes `n` turns of the runtime.
    async fn after(n: usize, result: Result<u16, String>) -> Result<u16, String> {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        result
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Sets its flag when dropped: shows that a losing dial is dropped, not left running.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_first_member_to_answer_wins_and_the_others_are_dropped() {
        let hanging_dropped = Arc::new(AtomicBool::new(false));
        let dial = |a: SocketAddr| {
            let flag = (a.port() == 1).then(|| DropFlag(hanging_dropped.clone()));
            async move {
                let _flag = flag;
                match a.port() {
                    // The lost agent: never answers.
                    1 => std::future::pending().await,
                    // Fails first…
                    2 => after(1, Err("refused".into())).await,
                    // …another answers later, a third later still.
                    3 => after(3, Ok(3)).await,
                    _ => after(6, Ok(4)).await,
                }
            }
        };
        let won = block_on(first_to_answer(&[addr(1), addr(2), addr(3), addr(4)], dial));
        assert_eq!(won, Ok((addr(3), 3)));
        assert!(
            hanging_dropped.load(Ordering::SeqCst),
            "the dial that never answered was left running"
        );
    }

    #[test]
    fn members_are_dialed_at_once_not_one_after_another() {
        // The first in order hangs: one at a time, the round would never get past it.
        let dial = |a: SocketAddr| async move {
            match a.port() {
                1 => std::future::pending().await,
                _ => Ok::<_, String>(a.port()),
            }
        };
        let won = block_on(first_to_answer(&[addr(1), addr(2)], dial));
        assert_eq!(won, Ok((addr(2), 2)));
    }

    #[test]
    fn when_every_member_fails_each_error_is_kept_in_order() {
        let dial = |a: SocketAddr| {
            // They fail in the order 2, 3, 1.
            let turns = [0, 3, 1, 2][usize::from(a.port())];
            after(turns, Err::<u16, _>(format!("{a} refused")))
        };
        let failed = block_on(first_to_answer(&[addr(1), addr(2), addr(3)], dial));
        assert_eq!(
            failed,
            Err(vec![
                (addr(1), "127.0.0.1:1 refused".to_string()),
                (addr(2), "127.0.0.1:2 refused".to_string()),
                (addr(3), "127.0.0.1:3 refused".to_string()),
            ])
        );
    }

    #[test]
    fn a_round_is_named_by_the_nodes_of_the_last_snapshot() {
        let status = fixtures::healthy();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let lost = a(&status.nodes[0].addr);
        let round = Members::after_losing(lost, Some(&status)).order().to_vec();
        assert_eq!(
            describe_round(&round, Some(&status)),
            "any of n2, n3, n1",
            "{round:?}"
        );
        // An address no snapshot names is shown as it is; a round of one without "any of".
        assert_eq!(
            describe_round(&[a("10.9.9.9:7700")], Some(&status)),
            "10.9.9.9:7700"
        );
        assert_eq!(name_of(lost, None), lost.to_string());
    }

    #[test]
    fn a_failed_round_is_summarised_in_one_line() {
        let timeout = |port| CtlError::Timeout {
            addr: addr(port),
            after: Duration::from_secs(3),
        };
        assert_eq!(summary(&[(addr(1), timeout(1))]), timeout(1).to_string());
        let two = summary(&[(addr(1), timeout(1)), (addr(2), timeout(2))]);
        assert_eq!(
            two,
            format!("none of 2 members answered ({}, …)", timeout(1))
        );
    }
}
