//! Carrying out an operator's command against the core: drain, undrain, transfer,
//! freeze, unfreeze, upgrade allow, drift ack — checked against what this node knows,
//! done or refused, with the words the operator reads either way.
//!
//! Owns: what each command does to the core ([`core::Node`](crate::core::Node)) and to
//! the operator state it is lent ([`Kept`]), the answer texts, the journal record of a
//! command done, and which commands go to the primary instead ([`to_primary`]).
//!
//! It must never read a clock, log a core event, write the journal or a file, or hold
//! on to the core: the driver lends it the core for one call with the time, then emits
//! what the [`Outcome`] says (core events, saving the operator state). Table-tested
//! below on a lone core.

use std::path::Path;
use std::time::Instant;

use proto::ctl::CtlCommand;
use proto::{CheckState, DrainOrder, HealthBits, Mode, NodeId, WallMicros};

use super::caller::Caller;
use super::commands;
use crate::assess::OperatorState;
use crate::core::{Command, Event, MemberState, Node, lease};

/// What this node knows about itself that a command is judged against (the core knows
/// the rest).
#[derive(Debug, Clone)]
pub struct Here<'a> {
    pub me: &'a NodeId,
    pub mode: Mode,
    /// The config file, named in answers that ask for a change in it.
    pub config_path: &'a Path,
    /// The names of its `[[config]]` sets.
    pub config_sets: Vec<&'a str>,
    /// Its app version, when the probe has read one.
    pub app_version: Option<String>,
    /// Its health and checks as last judged (for a transfer to itself).
    pub health: HealthBits,
    pub checks: &'a [CheckState],
}

/// The operator state a command may change, lent by the driver.
#[derive(Debug)]
pub struct Kept<'a> {
    /// This node's own (drain, upgrade gate, drift acks), kept across restarts.
    pub operator: &'a mut OperatorState,
    /// Orders this node took for other nodes, gossiped until they expire.
    pub drain_orders: &'a mut Vec<DrainOrder>,
}

/// What came of a command, and what the driver does next.
#[derive(Debug)]
pub struct Outcome {
    /// What was done, or why not: the operator's answer.
    pub answer: Result<String, String>,
    /// The operator state changed: keep it across restarts.
    pub save_operator: bool,
    /// Core events the command caused (a freeze, a handover, a refusal), for the log
    /// and the journal before the answer.
    pub events: Vec<Event>,
}

/// A member change (or forcing a new cluster) is answered by the primary through the
/// core ([`Event::MemberAnswer`]), not here: the core's command for it, numbered `req`,
/// or `None` for a command [`carry_out`] answers.
pub fn to_primary(command: &CtlCommand, caller: &Caller, req: u64) -> Option<Command> {
    match command {
        CtlCommand::Member(change) => {
            tracing::info!("{caller}: member {change}");
            Some(Command::Member {
                req,
                change: change.clone(),
            })
        }
        CtlCommand::ForceNewCluster => {
            tracing::warn!("{caller}: member force-new-cluster");
            Some(Command::ForceNewCluster { req })
        }
        _ => None,
    }
}

/// Carries out `command` (anything but a member change, see [`to_primary`]), or refuses
/// it; `now` and `wall` are when it was taken.
pub fn carry_out(
    core: &mut Node,
    now: Instant,
    wall: WallMicros,
    command: &CtlCommand,
    caller: &Caller,
    here: &Here<'_>,
    kept: &mut Kept<'_>,
) -> Outcome {
    let mut run = Run {
        core,
        now,
        wall,
        here,
        kept,
        save_operator: false,
        events: Vec::new(),
    };
    let answer = run.command(command, caller);
    Outcome {
        answer,
        save_operator: run.save_operator,
        events: run.events,
    }
}

/// The journal record of a command done (`done` is its answer): the node it is about,
/// as the operator named it, and the text.
pub fn record(command: &CtlCommand, caller: &Caller, done: &str) -> (Option<String>, String) {
    let node = match command {
        CtlCommand::Drain { node, .. } | CtlCommand::Undrain { node } => node.clone(),
        CtlCommand::Transfer { node } => Some(node.clone()),
        _ => None,
    };
    (node, format!("{done} (by {})", caller.name()))
}

/// The name of a command, for log lines.
pub fn name_of(c: &CtlCommand) -> &'static str {
    match c {
        CtlCommand::Drain { .. } => "drain",
        CtlCommand::Undrain { .. } => "undrain",
        CtlCommand::Transfer { .. } => "transfer",
        CtlCommand::Freeze => "freeze",
        CtlCommand::Unfreeze => "unfreeze",
        CtlCommand::UpgradeAllow { .. } => "upgrade allow",
        CtlCommand::DriftAck { .. } => "drift ack",
        CtlCommand::Member(_) => "member",
        CtlCommand::ForceNewCluster => "member force-new-cluster",
    }
}

/// One command being carried out: what it was lent, and what it leaves for the driver.
struct Run<'r, 'h, 'k> {
    core: &'r mut Node,
    now: Instant,
    wall: WallMicros,
    here: &'r Here<'h>,
    kept: &'r mut Kept<'k>,
    save_operator: bool,
    events: Vec<Event>,
}

impl Run<'_, '_, '_> {
    fn command(&mut self, command: &CtlCommand, caller: &Caller) -> Result<String, String> {
        let wall = self.wall;
        let me = self.here.me.clone();
        let known: Vec<NodeId> = self.core.members().map(|m| m.id.clone()).collect();
        match command {
            CtlCommand::Drain {
                node,
                reason,
                for_secs,
            } => {
                let target = commands::target(node.as_deref(), &me, &known)?;
                let reason = commands::reason(reason)?;
                let for_ = for_secs.map(commands::for_secs).transpose()?;
                let drain = proto::Drain {
                    reason: reason.clone(),
                    by: caller.name(),
                    since: wall,
                    until: for_.map(|d| WallMicros(wall.0.saturating_add(d.as_micros() as u64))),
                };
                let how_long = for_
                    .map(|d| format!(" for {}", humantime::format_duration(d)))
                    .unwrap_or_default();
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                self.order_drain(target.clone(), Some(drain));
                Ok(match target {
                    None => format!(
                        "{me} drained{how_long}{why}; it hands the primary role over first, then /health answers the drain code"
                    ),
                    Some(t) => format!(
                        "{t} drained{how_long}{why}; the order was taken by {me} and applies when {t} hears it"
                    ),
                })
            }
            CtlCommand::Undrain { node } => {
                let target = commands::target(node.as_deref(), &me, &known)?;
                self.order_drain(target.clone(), None);
                Ok(match target {
                    None => format!("{me} undrained"),
                    Some(t) => format!(
                        "{t} undrained; the order was taken by {me} and applies when {t} hears it"
                    ),
                })
            }
            CtlCommand::Transfer { node } => self.transfer(node, &known),
            // Sent to the core by the driver (`to_primary`), answered when the primary has.
            CtlCommand::Member(_) | CtlCommand::ForceNewCluster => {
                Err("a member change is answered by the primary".into())
            }
            CtlCommand::Freeze | CtlCommand::Unfreeze => {
                let frozen = matches!(command, CtlCommand::Freeze);
                if self.core.frozen() == frozen {
                    return Ok(format!(
                        "the cluster is already {}",
                        if frozen { "frozen" } else { "unfrozen" }
                    ));
                }
                // The freeze flag's version is when this node took the command, and
                // always newer than the flag it knows, even if its wall clock is behind
                // the node that set that one.
                let known = self.core.freeze_flag().version;
                let flag = proto::FreezeFlag {
                    frozen,
                    version: wall.0.max(known.saturating_add(1)),
                };
                self.core.handle_command(self.now, Command::Freeze(flag));
                self.core_events();
                Ok(if frozen {
                    "cluster frozen: no elections or handovers until `quorate unfreeze`".into()
                } else {
                    "cluster unfrozen".into()
                })
            }
            CtlCommand::UpgradeAllow { node } => {
                if let Some(t) = commands::target(node.as_deref(), &me, &known)? {
                    let at = self
                        .core
                        .member(&t)
                        .map(|m| format!(" (--connect {})", m.addr))
                        .unwrap_or_default();
                    return Err(format!(
                        "upgrade allow opens the gate of the node it is given to: ask {t} itself{at}"
                    ));
                }
                let Some(v) = self.here.app_version.clone() else {
                    return Err(format!(
                        "{me}'s app version is not known: set [app] version_file or version_command in {}",
                        self.here.config_path.display()
                    ));
                };
                self.kept.operator.upgrade_allowed = Some(v.clone());
                self.save_operator = true;
                Ok(format!("upgrade gate opened on {me} for app version {v}"))
            }
            CtlCommand::DriftAck {
                name,
                reason,
                for_secs,
            } => {
                let sets = &self.here.config_sets;
                if !sets.contains(&name.as_str()) {
                    return Err(if sets.is_empty() {
                        format!("no [[config]] set named {name:?}: {me} has none")
                    } else {
                        format!(
                            "no [[config]] set named {name:?} on {me} (it has {})",
                            sets.join(", ")
                        )
                    });
                }
                let reason = commands::reason(reason)?;
                let for_ = commands::for_secs(*for_secs)?;
                let ack = proto::DriftAck {
                    name: name.clone(),
                    reason: reason.clone(),
                    by: caller.name(),
                    until: WallMicros(wall.0.saturating_add(for_.as_micros() as u64)),
                };
                let acks = &mut self.kept.operator.drift_acks;
                acks.retain(|a| a.name != *name);
                acks.push(ack);
                self.save_operator = true;
                Ok(format!(
                    "drift in {name} acknowledged for {}: {reason}",
                    humantime::format_duration(for_)
                ))
            }
        }
    }

    /// A transfer to `node`: refused here with the reason when it cannot work, else
    /// started (this node is primary) or forwarded to the primary.
    fn transfer(&mut self, node: &str, known: &[NodeId]) -> Result<String, String> {
        let me = self.here.me.clone();
        if node.trim().is_empty() {
            return Err("a transfer needs the name of the node to hand over to".into());
        }
        let target = commands::target(Some(node), &me, known)?.unwrap_or_else(|| me.clone());
        if self.core.frozen() {
            return Err("the cluster is frozen: no handovers until `quorate unfreeze`".into());
        }
        let term = self.core.term().0;
        let now = self.now;
        let i_am_primary = lease::holds(self.core.lease().as_ref(), now);
        let primary = if i_am_primary {
            Some(me.clone())
        } else {
            self.core.primary().filter(|p| **p != me).cloned()
        };
        if primary.as_ref() == Some(&target) {
            return Ok(format!("{target} is already primary (term {term})"));
        }
        if !self.core.has_quorum() {
            return Err(format!(
                "no quorum: {me} sees {} of {} voters alive",
                self.core.alive_voters(),
                self.core.voters()
            ));
        }
        let Some(primary) = primary else {
            return Err(format!(
                "no primary is known to {me} (an election may be under way); try again"
            ));
        };
        let why_not = if target == me {
            commands::not_eligible(&commands::Candidate {
                id: &me,
                state: MemberState::Alive,
                mode: self.here.mode,
                health: self.here.health,
                checks: self.here.checks,
            })
        } else {
            self.core.member(&target).and_then(|m| {
                let checks = m
                    .node_state
                    .as_ref()
                    .map(|s| s.checks.clone())
                    .unwrap_or_default();
                commands::not_eligible(&commands::Candidate {
                    id: &m.id,
                    state: m.state,
                    mode: m.mode,
                    health: m.health,
                    checks: &checks,
                })
            })
        };
        if let Some(why) = why_not {
            return Err(why);
        }
        self.core
            .handle_command(now, Command::Transfer(Some(target.clone())));
        if let Some(refused) = self.core_events() {
            return Err(refused);
        }
        Ok(if i_am_primary {
            format!("{me} hands the primary role over to {target} (term {term})")
        } else {
            format!("transfer to {target} forwarded to the primary, {primary}")
        })
    }

    /// Takes the core's events now (the driver logs and records them before the
    /// answer); the reason of the last refusal among them, if any.
    fn core_events(&mut self) -> Option<String> {
        let mut refused = None;
        while let Some(event) = self.core.poll_event() {
            if let Event::Refused { reason, .. } = &event {
                refused = Some(reason.clone());
            }
            self.events.push(event);
        }
        refused
    }

    /// Drains or undrains `node` (this one when `None`): at once here, or by an order
    /// gossiped to the target.
    fn order_drain(&mut self, node: Option<NodeId>, drain: Option<proto::Drain>) {
        let version = self
            .wall
            .0
            .max(self.kept.operator.drain_version.saturating_add(1));
        match node.filter(|n| n != self.here.me) {
            None => {
                match &drain {
                    Some(d) => tracing::warn!(by = %d.by, "drained: {}", d.reason),
                    None => tracing::info!("undrained"),
                }
                self.kept.operator.drain = drain;
                self.kept.operator.drain_version = version;
                self.save_operator = true;
            }
            Some(target) => {
                tracing::info!(
                    "order to {} {target} taken; it applies when {target} hears it",
                    if drain.is_some() { "drain" } else { "undrain" }
                );
                self.kept.drain_orders.retain(|o| o.target != target);
                self.kept.drain_orders.push(DrainOrder {
                    target,
                    drain,
                    version,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proto::{Hello, Incarnation, MemberChange};

    use super::*;
    use crate::core::HardState;
    use crate::ctl::Who;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// n1 of n1, n2, n3, having just met n2 (a quorum, no primary yet), at `now`.
    fn lone(now: Instant) -> Node {
        let cfg = crate::core::tests::config("n1", 1);
        let mut core = Node::new(cfg, now, 1, HardState::default());
        core.handle_hello(
            now,
            &Hello {
                cluster: proto::ClusterName::new("t").unwrap(),
                node: id("n2"),
                incarnation: Incarnation(1),
                advertise: "127.0.0.1:n2".into(),
                mode: Mode::Member,
            },
        );
        while core.poll_event().is_some() {}
        core
    }

    fn alice() -> Caller {
        Caller {
            who: Who::Operator("alice".into()),
            addr: "127.0.0.1:5000".parse().unwrap(),
        }
    }

    /// One node's books, and the commands carried out against them in turn.
    struct Bench {
        core: Node,
        now: Instant,
        me: NodeId,
        app_version: Option<String>,
        sets: Vec<&'static str>,
        operator: OperatorState,
        orders: Vec<DrainOrder>,
    }

    impl Bench {
        fn new() -> Self {
            let now = crate::clock::now();
            Self {
                core: lone(now),
                now,
                me: id("n1"),
                app_version: None,
                sets: Vec::new(),
                operator: OperatorState::default(),
                orders: Vec::new(),
            }
        }

        fn run(&mut self, command: CtlCommand) -> Outcome {
            let here = Here {
                me: &self.me,
                mode: Mode::Member,
                config_path: Path::new("/etc/quorate/quorate.toml"),
                config_sets: self.sets.clone(),
                app_version: self.app_version.clone(),
                health: HealthBits::default(),
                checks: &[],
            };
            let mut kept = Kept {
                operator: &mut self.operator,
                drain_orders: &mut self.orders,
            };
            carry_out(
                &mut self.core,
                self.now,
                WallMicros(1_000_000),
                &command,
                &alice(),
                &here,
                &mut kept,
            )
        }

        fn answer(&mut self, command: CtlCommand) -> Result<String, String> {
            self.run(command).answer
        }
    }

    fn drain(node: Option<&str>, reason: &str, for_secs: Option<u64>) -> CtlCommand {
        CtlCommand::Drain {
            node: node.map(str::to_owned),
            reason: reason.into(),
            for_secs,
        }
    }

    #[test]
    fn answers_in_words() {
        let transfer = |n: &str| CtlCommand::Transfer { node: n.into() };
        let table: Vec<(CtlCommand, Result<&str, &str>)> = vec![
            (
                drain(None, " kernel ", Some(3600)),
                Ok(
                    "n1 drained for 1h: kernel; it hands the primary role over first, then /health answers the drain code",
                ),
            ),
            (
                drain(Some("n2"), "", None),
                Ok("n2 drained; the order was taken by n1 and applies when n2 hears it"),
            ),
            (
                drain(Some("n9"), "", None),
                Err("no node n9 in this cluster"),
            ),
            (
                drain(None, "a\nb", None),
                Err("the reason must be one line of text"),
            ),
            (
                CtlCommand::Undrain {
                    node: Some("n1".into()),
                },
                Ok("n1 undrained"),
            ),
            (
                CtlCommand::Undrain {
                    node: Some("n2".into()),
                },
                Ok("n2 undrained; the order was taken by n1 and applies when n2 hears it"),
            ),
            (
                transfer(" "),
                Err("a transfer needs the name of the node to hand over to"),
            ),
            (transfer("n9"), Err("no node n9 in this cluster")),
            (
                transfer("n2"),
                Err("no primary is known to n1 (an election may be under way); try again"),
            ),
            (
                CtlCommand::UpgradeAllow {
                    node: Some("n2".into()),
                },
                Err(
                    "upgrade allow opens the gate of the node it is given to: ask n2 itself (--connect 127.0.0.1:n2)",
                ),
            ),
            (
                CtlCommand::UpgradeAllow { node: None },
                Err(
                    "n1's app version is not known: set [app] version_file or version_command in /etc/quorate/quorate.toml",
                ),
            ),
            (
                CtlCommand::DriftAck {
                    name: "etc".into(),
                    reason: "known".into(),
                    for_secs: 60,
                },
                Err("no [[config]] set named \"etc\": n1 has none"),
            ),
            (CtlCommand::Unfreeze, Ok("the cluster is already unfrozen")),
            (
                CtlCommand::ForceNewCluster,
                Err("a member change is answered by the primary"),
            ),
        ];
        for (command, want) in table {
            let got = Bench::new().answer(command.clone());
            assert_eq!(
                got.as_deref(),
                want.map_err(str::to_owned).as_deref(),
                "{command:?}"
            );
        }
    }

    #[test]
    fn a_drain_is_kept_here_or_ordered_for_the_target() {
        let mut b = Bench::new();
        let done = b.run(drain(None, "kernel", Some(60)));
        assert!(done.save_operator && done.events.is_empty());
        let d = b.operator.drain.clone().unwrap();
        assert_eq!((d.reason.as_str(), d.by.as_str()), ("kernel", "alice"));
        assert_eq!(d.until, Some(WallMicros(61_000_000)));
        // Versions only grow, whatever the wall clock says.
        assert_eq!(b.operator.drain_version, 1_000_000);
        assert!(b.run(CtlCommand::Undrain { node: None }).save_operator);
        assert_eq!(b.operator.drain, None);
        assert_eq!(b.operator.drain_version, 1_000_001);

        let done = b.run(drain(Some("n2"), "", None));
        assert!(!done.save_operator);
        b.run(CtlCommand::Undrain {
            node: Some("n2".into()),
        });
        assert_eq!(b.orders.len(), 1, "one order per target, the newest");
        assert_eq!(
            (b.orders[0].target.as_str(), b.orders[0].drain.is_none()),
            ("n2", true)
        );
    }

    #[test]
    fn a_freeze_reaches_the_core_and_its_event_comes_back() {
        let mut b = Bench::new();
        let done = b.run(CtlCommand::Freeze);
        assert_eq!(
            done.answer.as_deref(),
            Ok("cluster frozen: no elections or handovers until `quorate unfreeze`")
        );
        assert_eq!(done.events, [Event::FreezeChanged { frozen: true }]);
        assert!(b.core.frozen());
        assert_eq!(
            b.answer(CtlCommand::Freeze).as_deref(),
            Ok("the cluster is already frozen")
        );
        assert_eq!(
            b.answer(CtlCommand::Transfer { node: "n2".into() })
                .as_deref(),
            Err(&"the cluster is frozen: no handovers until `quorate unfreeze`".to_owned())
        );
        assert_eq!(
            b.answer(CtlCommand::Unfreeze).as_deref(),
            Ok("cluster unfrozen")
        );
    }

    #[test]
    fn the_upgrade_gate_and_drift_acks_are_kept() {
        let mut b = Bench::new();
        b.app_version = Some("1.2".into());
        b.sets = vec!["app", "etc2"];
        let done = b.run(CtlCommand::UpgradeAllow { node: None });
        assert_eq!(
            done.answer.as_deref(),
            Ok("upgrade gate opened on n1 for app version 1.2")
        );
        assert!(done.save_operator);
        assert_eq!(b.operator.upgrade_allowed.as_deref(), Some("1.2"));

        let ack = |name: &str, reason: &str| CtlCommand::DriftAck {
            name: name.into(),
            reason: reason.into(),
            for_secs: 3600,
        };
        assert_eq!(
            b.answer(ack("etc", "x")).as_deref(),
            Err(&"no [[config]] set named \"etc\" on n1 (it has app, etc2)".to_owned())
        );
        assert_eq!(
            b.answer(ack("app", "first")).as_deref(),
            Ok("drift in app acknowledged for 1h: first")
        );
        assert!(b.run(ack("app", "second")).save_operator);
        let acks: Vec<_> = b
            .operator
            .drift_acks
            .iter()
            .map(|a| (a.name.as_str(), a.reason.as_str(), a.by.as_str()))
            .collect();
        assert_eq!(acks, [("app", "second", "alice")]);
    }

    #[test]
    fn member_changes_go_to_the_primary() {
        let change = MemberChange::Remove { node: id("n3") };
        let got = to_primary(&CtlCommand::Member(change.clone()), &alice(), 7);
        assert_eq!(got, Some(Command::Member { req: 7, change }));
        assert_eq!(
            to_primary(&CtlCommand::ForceNewCluster, &alice(), 8),
            Some(Command::ForceNewCluster { req: 8 })
        );
        assert_eq!(to_primary(&CtlCommand::Freeze, &alice(), 9), None);
    }

    #[test]
    fn a_command_done_is_recorded_with_who_gave_it() {
        let table = [
            (drain(Some("n2"), "", None), Some("n2")),
            (CtlCommand::Undrain { node: None }, None),
            (CtlCommand::Transfer { node: "n3".into() }, Some("n3")),
            (CtlCommand::Freeze, None),
        ];
        for (command, node) in table {
            let (got, text) = record(&command, &alice(), "done");
            assert_eq!(got.as_deref(), node, "{command:?}");
            assert_eq!(text, "done (by alice)");
        }
        assert_eq!(
            name_of(&CtlCommand::UpgradeAllow { node: None }),
            "upgrade allow"
        );
    }
}
