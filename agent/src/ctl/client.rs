//! The operator channel's client, for `quorate` (CLI and TUI) and tests.
//!
//! Owns: connecting to an agent with a node's or an operator's certificate (TLS from
//! files, ALPN `quorate-ctl/1`, server name [`proto::PEER_SERVER_NAME`]); the exchanges
//! ([`CtlClient::subscribe`], [`CtlClient::events`], [`CtlClient::command`],
//! [`CtlClient::should_run`]); telling a lost agent from a quiet one on a subscription
//! ([`Subscription::next_within`], [`SILENCE`]); errors that name the agent's address (or
//! the file, for TLS); and, sans-IO, the reconnect policy a long-lived tool follows:
//! [`Backoff`](crate::net::transport::Backoff) for when, [`Members`] for whom.
//!
//! It must never retry by itself (the caller decides, with
//! [`Backoff`](crate::net::transport::Backoff)), read a clock or
//! draw randomness it was not handed, or trust an answer's size (frames are capped before
//! anything is allocated). [`blocking`] wraps it for tools without a runtime of their own.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proto::ctl::{CtlCommand, CtlRequest, CtlResponse, EventRecord};
use proto::status::ClusterStatus;

use crate::config::TlsPaths;
use crate::config::tls::{TlsError, TlsMaterial};
use crate::net::tls;
use crate::net::transport::{self, FrameError};

/// How long connecting (UDP + TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a one-shot exchange (a snapshot, a command's answer) may take.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// A subscription that brought nothing at all (no snapshot, event or keep-alive) for
/// this long has lost its agent: the agent sends something at least every
/// `proto::ctl::KEEPALIVE_INTERVAL_MS`, and this allows four of those.
pub const SILENCE: Duration = Duration::from_millis(proto::ctl::SILENCE_MS);

/// What went wrong talking to an agent. Every variant names the address (or, for TLS,
/// the file).
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{addr}: cannot connect: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The agent closed the connection: the reason says why (not in `control_allow`, a
    /// certificate it does not accept, it is stopping…).
    #[error("{addr}: the agent closed the connection: {reason}")]
    Closed { addr: SocketAddr, reason: String },
    #[error("{addr}: {reason}")]
    Stream { addr: SocketAddr, reason: String },
    #[error("{addr}: no answer within {}s", .after.as_secs_f32())]
    Timeout { addr: SocketAddr, after: Duration },
    /// A subscription went silent: no frame, not even a keep-alive, for `after`. The
    /// agent is gone (killed, cut off, frozen) even if the connection has not timed out.
    #[error("{addr}: nothing heard for {}s", .after.as_secs_f32())]
    Silent { addr: SocketAddr, after: Duration },
    #[error("{addr}: unexpected answer: {what}")]
    Unexpected { addr: SocketAddr, what: String },
}

/// The agent's view, as the `/cluster` document: parsed, and as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub status: ClusterStatus,
    /// Exactly what the agent sent (and what `GET /cluster` answers).
    pub json: String,
}

/// One item of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Snapshot(Box<Snapshot>),
    Event(EventRecord),
}

/// One item of an `events` stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventItem {
    Event(EventRecord),
    /// The history is complete; with `follow`, live events come next.
    End,
}

/// What the agent did with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Refused(String),
}

/// The answer to `should-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShouldRun {
    pub here: bool,
    /// The fencing token (`QUORATE_TERM`).
    pub term: u64,
    pub holder: Option<String>,
}

/// A connection to one agent's operator channel. Clones share the connection; it closes
/// when the last clone, subscription and event stream is gone.
#[derive(Clone)]
pub struct CtlClient {
    c: Arc<Conn>,
}

/// The connection and its endpoint, shared by a client and the streams it opened.
struct Conn {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    addr: SocketAddr,
}

impl CtlClient {
    /// Connects to the agent at `addr` with the certificate, key and CA in `tls`, from
    /// `bind` (default: any local address of `addr`'s family).
    pub async fn connect(
        addr: SocketAddr,
        tls: &TlsPaths,
        bind: Option<SocketAddr>,
    ) -> Result<Self, CtlError> {
        let material = TlsMaterial::load(tls)?;
        let mut config = tls::client_config(&material, proto::ALPN_CTL)?;
        config.transport_config(transport::OPERATOR_CLIENT.config());
        let bind = bind.unwrap_or_else(|| match addr {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        });
        let connect_err = |reason: String| CtlError::Connect { addr, reason };
        let mut endpoint = quinn::Endpoint::client(bind)
            .map_err(|e| connect_err(format!("cannot bind udp {bind}: {e}")))?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint
            .connect(addr, proto::PEER_SERVER_NAME)
            .map_err(|e| connect_err(e.to_string()))?;
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(connect_err(transport::describe_close_to_operator(&e))),
            Err(_) => {
                return Err(connect_err(format!(
                    "no handshake within {}s (is the agent running, and this host in its control_allow?)",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        Ok(Self {
            c: Arc::new(Conn {
                endpoint,
                conn,
                addr,
            }),
        })
    }

    /// The agent's address.
    pub fn addr(&self) -> SocketAddr {
        self.c.addr
    }

    /// Bytes received on this connection so far, QUIC and UDP overhead included: what a
    /// subscription costs the network.
    pub fn received_bytes(&self) -> u64 {
        self.c.conn.stats().udp_rx.bytes
    }

    /// Closes the connection now (the agent sees a clean close); streams end.
    pub fn close(&self) {
        self.c.close();
    }

    /// Resolves when the connection closes, with the reason as an operator reads it.
    pub async fn closed(&self) -> CtlError {
        let e = self.c.conn.closed().await;
        CtlError::Closed {
            addr: self.c.addr,
            reason: transport::describe_close_to_operator(&e),
        }
    }

    async fn open(
        &self,
        request: &CtlRequest,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), CtlError> {
        let (mut send, recv) = self.c.conn.open_bi().await.map_err(|e| self.c.err(e))?;
        transport::write_request(&mut send, request)
            .await
            .map_err(|e| self.c.err(e))?;
        send.finish().map_err(|e| self.c.err(e))?;
        Ok((send, recv))
    }

    /// The live view: a snapshot at once, then snapshots and events.
    pub async fn subscribe(&self) -> Result<Subscription, CtlError> {
        let (send, recv) = self.open(&CtlRequest::Subscribe).await?;
        Ok(Subscription {
            c: self.c.clone(),
            _send: send,
            recv,
        })
    }

    /// The view once (the first snapshot of a subscription).
    pub async fn snapshot(&self) -> Result<Snapshot, CtlError> {
        let mut sub = self.subscribe().await?;
        let first = tokio::time::timeout(ANSWER_TIMEOUT, sub.next()).await;
        match first {
            Ok(Ok(Some(Update::Snapshot(s)))) => Ok(*s),
            Ok(Ok(Some(Update::Event(_)))) => {
                Err(self.c.unexpected("an event before the snapshot"))
            }
            Ok(Ok(None)) => Err(self.c.unexpected("the stream ended without a snapshot")),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.c.timeout()),
        }
    }

    /// The kept history after `after` (all with `None`), then with `follow` live events.
    pub async fn events(&self, after: Option<u64>, follow: bool) -> Result<Events, CtlError> {
        let (send, recv) = self.open(&CtlRequest::Events { after, follow }).await?;
        Ok(Events {
            c: self.c.clone(),
            _send: send,
            recv,
        })
    }

    /// Sends a command; the agent's answer (carried out, or refused and why).
    pub async fn command(&self, command: CtlCommand) -> Result<Outcome, CtlError> {
        match self.one(&CtlRequest::Command(command)).await? {
            CtlResponse::Done { message } => Ok(Outcome::Done(message)),
            CtlResponse::Refused { reason } => Ok(Outcome::Refused(reason)),
            other => Err(self.c.unexpected(&format!("{other:?}"))),
        }
    }

    /// Whether the agent runs singleton task `task` now. An unknown task is an error
    /// whose text the agent gave.
    pub async fn should_run(&self, task: &str) -> Result<ShouldRun, CtlError> {
        let request = CtlRequest::ShouldRun {
            task: task.to_owned(),
        };
        match self.one(&request).await? {
            CtlResponse::ShouldRun { here, term, holder } => Ok(ShouldRun { here, term, holder }),
            CtlResponse::Refused { reason } => Err(CtlError::Stream {
                addr: self.c.addr,
                reason,
            }),
            other => Err(self.c.unexpected(&format!("{other:?}"))),
        }
    }

    /// Writes `bytes` as they are on a new stream, finishes it, and returns every answer
    /// until the agent finishes the stream: for tests of what the agent does with
    /// malformed requests.
    pub async fn exchange_raw(&self, bytes: &[u8]) -> Result<Vec<CtlResponse>, CtlError> {
        let (mut send, mut recv) = self.c.conn.open_bi().await.map_err(|e| self.c.err(e))?;
        send.write_all(bytes).await.map_err(|e| self.c.err(e))?;
        send.finish().map_err(|e| self.c.err(e))?;
        let mut out = Vec::new();
        let all = async {
            while let Some(r) = self.c.read(&mut recv).await? {
                out.push(r);
            }
            Ok::<_, CtlError>(())
        };
        tokio::time::timeout(ANSWER_TIMEOUT, all)
            .await
            .map_err(|_| self.c.timeout())??;
        Ok(out)
    }

    async fn one(&self, request: &CtlRequest) -> Result<CtlResponse, CtlError> {
        let exchange = async {
            let (_send, mut recv) = self.open(request).await?;
            self.c
                .read(&mut recv)
                .await?
                .ok_or_else(|| self.c.unexpected("the stream ended without an answer"))
        };
        tokio::time::timeout(ANSWER_TIMEOUT, exchange)
            .await
            .map_err(|_| self.c.timeout())?
    }
}

impl Conn {
    /// A stream error, or the connection's close reason if it is closed.
    fn err(&self, e: impl std::fmt::Display) -> CtlError {
        match self.conn.close_reason() {
            Some(reason) => CtlError::Closed {
                addr: self.addr,
                reason: transport::describe_close_to_operator(&reason),
            },
            None => CtlError::Stream {
                addr: self.addr,
                reason: e.to_string(),
            },
        }
    }

    async fn read(&self, recv: &mut quinn::RecvStream) -> Result<Option<CtlResponse>, CtlError> {
        match transport::read_response(recv).await {
            Ok(r) => Ok(r),
            Err(FrameError::Decode(e)) => Err(CtlError::Unexpected {
                addr: self.addr,
                what: e.to_string(),
            }),
            Err(e) => Err(self.err(e)),
        }
    }

    fn unexpected(&self, what: &str) -> CtlError {
        CtlError::Unexpected {
            addr: self.addr,
            what: what.to_owned(),
        }
    }

    fn timeout(&self) -> CtlError {
        CtlError::Timeout {
            addr: self.addr,
            after: ANSWER_TIMEOUT,
        }
    }

    fn close(&self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.close(0u32.into(), b"done");
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.close();
    }
}

/// A subscription: [`next`](Self::next) until it ends. Dropping it stops it.
pub struct Subscription {
    c: Arc<Conn>,
    _send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl Subscription {
    /// The next snapshot or event; `None` when the agent ended the subscription.
    /// Keep-alives are read and passed over.
    pub async fn next(&mut self) -> Result<Option<Update>, CtlError> {
        loop {
            if let Some(update) = self.frame().await? {
                return Ok(update);
            }
        }
    }

    /// [`next`](Self::next), or [`CtlError::Silent`] as soon as the agent has sent
    /// nothing at all, keep-alives included, for `silence` (use [`SILENCE`]): a lost
    /// agent is noticed then, not when the connection times out. Cancel-safe only
    /// between frames: keep the future across other work rather than dropping it.
    pub async fn next_within(&mut self, silence: Duration) -> Result<Option<Update>, CtlError> {
        loop {
            let heard = tokio::time::timeout(silence, self.frame())
                .await
                .map_err(|_| CtlError::Silent {
                    addr: self.c.addr,
                    after: silence,
                })?;
            if let Some(update) = heard? {
                return Ok(update);
            }
        }
    }

    /// One frame: `None` for a keep-alive, `Some(None)` for the end of the stream.
    async fn frame(&mut self) -> Result<Option<Option<Update>>, CtlError> {
        let update = match self.c.read(&mut self.recv).await? {
            None => None,
            Some(CtlResponse::KeepAlive) => return Ok(None),
            Some(CtlResponse::Snapshot { json }) => {
                let status = serde_json::from_str(&json).map_err(|e| CtlError::Unexpected {
                    addr: self.c.addr,
                    what: format!("a snapshot that is not a cluster status: {e}"),
                })?;
                Some(Update::Snapshot(Box::new(Snapshot { status, json })))
            }
            Some(CtlResponse::Event(e)) => Some(Update::Event(e)),
            Some(CtlResponse::Refused { reason }) => {
                return Err(CtlError::Stream {
                    addr: self.c.addr,
                    reason,
                });
            }
            Some(other) => return Err(self.c.unexpected(&format!("{other:?}"))),
        };
        Ok(Some(update))
    }
}

/// An `events` stream: [`next`](Self::next) until it ends.
pub struct Events {
    c: Arc<Conn>,
    _send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl Events {
    /// The next record or the end of the history; `None` when the agent finished.
    pub async fn next(&mut self) -> Result<Option<EventItem>, CtlError> {
        match self.c.read(&mut self.recv).await? {
            None => Ok(None),
            Some(CtlResponse::Event(e)) => Ok(Some(EventItem::Event(e))),
            Some(CtlResponse::EventsEnd) => Ok(Some(EventItem::End)),
            Some(CtlResponse::Refused { reason }) => Err(CtlError::Stream {
                addr: self.c.addr,
                reason,
            }),
            Some(other) => Err(self.c.unexpected(&format!("{other:?}"))),
        }
    }
}

/// Whom to dial after losing an agent: every member the last snapshot names (alive ones
/// first, by name), then the configured peers nobody has been identified at, and the lost
/// agent itself last (it may come back). A tool dials them all at once and keeps the
/// first that answers; the order only breaks ties. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    order: Vec<SocketAddr>,
}

impl Members {
    /// The members after losing the agent at `lost`, from the last snapshot `last`.
    pub fn after_losing(lost: SocketAddr, last: Option<&ClusterStatus>) -> Self {
        let mut order: Vec<SocketAddr> = Vec::new();
        let mut push = |a: SocketAddr| {
            if a != lost && !order.contains(&a) {
                order.push(a);
            }
        };
        if let Some(s) = last {
            let mut nodes: Vec<_> = s.nodes.iter().collect();
            nodes.sort_by_key(|n| (n.state != "alive", n.node.clone()));
            for n in nodes {
                if let Ok(a) = n.addr.parse() {
                    push(a);
                }
            }
            for p in &s.unreachable_peers {
                if let Ok(a) = p.parse() {
                    push(a);
                }
            }
        }
        order.push(lost);
        Self { order }
    }

    /// Every address, in order.
    pub fn order(&self) -> &[SocketAddr] {
        &self.order
    }
}

/// The same client for callers without a tokio runtime (the CLI, plain `#[test]`s): a
/// private current-thread runtime runs each call to completion.
pub mod blocking {
    use super::*;

    pub struct Client {
        // Field order: the connection closes before its runtime goes away.
        inner: CtlClient,
        rt: tokio::runtime::Runtime,
    }

    impl Client {
        /// See [`CtlClient::connect`].
        pub fn connect(
            addr: SocketAddr,
            tls: &TlsPaths,
            bind: Option<SocketAddr>,
        ) -> Result<Self, CtlError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CtlError::Connect {
                    addr,
                    reason: format!("cannot start a runtime: {e}"),
                })?;
            let inner = rt.block_on(CtlClient::connect(addr, tls, bind))?;
            Ok(Self { inner, rt })
        }

        pub fn addr(&self) -> SocketAddr {
            self.inner.addr()
        }

        /// See [`CtlClient::received_bytes`].
        pub fn received_bytes(&self) -> u64 {
            self.inner.received_bytes()
        }

        pub fn snapshot(&self) -> Result<Snapshot, CtlError> {
            self.rt.block_on(self.inner.snapshot())
        }

        pub fn command(&self, command: CtlCommand) -> Result<Outcome, CtlError> {
            self.rt.block_on(self.inner.command(command))
        }

        pub fn should_run(&self, task: &str) -> Result<ShouldRun, CtlError> {
            self.rt.block_on(self.inner.should_run(task))
        }

        pub fn exchange_raw(&self, bytes: &[u8]) -> Result<Vec<CtlResponse>, CtlError> {
            self.rt.block_on(self.inner.exchange_raw(bytes))
        }

        pub fn subscribe(&self) -> Result<BlockingSubscription<'_>, CtlError> {
            let sub = self.rt.block_on(self.inner.subscribe())?;
            Ok(BlockingSubscription { rt: &self.rt, sub })
        }

        pub fn events(
            &self,
            after: Option<u64>,
            follow: bool,
        ) -> Result<BlockingEvents<'_>, CtlError> {
            let events = self.rt.block_on(self.inner.events(after, follow))?;
            Ok(BlockingEvents {
                rt: &self.rt,
                events,
            })
        }
    }

    impl Drop for Client {
        /// Closes the connection and lets the close reach the agent (briefly), so the
        /// agent frees its slot at once instead of after an idle timeout.
        fn drop(&mut self) {
            self.inner.close();
            let endpoint = &self.inner.c.endpoint;
            // The timer is made inside the runtime: it needs its clock.
            self.rt.block_on(async {
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
            });
        }
    }

    pub struct BlockingSubscription<'a> {
        rt: &'a tokio::runtime::Runtime,
        sub: Subscription,
    }

    impl BlockingSubscription<'_> {
        /// The next update, waiting at most `timeout`; `None` when the agent ended it.
        pub fn next(&mut self, timeout: Duration) -> Result<Option<Update>, CtlError> {
            let addr = self.sub.c.addr;
            let sub = &mut self.sub;
            self.rt
                .block_on(async { tokio::time::timeout(timeout, sub.next()).await })
                .map_err(|_| CtlError::Timeout {
                    addr,
                    after: timeout,
                })?
        }
    }

    pub struct BlockingEvents<'a> {
        rt: &'a tokio::runtime::Runtime,
        events: Events,
    }

    /// The items, each waited for as long as it takes, until the agent finishes.
    impl Iterator for BlockingEvents<'_> {
        type Item = Result<EventItem, CtlError>;

        fn next(&mut self) -> Option<Self::Item> {
            self.rt.block_on(self.events.next()).transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A TUI moves its client and streams into tasks of its own.
    #[test]
    fn clients_and_streams_can_move_into_tasks() {
        fn owned<T: Send + 'static>() {}
        owned::<CtlClient>();
        owned::<Subscription>();
        owned::<Events>();
    }

    fn status(nodes: &[(&str, &str, &str)], unreachable: &[&str]) -> ClusterStatus {
        let nodes: Vec<String> = nodes
            .iter()
            .map(|(n, addr, state)| {
                format!(
                    r#"{{"node":"{n}","addr":"{addr}","state":"{state}","role":"secondary",
                    "ready":true,"healthy":true,"draining":false,"priority":1,"roles":[],
                    "incarnation":1,"rtt_ms":null,"clock_offset_ms":null,
                    "last_seen_ms":null,"phi":null,"load":{{"cpu":0,"mem":0,"load1":0}},
                    "checks":{{}},"version":{{"agent":"0.1.0","app":null}}}}"#
                )
            })
            .collect();
        let json = format!(
            r#"{{"cluster":"c","node":"n1","term":1,"primary":null,"quorum":true,
            "frozen":false,"voters":3,"nodes":[{}],"unreachable_peers":{}}}"#,
            nodes.join(","),
            serde_json::to_string(unreachable).unwrap()
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn members_are_ordered_alive_first_and_the_lost_one_last() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let s = status(
            &[
                ("n3", "10.0.0.3:7700", "alive"),
                ("n1", "10.0.0.1:7700", "alive"),
                ("n2", "10.0.0.2:7700", "dead"),
                ("n4", "10.0.0.4:7700", "alive"),
                ("n5", "not an address", "alive"),
            ],
            &["10.0.0.9:7700"],
        );
        let m = Members::after_losing(a("10.0.0.1:7700"), Some(&s));
        assert_eq!(
            m.order(),
            [
                a("10.0.0.3:7700"),
                a("10.0.0.4:7700"),
                a("10.0.0.2:7700"),
                a("10.0.0.9:7700"),
                a("10.0.0.1:7700"),
            ]
        );
        // Without a snapshot: only the lost agent.
        let m = Members::after_losing(a("10.0.0.1:7700"), None);
        assert_eq!(m.order(), [a("10.0.0.1:7700")]);
        // A snapshot that names the lost agent (its own view) lists it once, last.
        let s = status(&[("n1", "10.0.0.1:7700", "alive")], &["10.0.0.1:7700"]);
        let m = Members::after_losing(a("10.0.0.1:7700"), Some(&s));
        assert_eq!(m.order(), [a("10.0.0.1:7700")]);
    }
}
