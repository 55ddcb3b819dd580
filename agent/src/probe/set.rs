//! The running probes started from the config, and their replacement on reload.
//!
//! Owns one report channel per kind of check (app, mounts, config sets) and the config
//! watcher's handle. Replacing a kind drops its receiver: the old threads see the
//! channel closed at their next send or wake-up and end by themselves, and reports they
//! had queued are dropped with it, so nothing measured under the old config reaches the
//! driver afterwards. The caller never waits for an old thread: a probe stuck on a hung
//! mount keeps its one blocked worker thread until the call returns (see
//! [`super::runner`]), exactly as it would without a reload.
//!
//! It must never judge a report or block: it only spawns and forwards.

use tokio::sync::mpsc;

use super::ProbeReport;
use crate::config::{App, Config, ConfigSet, Mount};

/// Reports in flight per kind; the driver reads them every turn.
const APP_QUEUE: usize = 8;
const MOUNT_QUEUE: usize = 64;
const CONFIG_QUEUE: usize = 8;

/// The probes of the app check, the mounts and the config sets.
pub struct Probes {
    node: String,
    nonce: String,
    app: mpsc::Receiver<ProbeReport>,
    mounts: mpsc::Receiver<ProbeReport>,
    config: mpsc::Receiver<ProbeReport>,
    /// Keeps the config watcher running; dropping it stops the watcher.
    config_watch: Option<super::config_hash::ConfigWatch>,
}

impl Probes {
    /// Starts every probe `config` configures. `nonce` is what this node writes under
    /// shared mounts (one per incarnation, kept across reloads).
    pub fn spawn(config: &Config, nonce: String) -> anyhow::Result<Self> {
        let mut probes = Self {
            node: config.node.to_string(),
            nonce,
            app: closed(),
            mounts: closed(),
            config: closed(),
            config_watch: None,
        };
        probes.replace_app(&config.app);
        probes.replace_mounts(&config.mounts);
        probes.replace_config_sets(&config.config_sets)?;
        Ok(probes)
    }

    /// Stops the app probe and starts one for `app`.
    pub fn replace_app(&mut self, app: &App) {
        let (tx, rx) = mpsc::channel(APP_QUEUE);
        self.app = rx;
        super::app::spawn(app, tx);
    }

    /// Stops the mount probes and starts one per `mounts` entry (reports carry the new
    /// indices).
    pub fn replace_mounts(&mut self, mounts: &[Mount]) {
        let (tx, rx) = mpsc::channel(MOUNT_QUEUE);
        self.mounts = rx;
        super::mounts::spawn(mounts, self.node.clone(), self.nonce.clone(), tx);
    }

    /// Stops the config watcher and starts one over `sets` (none when empty).
    pub fn replace_config_sets(&mut self, sets: &[ConfigSet]) -> anyhow::Result<()> {
        // The old watcher stops (its handle's drop) before the new one adds watches.
        self.config_watch = None;
        self.config = closed();
        if sets.is_empty() {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel(CONFIG_QUEUE);
        self.config_watch = Some(super::config_hash::spawn(sets, tx)?);
        self.config = rx;
        Ok(())
    }

    /// The next report of any probe; `None` at once when no probe is running (the
    /// driver's `select!` then skips this branch for the turn).
    pub async fn recv(&mut self) -> Option<ProbeReport> {
        tokio::select! {
            Some(r) = self.app.recv() => Some(r),
            Some(r) = self.mounts.recv() => Some(r),
            Some(r) = self.config.recv() => Some(r),
            else => None,
        }
    }
}

/// A receiver with no sender: what a kind with nothing configured reads.
fn closed() -> mpsc::Receiver<ProbeReport> {
    mpsc::channel(1).1
}
