//! The file as written: serde's view of `agent.toml`, with spans so errors can name the
//! line. Only `validate.rs` reads it; nothing here checks meaning.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::checks::{self, Clock, HaproxyAgent, Mount};
use super::model::{
    Cidr, Election, Hooks, Http, LoadLimits, Timing, default_priority, default_state_dir,
};
/// The file as written, before semantic checks. Spans let errors name the line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) cluster: Option<Spanned<String>>,
    pub(super) node: Option<Spanned<String>>,
    pub(super) listen: Option<Spanned<SocketAddr>>,
    pub(super) advertise: Option<Spanned<SocketAddr>>,
    pub(super) peers: Option<Spanned<Vec<SocketAddr>>>,
    #[serde(default = "default_priority")]
    pub(super) priority: u32,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    #[serde(default)]
    pub(super) mode: RawMode,
    #[serde(default = "default_state_dir")]
    pub(super) state_dir: PathBuf,
    #[serde(default = "Cidr::loopback")]
    pub(super) control_allow: Vec<Cidr>,
    pub(super) log_level: Option<Spanned<String>>,
    pub(super) tls: RawTls,
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
    pub(super) ca: Spanned<PathBuf>,
    pub(super) cert: Spanned<PathBuf>,
    pub(super) key: Spanned<PathBuf>,
    pub(super) crl: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawMode {
    #[default]
    Member,
    Witness,
}
