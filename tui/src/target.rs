//! Which agent to ask, and with which certificate: the operator channel's address and TLS
//! files, from `--connect`, `--cert`/`--key`/`--ca` and the agent's config file.
//!
//! - Address: `--connect ADDR` (host or IP, port 7700 unless given), else the config's
//!   `listen` (a wildcard listen address means the loopback of its family; a specific
//!   address is dialed from the loopback, which the default `control_allow` admits).
//! - Credentials: `--cert`/`--key` (an operator certificate) with `--ca` (the cluster's
//!   `ca.pem`), else the config's `[tls]` files (the node's own certificate; `{node}` in
//!   a path expanded as the agent does). What the flags leave out comes from the config.
//!
//! Only those keys are read, with a deliberately small serde struct that ignores every
//! other key: the operator tool must not fail on a config it does not need to
//! understand, and must not depend on the agent's config parser being in sync. The
//! config at the default path is read only when something is missing; errors name the
//! file or the address concerned.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use quorate_agent::config::TlsPaths;
use quorate_agent::ctl::client::blocking::Client;
use serde::Deserialize;

use crate::cli::{DEFAULT_CONFIG, Global};

/// The agent's QUIC port when nothing says otherwise.
pub const DEFAULT_QUIC_PORT: u16 = 7700;

/// An agent's operator-channel address, the files to authenticate with, and where they
/// came from (for messages).
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// The local address to connect from (`None`: the system's choice).
    pub bind: Option<SocketAddr>,
    pub tls: TlsPaths,
    /// `--connect`, or `listen in PATH`.
    pub origin: String,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    node: Option<String>,
    listen: Option<SocketAddr>,
    tls: Option<TlsSection>,
}

#[derive(Debug, Default, Deserialize)]
struct TlsSection {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// The parts of the agent config the tool uses, paths resolved against its directory.
#[derive(Debug, Default)]
struct Known {
    listen: Option<SocketAddr>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

fn parse_config(path: &Path, text: &str) -> anyhow::Result<Known> {
    let config: ConfigFile = toml::from_str(text).with_context(|| format!("{}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    // `{node}` in a path: the agent's node id, as the agent itself expands it (a file
    // shared by every node names no node: the hostname's first label).
    let node = config
        .node
        .unwrap_or_else(quorate_agent::config::hostname_node);
    let resolve = |p: Option<String>| -> anyhow::Result<Option<PathBuf>> {
        p.map(|p| {
            let p = quorate_agent::config::tls::expand_node(&p, &node)
                .map_err(|e| anyhow!("{}: [tls] {e}", path.display()))?;
            let p = PathBuf::from(p);
            Ok(if p.is_relative() { base.join(p) } else { p })
        })
        .transpose()
    };
    let tls = config.tls.unwrap_or_default();
    Ok(Known {
        listen: config.listen,
        ca: resolve(tls.ca)?,
        cert: resolve(tls.cert)?,
        key: resolve(tls.key)?,
    })
}

/// Decides which agent to ask and with which files.
pub fn resolve(global: &Global) -> anyhow::Result<Target> {
    let (path, explicit) = match &global.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let needs_config = global.connect.is_none()
        || global.cert.is_none()
        || global.key.is_none()
        || global.ca.is_none();
    // The config, or why it could not be read (said only if something is missing).
    let config: Result<Known, anyhow::Error> = if explicit || needs_config {
        std::fs::read_to_string(&path)
            .with_context(|| format!("{}", path.display()))
            .and_then(|text| parse_config(&path, &text))
    } else {
        Ok(Known::default())
    };
    if explicit && let Err(e) = config {
        return Err(e);
    }
    let missing = |what: &str, flag: &str| -> anyhow::Error {
        match &config {
            Err(e) => anyhow!("{what}: pass {flag}, or a readable agent config (--config): {e:#}"),
            Ok(_) => anyhow!("{what}: pass {flag}, or set it in {}", path.display()),
        }
    };
    let known = config.as_ref().ok();

    let (addr, bind, origin) = match &global.connect {
        Some(connect) => (parse_addr(connect)?, None, "--connect".to_owned()),
        None => {
            // A config without `listen` runs the agent on its default address.
            let listen = known
                .map(|k| {
                    k.listen.unwrap_or(std::net::SocketAddr::from((
                        [0, 0, 0, 0],
                        quorate_agent::config::defaults::QUIC_PORT,
                    )))
                })
                .ok_or_else(|| missing("no agent address", "--connect ADDR"))?;
            let (addr, bind) = dial(listen);
            (addr, bind, format!("listen in {}", path.display()))
        }
    };
    let pick = |flag: &Option<PathBuf>, from_config: Option<&PathBuf>, what: &str, name: &str| {
        flag.clone()
            .or_else(|| from_config.cloned())
            .ok_or_else(|| missing(what, name))
    };
    let tls = TlsPaths {
        ca: pick(
            &global.ca,
            known.and_then(|k| k.ca.as_ref()),
            "no CA certificate",
            "--ca",
        )?,
        cert: pick(
            &global.cert,
            known.and_then(|k| k.cert.as_ref()),
            "no certificate",
            "--cert",
        )?,
        key: pick(
            &global.key,
            known.and_then(|k| k.key.as_ref()),
            "no private key",
            "--key",
        )?,
    };
    Ok(Target {
        addr,
        bind,
        tls,
        origin,
    })
}

/// Connects to the agent `global` names.
pub fn connect(global: &Global) -> anyhow::Result<Client> {
    let t = resolve(global)?;
    Client::connect(t.addr, &t.tls, t.bind).map_err(|e| {
        if t.origin == "--connect" {
            anyhow!(e)
        } else {
            anyhow!(e).context(format!("the agent at {} ({})", t.addr, t.origin))
        }
    })
}

/// Where to dial an agent listening on `listen`, and from where: a wildcard means the
/// loopback of its family; a specific non-loopback address is dialed from the loopback.
pub fn dial(listen: SocketAddr) -> (SocketAddr, Option<SocketAddr>) {
    let (ip, bind): (IpAddr, Option<IpAddr>) = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST.into(), None),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST.into(), None),
        ip if ip.is_loopback() => (ip, None),
        IpAddr::V4(ip) => (ip.into(), Some(Ipv4Addr::LOCALHOST.into())),
        IpAddr::V6(ip) => (ip.into(), Some(Ipv6Addr::LOCALHOST.into())),
    };
    (
        SocketAddr::new(ip, listen.port()),
        bind.map(|b| SocketAddr::new(b, 0)),
    )
}

/// `host`, `host:port`, `IP`, `[v6]` or `[v6]:port` → an address (port 7700 if none).
pub fn parse_addr(addr: &str) -> anyhow::Result<SocketAddr> {
    let addr = addr.trim();
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_QUIC_PORT));
    }
    if let Some(inner) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<Ipv6Addr>()
    {
        return Ok(SocketAddr::new(ip.into(), DEFAULT_QUIC_PORT));
    }
    let with_port = if addr.contains(':') {
        addr.to_owned()
    } else {
        format!("{addr}:{DEFAULT_QUIC_PORT}")
    };
    let resolved = with_port
        .to_socket_addrs()
        .with_context(|| format!("--connect {addr}: not an address"))?
        .next();
    match resolved {
        Some(a) => Ok(a),
        None => bail!("--connect {addr}: resolves to no address"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn global(config: Option<&Path>, connect: Option<&str>) -> Global {
        Global {
            config: config.map(Path::to_path_buf),
            connect: connect.map(str::to_string),
            cert: None,
            key: None,
            ca: None,
        }
    }

    #[test]
    fn addresses_get_the_quic_port() {
        let a = |s: &str| parse_addr(s).unwrap().to_string();
        assert_eq!(a("10.0.0.1:80"), "10.0.0.1:80");
        assert_eq!(a("10.0.0.1"), "10.0.0.1:7700");
        assert_eq!(a("::1"), "[::1]:7700");
        assert_eq!(a("[::1]"), "[::1]:7700");
        assert_eq!(a("[::1]:80"), "[::1]:80");
        let e = parse_addr("no such host.invalid").unwrap_err();
        assert!(format!("{e:#}").contains("no such host.invalid"), "{e:#}");
    }

    #[test]
    fn reads_listen_and_tls_and_ignores_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(
            f,
            "cluster = \"x\"\nnode = \"n1\"\nlisten = \"0.0.0.0:17700\"\nunknown = 3\n\
             [tls]\nca = \"tls/ca.pem\"\ncert = \"/etc/q/n1.pem\"\nkey = \"/etc/q/n1.key\"\n\
             [http]\nlisten = \"0.0.0.0:18701\"\n[[mount]]\npath = \"/m\""
        )
        .unwrap();
        let t = resolve(&global(Some(&path), None)).unwrap();
        assert_eq!(t.addr.to_string(), "127.0.0.1:17700");
        assert_eq!(t.bind, None);
        assert!(t.origin.contains("agent.toml"), "{}", t.origin);
        assert_eq!(t.tls.ca, dir.path().join("tls/ca.pem"));
        assert_eq!(t.tls.cert, PathBuf::from("/etc/q/n1.pem"));
        // Flags win over the config, one by one.
        let mut g = global(Some(&path), Some("10.0.0.5"));
        g.cert = Some("alice.pem".into());
        g.key = Some("alice.key".into());
        let t = resolve(&g).unwrap();
        assert_eq!(t.addr.to_string(), "10.0.0.5:7700");
        assert_eq!(t.tls.cert, PathBuf::from("alice.pem"));
        assert_eq!(t.tls.ca, dir.path().join("tls/ca.pem"));
    }

    #[test]
    fn node_in_tls_paths_is_the_agents_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let tls = "[tls]\nca = \"ca.pem\"\ncert = \"/etc/q/{node}.pem\"\nkey = \"{node}.key\"\n";
        let known = parse_config(&path, &format!("node = \"n2\"\n{tls}")).unwrap();
        assert_eq!(known.cert, Some(PathBuf::from("/etc/q/n2.pem")));
        assert_eq!(known.key, Some(dir.path().join("n2.key")));
        // No `node`: the hostname's, as the agent takes it.
        let known = parse_config(&path, tls).unwrap();
        let node = quorate_agent::config::hostname_node();
        assert_eq!(
            known.cert,
            Some(PathBuf::from(format!("/etc/q/{node}.pem")))
        );
        let e = parse_config(&path, "[tls]\ncert = \"{host}.pem\"\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("{host} is not a placeholder"),
            "{e:#}"
        );
    }

    #[test]
    fn the_shipped_config_without_listen_dials_the_default_port() {
        // The packaged agent.toml leaves `listen` commented out: the agent's default.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "# listen = \"0.0.0.0:7700\"\n[tls]\nca = \"ca.pem\"\ncert = \"n1.pem\"\nkey = \"n1.key\"\n",
        )
        .unwrap();
        let t = resolve(&global(Some(&path), None)).unwrap();
        assert_eq!(t.addr.to_string(), "127.0.0.1:7700");
    }

    #[test]
    fn where_to_dial_a_listen_address() {
        let d = |s: &str| {
            let (a, b) = dial(s.parse().unwrap());
            (a.to_string(), b.map(|b| b.to_string()))
        };
        assert_eq!(d("0.0.0.0:7700"), ("127.0.0.1:7700".into(), None));
        assert_eq!(d("[::]:7700"), ("[::1]:7700".into(), None));
        assert_eq!(d("127.0.0.1:7700"), ("127.0.0.1:7700".into(), None));
        assert_eq!(
            d("10.1.2.3:7700"),
            ("10.1.2.3:7700".into(), Some("127.0.0.1:0".into()))
        );
    }

    #[test]
    fn what_is_missing_is_named_with_the_file() {
        // Everything on the command line: no config needed, even at a missing path.
        let mut g = global(None, Some("127.0.0.1:1"));
        g.cert = Some("a.pem".into());
        g.key = Some("a.key".into());
        g.ca = Some("ca.pem".into());
        assert!(resolve(&g).is_ok());
        // A named config that cannot be read is an error naming it.
        let e = resolve(&global(Some(Path::new("/nonexistent/agent.toml")), None)).unwrap_err();
        assert!(
            format!("{e:#}").contains("/nonexistent/agent.toml"),
            "{e:#}"
        );
        // A config without [tls]: the missing file is named, with the flag to pass.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n").unwrap();
        let e = resolve(&global(Some(&path), None)).unwrap_err().to_string();
        assert!(e.contains("--ca") && e.contains("a.toml"), "{e}");
        let e = parse_config(&path, "listen = \"nope\"").unwrap_err();
        assert!(format!("{e:#}").contains("a.toml"), "{e:#}");
    }
}
