//! The HTTP answers as a pure function of the snapshot: `route(view, request) → answer`.
//!
//! Owns: what every path answers (status, body, headers), the `?ok=`/`?fail=` overrides,
//! and `?verbose` text. Takes no commands: those come over the operator channel
//! (`crate::ctl`); `POST` answers 405 like any other method but GET, HEAD and OPTIONS.
//!
//! Must never: do IO, wait, read a clock (the request carries `now`), or invent a health
//! reason the view does not give (`/health`'s reasons are the view's, plus `draining`).
//! Table-tested below.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use proto::Role;

use super::admission::ConnStats;
use super::requests::Requests;
use crate::assess::reason::{self, Reason};
use crate::config::Cidr;
use crate::view::ClusterView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    /// Anything else (answered 405).
    Other,
}

/// What the router needs of a request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    /// As received (percent-encoded).
    pub path: &'a str,
    /// As received (percent-encoded), without the `?`.
    pub query: &'a str,
    pub remote: IpAddr,
    /// The monotonic and boot clocks read when the request arrived: the lease is
    /// evaluated at that moment, not when the snapshot was taken.
    pub now: Instant,
    pub boot_now: Duration,
    /// The HTTP server's connection counts at that moment (for `/metrics`).
    pub conns: ConnStats,
    /// The requests the server answered so far (read only by `/metrics`).
    pub requests: &'a Requests,
}

/// Whether this node holds the primary lease at the request's moment, on both clocks.
pub fn is_primary(view: &ClusterView, req: &Request<'_>) -> bool {
    view.is_primary_at(req.now, req.boot_now)
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

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

fn small(view: &ClusterView, status: u16, word: &str, reasons: &[Reason]) -> Answer {
    small_as(view, view.role, view.term, status, word, reasons)
}

/// [`small`] with the role and term the answer is about (they can differ from the
/// snapshot's: the lease is judged at the moment of the request).
fn small_as(
    view: &ClusterView,
    role: Role,
    term: u64,
    status: u16,
    word: &str,
    reasons: &[Reason],
) -> Answer {
    // A struct, not `json!`: the health answer is the hot path, and this writes it with
    // one allocation. Fields in the order `json!`'s sorted map wrote them.
    #[derive(Serialize)]
    struct Small<'a> {
        cluster: &'a str,
        node: &'a str,
        reasons: &'a [Reason],
        role: Role,
        status: &'a str,
        term: u64,
    }
    let small = Small {
        cluster: &view.cluster,
        node: &view.node,
        reasons,
        role,
        status: word,
        term,
    };
    let mut body = Vec::with_capacity(160);
    let body = match serde_json::to_writer(&mut body, &small) {
        Ok(()) => {
            body.push(b'\n');
            // serde_json writes UTF-8.
            String::from_utf8(body).unwrap_or_default()
        }
        Err(_) => String::new(),
    };
    Answer {
        status,
        content_type: JSON,
        body,
        headers: Vec::new(),
    }
}

/// What a health-style endpoint decided, before it is written as JSON or as text.
struct Verdict {
    status: u16,
    word: &'static str,
    role: Role,
    term: u64,
    reasons: Vec<Reason>,
    headers: Vec<(&'static str, String)>,
}

impl Verdict {
    fn new(view: &ClusterView, status: u16, word: &'static str, reasons: Vec<Reason>) -> Self {
        Self {
            status,
            word,
            role: view.role,
            term: view.term,
            reasons,
            headers: Vec::new(),
        }
    }

    fn ok(view: &ClusterView) -> Self {
        Self::new(view, 200, "ok", Vec::new())
    }

    fn fail(view: &ClusterView, reasons: Vec<Reason>) -> Self {
        Self::new(view, 503, "fail", reasons)
    }

    /// The drain answer: `http.drain_status` and the stable `"status":"draining"` token
    /// F5 receive strings can match.
    fn drained(view: &ClusterView) -> Self {
        let mut reasons = vec![Reason::Draining];
        reasons.extend(view.reasons.iter().filter(|r| **r != Reason::Draining));
        // Config validation keeps it an HTTP status; never hand hyper a non-status.
        let status = if (200..=599).contains(&view.drain_status) {
            view.drain_status
        } else {
            404
        };
        Self::new(view, status, "draining", reasons)
    }
}

/// Removes what would break a one-line-per-check text body.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Writes a verdict as the small JSON body, or as etcd-style lines with `?verbose`.
/// A check's reason (mount paths, app versions, peer names) is written only for a
/// `trusted` client (in `http.allow`); anyone else reads the codes alone, as `/cluster`
/// is refused to them.
fn finish(view: &ClusterView, req: &Request<'_>, trusted: bool, what: &str, v: Verdict) -> Answer {
    let mut a = if flag_param(req.query, "verbose") {
        let mut body = String::new();
        for c in &view.checks {
            let sign = if c.code.passing() { '+' } else { '-' };
            body.push_str(&format!(
                "[{sign}]{} {}",
                one_line(c.name.as_str()),
                c.code.as_str()
            ));
            if trusted && !c.reason.is_empty() {
                body.push_str(&format!(": {}", one_line(&c.reason)));
            }
            body.push('\n');
        }
        if (200..300).contains(&v.status) {
            body.push_str(&format!("{what} check passed\n"));
        } else if v.reasons.is_empty() {
            body.push_str(&format!("{what} check failed\n"));
        } else {
            body.push_str(&format!(
                "{what} check failed: {}\n",
                reason::join(&v.reasons)
            ));
        }
        Answer {
            status: v.status,
            content_type: TEXT,
            body,
            headers: Vec::new(),
        }
    } else {
        small_as(view, v.role, v.term, v.status, v.word, &v.reasons)
    };
    a.headers.extend(v.headers);
    a
}

/// The raw value of `key` in `query` (`Some("")` for a bare `key`).
fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `?key`, `?key=` or `?key=anything` but `0`/`false`.
fn flag_param(query: &str, key: &str) -> bool {
    query_param(query, key).is_some_and(|v| v != "0" && v != "false")
}

/// A status code from `?ok=`/`?fail=`: ignored unless 200–599. (1xx would be a valid
/// status, but not a final answer: hyper turns it into a 500 and drops the connection.)
fn code_param(query: &str, key: &str) -> Option<u16> {
    query_param(query, key)?
        .parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c))
}

/// Percent-decodes a query value or path segment (`+` is a space). `None` for a broken
/// escape or bytes that are not UTF-8.
fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                // Two hex digits: at most 255.
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// `?ok=CODE&fail=CODE`, for balancers that accept only one status: `ok` replaces 200,
/// `fail` replaces any answer that is not 2xx.
fn overrides(mut a: Answer, query: &str) -> Answer {
    if a.status == 200 {
        if let Some(ok) = code_param(query, "ok") {
            a.status = ok;
        }
    } else if !(200..300).contains(&a.status)
        && let Some(fail) = code_param(query, "fail")
    {
        a.status = fail;
    }
    a
}

/// The role this node is in at the request's moment (see [`ClusterView::role_now`]).
fn role_now(view: &ClusterView, req: &Request<'_>) -> (Role, u64) {
    view.role_now(req.now, req.boot_now)
}

/// Answers `req` from `view`. `allow` lists who may read `/cluster` and `/metrics`.
pub fn route(view: &ClusterView, req: &Request<'_>, allow: &[Cidr]) -> Answer {
    overrides(answer(view, req, allow), req.query)
}

fn answer(view: &ClusterView, req: &Request<'_>, allow: &[Cidr]) -> Answer {
    if req.method == Method::Other {
        let mut a = small(view, 405, "fail", &[Reason::Method]);
        a.headers.push(("Allow", "GET, HEAD, OPTIONS".into()));
        return a;
    }
    let allowed = || allow.iter().any(|c| c.contains(req.remote));
    let finish = |what, v| finish(view, req, allowed(), what, v);
    let path = req.path;
    if let Some(role) = path.strip_prefix("/role/") {
        return finish("role", role_verdict(view, role));
    }
    if let Some(task) = path.strip_prefix("/task/") {
        return finish("task", task_verdict(view, req, task));
    }
    match path {
        "/primary" => {
            let (role, term) = role_now(view, req);
            let mut v = if role == Role::Primary {
                Verdict::ok(view)
            } else {
                let why = if !view.status.quorum {
                    Reason::NoQuorum
                } else {
                    Reason::NotPrimary
                };
                let mut why = vec![why];
                // A node whose timing does not fit its peers' may never get a lease.
                if view.reasons.contains(&Reason::Timing) {
                    why.push(Reason::Timing);
                }
                // Nor may a node that cannot vote (see `quorate status`).
                if view.status.members.problem.is_some() {
                    why.push(Reason::Members);
                }
                Verdict::fail(view, why)
            };
            (v.role, v.term) = (role, term);
            v.headers.push(("X-Quorate-Term", term.to_string()));
            finish("primary", v)
        }
        "/secondary" => {
            let v = if view.draining {
                Verdict::drained(view)
            } else if !view.healthy {
                Verdict::fail(view, view.reasons.clone())
            } else if is_primary(view, req) {
                Verdict::fail(view, vec![Reason::Primary])
            } else {
                Verdict::ok(view)
            };
            finish("secondary", v)
        }
        "/live" => finish("live", Verdict::ok(view)),
        "/ready" => {
            let v = if view.ready {
                Verdict::ok(view)
            } else {
                Verdict::fail(view, view.reasons.clone())
            };
            finish("ready", v)
        }
        // `OPTIONS /` is HAProxy's default probe: answer it as /health.
        "/health" | "/" => finish("health", health_verdict(view)),
        "/cluster" => {
            if !allowed() {
                return small(view, 403, "fail", &[Reason::Forbidden]);
            }
            match crate::view::cluster_json(&view.status) {
                Ok(body) => Answer {
                    status: 200,
                    content_type: JSON,
                    body,
                    headers: Vec::new(),
                },
                Err(_) => small(view, 500, "fail", &[Reason::Internal]),
            }
        }
        "/metrics" => {
            if !allowed() {
                return small(view, 403, "fail", &[Reason::Forbidden]);
            }
            Answer {
                status: 200,
                content_type: super::metrics::CONTENT_TYPE,
                body: super::metrics::render(view, &req.conns, req.requests, req.now),
                headers: Vec::new(),
            }
        }
        _ => small(view, 404, "fail", &[Reason::NotFound]),
    }
}

/// `/health`: drained, else healthy, else the view's reasons.
fn health_verdict(view: &ClusterView) -> Verdict {
    if view.draining {
        Verdict::drained(view)
    } else if view.healthy {
        Verdict::ok(view)
    } else {
        Verdict::fail(view, view.reasons.clone())
    }
}

/// `/role/{role}`: 404 for a role no node has, then like `/health`, then the role.
fn role_verdict(view: &ClusterView, raw: &str) -> Verdict {
    let role = decode(raw).unwrap_or_default();
    let mine = view.roles.contains(&role);
    if role.is_empty() || !(mine || view.cluster_roles.contains(&role)) {
        return Verdict::new(view, 404, "fail", vec![Reason::UnknownRole]);
    }
    let v = health_verdict(view);
    if v.status == 200 && !mine {
        return Verdict::fail(view, vec![Reason::NotInRole]);
    }
    v
}

/// `/task/{name}`: whether this node runs the task now. `run_on = "primary"` tasks are
/// judged on the lease at the request's moment. Always carries `X-Quorate-Term`, the
/// fencing token `quorate task should-run` prints.
fn task_verdict(view: &ClusterView, req: &Request<'_>, raw: &str) -> Verdict {
    let name = decode(raw).unwrap_or_default();
    let mut v = match view.tasks.iter().find(|t| t.name == name) {
        None => Verdict::new(view, 404, "fail", vec![Reason::UnknownTask]),
        Some(t) => {
            let (role, term) = role_now(view, req);
            let mut v = if view.runs_here(t, req.now, req.boot_now) {
                Verdict::ok(view)
            } else {
                Verdict::fail(view, vec![Reason::NotHere])
            };
            (v.role, v.term) = (role, term);
            v
        }
    };
    v.headers.push(("X-Quorate-Term", v.term.to_string()));
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::lease;
    use crate::view::TaskClaim;
    use proto::status::ClusterStatus;
    use proto::{CheckCode, CheckState};

    pub(crate) fn view(ready: bool, healthy: bool, reasons: Vec<Reason>) -> ClusterView {
        ClusterView {
            at: crate::clock::now(),
            lease: None,
            lease_boot_until: None,
            node: "n1".into(),
            cluster: "c".into(),
            role: Role::Secondary,
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
            http_allow: Cidr::loopback().into(),
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
                pending_restart: vec![],
                timing_mismatch: vec![],
                members: Default::default(),
            },
            counts: Default::default(),
            links: Default::default(),
        }
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OUTSIDE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    static NO_REQUESTS: Requests = Requests::new();

    fn req<'a>(method: Method, path: &'a str, query: &'a str, remote: IpAddr) -> Request<'a> {
        Request {
            method,
            path,
            query,
            remote,
            now: crate::clock::now(),
            boot_now: Duration::ZERO,
            conns: ConnStats::default(),
            requests: &NO_REQUESTS,
        }
    }

    fn get<'a>(path: &'a str, query: &'a str) -> Request<'a> {
        req(Method::Get, path, query, OUTSIDE)
    }

    /// A view whose lease holds for a while, at term 7 (snapshot term 6).
    fn primary_view() -> ClusterView {
        let now = crate::clock::now();
        let mut v = view(true, true, vec![]);
        v.role = Role::Primary;
        v.term = 6;
        v.lease = Some(lease::Lease {
            term: proto::Term(7),
            until: now + Duration::from_secs(60),
        });
        v.lease_boot_until = Some(Duration::from_secs(60));
        v
    }

    fn draining(drain_status: u16) -> ClusterView {
        let mut v = view(true, true, vec![]);
        v.draining = true;
        v.drain_status = drain_status;
        v
    }

    /// A certificate near its end is a reason on the node, never a failed answer: the
    /// balancer keeps the node and the primary keeps its role.
    #[test]
    fn a_certs_warning_fails_no_answer() {
        let mut v = primary_view();
        v.reasons = vec![Reason::Certs];
        v.checks = vec![proto::CheckState {
            name: proto::CheckName::Certs,
            code: proto::CheckCode::Warn,
            reason: "certificate expires at 2027-01-01T00:00:00Z (in 9 days)".into(),
        }];
        for path in ["/health", "/ready", "/primary", "/live", "/"] {
            let a = route(&v, &get(path, ""), &Cidr::loopback());
            assert_eq!(a.status, 200, "{path}: {}", a.body);
        }
        let verbose = route(&v, &get("/health", "verbose"), &Cidr::loopback());
        assert_eq!(verbose.status, 200);
        assert!(
            verbose.body.starts_with("[-]certs warn\n"),
            "{}",
            verbose.body
        );
    }

    #[test]
    fn status_table() {
        let up = view(true, true, vec![]);
        let starting = view(false, false, vec![Reason::Starting]);
        let overloaded = view(true, false, vec![Reason::Overloaded]);
        let drained = draining(404);
        let drained_503 = draining(503);
        let mut roles = view(true, true, vec![]);
        roles.roles = vec!["web".into()];
        roles.cluster_roles = ["web", "batch"].into_iter().map(String::from).collect();
        let mut sick_roles = roles.clone();
        sick_roles.healthy = false;
        sick_roles.reasons = vec![Reason::Overloaded];
        let mut drained_roles = roles.clone();
        drained_roles.draining = true;
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
            (&up, Method::Get, "/metrics", LOOPBACK, 200, "quorate_up 1"),
            (&up, Method::Get, "/metrics", OUTSIDE, 403, "forbidden"),
            (&up, Method::Get, "/nope", LOOPBACK, 404, "not-found"),
            (&up, Method::Other, "/health", LOOPBACK, 405, "method"),
            // Draining: the drain code and the stable token, on /health, / and /secondary.
            (
                &drained,
                Method::Get,
                "/health",
                OUTSIDE,
                404,
                "\"status\":\"draining\"",
            ),
            (&drained, Method::Options, "/", OUTSIDE, 404, "draining"),
            (
                &drained_503,
                Method::Get,
                "/health",
                OUTSIDE,
                503,
                "draining",
            ),
            (
                &drained,
                Method::Get,
                "/secondary",
                OUTSIDE,
                404,
                "draining",
            ),
            (&drained, Method::Get, "/ready", OUTSIDE, 200, ""),
            (&drained, Method::Get, "/live", OUTSIDE, 200, ""),
            // Roles.
            (&roles, Method::Get, "/role/web", OUTSIDE, 200, ""),
            (
                &roles,
                Method::Get,
                "/role/batch",
                OUTSIDE,
                503,
                "not-in-role",
            ),
            (
                &roles,
                Method::Get,
                "/role/mail",
                OUTSIDE,
                404,
                "unknown-role",
            ),
            (&roles, Method::Get, "/role/", OUTSIDE, 404, "unknown-role"),
            (
                &sick_roles,
                Method::Get,
                "/role/web",
                OUTSIDE,
                503,
                "overloaded",
            ),
            (
                &sick_roles,
                Method::Get,
                "/role/batch",
                OUTSIDE,
                503,
                "overloaded",
            ),
            (
                &drained_roles,
                Method::Get,
                "/role/web",
                OUTSIDE,
                404,
                "draining",
            ),
            (
                &drained_roles,
                Method::Get,
                "/role/mail",
                OUTSIDE,
                404,
                "unknown-role",
            ),
        ];
        for (v, method, path, remote, status, reason) in table {
            let a = route(v, &req(*method, path, "", *remote), &allow);
            assert_eq!(a.status, *status, "{method:?} {path} from {remote}");
            if !reason.is_empty() {
                assert!(a.body.contains(reason), "{path}: {}", a.body);
            }
        }
    }

    #[test]
    fn overrides_table() {
        let up = view(true, true, vec![]);
        let sick = view(true, false, vec![Reason::Overloaded]);
        let drained = draining(404);
        let allow = Cidr::loopback();
        // (view, path, query, status)
        let table: &[(&ClusterView, &str, &str, u16)] = &[
            (&up, "/health", "ok=204", 204),
            (&up, "/health", "fail=418", 200),
            (&up, "/health", "ok=204&fail=418", 204),
            (&sick, "/health", "ok=204&fail=418", 418),
            (&drained, "/health", "fail=503", 503),
            (&drained, "/health", "ok=200&fail=500", 500),
            (&up, "/nope", "fail=410", 410),
            (&up, "/cluster", "ok=299", 403), // not allowed from OUTSIDE, no fail given
            (&up, "/cluster", "fail=599", 599),
            // Invalid codes are ignored.
            (&up, "/health", "ok=99", 200),
            (&up, "/health", "ok=600", 200),
            (&up, "/health", "ok=abc", 200),
            (&up, "/health", "ok=", 200),
            (&sick, "/health", "fail=-1", 503),
            (&sick, "/health", "fail=70000", 503),
            (&sick, "/health", "fail=100", 503),
            (&sick, "/health", "fail=200", 200),
            (&sick, "/health", "fail=599", 599),
        ];
        for (v, path, query, status) in table {
            let a = route(v, &get(path, query), &allow);
            assert_eq!(a.status, *status, "{path}?{query}");
        }
        // The body still tells the truth.
        let a = route(&drained, &get("/health", "fail=503"), &allow);
        assert!(a.body.contains("\"status\":\"draining\""), "{}", a.body);
    }

    #[test]
    fn verbose_lists_checks() {
        let mut v = view(true, false, vec![Reason::App, Reason::Mount]);
        v.checks = vec![
            ("app", CheckCode::Ok, ""),
            ("mounts", CheckCode::Fail, "/mnt/repo missing"),
            ("config", CheckCode::Drift, ""),
            ("clock", CheckCode::Off, ""),
            ("version", CheckCode::Hung, "two\nlines"),
        ]
        .into_iter()
        .map(|(n, code, r)| CheckState {
            name: n.into(),
            code,
            reason: r.into(),
        })
        .collect();
        let lines = "[+]app ok\n[-]mounts fail: /mnt/repo missing\n[-]config drift\n\
                     [+]clock off\n[-]version hung: two lines\n";
        // Outside `http.allow`: the codes, never the reasons (paths, versions, peers).
        let codes = "[+]app ok\n[-]mounts fail\n[-]config drift\n[+]clock off\n[-]version hung\n";
        let allow = Cidr::loopback();
        let a = route(&v, &get("/health", "verbose"), &allow);
        assert_eq!(a.body, format!("{codes}health check failed: app, mount\n"));
        assert!(!a.body.contains("/mnt/repo"));
        // The tests below ask from an allowed address.
        let allow: Vec<Cidr> = vec!["192.0.2.0/24".parse().unwrap()];
        for query in ["verbose", "verbose=", "verbose=1", "x=1&verbose"] {
            let a = route(&v, &get("/health", query), &allow);
            assert_eq!(a.status, 503);
            assert_eq!(a.content_type, "text/plain; charset=utf-8");
            assert_eq!(
                a.body,
                format!("{lines}health check failed: app, mount\n"),
                "{query}"
            );
        }
        v.healthy = true;
        let a = route(&v, &get("/health", "verbose"), &allow);
        assert_eq!(a.body, format!("{lines}health check passed\n"));
        let a = route(&v, &get("/", "verbose&ok=204"), &allow);
        assert_eq!(a.status, 204);
        assert!(a.body.ends_with("health check passed\n"));
        v.draining = true;
        let a = route(&v, &get("/health", "verbose"), &allow);
        assert!(
            a.body
                .ends_with("health check failed: draining, app, mount\n")
        );
        // Not verbose.
        for query in ["", "verbose=0", "verbose=false", "verbosely"] {
            let a = route(&v, &get("/health", query), &allow);
            assert_eq!(a.content_type, "application/json", "{query}");
        }
        let a = route(&view(true, true, vec![]), &get("/ready", "verbose"), &allow);
        assert_eq!(a.body, "ready check passed\n");
    }

    #[test]
    fn tasks() {
        let claims = [
            ("cron", false, true),
            ("mail", false, false),
            ("lead", true, false),
        ]
        .into_iter()
        .map(|(n, on_primary, claimed)| TaskClaim {
            name: n.into(),
            on_primary,
            until: claimed.then(|| crate::clock::now() + Duration::from_secs(60)),
            boot_until: claimed.then_some(Duration::from_secs(60)),
        })
        .collect::<Vec<_>>();
        let mut secondary = view(true, true, vec![]);
        secondary.term = 3;
        secondary.tasks = claims.clone();
        // A claim the view still shows, over at the request's moment: on the monotonic
        // clock (a pause or a stall) or on the boot clock (a suspend).
        let mut lapsed = secondary.clone();
        lapsed.tasks[0].until = Some(crate::clock::now());
        let mut suspended = secondary.clone();
        suspended.tasks[0].boot_until = Some(Duration::ZERO);
        let mut primary = primary_view();
        primary.tasks = claims.clone();
        let mut expired = primary.clone();
        expired.lease_boot_until = Some(Duration::ZERO);
        let allow = Cidr::loopback();
        // (view, path, status, term header, reason)
        let table: &[(&ClusterView, &str, u16, &str, &str)] = &[
            (&secondary, "/task/cron", 200, "3", ""),
            (&lapsed, "/task/cron", 503, "3", "not-here"),
            (&suspended, "/task/cron", 503, "3", "not-here"),
            (&secondary, "/task/mail", 503, "3", "not-here"),
            (&secondary, "/task/lead", 503, "3", "not-here"),
            (&secondary, "/task/nope", 404, "3", "unknown-task"),
            (&secondary, "/task/", 404, "3", "unknown-task"),
            (&primary, "/task/lead", 200, "7", ""),
            (&primary, "/task/cron", 200, "7", ""),
            (&primary, "/task/mail", 503, "7", "not-here"),
            // The snapshot says primary, the lease ran out at the request's moment.
            (&expired, "/task/lead", 503, "6", "not-here"),
        ];
        for (v, path, status, term, reason) in table {
            let a = route(v, &get(path, ""), &allow);
            assert_eq!(a.status, *status, "{path}");
            let got = a.headers.iter().find(|(k, _)| *k == "X-Quorate-Term");
            assert_eq!(got.map(|(_, t)| t.as_str()), Some(*term), "{path}");
            if !reason.is_empty() {
                assert!(a.body.contains(reason), "{path}: {}", a.body);
            }
        }
        // The operator channel's `should-run` answers the same, at the same moment.
        let now = crate::clock::now();
        for (v, name, want) in [
            (&secondary, "cron", Some((true, 3))),
            (&lapsed, "cron", Some((false, 3))),
            (&secondary, "lead", Some((false, 3))),
            (&primary, "lead", Some((true, 7))),
            (&expired, "lead", Some((false, 6))),
            (&secondary, "nope", None),
        ] {
            assert_eq!(v.task_answer(name, now, Duration::ZERO), want, "{name}");
        }
        let a = route(&primary, &get("/task/lead", ""), &allow);
        assert!(a.body.contains("\"role\":\"primary\""), "{}", a.body);
        let a = route(&expired, &get("/task/lead", ""), &allow);
        assert!(a.body.contains("\"role\":\"candidate\""), "{}", a.body);
        // Percent-encoded names are decoded.
        let mut spaced = secondary.clone();
        spaced.tasks[0].name = "nightly report".into();
        let a = route(&spaced, &get("/task/nightly%20report", ""), &allow);
        assert_eq!(a.status, 200);
    }

    #[test]
    fn primary_is_judged_at_the_request() {
        let allow = Cidr::loopback();
        let a = route(&primary_view(), &get("/primary", ""), &allow);
        assert_eq!(a.status, 200);
        assert!(a.headers.contains(&("X-Quorate-Term", "7".into())));
        assert!(a.body.contains("\"term\":7"), "{}", a.body);
        let mut expired = primary_view();
        expired.lease_boot_until = Some(Duration::ZERO);
        let a = route(&expired, &get("/primary", ""), &allow);
        assert_eq!(a.status, 503);
        assert!(a.body.contains("candidate") && a.body.contains("not-primary"));
        let a = route(&primary_view(), &get("/secondary", ""), &allow);
        assert_eq!(a.status, 503);
        assert!(a.body.contains("\"primary\""), "{}", a.body);
        let a = route(&primary_view(), &get("/primary", "verbose"), &allow);
        assert_eq!(a.body, "primary check passed\n");
        assert!(a.headers.contains(&("X-Quorate-Term", "7".into())));
    }

    #[test]
    fn commands_are_not_taken_over_http() {
        let v = view(true, true, vec![]);
        let allow = Cidr::loopback();
        for path in ["/admin/drain", "/admin/transfer", "/health"] {
            let a = route(&v, &req(Method::Other, path, "", LOOPBACK), &allow);
            assert_eq!(a.status, 405, "{path}");
            assert!(a.headers.contains(&("Allow", "GET, HEAD, OPTIONS".into())));
        }
        let a = route(&v, &req(Method::Get, "/admin/drain", "", LOOPBACK), &allow);
        assert_eq!(a.status, 404);
    }

    #[test]
    fn decodes() {
        let table: &[(&str, Option<&str>)] = &[
            ("plain", Some("plain")),
            ("a+b", Some("a b")),
            ("a%20b", Some("a b")),
            ("%2B%2b", Some("++")),
            ("%C3%A9", Some("é")),
            ("%", None),
            ("%2", None),
            ("%+1", None),
            ("%zz", None),
            ("%FF", None),
        ];
        for (raw, want) in table {
            assert_eq!(decode(raw).as_deref(), *want, "{raw}");
        }
    }

    #[test]
    fn small_body_never_leaks_more_than_status() {
        let a = route(
            &view(true, true, vec![]),
            &get("/health", ""),
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
