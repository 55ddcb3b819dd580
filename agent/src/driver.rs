//! The driver: the one task that owns [`core::Node`](crate::core::Node).
//!
//! One `select!` loop, shutdown first: network input, operator commands, the core's
//! timer, load samples, probe reports, what the load balancer said. After every input it
//! re-judges the local checks when they changed ([`LocalState::assess`]), drains the
//! core's outputs in the order the core's contract says — persist, then datagrams out,
//! state fetches, events — and publishes a fresh [`ClusterView`]. Every turn is short;
//! nothing here awaits a peer or a probe. The blocking steps are writing
//! `(term, voted_for)` (an fsync, only on elections: a vote must be durable before it is
//! sent) and the operator state (only on an operator's command).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use proto::{Datagram, HealthBits, NodeId, NodeState, WallMicros};
use tokio::sync::{mpsc, watch};

use crate::clock::{self, JumpGuard};
use crate::config::Config;
use crate::core::{Command, Event, Node, lease};
use crate::hooks::{Hook, HookRun, Hooks};
use crate::http::haproxy_agent::{AgentInput, AgentWeight, ServerState, load_ratio};
use crate::http::routes::AdminCommand;
use crate::local::{Assessment, LocalState};
use crate::net::{Inbound, LinkId, Net};
use crate::persist;
use crate::probe::ProbeReport;
use crate::probe::load::LoadSample;
use crate::view::{self, ClusterView};

/// How long a stopping primary waits for its successor before saying goodbye anyway.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

pub struct Driver {
    pub(crate) core: Node,
    pub(crate) net: Net,
    pub(crate) config: Arc<Config>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) commands: mpsc::Receiver<AdminCommand>,
    pub(crate) load_rx: watch::Receiver<Option<LoadSample>>,
    pub(crate) probes: mpsc::Receiver<ProbeReport>,
    pub(crate) balancer_rx: watch::Receiver<Option<ServerState>>,
    pub(crate) view_tx: watch::Sender<Arc<ClusterView>>,
    /// This node's full state, served to peers' fetches; replaced (and `digest`
    /// recomputed) whenever an assessment changes it.
    pub(crate) state_tx: watch::Sender<NodeState>,
    /// Live connections per node, newest last.
    pub(crate) links: HashMap<NodeId, Vec<(LinkId, quinn::Connection)>>,
    /// Digest of this node's `NodeState` (recomputed when the state changes).
    pub(crate) digest: proto::StateDigest,
    pub(crate) local: LocalState,
    pub(crate) assessment: Option<(Assessment, Instant)>,
    /// Something the assessment depends on changed since it was made.
    pub(crate) dirty: bool,
    /// Whether this node held the lease when the checks were last judged.
    pub(crate) lease_held_assessed: bool,
    pub(crate) agent: AgentWeight,
    pub(crate) agent_check: String,
    /// Keeps the config watcher alive.
    pub(crate) _config_watch: Option<crate::probe::config_hash::ConfigWatch>,
    pub(crate) jump_guard: JumpGuard,
    pub(crate) hooks: Hooks,
    /// What the last published view was built from, and when.
    pub(crate) published: Option<(Signature, Instant)>,
}

/// The parts of the view that must reach readers at once when they change; anything else
/// (ages, phi, load) is refreshed at least every [`REFRESH`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signature {
    term: proto::Term,
    role: &'static str,
    primary: Option<NodeId>,
    lease_until: Option<Instant>,
    frozen: bool,
    quorum: bool,
    health: HealthBits,
    claimed: Vec<String>,
    agent_check: String,
    members: Vec<(
        NodeId,
        crate::core::MemberState,
        HealthBits,
        proto::Incarnation,
    )>,
}

/// The longest a published view may lag for values that change continuously.
const REFRESH: Duration = Duration::from_millis(100);

impl Driver {
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        self.net.start();
        self.publish(clock::now());
        let mut last_role = self.core.role_name(clock::now());
        loop {
            let deadline = self
                .core
                .poll_timeout()
                .unwrap_or_else(|| clock::now() + Duration::from_secs(1));
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                msg = self.inbound.recv() => match msg {
                    Some(msg) => self.on_inbound(msg),
                    None => break,
                },
                Some(cmd) = self.commands.recv() => self.on_command(cmd),
                Some(report) = self.probes.recv() => {
                    self.local.apply(report);
                    self.dirty = true;
                }
                changed = self.balancer_rx.changed() => {
                    if changed.is_ok() {
                        let seen = self.balancer_rx.borrow_and_update().clone();
                        self.on_balancer(seen);
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let now = clock::now();
                    let late = now.saturating_duration_since(deadline);
                    if late > self.config.timing.lease.0 {
                        // The loop itself stalled (CPU starvation, a stop signal): the
                        // lease may have run out meanwhile, so stop trusting it.
                        tracing::warn!(
                            "event loop stalled for {}: dropping any lease",
                            humantime::format_duration(Duration::from_millis(late.as_millis() as u64))
                        );
                        self.core.handle_clock_jump(now);
                    }
                    self.core.handle_timeout(now, clock::wall());
                }
                changed = self.load_rx.changed() => {
                    if changed.is_ok() {
                        let sample = *self.load_rx.borrow_and_update();
                        self.on_load(sample);
                    }
                }
            }
            if let Some(gap) = self.jump_guard.check(self.config.timing.lease.0 / 2) {
                tracing::warn!(
                    "the monotonic clock fell {} behind boot time (suspended?): dropping any lease",
                    humantime::format_duration(Duration::from_millis(gap.as_millis() as u64))
                );
                self.core.handle_clock_jump(clock::now());
            }
            self.drain()?;
            let role = self.core.role_name(clock::now());
            if role != last_role {
                self.on_role_change(last_role, role);
                last_role = role;
            }
        }
        self.leave().await
    }

    fn on_inbound(&mut self, msg: Inbound) {
        let now = clock::now();
        match msg {
            Inbound::LinkUp { id, hello, conn } => {
                if let Some(reason) = self.core.hello_conflict(&hello) {
                    tracing::warn!("refused {}: {reason}", conn.remote_address());
                    conn.close(
                        quinn::VarInt::from_u32(proto::CloseCode::Identity as u32),
                        reason.as_bytes(),
                    );
                    return;
                }
                self.core.handle_hello(now, &hello);
                self.links.entry(hello.node).or_default().push((id, conn));
            }
            Inbound::LinkDown {
                id,
                node,
                incarnation,
                goodbye,
            } => {
                if let Some(links) = self.links.get_mut(&node) {
                    links.retain(|(l, _)| *l != id);
                }
                if goodbye {
                    self.core.handle_left(now, &node, incarnation);
                }
            }
            Inbound::Datagram { from, datagram } => {
                self.core
                    .handle_datagram(now, clock::wall(), &from, datagram);
            }
            Inbound::State { from, state } => {
                self.core.handle_state(&from, *state);
                self.dirty = true;
            }
            Inbound::FetchFailed { from } => self.core.handle_fetch_failed(&from),
        }
    }

    fn on_load(&mut self, sample: Option<LoadSample>) {
        if self.local.load.is_none() != sample.is_none() {
            self.dirty = true;
        }
        self.local.load = sample;
        let over = match (&self.config.load, sample) {
            (Some(limits), Some(s)) => s.over(limits),
            _ => false,
        };
        if over != self.local.overloaded {
            self.local.overloaded = over;
            self.dirty = true;
            if over {
                tracing::warn!("load above its limits: node is overloaded");
            } else {
                tracing::info!("load back within its limits");
            }
        }
    }

    fn on_balancer(&mut self, seen: Option<ServerState>) {
        let Some(seen) = seen else { return };
        let changed = self.local.balancer.as_ref().is_none_or(|b| {
            b.state != seen.state || b.weight != seen.weight || b.balancer != seen.balancer
        });
        if changed {
            tracing::info!(
                balancer = seen.balancer.as_deref().unwrap_or("-"),
                "the load balancer says {}",
                seen.state
            );
            self.local.balancer = Some(proto::BalancerSeen {
                state: seen.state,
                balancer: seen.balancer,
                weight: seen.weight,
                since: clock::wall(),
            });
            self.dirty = true;
        }
    }

    fn on_command(&mut self, cmd: AdminCommand) {
        let wall = clock::wall();
        match cmd {
            AdminCommand::Core(cmd) => {
                let cmd = match cmd {
                    // The freeze flag's version is when this node took the command, and
                    // always newer than the flag it knows, even if its wall clock is
                    // behind the node that set that one.
                    Command::Freeze(mut f) if f.version == 0 => {
                        let known = self.core.freeze_flag().version;
                        f.version = wall.0.max(known.saturating_add(1));
                        Command::Freeze(f)
                    }
                    other => other,
                };
                self.core.handle_command(clock::now(), cmd);
            }
            AdminCommand::Drain {
                node,
                reason,
                for_,
                by,
            } => {
                let drain = proto::Drain {
                    reason,
                    by,
                    since: wall,
                    until: for_.map(|d| WallMicros(wall.0.saturating_add(d.as_micros() as u64))),
                };
                self.order_drain(node, Some(drain), wall);
            }
            AdminCommand::Undrain { node } => self.order_drain(node, None, wall),
            AdminCommand::DriftAck { name, reason, for_ } => {
                let ack = proto::DriftAck {
                    name: name.clone(),
                    reason: reason.clone(),
                    by: "operator".into(),
                    until: WallMicros(wall.0.saturating_add(for_.as_micros() as u64)),
                };
                self.local.operator.drift_acks.retain(|a| a.name != name);
                self.local.operator.drift_acks.push(ack);
                tracing::info!(
                    "drift in {name} acknowledged for {}: {reason}",
                    humantime::format_duration(for_)
                );
                self.save_operator();
            }
            AdminCommand::UpgradeAllow => match self.local.app_version().map(str::to_owned) {
                Some(v) => {
                    tracing::info!("upgrade gate opened for app version {v}");
                    self.local.operator.upgrade_allowed = Some(v);
                    self.save_operator();
                }
                None => tracing::warn!(
                    "refused upgrade allow: this node's app version is not known ([app] version_file or version_command)"
                ),
            },
        }
        self.dirty = true;
    }

    /// Drains or undrains `node` (this one when `None`): at once here, or by an order
    /// gossiped to the target.
    fn order_drain(&mut self, node: Option<NodeId>, drain: Option<proto::Drain>, wall: WallMicros) {
        let version = wall
            .0
            .max(self.local.operator.drain_version.saturating_add(1));
        match node.filter(|n| *n != self.config.node) {
            None => {
                match &drain {
                    Some(d) => tracing::warn!(by = %d.by, "drained: {}", d.reason),
                    None => tracing::info!("undrained"),
                }
                self.local.operator.drain = drain;
                self.local.operator.drain_version = version;
                self.save_operator();
            }
            Some(target) => {
                tracing::info!(
                    "order to {} {target} taken; it applies when {target} hears it",
                    if drain.is_some() { "drain" } else { "undrain" }
                );
                self.local.drain_orders.retain(|o| o.target != target);
                self.local.drain_orders.push(proto::DrainOrder {
                    target,
                    drain,
                    version,
                });
            }
        }
    }

    fn save_operator(&self) {
        let path = persist::operator_path(&self.config.state_dir);
        if let Err(e) = persist::save_json(&path, &self.local.operator) {
            tracing::error!("cannot keep the operator state across restarts: {e}");
        }
    }

    /// Re-judges the local checks if an input changed, or the last judgement is older
    /// than [`REFRESH`] (peers' states and ages move on their own).
    fn reassess(&mut self, now: Instant) {
        // Losing the lease (a handover) changes the answers at once: a drained node
        // answers the drain code as soon as it no longer holds the role.
        let lease_held = lease::holds(self.core.lease().as_ref(), now);
        if !self.dirty
            && lease_held == self.lease_held_assessed
            && self
                .assessment
                .as_ref()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) < REFRESH)
        {
            return;
        }
        self.dirty = false;
        let wall = clock::wall();
        for line in self.local.expire(wall) {
            tracing::info!("{line}");
            self.save_operator();
        }
        if let Some(line) = self.local.adopt_orders(&self.core) {
            tracing::warn!("{line}");
            self.save_operator();
        }
        self.lease_held_assessed = lease_held;
        let a = self.local.assess(&self.core, now, wall, lease_held);
        if let Some((old, _)) = &self.assessment {
            log_transitions(old, &a);
        }
        let state = self.local.node_state(&self.state_tx.borrow(), &a);
        if state != *self.state_tx.borrow() {
            self.digest = state.digest();
            self.state_tx.send_replace(state);
        }
        let load = self.local.load.map_or(0.0, |l| {
            let max_per_core = self.config.load.map_or(4.0, |l| l.max_load_per_core);
            load_ratio(l.cpu, l.load1 / l.cores.max(1) as f64, max_per_core)
        });
        self.agent_check = self.agent.update(
            now,
            AgentInput {
                healthy: a.healthy,
                draining_since: a.draining_since,
                load,
            },
        );
        self.assessment = Some((a, now));
    }

    fn on_role_change(&self, from: &'static str, to: &'static str) {
        tracing::info!(term = self.core.term().0, "role {from} → {to}");
        let hook = match to {
            "primary" => Hook::OnPrimary,
            "secondary" | "witness" if from == "primary" || from == "candidate" => {
                Hook::OnSecondary
            }
            _ => return,
        };
        self.hooks.fire(HookRun {
            hook,
            term: self.core.term().0,
            role: to.to_owned(),
            previous_role: from.to_owned(),
        });
    }

    fn drain(&mut self) -> anyhow::Result<()> {
        let now = clock::now();
        if !self.local.joined && self.core.has_quorum() {
            self.local.joined = true;
            self.dirty = true;
            tracing::info!(
                "joined the cluster: {} of {} voters alive",
                self.core.alive_voters(),
                self.config.voters()
            );
        }
        self.reassess(now);
        let health = self
            .assessment
            .as_ref()
            .map(|(a, _)| a.health)
            .unwrap_or_default();
        let load = self.local.load.map(|l| l.figures()).unwrap_or_default();
        let digest = self.digest;
        self.core.handle_local(now, health, load, digest);

        // Persist before you speak: votes stay held until this is on disk.
        while let Some(hs) = self.core.poll_persist() {
            persist::save_hard_state(&self.config.state_dir, &hs).context(
                "cannot record this node's vote; stopping rather than risk voting twice",
            )?;
            self.core.handle_persisted(clock::now(), hs);
        }
        while let Some(t) = self.core.poll_transmit() {
            self.send(&t.to, &t.datagram);
        }
        while let Some(node) = self.core.poll_fetch() {
            match self.links.get(&node).and_then(|l| l.last()) {
                Some((_, conn)) => self.net.fetch_state(node, conn.clone()),
                None => self.core.handle_fetch_failed(&node),
            }
        }
        while let Some(event) = self.core.poll_event() {
            self.log_event(&event);
        }
        self.publish(now);
        Ok(())
    }

    fn send(&self, to: &NodeId, datagram: &Datagram) {
        let Some((_, conn)) = self.links.get(to).and_then(|l| l.last()) else {
            return;
        };
        match proto::encode_datagram(datagram) {
            Ok(bytes) => {
                if let Err(e) = conn.send_datagram(bytes.into()) {
                    tracing::debug!(peer = %to, "datagram not sent: {e}");
                }
            }
            Err(e) => tracing::error!(peer = %to, "cannot encode a datagram: {e}"),
        }
    }

    /// Publishes a fresh view if something readers must see at once changed, or the last
    /// one is older than [`REFRESH`]. Building it allocates; doing so on every heartbeat
    /// would be most of the agent's CPU.
    fn publish(&mut self, now: Instant) {
        self.reassess(now);
        let Some((a, _)) = &self.assessment else {
            return;
        };
        let sig = Signature {
            term: self.core.term(),
            role: self.core.role_name(now),
            primary: self.core.primary().cloned(),
            lease_until: self.core.lease().map(|l| l.until),
            frozen: self.core.frozen(),
            quorum: self.core.has_quorum(),
            health: a.health,
            claimed: a.claimed.clone(),
            agent_check: self.agent_check.clone(),
            members: self
                .core
                .members()
                .map(|m| (m.id.clone(), m.state, m.health, m.incarnation))
                .collect(),
        };
        if let Some((last, at)) = &self.published
            && *last == sig
            && now.saturating_duration_since(*at) < REFRESH
        {
            return;
        }
        let state = self.state_tx.borrow();
        let local = view::Local {
            config: &self.config,
            state: &self.local,
            assessment: a,
            node_state: &state,
            agent_check: self.agent_check.clone(),
        };
        let view = view::build(&self.core, &local, now, clock::boottime());
        drop(state);
        self.view_tx.send_replace(Arc::new(view));
        self.published = Some((sig, now));
    }

    /// On SIGTERM: hand the primary role over (waiting, bounded, for the successor),
    /// then say goodbye.
    async fn leave(&mut self) -> anyhow::Result<()> {
        let was_primary = self.core.lease().is_some();
        self.core.handle_command(clock::now(), Command::Shutdown);
        self.drain()?;
        if was_primary {
            let deadline = clock::now() + HANDOVER_WAIT;
            let me = self.config.node.clone();
            while clock::now() < deadline {
                if self.core.primary().is_some_and(|p| *p != me) {
                    tracing::info!(successor = %self.core.primary().map(|p| p.as_str()).unwrap_or("?"), "handed over");
                    break;
                }
                let wait = self.core.poll_timeout().unwrap_or(deadline).min(deadline);
                tokio::select! {
                    msg = self.inbound.recv() => match msg {
                        Some(msg) => self.on_inbound(msg),
                        None => break,
                    },
                    _ = tokio::time::sleep_until(wait.into()) => {
                        self.core.handle_timeout(clock::now(), clock::wall());
                    }
                }
                self.drain()?;
            }
        }
        let bye = self.core.goodbye();
        let peers: Vec<NodeId> = self.links.keys().cloned().collect();
        for peer in &peers {
            self.send(peer, &bye);
        }
        tracing::info!("said goodbye to {} peers", peers.len());
        self.net.close(Duration::from_millis(500)).await;
        Ok(())
    }

    fn log_event(&self, event: &Event) {
        match event {
            Event::Joined { node, incarnation } => {
                tracing::info!(peer = %node, incarnation = incarnation.0, "peer joined");
            }
            Event::Restarted { node, incarnation } => {
                tracing::info!(peer = %node, incarnation = incarnation.0, "peer restarted");
            }
            Event::StateChanged { node, from, to } => {
                tracing::info!(peer = %node, "peer {} → {}", from.as_str(), to.as_str());
            }
            Event::ElectionStarted { term, transfer } => {
                tracing::info!(term = term.0, transfer, "campaigning");
            }
            Event::BecamePrimary { term } => tracing::info!(term = term.0, "became primary"),
            Event::SteppedDown { term, reason } => {
                tracing::warn!(term = term.0, reason, "stepped down");
                self.hooks.fire(HookRun {
                    hook: Hook::OnFault,
                    term: term.0,
                    role: "secondary".into(),
                    previous_role: "primary".into(),
                });
            }
            Event::PrimaryChanged { node, term } => {
                tracing::info!(primary = %node, term = term.0, "new primary");
            }
            Event::TransferStarted { to, term } => {
                tracing::info!(to = %to, term = term.0, "handing over");
            }
            Event::SplitBrainSuspected {
                claimant,
                term,
                believed,
            } => {
                tracing::error!(
                    claimant = %claimant,
                    term = term.0,
                    believed = believed.as_ref().map(|b| b.as_str()).unwrap_or("-"),
                    "split_brain_suspected: two primary claims in one term"
                );
            }
            Event::Refused { command, reason } => tracing::warn!("refused {command}: {reason}"),
            Event::FreezeChanged { frozen } => {
                tracing::info!(
                    frozen,
                    "cluster {}",
                    if *frozen { "frozen" } else { "unfrozen" }
                );
            }
        }
    }
}

/// Logs the checks that changed between two assessments, once per change. Probes log
/// their own transitions (app, mounts); these are the ones judged with the peers.
fn log_transitions(old: &Assessment, new: &Assessment) {
    for (o, n) in old.checks.iter().zip(&new.checks) {
        if o.code == n.code || !matches!(n.name.as_str(), "config" | "clock" | "version") {
            continue;
        }
        if n.code.passing() {
            tracing::info!(check = %n.name, "{} check {} again", n.name, n.code.as_str());
        } else {
            tracing::warn!(check = %n.name, "{} check {}: {}", n.name, n.code.as_str(), n.reason);
        }
    }
    if old.ready != new.ready {
        tracing::info!(reasons = ?new.reasons, "{}", if new.ready { "ready" } else { "not ready" });
    }
    if old.healthy != new.healthy {
        if new.healthy {
            tracing::info!("healthy: fit for traffic");
        } else {
            tracing::warn!(reasons = ?new.reasons, "not fit for traffic");
        }
    }
    if old.claimed != new.claimed {
        tracing::info!(tasks = ?new.claimed, "singleton tasks running here changed");
    }
}
