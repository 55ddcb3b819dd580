//! The config sections that describe local checks and what is derived from them:
//! `[app]`, `[[mount]]`, `[[config]]`, `[clock]`, `[[task]]` and `[haproxy_agent]`.
//! Parsed here, checked by `check.rs`; the probes read them and never parse text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration::Dur;

/// `[app]`: how to tell whether the application on this node works, and its version.
#[derive(Debug, Clone)]
pub struct App {
    pub check: Option<AppCheck>,
    /// For `http://` checks.
    pub expect_status: u16,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive passes before a failing app counts as passing again.
    pub rise: u32,
    /// Consecutive failures before a passing app counts as failing.
    pub fall: u32,
    pub version_file: Option<PathBuf>,
    pub version_command: Option<String>,
    /// Hold a node that starts on a newer app version than the primary's not-ready until
    /// an operator runs `quorate upgrade allow` (the upgrade order the manuals ask for).
    pub upgrade_gate: bool,
}

/// What `[app] check` probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCheck {
    /// `http://host:port/path`: a GET whose status must be `expect_status`.
    Http {
        /// `host:port` to connect to.
        authority: String,
        /// Path and query, at least `/`.
        path: String,
    },
    /// `tcp://host:port`: a connect.
    Tcp { authority: String },
    /// `exec:COMMAND`: run by `/bin/sh -c`, passes on exit 0.
    Exec { command: String },
}

impl std::str::FromStr for AppCheck {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let authority_of = |rest: &str| -> Result<String, String> {
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(format!("{s:?}: missing or invalid host:port"));
            }
            if !rest
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
            {
                return Err(format!("{s:?}: write the port too, like 127.0.0.1:8080"));
            }
            Ok(rest.to_owned())
        };
        if let Some(rest) = s.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            Ok(AppCheck::Http {
                authority: authority_of(authority)?,
                path: path.to_owned(),
            })
        } else if let Some(rest) = s.strip_prefix("tcp://") {
            Ok(AppCheck::Tcp {
                authority: authority_of(rest.trim_end_matches('/'))?,
            })
        } else if let Some(cmd) = s.strip_prefix("exec:") {
            if cmd.trim().is_empty() {
                return Err(format!("{s:?}: exec: needs a command"));
            }
            Ok(AppCheck::Exec {
                command: cmd.to_owned(),
            })
        } else if s.starts_with("https://") {
            Err(format!(
                "{s:?}: https checks are not supported; probe the plain port on loopback, or use exec: with curl"
            ))
        } else {
            Err(format!(
                "{s:?}: write http://host:port/path, tcp://host:port or exec:COMMAND"
            ))
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawApp {
    pub check: Option<String>,
    pub expect_status: u16,
    pub interval: Dur,
    pub timeout: Dur,
    pub rise: u32,
    pub fall: u32,
    pub version_file: Option<PathBuf>,
    pub version_command: Option<String>,
    pub upgrade_gate: bool,
}

impl Default for RawApp {
    fn default() -> Self {
        Self {
            check: None,
            expect_status: 200,
            interval: Dur(Duration::from_secs(1)),
            timeout: Dur(Duration::from_secs(2)),
            rise: 2,
            fall: 2,
            version_file: None,
            version_command: None,
            upgrade_gate: true,
        }
    }
}

/// One `[[mount]]`: a path the application needs, usually a shared NFS repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub path: PathBuf,
    /// It must be a mount point (per /proc/self/mountinfo), not a directory on the root
    /// filesystem that an unmounted share leaves behind.
    #[serde(default)]
    pub expect_mount: bool,
    /// Create, write, fsync and remove a probe file.
    #[serde(default)]
    pub writable: bool,
    /// Every node must see the same storage here: proved with per-node nonce files
    /// under `<path>/.quorate/`.
    #[serde(default)]
    pub shared: bool,
    /// A failing required mount makes the node unhealthy and ineligible; an optional one
    /// is only shown.
    #[serde(default = "yes")]
    pub required: bool,
    /// Expected filesystem type (`nfs4`), if it matters.
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default = "mount_interval")]
    pub interval: Dur,
    #[serde(default = "mount_timeout")]
    pub timeout: Dur,
}

fn yes() -> bool {
    true
}

fn mount_interval() -> Dur {
    Dur(Duration::from_secs(2))
}

fn mount_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}

/// One `[[config]]` set: files that must be equal on every node, but for ignored lines.
#[derive(Debug, Clone)]
pub struct ConfigSet {
    pub name: String,
    /// Paths or globs (`*`, `?`, `[…]` in the file name).
    pub paths: Vec<String>,
    /// Lines matching any of these are dropped before hashing.
    pub ignore: Vec<regex::Regex>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfigSet {
    pub name: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// `[clock]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clock {
    /// Offset from most of the cluster above which a node's clock is at fault.
    pub max_offset: Dur,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            max_offset: Dur(Duration::from_millis(500)),
        }
    }
}

/// One `[[task]]`: a singleton job that must run on exactly one node.
pub use crate::core::tasks::TaskSpec as Task;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTask {
    pub name: String,
    #[serde(default = "primary")]
    pub run_on: String,
}

fn primary() -> String {
    "primary".into()
}

/// `[haproxy_agent]`: HAProxy's agent-check port. Absent section: off.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaproxyAgent {
    pub listen: SocketAddr,
    /// How long a drained node answers `drain` before `maint`: the balancer's check
    /// interval × fall, so it has seen the drain first.
    pub maint_after: Dur,
    /// After a node becomes healthy again its weight ramps up over this long.
    pub ramp: Dur,
}

impl Default for HaproxyAgent {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 7702)),
            maint_after: Dur(Duration::from_secs(6)),
            ramp: Dur(Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_checks_parse() {
        let ok: &[(&str, AppCheck)] = &[
            (
                "http://127.0.0.1:8080/status?x=1",
                AppCheck::Http {
                    authority: "127.0.0.1:8080".into(),
                    path: "/status?x=1".into(),
                },
            ),
            (
                "http://localhost:80",
                AppCheck::Http {
                    authority: "localhost:80".into(),
                    path: "/".into(),
                },
            ),
            (
                "tcp://[::1]:5432",
                AppCheck::Tcp {
                    authority: "[::1]:5432".into(),
                },
            ),
            (
                "exec:/usr/local/bin/app-ok --quick",
                AppCheck::Exec {
                    command: "/usr/local/bin/app-ok --quick".into(),
                },
            ),
        ];
        for (s, want) in ok {
            assert_eq!(s.parse::<AppCheck>().as_ref(), Ok(want), "{s}");
        }
        for bad in [
            "http://127.0.0.1/status",
            "https://x:1/",
            "tcp://:80",
            "exec:  ",
            "ftp://x:1",
            "http://a:0/",
        ] {
            assert!(bad.parse::<AppCheck>().is_err(), "{bad}");
        }
    }
}
