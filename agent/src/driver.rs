//! The driver: the one task that owns [`core::Node`](crate::core::Node).
//!
//! One `select!` loop, shutdown first: network input, commands, the core's timer, load
//! samples. After every input it drains the core's outputs in the order the core's
//! contract says — persist, then datagrams out, state fetches, events — and publishes a
//! fresh [`ClusterView`]. Every turn is short; nothing here awaits a peer or a probe.
//! The one blocking step is writing `(term, voted_for)` (an fsync, only on elections):
//! a vote must be durable before it is sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use proto::{Datagram, HealthBits, NodeId, NodeState};
use tokio::sync::{mpsc, watch};

use crate::clock::{self, JumpGuard};
use crate::config::Config;
use crate::core::{Command, Event, Node};
use crate::hooks::{Hook, HookRun, Hooks};
use crate::net::{Inbound, LinkId, Net};
use crate::persist;
use crate::probe::load::LoadSample;
use crate::view::{self, ClusterView};

/// How long a stopping primary waits for its successor before saying goodbye anyway.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

pub struct Driver {
    pub(crate) core: Node,
    pub(crate) net: Net,
    pub(crate) config: Arc<Config>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) load_rx: watch::Receiver<Option<LoadSample>>,
    pub(crate) view_tx: watch::Sender<Arc<ClusterView>>,
    /// This node's full state, served to peers' fetches. Nothing changes it yet: the
    /// checks (mounts, config hashes, versions) will, and must then refresh `digest`.
    #[allow(dead_code)]
    pub(crate) state_tx: watch::Sender<NodeState>,
    /// Live connections per node, newest last.
    pub(crate) links: HashMap<NodeId, Vec<(LinkId, quinn::Connection)>>,
    pub(crate) load: Option<LoadSample>,
    /// Digest of this node's `NodeState` (recomputed when the state changes).
    pub(crate) digest: proto::StateDigest,
    pub(crate) joined: bool,
    pub(crate) overloaded: bool,
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
                Some(cmd) = self.commands.recv() => {
                    let cmd = match cmd {
                        // The freeze flag's version is when this node took the command,
                        // and always newer than the flag it knows, even if its wall
                        // clock is behind the node that set that one.
                        Command::Freeze(mut f) if f.version == 0 => {
                            let known = self.core.freeze_flag().version;
                            f.version = clock::wall().0.max(known.saturating_add(1));
                            Command::Freeze(f)
                        }
                        other => other,
                    };
                    self.core.handle_command(clock::now(), cmd);
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.core.handle_timeout(clock::now(), clock::wall());
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
            Inbound::State { from, state } => self.core.handle_state(&from, state),
            Inbound::FetchFailed { from } => self.core.handle_fetch_failed(&from),
        }
    }

    fn on_load(&mut self, sample: Option<LoadSample>) {
        self.load = sample;
        let over = match (&self.config.load, sample) {
            (Some(limits), Some(s)) => s.over(limits),
            _ => false,
        };
        if over != self.overloaded {
            self.overloaded = over;
            if over {
                tracing::warn!("load above its limits: node is overloaded");
            } else {
                tracing::info!("load back within its limits");
            }
        }
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

    fn local(&self) -> view::Local<'_> {
        view::Local {
            config: &self.config,
            load: self.load,
            joined: self.joined,
            overloaded: self.overloaded,
        }
    }

    fn drain(&mut self) -> anyhow::Result<()> {
        let now = clock::now();
        if !self.joined && self.core.has_quorum() {
            self.joined = true;
            tracing::info!(
                "joined the cluster: {} of {} voters alive",
                self.core.alive_voters(),
                self.config.voters()
            );
        }
        let local = self.local();
        let health = local.health_bits();
        let eligible = local.eligible();
        let load = self.load.map(|l| l.figures()).unwrap_or_default();
        let digest = self.digest;
        self.core.handle_local(
            now,
            health.with(HealthBits::ELIGIBLE, eligible),
            load,
            digest,
        );

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
        let local = self.local();
        let sig = Signature {
            term: self.core.term(),
            role: self.core.role_name(now),
            primary: self.core.primary().cloned(),
            lease_until: self.core.lease().map(|l| l.until),
            frozen: self.core.frozen(),
            quorum: self.core.has_quorum(),
            health: local.health_bits(),
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
        let view = view::build(&self.core, &local, now, clock::boottime());
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
