//! Health endpoints for load balancers, `/cluster` and `/metrics` for people and tools,
//! and (optionally) HAProxy's agent-check port.
//!
//! Owns: the HTTP thread and its current-thread runtime, connection limits, turning a
//! hyper request into a [`routes::Request`], and keeping what HAProxy last said about
//! this node (`X-Haproxy-Server-State`). It takes no commands: those come over the
//! operator channel (`crate::ctl`), with mutual TLS.
//!
//! Served on a thread of its own, so neither probes nor heartbeats nor a busy driver can
//! starve an answer (linkerd's admin server does the same). Every answer is computed from
//! the latest [`ClusterView`] snapshot by the pure [`routes::route`]; this module must
//! never await the driver, a probe or a lock (the balancer state is a `watch` write).

pub mod haproxy_agent;
pub mod metrics;
pub mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;

use crate::clock;
use crate::view::ClusterView;
use haproxy_agent::ServerState;

/// Connections served at once; beyond it new ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

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

/// Binds the HTTP port (and the agent-check port, if given) now, so a taken port fails
/// the start, and serves both on one thread of their own until the process exits. What
/// HAProxy says about this node goes to `balancer`, only when it changes.
pub fn spawn(
    listen: SocketAddr,
    view: watch::Receiver<Arc<ClusterView>>,
    balancer: watch::Sender<Option<ServerState>>,
    agent_check: Option<SocketAddr>,
) -> anyhow::Result<Bound> {
    let listener = bind(listen, "http")?;
    let agent = agent_check
        .map(|a| bind(a, "haproxy agent-check"))
        .transpose()?;
    let bound = Bound {
        http: listener.local_addr()?,
        agent_check: agent.as_ref().map(|l| l.local_addr()).transpose()?,
    };
    let balancer = Arc::new(balancer);
    std::thread::Builder::new()
        .name("quorate-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("cannot start the HTTP runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                if let Some(agent) = agent {
                    match tokio::net::TcpListener::from_std(agent) {
                        Ok(l) => {
                            tokio::spawn(haproxy_agent::serve_agent_check(l, view.clone()));
                        }
                        Err(e) => tracing::error!("cannot serve the agent-check port: {e}"),
                    }
                }
                serve(listener, view, balancer).await;
            });
        })?;
    Ok(bound)
}

async fn serve(
    listener: std::net::TcpListener,
    view: watch::Receiver<Arc<ClusterView>>,
    balancer: Arc<watch::Sender<Option<ServerState>>>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot serve HTTP: {e}");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("http accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let view = view.clone();
        let balancer = balancer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let answer = answer(&view, &balancer, remote, &req);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// Keeps what HAProxy last said, waking readers only when it changed (every check
/// carries the header; most say the same as the last one).
fn note_balancer(balancer: &watch::Sender<Option<ServerState>>, req: &hyper::Request<Incoming>) {
    let Some(state) = req
        .headers()
        .get("x-haproxy-server-state")
        .and_then(|v| v.to_str().ok())
        .and_then(haproxy_agent::parse_server_state)
    else {
        return;
    };
    balancer.send_if_modified(|cur| {
        if cur.as_ref() == Some(&state) {
            false
        } else {
            *cur = Some(state);
            true
        }
    });
}

fn answer(
    view: &watch::Receiver<Arc<ClusterView>>,
    balancer: &watch::Sender<Option<ServerState>>,
    remote: SocketAddr,
    req: &hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let snapshot = view.borrow().clone();
    // Only the balancer says what the balancer thinks: the header counts from
    // `http.allow` alone (anyone else could make this node report a spoofed state).
    if snapshot.http_allow.iter().any(|c| c.contains(remote.ip())) {
        note_balancer(balancer, req);
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
        },
        // The allow list comes with the snapshot: a reload changes it for the next
        // request, with no lock and no second channel.
        &snapshot.http_allow,
    );
    let body = if method == routes::Method::Head {
        Bytes::new()
    } else {
        Bytes::from(a.body.clone())
    };
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("X-Quorate-Node", snapshot.node.as_str())
        .header("Content-Type", a.content_type)
        .header("Cache-Control", "no-store");
    if method == routes::Method::Head {
        builder = builder.header("Content-Length", a.body.len());
    }
    for (k, v) in &a.headers {
        builder = builder.header(*k, v.as_str());
    }
    builder.body(Full::new(body)).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
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
        assert!(bal_rx.has_changed().unwrap());
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
}
