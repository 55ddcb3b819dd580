//! Which agent to ask: `--connect ADDR`, else the `[http] listen` address of the agent's
//! config file (a wildcard listen address means the loopback of the same family).
//!
//! Only that one key is read, with a deliberately small serde struct that ignores every
//! other key: the operator tool must not fail on a config it does not need to
//! understand, and must not depend on the agent's config parser being in sync.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::cli::{DEFAULT_CONFIG, Global};

/// The agent's HTTP port when nothing says otherwise.
pub const DEFAULT_HTTP_PORT: u16 = 7701;

/// An agent's HTTP address and where it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, as given to the HTTP client.
    pub addr: String,
    /// `--connect`, `http.listen in PATH`, or why the default was used.
    pub origin: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.addr, self.origin)
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    http: HttpSection,
}

#[derive(Debug, Default, Deserialize)]
struct HttpSection {
    listen: Option<SocketAddr>,
}

/// Decides which agent to ask. A missing or unreadable config file at the default path
/// falls back to `127.0.0.1:7701`; one named with `--config` is an error.
pub fn resolve(global: &Global) -> anyhow::Result<Target> {
    if let Some(addr) = &global.connect {
        return Ok(Target {
            addr: with_default_port(addr),
            origin: "--connect".to_string(),
        });
    }
    let (path, explicit) = match &global.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => from_config(&path, &text),
        Err(e)
            if !explicit
                && matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
        {
            Ok(Target {
                addr: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_HTTP_PORT).to_string(),
                origin: format!("default; cannot read {}: {e}", path.display()),
            })
        }
        Err(e) => Err(e).with_context(|| format!("{}", path.display())),
    }
}

fn from_config(path: &Path, text: &str) -> anyhow::Result<Target> {
    let config: ConfigFile = toml::from_str(text).with_context(|| format!("{}", path.display()))?;
    let (listen, origin) = match config.http.listen {
        Some(listen) => (listen, format!("http.listen in {}", path.display())),
        None => (
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), DEFAULT_HTTP_PORT),
            format!("default; {} sets no http.listen", path.display()),
        ),
    };
    Ok(Target {
        addr: dialable(listen).to_string(),
        origin,
    })
}

/// A listen address one can connect to: a wildcard becomes the loopback of its family.
pub fn dialable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `host` or `host:port` (also `[v6]`, `[v6]:port` and a bare IPv6 address) → `host:port`.
fn with_default_port(addr: &str) -> String {
    let addr = addr.trim();
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return SocketAddr::new(ip, DEFAULT_HTTP_PORT).to_string();
    }
    if let Some(inner) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        return format!("[{inner}]:{DEFAULT_HTTP_PORT}");
    }
    if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_HTTP_PORT}")
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
        }
    }

    #[test]
    fn connect_wins_and_gets_a_default_port() {
        let t = resolve(&global(
            Some(Path::new("/nonexistent")),
            Some("10.0.0.1:80"),
        ))
        .unwrap();
        assert_eq!(t.addr, "10.0.0.1:80");
        assert_eq!(with_default_port("node1"), "node1:7701");
        assert_eq!(with_default_port("node1:9000"), "node1:9000");
        assert_eq!(with_default_port("::1"), "[::1]:7701");
        assert_eq!(with_default_port("[::1]"), "[::1]:7701");
        assert_eq!(with_default_port("[::1]:80"), "[::1]:80");
    }

    #[test]
    fn reads_http_listen_and_ignores_everything_else() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "cluster = \"x\"\nnode = \"n1\"\nunknown = 3\n[tls]\nca = \"a\"\n\
             [http]\nlisten = \"0.0.0.0:18701\"\nallow = [\"127.0.0.0/8\"]\n[[mount]]\npath = \"/m\""
        )
        .unwrap();
        let t = resolve(&global(Some(f.path()), None)).unwrap();
        assert_eq!(t.addr, "127.0.0.1:18701");
        assert!(t.origin.contains("http.listen"), "{}", t.origin);
    }

    #[test]
    fn wildcard_listen_means_loopback() {
        let v6: SocketAddr = "[::]:7701".parse().unwrap();
        assert_eq!(dialable(v6).to_string(), "[::1]:7701");
        let v4: SocketAddr = "10.1.2.3:7701".parse().unwrap();
        assert_eq!(dialable(v4), v4);
    }

    #[test]
    fn missing_http_section_means_the_default_port() {
        let t = from_config(Path::new("a.toml"), "cluster = \"x\"\n").unwrap();
        assert_eq!(t.addr, "127.0.0.1:7701");
    }

    #[test]
    fn bad_or_missing_explicit_config_is_an_error_naming_it() {
        let err = from_config(Path::new("a.toml"), "[http]\nlisten = \"nope\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("a.toml"), "{err:#}");
        let err = resolve(&global(Some(Path::new("/nonexistent/agent.toml")), None)).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/agent.toml"),
            "{err:#}"
        );
    }
}
