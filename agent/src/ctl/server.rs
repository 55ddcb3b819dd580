//! Serving operator connections: one request per bidirectional stream, answered as
//! `proto::ctl` describes.
//!
//! Connections arrive here already admitted by the endpoint (`net`): the caller's address
//! is in `control_allow` and its certificate chains to the cluster CA. Every answer is
//! built from the published view, the journal, or the driver's reply to an [`Order`];
//! nothing here changes state. A connection whose certificate the agent's revocation
//! lists (`[tls] crl`) revoke is closed, saying so: at once when a reload brings the list
//! that revokes it, and on arrival if its handshake just beat that reload. Limits:
//! [`MAX_CONNECTIONS`] operator connections and [`MAX_STREAMS`] streams at once (more are
//! refused, not queued), a request of at most `MAX_REQUEST_BYTES` within
//! [`REQUEST_TIMEOUT`], and a command answer within [`COMMAND_TIMEOUT`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::ctl::{CtlCommand, CtlRequest, CtlResponse};
use proto::status::ClusterStatus;
use rustls::pki_types::CertificateDer;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};

use super::caller::{Caller, Order};
use crate::clock;
use crate::config::tls::Revocations;
use crate::events::JournalReader;
use crate::net::tls;
use crate::net::transport::{self, FrameError};
use crate::ratelog::{RateLog, Refusal};
use crate::view::{self, ClusterView};

/// Operator connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Operator streams (requests in progress, subscriptions) served at once, all
/// connections together.
pub const MAX_STREAMS: usize = 64;
/// How long a caller has to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command may wait for the driver's answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Snapshots on a subscription: at most this often when something that matters changed…
const SNAPSHOT_MIN: Duration = Duration::from_millis(proto::ctl::SNAPSHOT_MIN_INTERVAL_MS);
/// …this often when only the moving figures (ages, RTT, phi, load, offsets) did…
const SNAPSHOT_FIGURES: Duration = Duration::from_secs(1);
/// …and at least this often in any case, so that a quiet cluster's view does not look
/// stale.
const SNAPSHOT_MAX: Duration = Duration::from_millis(proto::ctl::SNAPSHOT_MAX_INTERVAL_MS);
/// The longest a subscription goes without any frame: a keep-alive of a few bytes fills
/// the gaps between snapshots, so that a tool notices a lost agent within
/// `proto::ctl::SILENCE_MS` without the cost of more snapshots.
const KEEPALIVE: Duration = Duration::from_millis(proto::ctl::KEEPALIVE_INTERVAL_MS);
/// The stream error code for a stream refused because too many are open.
const BUSY: u32 = 1;

/// The operator channel's server: what it reads, and where commands go.
pub struct CtlServer {
    view: watch::Receiver<Arc<ClusterView>>,
    journal: JournalReader,
    orders: mpsc::Sender<Order>,
    /// The revocation lists in force, replaced by a reload that changed them.
    revocations: watch::Receiver<Arc<Revocations>>,
    log: RateLog,
    connections: Arc<Semaphore>,
    streams: Arc<Semaphore>,
}

impl CtlServer {
    pub fn new(
        view: watch::Receiver<Arc<ClusterView>>,
        journal: JournalReader,
        orders: mpsc::Sender<Order>,
        revocations: watch::Receiver<Arc<Revocations>>,
    ) -> Self {
        Self {
            view,
            journal,
            orders,
            revocations,
            log: RateLog::new(),
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }

    /// Serves every connection `conns` yields until the sender goes away.
    pub fn spawn(self, mut conns: mpsc::Receiver<quinn::Connection>) {
        let server = Arc::new(self);
        tokio::spawn(async move {
            while let Some(conn) = conns.recv().await {
                let cert = tls::peer_cert(&conn);
                let caller = Caller::new(cert.as_ref(), conn.remote_address());
                let revoked = server.revocations.borrow().clone();
                if let Some(serial) = cert.as_ref().and_then(|c| revoked.revoked(c)) {
                    // Its handshake finished just before the reload that revoked it.
                    server.log.warn(Refusal::Revoked, || {
                        format!("refused {caller}: its certificate (serial {serial}) is revoked by tls.crl")
                    });
                    close_revoked(&conn, &serial);
                    continue;
                }
                let Ok(permit) = server.connections.clone().try_acquire_owned() else {
                    server.log.warn(Refusal::Busy, || {
                        format!(
                            "refused an operator connection from {caller}: {MAX_CONNECTIONS} already open"
                        )
                    });
                    transport::close(
                        &conn,
                        proto::CloseCode::Busy,
                        "too many operator connections",
                    );
                    continue;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    tracing::debug!("operator connection from {caller}");
                    server.serve(conn, caller, cert).await;
                    drop(permit);
                });
            }
        });
    }

    async fn serve(
        self: Arc<Self>,
        conn: quinn::Connection,
        caller: Caller,
        cert: Option<CertificateDer<'static>>,
    ) {
        let revoked = revoked_later(self.revocations.clone(), cert);
        tokio::pin!(revoked);
        loop {
            let (mut send, mut recv) = tokio::select! {
                accepted = conn.accept_bi() => match accepted {
                    Ok(streams) => streams,
                    Err(_) => return,
                },
                serial = &mut revoked => {
                    tracing::warn!(
                        "closed the connection of {caller}: its certificate (serial {serial}) is revoked by the reloaded tls.crl"
                    );
                    close_revoked(&conn, &serial);
                    return;
                }
            };
            let Ok(permit) = self.streams.clone().try_acquire_owned() else {
                self.log.warn(Refusal::Busy, || {
                    format!("refused a request from {caller}: {MAX_STREAMS} operator streams open")
                });
                let _ = send.reset(BUSY.into());
                let _ = recv.stop(BUSY.into());
                continue;
            };
            let server = self.clone();
            let caller = caller.clone();
            tokio::spawn(async move {
                server.stream(&caller, send, recv).await;
                drop(permit);
            });
        }
    }

    /// One exchange: read the request, answer it, finish the stream.
    async fn stream(
        &self,
        caller: &Caller,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        let request =
            match tokio::time::timeout(REQUEST_TIMEOUT, transport::read_request(&mut recv)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    return self
                        .refuse_malformed(caller, send, recv, &e.to_string())
                        .await;
                }
                Err(_) => {
                    let why = format!("no whole request within {}s", REQUEST_TIMEOUT.as_secs());
                    return self.refuse_malformed(caller, send, recv, &why).await;
                }
            };
        // Nothing more is read from this stream.
        let _ = recv.stop(0u32.into());
        let result = match request {
            CtlRequest::Subscribe => self.subscribe(&mut send).await,
            CtlRequest::Events { after, follow } => self.events(&mut send, after, follow).await,
            CtlRequest::Command(cmd) => {
                let answer = self.command(caller, cmd).await;
                transport::write_response(&mut send, &answer).await
            }
            CtlRequest::ShouldRun { task } => {
                let answer = self.should_run(&task);
                transport::write_response(&mut send, &answer).await
            }
        };
        if let Err(e) = result {
            tracing::debug!("operator stream from {caller} ended: {e}");
        }
        let _ = send.finish();
    }

    async fn refuse_malformed(
        &self,
        caller: &Caller,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        why: &str,
    ) {
        self.log.warn(Refusal::Malformed, || {
            format!("refused a malformed operator request from {caller}: {why}")
        });
        let _ = recv.stop(0u32.into());
        let answer = CtlResponse::Refused {
            reason: format!("malformed request: {why}"),
        };
        let _ = transport::write_response(&mut send, &answer).await;
        let _ = send.finish();
    }

    /// A snapshot at once, then paced snapshots interleaved with live events and, in the
    /// gaps, keep-alives, until the caller stops reading or the agent stops.
    async fn subscribe(&self, send: &mut quinn::SendStream) -> Result<(), FrameError> {
        let mut view_rx = self.view.clone();
        let mut live = self.journal.subscribe();
        let stopped = send.stopped();
        tokio::pin!(stopped);
        let first = view_rx.borrow_and_update().clone();
        write_snapshot(send, &first).await?;
        let mut sent = first.status.clone();
        let mut pacer = Pacer::new(clock::now());
        loop {
            let (deadline, due) = pacer.next();
            tokio::select! {
                biased;
                _ = &mut stopped => return Ok(()),
                event = live.recv() => match event {
                    Ok(r) => {
                        transport::write_response(send, &CtlResponse::Event(r)).await?;
                        pacer.wrote(clock::now());
                    }
                    // Too slow for the broadcast: a fresh snapshot instead of what it missed.
                    Err(broadcast::error::RecvError::Lagged(_)) => pacer.note(Change::Lagged),
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                changed = view_rx.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let v = view_rx.borrow_and_update().clone();
                    pacer.note(classify(&sent, &v.status));
                }
                _ = tokio::time::sleep_until(deadline.into()) => match due {
                    Due::Snapshot => {
                        let v = view_rx.borrow_and_update().clone();
                        write_snapshot(send, &v).await?;
                        sent = v.status.clone();
                        pacer.sent(clock::now());
                    }
                    Due::KeepAlive => {
                        transport::write_response(send, &CtlResponse::KeepAlive).await?;
                        pacer.wrote(clock::now());
                    }
                },
            }
        }
    }

    /// The history after `after`, `EventsEnd`, then (with `follow`) live events.
    async fn events(
        &self,
        send: &mut quinn::SendStream,
        after: Option<u64>,
        follow: bool,
    ) -> Result<(), FrameError> {
        // Subscribe first: whatever is recorded meanwhile is in the history or the
        // broadcast (or both: `last` skips what was sent).
        let mut live = self.journal.subscribe();
        let mut last = self.send_history(send, after.unwrap_or(0)).await?;
        transport::write_response(send, &CtlResponse::EventsEnd).await?;
        if !follow {
            return Ok(());
        }
        let stopped = send.stopped();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => return Ok(()),
                event = live.recv() => match event {
                    Ok(r) if r.seq > last => {
                        last = r.seq;
                        transport::write_response(send, &CtlResponse::Event(r)).await?;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        last = self.send_history(send, last).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    /// Sends the kept records after `last`; returns the last one sent (or `last`).
    async fn send_history(
        &self,
        send: &mut quinn::SendStream,
        mut last: u64,
    ) -> Result<u64, FrameError> {
        let history = self.journal.history();
        let from = last;
        for r in history.iter().filter(|r| r.seq > from) {
            last = r.seq;
            transport::write_response(send, &CtlResponse::Event(r.clone())).await?;
        }
        Ok(last)
    }

    /// Hands the command to the driver and waits (bounded) for its answer.
    async fn command(&self, caller: &Caller, command: CtlCommand) -> CtlResponse {
        let (reply, answer) = oneshot::channel();
        let order = Order {
            command,
            caller: caller.clone(),
            reply,
        };
        let refused = |reason: &str| CtlResponse::Refused {
            reason: reason.to_owned(),
        };
        match self.orders.try_send(order) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return refused("the agent is busy with other commands; try again");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return refused("the agent is stopping"),
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
            Ok(Ok(Ok(message))) => CtlResponse::Done { message },
            Ok(Ok(Err(reason))) => CtlResponse::Refused { reason },
            Ok(Err(_)) => refused("the agent is stopping"),
            Err(_) => refused(&format!(
                "the agent did not answer within {}s; the command may still be carried out",
                COMMAND_TIMEOUT.as_secs()
            )),
        }
    }

    /// `quorate task should-run`: judged now, as `GET /task/{name}` is.
    fn should_run(&self, task: &str) -> CtlResponse {
        let v = self.view.borrow().clone();
        match v.task_answer(task, clock::now(), clock::boottime()) {
            None => CtlResponse::Refused {
                reason: format!("no [[task]] named {task:?} in {}'s config", v.node),
            },
            Some((here, term)) => CtlResponse::ShouldRun {
                here,
                term,
                holder: v
                    .status
                    .tasks
                    .iter()
                    .find(|t| t.name == task)
                    .and_then(|t| t.holder.clone()),
            },
        }
    }
}

async fn write_snapshot(send: &mut quinn::SendStream, v: &ClusterView) -> Result<(), FrameError> {
    let json = view::cluster_json(&v.status)
        .map_err(|e| FrameError::Encode(proto::EncodeError::Serialize(e.to_string())))?;
    transport::write_response(send, &CtlResponse::Snapshot { json }).await
}

/// How the view changed since the last snapshot sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    None,
    /// Only figures that move all the time: ages, RTT, phi, load, clock offsets.
    Figures,
    /// Anything else: a state, a role, a check, the primary, the term…
    Matters,
    /// The caller fell behind the event broadcast and missed events.
    Lagged,
}

/// Compares two `/cluster` documents, ignoring the figures that move all the time.
pub fn classify(sent: &ClusterStatus, now: &ClusterStatus) -> Change {
    if sent == now {
        return Change::None;
    }
    if steady(sent) == steady(now) {
        Change::Figures
    } else {
        Change::Matters
    }
}

/// The document without its moving figures.
fn steady(s: &ClusterStatus) -> ClusterStatus {
    let mut s = s.clone();
    for n in &mut s.nodes {
        n.rtt_ms = None;
        n.clock_offset_ms = None;
        n.last_seen_ms = None;
        n.phi = None;
        n.load = Default::default();
    }
    s
}

/// What a subscription sends next when its deadline comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Snapshot,
    KeepAlive,
}

/// When the next snapshot or keep-alive of a subscription is due. Pure: the caller says
/// what changed, and when it sent a snapshot or any other frame.
#[derive(Debug, Clone)]
pub struct Pacer {
    sent_at: Instant,
    /// The last frame of any kind.
    wrote_at: Instant,
    pending: Change,
}

impl Pacer {
    pub fn new(sent_at: Instant) -> Self {
        Self {
            sent_at,
            wrote_at: sent_at,
            pending: Change::None,
        }
    }

    /// Something changed (the biggest change since the last snapshot counts).
    pub fn note(&mut self, c: Change) {
        self.pending = self.pending.max(c);
    }

    /// A snapshot was sent at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.sent_at = now;
        self.pending = Change::None;
        self.wrote(now);
    }

    /// Another frame (an event, a keep-alive) was sent at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.wrote_at = self.wrote_at.max(now);
    }

    /// When the next snapshot must go out.
    pub fn deadline(&self) -> Instant {
        self.sent_at
            + match self.pending {
                Change::Lagged => Duration::ZERO,
                Change::Matters => SNAPSHOT_MIN,
                Change::Figures => SNAPSHOT_FIGURES,
                Change::None => SNAPSHOT_MAX,
            }
    }

    /// The next frame to send and when: the snapshot if it is due no later than the
    /// keep-alive would be, else a keep-alive.
    pub fn next(&self) -> (Instant, Due) {
        let snapshot = self.deadline();
        let keepalive = self.wrote_at + KEEPALIVE;
        if snapshot <= keepalive {
            (snapshot, Due::Snapshot)
        } else {
            (keepalive, Due::KeepAlive)
        }
    }
}

/// Resolves with the serial of `cert` once a new revocation list revokes it; never if none
/// does (or the agent stops).
async fn revoked_later(
    mut revocations: watch::Receiver<Arc<Revocations>>,
    cert: Option<CertificateDer<'static>>,
) -> String {
    let Some(cert) = cert else {
        return std::future::pending().await;
    };
    loop {
        if revocations.changed().await.is_err() {
            return std::future::pending().await;
        }
        let lists = revocations.borrow_and_update().clone();
        if let Some(serial) = lists.revoked(&cert) {
            return serial;
        }
    }
}

/// Closes an operator connection whose certificate is revoked, telling the caller why and
/// what to do.
fn close_revoked(conn: &quinn::Connection, serial: &str) {
    transport::close(
        conn,
        proto::CloseCode::Identity,
        &format!(
            "certificate revoked: this agent's revocation list (tls.crl) names its serial \
             {serial}; ask whoever keeps the cluster CA for a new one (`quorate ca issue`)"
        ),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn status() -> ClusterStatus {
        let json = r#"{"cluster":"c","node":"n1","term":3,"primary":"n1","quorum":true,
          "frozen":false,"voters":2,
          "nodes":[{"node":"n2","addr":"127.0.0.1:2","state":"alive","role":"secondary",
            "ready":true,"healthy":true,"draining":false,"priority":1,"roles":[],
            "incarnation":1,"rtt_ms":0.4,"clock_offset_ms":1.0,"last_seen_ms":80,"phi":0.3,
            "load":{"cpu":0.5,"mem":0.25,"load1":1.0},"checks":{"app":"ok"},
            "version":{"agent":"0.1.0","app":null}}]}"#;
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn changes_are_classified() {
        let a = status();
        assert_eq!(classify(&a, &a.clone()), Change::None);
        let mut b = a.clone();
        b.nodes[0].last_seen_ms = Some(300);
        b.nodes[0].load.cpu = 0.9;
        b.nodes[0].phi = Some(1.0);
        assert_eq!(classify(&a, &b), Change::Figures);
        let mut c = b.clone();
        c.nodes[0].state = "suspect".into();
        assert_eq!(classify(&a, &c), Change::Matters);
        let mut d = a.clone();
        d.primary = None;
        assert_eq!(classify(&a, &d), Change::Matters);
    }

    #[test]
    fn snapshots_are_paced() {
        let t0 = crate::clock::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(t0);
        // Nothing changed: the keep-alive snapshot.
        assert_eq!(p.deadline(), t0 + ms(2000));
        // Moving figures only: once a second.
        p.note(Change::Figures);
        assert_eq!(p.deadline(), t0 + ms(1000));
        // Something that matters: at most every 250 ms, never less than that apart.
        p.note(Change::Matters);
        assert_eq!(p.deadline(), t0 + ms(250));
        p.note(Change::Figures);
        assert_eq!(
            p.deadline(),
            t0 + ms(250),
            "a smaller change does not delay it"
        );
        p.sent(t0 + ms(250));
        assert_eq!(p.deadline(), t0 + ms(2250));
        // A lagging subscriber gets one at once.
        p.note(Change::Lagged);
        assert_eq!(p.deadline(), t0 + ms(250));
    }

    #[test]
    fn keep_alives_fill_the_gaps_between_snapshots() {
        let t0 = crate::clock::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(t0);
        // Nothing changed: keep-alives every 250 ms until the 2 s snapshot.
        assert_eq!(p.next(), (t0 + ms(250), Due::KeepAlive));
        p.wrote(t0 + ms(250));
        assert_eq!(p.next(), (t0 + ms(500), Due::KeepAlive));
        p.wrote(t0 + ms(1800));
        assert_eq!(p.next(), (t0 + ms(2000), Due::Snapshot));
        p.sent(t0 + ms(2000));
        assert_eq!(p.next(), (t0 + ms(2250), Due::KeepAlive));
        // An event is a sign of life too: the keep-alive waits for 250 ms after it.
        p.wrote(t0 + ms(2100));
        assert_eq!(p.next(), (t0 + ms(2350), Due::KeepAlive));
        // A snapshot due first goes first; a keep-alive never delays it.
        p.note(Change::Matters);
        assert_eq!(p.next(), (t0 + ms(2250), Due::Snapshot));
        p.note(Change::Lagged);
        assert_eq!(p.next(), (t0 + ms(2000), Due::Snapshot));
    }
}
