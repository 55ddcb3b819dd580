//! Health endpoints for load balancers, and `/cluster` for people and tools.
//!
//! Served on a thread of its own with a current-thread runtime, so neither probes nor
//! heartbeats nor a busy driver can starve an answer (linkerd's admin server does the
//! same). Every answer is computed from the latest [`ClusterView`] snapshot by the pure
//! [`routes::route`]; this module must never await the driver, a probe or a lock.

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
use crate::config::Cidr;
use crate::core::Command;
use crate::view::ClusterView;

/// Connections served at once; beyond it new ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

/// Binds the HTTP port now (so a taken port fails the start) and serves it on its own
/// thread until the process exits.
pub fn spawn(
    listen: SocketAddr,
    allow: Vec<Cidr>,
    view: watch::Receiver<Arc<ClusterView>>,
    commands: tokio::sync::mpsc::Sender<Command>,
) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on http {listen}: {e}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let allow: Arc<[Cidr]> = allow.into();
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
            rt.block_on(serve(listener, allow, view, commands));
        })?;
    Ok(addr)
}

async fn serve(
    listener: std::net::TcpListener,
    allow: Arc<[Cidr]>,
    view: watch::Receiver<Arc<ClusterView>>,
    commands: tokio::sync::mpsc::Sender<Command>,
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
        let allow = allow.clone();
        let commands = commands.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let answer = answer(&view, &allow, &commands, remote, &req);
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

fn answer(
    view: &watch::Receiver<Arc<ClusterView>>,
    allow: &[Cidr],
    commands: &tokio::sync::mpsc::Sender<Command>,
    remote: SocketAddr,
    req: &hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let snapshot = view.borrow().clone();
    let method = match *req.method() {
        hyper::Method::GET => routes::Method::Get,
        hyper::Method::HEAD => routes::Method::Head,
        hyper::Method::OPTIONS => routes::Method::Options,
        hyper::Method::POST => routes::Method::Post,
        _ => routes::Method::Other,
    };
    let (mut a, cmd) = routes::route_command(
        &snapshot,
        &routes::Request {
            method,
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            remote: remote.ip(),
            now: clock::now(),
            boot_now: clock::boottime(),
        },
        allow,
    );
    if let Some(cmd) = cmd
        && commands.try_send(cmd).is_err()
    {
        a.status = 503;
        a.body = "{\"status\":\"fail\",\"reasons\":[\"busy\"]}\n".into();
    }
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
