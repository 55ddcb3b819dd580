//! Judgement: what this node's measurements mean, once the peers' are beside them.
//!
//! Probes measure (`crate::probe`); this module folds their reports into [`LocalState`]
//! and judges them, one file per check: [`app`], [`mounts`] (the shared-storage proofs),
//! [`config`] (drift), [`clock`] (who is off), [`version`] (the upgrade gate), [`load`],
//! [`certs`] (the node certificate's end).
//! [`CHECKS`] is the registry: a check's name, how it is judged, the heartbeat bit that
//! stands for it and the event its transitions are. [`LocalState::assess`] runs the
//! registry and says what follows: readiness, health, eligibility, the [`Reason`]s and
//! the state peers fetch. Beside them: [`reason`] (every reason code), [`weight`] (the
//! HAProxy agent-check weight) and [`operator`] (drains, acknowledgements, the gate).
//!
//! Must never do IO or read a clock (the driver persists and passes `now`/`wall`), and
//! decides nothing about the election: the core does, from the eligibility bit.
//!
//! Adding a node check: its config section, its probe, a file here with its [`Spec`]
//! (listed in [`CHECKS`]), and the docs.

pub mod app;
pub mod certs;
pub mod check;
pub mod clock;
pub mod config;
pub mod load;
pub mod mounts;
pub mod operator;
pub mod reason;
pub mod state;
pub mod transitions;
pub mod version;
pub mod weight;

use std::time::Instant;

use proto::{CheckName, CheckState, HealthBits, Mode, WallMicros};

use crate::core::{Member, MemberState, Node};
pub use check::{Cx, Detail, FIRST_PROBE_PENDING, Holds, Judged, Spec};
pub use operator::OperatorState;
pub use reason::Reason;
pub use state::{Assessment, LocalState, rfc3339};

/// Every node check, in the order they are shown.
pub static CHECKS: [Spec; 7] = [
    app::SPEC,
    mounts::SPEC,
    config::SPEC,
    clock::SPEC,
    version::SPEC,
    load::SPEC,
    certs::SPEC,
];

/// The registry entry of a check, if this build has it.
pub fn spec(name: &CheckName) -> Option<&'static Spec> {
    CHECKS.iter().find(|s| s.name == *name)
}

impl LocalState {
    /// Judges everything at `now`. `lease_held`: this node holds the primary lease.
    pub fn assess(
        &mut self,
        core: &Node,
        now: Instant,
        wall: WallMicros,
        lease_held: bool,
    ) -> Assessment {
        let cfg = self.cfg.clone();
        let alive: Vec<&Member> = core
            .members()
            .filter(|m| m.state == MemberState::Alive)
            .collect();
        let peers = alive
            .iter()
            .filter_map(|m| m.node_state.as_ref().map(|s| (&m.id, s)))
            .collect();
        let mut detail = Detail::default();
        let mut checks = Vec::with_capacity(CHECKS.len());
        let mut pending = false;
        let mut held = Holds::default();
        let mut reasons = Vec::new();
        let mut health = HealthBits::default();
        // The checks read `self` while they judge; what follows is folded afterwards.
        {
            let cx = Cx {
                cfg: &cfg,
                local: self,
                core,
                alive,
                peers,
                wall,
                lease_held,
            };
            for spec in &CHECKS {
                let j = (spec.judge)(&cx, &mut detail);
                pending |= j.pending;
                held.ready |= j.holds.ready;
                held.healthy |= j.holds.healthy;
                held.eligible |= j.holds.eligible;
                reasons.extend(j.holds.reason);
                health = health.with(spec.bit, j.holds.bit);
                checks.push(CheckState {
                    name: spec.name.clone(),
                    code: j.code,
                    reason: j.reason,
                });
            }
        }

        if !pending {
            self.settled = true;
        }
        let pending = pending && !self.settled;
        let ready = self.joined && !pending && !held.ready;
        let drained = self.operator.drain.is_some();
        let healthy = ready && !held.healthy && !drained;
        let eligible = cfg.mode == Mode::Member && ready && !held.eligible && !drained;

        if !self.joined {
            reasons.push(Reason::Starting);
        }
        if pending {
            reasons.push(Reason::ChecksPending);
        }
        if drained {
            reasons.push(Reason::Draining);
        }
        // In `Reason`'s order, whichever check gave them: answers list them that way.
        reasons.sort();

        let health = health
            .with(HealthBits::READY, ready)
            .with(HealthBits::HEALTHY, healthy)
            .with(HealthBits::DRAINING, drained)
            .with(HealthBits::ELIGIBLE, eligible);

        // Drain answers wait for the handover: a drained primary keeps answering as
        // itself until another node holds the role.
        let draining_now = drained && !lease_held;
        match (draining_now, self.draining_since) {
            (true, None) => self.draining_since = Some(now),
            (false, Some(_)) => self.draining_since = None,
            _ => {}
        }

        Assessment {
            checks,
            mounts: detail.mounts,
            config: detail.config,
            peer_config: detail.peer_config,
            ready,
            healthy,
            eligible,
            drained,
            reasons,
            health,
            placements: core.task_placements(),
            draining_since: self.draining_since,
            suspects: core
                .members()
                .filter(|m| {
                    m.watched && matches!(m.state, MemberState::Suspect | MemberState::Dead)
                })
                .map(|m| m.id.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proto::CheckCode;

    use super::*;
    use crate::config::Config;
    use crate::probe::load::LoadSample;
    use crate::probe::{CheckResult, ProbeReport};

    #[test]
    fn a_check_added_by_a_reload_does_not_unready_a_settled_node() {
        let dir = tempfile::tempdir().unwrap();
        let plain = Arc::new(crate::config::tests_support::parse(dir.path(), ""));
        let with_app = Arc::new(crate::config::tests_support::parse(
            dir.path(),
            "[app]\ncheck = \"tcp://127.0.0.1:1\"\n",
        ));
        let now = crate::clock::now();
        let core = Node::new(
            crate::core::CoreConfig {
                preempt: None,
                ..plain.core_config(proto::Incarnation(1))
            },
            now,
            1,
            Default::default(),
        );
        let fresh = |cfg: &Arc<Config>| {
            let mut l = LocalState::new(cfg.clone(), "nonce".into(), OperatorState::default());
            l.joined = true;
            l.load = Some(LoadSample::default());
            l
        };
        let wall = WallMicros(1);

        // At start, a configured check that has not reported holds readiness back.
        let mut starting = fresh(&with_app);
        let a = starting.assess(&core, now, wall, false);
        assert!(
            !a.ready && a.reasons.contains(&Reason::ChecksPending),
            "{a:?}"
        );

        // Once settled, a check a reload adds is pending without unreadying the node.
        let mut local = fresh(&plain);
        assert!(local.assess(&core, now, wall, false).ready);
        local.reconfigure(with_app.clone(), true, false, false);
        let a = local.assess(&core, now, wall, false);
        assert!(a.ready && a.eligible, "{a:?}");
        assert_eq!(a.checks[0].reason, "first probe pending");
        // Its first result decides.
        local.apply(ProbeReport::App(CheckResult {
            code: CheckCode::Fail,
            reason: "connect: connection refused".into(),
            at: now,
        }));
        let a = local.assess(&core, now, wall, false);
        assert!(!a.healthy && !a.eligible && a.reasons.contains(&Reason::App));
    }

    #[test]
    fn a_certificate_near_its_end_is_a_reason_but_holds_nothing_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Arc::new(crate::config::tests_support::parse(dir.path(), ""));
        let now = crate::clock::now();
        let core = Node::new(
            cfg.core_config(proto::Incarnation(1)),
            now,
            1,
            Default::default(),
        );
        let mut l = LocalState::new(cfg, "nonce".into(), OperatorState::default());
        l.joined = true;
        l.load = Some(LoadSample::default());
        let wall = WallMicros(1_800_000_000_000_000);
        let day = 86_400 * 1_000_000;
        for (expires, code) in [
            (Some(WallMicros(wall.0 + 400 * day)), CheckCode::Ok),
            (Some(WallMicros(wall.0 + 10 * day)), CheckCode::Warn),
            (Some(WallMicros(wall.0 - day)), CheckCode::Fail),
            (None, CheckCode::Warn),
        ] {
            l.cert_expires = expires;
            let a = l.assess(&core, now, wall, false);
            let certs = a
                .checks
                .iter()
                .find(|c| c.name == CheckName::Certs)
                .unwrap();
            assert_eq!(certs.code, code, "{expires:?}");
            assert!(a.ready && a.healthy && a.eligible, "{expires:?}: {a:?}");
            assert_eq!(
                a.reasons.contains(&Reason::Certs),
                code != CheckCode::Ok,
                "{expires:?}: {:?}",
                a.reasons
            );
            assert_eq!(
                l.node_state(
                    &proto::NodeState::new(
                        proto::NodeId::new("n1").unwrap(),
                        proto::Incarnation(1),
                        String::new(),
                        Mode::Member,
                        0,
                        wall,
                    ),
                    &a
                )
                .cert_expires,
                expires
            );
        }
    }

    #[test]
    fn the_registry_lists_every_check_once_in_the_order_shown() {
        let names: Vec<&str> = CHECKS.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "app", "mounts", "config", "clock", "version", "load", "certs"
            ]
        );
    }
}
