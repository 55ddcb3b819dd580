//! A bare QUIC client for tests that play a misbehaving peer: it presents whatever
//! certificate the test gives it and sends whatever hello the test writes, where a real
//! agent's config check would refuse to start.
//!
//! Blocking API over a private current-thread runtime, so tests stay plain `#[test]`s.

use std::net::{Ipv4Addr, SocketAddr};
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = client_config(trust_ca, cert, key);
        let endpoint = {
            let _guard = rt.enter();
            let mut e = quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
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
        self.rt.block_on(async {
            let conn = self.connect(server).await?;
            let exchange = async {
                let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                let bytes =
                    proto::encode_frame(&proto::Frame::Hello(hello)).map_err(|e| e.to_string())?;
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
