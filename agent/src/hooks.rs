//! Role-change hooks: `on_primary`, `on_secondary`, `on_fault`.
//!
//! Hooks run one at a time, in the order the role changes happened, on a task of their
//! own, each with a timeout after which it is killed. A hook that fails or hangs is
//! logged; it never blocks the driver or delays a heartbeat.
//!
//! Which role change runs which hook is decided here, in one place: [`on_role_change`]
//! (the role the driver saw at the end of a turn moved) and [`on_event`] (a core event
//! that is a fault); the driver fires what they return. The logger fires nothing.

use std::path::PathBuf;
use std::time::Duration;

use proto::Role;
use tokio::sync::mpsc;

use crate::config;
use crate::core::Event;

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

/// The hook a change of role from `from` to `to` (role names, as the core gives them)
/// runs, if any: `on_primary` on becoming primary, `on_secondary` on becoming secondary
/// or witness from primary or candidate.
pub fn on_role_change(from: Role, to: Role, term: u64) -> Option<HookRun> {
    let hook = match to {
        Role::Primary => Hook::OnPrimary,
        Role::Secondary | Role::Witness if matches!(from, Role::Primary | Role::Candidate) => {
            Hook::OnSecondary
        }
        _ => return None,
    };
    Some(HookRun {
        hook,
        term,
        role: to.to_string(),
        previous_role: from.to_string(),
    })
}

/// The hook a core event runs, if any: `on_fault` when this node stepped down as
/// primary (before the role it falls back to is seen at the end of the turn).
pub fn on_event(event: &Event) -> Option<HookRun> {
    match event {
        Event::SteppedDown { term, .. } => Some(HookRun {
            hook: Hook::OnFault,
            term: term.0,
            role: Role::Secondary.to_string(),
            previous_role: Role::Primary.to_string(),
        }),
        _ => None,
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

#[cfg(test)]
mod tests {
    use proto::Term;

    use super::*;

    #[test]
    fn which_role_change_runs_which_hook() {
        let table: &[(&str, &str, Option<Hook>)] = &[
            ("candidate", "primary", Some(Hook::OnPrimary)),
            ("secondary", "primary", Some(Hook::OnPrimary)),
            ("primary", "secondary", Some(Hook::OnSecondary)),
            ("candidate", "secondary", Some(Hook::OnSecondary)),
            ("primary", "witness", Some(Hook::OnSecondary)),
            ("secondary", "candidate", None),
            ("starting", "secondary", None),
            ("secondary", "witness", None),
            ("primary", "candidate", None),
        ];
        for (from, to, want) in table {
            let got = on_role_change(Role::parse(from), Role::parse(to), 7);
            assert_eq!(got.as_ref().map(|r| r.hook), *want, "{from} → {to}");
            if let Some(r) = got {
                assert_eq!(
                    (r.term, r.role.as_str(), r.previous_role.as_str()),
                    (7, Role::parse(to).as_str(), Role::parse(from).as_str())
                );
            }
        }
    }

    #[test]
    fn stepping_down_is_the_fault() {
        let r = on_event(&Event::SteppedDown {
            term: Term(4),
            reason: "lease lost",
        });
        let r = r.map(|r| (r.hook, r.term, r.role, r.previous_role));
        assert_eq!(
            r,
            Some((Hook::OnFault, 4, "secondary".into(), "primary".into()))
        );
        assert!(on_event(&Event::BecamePrimary { term: Term(4) }).is_none());
    }
}
