//! Role-change hooks: `on_primary`, `on_secondary`, `on_fault`.
//!
//! Hooks run one at a time, in the order the role changes happened, on a task of their
//! own, each with a timeout after which it is killed. A hook that fails or hangs is
//! logged; it never blocks the driver or delays a heartbeat.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config;

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnPrimary,
    OnSecondary,
    OnFault,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::OnPrimary => "on_primary",
            Hook::OnSecondary => "on_secondary",
            Hook::OnFault => "on_fault",
        }
    }
}

/// One run of a hook, with the environment it gets.
#[derive(Debug, Clone)]
pub struct HookRun {
    pub hook: Hook,
    pub term: u64,
    pub role: String,
    pub previous_role: String,
}

/// Queues hook runs for the runner task.
#[derive(Debug, Clone)]
pub struct Hooks {
    tx: Option<mpsc::UnboundedSender<HookRun>>,
}

impl Hooks {
    /// Starts the runner (inside a tokio runtime) if any hook is configured.
    pub fn new(cfg: config::Hooks, node: proto::NodeId) -> Self {
        if cfg.on_primary.is_none() && cfg.on_secondary.is_none() && cfg.on_fault.is_none() {
            return Self { tx: None };
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(cfg, node, rx));
        Self { tx: Some(tx) }
    }

    pub fn fire(&self, run: HookRun) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(run);
        }
    }
}

async fn run(cfg: config::Hooks, node: proto::NodeId, mut rx: mpsc::UnboundedReceiver<HookRun>) {
    while let Some(r) = rx.recv().await {
        let path = match r.hook {
            Hook::OnPrimary => &cfg.on_primary,
            Hook::OnSecondary => &cfg.on_secondary,
            Hook::OnFault => &cfg.on_fault,
        };
        if let Some(path) = path {
            run_one(path, &node, &r, cfg.timeout.0).await;
        }
    }
}

async fn run_one(path: &PathBuf, node: &proto::NodeId, r: &HookRun, timeout: Duration) {
    let name = r.hook.name();
    let mut cmd = tokio::process::Command::new(path);
    cmd.env("QUORATE_NODE", node.as_str())
        .env("QUORATE_TERM", r.term.to_string())
        .env("QUORATE_ROLE", &r.role)
        .env("QUORATE_PREVIOUS_ROLE", &r.previous_role)
        .env("QUORATE_HOOK", name)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(hook = name, path = %path.display(), "hook cannot start: {e}");
            return;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            tracing::info!(hook = name, path = %path.display(), term = r.term, "hook ran");
        }
        Ok(Ok(status)) => {
            tracing::warn!(hook = name, path = %path.display(), "hook failed: {status}")
        }
        Ok(Err(e)) => tracing::warn!(hook = name, path = %path.display(), "hook: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            tracing::warn!(
                hook = name,
                path = %path.display(),
                "hook still running after {}; killed",
                humantime::format_duration(timeout)
            );
        }
    }
}
