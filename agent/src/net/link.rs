//! The endpoint and peer links: dialing, accepting, the hello exchange, datagrams and
//! state fetches.
//!
//! The endpoint speaks two ALPNs. After the handshake the accept loop looks at the one
//! negotiated: `quorate-peer/1` goes on to the hello, `quorate-ctl/1` (an operator tool)
//! is handed to the operator channel's server — only from an address in
//! `control_allow`; a peer's address alone does not open the operator channel.
//!
//! The peer set (the config's `peers` at start, then whatever the driver sets from the
//! agreed membership, [`Net::set_peers`]) decides who is dialed and admitted. Every
//! address in it has one dialer task that keeps one outgoing connection up (reconnecting
//! with backoff) and leaves once its address is gone. Peers dial us too, so a pair of
//! nodes usually has two connections; both carry datagrams, and datagrams go out on the
//! newest the driver admitted ([`Net::admit`]). That avoids the race of deduplicating
//! simultaneous dials, at the cost of one more idle connection.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use proto::{CloseCode, Datagram, Frame, Hello, NodeId, NodeState};
use rand::{SeedableRng, rngs::SmallRng};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::links::{Link, LinkId, Links};
use super::tls;
use super::transport::{
    self, Backoff, FrameError, describe_close, jitter, read_frame, timeout, write_frame,
};
use crate::config::Cidr;
use crate::config::tls::{TlsError, TlsMaterial, cert_names};
use crate::ratelog::{RateLog, Refusal};

/// How long a hello or a state fetch may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(3);
/// Handshakes in progress at once; beyond it, new connections are refused.
const MAX_HANDSHAKES: usize = 16;
/// The pause before redialing a peer whose link just closed (jittered).
const REDIAL_PAUSE: Duration = Duration::from_millis(100);
/// The wait after a failed dial, doubling with each further failure up to the ceiling.
const DIAL_BACKOFF_MIN: Duration = Duration::from_millis(200);
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What the network tells the driver.
#[derive(Debug)]
pub enum Inbound {
    /// An authenticated connection: its certificate names `hello.node`. The driver
    /// admits it ([`Net::admit`]) or refuses it ([`Net::refuse`]).
    LinkUp {
        hello: Hello,
        link: Link,
    },
    /// A connection ended; `goodbye` if the peer closed it saying goodbye.
    LinkDown {
        id: LinkId,
        node: NodeId,
        incarnation: proto::Incarnation,
        goodbye: bool,
    },
    Datagram {
        from: NodeId,
        datagram: Datagram,
    },
    /// Boxed: every heartbeat travels in this enum, and a state is rare and large.
    State {
        from: NodeId,
        state: Box<NodeState>,
    },
    FetchFailed {
        from: NodeId,
    },
}

/// What the network layer needs to know.
pub struct NetConfig {
    pub hello: Hello,
    pub listen: SocketAddr,
    pub peers: Vec<SocketAddr>,
    pub control_allow: Vec<Cidr>,
    /// Where admitted operator connections go (the operator channel's server); full:
    /// refused as busy.
    pub ctl: mpsc::Sender<quinn::Connection>,
}

struct Shared {
    hello: Hello,
    /// Who is dialed and admitted: seeded from the config, replaced when the membership
    /// changes ([`Net::set_peers`]); read at each admission, hello and redial.
    peers: watch::Sender<Vec<SocketAddr>>,
    /// Replaced on reload ([`Net::set_control_allow`]); read at each admission.
    control_allow: watch::Sender<Vec<Cidr>>,
    /// What outgoing connections present and trust. Replaced on reload
    /// ([`Net::set_tls`]); each dial takes the current one (quinn's default client
    /// config is per `Endpoint` handle, so the dialers' clones would never see a new one).
    client: watch::Sender<quinn::ClientConfig>,
    ctl: mpsc::Sender<quinn::Connection>,
    local_state: watch::Receiver<NodeState>,
    inbound: mpsc::Sender<Inbound>,
    log: RateLog,
    next_link: AtomicU64,
    handshakes: Semaphore,
    /// Set once the agent says goodbye: dialers stop quietly.
    closing: AtomicBool,
}

/// The QUIC endpoint, its tasks, and the links the driver admitted.
pub struct Net {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    links: Links,
}

impl Net {
    /// Binds the endpoint. Tasks start with [`Net::start`].
    pub fn bind(
        cfg: NetConfig,
        tls: &TlsMaterial,
        local_state: watch::Receiver<NodeState>,
        inbound: mpsc::Sender<Inbound>,
    ) -> anyhow::Result<Self> {
        let (server, client) = endpoint_configs(tls)?;
        let endpoint = quinn::Endpoint::server(server, cfg.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on udp {}: {e}", cfg.listen))?;
        Ok(Self {
            endpoint,
            shared: Arc::new(Shared {
                hello: cfg.hello,
                peers: watch::Sender::new(cfg.peers),
                control_allow: watch::Sender::new(cfg.control_allow),
                client: watch::Sender::new(client),
                ctl: cfg.ctl,
                local_state,
                inbound,
                log: RateLog::new(),
                next_link: AtomicU64::new(1),
                handshakes: Semaphore::new(MAX_HANDSHAKES),
                closing: AtomicBool::new(false),
            }),
            links: Links::default(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// A reloaded `control_allow`: the next connection attempt is judged by it.
    /// Operator connections already open stay open.
    pub fn set_control_allow(&self, allow: Vec<Cidr>) {
        self.shared.control_allow.send_replace(allow);
    }

    /// Reloaded TLS material (a renewed certificate, a new CA): new handshakes, in and
    /// out, use it; connections already up keep theirs.
    pub fn set_tls(&self, tls: &TlsMaterial) -> Result<(), TlsError> {
        let (server, client) = endpoint_configs(tls)?;
        self.endpoint.set_server_config(Some(server));
        self.shared.client.send_replace(client);
        Ok(())
    }

    /// A new peer set (the agreed membership changed). An added address is dialed at
    /// once and admitted; a removed one is no longer admitted nor redialed (an attempt in
    /// flight may finish). Links already up stay up: closing them is the driver's call.
    pub fn set_peers(&self, peers: Vec<SocketAddr>) {
        self.shared.peers.send_replace(peers);
    }

    /// Starts the accept loop and the dialers.
    pub fn start(&self) {
        tokio::spawn(accept_loop(self.endpoint.clone(), self.shared.clone()));
        tokio::spawn(dialers(self.endpoint.clone(), self.shared.clone()));
    }

    /// Takes a link up: datagrams to its node go out on it from now on (it is the
    /// newest), until its [`Inbound::LinkDown`] is handed to [`Net::link_down`].
    pub fn admit(&mut self, node: NodeId, link: Link) {
        self.links.add(node, link.id, link.conn);
    }

    /// Refuses a link the driver will not take (its hello conflicts with what this node
    /// knows): closes it, saying why.
    pub fn refuse(&self, link: Link, reason: &str) {
        tracing::warn!("refused {}: {reason}", link.conn.remote_address());
        transport::close(&link.conn, CloseCode::Identity, reason);
    }

    /// A link ended ([`Inbound::LinkDown`]): it leaves the table; the node's other
    /// links, if any, carry on.
    pub fn link_down(&mut self, node: &NodeId, id: LinkId) {
        self.links.remove(node, id);
    }

    /// Every node a link was admitted from since start, up now or not (whom a goodbye
    /// is addressed to).
    pub fn linked_nodes(&self) -> Vec<NodeId> {
        self.links.nodes()
    }

    /// Sends a datagram on the newest link to `to`; without one, or when the link's
    /// queue refuses it, it is dropped (heartbeats are worthless once stale).
    pub fn send(&self, to: &NodeId, datagram: &Datagram) {
        let Some(conn) = self.links.newest(to) else {
            return;
        };
        match proto::encode_datagram(datagram) {
            Ok(bytes) => {
                if let Err(e) = conn.send_datagram(bytes.into()) {
                    tracing::debug!(peer = %to, "datagram not sent: {e}");
                }
            }
            Err(e) => tracing::error!(peer = %to, "cannot encode a datagram: {e}"),
        }
    }

    /// Fetches `from`'s full state over its newest link; the answer arrives as
    /// [`Inbound::State`] or [`Inbound::FetchFailed`]. `false` (nothing started) when no
    /// link to `from` is up.
    #[must_use]
    pub fn fetch_state(&self, from: &NodeId) -> bool {
        let Some(conn) = self.links.newest(from).cloned() else {
            return false;
        };
        let from = from.clone();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let result = timeout(EXCHANGE_TIMEOUT, async {
                let (mut send, mut recv) = conn.open_bi().await.map_err(|e| {
                    FrameError::Decode(proto::DecodeError::Malformed(e.to_string()))
                })?;
                write_frame(&mut send, &Frame::StateRequest).await?;
                send.finish()?;
                read_frame(&mut recv).await
            })
            .await;
            let msg = match result {
                Ok(Frame::State(state)) => Inbound::State {
                    from,
                    state: Box::new(state),
                },
                Ok(other) => {
                    shared.log.warn(Refusal::Malformed, || {
                        format!("peer {from} answered a state request with {other:?}")
                    });
                    Inbound::FetchFailed { from }
                }
                Err(e) => {
                    tracing::debug!(peer = %from, "state fetch failed: {e}");
                    Inbound::FetchFailed { from }
                }
            };
            let _ = shared.inbound.send(msg).await;
        });
        true
    }

    /// Says goodbye: closes every connection with the goodbye code and waits (bounded)
    /// for the close frames to leave.
    pub async fn close(&self, grace: Duration) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.endpoint.close(
            quinn::VarInt::from_u32(CloseCode::Goodbye as u32),
            b"goodbye",
        );
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
    }
}

/// The endpoint's server config (both ALPNs) and the client config for dialing peers.
fn endpoint_configs(
    material: &TlsMaterial,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), TlsError> {
    let mut server = tls::server_config(material, &[proto::ALPN_PEER, proto::ALPN_CTL])?;
    server.transport_config(transport::PEER.config());
    server.max_incoming(MAX_HANDSHAKES * 4);
    let mut client = tls::client_config(material, proto::ALPN_PEER)?;
    client.transport_config(transport::PEER.config());
    Ok((server, client))
}

async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        if !shared.admits(remote.ip()) {
            // Before any TLS work: an unknown address costs us one packet parse.
            shared.log.warn(Refusal::Address, || {
                format!("dropped a connection attempt from {remote}: not a peer and not in control_allow")
            });
            incoming.ignore();
            continue;
        }
        let Ok(permit) = shared.handshakes.try_acquire() else {
            shared.log.warn(Refusal::Busy, || {
                format!("refused a connection from {remote}: {MAX_HANDSHAKES} handshakes already in progress")
            });
            incoming.refuse();
            continue;
        };
        permit.forget();
        let shared = shared.clone();
        tokio::spawn(async move {
            let conn = match incoming.accept() {
                Ok(connecting) => tokio::time::timeout(EXCHANGE_TIMEOUT, connecting).await,
                Err(e) => Ok(Err(e)),
            };
            shared.handshakes.add_permits(1);
            let conn = match conn {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    shared.log.warn(Refusal::Handshake, || {
                        format!("refused a connection from {remote}: {e}")
                    });
                    return;
                }
                Err(_) => {
                    shared.log.warn(Refusal::Handshake, || {
                        format!("connection from {remote}: handshake timed out")
                    });
                    return;
                }
            };
            if alpn(&conn).as_deref() == Some(proto::ALPN_CTL) {
                return hand_to_ctl(conn, &shared);
            }
            match timeout(EXCHANGE_TIMEOUT, accept_hello(&conn, &shared)).await {
                Ok(hello) => run_link(conn, hello, shared).await,
                Err(e) => tracing::debug!("hello from {remote} failed: {e}"),
            }
        });
    }
}

/// The ALPN the handshake settled on.
fn alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// An operator connection: only from `control_allow` (a peer's address got it through
/// the address gate, but peers do not steer the cluster by being peers), then to the
/// operator channel's server.
fn hand_to_ctl(conn: quinn::Connection, shared: &Shared) {
    let remote = conn.remote_address();
    if !shared.control_allowed(remote.ip()) {
        shared.log.warn(Refusal::Control, || {
            format!("closed an operator connection from {remote}: not in control_allow")
        });
        transport::close(
            &conn,
            CloseCode::NotAllowed,
            &format!("{} is not in this agent's control_allow", remote.ip()),
        );
        return;
    }
    if let Err(e) = shared.ctl.try_send(conn) {
        let conn = e.into_inner();
        shared.log.warn(Refusal::Busy, || {
            format!("refused an operator connection from {remote}: the operator channel is busy")
        });
        transport::close(&conn, CloseCode::Busy, "too many operator connections");
    }
}

/// Listener side of the hello: read theirs, check it, answer with ours.
async fn accept_hello(conn: &quinn::Connection, shared: &Shared) -> Result<Hello, FrameError> {
    let (mut send, mut recv) = conn
        .accept_bi()
        .await
        .map_err(|e| FrameError::Decode(proto::DecodeError::Malformed(e.to_string())))?;
    let theirs = read_hello(conn, &mut recv, shared).await?;
    if let Err((code, reason)) = shared.check_hello(conn, &theirs, None) {
        refuse(conn, shared, code, &reason);
        return Err(FrameError::Decode(proto::DecodeError::Malformed(reason)));
    }
    write_frame(&mut send, &Frame::Hello(shared.hello.clone())).await?;
    send.finish()?;
    Ok(theirs)
}

async fn read_hello(
    conn: &quinn::Connection,
    recv: &mut quinn::RecvStream,
    shared: &Shared,
) -> Result<Hello, FrameError> {
    match read_frame(recv).await {
        Ok(Frame::Hello(h)) => Ok(h),
        Ok(other) => {
            let reason = format!("expected a hello, got {}", frame_name(&other));
            refuse(conn, shared, CloseCode::Protocol, &reason);
            Err(FrameError::Decode(proto::DecodeError::Malformed(reason)))
        }
        Err(FrameError::Decode(e @ proto::DecodeError::Version { .. })) => {
            refuse(conn, shared, CloseCode::VersionMismatch, &e.to_string());
            Err(FrameError::Decode(e))
        }
        Err(FrameError::Decode(e)) => {
            refuse(conn, shared, CloseCode::Protocol, &e.to_string());
            Err(FrameError::Decode(e))
        }
        Err(e) => Err(e),
    }
}

fn frame_name(f: &Frame) -> &'static str {
    match f {
        Frame::Hello(_) => "a hello",
        Frame::StateRequest => "a state request",
        Frame::State(_) => "a state",
    }
}

fn refuse(conn: &quinn::Connection, shared: &Shared, code: CloseCode, reason: &str) {
    let remote = conn.remote_address();
    shared
        .log
        .warn(Refusal::Hello, || format!("refused {remote}: {reason}"));
    transport::close(conn, code, reason);
}

/// Keeps one dialer per address in the peer set. This task only starts them: a dialer
/// leaves by itself when its address is gone (so a live link is never cut short), and an
/// address gets a new dialer only once its previous one has ended, so one removed and
/// re-added while its dialer still runs keeps that single dialer.
async fn dialers(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    let mut peers = shared.peers.subscribe();
    let mut tasks = JoinSet::new();
    let mut running = HashMap::new();
    loop {
        if shared.closing.load(Ordering::Relaxed) {
            // The dialers end on their own once their links are closed; dropping the
            // set would abort them before they report their links down.
            tasks.detach_all();
            return;
        }
        let wanted = peers.borrow_and_update().clone();
        let live: HashSet<SocketAddr> = running.values().copied().collect();
        for (addr, salt) in dialers_to_start(&live, &wanted) {
            let task = tasks.spawn(dial_loop(endpoint.clone(), shared.clone(), addr, salt));
            running.insert(task.id(), addr);
        }
        tokio::select! {
            // Cannot fail: `shared` holds the sender.
            _ = peers.changed() => {}
            Some(ended) = tasks.join_next_with_id() => {
                let id = ended.map_or_else(|e| e.id(), |(id, ())| id);
                running.remove(&id);
            }
        }
    }
}

/// The addresses in `wanted` without a dialer in `running`, each once, with its
/// position in `wanted`: the salt that staggers the dialers' retries.
fn dialers_to_start(
    running: &HashSet<SocketAddr>,
    wanted: &[SocketAddr],
) -> Vec<(SocketAddr, u64)> {
    let mut seen = HashSet::new();
    wanted
        .iter()
        .enumerate()
        .filter(|&(_, addr)| !running.contains(addr) && seen.insert(*addr))
        .map(|(i, &addr)| (addr, i as u64))
        .collect()
}

async fn dial_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>, addr: SocketAddr, salt: u64) {
    let mut rng = SmallRng::seed_from_u64(
        shared.hello.incarnation.0 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut backoff = Backoff::new(DIAL_BACKOFF_MIN, DIAL_BACKOFF_MAX);
    let mut failures = 0u32;
    loop {
        // Checked before each attempt, not during one: an attempt in flight finishes
        // (its hello is then judged by the new set) and a link up runs until it closes.
        if !shared.peers.borrow().contains(&addr) {
            tracing::debug!(%addr, "no longer a peer: stopped dialing");
            return;
        }
        let pause = match dial(&endpoint, &shared, addr).await {
            Ok((conn, hello)) => {
                if failures > 0 {
                    tracing::info!(peer = %hello.node, %addr, "connected after {failures} failed attempts");
                }
                failures = 0;
                backoff.reset();
                run_link(conn, hello, shared.clone()).await;
                jitter(REDIAL_PAUSE, &mut rng)
            }
            Err(_) if shared.closing.load(Ordering::Relaxed) => return,
            Err(e) => {
                failures += 1;
                // One line when a peer becomes unreachable, then one every ~minute.
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::info!(%addr, "cannot reach peer (attempt {failures}): {e}");
                }
                backoff.next_delay(&mut rng)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

async fn dial(
    endpoint: &quinn::Endpoint,
    shared: &Shared,
    addr: SocketAddr,
) -> anyhow::Result<(quinn::Connection, Hello)> {
    let client = shared.client.borrow().clone();
    let connecting = endpoint.connect_with(client, addr, proto::PEER_SERVER_NAME)?;
    let conn = tokio::time::timeout(EXCHANGE_TIMEOUT, connecting)
        .await
        .map_err(|_| anyhow::anyhow!("handshake timed out"))??;
    let hello = timeout(EXCHANGE_TIMEOUT, async {
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| FrameError::Decode(proto::DecodeError::Malformed(e.to_string())))?;
        write_frame(&mut send, &Frame::Hello(shared.hello.clone())).await?;
        send.finish()?;
        read_hello(&conn, &mut recv, shared).await
    })
    .await
    .map_err(|e| match conn.close_reason() {
        Some(reason) => anyhow::anyhow!("refused by peer: {}", describe_close(&reason)),
        None => anyhow::anyhow!("{e}"),
    })?;
    if let Err((code, reason)) = shared.check_hello(&conn, &hello, Some(addr)) {
        refuse(&conn, shared, code, &reason);
        anyhow::bail!("{reason}");
    }
    Ok((conn, hello))
}

/// Runs an authenticated link until it closes: datagrams in, state requests answered.
async fn run_link(conn: quinn::Connection, hello: Hello, shared: Arc<Shared>) {
    let id = shared.next_link.fetch_add(1, Ordering::Relaxed);
    let node = hello.node.clone();
    let incarnation = hello.incarnation;
    if shared
        .inbound
        .send(Inbound::LinkUp {
            hello,
            link: Link {
                id,
                conn: conn.clone(),
            },
        })
        .await
        .is_err()
    {
        return;
    }
    let server = tokio::spawn(serve_requests(conn.clone(), node.clone(), shared.clone()));
    let err = loop {
        match conn.read_datagram().await {
            Ok(bytes) => match proto::decode_datagram(&bytes) {
                Ok(datagram) => {
                    // Heartbeats are droppable: a full queue means the driver is behind,
                    // and a late heartbeat is worth less than a fresh one.
                    let _ = shared.inbound.try_send(Inbound::Datagram {
                        from: node.clone(),
                        datagram,
                    });
                }
                Err(e @ proto::DecodeError::Version { .. }) => {
                    refuse(
                        &conn,
                        &shared,
                        CloseCode::VersionMismatch,
                        &format!("peer {node}: {e}"),
                    );
                }
                Err(e) => {
                    shared.log.warn(Refusal::Malformed, || {
                        format!("dropped a datagram from peer {node}: {e}")
                    });
                }
            },
            Err(e) => break e,
        }
    };
    server.abort();
    let goodbye = transport::close_code(&err) == Some(CloseCode::Goodbye);
    tracing::debug!(peer = %node, "link closed: {}", describe_close(&err));
    let _ = shared
        .inbound
        .send(Inbound::LinkDown {
            id,
            node,
            incarnation,
            goodbye,
        })
        .await;
}

async fn serve_requests(conn: quinn::Connection, node: NodeId, shared: Arc<Shared>) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        let shared = shared.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let result = timeout(EXCHANGE_TIMEOUT, async {
                match read_frame(&mut recv).await? {
                    Frame::StateRequest => {
                        let state = shared.local_state.borrow().clone();
                        write_frame(&mut send, &Frame::State(state)).await?;
                        send.finish()?;
                        Ok(())
                    }
                    other => Err(FrameError::Decode(proto::DecodeError::Malformed(format!(
                        "unexpected {}",
                        frame_name(&other)
                    )))),
                }
            })
            .await;
            if let Err(e) = result {
                shared.log.warn(Refusal::Malformed, || {
                    format!("bad request from peer {node}: {e}")
                });
            }
        });
    }
}

impl Shared {
    /// Addresses we accept connections from: peers' IPs and `control_allow`.
    fn admits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.peers.borrow().iter().any(|p| p.ip() == ip) || self.control_allowed(ip)
    }

    /// Addresses operator connections are taken from.
    fn control_allowed(&self, ip: IpAddr) -> bool {
        self.control_allow.borrow().iter().any(|c| c.contains(ip))
    }

    /// Checks a peer's hello against its certificate, our cluster and our peer list.
    fn check_hello(
        &self,
        conn: &quinn::Connection,
        h: &Hello,
        dialed: Option<SocketAddr>,
    ) -> Result<(), (CloseCode, String)> {
        if h.cluster != self.hello.cluster {
            return Err((
                CloseCode::WrongCluster,
                format!(
                    "node {} belongs to cluster {}, this is {}",
                    h.node, h.cluster, self.hello.cluster
                ),
            ));
        }
        if h.node == self.hello.node {
            return Err((
                CloseCode::Identity,
                format!("peer claims to be this node ({})", h.node),
            ));
        }
        let named = tls::peer_cert(conn).is_some_and(|c| cert_names(&c, h.node.as_str()));
        if !named {
            return Err((
                CloseCode::Identity,
                format!(
                    "certificate does not name node {} that the peer claims to be",
                    h.node
                ),
            ));
        }
        let Ok(advertised) = h.advertise.parse::<SocketAddr>() else {
            return Err((
                CloseCode::Identity,
                format!(
                    "node {} advertises {:?}, not an address",
                    h.node, h.advertise
                ),
            ));
        };
        if !self.peers.borrow().contains(&advertised) {
            return Err((
                CloseCode::Identity,
                format!(
                    "node {} at {advertised} is not in this node's peers",
                    h.node
                ),
            ));
        }
        if let Some(dialed) = dialed
            && dialed != advertised
        {
            return Err((
                CloseCode::Identity,
                format!(
                    "dialed {dialed} but node {} there advertises {advertised}",
                    h.node
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn a_dialer_starts_for_each_address_without_one() {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        type Started<'a> = &'a [(SocketAddr, u64)];
        // (running, wanted, started with their salts)
        let cases: &[(&[SocketAddr], &[SocketAddr], Started<'_>)] = &[
            // At start: one per configured peer, salted by its index as before.
            (&[], &[a, b, c], &[(a, 0), (b, 1), (c, 2)]),
            // Unchanged, or re-added while its old dialer still runs: that one carries on.
            (&[a, b], &[a, b], &[]),
            // Added: only the new one; salted by its place in the new set.
            (&[a, b], &[a, b, c], &[(c, 2)]),
            // Removed: nothing starts (the removed dialer leaves by itself).
            (&[a, b, c], &[a], &[]),
            // Re-added after its old dialer ended: a new one.
            (&[a], &[a, b], &[(b, 1)]),
            // A duplicate in the set still gets one dialer.
            (&[], &[a, b, a], &[(a, 0), (b, 1)]),
            (&[a], &[], &[]),
        ];
        for (running, wanted, started) in cases {
            let running: HashSet<SocketAddr> = running.iter().copied().collect();
            assert_eq!(
                dialers_to_start(&running, wanted),
                *started,
                "running {running:?}, wanted {wanted:?}"
            );
        }
    }

    /// A node on 127.0.0.1 with a certificate from the CA in `dir`. The address is picked
    /// first because the hello advertises it.
    fn node(
        dir: &std::path::Path,
        name: &str,
        peers: Vec<SocketAddr>,
    ) -> (Net, mpsc::Receiver<Inbound>, SocketAddr) {
        let node = NodeId::new(name).unwrap();
        crate::ca::issue_node(dir, &node).unwrap();
        let tls = TlsMaterial::load(&crate::config::TlsPaths {
            ca: dir.join(crate::ca::CA_CERT_FILE),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        })
        .unwrap();
        let listen = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let hello = Hello {
            cluster: proto::ClusterName::new("t".to_owned()).unwrap(),
            node: node.clone(),
            incarnation: proto::Incarnation(1),
            advertise: listen.to_string(),
            mode: proto::Mode::Member,
        };
        let state = NodeState::new(
            node,
            proto::Incarnation(1),
            listen.to_string(),
            proto::Mode::Member,
            0,
            proto::WallMicros(0),
        );
        let (inbound, rx) = mpsc::channel(64);
        let cfg = NetConfig {
            hello,
            listen,
            peers,
            control_allow: Vec::new(),
            ctl: mpsc::channel(1).0,
        };
        let net = Net::bind(cfg, &tls, watch::channel(state).1, inbound).unwrap();
        (net, rx, listen)
    }

    #[tokio::test]
    async fn the_peer_set_changes_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        crate::ca::init(dir.path()).unwrap();
        let (n1, mut n1_in, a) = node(dir.path(), "n1", Vec::new());
        let (n2, _n2_in, b) = node(dir.path(), "n2", Vec::new());
        // n3 only dials by hand, to see how n1 judges its hello.
        let (n3, _n3_in, c) = node(dir.path(), "n3", vec![a]);
        n2.set_peers(vec![a]);
        n1.start();
        n2.start();
        let loopback = IpAddr::from([127, 0, 0, 1]);
        assert!(!n1.shared.admits(loopback));

        // Added: n1 dials n2 at once, and each takes the other's hello.
        n1.set_peers(vec![b]);
        assert!(n1.shared.admits(loopback));
        let up = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(Inbound::LinkUp { hello, .. }) = n1_in.recv().await {
                    break hello.node;
                }
            }
        })
        .await
        .expect("no link from n2 after it was added");
        assert_eq!(up.as_str(), "n2");

        let refused = format!("node n3 at {c} is not in this node's peers");
        let e = dial(&n3.endpoint, &n3.shared, a).await.unwrap_err();
        assert!(e.to_string().contains(&refused), "{e}");
        n1.set_peers(vec![b, c]);
        let (_conn, hello) = dial(&n3.endpoint, &n3.shared, a).await.unwrap();
        assert_eq!(hello.node.as_str(), "n1");
        // Removed: refused again, in the same words.
        n1.set_peers(vec![b]);
        let e = dial(&n3.endpoint, &n3.shared, a).await.unwrap_err();
        assert!(e.to_string().contains(&refused), "{e}");
    }
}
