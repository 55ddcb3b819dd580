//! The TUI's connection to the cluster: one thread that stays subscribed to some member's
//! operator channel, forwards what it hears as [`ConnMsg`]s, and carries the operator's
//! commands.
//!
//! When the attached agent goes away (closed, or silent past [`SILENCE`]), it tries the
//! other members it learned from the last snapshot ([`Members`]), waiting per
//! [`Backoff`] between attempts, until one answers; the screen meanwhile says
//! `reconnecting` and keeps the last view, marked stale by its age.
//!
//! Owns: the thread, its private tokio runtime and the [`CtlClient`]. Must never touch
//! the terminal or decide what to show: it reports, [`State`](super::state::State)
//! folds.

use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use proto::ctl::{CtlCommand, EventRecord};
use proto::status::ClusterStatus;
use quorate_agent::clock;
use quorate_agent::config::TlsPaths;
use quorate_agent::ctl::client::{CtlClient, EventItem, Members, Outcome, Update};
use quorate_agent::net::transport::Backoff;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use tokio::sync::mpsc;

use super::state::ConnStatus;

/// An agent sends a snapshot at least every 2 s; this long without anything means it is
/// gone even if the connection has not timed out yet.
pub const SILENCE: Duration = Duration::from_secs(4);
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

async fn run(
    first: SocketAddr,
    bind: Option<SocketAddr>,
    tls: TlsPaths,
    to_ui: std_mpsc::Sender<ConnMsg>,
    mut commands: mpsc::UnboundedReceiver<CtlCommand>,
) {
    let mut rng = SmallRng::from_os_rng();
    let mut backoff = Backoff::default();
    let mut members: Option<Members> = None;
    let mut last: Option<ClusterStatus> = None;
    let mut addr = first;
    let mut attempt = 0u32;
    let _ = to_ui.send(ConnMsg::Status(ConnStatus::Connecting {
        to: addr.to_string(),
    }));
    loop {
        // Only the first agent is dialed from the configured local address: the others
        // are other machines' addresses.
        let from = if addr == first { bind } else { None };
        let error = match CtlClient::connect(addr, &tls, from).await {
            Ok(client) => {
                backoff.reset();
                attempt = 0;
                match session(&client, &to_ui, &mut commands, &mut last).await {
                    Ended::Ui => return,
                    Ended::Lost(e) => e,
                }
            }
            Err(e) => e.to_string(),
        };
        // A new order after every lost session; within a run of failures, keep cycling.
        if attempt == 0 {
            members = Some(Members::after_losing(addr, last.as_ref()));
        }
        attempt += 1;
        let delay = backoff.next_delay(&mut rng);
        let sent = to_ui.send(ConnMsg::Status(ConnStatus::Reconnecting {
            last: addr.to_string(),
            attempt,
            retry_at: clock::now() + delay,
            error,
        }));
        if sent.is_err() {
            return;
        }
        // Commands typed while no agent is attached are refused at once, not queued:
        // the operator must see them fail rather than have them fire minutes later.
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(_) => {
                        let _ = to_ui.send(ConnMsg::CommandResult(Err(
                            "not connected to any agent; try again once reconnected".into(),
                        )));
                    }
                },
            }
        }
        if let Some(m) = members.as_mut() {
            addr = m.next_addr();
        }
    }
}

/// One subscription to one agent, until it ends.
async fn session(
    client: &CtlClient,
    to_ui: &std_mpsc::Sender<ConnMsg>,
    commands: &mut mpsc::UnboundedReceiver<CtlCommand>,
    last: &mut Option<ClusterStatus>,
) -> Ended {
    let to = client.addr().to_string();
    if to_ui
        .send(ConnMsg::Status(ConnStatus::Connected {
            to,
            since: clock::now(),
        }))
        .is_err()
    {
        return Ended::Ui;
    }
    let mut sub = match client.subscribe().await {
        Ok(sub) => sub,
        Err(e) => return Ended::Lost(e.to_string()),
    };
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
        let next = sub.next();
        tokio::pin!(next);
        let silence = tokio::time::sleep(SILENCE);
        tokio::pin!(silence);
        let update = loop {
            tokio::select! {
                update = &mut next => break update,
                _ = &mut silence => {
                    return Ended::Lost(format!(
                        "{}: nothing heard for {}s",
                        client.addr(),
                        SILENCE.as_secs()
                    ));
                }
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
