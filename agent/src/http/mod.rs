//! Health endpoints for load balancers, and `/cluster` for people and tools.
//!
//! Served on a thread of its own with a current-thread runtime, so neither probes nor
//! heartbeats nor a busy driver can starve an answer (linkerd's admin server does the
//! same). Every answer is computed from the latest [`ClusterView`] snapshot by the pure
//! [`routes::route`]; this module must never await the driver, a probe or a lock.

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

use crate::config::Cidr;
use crate::view::ClusterView;

/// Connections served at once; beyond it new ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

/// Binds the HTTP port now (so a taken port fails the start) and serves it on its own
/// thread until the process exits.
pub fn spawn(
    listen: SocketAddr,
    allow: Vec<Cidr>,
    view: watch::Receiver<Arc<ClusterView>>,
) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on http {listen}: {e}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let allow: Arc<[Cidr]> = allow.into();
    std::thread::Builder::new()
        .name("quorate-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("cannot start the HTTP runtime: {e}");
                    return;
                }
            };
            rt.block_on(serve(listener, allow, view));
        })?;
    Ok(addr)
}

async fn serve(listener: std::net::TcpListener, allow: Arc<[Cidr]>, view: watch::Receiver<Arc<ClusterView>>) {
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
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let answer = answer(&view, &allow, remote, &req);
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
    remote: SocketAddr,
    req: &hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let snapshot = view.borrow().clone();
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
            remote: remote.ip(),
        },
        allow,
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
