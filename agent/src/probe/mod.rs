//! Local checks. Each runs off the async workers (threads of its own, see [`runner`]),
//! with a timeout, and reports its latest result to the driver as a [`ProbeReport`].
//! None decides anything (`assess` judges), and none may block a heartbeat or an
//! HTTP answer: a check that does not return in time is reported `hung`, and is not
//! started again until the stuck call returns.
//!
//! - [`runner`]: a worker thread per check, timeouts, `hung`.
//! - [`app`]: `[app] check` (http, tcp, exec) with rise/fall, and the app version.
//! - [`mounts`]: `[[mount]]` paths: mountinfo, fstype and source, read/write, shared proof.
//! - [`config_hash`]: `[[config]]` sets watched with notify and hashed with BLAKE3.
//! - [`load`]: CPU, memory and load average.
//! - [`set`]: the running app, mount and config-set probes, replaced on reload.

pub mod app;
pub mod config_hash;
pub mod load;
pub mod mounts;
pub mod runner;
pub mod set;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

pub use proto::CheckCode;

/// A check's latest result.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub code: CheckCode,
    /// Why it is not `ok`, in a few words an operator can act on ("HTTP 503",
    /// "connect refused", "no answer in 2s"). Empty when ok.
    pub reason: String,
    /// When this result was produced (monotonic).
    pub at: Instant,
}

/// One `[[mount]]` path's latest result.
#[derive(Debug, Clone, PartialEq)]
pub struct MountReport {
    pub path: PathBuf,
    /// Exists, mount point, fstype, readable, writable: `ok`, `fail` or `hung`. The
    /// shared-storage proof is judged later (`assess::mounts`), because it needs
    /// the peers' nonces.
    pub result: CheckResult,
    /// From /proc/self/mountinfo: the filesystem mounted at (or containing) the path.
    pub source: Option<String>,
    pub fstype: Option<String>,
    /// For `shared = true`: node name → nonce read from `<path>/.quorate/<node>`, for
    /// every such file found (this node's own included).
    pub proofs: BTreeMap<String, String>,
}

/// One `[[config]]` set's latest hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSetReport {
    pub name: String,
    /// Sorted by path.
    pub files: Vec<proto::FileHash>,
    /// Why some file could not be read, if so.
    pub error: Option<String>,
}

/// What the probes tell the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeReport {
    /// The app check's state after rise/fall (sent on every change and at least every
    /// interval).
    App(CheckResult),
    /// The app version (`Err`: why it could not be read).
    AppVersion(Result<String, String>),
    /// Mount `index` of `[[mount]]`.
    Mount { index: usize, report: MountReport },
    /// Every `[[config]]` set, after any change.
    Config(Vec<ConfigSetReport>),
}
