//! Health endpoints for load balancers, `/cluster` and `/metrics` for people and tools,
//! and (optionally) HAProxy's agent-check port.
//!
//! Owns: the HTTP thread and its current-thread runtime, the accept loop and who gets a
//! connection slot (the rule and the numbers are [`admission`]'s; refusals and slow or
//! malformed clients are counted and logged through [`RateLog`]), turning a hyper
//! request into a [`routes::Request`], counting every answer by endpoint and code
//! ([`requests`]), and hearing what HAProxy says about this node
//! (`X-Haproxy-Server-State`, from `http.allow` only; [`balancer`] paces what reaches
//! the driver). It takes no commands: those come over the operator channel
//! (`crate::ctl`), with mutual TLS.
//!
//! Served on a thread of its own, so neither probes nor heartbeats nor a busy driver can
//! starve an answer (linkerd's admin server does the same). Every answer is computed from
//! the latest [`ClusterView`] snapshot by the pure [`routes::route`]; this module must
//! never await the driver, a probe or a lock (the balancer state is a `watch` write),
//! nor let addresses outside `http.allow` take the slots kept for it.

pub mod admission;
pub mod balancer;
pub mod haproxy_agent;
pub mod metrics;
pub mod requests;
pub mod routes;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;

use crate::clock;
use crate::ratelog::{RateLog, Refusal};
use crate::view::ClusterView;
use admission::{Counters, Gate, HEADER_TIMEOUT, Held, Limits, MAX_BUF, MAX_CONNECTIONS, allowed};
use balancer::Heard;
use haproxy_agent::ServerState;
use requests::{Endpoint, Requests};

const X_QUORATE_NODE: HeaderName = HeaderName::from_static("x-quorate-node");
const X_HAPROXY_SERVER_STATE: HeaderName = HeaderName::from_static("x-haproxy-server-state");

/// File descriptors kept for everything else the agent opens (its QUIC socket, probes,
/// files, the agent-check port) when the limit bounds the HTTP slots.
const FD_HEADROOM: u64 = 256;

/// The addresses [`spawn`] bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub http: SocketAddr,
    /// The agent-check port, when one was asked for.
    pub agent_check: Option<SocketAddr>,
}

fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {what} {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The HTTP listener, with a backlog of [`admission::BACKLOG`] (std's is 128). Needs a
/// runtime context (the caller enters the HTTP runtime).
fn listen_http(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let fail = |e: std::io::Error| anyhow::anyhow!("cannot listen on http {addr}: {e}");
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(fail)?;
    // As std's bind does: a restart must not fail on the old connections' TIME_WAIT.
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(addr).map_err(fail)?;
    socket.listen(admission::BACKLOG).map_err(fail)
}

/// The connection slots the file descriptor limit leaves room for. A soft limit below
/// what [`MAX_CONNECTIONS`] needs (systemd's default soft limit is 1024) is raised
/// toward the hard one, as Go's runtime does; slots beyond the limit would make accept
/// fail, and a failing accept leaves the balancer's connection in the backlog.
fn budget() -> Limits {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = MAX_CONNECTIONS as u64 + FD_HEADROOM;
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(cur) = lim.current.filter(|c| *c < want) {
        let raised = lim.maximum.map_or(want, |m| m.min(want));
        if raised > cur {
            let new = Rlimit {
                current: Some(raised),
                maximum: lim.maximum,
            };
            if setrlimit(Resource::Nofile, new).is_ok() {
                lim.current = Some(raised);
            }
        }
    }
    let slots = lim.current.map_or(MAX_CONNECTIONS, |c| {
        usize::try_from(c.saturating_sub(FD_HEADROOM)).unwrap_or(MAX_CONNECTIONS)
    });
    if slots < MAX_CONNECTIONS {
        tracing::warn!(
            "the open-file limit ({}) leaves room for {slots} HTTP connections, not \
             {MAX_CONNECTIONS}: raise LimitNOFILE in the agent's systemd unit (or ulimit -n) \
             to at least {want}",
            lim.current.unwrap_or_default()
        );
    }
    Limits::for_slots(slots)
}

/// Binds the HTTP port (and the agent-check port, if given) now, so a taken port fails
/// the start, and serves both on one thread of their own until the process exits. What
/// HAProxy says about this node goes to `balancer`, only when it changes and at most
/// once per [`balancer::TAKE_EVERY`].
pub fn spawn(
    listen: SocketAddr,
    view: watch::Receiver<Arc<ClusterView>>,
    balancer: watch::Sender<Option<ServerState>>,
    agent_check: Option<SocketAddr>,
) -> anyhow::Result<Bound> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the HTTP runtime: {e}"))?;
    let listener = {
        let _in_rt = rt.enter();
        listen_http(listen)?
    };
    let agent = agent_check
        .map(|a| bind(a, "haproxy agent-check"))
        .transpose()?;
    let bound = Bound {
        http: listener.local_addr()?,
        agent_check: agent.as_ref().map(|l| l.local_addr()).transpose()?,
    };
    let limits = budget();
    std::thread::Builder::new()
        .name("quorate-http".into())
        .spawn(move || {
            rt.block_on(async move {
                if let Some(agent) = agent {
                    match tokio::net::TcpListener::from_std(agent) {
                        Ok(l) => {
                            tokio::spawn(haproxy_agent::serve_agent_check(l, view.clone()));
                        }
                        Err(e) => tracing::error!("cannot serve the agent-check port: {e}"),
                    }
                }
                let (heard_tx, heard_rx) = watch::channel(None);
                tokio::spawn(balancer::forward(heard_rx, balancer));
                let server = Server {
                    view,
                    heard: heard_tx,
                    counters: Counters::default(),
                    requests: Requests::default(),
                    log: RateLog::new(),
                };
                serve(listener, Arc::new(server), limits).await;
            });
        })?;
    Ok(bound)
}

/// What every connection of the HTTP port shares.
struct Server {
    view: watch::Receiver<Arc<ClusterView>>,
    /// What the balancer said last (from `http.allow`), for [`balancer::forward`].
    heard: watch::Sender<Option<Heard>>,
    counters: Counters,
    requests: Requests,
    log: RateLog,
}

/// A connection's slot (given back when the connection ends) and whether it got as far
/// as a request.
struct Conn {
    _slot: Held,
    served: AtomicBool,
}

/// Accepts every connection (so the balancer's never waits in the backlog behind a
/// flood) and gives it a slot or closes it at once (with a reset: nothing is kept for
/// it, not even TIME_WAIT), per [`admission::admit`].
async fn serve(listener: tokio::net::TcpListener, server: Arc<Server>, limits: Limits) {
    let mut gate = Gate::new(limits);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and the like: `budget` keeps the slots below the limit, so
                // this is something else holding descriptors; wait a little.
                tracing::debug!("http accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let trusted = allowed(&server.view.borrow(), remote.ip());
        let slot = match gate.admit(remote.ip(), trusted) {
            Ok(slot) => slot,
            Err(why) => {
                server.counters.refused(why);
                server.log.warn(admission::refusal_kind(why), || {
                    admission::refusal_line("HTTP", remote, why, gate.slots())
                });
                let _ = stream.set_zero_linger();
                drop(stream);
                continue;
            }
        };
        server.counters.set_open(gate.slots().open());
        let _ = stream.set_nodelay(true);
        let conn = Arc::new(Conn {
            _slot: slot,
            served: AtomicBool::new(false),
        });
        tokio::spawn(connection(server.clone(), conn, stream, remote));
    }
}

async fn connection(
    server: Arc<Server>,
    conn: Arc<Conn>,
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
) {
    let service = {
        let (server, conn) = (server.clone(), conn.clone());
        hyper::service::service_fn(move |req| {
            conn.served.store(true, Ordering::Relaxed);
            let answer = answer(&server, remote, &req);
            async move { Ok::<_, Infallible>(answer) }
        })
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUF)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    let Err(e) = served else { return };
    if e.is_timeout() {
        // A keep-alive connection idle after its answers is closed the same way; only
        // one that never sent a whole request is worth a line.
        if !conn.served.load(Ordering::Relaxed) {
            server.counters.slow();
            server.log.warn(Refusal::HttpSlow, || {
                format!(
                    "closed an HTTP connection from {remote}: no complete request within {}s \
                     (a slow or idle client)",
                    HEADER_TIMEOUT.as_secs()
                )
            });
        }
    } else if e.is_parse() {
        server.counters.malformed();
        server.log.warn(Refusal::HttpMalformed, || {
            format!(
                "answered an HTTP client at {remote} with an error: not an HTTP/1.1 request ({e})"
            )
        });
    } else {
        tracing::debug!("http connection from {remote}: {e}");
    }
}

/// Hears what HAProxy says, waking the pacing task only when it changed (every check
/// carries the header; most say the same as the last one).
fn note_balancer(
    heard: &watch::Sender<Option<Heard>>,
    remote: IpAddr,
    req: &hyper::Request<Incoming>,
) {
    let Some(state) = req
        .headers()
        .get(X_HAPROXY_SERVER_STATE)
        .and_then(|v| v.to_str().ok())
        .and_then(haproxy_agent::parse_server_state)
    else {
        return;
    };
    heard.send_if_modified(|cur| {
        if cur.as_ref().is_some_and(|h| h.state == state) {
            false
        } else {
            *cur = Some(Heard {
                state,
                from: remote,
            });
            true
        }
    });
}

fn answer(
    server: &Server,
    remote: SocketAddr,
    req: &hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let snapshot = server.view.borrow().clone();
    // Only the balancer says what the balancer thinks: the header counts from
    // `http.allow` alone (anyone else could make this node report a spoofed state).
    if allowed(&snapshot, remote.ip()) {
        note_balancer(&server.heard, remote.ip(), req);
    } else if req.headers().contains_key(X_HAPROXY_SERVER_STATE) {
        server.log.warn(Refusal::BalancerHeader, || {
            format!(
                "ignored X-Haproxy-Server-State from {remote}: not in http.allow (if that is \
                 your load balancer, add its address to http.allow)"
            )
        });
    }
    let method = match *req.method() {
        hyper::Method::GET => routes::Method::Get,
        hyper::Method::HEAD => routes::Method::Head,
        hyper::Method::OPTIONS => routes::Method::Options,
        _ => routes::Method::Other,
    };
    let a = routes::route(
        &snapshot,
        &routes::Request {
            method,
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            remote: remote.ip(),
            now: clock::now(),
            boot_now: clock::boottime(),
            conns: server.counters.stats(),
            requests: &server.requests,
        },
        // The allow list comes with the snapshot: a reload changes it for the next
        // request, with no lock and no second channel.
        &snapshot.http_allow,
    );
    // Headers written straight into the map, names and constant values static: this is
    // the hot path (a balancer's every check), and it allocates only for the node name.
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    server
        .requests
        .count(Endpoint::of(req.uri().path()), status.as_u16());
    let len = a.body.len();
    let body = if method == routes::Method::Head {
        Bytes::new()
    } else {
        Bytes::from(a.body)
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(node) = HeaderValue::from_str(&snapshot.node) {
        h.insert(X_QUORATE_NODE, node);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if method == routes::Method::Head {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    for (k, v) in a.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::try_from(v),
        ) {
            h.append(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// One request over a fresh connection; the whole response as text.
    fn call(addr: SocketAddr, request: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn request(method: &str, target: &str, extra: &str) -> String {
        format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
    }

    #[test]
    fn serves_headers_balancer_state_and_agent_check_but_no_commands() {
        let view = routes::tests::view(true, true, vec![]);
        let (_view_tx, view_rx) = watch::channel(Arc::new(view));
        let (bal_tx, mut bal_rx) = watch::channel(None);
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let bound = spawn(any, view_rx, bal_tx, Some(any)).unwrap();

        let r = call(bound.http, &request("GET", "/health", ""));
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains("x-quorate-node: n1"), "{r}");
        assert!(
            r.ends_with("\"reasons\":[],\"role\":\"secondary\",\"status\":\"ok\",\"term\":0}\n"),
            "{r}"
        );

        let r = call(bound.http, &request("HEAD", "/health?fail=418", ""));
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.ends_with("\r\n\r\n"), "HEAD has no body: {r}");
        assert!(r.contains("content-length: "), "{r}");

        // The balancer's state: kept when it changes, ignored when garbage.
        assert!(bal_rx.borrow_and_update().is_none());
        let state = "X-Haproxy-Server-State: UP 2/3; name=bck/srv2; node=lb1; weight=1/2\r\n";
        let r = call(bound.http, &request("OPTIONS", "/", state));
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        // Handed on by the pacing task, on the HTTP thread: the first change at once.
        let clock = crate::clock::now();
        while !bal_rx.has_changed().unwrap() {
            assert!(crate::clock::now() - clock < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(5));
        }
        let seen = bal_rx.borrow_and_update().clone().unwrap();
        assert_eq!(
            (seen.state.as_str(), seen.weight.as_deref()),
            ("UP 2/3", Some("1/2"))
        );
        call(bound.http, &request("OPTIONS", "/", state));
        assert!(!bal_rx.has_changed().unwrap(), "same state: no wake-up");
        call(
            bound.http,
            &request("OPTIONS", "/", "X-Haproxy-Server-State: ???\r\n"),
        );
        assert!(!bal_rx.has_changed().unwrap());

        // From outside `http.allow` the header is not taken.
        let mut outside = routes::tests::view(true, true, vec![]);
        outside.http_allow = vec!["192.0.2.0/24".parse().unwrap()].into();
        let (_out_tx, out_rx) = watch::channel(Arc::new(outside));
        let (out_bal_tx, out_bal_rx) = watch::channel(None);
        let other = spawn(any, out_rx, out_bal_tx, None).unwrap();
        let r = call(other.http, &request("OPTIONS", "/", state));
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        // A first change is handed on within milliseconds: give it ample time.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!out_bal_rx.has_changed().unwrap());
        assert!(
            out_bal_rx.borrow().is_none(),
            "a spoofed balancer state was taken"
        );

        // Commands moved to the operator channel: a POST is refused.
        let r = call(
            bound.http,
            &request("POST", "/admin/undrain?node=n2", "Content-Length: 0\r\n"),
        );
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        assert!(r.contains("allow: GET, HEAD, OPTIONS"), "{r}");

        let mut agent = std::net::TcpStream::connect(bound.agent_check.unwrap()).unwrap();
        agent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut line = String::new();
        agent.read_to_string(&mut line).unwrap();
        assert_eq!(line, "up 100%\n");
    }

    /// A connection to `to` from the loopback address `ip`.
    async fn connect_from(ip: [u8; 4], to: SocketAddr) -> tokio::net::TcpStream {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::from((ip, 0))).unwrap();
        sock.connect(to).await.unwrap()
    }

    /// What the server sends on `s` until it closes (empty on a reset), within 10 s.
    async fn read_all(s: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out));
        match read.await {
            Ok(Ok(_)) | Ok(Err(_)) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => panic!("the server kept the connection open"),
        }
    }

    async fn get_live(s: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncWriteExt;
        s.write_all(request("GET", "/live", "").as_bytes())
            .await
            .unwrap();
        read_all(s).await
    }

    /// A source outside `http.allow` gets its share of connections and no more (the next
    /// is closed at once, while others are still served); an `http.allow` source has no
    /// such cap; an idle connection is closed after the header timeout.
    #[tokio::test(flavor = "current_thread")]
    async fn caps_connections_per_source_outside_http_allow() {
        let mut v = routes::tests::view(true, true, vec![]);
        v.http_allow = vec!["127.0.0.2/32".parse().unwrap()].into();
        let (_view_tx, view_rx) = watch::channel(Arc::new(v));
        let (bal_tx, _bal_rx) = watch::channel(None);
        let at = SocketAddr::from(([127, 0, 0, 1], 0));
        let to = spawn(at, view_rx, bal_tx, None).unwrap().http;
        let mut held = Vec::new();
        for _ in 0..admission::PER_SOURCE {
            held.push(connect_from([127, 0, 0, 1], to).await);
        }
        let mut extra = connect_from([127, 0, 0, 1], to).await;
        assert_eq!(
            get_live(&mut extra).await,
            "",
            "one connection too many was served"
        );
        // Another address outside http.allow is served meanwhile.
        let mut other = connect_from([127, 0, 0, 3], to).await;
        let out = get_live(&mut other).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        // http.allow has no cap per address.
        let mut lb = Vec::new();
        for _ in 0..admission::PER_SOURCE + 8 {
            lb.push(connect_from([127, 0, 0, 2], to).await);
        }
        let out = get_live(lb.last_mut().unwrap()).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        // The idle ones are closed after the header timeout, and their slots come back.
        let clock = crate::clock::now();
        assert_eq!(read_all(&mut held[0]).await, "");
        let waited = crate::clock::now() - clock;
        assert!(
            waited < admission::HEADER_TIMEOUT + Duration::from_secs(5),
            "{waited:?}"
        );
        drop(held);
        let mut again = connect_from([127, 0, 0, 1], to).await;
        let out = get_live(&mut again).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
}
