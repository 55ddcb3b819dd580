//! A bare QUIC client for tests that play a misbehaving peer: it presents whatever
//! certificate the test gives it, from whatever loopback address, and sends whatever
//! hello (or any other first frame) the test writes, where a real agent's config check
//! would refuse to start. Beside it, what an attacker without a certificate can send:
//! connection attempts from sources that never answer ([`Client::initials`],
//! [`send_from`]), and real packets captured on loopback and sent again ([`capture`],
//! [`replay`]; root only).
//!
//! Blocking API over a private current-thread runtime, so tests stay plain `#[test]`s.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How long a handshake or a hello exchange may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// After a handshake completes on our side, how long we wait to see whether the server
/// closes the connection anyway (it checks our certificate after we think we are done).
const SETTLE: Duration = Duration::from_millis(500);

/// How the server answered a hello.
#[derive(Debug, Clone, PartialEq)]
pub enum HelloOutcome {
    /// It answered with its own hello: we were admitted.
    Accepted(proto::Hello),
    /// It closed the connection; the text has the close code and reason.
    Refused(String),
}

/// A QUIC client endpoint with one identity, speaking ALPN `quorate-peer/1`.
pub struct Client {
    rt: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
}

impl Client {
    /// Trusts `trust_ca` for the server's certificate and presents `cert`/`key`.
    ///
    /// # Panics
    ///
    /// If a file cannot be read or the endpoint cannot be bound.
    pub fn new(trust_ca: &Path, cert: &Path, key: &Path) -> Self {
        Self::new_at(IpAddr::from(Ipv4Addr::LOCALHOST), trust_ca, cert, key)
    }

    /// [`new`](Self::new), with connections coming from `ip` (any of 127.0.0.0/8 works on
    /// Linux loopback without setup).
    ///
    /// # Panics
    ///
    /// If a file cannot be read or the endpoint cannot be bound.
    pub fn new_at(ip: IpAddr, trust_ca: &Path, cert: &Path, key: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = client_config(trust_ca, cert, key);
        let endpoint = {
            let _guard = rt.enter();
            let mut e = quinn::Endpoint::client(SocketAddr::from((ip, 0)))
                .expect("bind a QUIC client endpoint");
            e.set_default_client_config(config);
            e
        };
        Self { rt, endpoint }
    }

    /// The UDP address connections come from.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("endpoint address")
    }

    /// Connects to `server` and reports whether the connection was established and not
    /// closed by the server within a short settling time. The connection is then closed.
    pub fn handshake(&self, server: SocketAddr) -> Result<(), String> {
        self.rt.block_on(async {
            let conn = self.connect(server).await?;
            let result = match tokio::time::timeout(SETTLE, conn.closed()).await {
                Ok(e) => Err(format!("closed by the server: {e}")),
                Err(_) => Ok(()),
            };
            conn.close(0u32.into(), b"test done");
            result
        })
    }

    /// Connects to `server` and returns the certificate it presented (DER), then closes.
    ///
    /// # Errors
    ///
    /// If the handshake fails.
    pub fn server_cert(&self, server: SocketAddr) -> Result<Vec<u8>, String> {
        self.rt.block_on(async {
            let conn = self.connect(server).await?;
            let cert = conn
                .peer_identity()
                .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
                .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
                .ok_or_else(|| "no server certificate".to_owned());
            conn.close(0u32.into(), b"test done");
            cert
        })
    }

    /// Connects to `server`, sends `hello` as the dialer does, and reports the answer.
    ///
    /// # Errors
    ///
    /// If the handshake itself fails.
    pub fn hello(&self, server: SocketAddr, hello: proto::Hello) -> Result<HelloOutcome, String> {
        let bytes = proto::encode_frame(&proto::Frame::Hello(hello)).map_err(|e| e.to_string())?;
        self.first_frame(server, bytes)
    }

    /// Connects to `server`, sends `bytes` (any frame, or anything) on the first stream
    /// where the hello belongs, and reports the answer as [`hello`](Self::hello) does.
    ///
    /// # Errors
    ///
    /// If the handshake itself fails.
    pub fn first_frame(&self, server: SocketAddr, bytes: Vec<u8>) -> Result<HelloOutcome, String> {
        self.rt.block_on(async {
            let conn = self.connect(server).await?;
            let exchange = async {
                let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                send.write_all(&bytes).await.map_err(|e| e.to_string())?;
                send.finish().map_err(|e| e.to_string())?;
                let mut header = [0u8; proto::FRAME_HEADER_LEN];
                recv.read_exact(&mut header)
                    .await
                    .map_err(|e| e.to_string())?;
                let len = proto::frame_body_len(header).map_err(|e| e.to_string())?;
                let mut body = vec![0u8; len];
                recv.read_exact(&mut body)
                    .await
                    .map_err(|e| e.to_string())?;
                proto::decode_frame_body(&body).map_err(|e| e.to_string())
            };
            let answer = tokio::time::timeout(TIMEOUT, exchange)
                .await
                .unwrap_or_else(|_| Err("no answer in time".into()));
            let outcome = match answer {
                Ok(proto::Frame::Hello(h)) => HelloOutcome::Accepted(h),
                Ok(other) => HelloOutcome::Refused(format!("answered with {other:?}")),
                Err(e) => {
                    let closed = tokio::time::timeout(TIMEOUT, conn.closed()).await;
                    HelloOutcome::Refused(match closed {
                        Ok(reason) => describe(&reason),
                        Err(_) => e,
                    })
                }
            };
            conn.close(0u32.into(), b"test done");
            Ok(outcome)
        })
    }

    /// `n` distinct QUIC Initial packets, each the first datagram of a connection attempt
    /// of this client's (its own connection ids, ALPN and server name), captured on a
    /// socket that never answers. Sent from a source that never reads the answer
    /// ([`send_from`]), each is a connection attempt from a spoofed address.
    ///
    /// # Panics
    ///
    /// If no packets can be captured.
    pub fn initials(&self, n: usize) -> Vec<Vec<u8>> {
        self.rt.block_on(async {
            let sink = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .expect("bind a sink");
            let to = sink.local_addr().expect("sink address");
            let mut seen = HashSet::new();
            let mut packets = Vec::with_capacity(n);
            let mut attempts = Vec::new();
            let mut buf = vec![0u8; 2048];
            while packets.len() < n {
                let connecting = self
                    .endpoint
                    .connect(to, proto::PEER_SERVER_NAME)
                    .expect("start a connection attempt");
                attempts.push(connecting);
                let len = tokio::time::timeout(TIMEOUT, sink.recv(&mut buf))
                    .await
                    .expect("an Initial within the timeout")
                    .expect("read the sink");
                let packet = &buf[..len];
                // Long header: flags, version (4), DCID length, DCID. A retransmission
                // repeats a DCID: keep one packet per connection attempt.
                if let Some(&dcid_len) = packet.get(5)
                    && let Some(dcid) = packet.get(6..6 + usize::from(dcid_len))
                    && seen.insert(dcid.to_vec())
                {
                    packets.push(packet.to_vec());
                }
            }
            drop(attempts);
            packets
        })
    }

    async fn connect(&self, server: SocketAddr) -> Result<quinn::Connection, String> {
        let connecting = self
            .endpoint
            .connect(server, proto::PEER_SERVER_NAME)
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(TIMEOUT, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("handshake timed out".into()),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"bye");
    }
}

/// `Identity: certificate does not name…` for an application close, else quinn's text.
fn describe(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason);
            match proto::CloseCode::from_u64(c.error_code.into_inner()) {
                Some(code) => format!("{code:?}: {reason}"),
                None => format!("code {}: {reason}", c.error_code),
            }
        }
        other => other.to_string(),
    }
}

fn client_config(trust_ca: &Path, cert: &Path, key: &Path) -> quinn::ClientConfig {
    let read_certs = |p: &Path| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(p)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(trust_ca) {
        roots.add(c).expect("a usable CA certificate");
    }
    let chain = read_certs(cert);
    let key =
        PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("a client certificate and key");
    tls.alpn_protocols = vec![proto::ALPN_PEER.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS config");
    quinn::ClientConfig::new(Arc::new(crypto))
}

/// Sends each packet to `server` from a socket of its own on `(from, random port)`, and
/// returns the sockets: while the caller holds them, answers reach an open socket that
/// never reads, as they would reach a host whose address was spoofed.
///
/// # Panics
///
/// If a socket cannot be bound.
pub fn send_from(from: IpAddr, server: SocketAddr, packets: &[Vec<u8>]) -> Vec<UdpSocket> {
    packets
        .iter()
        .map(|p| {
            let socket = UdpSocket::bind((from, 0)).expect("bind a UDP socket");
            // A full socket buffer drops this one: as on a real network.
            let _ = socket.send_to(p, server);
            socket
        })
        .collect()
}

/// The QUIC 1-RTT packets (short header) sent from UDP port `from` to UDP port `to` on
/// 127.0.0.1 during `duration`, as whole IPv4 packets, read from a raw socket.
///
/// # Errors
///
/// If raw sockets cannot be opened (not root).
#[allow(unsafe_code)]
pub fn capture(from: u16, to: u16, duration: Duration) -> Result<Vec<Vec<u8>>, String> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    // SAFETY: socket(2) has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP) };
    if fd < 0 {
        return Err(format!("a raw socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let wait = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: `wait` is a valid timeval for the duration of the call, and its size is
    // the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const wait).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!("SO_RCVTIMEO: {}", std::io::Error::last_os_error()));
    }
    let mut packets = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let clock = crate::Stopwatch::start();
    while clock.elapsed() < duration {
        // SAFETY: `buf` is valid for writes of its whole length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else {
            continue; // the timeout: look at the clock again
        };
        let packet = &buf[..n];
        let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        let port = |at: usize| {
            packet
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let short_header = packet.get(ihl + 8).is_some_and(|b| b & 0x80 == 0);
        if ihl >= 20 && port(ihl) == Some(from) && port(ihl + 2) == Some(to) && short_header {
            packets.push(packet.to_vec());
        }
    }
    Ok(packets)
}

/// Sends whole IPv4 packets (as [`capture`] returns them) again, source address and port
/// included, through a raw socket. The UDP checksum is cleared (loopback may have left a
/// partial one; zero means "none" in IPv4); the kernel fills in the IP header's.
///
/// # Errors
///
/// If raw sockets cannot be opened (not root) or a packet cannot be sent.
#[allow(unsafe_code)]
pub fn replay(packets: &[Vec<u8>]) -> Result<(), String> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    // SAFETY: socket(2) has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(format!("a raw socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    for packet in packets {
        let mut packet = packet.clone();
        let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        if let Some(sum) = packet.get_mut(ihl + 6..ihl + 8) {
            sum.fill(0);
        }
        // SAFETY: `packet` is valid for reads of its length, `to` is a sockaddr_in of
        // the size passed, both live across the call.
        let rc = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(format!("sendto: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
