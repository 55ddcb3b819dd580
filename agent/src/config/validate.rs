//! Raw → checked: every semantic rule of the config file, and errors that say file, line
//! and reason.
//!
//! A check reports every error it finds, not only the first: a file with five mistakes
//! gives five `file:line: reason` lines, in file order. Only a TOML syntax error stops
//! it (the parser cannot go on; the message says so). A value serde refuses (an unknown
//! key, a bad duration) is reported, its lines are blanked out of a working copy, and the
//! copy is read again, so the rest of the file is still checked; the relations between
//! `[timing]` keys are skipped when one of them was refused, so one mistake never
//! reports twice. Warnings (a certificate ending soon) and notes (what was derived or
//! skipped) are their own types: they never make a file invalid.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::addr::{self, Written};
use super::host::{Host, System};
use super::model::Config;
use super::preflight::{self, Expiry};
use super::raw::{RawConfig, RawMode, RawTls};
use super::report::{Checked, ConfigError, ConfigErrors, Report, blank, key_at, key_line, line_of};
use super::tls::{self, TlsPaths};

/// Which checks run: the file and the TLS files it names always; what the machine must
/// provide (`state_dir`, hooks) only for a file the agent is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    File,
    Machine,
}

/// One `peers` entry, resolved.
struct Peer {
    written: String,
    span: Range<usize>,
    /// The host name, when it was written as one.
    name: Option<String>,
    addr: SocketAddr,
}

/// How many values serde may refuse before the check gives up on the file.
const MAX_REFUSED: usize = 64;

/// Reads `text` (as if from `path`) on `host`: parses what it can, checks everything.
pub(crate) fn check_text(
    path: &Path,
    text: &str,
    host: &dyn Host,
    scope: Scope,
) -> Result<Checked, ConfigErrors> {
    let mut r = Report::new(path, text);
    if let Err(e) = text.parse::<toml::Table>() {
        r.error_line(
            r.line(e.span()),
            format!(
                "{} (a TOML syntax error stops the check here: fix it, then check again for \
                 the rest)",
                e.message().trim()
            ),
        );
        return Err(r.into_errors());
    }
    // Serde stops at the first value it refuses: blank that value out of a working copy
    // and read again, until the copy reads (bounded: each round blanks at least a line).
    let mut work = text.to_owned();
    let mut refused: Vec<String> = Vec::new();
    let raw = loop {
        match toml::from_str::<RawConfig>(&work) {
            Ok(raw) => break Some(raw),
            Err(e) => {
                let key = e.span().and_then(|s| key_at(&work, s.start));
                let reason = match &key {
                    Some(key) if !e.message().contains(key.as_str()) => {
                        format!("{key}: {}", e.message())
                    }
                    _ => e.message().to_string(),
                };
                let line = r.line(e.span());
                let repeated = r.errors.iter().any(|o| {
                    matches!(o, ConfigError::Invalid { line: l, reason: why, .. }
                        if *l == line && *why == reason.trim().replace('\n', "; "))
                });
                if !repeated {
                    r.error_line(line, reason);
                }
                refused.push(key.unwrap_or_default());
                // Each round reads the whole copy again: a file that is mostly mistakes
                // (or not a config at all) is cut short rather than read a thousand times.
                if refused.len() == MAX_REFUSED {
                    // Said at the last line, so it sorts after what was found.
                    r.error_line(
                        text.lines().count().max(1),
                        format!(
                            "{MAX_REFUSED} values refused: the check stopped before the end; \
                             fix these and check again"
                        ),
                    );
                    break None;
                }
                let Some(span) = e.span() else { break None };
                if !blank(&mut work, span) || work.parse::<toml::Table>().is_err() {
                    break None;
                }
            }
        }
    };
    let Some(raw) = raw else {
        return Err(r.into_errors());
    };
    let config = validate(&mut r, raw, &refused, host, scope);
    match config {
        Some(config) if r.errors.is_empty() => Ok(Checked {
            config,
            warnings: r.warnings,
            notes: r.notes,
        }),
        _ => {
            if r.errors.is_empty() {
                // Every path that leaves a value out reports why; this is a safety net.
                r.error_line(1, "the file could not be checked".into());
            }
            Err(r.into_errors())
        }
    }
}

fn validate(
    r: &mut Report<'_>,
    raw: RawConfig,
    refused: &[String],
    host: &dyn Host,
    scope: Scope,
) -> Option<Config> {
    let text = r.text;
    let path = r.path;

    let cluster = match &raw.cluster {
        Some(c) => proto::ClusterName::new(c.get_ref().clone())
            .map_err(|e| r.error(c.span(), format!("cluster: {e}")))
            .ok(),
        None => proto::ClusterName::new(super::model::DEFAULT_CLUSTER.to_owned()).ok(),
    };

    let hostname = host.hostname();
    let short_hostname = hostname.split('.').next().unwrap_or_default().to_owned();
    let node = match &raw.node {
        Some(n) => proto::NodeId::new(n.get_ref().clone())
            .map_err(|e| r.error(n.span(), format!("node: {:?} {e}", n.get_ref())))
            .ok(),
        None => match proto::NodeId::new(short_hostname.clone()) {
            Ok(n) => {
                r.notes.push(format!(
                    "node {n}: the hostname's first label (node is not set)"
                ));
                Some(n)
            }
            Err(e) => {
                r.error_line(
                    1,
                    format!(
                        "node: not set, and the hostname {short_hostname:?} {e}; set node = \"…\""
                    ),
                );
                None
            }
        },
    };

    let listen_span = raw.listen.as_ref().map(|l| l.span()).unwrap_or_default();
    let listen = raw.listen.as_ref().map_or(
        SocketAddr::from(([0, 0, 0, 0], super::defaults::QUIC_PORT)),
        |l| *l.get_ref(),
    );

    // `peers`: each entry an address or a name, resolved now (and again on reload).
    let mut listed: Vec<Peer> = Vec::new();
    for p in raw.peers.map(Spanned::into_inner).unwrap_or_default() {
        let span = p.span();
        let written = p.into_inner();
        match addr::parse(&written, super::defaults::QUIC_PORT) {
            Err(why) => r.error(span, format!("peers: {why}")),
            Ok(Written::Addr(a)) => listed.push(Peer {
                written,
                span,
                name: None,
                addr: a,
            }),
            Ok(Written::Name { host: name, port }) => match resolve(host, &name, port) {
                Ok(a) => listed.push(Peer {
                    written,
                    span,
                    name: Some(name),
                    addr: a,
                }),
                Err(why) => r.error(span, format!("peers: {written:?} {why}")),
            },
        }
    }
    // This node's own entry, known before `advertise` is: its name, or its own socket.
    let own_names: Vec<String> = [
        node.as_ref().map(|n| n.as_str().to_owned()),
        Some(hostname.clone()),
        Some(short_hostname.clone()),
    ]
    .into_iter()
    .flatten()
    .filter(|n| !n.is_empty())
    .map(|n| n.to_ascii_lowercase())
    .collect();
    let own_before_advertise = |p: &Peer| {
        let by_name = p
            .name
            .as_ref()
            .is_some_and(|n| own_names.contains(&n.to_ascii_lowercase()));
        let own_socket = p.addr.port() == listen.port()
            && (p.addr.ip() == listen.ip()
                || (listen.ip().is_unspecified() && p.addr.ip().is_loopback()));
        by_name || own_socket
    };

    let advertise = match &raw.advertise {
        Some(a) => {
            let span = a.span();
            let written = a.get_ref();
            let port = if listen.port() == 0 {
                super::defaults::QUIC_PORT
            } else {
                listen.port()
            };
            let resolved = match addr::parse(written, port) {
                Err(why) => Err(why),
                Ok(Written::Addr(a)) => Ok(a),
                Ok(Written::Name { host: name, port }) => {
                    resolve(host, &name, port).map_err(|why| format!("{written:?} {why}"))
                }
            };
            match resolved {
                Err(why) => {
                    r.error(span, format!("advertise: {why}"));
                    None
                }
                Ok(a) if a.ip().is_unspecified() || a.port() == 0 => {
                    r.error(
                        span,
                        format!("advertise: {a} is not an address peers can reach"),
                    );
                    None
                }
                Ok(a) => Some(a),
            }
        }
        None if listen.port() == 0 => {
            r.error(
                listen_span.clone(),
                format!(
                    "advertise: required when listen is {listen}: peers need an address to reach this node"
                ),
            );
            None
        }
        None if !listen.ip().is_unspecified() => Some(listen),
        None => {
            let names: Vec<&str> = match (&raw.node, &node) {
                (None, Some(n)) if hostname != n.as_str() => vec![n.as_str(), &hostname],
                (_, Some(n)) => vec![n.as_str()],
                (_, None) => vec![],
            };
            let first_other = listed.iter().find(|p| !own_before_advertise(p));
            match derive_advertise(host, &names, listen.port(), &mut r.notes) {
                Some(a) => Some(a),
                None => match first_other {
                    None => Some(SocketAddr::from(([127, 0, 0, 1], listen.port()))),
                    Some(p) => match host.route_source(p.addr) {
                        Some(ip) => {
                            let a = SocketAddr::new(ip, listen.port());
                            r.notes.push(format!(
                                "advertise {a}: this machine's address on the route to peer {:?}",
                                p.written
                            ));
                            Some(a)
                        }
                        None => {
                            r.error(
                                listen_span.clone(),
                                format!(
                                    "advertise: required: listen is {listen}, the node's name \
                                     resolves to no address of this machine, and no route to a \
                                     peer shows which address peers reach this node at"
                                ),
                            );
                            None
                        }
                    },
                },
            }
        }
    };

    let mut peers: Vec<SocketAddr> = Vec::new();
    for p in &listed {
        if own_before_advertise(p) || Some(p.addr) == advertise {
            r.notes.push(format!(
                "peers: {:?} (line {}) is this node ({}): skipped",
                p.written,
                line_of(text, p.span.start),
                p.addr
            ));
            continue;
        }
        if p.addr.ip().is_unspecified() || p.addr.port() == 0 {
            r.error(
                p.span.clone(),
                format!("peers: {:?} is not a reachable address", p.written),
            );
        } else if peers.contains(&p.addr) {
            r.error(
                p.span.clone(),
                format!("peers: {:?} ({}) is listed twice", p.written, p.addr),
            );
        } else {
            peers.push(p.addr);
        }
    }

    let timing_span = raw.timing.as_ref().map(|t| t.span()).unwrap_or_default();
    let t = raw.timing.map(|t| t.into_inner()).unwrap_or_default();
    // A refused `[timing]` value left its default in the copy: relations between the
    // keys would report that default, not the file.
    if !refused.iter().any(|k| k.starts_with("timing.")) {
        check_timing(r, timing_span, &t);
    }

    let base = path.parent().unwrap_or(Path::new("."));
    let resolve_path = |p: String| {
        let p = PathBuf::from(p);
        if p.is_relative() { base.join(p) } else { p }
    };
    let (tls_paths, tls_crl) = match raw.tls {
        None => {
            r.error_line(
                1,
                "[tls] is missing: set ca, cert and key (make them with `quorate ca init` and \
                 `quorate ca issue`)"
                    .into(),
            );
            (None, None)
        }
        Some(tls) => check_tls(r, tls, node.as_ref(), host, &resolve_path),
    };

    if !(100..=599).contains(&raw.http.drain_status) {
        let line = key_line(text, Some("http"), "drain_status").unwrap_or(1);
        r.error_line(
            line,
            format!(
                "http.drain_status: {} is not an HTTP status",
                raw.http.drain_status
            ),
        );
    }

    let app = check_app(r, raw.app);
    let mounts = check_mounts(r, raw.mount);
    let config_sets = check_config_sets(r, raw.config);
    let tasks = check_tasks(r, raw.task);

    let log_level = match &raw.log_level {
        Some(l) => {
            let level = l.get_ref().trim().to_owned();
            if level.is_empty() {
                r.error(
                    l.span(),
                    "log_level: empty; write a level such as \"info\"".into(),
                );
            } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
                r.error(
                    l.span(),
                    format!("log_level: {level:?} is not a log filter (like \"info\" or \"warn,quorate_agent=debug\"): {e}"),
                );
            }
            level
        }
        None => super::model::DEFAULT_LOG_LEVEL.to_owned(),
    };

    if raw.clock.max_offset.0.is_zero() {
        let line = key_line(text, Some("clock"), "max_offset").unwrap_or(1);
        r.error_line(line, "clock.max_offset must be above zero".into());
    }

    let (state_dir_span, state_dir) = match raw.state_dir {
        Some(s) => (Some(s.span()), s.into_inner()),
        None => (None, super::model::default_state_dir()),
    };
    if scope == Scope::Machine {
        if let Some(why) = preflight::state_dir_problem(&state_dir) {
            let line = r.line(state_dir_span);
            r.error_line(line, why);
        }
        let hooks = [
            ("on_primary", &raw.hooks.on_primary),
            ("on_secondary", &raw.hooks.on_secondary),
            ("on_fault", &raw.hooks.on_fault),
        ];
        for (key, hook) in hooks {
            if let Some(hook) = hook
                && let Some(why) = preflight::hook_problem(&format!("hooks.{key}"), hook)
            {
                let line = key_line(text, Some("hooks"), key).unwrap_or(1);
                r.error_line(line, why);
            }
        }
    }

    Some(Config {
        path: path.to_owned(),
        cluster: cluster?,
        node: node?,
        listen,
        advertise: advertise?,
        peers,
        priority: raw.priority,
        roles: raw.roles,
        mode: match raw.mode {
            RawMode::Member => proto::Mode::Member,
            RawMode::Witness => proto::Mode::Witness,
        },
        state_dir,
        control_allow: raw.control_allow,
        log_level,
        tls: tls_paths?,
        tls_crl,
        timing: t,
        http: raw.http,
        election: raw.election,
        load: raw.load,
        hooks: raw.hooks,
        app: app?,
        mounts,
        config_sets,
        clock: raw.clock,
        tasks,
        haproxy_agent: raw.haproxy_agent,
    })
}

/// What `name` resolves to, one address of it ([`addr::pick`]), or why not.
fn resolve(host: &dyn Host, name: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs = host.resolve(name, port).map_err(|e| {
        format!("does not resolve: {e}: add {name} to DNS or /etc/hosts, or write its IP address")
    })?;
    addr::pick(&addrs)
}

/// `advertise` from the node's own name (`names`: the node id, then the full hostname):
/// the one non-loopback address of this machine it resolves to, with `port`. Says in
/// `notes` what it took, or why a name that resolved was not usable.
fn derive_advertise(
    host: &dyn Host,
    names: &[&str],
    port: u16,
    notes: &mut Vec<String>,
) -> Option<SocketAddr> {
    for name in names {
        let Ok(addrs) = host.resolve(name, port) else {
            continue;
        };
        let usable: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| !a.ip().is_loopback() && !a.ip().is_unspecified() && host.is_local(a.ip()))
            .collect();
        if usable.is_empty() {
            let all: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            notes.push(format!(
                "advertise: {name} resolves to {}, not a non-loopback address of this machine: \
                 not used",
                if all.is_empty() {
                    "nothing".to_owned()
                } else {
                    all.join(", ")
                }
            ));
            continue;
        }
        match addr::pick(&usable) {
            Ok(a) => {
                notes.push(format!("advertise {a}: the address {name} resolves to"));
                return Some(a);
            }
            Err(why) => notes.push(format!("advertise: {name} {why}: not used")),
        }
    }
    None
}

fn check_timing(r: &mut Report<'_>, span: Range<usize>, t: &super::model::Timing) {
    let mut timing_err = |reason: String| r.error(span.clone(), format!("timing: {reason}"));
    if t.heartbeat_interval.0.is_zero() || t.lease_heartbeat_interval.0.is_zero() {
        timing_err("heartbeat intervals must be above zero".into());
        return;
    }
    if t.lease_heartbeat_interval >= t.lease {
        timing_err(format!(
            "lease_heartbeat_interval ({}) must be shorter than lease ({})",
            t.lease_heartbeat_interval, t.lease
        ));
    }
    // A real margin, not a nanosecond: the primary's lease runs from the send time of a
    // heartbeat a majority acknowledged, and a voter's promise from when that heartbeat
    // arrived; two lease heartbeats of slack keep a late or lost acknowledgement from
    // eating the gap between "the lease ended" and "voters may elect".
    let margin = t.lease_heartbeat_interval.0.saturating_mul(2);
    let floor = t.lease.0.saturating_add(margin);
    if t.election_timeout.0 < floor {
        timing_err(format!(
            "election_timeout ({}) must be at least lease + 2 × lease_heartbeat_interval ({} + 2 × {} = {}): voters must not elect anyone while a lease may still hold",
            t.election_timeout,
            t.lease,
            t.lease_heartbeat_interval,
            super::duration::Dur(floor)
        ));
    }
    if !(t.phi_threshold.is_finite() && t.phi_threshold > 0.0) {
        timing_err(format!(
            "phi_threshold must be a positive number, not {}",
            t.phi_threshold
        ));
    }
    if t.dead_after.0 < t.heartbeat_interval.0 {
        timing_err(format!(
            "dead_after ({}) must be at least heartbeat_interval ({})",
            t.dead_after, t.heartbeat_interval
        ));
    }
}

/// `[tls]`: each file loaded and judged on its own (a missing key file does not hide a
/// certificate naming the wrong node). The paths, when all three are there, and the
/// revocation list's.
fn check_tls(
    r: &mut Report<'_>,
    tls: Spanned<RawTls>,
    node: Option<&proto::NodeId>,
    host: &dyn Host,
    resolve_path: &dyn Fn(String) -> PathBuf,
) -> (Option<TlsPaths>, Option<PathBuf>) {
    let table_span = tls.span();
    let tls = tls.into_inner();
    // A path, `{node}` replaced; `None` (reported) when it cannot be had.
    let mut path_of = |key: &str, value: Option<Spanned<String>>, required: bool| {
        let Some(value) = value else {
            if required {
                r.error(
                    table_span.clone(),
                    format!(
                        "tls.{key} is missing: set it in [tls] (`quorate ca init` and `quorate ca \
                         issue` make the files)"
                    ),
                );
            }
            return None;
        };
        let span = value.span();
        let written = value.into_inner();
        let expanded = match node {
            Some(n) => tls::expand_node(&written, n.as_str()),
            // The node id is wrong (reported): a path without `{node}` is still checked.
            None if !written.contains("{node}") => tls::expand_node(&written, ""),
            None => return None,
        };
        match expanded {
            Ok(p) => Some((span, resolve_path(p))),
            Err(why) => {
                r.error(span, format!("tls.{key}: {why}"));
                None
            }
        }
    };
    let ca = path_of("ca", tls.ca, true);
    let cert = path_of("cert", tls.cert, true);
    let key = path_of("key", tls.key, true);
    let crl = path_of("crl", tls.crl, false);

    let now = host.now_unix();
    let cas = ca.as_ref().and_then(|(span, p)| match tls::load_ca(p) {
        Ok(cas) => {
            if let Some(end) = cas.first().and_then(tls::not_after_unix) {
                let why = format!(
                    "tls.ca: the cluster CA in {} ends on {}",
                    p.display(),
                    preflight::date(end)
                );
                let rotate = "rotate the CA (the operator guide's \"Rotating the CA\")";
                match preflight::expiry(end, now) {
                    Expiry::Ended => r.error(span.clone(), format!("{why}: it ended; {rotate}")),
                    Expiry::Soon { days } => {
                        r.warn(span.clone(), format!("{why} (in {days} days): {rotate}"))
                    }
                    Expiry::Valid => {}
                }
            }
            Some(cas)
        }
        Err(e) => {
            r.error(span.clone(), format!("tls.ca: {e}"));
            None
        }
    });
    let chain = cert
        .as_ref()
        .and_then(|(span, p)| match tls::load_certs(p) {
            Ok(chain) => Some(chain),
            Err(e) => {
                r.error(span.clone(), format!("tls.cert: {e}"));
                None
            }
        });
    if let Some((span, p)) = &key
        && let Err(e) = tls::load_agent_key(p)
    {
        r.error(span.clone(), format!("tls.key: {e}"));
    }
    if let (Some(leaf), Some((span, p)), Some(node)) =
        (chain.as_ref().and_then(|c| c.first()), &cert, node)
    {
        if !tls::cert_names(leaf, node.as_str()) {
            r.error(
                span.clone(),
                format!(
                    "tls.cert: {} does not name node {node:?} (issue one with `quorate ca issue --dir DIR {node}`)",
                    p.display()
                ),
            );
        }
        if let Some(end) = tls::not_after_unix(leaf) {
            let renew = format!(
                "renew it (`quorate ca renew --dir DIR {node}`, then copy it here and reload)"
            );
            match preflight::expiry(end, now) {
                Expiry::Ended => r.error(
                    span.clone(),
                    format!(
                        "tls.cert: {} ended on {}: peers refuse it; {renew}",
                        p.display(),
                        preflight::date(end)
                    ),
                ),
                Expiry::Soon { days } => r.warn(
                    span.clone(),
                    format!(
                        "tls.cert: {} ends on {} (in {days} days): {renew}",
                        p.display(),
                        preflight::date(end)
                    ),
                ),
                Expiry::Valid => {}
            }
        }
    }
    let tls_crl = match (&crl, &cas) {
        (Some((span, p)), Some(cas)) => match tls::Revocations::load(p, cas) {
            Err(e) => {
                r.error(span.clone(), format!("tls.crl: {e}"));
                None
            }
            Ok(lists) => {
                // This node's own certificate revoked: its peers refuse it anyway; say so.
                if let Some(serial) = chain
                    .as_ref()
                    .and_then(|c| c.first())
                    .and_then(|leaf| lists.revoked(leaf))
                {
                    let node = node.map(|n| n.as_str()).unwrap_or("NODE");
                    let cert = cert
                        .as_ref()
                        .map(|(_, c)| c.display().to_string())
                        .unwrap_or_default();
                    r.error(
                        span.clone(),
                        format!(
                            "tls.crl: {} revokes this node's own certificate {cert} (serial {serial}): \
                             issue node {node} a new one (remove its key, then `quorate ca issue \
                             --dir DIR {node}`)",
                            p.display(),
                        ),
                    );
                }
                Some(p.clone())
            }
        },
        _ => None,
    };
    let paths = match (ca, cert, key) {
        (Some((_, ca)), Some((_, cert)), Some((_, key))) => Some(TlsPaths { ca, cert, key }),
        _ => None,
    };
    (paths, tls_crl)
}

fn check_app(
    r: &mut Report<'_>,
    raw: Option<Spanned<super::checks::RawApp>>,
) -> Option<super::checks::App> {
    let (span, raw_app) = match raw {
        Some(a) => (a.span(), a.into_inner()),
        None => (0..0, super::checks::RawApp::default()),
    };
    let mut app_err = |reason: String| r.error(span.clone(), format!("app: {reason}"));
    let check = match raw_app
        .check
        .as_deref()
        .map(str::parse::<super::checks::AppCheck>)
        .transpose()
    {
        Ok(c) => Some(c),
        Err(e) => {
            app_err(format!("check: {e}"));
            None
        }
    };
    if raw_app.rise == 0 || raw_app.fall == 0 {
        app_err("rise and fall must be at least 1".into());
    }
    if raw_app.interval.0.is_zero() || raw_app.timeout.0.is_zero() {
        app_err("interval and timeout must be above zero".into());
    }
    if raw_app.version_file.is_some() && raw_app.version_command.is_some() {
        app_err("set version_file or version_command, not both".into());
    }
    Some(super::checks::App {
        check: check?,
        expect_status: raw_app.expect_status,
        interval: raw_app.interval.0,
        timeout: raw_app.timeout.0,
        rise: raw_app.rise,
        fall: raw_app.fall,
        version_file: raw_app.version_file,
        version_command: raw_app.version_command,
        upgrade_gate: raw_app.upgrade_gate,
    })
}

fn check_mounts(
    r: &mut Report<'_>,
    raw: Vec<Spanned<super::checks::Mount>>,
) -> Vec<super::checks::Mount> {
    let mut mounts: Vec<super::checks::Mount> = Vec::new();
    for m in raw {
        let span = m.span();
        let m = m.into_inner();
        if !m.path.is_absolute() {
            r.error(
                span,
                format!("mount.path: {} must be absolute", m.path.display()),
            );
        } else if mounts.iter().any(|o| o.path == m.path) {
            r.error(
                span,
                format!("mount.path: {} is listed twice", m.path.display()),
            );
        } else if m.timeout.0.is_zero() || m.interval.0.is_zero() {
            r.error(
                span,
                "mount: interval and timeout must be above zero".into(),
            );
        } else {
            mounts.push(m);
        }
    }
    mounts
}

fn check_config_sets(
    r: &mut Report<'_>,
    raw: Vec<Spanned<super::checks::RawConfigSet>>,
) -> Vec<super::checks::ConfigSet> {
    let mut config_sets: Vec<super::checks::ConfigSet> = Vec::new();
    'sets: for c in raw {
        let span = c.span();
        let c = c.into_inner();
        if c.name.trim().is_empty() || config_sets.iter().any(|o| o.name == c.name) {
            r.error(
                span,
                format!("config.name: {:?} is empty or used twice", c.name),
            );
            continue;
        }
        if c.paths.is_empty() {
            r.error(span, format!("config {:?}: paths is empty", c.name));
            continue;
        }
        for p in &c.paths {
            let why = if !p.starts_with('/') {
                Some(format!("config {:?}: path {p:?} must be absolute", c.name))
            } else if Path::new(p)
                .parent()
                .is_some_and(|dir| dir.to_string_lossy().contains(['*', '?', '[']))
            {
                Some(format!(
                    "config {:?}: {p:?}: wildcards are allowed in the file name only",
                    c.name
                ))
            } else {
                glob::Pattern::new(p)
                    .err()
                    .map(|e| format!("config {:?}: {p:?}: {e}", c.name))
            };
            if let Some(why) = why {
                r.error(span, why);
                continue 'sets;
            }
        }
        let mut ignore = Vec::new();
        for re in &c.ignore {
            match regex::Regex::new(re) {
                Ok(re) => ignore.push(re),
                Err(e) => {
                    r.error(
                        span,
                        format!(
                            "config {:?}: ignore {re:?} is not a regex: {}",
                            c.name,
                            e.to_string().replace('\n', " ")
                        ),
                    );
                    continue 'sets;
                }
            }
        }
        config_sets.push(super::checks::ConfigSet {
            name: c.name,
            paths: c.paths,
            ignore,
        });
    }
    config_sets
}

fn check_tasks(
    r: &mut Report<'_>,
    raw: Vec<Spanned<super::checks::RawTask>>,
) -> Vec<super::checks::Task> {
    // Every task placed on a node travels in each heartbeat to it (4 bytes a task).
    const MAX_TASKS: usize = 64;
    let mut tasks: Vec<super::checks::Task> = Vec::new();
    for t in raw {
        let span = t.span();
        let t = t.into_inner();
        if proto::NodeId::new(t.name.clone()).is_err() || tasks.iter().any(|o| o.name == t.name) {
            r.error(
                span,
                format!(
                    "task.name: {:?} must be a short name (letters, digits, '-') used once",
                    t.name
                ),
            );
            continue;
        }
        let run_on = match t.run_on.parse() {
            Ok(run_on) => run_on,
            Err(e) => {
                r.error(span, format!("task {:?}: {e}", t.name));
                continue;
            }
        };
        if tasks.len() == MAX_TASKS {
            r.error(
                span,
                format!("task {:?}: at most {MAX_TASKS} [[task]]s", t.name),
            );
            continue;
        }
        // Tasks travel as 32-bit tags of their names: two names with one tag would be
        // one task on the wire.
        let tag = proto::TaskTag::of(&t.name);
        if let Some(other) = tasks.iter().find(|o| proto::TaskTag::of(&o.name) == tag) {
            let why = format!(
                "task {:?}: its name hashes like task {:?}'s on the wire; rename one",
                t.name, other.name
            );
            r.error(span, why);
            continue;
        }
        tasks.push(super::checks::Task {
            name: t.name,
            run_on,
        });
    }
    tasks
}

impl Config {
    /// Reads and checks the file, and what this machine must provide for it (`state_dir`
    /// writable, hooks executable): what the agent runs at start and on reload. Binds
    /// nothing; may block on the resolver.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::check(path).map(|c| c.config)
    }

    /// [`load`](Self::load), with the warnings and notes `--check-config` prints.
    pub fn check(path: &Path) -> Result<Checked, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        check_text(path, &text, &System, Scope::Machine)
    }

    /// Parses and checks `text` as if read from `path` (relative TLS paths are resolved
    /// against the file's directory), including the TLS files it names and the names it
    /// resolves, but not the machine's `state_dir` and hooks.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        check_text(path, text, &System, Scope::File).map(|c| c.config)
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
        // The defaults and the documented presets pass: fast (150 + 2 × 20 ≤ 200) and
        // lean (900 + 2 × 150 ≤ 1350).
        check("").unwrap();
        check(
            "[timing]\nheartbeat_interval = \"100ms\"\nlease_heartbeat_interval = \"20ms\"\n\
             lease = \"150ms\"\nelection_timeout = \"200ms\"\n",
        )
        .unwrap();
        check(
            "[timing]\nheartbeat_interval = \"750ms\"\nlease_heartbeat_interval = \"150ms\"\n\
             lease = \"900ms\"\nelection_timeout = \"1350ms\"\n",
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

    /// A machine to check on: its hostname, what names resolve to, its own addresses
    /// and the date.
    struct FakeHost {
        hostname: &'static str,
        names: Vec<(&'static str, Vec<&'static str>)>,
        local: Vec<&'static str>,
        now: i64,
    }

    impl FakeHost {
        fn new(hostname: &'static str) -> Self {
            Self {
                hostname,
                names: Vec::new(),
                local: Vec::new(),
                now: System.now_unix(),
            }
        }

        fn name(mut self, name: &'static str, ips: &[&'static str]) -> Self {
            self.names.push((name, ips.to_vec()));
            self
        }
    }

    impl Host for FakeHost {
        fn hostname(&self) -> String {
            self.hostname.to_owned()
        }
        fn resolve(&self, name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            let (_, ips) = self
                .names
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| std::io::Error::other("Name or service not known"))?;
            Ok(ips
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
                .collect())
        }
        fn is_local(&self, ip: std::net::IpAddr) -> bool {
            ip.is_loopback() || self.local.iter().any(|l| l.parse() == Ok(ip))
        }
        fn route_source(&self, _: SocketAddr) -> Option<std::net::IpAddr> {
            self.local.first().and_then(|l| l.parse().ok())
        }
        fn now_unix(&self) -> i64 {
            self.now
        }
    }

    /// Checks `text` in `dir` on `host`; the messages with `dir` cut out.
    fn check_on(
        dir: &Path,
        text: &str,
        host: &dyn Host,
        scope: Scope,
    ) -> Result<Checked, Vec<String>> {
        let strip = |s: String| s.replace(&dir.display().to_string(), "");
        check_text(&dir.join("agent.toml"), text, host, scope)
            .map_err(|e| e.iter().map(|e| strip(e.to_string())).collect())
    }

    fn line_with(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    /// Five mistakes of five kinds (two that serde refuses, three that the checks do)
    /// give five lines, in file order, each naming its line and what is wrong.
    #[test]
    fn every_mistake_is_reported_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let text = config_text(d, "")
            .replace(
                "peers = [\"127.0.0.1:7801\"]",
                "peers = [\"127.0.0.1:7801\", \"nas-b:7700\"]\ncolour = \"red\"",
            )
            .replace("/n1.pem\"", "/{host}.pem\"")
            + "[timing]\nlease = \"fast\"\n\n[app]\ncheck = \"ftp://x:1\"\n";
        let got = check_on(d, &text, &FakeHost::new("n1"), Scope::File).unwrap_err();
        let want = [
            (
                line_with(&text, "nas-b"),
                "peers: \"nas-b:7700\" does not resolve: Name or service not known: add nas-b to DNS or /etc/hosts, or write its IP address",
            ),
            (line_with(&text, "colour"), "unknown field `colour`"),
            (
                line_with(&text, "{host}"),
                "tls.cert: \"/{host}.pem\": {host} is not a placeholder: only {node} is replaced",
            ),
            (
                line_with(&text, "fast"),
                "timing.lease: invalid duration \"fast\"",
            ),
            (line_with(&text, "[app]"), "app: check: \"ftp://x:1\""),
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (got, (line, reason)) in got.iter().zip(want) {
            let at = format!("/agent.toml:{line}: ");
            assert!(got.starts_with(&at), "{got}: not at {at}");
            assert!(got.contains(reason), "{got}: no {reason:?}");
        }
    }

    /// A TOML syntax error ends the check (serde cannot read on) and says so.
    #[test]
    fn a_syntax_error_stops_the_check_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let text = config_text(dir.path(), "colour = \"red\"\n") + "[timing\n";
        let got = check_on(dir.path(), &text, &FakeHost::new("n1"), Scope::File).unwrap_err();
        assert_eq!(got.len(), 1, "{got:?}");
        let at = format!("/agent.toml:{}: ", line_with(&text, "[timing"));
        assert!(got[0].starts_with(&at), "{got:?}");
        assert!(got[0].contains("syntax error stops the check"), "{got:?}");
    }

    /// One file for every node: `node` from the hostname, `{node}` in [tls] paths,
    /// `peers` by name with this node's own entry skipped, `advertise` from the address
    /// the node's name resolves to (with the listen port).
    #[test]
    fn one_file_serves_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for n in ["n1", "n2"] {
            crate::ca::init(d).ok();
            crate::ca::issue_node(d, &proto::NodeId::new(n).unwrap()).unwrap();
        }
        let text = format!(
            "cluster = \"c\"\npeers = [\"n1\", \"n2:7700\", \"n3\"]\nstate_dir = \"{d}/state\"\n\n\
             [tls]\nca = \"ca.pem\"\ncert = \"{{node}}.pem\"\nkey = \"{d}/{{node}}.key\"\n",
            d = d.display()
        );
        let mut host = FakeHost::new("n2.dam.example")
            .name("n1", &["10.0.0.11"])
            .name("n2", &["fd00::12", "10.0.0.12"])
            .name("n3", &["10.0.0.13"]);
        host.local = vec!["10.0.0.12"];
        let c = check_on(d, &text, &host, Scope::Machine).unwrap();
        assert_eq!(c.config.node.as_str(), "n2");
        assert_eq!(c.config.advertise, "10.0.0.12:7700".parse().unwrap());
        let peers: Vec<String> = c.config.peers.iter().map(|p| p.to_string()).collect();
        assert_eq!(peers, ["10.0.0.11:7700", "10.0.0.13:7700"]);
        assert_eq!(c.config.tls.cert, d.join("n2.pem"));
        assert_eq!(c.config.tls.key, d.join("n2.key"));
        let notes = c.notes.join("\n");
        assert!(notes.contains("node n2: the hostname"), "{notes}");
        assert!(
            notes.contains("advertise 10.0.0.12:7700: the address n2 resolves to"),
            "{notes}"
        );
        assert!(
            notes.contains("peers: \"n2:7700\" (line 2) is this node (10.0.0.12:7700): skipped"),
            "{notes}"
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        // The hostname resolving only to loopback (Debian's 127.0.1.1) is not advertised:
        // the route to the first other peer is, and the own entry is still skipped by name.
        let mut host = FakeHost::new("n2")
            .name("n1", &["10.0.0.11"])
            .name("n2", &["127.0.1.1"])
            .name("n3", &["10.0.0.13"]);
        host.local = vec!["10.0.0.12"];
        let c = check_on(d, &text, &host, Scope::File).unwrap();
        assert_eq!(c.config.advertise, "10.0.0.12:7700".parse().unwrap());
        assert_eq!(c.config.peers.len(), 2);
        let notes = c.notes.join("\n");
        assert!(notes.contains("on the route to peer \"n1\""), "{notes}");

        // A name with two IPv4 addresses is refused: nodes would not agree on one.
        let mut host = FakeHost::new("n2")
            .name("n1", &["10.0.0.11", "10.1.0.11"])
            .name("n2", &["10.0.0.12"])
            .name("n3", &["10.0.0.13"]);
        host.local = vec!["10.0.0.12"];
        let e = check_on(d, &text, &host, Scope::File).unwrap_err();
        assert!(
            e.len() == 1 && e[0].starts_with("/agent.toml:2: peers: \"n1\" resolves to several addresses (10.0.0.11, 10.1.0.11)"),
            "{e:?}"
        );
    }

    /// The certificate's end: past is an error, within 30 days a warning (the file
    /// still passes), later nothing.
    #[test]
    fn a_certificate_that_ended_is_an_error_and_one_ending_soon_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let text = config_text(d, "");
        let pem = std::fs::read(d.join("n1.pem")).unwrap();
        let leaf = {
            use rustls::pki_types::pem::PemObject as _;
            rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()
        };
        let end = tls::not_after_unix(&leaf).unwrap();
        let cert_line = line_with(&text, "n1.pem");
        let mut host = FakeHost::new("n1");
        host.now = end - 12 * 86_400 - 60;
        let c = check_on(d, &text, &host, Scope::File).unwrap();
        let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains(&format!("agent.toml:{cert_line}: tls.cert: "))
                && w[0].contains("(in 12 days): renew it (`quorate ca renew --dir DIR n1`"),
            "{w:?}"
        );
        host.now = end + 1;
        let e = check_on(d, &text, &host, Scope::File).unwrap_err();
        assert!(
            e.iter().any(|e| e.starts_with(&format!(
                "/agent.toml:{cert_line}: tls.cert: /n1.pem ended on "
            )) && e.contains("peers refuse it")),
            "{e:?}"
        );
    }

    /// What the machine must provide is checked for the file the agent runs (`load`,
    /// `--check-config`), not for text alone.
    #[test]
    fn state_dir_and_hooks_are_checked_for_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("file"), "").unwrap();
        let text = config_text(d, "[hooks]\non_fault = \"/nonexistent/quorate-hook\"\n")
            .replace("/state\"", "/file/state\"");
        let host = FakeHost::new("n1");
        assert!(check_on(d, &text, &host, Scope::File).is_ok());
        let e = check_on(d, &text, &host, Scope::Machine).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(&format!(
                "/agent.toml:{}: state_dir: /file/state cannot be created: /file is a file",
                line_with(&text, "state_dir")
            )),
            "{e:?}"
        );
        assert!(
            e[1].starts_with(&format!(
                "/agent.toml:{}: hooks.on_fault: /nonexistent/quorate-hook does not exist",
                line_with(&text, "on_fault")
            )),
            "{e:?}"
        );
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
        // A key of an array of tables is named after it, not after the table before it.
        let text = "[timing]\nlease = \"1s\"\n[[mount]]\ninterval = \"x\"\n";
        assert_eq!(
            key_at(text, text.find("\"x\"").unwrap()).as_deref(),
            Some("mount.interval")
        );
    }
}
