//! `/metrics`: the snapshot and the agent's counters as OpenMetrics text
//! (prometheus-client's text encoder).
//!
//! Owns: turning what it is handed into metrics, their names, help texts and labels (the
//! table in `docs/monitoring.md` lists every one; a test holds the two equal). Gauges are
//! built per request from one [`ClusterView`]: a picture of the state at the snapshot's
//! moment (the lease's remainder at the request's). Counters are kept where the thing
//! happens and handed in as numbers: the driver's [`Tally`](crate::events::Tally) of
//! elections, role changes, handovers, check transitions and hook runs travels in the
//! view; the HTTP server's connection counts ([`ConnStats`]) and answered requests
//! ([`Requests`]) come with the request; refusals are the process's
//! ([`ratelog::refusals`]). The registry lives for one request, so nothing is kept
//! here and nothing is shared between requests; a few dozen series cost microseconds.
//!
//! Must never: read anything but what it is handed (and the refusal counts), keep state
//! between requests, label a series with anything a client chooses, or put a label
//! value on the wire unescaped (prometheus-client writes label values verbatim).

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::admission::{ConnStats, Refused};
use super::requests::{CODES, Requests};
use crate::ratelog::{self, Refusal};
use crate::view::ClusterView;

/// The content type of [`render`]'s output (OpenMetrics 1.0 text, ending in `# EOF`).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Escapes a label value as the exposition format requires: the encoder does not.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn int(reg: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    reg.register(name, help, g);
}

fn flag(reg: &mut Registry, name: &str, help: &str, value: bool) {
    int(reg, name, help, i64::from(value));
}

fn float(reg: &mut Registry, name: &str, help: &str, value: f64) {
    let g = FloatGauge::default();
    g.set(value);
    reg.register(name, help, g);
}

fn seconds(reg: &mut Registry, name: &str, help: &str, value: f64) {
    let g = FloatGauge::default();
    g.set(value);
    reg.register_with_unit(name, help, Unit::Seconds, g);
}

fn counter(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    reg.register(name, help, c);
}

fn int_family(reg: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, i64)>) {
    let f = Family::<Labels, Gauge>::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).set(v);
    }
    reg.register(name, help, f);
}

fn float_family(
    reg: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    rows: Vec<(Labels, f64)>,
) {
    let f = Family::<Labels, FloatGauge>::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).set(v);
    }
    match unit {
        Some(u) => reg.register_with_unit(name, help, u, f),
        None => reg.register(name, help, f),
    }
}

fn counter_family(reg: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, u64)>) {
    let f = Family::<Labels, Counter>::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).inc_by(v);
    }
    reg.register(name, help, f);
}

/// The HTTP port's own connections: open now, refused, closed for slowness, malformed.
fn connections(reg: &mut Registry, c: &ConnStats) {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    int_family(
        reg,
        "http_connections",
        "HTTP connections open now, from http.allow addresses or from elsewhere",
        vec![
            (vec![("from", "allow".to_owned())], n(c.open_allowed)),
            (vec![("from", "other".to_owned())], n(c.open_other)),
        ],
    );
    counter_family(
        reg,
        "http_refused_connections",
        "HTTP connections refused: every slot taken (full), only the share kept for http.allow left (reserved), or the address's cap reached (per-source)",
        [
            (Refused::Full, c.refused_full),
            (Refused::Reserved, c.refused_reserved),
            (Refused::PerSource, c.refused_per_source),
        ]
        .into_iter()
        .map(|(why, v)| (vec![("reason", why.as_str().to_owned())], v))
        .collect(),
    );
    counter_family(
        reg,
        "http_closed_connections",
        "HTTP connections closed for the client's fault: no complete request within the header timeout (slow), or not HTTP/1.1 (malformed)",
        vec![
            (vec![("reason", "slow".to_owned())], c.slow),
            (vec![("reason", "malformed".to_owned())], c.malformed),
        ],
    );
}

/// What happened since the agent started: the driver's tally, the hooks', the HTTP
/// port's answers and the process's refusals.
fn counters(reg: &mut Registry, view: &ClusterView, requests: &Requests) {
    let t = &view.counts;
    counter(
        reg,
        "elections",
        "Elections this node started (campaigns, one per term it stood in)",
        t.elections,
    );
    counter(
        reg,
        "split_brain_suspected",
        "Primary claims this node saw in a term it did not expect (split_brain_suspected events)",
        t.split_brain,
    );
    // Every role and reason from the start, so a rate over them never lacks a series.
    use crate::core::TransferReason;
    use proto::Role;
    counter_family(
        reg,
        "role_changes",
        "Changes of this node's role, by the role it took",
        [
            Role::Primary,
            Role::Secondary,
            Role::Witness,
            Role::Candidate,
        ]
        .into_iter()
        .map(|r| {
            let n = t
                .role_changes
                .iter()
                .find(|(k, _)| *k == r)
                .map_or(0, |x| x.1);
            (vec![("role", r.as_str().to_owned())], n)
        })
        .collect(),
    );
    counter_family(
        reg,
        "handovers",
        "Handovers this node started as primary, by reason",
        [
            TransferReason::Shutdown,
            TransferReason::Operator,
            TransferReason::Ineligible,
            TransferReason::Preempt,
        ]
        .into_iter()
        .map(|r| {
            let n = t.handovers.iter().find(|(k, _)| *k == r).map_or(0, |x| x.1);
            (vec![("reason", r.as_str().to_owned())], n)
        })
        .collect(),
    );
    counter_family(
        reg,
        "check_transitions",
        "Changes of a local check's result, by check and the result it changed to",
        t.check_changes
            .iter()
            .map(|(check, code, n)| {
                (
                    vec![
                        ("check", esc(check.as_str())),
                        ("result", code.as_str().to_owned()),
                    ],
                    *n,
                )
            })
            .collect(),
    );
    counter_family(
        reg,
        "hook_runs",
        "Hook runs started, by hook",
        t.hooks
            .iter()
            .map(|(hook, runs, _)| (vec![("hook", (*hook).to_owned())], *runs))
            .collect(),
    );
    counter_family(
        reg,
        "hook_failures",
        "Hook runs that failed (non-zero exit, timeout, could not start), by hook",
        t.hooks
            .iter()
            .map(|(hook, _, failed)| (vec![("hook", (*hook).to_owned())], *failed))
            .collect(),
    );
    counter_family(
        reg,
        "http_requests",
        "HTTP requests answered, by endpoint (the kind of route) and status code (other: any code not listed)",
        requests
            .read()
            .into_iter()
            // Every endpoint's 200 from the start (a balancer's rate of 0 must have a
            // series to be 0 on); other codes once they happened.
            .filter(|(_, code, n)| *n > 0 || *code == CODES[0].to_string())
            .map(|(e, code, n)| (vec![("endpoint", e.as_str().to_owned()), ("code", code)], n))
            .collect(),
    );
    let refused = ratelog::refusals();
    let of = |k: Refusal| refused.iter().find(|(r, _)| *r == k).map_or(0, |x| x.1);
    counter(
        reg,
        "decode_refusals",
        "Datagrams, frames and operator requests from authenticated peers that did not decode (refused, nothing else changed)",
        of(Refusal::Malformed),
    );
    // The HTTP port's own refusals are quorate_http_refused_connections_total's.
    counter_family(
        reg,
        "admission_refusals",
        "Connections and input the QUIC port refused before trusting them, by kind",
        [
            Refusal::Address,
            Refusal::Handshake,
            Refusal::Hello,
            Refusal::Busy,
            Refusal::Control,
            Refusal::PeerCertificate,
            Refusal::Revoked,
            Refusal::BalancerHeader,
        ]
        .into_iter()
        .map(|k| (vec![("kind", k.as_str().to_owned())], of(k)))
        .collect(),
    );
}

/// A node's certificate end in /cluster (RFC 3339) as Unix seconds.
fn unix_seconds(rfc3339: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339(rfc3339).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

/// The snapshot, the counters and the HTTP port's connection counts as OpenMetrics text,
/// with the lease judged at `now`. (Help strings carry no final period: the encoder adds
/// one.)
pub fn render(view: &ClusterView, conns: &ConnStats, requests: &Requests, now: Instant) -> String {
    let st = &view.status;
    let me = st
        .nodes
        .iter()
        .find(|n| n.local)
        .or_else(|| st.nodes.iter().find(|n| n.node == view.node));
    let mut reg = Registry::with_prefix("quorate");

    int(&mut reg, "up", "The agent runs (always 1)", 1);
    int_family(
        &mut reg,
        "build_info",
        "The agent's version and wire protocol version (always 1)",
        vec![(
            vec![
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                ("protocol", proto::PROTOCOL_VERSION.to_string()),
            ],
            1,
        )],
    );
    seconds(
        &mut reg,
        "lease_remaining",
        "Time left on the primary lease this node holds (0 when it holds none)",
        view.lease.map_or(0.0, |l| {
            l.until.saturating_duration_since(now).as_secs_f64()
        }),
    );
    float_family(
        &mut reg,
        "certificate_expiry_timestamp",
        "When each node's certificate ends (notAfter), as the node reported it, in Unix seconds",
        Some(Unit::Seconds),
        st.nodes
            .iter()
            .filter_map(|n| {
                let at = unix_seconds(n.cert_expires.as_deref()?)?;
                Some((vec![("node", esc(&n.node))], at))
            })
            .collect(),
    );
    int(
        &mut reg,
        "term",
        "Current election term",
        i64::try_from(view.term).unwrap_or(i64::MAX),
    );
    flag(
        &mut reg,
        "primary",
        "1 if this node's role is primary in the snapshot",
        view.role == proto::Role::Primary,
    );
    flag(
        &mut reg,
        "quorum",
        "1 if this node sees a majority of voters",
        st.quorum,
    );
    flag(&mut reg, "frozen", "1 if elections are frozen", st.frozen);
    flag(
        &mut reg,
        "members_mismatch",
        "1 if this node cannot vote (no agreed member set, or not a voter in it) or its peers file disagrees with the agreed member set",
        st.members.disagrees(),
    );
    flag(
        &mut reg,
        "healthy",
        "1 if the node is fit for traffic by its checks (draining aside: see quorate_draining)",
        view.healthy,
    );
    flag(&mut reg, "ready", "1 if /ready answers 200", view.ready);
    flag(
        &mut reg,
        "draining",
        "1 if an operator drained this node",
        view.draining,
    );
    int(
        &mut reg,
        "voters",
        "Voters in the cluster",
        i64::try_from(st.voters).unwrap_or(i64::MAX),
    );

    // Every state, so a state that empties shows 0 rather than vanishing.
    use proto::MemberState::{Alive, Dead, Left, Suspect};
    let nodes = [Alive, Suspect, Dead, Left]
        .into_iter()
        .map(|s| {
            let n = st.nodes.iter().filter(|n| n.state == s).count();
            (
                vec![("state", s.as_str().to_owned())],
                i64::try_from(n).unwrap_or(i64::MAX),
            )
        })
        .collect();
    int_family(&mut reg, "nodes", "Known nodes by liveness state", nodes);
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    int_family(
        &mut reg,
        "peer_links",
        "QUIC links to peers that are up, by the end that dialed (a settled pair keeps one, dialed by the lower id)",
        vec![
            (
                vec![("direction", "dialed".to_owned())],
                count(view.links.dialed),
            ),
            (
                vec![("direction", "accepted".to_owned())],
                count(view.links.accepted),
            ),
        ],
    );
    int_family(
        &mut reg,
        "node_healthy",
        "1 if the node is healthy, as this node sees it",
        st.nodes
            .iter()
            .map(|n| (vec![("node", esc(&n.node))], i64::from(n.healthy)))
            .collect(),
    );
    int_family(
        &mut reg,
        "check",
        "1 for the current status of each local check",
        view.checks
            .iter()
            .map(|c| {
                (
                    vec![
                        ("check", esc(c.name.as_str())),
                        ("status", c.code.as_str().to_owned()),
                    ],
                    1,
                )
            })
            .collect(),
    );
    let peers = || st.nodes.iter().filter(|n| !n.local && n.node != view.node);
    float_family(
        &mut reg,
        "peer_rtt",
        "Round-trip time to each peer",
        Some(Unit::Seconds),
        peers()
            .filter_map(|n| Some((vec![("peer", esc(&n.node))], n.rtt_ms? / 1000.0)))
            .collect(),
    );
    float_family(
        &mut reg,
        "peer_clock_offset",
        "Each peer's clock minus this node's",
        Some(Unit::Seconds),
        peers()
            .filter_map(|n| Some((vec![("peer", esc(&n.node))], n.clock_offset_ms? / 1000.0)))
            .collect(),
    );
    let load = me.map(|n| n.load).unwrap_or_default();
    float(
        &mut reg,
        "load_cpu_ratio",
        "CPU in use, 0-1 of all cores",
        load.cpu,
    );
    float(&mut reg, "load_mem_ratio", "Memory in use, 0-1", load.mem);
    float(&mut reg, "load1", "One-minute load average", load.load1);
    let sets = me.map(|n| n.config.as_slice()).unwrap_or_default();
    int_family(
        &mut reg,
        "config_drift",
        "1 if the config set differs from some node's (acknowledged or not)",
        sets.iter()
            .map(|c| {
                let drift = c.status == "drift" || !c.differs_from.is_empty();
                (vec![("set", esc(&c.name))], i64::from(drift))
            })
            .collect(),
    );
    int_family(
        &mut reg,
        "config_drift_acknowledged",
        "1 if an operator acknowledged a difference in the config set",
        sets.iter()
            .map(|c| {
                (
                    vec![("set", esc(&c.name))],
                    i64::from(c.acknowledged.is_some()),
                )
            })
            .collect(),
    );

    connections(&mut reg, conns);
    counters(&mut reg, view, requests);

    let mut out = String::new();
    if encode(&mut out, &reg).is_err() {
        // Writing to a String cannot fail; keep the answer well-formed regardless.
        return "# EOF\n".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::status::{ConfigStatus, LoadStatus, NodeStatus, VersionStatus};
    use proto::{CheckCode, CheckState};

    fn node(name: &str, local: bool, state: &str) -> NodeStatus {
        NodeStatus {
            node: name.into(),
            addr: "10.0.0.1:7700".into(),
            state: state.into(),
            role: "secondary".into(),
            local,
            ready: true,
            healthy: state == "alive",
            draining: false,
            priority: 100,
            roles: vec![],
            incarnation: 1,
            rtt_ms: (!local).then_some(0.4),
            clock_offset_ms: (!local).then_some(-1.5),
            last_seen_ms: None,
            phi: None,
            load: LoadStatus {
                cpu: 0.25,
                mem: 0.5,
                load1: 0.3,
            },
            checks: Default::default(),
            config: if local {
                vec![ConfigStatus {
                    name: "app\"conf".into(),
                    hash: "9f3a".into(),
                    agrees_with: vec![],
                    differs_from: vec!["n3".into()],
                    status: "drift".into(),
                    differing_files: vec![],
                    acknowledged: None,
                }]
            } else {
                vec![]
            },
            mounts: vec![],
            version: VersionStatus::default(),
            check_reasons: Default::default(),
            drain: None,
            balancer: None,
            suspected_by: Vec::new(),
            cert_expires: Some("2027-03-01T12:00:00Z".into()),
        }
    }

    fn fixture() -> ClusterView {
        let mut v = crate::http::routes::tests::view(true, true, vec![]);
        v.role = proto::Role::Primary;
        v.term = 7;
        v.checks = vec![
            CheckState {
                name: "app".into(),
                code: CheckCode::Ok,
                reason: String::new(),
            },
            CheckState {
                name: "mounts".into(),
                code: CheckCode::Fail,
                reason: "/mnt/repo missing".into(),
            },
        ];
        v.status.voters = 3;
        v.status.nodes = vec![
            node("n1", true, "alive"),
            node("n2", false, "alive"),
            node("n3", false, "dead"),
        ];
        v
    }

    #[test]
    fn renders_the_snapshot() {
        let conns = ConnStats {
            open_allowed: 2,
            open_other: 30,
            refused_per_source: 7,
            slow: 3,
            ..ConnStats::default()
        };
        let out = render(&fixture(), &conns, &Requests::new(), crate::clock::now());
        for want in [
            "quorate_up 1\n",
            "quorate_term 7\n",
            "quorate_primary 1\n",
            "quorate_quorum 1\n",
            "quorate_frozen 0\n",
            "quorate_healthy 1\n",
            "quorate_draining 0\n",
            "quorate_voters 3\n",
            "quorate_nodes{state=\"alive\"} 2\n",
            "quorate_nodes{state=\"dead\"} 1\n",
            "quorate_nodes{state=\"left\"} 0\n",
            "quorate_node_healthy{node=\"n3\"} 0\n",
            "quorate_check{check=\"mounts\",status=\"fail\"} 1\n",
            "quorate_check{check=\"app\",status=\"ok\"} 1\n",
            "quorate_peer_rtt_seconds{peer=\"n2\"} 0.0004\n",
            "quorate_peer_clock_offset_seconds{peer=\"n2\"} -0.0015\n",
            "# UNIT quorate_peer_rtt_seconds seconds\n",
            "quorate_load_cpu_ratio 0.25\n",
            "quorate_load1 0.3\n",
            "quorate_config_drift{set=\"app\\\"conf\"} 1\n",
            "quorate_config_drift_acknowledged{set=\"app\\\"conf\"} 0\n",
            "quorate_http_connections{from=\"allow\"} 2\n",
            "quorate_http_connections{from=\"other\"} 30\n",
            "quorate_http_refused_connections_total{reason=\"per-source\"} 7\n",
            "quorate_http_refused_connections_total{reason=\"full\"} 0\n",
            "quorate_http_closed_connections_total{reason=\"slow\"} 3\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
        // The local node has no peer gauges.
        assert!(!out.contains("peer=\"n1\""), "{out}");
        assert!(out.ends_with("# EOF\n"));
    }

    #[test]
    fn renders_the_counters_and_the_lease_left() {
        use crate::core::TransferReason;
        use crate::http::requests::Endpoint;
        use proto::{CheckCode, CheckName, Role};

        let now = crate::clock::now();
        let mut v = fixture();
        v.lease = Some(crate::core::lease::Lease {
            term: proto::Term(7),
            until: now + std::time::Duration::from_millis(250),
        });
        v.counts.elections = 3;
        v.counts.role_changes = vec![(Role::Primary, 2)];
        v.counts.handovers = vec![(TransferReason::Shutdown, 1)];
        v.counts.check_changes = vec![(CheckName::Certs, CheckCode::Warn, 1)];
        v.counts.hooks = vec![("on_primary", 2, 1)];
        let requests = Requests::new();
        requests.count(Endpoint::Health, 200);
        requests.count(Endpoint::Primary, 503);
        let out = render(&v, &ConnStats::default(), &requests, now);
        for want in [
            "quorate_build_info{version=\"",
            "quorate_lease_remaining_seconds 0.25\n",
            "quorate_certificate_expiry_timestamp_seconds{node=\"n2\"} 1803902400.0\n",
            "quorate_elections_total 3\n",
            "quorate_role_changes_total{role=\"primary\"} 2\n",
            "quorate_role_changes_total{role=\"candidate\"} 0\n",
            "quorate_handovers_total{reason=\"shutdown\"} 1\n",
            "quorate_handovers_total{reason=\"preemption\"} 0\n",
            "quorate_check_transitions_total{check=\"certs\",result=\"warn\"} 1\n",
            "quorate_hook_runs_total{hook=\"on_primary\"} 2\n",
            "quorate_hook_failures_total{hook=\"on_primary\"} 1\n",
            "quorate_http_requests_total{endpoint=\"health\",code=\"200\"} 1\n",
            "quorate_http_requests_total{endpoint=\"primary\",code=\"503\"} 1\n",
            // Every endpoint's 200 exists from the start; other codes once counted.
            "quorate_http_requests_total{endpoint=\"task\",code=\"200\"} 0\n",
            "quorate_admission_refusals_total{kind=\"address\"} ",
            "quorate_decode_refusals_total ",
            "quorate_split_brain_suspected_total 0\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
        assert!(!out.contains("endpoint=\"task\",code=\"503\""), "{out}");
        // Not the primary: no lease left.
        let out = render(&fixture(), &ConnStats::default(), &requests, now);
        assert!(
            out.contains("quorate_lease_remaining_seconds 0.0\n"),
            "{out}"
        );
    }

    /// Every line is a comment or `name{labels} value`, with a parseable value.
    #[test]
    fn output_parses_line_wise() {
        let out = render(
            &fixture(),
            &ConnStats::default(),
            &Requests::new(),
            crate::clock::now(),
        );
        let sample = regex::Regex::new(
            r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (\S+)$"#,
        )
        .unwrap();
        let mut samples = 0;
        for line in out.lines() {
            if line.starts_with('#') {
                continue;
            }
            let caps = sample
                .captures(line)
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            let value = &caps[4];
            assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
            samples += 1;
        }
        assert!(samples > 20, "{out}");
    }

    #[test]
    fn empty_view_renders() {
        let out = render(
            &crate::http::routes::tests::view(false, false, vec![]),
            &ConnStats::default(),
            &Requests::new(),
            crate::clock::now(),
        );
        assert!(out.contains("quorate_up 1\n"));
        assert!(out.contains("quorate_load1 0.0\n") || out.contains("quorate_load1 0\n"));
        assert!(out.ends_with("# EOF\n"));
    }
}
