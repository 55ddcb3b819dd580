//! The agent's QUIC socket: a quinn [`Runtime`] whose UDP socket wakes the event loop
//! only when a datagram can be read.
//!
//! Owns the endpoint's UDP socket once quinn hands it over ([`QuicRuntime`]'s
//! `wrap_udp_socket`): its registration with tokio's reactor, reading and sending through
//! quinn-udp's [`UdpSocketState`], and the answer to quinn's "may I send?"
//! ([`UdpPoller`]). Timers, spawning and the clock are [`quinn::TokioRuntime`]'s.
//!
//! Why: quinn's own tokio runtime wraps the socket in `tokio::net::UdpSocket`, registered
//! edge-triggered for reading *and* writing, so every datagram sent makes the socket
//! writable again once the kernel frees its buffer, and the loop wakes for that alone (a
//! fifth to a quarter of an idle agent's wake-ups). A UDP socket is almost always
//! writable; here it is registered for reading only.
//!
//! Writability: a send is attempted at once ([`UdpPoller::poll_writable`] is ready) until
//! one returns `WouldBlock`. From then on the socket is *full*, and a poller that is asked
//! waits on a registration of its own, write interest only, of a `dup` of the socket,
//! which it drops (deregisters) as soon as that reports writable. Registering reports the
//! readiness the socket has at that moment, so space freed between the failed send and
//! the registration is not missed; each waiting poller (one per connection) has its own,
//! so every connection that waits is woken, not only the last one to ask. Blocked sends
//! are numbered: a registration made after the n-th says the socket is no longer full
//! only up to the n-th, so one made before a later block cannot end it. No lock: the
//! state shared between pollers is two counters. The cost of a wait is a `dup`, two
//! `epoll_ctl` and a wake-up, on a socket that is then congested anyway; the idle cost is
//! nothing.
//!
//! This module must never keep a write registration alive once the socket was writable
//! (that brings back the wake per datagram sent), report the socket writable while a send
//! is known to have blocked and nothing has said otherwise since (quinn would retry at
//! once, for ever), or read or send anything but what quinn asks for. The operator tool
//! keeps quinn's default runtime; only the agent's endpoint uses this one.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, TokioRuntime, UdpPoller};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// quinn's tokio runtime, but with a UDP socket registered for reading only (see the
/// module's documentation).
#[derive(Debug, Default)]
pub struct QuicRuntime {
    #[cfg(test)]
    hooks: Arc<tests::Hooks>,
}

impl Runtime for QuicRuntime {
    /// A timerfd per connection ([`crate::timer::Deadline`]): tokio's wheel would wake
    /// the loop at its 64 ms slot boundaries and round every deadline up, which made the
    /// loss timer race the peer's delayed ACK. Should a timerfd not be had (out of
    /// descriptors), tokio's timer stands in.
    fn new_timer(&self, i: Instant) -> Pin<Box<dyn AsyncTimer>> {
        TokioRuntime.new_timer(i)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        TokioRuntime.spawn(future);
    }

    fn wrap_udp_socket(&self, sock: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // quinn-udp's state sets the socket non-blocking (and its ECN, GRO and
        // don't-fragment options) before the reactor sees it.
        let state = UdpSocketState::new((&sock).into())?;
        Ok(Arc::new(Socket {
            io: register(sock, Interest::READABLE)?,
            state,
            blocked: AtomicU64::new(0),
            cleared: AtomicU64::new(0),
            #[cfg(test)]
            hooks: self.hooks.clone(),
        }))
    }

    fn now(&self) -> Instant {
        TokioRuntime.now()
    }
}

/// `io` in tokio's reactor for `interest` alone (edge-triggered): the agent's one way to
/// register a descriptor of its own (this socket, the driver's timerfd).
///
/// tokio 1.54 made its registering constructors `unsafe` (tokio#8587): an `AsyncFd`
/// must not outlive its fd, nor see `as_raw_fd` change. This crate forbids unsafe code;
/// the safe constructor is kept (deprecated, not removed) and is sound here, because the
/// `AsyncFd` owns `io` (a `UdpSocket`, an `OwnedFd`), whose one fd stays open until the
/// `AsyncFd` drops.
#[expect(
    deprecated,
    reason = "the unsafe replacement is forbidden here; see above"
)]
pub(crate) fn register<T: std::os::fd::AsRawFd>(
    io: T,
    interest: Interest,
) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(io, interest)
}

#[derive(Debug)]
struct Socket {
    io: AsyncFd<UdpSocket>,
    state: UdpSocketState,
    /// Sends that returned `WouldBlock`, ever.
    blocked: AtomicU64,
    /// The highest `blocked` that a write registration made after it saw writable.
    cleared: AtomicU64,
    #[cfg(test)]
    hooks: Arc<tests::Hooks>,
}

impl Socket {
    /// The blocked send a wait starting now is for, or `None` while none is outstanding.
    fn full(&self) -> Option<u64> {
        let blocked = self.blocked.load(Ordering::Acquire);
        (self.cleared.load(Ordering::Acquire) < blocked).then_some(blocked)
    }

    /// Waits until the socket is writable, on a registration of its own made now (after
    /// blocked send `n`), which is dropped when this returns.
    async fn wait_writable(self: Arc<Self>, n: u64) -> io::Result<()> {
        let writer = register(self.io.get_ref().try_clone()?, Interest::WRITABLE)?;
        #[cfg(test)]
        self.hooks.registered();
        // The guard is not cleared: the registration goes with it.
        drop(writer.writable().await?);
        self.cleared.fetch_max(n, Ordering::AcqRel);
        Ok(())
    }
}

impl AsyncUdpSocket for Socket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Poller {
            socket: self,
            wait: None,
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        #[cfg(test)]
        let sent = if self.hooks.refuse_send() {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            self.state.send(self.io.get_ref().into(), transmit)
        };
        #[cfg(not(test))]
        let sent = self.state.send(self.io.get_ref().into(), transmit);
        if let Err(e) = &sent
            && e.kind() == io::ErrorKind::WouldBlock
        {
            #[cfg(test)]
            self.hooks.blocked();
            self.blocked.fetch_add(1, Ordering::AcqRel);
        }
        sent
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.io.poll_read_ready(cx))?;
            // A WouldBlock clears the readiness, and the next turn registers the waker.
            if let Ok(got) = guard.try_io(|io| self.state.recv(io.get_ref().into(), bufs, meta)) {
                // Fewer messages than asked for: the queue was empty when the call
                // returned, so the readiness goes now instead of after one more call that
                // would only say WouldBlock (half of an idle agent's receive calls, on a
                // machine where a system call costs tens of microseconds). Nothing is
                // missed: the registration is edge-triggered, and a datagram that arrives
                // after this call raises a new edge, which the reactor reads only after
                // this task has returned.
                if got.as_ref().is_ok_and(|&n| n < bufs.len().min(meta.len())) {
                    guard.clear_ready();
                }
                return Poll::Ready(got);
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }
}

type Wait = Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>;

/// One connection's view of whether it may send.
struct Poller {
    socket: Arc<Socket>,
    /// While the socket is full and this poller was asked: its wait.
    wait: Option<Wait>,
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller")
            .field("waiting", &self.wait.is_some())
            .finish_non_exhaustive()
    }
}

impl UdpPoller for Poller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let wait = match &mut this.wait {
            Some(wait) => wait,
            None => {
                let Some(n) = this.socket.full() else {
                    return Poll::Ready(Ok(()));
                };
                this.wait
                    .insert(Box::pin(this.socket.clone().wait_writable(n)))
            }
        };
        let polled = wait.as_mut().poll(cx);
        #[cfg(test)]
        if polled.is_pending() {
            this.socket.hooks.waited();
        }
        let done = ready!(polled);
        this.wait = None;
        Poll::Ready(done)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// What the tests watch and inject: counters of the rare path, and sends refused as
    /// if the buffer were full (on loopback the kernel frees a datagram's buffer within
    /// the send itself, so a real `EAGAIN` is rare there).
    #[derive(Debug, Default)]
    pub(super) struct Hooks {
        /// Refuse every n-th send (0: none).
        refuse_every: AtomicU64,
        sends: AtomicU64,
        blocked: AtomicU64,
        registered: AtomicU64,
        waited: AtomicU64,
    }

    impl Hooks {
        pub(super) fn refuse_send(&self) -> bool {
            let n = self.refuse_every.load(Ordering::Relaxed);
            let i = self.sends.fetch_add(1, Ordering::Relaxed) + 1;
            n != 0 && i.is_multiple_of(n)
        }
        pub(super) fn blocked(&self) {
            self.blocked.fetch_add(1, Ordering::Relaxed);
        }
        pub(super) fn registered(&self) {
            self.registered.fetch_add(1, Ordering::Relaxed);
        }
        pub(super) fn waited(&self) {
            self.waited.fetch_add(1, Ordering::Relaxed);
        }
        fn get(c: &AtomicU64) -> u64 {
            c.load(Ordering::Relaxed)
        }
    }

    fn runtime() -> (Arc<QuicRuntime>, Arc<Hooks>) {
        let rt = QuicRuntime::default();
        let hooks = rt.hooks.clone();
        (Arc::new(rt), hooks)
    }

    /// A server and a client endpoint on loopback, each on its own [`QuicRuntime`]; the
    /// client's UDP send buffer is set to `sndbuf` bytes first, if given.
    fn pair(sndbuf: Option<usize>) -> (quinn::Endpoint, quinn::Endpoint, Arc<Hooks>, Arc<Hooks>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let der = cert.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        server_tls.alpn_protocols = vec![b"t".to_vec()];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let mut client_tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_tls.alpn_protocols = vec![b"t".to_vec()];
        let mut server_cfg = quinn::ServerConfig::with_crypto(Arc::new(
            quinn::crypto::rustls::QuicServerConfig::try_from(server_tls).unwrap(),
        ));
        let mut transport = quinn::TransportConfig::default();
        transport.datagram_receive_buffer_size(Some(1 << 16));
        let transport = Arc::new(transport);
        server_cfg.transport_config(transport.clone());
        let mut client_cfg = quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(client_tls).unwrap(),
        ));
        client_cfg.transport_config(transport);

        let (srt, shooks) = runtime();
        let server = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_cfg),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            srt,
        )
        .unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Some(bytes) = sndbuf {
            let state = UdpSocketState::new((&sock).into()).unwrap();
            state.set_send_buffer_size((&sock).into(), bytes).unwrap();
        }
        let (crt, chooks) = runtime();
        let mut client =
            quinn::Endpoint::new(quinn::EndpointConfig::default(), None, sock, crt).unwrap();
        client.set_default_client_config(client_cfg);
        (server, client, shooks, chooks)
    }

    async fn connect(
        server: &quinn::Endpoint,
        client: &quinn::Endpoint,
    ) -> (quinn::Connection, quinn::Connection) {
        let addr = server.local_addr().unwrap();
        let (s, c) = tokio::join!(
            async { server.accept().await.unwrap().await.unwrap() },
            async { client.connect(addr, "localhost").unwrap().await.unwrap() },
        );
        (s, c)
    }

    /// `bytes` from the client to the server over one stream, and what the server read.
    async fn push(s: &quinn::Connection, c: &quinn::Connection, bytes: usize) -> usize {
        let chunk = vec![0x5a_u8; 64 * 1024];
        let (read, ()) = tokio::join!(
            async {
                let mut recv = s.accept_uni().await.unwrap();
                let mut n = 0;
                while let Some(got) = recv.read_chunk(1 << 20, true).await.unwrap() {
                    assert!(got.bytes.iter().all(|b| *b == 0x5a));
                    n += got.bytes.len();
                }
                n
            },
            async {
                let mut send = c.open_uni().await.unwrap();
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    send.write_all(&chunk[..n]).await.unwrap();
                    left -= n;
                }
                send.finish().unwrap();
                send.stopped().await.unwrap();
            },
        );
        read
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn two_endpoints_shake_hands_and_exchange_datagrams_and_a_stream() {
        current_thread().block_on(async {
            let (server, client, shooks, chooks) = pair(None);
            let (s, c) = connect(&server, &client).await;

            c.send_datagram(bytes::Bytes::from_static(b"ping")).unwrap();
            assert_eq!(&s.read_datagram().await.unwrap()[..], b"ping");
            s.send_datagram(bytes::Bytes::from_static(b"pong")).unwrap();
            assert_eq!(&c.read_datagram().await.unwrap()[..], b"pong");

            let (mut send, mut recv) = c.open_bi().await.unwrap();
            send.write_all(b"hello over a stream").await.unwrap();
            send.finish().unwrap();
            let (mut s_send, mut s_recv) = s.accept_bi().await.unwrap();
            assert_eq!(
                s_recv.read_to_end(1024).await.unwrap(),
                b"hello over a stream"
            );
            s_send.write_all(b"and back").await.unwrap();
            s_send.finish().unwrap();
            assert_eq!(recv.read_to_end(1024).await.unwrap(), b"and back");

            c.close(0u32.into(), b"done");
            client.wait_idle().await;
            // Nothing blocked, so nothing was ever registered for writing.
            for h in [&shooks, &chooks] {
                assert_eq!(Hooks::get(&h.registered), 0);
            }
        });
    }

    /// 20 MB through a client whose send buffer is the kernel's minimum; returns how
    /// many sends the kernel refused.
    fn tiny_buffer_transfer() -> u64 {
        current_thread().block_on(async {
            let (server, client, _, chooks) = pair(Some(1));
            let (s, c) = connect(&server, &client).await;
            let bytes = 20 << 20;
            let read = tokio::time::timeout(Duration::from_secs(60), push(&s, &c, bytes))
                .await
                .expect("20 MB did not get through within 60 s");
            assert_eq!(read, bytes);
            let blocked = Hooks::get(&chooks.blocked);
            eprintln!(
                "tiny send buffer: {} sends, {blocked} refused by the kernel, {} registrations, {} waits",
                Hooks::get(&chooks.sends),
                Hooks::get(&chooks.registered),
                Hooks::get(&chooks.waited),
            );
            blocked
        })
    }

    /// On plain loopback the kernel frees a datagram's buffer within the send itself
    /// (loopback has no queue), so it refuses none here; the transfer must complete all
    /// the same.
    #[test]
    fn a_stream_completes_through_a_tiny_send_buffer() {
        tiny_buffer_transfer();
    }

    /// The same transfer where the kernel does refuse sends: run again in a network
    /// namespace of its own (`unshare -n`, root only; skipped with a note otherwise)
    /// whose loopback has a token-bucket queue, where a datagram stays charged to the
    /// socket's buffer until it leaves. Refusals must happen, and the transfer complete.
    #[test]
    fn a_stream_completes_when_the_kernel_refuses_sends() {
        const INSIDE: &str = "QUORATE_TEST_SHAPED_LOOPBACK";
        const NAME: &str = "net::socket::tests::a_stream_completes_when_the_kernel_refuses_sends";
        if std::env::var_os(INSIDE).is_some() {
            let refused = tiny_buffer_transfer();
            assert!(
                refused > 0,
                "the kernel refused no send: the test proves nothing"
            );
            return;
        }
        let setup = "ip link set lo up && \
                     tc qdisc add dev lo root tbf rate 200mbit burst 64kb latency 50ms";
        let shaped = |then: &str| {
            std::process::Command::new("unshare")
                .args(["-n", "sh", "-c", &format!("{setup} && {then}")])
                .output()
        };
        match shaped("true") {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let why = String::from_utf8_lossy(&o.stderr);
                eprintln!("skipped: no shaped loopback of its own ({})", why.trim());
                return;
            }
            Err(e) => {
                eprintln!("skipped: no unshare ({e})");
                return;
            }
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("unshare")
            .args([
                "-n",
                "sh",
                "-c",
                &format!("{setup} && exec \"$0\" --exact {NAME} --nocapture"),
            ])
            .arg(exe)
            .env(INSIDE, "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{text}");
        assert!(
            out.status.success() && text.contains("1 passed"),
            "in the namespace:\n{text}"
        );
    }

    /// Every 7th send is refused as a full buffer would refuse it. Every refusal opens an
    /// episode that a real registration must close (the socket is writable, so epoll says
    /// so at once); a lost wake-up hangs the transfer, a registration per poll would show
    /// as more registrations than refusals, a busy loop as far more waits.
    #[test]
    fn refused_sends_wait_for_writability_and_nothing_is_lost() {
        current_thread().block_on(async {
            let (server, client, _, chooks) = pair(None);
            let (s, c) = connect(&server, &client).await;
            chooks.refuse_every.store(7, Ordering::Relaxed);
            let bytes = 20 << 20;
            let read = tokio::time::timeout(Duration::from_secs(60), push(&s, &c, bytes))
                .await
                .expect("20 MB did not get through within 60 s: a lost wake-up?");
            assert_eq!(read, bytes);
            let blocked = Hooks::get(&chooks.blocked);
            let registered = Hooks::get(&chooks.registered);
            let waited = Hooks::get(&chooks.waited);
            eprintln!("refused {blocked}, registrations {registered}, waits {waited}");
            assert!(blocked > 100, "refused only {blocked} sends");
            assert!((1..=blocked).contains(&registered));
            // About one wait per refusal here; a few more where packets arriving wake the
            // connection while it waits (a queue on loopback). A wait that re-armed
            // itself would make thousands.
            assert!(
                waited <= 10 * blocked,
                "{waited} waits for {blocked} refusals"
            );
        });
    }
}
