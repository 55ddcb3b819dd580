//! The endpoint and peer links: dialing, accepting, the hello exchange, datagrams and
//! state fetches.
//!
//! Admission, in the order an incoming connection meets it, each step before any work
//! the next one costs:
//!
//! 1. the source address: a peer's IP or `control_allow`, else dropped unanswered;
//! 2. address validation: an attempt whose source has not proved it receives at its
//!    address gets a QUIC Retry (stateless: nothing is kept, and the Retry is smaller
//!    than the Initial that asked for it), so spoofed sources never reach step 3;
//! 3. a handshake slot ([`MAX_HANDSHAKES`]), held until the hello is in — or
//!    [`EXCHANGE_TIMEOUT`] after the attempt was taken, when it is closed — so a
//!    connection that completes TLS and then says nothing holds a slot, not the port;
//! 4. the ALPN: `quorate-ctl/1` (an operator tool) is handed to the operator channel's
//!    server, only from an address in `control_allow` (a peer's address alone does not
//!    open it); on `quorate-peer/1` a certificate that is not a node's (an operator's)
//!    is closed at once, before any stream is read. rustls's client-certificate check
//!    cannot see the ALPN, so this is the first thing after the handshake;
//! 5. the hello, read under [`proto::MAX_HELLO`] and only as a hello, then checked
//!    ([`Shared::check_hello`]): cluster, the certificate names the node, its advertised
//!    address is a peer's, and that address's IP is the one the connection comes from.
//!
//! The peer set (the config's `peers` at start, then whatever the driver sets from the
//! agreed membership, [`Net::set_peers`]) decides who is admitted, and the dial set, a
//! part of it ([`Net::set_peers_dialing`]: on a non-voter, the voters), who is dialed.
//! Every address in the dial set has one dialer task that keeps one outgoing connection
//! up (reconnecting with backoff) and leaves once its address is gone, closing its
//! connection (`Unneeded`).
//!
//! **One connection per pair: the one the lower id dialed.** A dialer knows an address,
//! not the id behind it, until the hello; so both ends of a pair may dial, and for a
//! moment a pair may have two connections. Once the lower id's link is admitted, the
//! higher id closes the link it dialed (`Replaced`, [`Net::admit`]) and its dialer for
//! that address waits, without dialing, until the lower id's link is down
//! (`Shared::dialed_by_lower`); then it dials again, so a lower id that no longer dials
//! (a non-voter's narrower dial set, a node gone) leaves the pair with the higher id's
//! connection. While two are up, both ends send on the same one: the one the node with
//! the lower id dialed, else the newest the driver admitted (`Links::preferred`). No
//! more than those two are ever kept: a newer link in the same direction replaces the
//! older, closed `Replaced` (the link table, `links.rs`).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use proto::{CloseCode, Datagram, Frame, Hello, Incarnation, NodeId, NodeState};
use rand::{SeedableRng, rngs::SmallRng};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::links::{Direction, Link, LinkId, Links};
use super::socket::QuicRuntime;
use super::tls;
use super::transport::{
    self, Backoff, FrameError, StateRequest, describe_close, jitter, read_peer, timeout,
    write_frame,
};
use crate::config::Cidr;
use crate::config::tls::{TlsError, TlsMaterial, cert_names};
use crate::ratelog::{RateLog, Refusal};

/// How long a hello or a state fetch may take; for an incoming connection, the handshake
/// and the hello together.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(3);
/// Incoming connections between address validation and their hello, at once; beyond
/// it, new connections are refused.
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
    /// Who is dialed: `peers`, or a part of it ([`Net::set_peers_dialing`]); read at each
    /// redial, and watched by each dialed link.
    dial: watch::Sender<Vec<SocketAddr>>,
    /// The advertised addresses of the nodes with a lower id than this one whose own
    /// link to this node is up: the pair's one connection. Their dialers wait while
    /// their address is here. Kept by the driver's turn ([`Net::admit`],
    /// [`Net::link_down`]).
    dialed_by_lower: watch::Sender<HashSet<SocketAddr>>,
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
    /// Slots of [`MAX_HANDSHAKES`]: one per incoming connection until its hello is in.
    handshakes: Arc<Semaphore>,
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
        let endpoint = std::net::UdpSocket::bind(cfg.listen)
            .and_then(|socket| {
                quinn::Endpoint::new(
                    quinn::EndpointConfig::default(),
                    Some(server),
                    socket,
                    Arc::new(QuicRuntime::default()),
                )
            })
            .map_err(|e| anyhow::anyhow!("cannot listen on udp {}: {e}", cfg.listen))?;
        Ok(Self {
            endpoint,
            shared: Arc::new(Shared {
                hello: cfg.hello,
                dial: watch::Sender::new(cfg.peers.clone()),
                dialed_by_lower: watch::Sender::new(HashSet::new()),
                peers: watch::Sender::new(cfg.peers),
                control_allow: watch::Sender::new(cfg.control_allow),
                client: watch::Sender::new(client),
                ctl: cfg.ctl,
                local_state,
                inbound,
                log: RateLog::new(),
                next_link: AtomicU64::new(1),
                handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
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
    /// Links up whose peer's certificate the new material's revocation list revokes are
    /// closed (`Identity`): its handshakes would be refused from now on, and a link
    /// already up would otherwise outlive the revocation until it reconnects.
    pub fn set_tls(&self, tls: &TlsMaterial) -> Result<(), TlsError> {
        let (server, client) = endpoint_configs(tls)?;
        self.endpoint.set_server_config(Some(server));
        self.shared.client.send_replace(client);
        let revocations = tls.revocations();
        for (node, conn) in self.links.all() {
            let Some(serial) = tls::peer_cert(conn).and_then(|c| revocations.revoked(&c)) else {
                continue;
            };
            tracing::warn!(
                peer = %node,
                "closed the link to {node}: its certificate (serial {serial}) is revoked by tls.crl"
            );
            transport::close(
                conn,
                CloseCode::Identity,
                &format!("certificate of node {node} (serial {serial}) is revoked"),
            );
        }
        Ok(())
    }

    /// A new peer set (the agreed membership changed). An added address is dialed at
    /// once and admitted; a removed one is no longer admitted nor redialed (an attempt in
    /// flight may finish). Links already up stay up: closing them is the driver's call.
    pub fn set_peers(&self, peers: Vec<SocketAddr>) {
        self.set_peers_dialing(peers.clone(), peers);
    }

    /// Admits `peers` and dials `dial` (a part of them): a non-voter dials the voters
    /// only, yet admits every peer, so a node that votes in a newer set than its own
    /// reaches it before it learns that set. A dialed link to an address that leaves
    /// `dial` is closed (`Unneeded`).
    pub fn set_peers_dialing(&self, peers: Vec<SocketAddr>, dial: Vec<SocketAddr>) {
        self.shared.peers.send_replace(peers);
        self.shared.dial.send_replace(dial);
    }

    /// Starts the accept loop and the dialers.
    pub fn start(&self) {
        tokio::spawn(accept_loop(self.endpoint.clone(), self.shared.clone()));
        tokio::spawn(dialers(self.endpoint.clone(), self.shared.clone()));
    }

    /// Takes a link up: datagrams to its node may go out on it from now on, until its
    /// [`Inbound::LinkDown`] is handed to [`Net::link_down`]. An older link of the node
    /// in the same direction is closed (`Replaced`); its own link down then changes
    /// nothing, and the node is not gone: it is on the new link. When the node has the
    /// lower id and this is its link, the link this node dialed is closed (`Replaced`)
    /// and not dialed again while that one is up: the pair keeps one connection.
    pub fn admit(&mut self, node: NodeId, incarnation: Incarnation, link: Link) {
        let direction = link.direction;
        if let Some((old, conn)) = self.links.add(
            node.clone(),
            link.id,
            direction,
            incarnation,
            link.advertised,
            link.conn,
        ) {
            tracing::debug!(peer = %node, "{direction} link {old} replaced by a newer one");
            transport::close(
                &conn,
                CloseCode::Replaced,
                &format!(
                    "a newer connection between {} and {node} replaced this one",
                    self.shared.hello.node
                ),
            );
        }
        if node < self.shared.hello.node {
            for (old, conn) in self.links.take_outdone(&node) {
                tracing::debug!(peer = %node, "dialed link {old} closed: {node} dialed this pair's one link");
                transport::close(
                    &conn,
                    CloseCode::Replaced,
                    &format!(
                        "{node} keeps the one connection between {node} and {} (the lower id dials)",
                        self.shared.hello.node
                    ),
                );
            }
        }
        self.publish_dialed_by_lower();
    }

    /// Refuses a link the driver will not take (its hello conflicts with what this node
    /// knows): closes it, saying why.
    pub fn refuse(&self, link: Link, reason: &str) {
        let remote = link.conn.remote_address();
        self.shared
            .log
            .warn(Refusal::Hello, || format!("refused {remote}: {reason}"));
        transport::close(&link.conn, CloseCode::Identity, reason);
    }

    /// A link ended ([`Inbound::LinkDown`]): it leaves the table; the node's other
    /// links, if any, carry on.
    pub fn link_down(&mut self, node: &NodeId, id: LinkId) {
        self.links.remove(node, id);
        self.publish_dialed_by_lower();
    }

    /// How many links are up.
    pub fn link_counts(&self) -> crate::view::PeerLinks {
        let (dialed, accepted) = self.links.counts();
        crate::view::PeerLinks { dialed, accepted }
    }

    /// Tells the dialers which addresses a lower id keeps linked to this node, when that
    /// changed.
    fn publish_dialed_by_lower(&self) {
        let now = self.links.dialing_us_from_below(&self.shared.hello.node);
        self.shared
            .dialed_by_lower
            .send_if_modified(|held| (*held != now).then(|| *held = now).is_some());
    }

    /// Every node a link was admitted from since start, up now or not (whom a goodbye
    /// is addressed to).
    pub fn linked_nodes(&self) -> Vec<NodeId> {
        self.links.nodes()
    }

    /// The link to `to` that both ends use ([`Links::preferred`]).
    fn link_to(&self, to: &NodeId) -> Option<&quinn::Connection> {
        self.links.preferred(to, self.shared.hello.node < *to)
    }

    /// Sends a datagram on the link to `to` both ends use; without one, or when the
    /// link's queue refuses it, it is dropped (heartbeats are worthless once stale).
    pub fn send(&self, to: &NodeId, datagram: &Datagram) {
        let Some(conn) = self.link_to(to) else {
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

    /// Fetches `from`'s full state over the link to it; the answer arrives as
    /// [`Inbound::State`] or [`Inbound::FetchFailed`]. `false` (nothing started) when no
    /// link to `from` is up.
    #[must_use]
    pub fn fetch_state(&self, from: &NodeId) -> bool {
        let Some(conn) = self.link_to(from).cloned() else {
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
                read_peer::<NodeState>(&mut recv).await
            })
            .await;
            let msg = match result {
                Ok(state) => Inbound::State {
                    from,
                    state: Box::new(state),
                },
                Err(e @ (FrameError::Unexpected { .. } | FrameError::Decode(_))) => {
                    shared.log.warn(Refusal::Malformed, || {
                        format!("refused peer {from}'s answer to a state request: {e}")
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
        if !incoming.remote_address_validated() {
            // Every time, not only under load: it costs a peer one round trip per new
            // connection (links live for hours), and a spoofed source, which never sees
            // the Retry, then never holds a handshake slot. Nothing is logged: a Retry is
            // how every new connection starts.
            if let Err(e) = incoming.retry() {
                e.into_incoming().ignore();
            }
            continue;
        }
        let Ok(permit) = shared.handshakes.clone().try_acquire_owned() else {
            shared.log.warn(Refusal::Busy, || {
                format!("refused a connection from {remote}: {MAX_HANDSHAKES} connections already between handshake and hello")
            });
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some((conn, hello, advertised)) = admit(incoming, &shared, permit).await {
                run_link(conn, hello, advertised, Direction::Accepted, shared).await;
            }
        });
    }
}

/// Takes a validated connection attempt through the handshake to the operator channel,
/// or through the hello to a peer link (returned, with the address the peer
/// advertises). Holds its handshake slot (`permit`) until then, [`EXCHANGE_TIMEOUT`] at
/// most.
async fn admit(
    incoming: quinn::Incoming,
    shared: &Shared,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Option<(quinn::Connection, Hello, SocketAddr)> {
    let remote = incoming.remote_address();
    let deadline = tokio::time::sleep(EXCHANGE_TIMEOUT);
    tokio::pin!(deadline);
    let handshake = async {
        match incoming.accept() {
            Ok(connecting) => connecting.await,
            Err(e) => Err(e),
        }
    };
    let conn = tokio::select! {
        conn = handshake => conn,
        () = &mut deadline => {
            shared.log.warn(Refusal::Handshake, || {
                format!("connection from {remote}: handshake timed out")
            });
            return None;
        }
    };
    let conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            shared.log.warn(Refusal::Handshake, || {
                format!("refused a connection from {remote}: {e}")
            });
            return None;
        }
    };
    if alpn(&conn).as_deref() == Some(proto::ALPN_CTL) {
        drop(permit);
        hand_to_ctl(conn, shared);
        return None;
    }
    if !tls::peer_cert(&conn).is_some_and(|c| is_node_certificate(&c)) {
        shared.log.warn(Refusal::PeerCertificate, || {
            format!(
                "closed a connection from {remote}: its certificate is not a node certificate \
                 (an operator's?), and {} takes only node certificates",
                String::from_utf8_lossy(proto::ALPN_PEER)
            )
        });
        transport::close(
            &conn,
            CloseCode::Identity,
            &format!(
                "{} takes node certificates only, and this one does not name {}: an operator \
                 certificate belongs on {} (the quorate tool)",
                String::from_utf8_lossy(proto::ALPN_PEER),
                proto::PEER_SERVER_NAME,
                String::from_utf8_lossy(proto::ALPN_CTL),
            ),
        );
        return None;
    }
    let hello = tokio::select! {
        hello = accept_hello(&conn, shared) => hello,
        () = &mut deadline => {
            let reason = format!("no hello within {EXCHANGE_TIMEOUT:?} of the first packet");
            refuse(&conn, shared, CloseCode::Protocol, &reason);
            return None;
        }
    };
    drop(permit);
    match hello {
        Ok((hello, advertised)) => Some((conn, hello, advertised)),
        Err(e) => {
            tracing::debug!("hello from {remote} failed: {e}");
            None
        }
    }
}

/// Whether a certificate (already chained to the cluster CA by the handshake) is a
/// node's: every node certificate names [`proto::PEER_SERVER_NAME`], an operator's never
/// does (`ca.rs`).
fn is_node_certificate(cert: &rustls::pki_types::CertificateDer<'_>) -> bool {
    cert_names(cert, proto::PEER_SERVER_NAME)
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

/// Listener side of the hello: read theirs, check it, answer with ours. Theirs comes back
/// with the address it advertises.
async fn accept_hello(
    conn: &quinn::Connection,
    shared: &Shared,
) -> Result<(Hello, SocketAddr), FrameError> {
    let (mut send, mut recv) = conn
        .accept_bi()
        .await
        .map_err(|e| FrameError::Decode(proto::DecodeError::Malformed(e.to_string())))?;
    let theirs = read_hello(conn, &mut recv, shared).await?;
    let advertised = match shared.check_hello(conn, &theirs, None) {
        Ok(advertised) => advertised,
        Err((code, reason)) => {
            refuse(conn, shared, code, &reason);
            return Err(FrameError::Decode(proto::DecodeError::Malformed(reason)));
        }
    };
    write_frame(&mut send, &Frame::Hello(shared.hello.clone())).await?;
    send.finish()?;
    Ok((theirs, advertised))
}

/// The other side's hello: the first frame on the first stream, at most
/// [`proto::MAX_HELLO`] bytes and a hello, or the connection is closed saying why.
async fn read_hello(
    conn: &quinn::Connection,
    recv: &mut quinn::RecvStream,
    shared: &Shared,
) -> Result<Hello, FrameError> {
    match read_peer::<Hello>(recv).await {
        Ok(h) => Ok(h),
        Err(e @ FrameError::Unexpected { .. }) => {
            refuse(conn, shared, CloseCode::Protocol, &e.to_string());
            Err(e)
        }
        Err(FrameError::Decode(e @ proto::DecodeError::Version { .. })) => {
            refuse(conn, shared, CloseCode::VersionMismatch, &e.to_string());
            Err(FrameError::Decode(e))
        }
        Err(FrameError::Decode(e)) => {
            refuse(
                conn,
                shared,
                CloseCode::Protocol,
                &format!("bad hello: {e}"),
            );
            Err(FrameError::Decode(e))
        }
        Err(e) => Err(e),
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
    let mut peers = shared.dial.subscribe();
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
        if !shared.dial.borrow().contains(&addr) {
            tracing::debug!(%addr, "no longer dialed: stopped dialing");
            return;
        }
        if shared.dialed_by_lower.borrow().contains(&addr) {
            // The node there keeps the pair's one connection; dial again only once it
            // is down (the node may have gone, or no longer dial us).
            let mut lower = shared.dialed_by_lower.subscribe();
            // Cannot fail: `shared` holds the sender.
            let _ = lower.wait_for(|held| !held.contains(&addr)).await;
            continue;
        }
        let pause = match dial(&endpoint, &shared, addr).await {
            Ok((conn, hello)) => {
                if failures > 0 {
                    tracing::info!(peer = %hello.node, %addr, "connected after {failures} failed attempts");
                }
                failures = 0;
                backoff.reset();
                let undialed =
                    tokio::spawn(close_when_undialed(conn.clone(), shared.clone(), addr));
                run_link(conn, hello, addr, Direction::Dialed, shared.clone()).await;
                undialed.abort();
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

/// Closes `conn`, dialed to `addr`, once `addr` leaves the dial set: this node no
/// longer talks to that node, and an idle connection would still cost keepalives.
async fn close_when_undialed(conn: quinn::Connection, shared: Arc<Shared>, addr: SocketAddr) {
    let mut dial = shared.dial.subscribe();
    loop {
        if !dial.borrow_and_update().contains(&addr) {
            tracing::debug!(%addr, "no longer dialed: closing the link");
            transport::close(
                &conn,
                CloseCode::Unneeded,
                &format!("{} no longer talks to this node", shared.hello.node),
            );
            return;
        }
        if dial.changed().await.is_err() {
            return;
        }
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
    if let Err((code, reason)) = shared.check_hello(&conn, &hello, Some(addr)).map(drop) {
        refuse(&conn, shared, code, &reason);
        anyhow::bail!("{reason}");
    }
    Ok((conn, hello))
}

/// Runs an authenticated link until it closes: datagrams in, state requests answered.
async fn run_link(
    conn: quinn::Connection,
    hello: Hello,
    advertised: SocketAddr,
    direction: Direction,
    shared: Arc<Shared>,
) {
    let id = shared.next_link.fetch_add(1, Ordering::Relaxed);
    let node = hello.node.clone();
    let incarnation = hello.incarnation;
    if shared
        .inbound
        .send(Inbound::LinkUp {
            hello,
            link: Link {
                id,
                direction,
                advertised,
                conn: conn.clone(),
            },
        })
        .await
        .is_err()
    {
        return;
    }
    tracing::debug!(peer = %node, "{direction} link up");
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

/// Answers the streams a linked peer opens: each must carry one state request (at most
/// [`proto::MAX_HELLO`] bytes). Anything else is refused on that stream alone (reset with
/// `Protocol`): the link and its heartbeats carry on.
async fn serve_requests(conn: quinn::Connection, node: NodeId, shared: Arc<Shared>) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        let shared = shared.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let result = timeout(EXCHANGE_TIMEOUT, async {
                read_peer::<StateRequest>(&mut recv).await?;
                let state = shared.local_state.borrow().clone();
                write_frame(&mut send, &Frame::State(state)).await?;
                send.finish()?;
                Ok(())
            })
            .await;
            if let Err(e) = result {
                let code = quinn::VarInt::from_u32(CloseCode::Protocol as u32);
                let _ = recv.stop(code);
                let _ = send.reset(code);
                shared.log.warn(Refusal::Malformed, || {
                    format!("refused a request from peer {node}: {e}")
                });
            }
        });
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports for
/// an IPv4 peer) as the IPv4 address it is; any other address as it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether a connection from `remote` may be the node that advertises `advertised`: the
/// same IP (IPv4-mapped IPv6 compared as IPv4); the ports may differ (NAT).
fn same_host(remote: SocketAddr, advertised: SocketAddr) -> bool {
    canonical(remote.ip()) == canonical(advertised.ip())
}

impl Shared {
    /// Addresses we accept connections from: peers' IPs and `control_allow`.
    fn admits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.peers.borrow().iter().any(|p| canonical(p.ip()) == ip) || self.control_allowed(ip)
    }

    /// Addresses operator connections are taken from.
    fn control_allowed(&self, ip: IpAddr) -> bool {
        self.control_allow.borrow().iter().any(|c| c.contains(ip))
    }

    /// Checks a peer's hello against its certificate, our cluster and our peer list; a
    /// good one gives the address it advertises.
    fn check_hello(
        &self,
        conn: &quinn::Connection,
        h: &Hello,
        dialed: Option<SocketAddr>,
    ) -> Result<SocketAddr, (CloseCode, String)> {
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
        let remote = conn.remote_address();
        if !same_host(remote, advertised) {
            return Err((
                CloseCode::Identity,
                format!(
                    "node {} advertises {advertised} but connects from {}: a node's \
                     connections must come from its advertised IP (on a host with several \
                     addresses, set listen to the advertised IP)",
                    h.node,
                    remote.ip()
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
        Ok(advertised)
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

    #[test]
    fn a_hello_must_come_from_the_ip_it_advertises() {
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        // (connection from, hello advertises, admitted)
        let cases = [
            // The same host; behind NAT the source port differs, which is fine.
            ("10.0.0.1:7700", "10.0.0.1:7700", true),
            ("10.0.0.1:40123", "10.0.0.1:7700", true),
            // Another host claiming the address (a node certificate squatting a dead
            // node's address, or a multi-homed host whose packets leave from another IP).
            ("10.0.0.9:7700", "10.0.0.1:7700", false),
            ("127.0.0.3:7700", "127.0.0.1:7700", false),
            // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6, either way round.
            ("[::ffff:10.0.0.1]:7700", "10.0.0.1:7700", true),
            ("10.0.0.1:7700", "[::ffff:10.0.0.1]:7700", true),
            ("[::ffff:10.0.0.9]:7700", "10.0.0.1:7700", false),
            // IPv6 as it is; IPv4 and a v6 address that is not v4-mapped never match.
            ("[fd00::1]:9", "[fd00::1]:7700", true),
            ("[fd00::2]:7700", "[fd00::1]:7700", false),
            ("[::1]:7700", "127.0.0.1:7700", false),
            ("[::10.0.0.1]:7700", "10.0.0.1:7700", false),
        ];
        for (remote, advertised, ok) in cases {
            assert_eq!(
                same_host(sa(remote), sa(advertised)),
                ok,
                "from {remote}, advertising {advertised}"
            );
        }
    }

    #[test]
    fn only_a_node_certificate_passes_for_a_peer() {
        let dir = tempfile::tempdir().unwrap();
        crate::ca::init(dir.path()).unwrap();
        let n1 = NodeId::new("n1").unwrap();
        let alice = NodeId::new("alice").unwrap();
        crate::ca::issue_node(dir.path(), &n1).unwrap();
        crate::ca::issue_operator(dir.path(), &alice).unwrap();
        let leaf = |name: &str| {
            let certs =
                crate::config::tls::load_certs(&dir.path().join(format!("{name}.pem"))).unwrap();
            certs.into_iter().next().unwrap()
        };
        assert!(is_node_certificate(&leaf("n1")));
        assert!(!is_node_certificate(&leaf("alice")));
        // Not even the CA's own certificate.
        assert!(!is_node_certificate(&leaf("ca")));
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

    /// n1 listening, taking peer n3 (whose Net only dials, by hand), and n3.
    fn listener_and_dialer(
        dir: &std::path::Path,
    ) -> (Net, mpsc::Receiver<Inbound>, SocketAddr, Net) {
        crate::ca::init(dir).unwrap();
        let n3_addr = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (n1, n1_in, a) = node(dir, "n1", vec![n3_addr]);
        let (n3, _n3_in, c) = node(dir, "n3", vec![a]);
        // `node` picked its own port; n1 must list the one n3 advertises.
        n1.set_peers(vec![c]);
        n1.start();
        (n1, n1_in, a, n3)
    }

    async fn next_link(rx: &mut mpsc::Receiver<Inbound>) -> (Hello, Link) {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(Inbound::LinkUp { hello, link }) = rx.recv().await {
                    break (hello, link);
                }
            }
        })
        .await
        .expect("no link came up")
    }

    #[tokio::test]
    async fn connections_that_send_no_hello_hold_the_handshake_slots() {
        let dir = tempfile::tempdir().unwrap();
        let (_n1, _n1_in, a, n3) = listener_and_dialer(dir.path());
        let client = n3.shared.client.borrow().clone();
        // Complete TLS and say nothing, until the listener refuses one: the slots are
        // held until a hello comes. Opening them is quick, but not timed: give it room.
        let mut held = Vec::new();
        let mut refused = None;
        for _ in 0..MAX_HANDSHAKES * 3 {
            let connecting = n3
                .endpoint
                .connect_with(client.clone(), a, proto::PEER_SERVER_NAME)
                .unwrap();
            match tokio::time::timeout(Duration::from_secs(20), connecting).await {
                Ok(Ok(conn)) => held.push(conn),
                Ok(Err(e)) => {
                    refused = Some(e);
                    break;
                }
                Err(_) => panic!("a handshake hung"),
            }
        }
        let refused = refused.unwrap_or_else(|| {
            panic!(
                "{} connections without a hello were all taken: pre-hello connections hold no slot",
                held.len()
            )
        });
        assert!(
            matches!(refused, quinn::ConnectionError::ConnectionClosed(_)),
            "{refused}"
        );
        assert!(held.len() >= MAX_HANDSHAKES, "refused after {}", held.len());
        // Each silent connection is closed after the exchange timeout, saying why.
        let closed = tokio::time::timeout(Duration::from_secs(20), held[0].closed())
            .await
            .expect("a connection without a hello stayed open");
        assert_eq!(transport::close_code(&closed), Some(CloseCode::Protocol));
        assert!(describe_close(&closed).contains("no hello"), "{closed}");
    }

    #[tokio::test]
    async fn a_newer_link_from_a_node_replaces_the_older_and_streams_take_one_frame_type() {
        let dir = tempfile::tempdir().unwrap();
        let (mut n1, mut n1_in, a, n3) = listener_and_dialer(dir.path());
        let (first, _) = dial(&n3.endpoint, &n3.shared, a).await.unwrap();
        let (hello, link) = next_link(&mut n1_in).await;
        assert_eq!(link.direction, Direction::Accepted);
        n1.admit(hello.node, hello.incarnation, link);
        let (second, _) = dial(&n3.endpoint, &n3.shared, a).await.unwrap();
        let (hello, link) = next_link(&mut n1_in).await;
        n1.admit(hello.node, hello.incarnation, link);
        let closed = tokio::time::timeout(Duration::from_secs(20), first.closed())
            .await
            .expect("the older link stayed open");
        assert_eq!(transport::close_code(&closed), Some(CloseCode::Replaced));
        assert!(second.close_reason().is_none());

        // A request stream takes a state request, nothing else: a hello there is refused
        // on that stream (reset), and the link stays.
        let (mut send, mut recv) = second.open_bi().await.unwrap();
        write_frame(&mut send, &Frame::Hello(n3.shared.hello.clone()))
            .await
            .unwrap();
        send.finish().unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(20), recv.read_to_end(64))
            .await
            .expect("no answer to a hello on a request stream");
        let protocol = quinn::VarInt::from_u32(CloseCode::Protocol as u32);
        assert!(
            matches!(answer, Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(c))) if c == protocol),
            "{answer:?}"
        );
        // A state request is answered on the same link.
        let (mut send, mut recv) = second.open_bi().await.unwrap();
        write_frame(&mut send, &Frame::StateRequest).await.unwrap();
        send.finish().unwrap();
        let state =
            tokio::time::timeout(Duration::from_secs(20), read_peer::<NodeState>(&mut recv))
                .await
                .expect("no state")
                .unwrap();
        assert_eq!(state.node.as_str(), "n1");
        assert!(second.close_reason().is_none());
    }
}
