//! The file as written: serde's view of `agent.toml`, with spans so errors can name the
//! line. Only `validate.rs` reads it; nothing here checks meaning. Addresses that may be
//! host names (`advertise`, `peers`) and paths that may hold `{node}` (`[tls]`) stay
//! strings here; what is required is still optional here, so that one missing key is
//! one error among the others rather than the end of the check.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::checks::{self, Clock, HaproxyAgent, Mount};
use super::model::{Cidr, Election, Hooks, Http, LoadLimits, Timing, default_priority};
/// The file as written, before semantic checks. Spans let errors name the line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) cluster: Option<Spanned<String>>,
    pub(super) node: Option<Spanned<String>>,
    pub(super) listen: Option<Spanned<SocketAddr>>,
    pub(super) advertise: Option<Spanned<String>>,
    pub(super) peers: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default = "default_priority")]
    pub(super) priority: u32,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    #[serde(default)]
    pub(super) mode: RawMode,
    pub(super) state_dir: Option<Spanned<PathBuf>>,
    #[serde(default = "Cidr::loopback")]
    pub(super) control_allow: Vec<Cidr>,
    pub(super) log_level: Option<Spanned<String>>,
    pub(super) tls: Option<Spanned<RawTls>>,
    pub(super) timing: Option<Spanned<Timing>>,
    #[serde(default)]
    pub(super) http: Http,
    #[serde(default)]
    pub(super) election: Election,
    pub(super) load: Option<LoadLimits>,
    #[serde(default)]
    pub(super) hooks: Hooks,
    pub(super) app: Option<Spanned<checks::RawApp>>,
    #[serde(default)]
    pub(super) mount: Vec<Spanned<Mount>>,
    #[serde(default)]
    pub(super) config: Vec<Spanned<checks::RawConfigSet>>,
    #[serde(default)]
    pub(super) clock: Clock,
    #[serde(default)]
    pub(super) task: Vec<Spanned<checks::RawTask>>,
    pub(super) haproxy_agent: Option<HaproxyAgent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) ca: Option<Spanned<String>>,
    pub(super) cert: Option<Spanned<String>>,
    pub(super) key: Option<Spanned<String>>,
    pub(super) crl: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawMode {
    #[default]
    Member,
    Witness,
}
