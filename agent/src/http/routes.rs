//! The HTTP answers as a pure function of the snapshot: `route(view, request) → answer`.
//! No IO, no waiting; table-tested below.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::config::Cidr;
use crate::core::Command;
use crate::core::lease;
use crate::view::{ClusterView, reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    /// Only for the loopback-only `/admin/*` commands.
    Post,
    Other,
}

/// What the router needs of a request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: &'a str,
    pub remote: IpAddr,
    /// The monotonic and boot clocks read when the request arrived: the lease is
    /// evaluated at that moment, not when the snapshot was taken.
    pub now: Instant,
    pub boot_now: Duration,
}

/// Whether this node holds the primary lease at the request's moment, on both clocks.
pub fn is_primary(view: &ClusterView, req: &Request<'_>) -> bool {
    lease::holds(view.lease.as_ref(), req.now)
        && view.lease_boot_until.is_some_and(|b| req.boot_now < b)
}

/// An answer: status, content type and body (dropped for HEAD by the server).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Extra headers besides `X-Quorate-Node` and content headers.
    pub headers: Vec<(&'static str, String)>,
}

fn small(view: &ClusterView, status: u16, word: &str, reasons: &[&str]) -> Answer {
    small_as(view, view.role, view.term, status, word, reasons)
}

/// [`small`] with the role and term the answer is about (they can differ from the
/// snapshot's: the lease is judged at the moment of the request).
fn small_as(
    view: &ClusterView,
    role: &str,
    term: u64,
    status: u16,
    word: &str,
    reasons: &[&str],
) -> Answer {
    let body = json!({
        "node": view.node,
        "cluster": view.cluster,
        "status": word,
        "role": role,
        "term": term,
        "reasons": reasons,
    });
    Answer {
        status,
        content_type: "application/json",
        body: format!("{body}\n"),
        headers: Vec::new(),
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Loopback-only operator commands (until the operator channel exists).
fn admin(view: &ClusterView, req: &Request<'_>) -> (Answer, Option<Command>) {
    if !req.remote.is_loopback() {
        return (small(view, 403, "fail", &["forbidden"]), None);
    }
    let cmd = match req.path {
        "/admin/transfer" => match query_param(req.query, "to").filter(|t| !t.is_empty()) {
            None => Command::Transfer(None),
            Some(to) => match proto::NodeId::new(to) {
                Ok(id) => Command::Transfer(Some(id)),
                Err(_) => return (small(view, 400, "fail", &["bad-node"]), None),
            },
        },
        "/admin/freeze" => Command::Freeze(proto::FreezeFlag {
            frozen: true,
            version: 0,
        }),
        "/admin/unfreeze" => Command::Freeze(proto::FreezeFlag {
            frozen: false,
            version: 0,
        }),
        _ => return (small(view, 404, "fail", &["not-found"]), None),
    };
    (small(view, 202, "accepted", &[]), Some(cmd))
}

/// Answers `req` from `view`, with the command it carries for the driver, if any.
/// `allow` lists who may read `/cluster`.
pub fn route_command(
    view: &ClusterView,
    req: &Request<'_>,
    allow: &[Cidr],
) -> (Answer, Option<Command>) {
    if req.method == Method::Post {
        return admin(view, req);
    }
    (route(view, req, allow), None)
}

/// Answers `req` from `view`. `allow` lists who may read `/cluster`.
pub fn route(view: &ClusterView, req: &Request<'_>, allow: &[Cidr]) -> Answer {
    if matches!(req.method, Method::Other | Method::Post) {
        let mut a = small(view, 405, "fail", &["method"]);
        a.headers.push(("Allow", "GET, HEAD, OPTIONS".into()));
        return a;
    }
    match req.path {
        "/primary" => {
            let (term, mut a) = if is_primary(view, req) {
                let term = view.lease.map(|l| l.term.0).unwrap_or(view.term);
                (term, small_as(view, "primary", term, 200, "ok", &[]))
            } else {
                let why = if !view.status.quorum {
                    reason::NO_QUORUM
                } else {
                    reason::NOT_PRIMARY
                };
                // The snapshot may say primary while the lease ran out since it was taken.
                let role = if view.role == "primary" {
                    "candidate"
                } else {
                    view.role
                };
                (
                    view.term,
                    small_as(view, role, view.term, 503, "fail", &[why]),
                )
            };
            a.headers.push(("X-Quorate-Term", term.to_string()));
            a
        }
        "/secondary" => {
            if view.healthy && !is_primary(view, req) {
                small(view, 200, "ok", &[])
            } else if view.healthy {
                small(view, 503, "fail", &[reason::PRIMARY])
            } else {
                small(view, 503, "fail", &view.reasons)
            }
        }
        "/live" => small(view, 200, "ok", &[]),
        "/ready" => {
            if view.ready {
                small(view, 200, "ok", &[])
            } else {
                small(view, 503, "fail", &view.reasons)
            }
        }
        // `OPTIONS /` is HAProxy's default probe: answer it as /health.
        "/health" | "/" => {
            if view.healthy {
                small(view, 200, "ok", &[])
            } else {
                small(view, 503, "fail", &view.reasons)
            }
        }
        "/cluster" => {
            if !allow.iter().any(|c| c.contains(req.remote)) {
                return small(view, 403, "fail", &["forbidden"]);
            }
            match serde_json::to_string_pretty(&view.status) {
                Ok(body) => Answer {
                    status: 200,
                    content_type: "application/json",
                    body: body + "\n",
                    headers: Vec::new(),
                },
                Err(_) => small(view, 500, "fail", &["internal"]),
            }
        }
        _ => small(view, 404, "fail", &["not-found"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::status::ClusterStatus;

    fn view(ready: bool, healthy: bool, reasons: Vec<&'static str>) -> ClusterView {
        ClusterView {
            at: crate::clock::now(),
            lease: None,
            lease_boot_until: None,
            node: "n1".into(),
            cluster: "c".into(),
            role: "secondary",
            term: 0,
            ready,
            healthy,
            draining: false,
            drain_status: 404,
            reasons,
            checks: vec![],
            roles: vec![],
            cluster_roles: Default::default(),
            tasks: vec![],
            agent_check: "up 100%".into(),
            status: ClusterStatus {
                cluster: "c".into(),
                node: "n1".into(),
                term: 0,
                primary: None,
                quorum: true,
                frozen: false,
                voters: 1,
                nodes: vec![],
                unreachable_peers: vec![],
                tasks: vec![],
            },
        }
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OUTSIDE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn status_table() {
        let up = view(true, true, vec![]);
        let starting = view(false, false, vec!["starting"]);
        let overloaded = view(true, false, vec!["overloaded"]);
        let allow = Cidr::loopback();
        // (view, method, path, remote, status, reason in body)
        let table: &[(&ClusterView, Method, &str, IpAddr, u16, &str)] = &[
            (&up, Method::Get, "/live", OUTSIDE, 200, ""),
            (&starting, Method::Get, "/live", OUTSIDE, 200, ""),
            (&up, Method::Get, "/ready", OUTSIDE, 200, ""),
            (&starting, Method::Get, "/ready", OUTSIDE, 503, "starting"),
            (&up, Method::Get, "/health", OUTSIDE, 200, ""),
            (&up, Method::Head, "/health", OUTSIDE, 200, ""),
            (&up, Method::Options, "/", OUTSIDE, 200, ""),
            (
                &overloaded,
                Method::Get,
                "/health",
                OUTSIDE,
                503,
                "overloaded",
            ),
            (&overloaded, Method::Get, "/ready", OUTSIDE, 200, ""),
            (&starting, Method::Options, "/", OUTSIDE, 503, "starting"),
            (&up, Method::Get, "/cluster", LOOPBACK, 200, ""),
            (&up, Method::Get, "/cluster", OUTSIDE, 403, "forbidden"),
            (&up, Method::Get, "/nope", LOOPBACK, 404, "not-found"),
            (&up, Method::Other, "/health", LOOPBACK, 405, "method"),
        ];
        for (v, method, path, remote, status, reason) in table {
            let req = Request {
                method: *method,
                path,
                query: "",
                remote: *remote,
                now: crate::clock::now(),
                boot_now: Duration::ZERO,
            };
            let a = route(v, &req, &allow);
            assert_eq!(a.status, *status, "{method:?} {path} from {remote}");
            if !reason.is_empty() {
                assert!(a.body.contains(reason), "{path}: {}", a.body);
            }
        }
    }

    #[test]
    fn small_body_never_leaks_more_than_status() {
        let a = route(
            &view(true, true, vec![]),
            &Request {
                method: Method::Get,
                path: "/health",
                query: "",
                remote: OUTSIDE,
                now: crate::clock::now(),
                boot_now: Duration::ZERO,
            },
            &Cidr::loopback(),
        );
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["cluster", "node", "reasons", "role", "status", "term"]
        );
    }
}
