//! Semantic checks on a parsed config, and errors that say file, line and reason.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::model::Config;
use super::raw::{RawConfig, RawMode};
use super::tls::{self, TlsPaths};

/// An invalid or unreadable config. Its message is one line: `file:line: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl ConfigError {
    pub(super) fn at_span(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        reason: String,
    ) -> Self {
        let line = span.map(|s| line_of(text, s.start)).unwrap_or(1);
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            // toml's messages can span lines; an operator's terminal wants one.
            reason: reason.trim().replace('\n', "; "),
        }
    }
}

/// The dotted key (`timing.lease`) of the `key = value` line holding `offset`, for
/// messages from the TOML parser that name only the value.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

pub(super) fn validate(path: &Path, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let err =
        |span: Range<usize>, reason: String| ConfigError::at_span(path, text, Some(span), reason);

    let cluster = match &raw.cluster {
        Some(c) => proto::ClusterName::new(c.get_ref().clone())
            .map_err(|e| err(c.span(), format!("cluster: {e}")))?,
        None => proto::ClusterName::new(super::model::DEFAULT_CLUSTER.to_owned())
            .map_err(|e| err(0..0, format!("cluster: {e}")))?,
    };

    let node = match &raw.node {
        Some(n) => proto::NodeId::new(n.get_ref().clone())
            .map_err(|e| err(n.span(), format!("node: {:?} {e}", n.get_ref())))?,
        None => {
            let host = short_hostname();
            proto::NodeId::new(host.clone()).map_err(|e| {
                ConfigError::at_span(
                    path,
                    text,
                    None,
                    format!("node: not set, and the hostname {host:?} {e}; set node = \"…\""),
                )
            })?
        }
    };

    let listen_span = raw.listen.as_ref().map(|l| l.span()).unwrap_or_default();
    let listen = raw.listen.as_ref().map_or(
        SocketAddr::from(([0, 0, 0, 0], super::defaults::QUIC_PORT)),
        |l| *l.get_ref(),
    );
    let peers_span = raw.peers.as_ref().map(|p| p.span()).unwrap_or_default();
    let peers = raw.peers.map(|p| p.into_inner()).unwrap_or_default();
    let advertise = match &raw.advertise {
        Some(a) => {
            let a = *a.get_ref();
            if a.ip().is_unspecified() || a.port() == 0 {
                return Err(err(
                    raw.advertise.as_ref().map(|a| a.span()).unwrap_or_default(),
                    format!("advertise: {a} is not an address peers can reach"),
                ));
            }
            a
        }
        None if listen.port() == 0 => {
            return Err(err(
                listen_span,
                format!(
                    "advertise: required when listen is {listen}: peers need an address to reach this node"
                ),
            ));
        }
        None if listen.ip().is_unspecified() => match route_source(&peers, listen.port()) {
            Some(a) => a,
            None => {
                return Err(err(
                    listen_span,
                    format!(
                        "advertise: required: listen is {listen} and no route to a peer shows which address peers reach this node at"
                    ),
                ));
            }
        },
        None => listen,
    };
    for (i, p) in peers.iter().enumerate() {
        if *p == advertise {
            return Err(err(
                peers_span.clone(),
                format!("peers: {p} is this node's own address; list only the other nodes"),
            ));
        }
        if peers[..i].contains(p) {
            return Err(err(
                peers_span.clone(),
                format!("peers: {p} is listed twice"),
            ));
        }
        if p.ip().is_unspecified() || p.port() == 0 {
            return Err(err(
                peers_span.clone(),
                format!("peers: {p} is not a reachable address"),
            ));
        }
    }

    let timing_span = raw.timing.as_ref().map(|t| t.span()).unwrap_or_default();
    let t = raw.timing.map(|t| t.into_inner()).unwrap_or_default();
    let timing_err = |reason: String| err(timing_span.clone(), format!("timing: {reason}"));
    if t.heartbeat_interval.0.is_zero() || t.lease_heartbeat_interval.0.is_zero() {
        return Err(timing_err("heartbeat intervals must be above zero".into()));
    }
    if t.lease_heartbeat_interval >= t.lease {
        return Err(timing_err(format!(
            "lease_heartbeat_interval ({}) must be shorter than lease ({})",
            t.lease_heartbeat_interval, t.lease
        )));
    }
    // A real margin, not a nanosecond: the primary's lease runs from the send time of a
    // heartbeat a majority acknowledged, and a voter's promise from when that heartbeat
    // arrived; two lease heartbeats of slack keep a late or lost acknowledgement from
    // eating the gap between "the lease ended" and "voters may elect".
    let margin = t.lease_heartbeat_interval.0.saturating_mul(2);
    let floor = t.lease.0.saturating_add(margin);
    if t.election_timeout.0 < floor {
        return Err(timing_err(format!(
            "election_timeout ({}) must be at least lease + 2 × lease_heartbeat_interval ({} + 2 × {} = {}): voters must not elect anyone while a lease may still hold",
            t.election_timeout,
            t.lease,
            t.lease_heartbeat_interval,
            super::duration::Dur(floor)
        )));
    }
    if !(t.phi_threshold.is_finite() && t.phi_threshold > 0.0) {
        return Err(timing_err(format!(
            "phi_threshold must be a positive number, not {}",
            t.phi_threshold
        )));
    }
    if t.dead_after.0 < t.heartbeat_interval.0 {
        return Err(timing_err(format!(
            "dead_after ({}) must be at least heartbeat_interval ({})",
            t.dead_after, t.heartbeat_interval
        )));
    }

    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &PathBuf| {
        if p.is_relative() {
            base.join(p)
        } else {
            p.clone()
        }
    };
    let tls_paths = TlsPaths {
        ca: resolve(raw.tls.ca.get_ref()),
        cert: resolve(raw.tls.cert.get_ref()),
        key: resolve(raw.tls.key.get_ref()),
    };
    let cas =
        tls::load_ca(&tls_paths.ca).map_err(|e| err(raw.tls.ca.span(), format!("tls.ca: {e}")))?;
    let chain = tls::load_certs(&tls_paths.cert)
        .map_err(|e| err(raw.tls.cert.span(), format!("tls.cert: {e}")))?;
    tls::load_agent_key(&tls_paths.key)
        .map_err(|e| err(raw.tls.key.span(), format!("tls.key: {e}")))?;
    if let Some(leaf) = chain.first()
        && !tls::cert_names(leaf, node.as_str())
    {
        return Err(err(
            raw.tls.cert.span(),
            format!(
                "tls.cert: {} does not name node {node:?} (issue one with `quorate ca issue --dir DIR {node}`)",
                tls_paths.cert.display()
            ),
        ));
    }
    let tls_crl = match &raw.tls.crl {
        None => None,
        Some(crl) => {
            let path = resolve(crl.get_ref());
            let lists = tls::Revocations::load(&path, &cas)
                .map_err(|e| err(crl.span(), format!("tls.crl: {e}")))?;
            // This node's own certificate revoked: its peers refuse it anyway; say so here.
            if let Some(serial) = chain.first().and_then(|leaf| lists.revoked(leaf)) {
                return Err(err(
                    crl.span(),
                    format!(
                        "tls.crl: {} revokes this node's own certificate {} (serial {serial}): \
                         issue node {node} a new one (remove its key, then `quorate ca issue \
                         --dir DIR {node}`)",
                        path.display(),
                        tls_paths.cert.display()
                    ),
                ));
            }
            Some(path)
        }
    };

    if !(100..=599).contains(&raw.http.drain_status) {
        return Err(err(
            0..0,
            format!(
                "http.drain_status: {} is not an HTTP status",
                raw.http.drain_status
            ),
        ));
    }

    let (app_span, raw_app) = match raw.app {
        Some(a) => (a.span(), a.into_inner()),
        None => (0..0, super::checks::RawApp::default()),
    };
    let app_err = |reason: String| err(app_span.clone(), format!("app: {reason}"));
    let check = raw_app
        .check
        .as_deref()
        .map(str::parse::<super::checks::AppCheck>)
        .transpose()
        .map_err(|e| app_err(format!("check: {e}")))?;
    if raw_app.rise == 0 || raw_app.fall == 0 {
        return Err(app_err("rise and fall must be at least 1".into()));
    }
    if raw_app.interval.0.is_zero() || raw_app.timeout.0.is_zero() {
        return Err(app_err("interval and timeout must be above zero".into()));
    }
    if raw_app.version_file.is_some() && raw_app.version_command.is_some() {
        return Err(app_err(
            "set version_file or version_command, not both".into(),
        ));
    }
    let app = super::checks::App {
        check,
        expect_status: raw_app.expect_status,
        interval: raw_app.interval.0,
        timeout: raw_app.timeout.0,
        rise: raw_app.rise,
        fall: raw_app.fall,
        version_file: raw_app.version_file,
        version_command: raw_app.version_command,
        upgrade_gate: raw_app.upgrade_gate,
    };

    let mut mounts: Vec<super::checks::Mount> = Vec::new();
    for m in raw.mount {
        let span = m.span();
        let m = m.into_inner();
        if !m.path.is_absolute() {
            return Err(err(
                span,
                format!("mount.path: {} must be absolute", m.path.display()),
            ));
        }
        if mounts.iter().any(|o| o.path == m.path) {
            return Err(err(
                span,
                format!("mount.path: {} is listed twice", m.path.display()),
            ));
        }
        if m.timeout.0.is_zero() || m.interval.0.is_zero() {
            return Err(err(
                span,
                "mount: interval and timeout must be above zero".into(),
            ));
        }
        mounts.push(m);
    }

    let mut config_sets: Vec<super::checks::ConfigSet> = Vec::new();
    for c in raw.config {
        let span = c.span();
        let c = c.into_inner();
        if c.name.trim().is_empty() || config_sets.iter().any(|o| o.name == c.name) {
            return Err(err(
                span,
                format!("config.name: {:?} is empty or used twice", c.name),
            ));
        }
        if c.paths.is_empty() {
            return Err(err(span, format!("config {:?}: paths is empty", c.name)));
        }
        for p in &c.paths {
            if !p.starts_with('/') {
                return Err(err(
                    span,
                    format!("config {:?}: path {p:?} must be absolute", c.name),
                ));
            }
            if let Some(dir) = Path::new(p).parent()
                && dir.to_string_lossy().contains(['*', '?', '['])
            {
                return Err(err(
                    span,
                    format!(
                        "config {:?}: {p:?}: wildcards are allowed in the file name only",
                        c.name
                    ),
                ));
            }
            glob::Pattern::new(p)
                .map_err(|e| err(span.clone(), format!("config {:?}: {p:?}: {e}", c.name)))?;
        }
        let ignore = c
            .ignore
            .iter()
            .map(|r| {
                regex::Regex::new(r).map_err(|e| {
                    err(
                        span.clone(),
                        format!(
                            "config {:?}: ignore {r:?} is not a regex: {}",
                            c.name,
                            e.to_string().replace('\n', " ")
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        config_sets.push(super::checks::ConfigSet {
            name: c.name,
            paths: c.paths,
            ignore,
        });
    }

    // Every task placed on a node travels in each heartbeat to it (4 bytes a task).
    const MAX_TASKS: usize = 64;
    let mut tasks: Vec<super::checks::Task> = Vec::new();
    for t in raw.task {
        let span = t.span();
        let t = t.into_inner();
        if proto::NodeId::new(t.name.clone()).is_err() || tasks.iter().any(|o| o.name == t.name) {
            return Err(err(
                span,
                format!(
                    "task.name: {:?} must be a short name (letters, digits, '-') used once",
                    t.name
                ),
            ));
        }
        let run_on = t
            .run_on
            .parse()
            .map_err(|e| err(span.clone(), format!("task {:?}: {e}", t.name)))?;
        if tasks.len() == MAX_TASKS {
            return Err(err(
                span.clone(),
                format!("task {:?}: at most {MAX_TASKS} [[task]]s", t.name),
            ));
        }
        // Tasks travel as 32-bit tags of their names: two names with one tag would be
        // one task on the wire.
        let tag = proto::TaskTag::of(&t.name);
        if let Some(other) = tasks.iter().find(|o| proto::TaskTag::of(&o.name) == tag) {
            return Err(err(
                span,
                format!(
                    "task {:?}: its name hashes like task {:?}'s on the wire; rename one",
                    t.name, other.name
                ),
            ));
        }
        tasks.push(super::checks::Task {
            name: t.name,
            run_on,
        });
    }

    let log_level = match &raw.log_level {
        Some(l) => {
            let level = l.get_ref().trim().to_owned();
            if level.is_empty() {
                return Err(err(
                    l.span(),
                    "log_level: empty; write a level such as \"info\"".into(),
                ));
            }
            tracing_subscriber::EnvFilter::try_new(&level).map_err(|e| {
                err(
                    l.span(),
                    format!("log_level: {level:?} is not a log filter (like \"info\" or \"warn,quorate_agent=debug\"): {e}"),
                )
            })?;
            level
        }
        None => super::model::DEFAULT_LOG_LEVEL.to_owned(),
    };

    if raw.clock.max_offset.0.is_zero() {
        return Err(err(0..0, "clock.max_offset must be above zero".into()));
    }

    Ok(Config {
        path: path.to_owned(),
        cluster,
        node,
        listen,
        advertise,
        peers,
        priority: raw.priority,
        roles: raw.roles,
        mode: match raw.mode {
            RawMode::Member => proto::Mode::Member,
            RawMode::Witness => proto::Mode::Witness,
        },
        state_dir: raw.state_dir,
        control_allow: raw.control_allow,
        log_level,
        tls: tls_paths,
        tls_crl,
        timing: t,
        http: raw.http,
        election: raw.election,
        load: raw.load,
        hooks: raw.hooks,
        app,
        mounts,
        config_sets,
        clock: raw.clock,
        tasks,
        haproxy_agent: raw.haproxy_agent,
    })
}

/// The address this node would send from to reach the first peer (the kernel's route
/// lookup for a connected UDP socket; no packet is sent), with `port`. With no peers, a
/// lone node advertises loopback: nobody needs to reach it.
fn route_source(peers: &[SocketAddr], port: u16) -> Option<SocketAddr> {
    let Some(peer) = peers.first() else {
        return Some(SocketAddr::from(([127, 0, 0, 1], port)));
    };
    let any: SocketAddr = if peer.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(peer).ok()?;
    let mut source = socket.local_addr().ok()?;
    source.set_port(port);
    (!source.ip().is_unspecified()).then_some(source)
}

/// The hostname up to its first dot, the default node id.
fn short_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl Config {
    /// Reads, parses and checks the file, including that the certificate names this node.
    /// Binds nothing.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks `text` as if read from `path` (relative TLS paths are resolved
    /// against the file's directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let reason = match e.span().and_then(|s| key_at(text, s.start)) {
                _ if e.message().contains("missing field `tls`") => "[tls] is missing: set \
                    ca, cert and key (make them with `quorate ca init` and `quorate ca issue`)"
                    .to_owned(),
                Some(key) if !e.message().contains(&key) => format!("{key}: {}", e.message()),
                _ => e.message().to_string(),
            };
            ConfigError::at_span(path, text, e.span(), reason)
        })?;
        validate(path, text, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests_support::config_text;

    fn check(extra: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let text = config_text(dir.path(), extra);
        Config::parse(&dir.path().join("agent.toml"), &text).map_err(|e| {
            // Strip the temporary directory: the rest is what an operator reads.
            e.to_string().replace(&dir.path().display().to_string(), "")
        })
    }

    /// Invalid `[timing]` and durations: each error names the file, the line and why
    /// (the line of `[timing]` for a relation between keys, of the key for one value).
    #[test]
    fn timing_margins_and_overlong_durations_are_refused() {
        let cases = [
            (
                "[timing]\nlease = \"300ms\"\nelection_timeout = \"350ms\"\n",
                "/agent.toml:12: timing: election_timeout (350ms) must be at least lease + 2 × lease_heartbeat_interval (300ms + 2 × 50ms = 400ms)",
            ),
            (
                "[timing]\nelection_timeout = \"300years\"\n",
                "/agent.toml:13: timing.election_timeout: duration \"300years\" is too long: at most 10 years",
            ),
            (
                "[election]\npreempt_delay = \"100000000years\"\n",
                "/agent.toml:13: election.preempt_delay: duration \"100000000years\" is too long",
            ),
        ];
        for (extra, want) in cases {
            let got = check(extra).expect_err(extra);
            assert!(got.starts_with(want), "{extra}: {got}");
        }
        // The defaults and the documented fast preset pass (150 + 2 × 20 ≤ 200).
        check("").unwrap();
        check(
            "[timing]\nheartbeat_interval = \"100ms\"\nlease_heartbeat_interval = \"20ms\"\n\
             lease = \"150ms\"\nelection_timeout = \"200ms\"\n",
        )
        .unwrap();
        check("[timing]\nelection_timeout = \"10years\"\n").unwrap();
    }

    /// `[tls] crl`: a file that is not a revocation list, one from another cluster's CA,
    /// or one revoking this node's own certificate is refused with the file, the line and
    /// why; a list of this CA is taken.
    #[test]
    fn a_bad_revocation_list_is_refused_naming_file_line_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let with_crl = |crl: &Path| {
            config_text(d, "").replace(
                "n1.key\"\n",
                &format!("n1.key\"\ncrl = \"{}\"\n", crl.display()),
            )
        };
        let load = |crl: &Path| {
            Config::parse(&d.join("agent.toml"), &with_crl(crl))
                .map_err(|e| e.to_string().replace(&d.display().to_string(), ""))
        };
        let n = |s: &str| proto::NodeId::new(s).unwrap();

        // Not a CRL at all, and a file that is not there.
        std::fs::write(
            d.join("junk.pem"),
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        let e = load(&d.join("junk.pem")).unwrap_err();
        assert!(e.starts_with("/agent.toml:11: tls.crl: /junk.pem: "), "{e}");
        assert!(e.contains("cannot be parsed"), "{e}");
        std::fs::write(d.join("empty.pem"), "").unwrap();
        let e = load(&d.join("empty.pem")).unwrap_err();
        assert!(e.contains("/empty.pem: holds no revocation list"), "{e}");
        let e = load(&d.join("missing.pem")).unwrap_err();
        assert!(e.contains("tls.crl: /missing.pem: No such file"), "{e}");

        // Another cluster's CA (same common name, another key).
        let other = d.join("other");
        crate::ca::init(&other).unwrap();
        crate::ca::issue_operator(&other, &n("eve")).unwrap();
        crate::ca::revoke(&other, &n("eve"), crate::ca::Kind::Operator).unwrap();
        let e = load(&other.join("crl.pem")).unwrap_err();
        assert!(e.contains("tls.crl: /other/crl.pem: "), "{e}");
        assert!(e.contains("is not from a CA in tls.ca"), "{e}");
        // Same name, wrong signature: another CA's list renamed into this CA's name.
        let theirs = std::fs::read(other.join("crl.pem")).unwrap();
        let ours_name = {
            let ca = crate::config::tls::load_ca(&d.join("ca.pem")).unwrap();
            let (_, c) = x509_parser::parse_x509_certificate(&ca[0]).unwrap();
            c.subject().as_raw().to_vec()
        };
        let theirs_der = {
            use rustls::pki_types::pem::PemObject as _;
            rustls::pki_types::CertificateRevocationListDer::from_pem_slice(&theirs).unwrap()
        };
        let their_name = {
            let (_, crl) = x509_parser::parse_x509_crl(&theirs_der).unwrap();
            crl.issuer().as_raw().to_vec()
        };
        assert_eq!(ours_name.len(), their_name.len(), "same-length ids");
        let forged: Vec<u8> = {
            let raw = theirs_der.to_vec();
            let at = raw
                .windows(their_name.len())
                .position(|w| w == their_name)
                .unwrap();
            [&raw[..at], &ours_name[..], &raw[at + their_name.len()..]].concat()
        };
        let pem = format!(
            "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
            base64(&forged)
        );
        std::fs::write(d.join("forged.pem"), pem).unwrap();
        let e = load(&d.join("forged.pem")).unwrap_err();
        assert!(e.contains("is not signed by the CA in tls.ca"), "{e}");

        // This CA's list: taken; one that revokes n1 itself: refused.
        crate::ca::issue_operator(d, &n("alice")).unwrap();
        crate::ca::revoke(d, &n("alice"), crate::ca::Kind::Operator).unwrap();
        let c = load(&d.join("crl.pem")).unwrap();
        assert_eq!(c.tls_crl.as_deref(), Some(d.join("crl.pem").as_path()));
        crate::ca::revoke(d, &n("n1"), crate::ca::Kind::Node).unwrap();
        let e = load(&d.join("crl.pem")).unwrap_err();
        assert!(
            e.starts_with("/agent.toml:11: tls.crl: /crl.pem revokes this node's own certificate /n1.pem (serial "),
            "{e}"
        );
        // Without the key: no list.
        assert!(check("").unwrap().tls_crl.is_none());
    }

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn keys_of_lines() {
        let text = "cluster = \"c\"\n\n[timing]\nlease = \"fast\"\n";
        assert_eq!(
            key_at(text, text.find("fast").unwrap()).as_deref(),
            Some("timing.lease")
        );
        assert_eq!(key_at(text, 3).as_deref(), Some("cluster"));
        assert_eq!(key_at(text, text.find("[timing]").unwrap()), None);
    }
}
