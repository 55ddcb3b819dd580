//! The driver: the one task that owns [`core::Node`](crate::core::Node).
//!
//! One `select!` loop, shutdown first: network input, operator commands, reloaded
//! configs, the core's timer, load samples, probe reports, what the load balancer said. After every input it
//! re-judges the local checks when they changed ([`LocalState::assess`]), flushes the
//! core's outputs in the order the core's contract says — persist, then datagrams out,
//! state fetches, events — and publishes a fresh [`ClusterView`]. Every turn is short;
//! nothing here awaits a peer or a probe. The blocking steps are writing
//! `(term, voted_for)` (an fsync, only on elections: a vote must be durable before it is
//! sent) and the operator state (only on an operator's command).
//!
//! Operator commands ([`Order`]s from the operator channel) are carried out or refused
//! by [`execute`] on the core this task lends it, and answered at once with what
//! happened or why not. What happens — core events (worded by
//! [`describe`](describe::describe)), check transitions, commands — is logged and
//! written to the [`Journal`] (its file is written off this task) and counted in its
//! [`Tally`](crate::events::Tally), which each published view carries for `/metrics`;
//! role changes and faults fire the hooks [`hooks`] names.
//!
//! It must never word an event or carry out a command itself: it calls the module that
//! owns each, and emits what they return.
//!
//! A reloaded config ([`ReloadRequest`], read and checked before it gets here) is
//! applied in the turn it arrives (`Driver::on_reload`): live keys at once, the others
//! kept as they run and reported as pending (see [`crate::reload`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use proto::{HealthBits, NodeId, NodeState};
use tokio::sync::{mpsc, watch};

use proto::ctl::EventKind;

use crate::assess::transitions::transitions;
use crate::assess::weight::{AgentInput, AgentWeight};
use crate::assess::{Assessment, LocalState, Reason};
use crate::clock::{self, JumpGuard};
use crate::config::Config;
use crate::config::tls::{self, TlsMaterial};
use crate::core::{Command, Event, Node, lease};
use crate::ctl::{Order, execute};
use crate::events::Journal;
use crate::events::describe::{self, describe};
use crate::hooks::{self, Hooks};
use crate::http::haproxy_agent::ServerState;
use crate::net::{Inbound, Net};
use crate::persist;
use crate::probe::load::LoadSample;
use crate::probe::set::Probes;
use crate::reload::{self, ReloadOutcome};
use crate::view::{self, ClusterView};

/// How long a stopping primary waits for its successor before saying goodbye anyway.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

pub struct Driver {
    pub(crate) core: Node,
    pub(crate) net: Net,
    pub(crate) config: Arc<Config>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) orders: mpsc::Receiver<Order>,
    pub(crate) journal: Journal,
    pub(crate) load_rx: watch::Receiver<Option<LoadSample>>,
    pub(crate) probes: Probes,
    /// Reloaded configs ([`crate::Reloader`]), answered in the turn they arrive.
    pub(crate) reloads: mpsc::Receiver<ReloadRequest>,
    /// The TLS material the endpoint runs with, to tell a renewed certificate from the
    /// same files read again.
    pub(crate) tls: TlsMaterial,
    /// The revocation lists of `tls`, for the operator channel (it closes the
    /// connections a reloaded list revokes).
    pub(crate) revocations: watch::Sender<Arc<tls::Revocations>>,
    /// Keys of the config file a reload did not apply (shown in `/cluster`).
    pub(crate) pending_restart: Vec<String>,
    pub(crate) balancer_rx: watch::Receiver<Option<ServerState>>,
    pub(crate) view_tx: watch::Sender<Arc<ClusterView>>,
    /// This node's full state, served to peers' fetches; replaced (and `digest`
    /// recomputed) whenever an assessment changes it.
    pub(crate) state_tx: watch::Sender<NodeState>,
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
    pub(crate) jump_guard: JumpGuard,
    pub(crate) hooks: Hooks,
    /// What the last published view was built from, and when.
    pub(crate) published: Option<(Signature, Instant)>,
    /// READY, STATUS and the watchdog for systemd.
    pub(crate) notifier: crate::systemd::Notifier,
    /// The wait for the core's next deadline (a timerfd, not tokio's wheel: see
    /// [`crate::timer`]).
    pub(crate) timer: crate::timer::Deadline,
    /// Member changes waiting for the primary's answer ([`Event::MemberAnswer`]), by
    /// request number.
    pub(crate) member_replies: HashMap<u64, tokio::sync::oneshot::Sender<Result<String, String>>>,
    pub(crate) member_req: u64,
    /// The members line last logged (see `log_members`).
    pub(crate) members_logged: Option<String>,
}

/// A config read from the file (checked) and its TLS files (loaded), for the driver to
/// apply (`Driver::on_reload`); the reply says what was applied.
pub struct ReloadRequest {
    pub config: Box<Config>,
    pub tls: TlsMaterial,
    pub reply: tokio::sync::oneshot::Sender<ReloadOutcome>,
}

/// The parts of the view that must reach readers at once when they change; anything else
/// (ages, phi, load) is refreshed at least every [`REFRESH`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signature {
    term: proto::Term,
    role: proto::Role,
    primary: Option<NodeId>,
    lease_until: Option<Instant>,
    frozen: bool,
    quorum: bool,
    health: HealthBits,
    /// Per `[[task]]`, in config order: until when this node's claim holds (it extends
    /// with every confirmation).
    claims: Vec<Option<Instant>>,
    agent_check: String,
    members: Vec<(
        NodeId,
        crate::core::MemberState,
        HealthBits,
        proto::Incarnation,
    )>,
}

/// What woke the loop, taken out of the `select!` so that the stall check sees every
/// wake-up before it is handled.
enum Wake {
    Inbound(Inbound),
    Order(Order),
    Reload(ReloadRequest),
    Probe(crate::probe::ProbeReport),
    Balancer(Option<ServerState>),
    Timer,
    Load(Option<LoadSample>),
    /// A sender went away: nothing to handle.
    Nothing,
}

/// The longest a published view may lag for values that change continuously.
const REFRESH: Duration = Duration::from_millis(100);

impl Driver {
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        // A set held from an earlier run (a non-voter's) may already narrow the dialing.
        let (peers, dial) = self.peer_lists();
        self.net.set_peers_dialing(peers, dial);
        self.net.start();
        let me = self.config.node.to_string();
        self.journal.record(
            clock::wall(),
            EventKind::Membership,
            Some(&me),
            format!(
                "{me} started (incarnation {}, agent {})",
                self.core.config().incarnation.0,
                env!("CARGO_PKG_VERSION")
            ),
        );
        self.local.cert_expires = self.tls.leaf().and_then(tls::expires);
        self.publish(clock::now());
        let mut last_role = self.core.role_name(clock::now());
        loop {
            let deadline = self
                .core
                .poll_timeout()
                .unwrap_or_else(|| clock::now() + Duration::from_secs(1));
            let deadline = self
                .notifier
                .poll_timeout()
                .map_or(deadline, |n| n.min(deadline));
            // A deadline already past (a check the core only now needs again) is due at
            // once: lateness counts from when the wait began, not from the deadline.
            let due = deadline.max(clock::now());
            let wake = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                msg = self.inbound.recv() => match msg {
                    Some(msg) => Wake::Inbound(msg),
                    None => break,
                },
                Some(order) = self.orders.recv() => Wake::Order(order),
                Some(req) = self.reloads.recv() => Wake::Reload(req),
                Some(report) = self.probes.recv() => Wake::Probe(report),
                changed = self.balancer_rx.changed() => match changed {
                    Ok(()) => Wake::Balancer(self.balancer_rx.borrow_and_update().clone()),
                    Err(_) => Wake::Nothing,
                },
                () = self.timer.until(deadline) => Wake::Timer,
                changed = self.load_rx.changed() => match changed {
                    Ok(()) => Wake::Load(*self.load_rx.borrow_and_update()),
                    Err(_) => Wake::Nothing,
                },
            };
            // Judged whatever woke the loop: after a stop signal several branches are
            // ready at once, and the first in order is seldom the timer.
            let now = clock::now();
            let late = now.saturating_duration_since(due);
            if late > self.config.timing.lease.0 {
                // The loop itself stalled (CPU starvation, a stop signal): the lease may
                // have run out meanwhile, so stop trusting it.
                tracing::warn!(
                    "event loop stalled for {}: dropping any lease",
                    humantime::format_duration(Duration::from_millis(late.as_millis() as u64))
                );
                self.core.handle_clock_jump(now);
            }
            match wake {
                Wake::Inbound(msg) => self.on_inbound(msg),
                Wake::Order(order) => self.on_order(order),
                Wake::Reload(req) => {
                    let outcome = self.on_reload(*req.config, req.tls);
                    // The caller may have given up waiting; the reload stands either way.
                    let _ = req.reply.send(outcome);
                }
                Wake::Probe(report) => {
                    self.local.apply(report);
                    self.dirty = true;
                }
                Wake::Balancer(seen) => self.on_balancer(seen),
                Wake::Timer => self.core.handle_timeout(now, clock::wall()),
                Wake::Load(sample) => self.on_load(sample),
                Wake::Nothing => {}
            }
            if let Some(gap) = self.jump_guard.check(self.config.timing.lease.0 / 2) {
                tracing::warn!(
                    "the monotonic clock fell {} behind boot time (suspended?): dropping any lease",
                    humantime::format_duration(Duration::from_millis(gap.as_millis() as u64))
                );
                self.core.handle_clock_jump(clock::now());
            }
            self.flush()?;
            let now = clock::now();
            let role = self.core.role_name(now);
            if role != last_role {
                self.on_role_change(last_role, role);
                last_role = role;
            }
            // From the loop itself: a wedged driver stops the watchdog pings.
            let checked = self
                .assessment
                .as_ref()
                .is_some_and(|(a, _)| !a.reasons.contains(&Reason::ChecksPending));
            self.notifier.turn(
                now,
                crate::systemd::Progress {
                    joined: self.local.joined,
                    checked,
                },
                crate::systemd::Status {
                    role,
                    term: self.core.term().0,
                    alive_voters: self.core.alive_voters(),
                    voters: self.core.voters(),
                },
            );
        }
        self.notifier.sender().stopping();
        self.leave().await
    }

    fn on_inbound(&mut self, msg: Inbound) {
        let now = clock::now();
        match msg {
            Inbound::LinkUp { hello, link } => {
                if let Some(reason) = self.core.hello_conflict(&hello) {
                    self.net.refuse(link, &reason);
                    return;
                }
                self.core.handle_hello(now, &hello);
                self.net.admit(hello.node, hello.incarnation, link);
            }
            Inbound::LinkDown {
                id,
                node,
                incarnation,
                goodbye,
            } => {
                self.net.link_down(&node, id);
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

    /// Applies what a reloaded config changes, within this turn, and keeps the running
    /// value of every key that needs a restart ([`reload`] classifies them). Logs one
    /// `warn` per key left pending and one `info` line for what was applied, and writes
    /// one journal record.
    fn on_reload(&mut self, file: Config, new_tls: TlsMaterial) -> ReloadOutcome {
        let plan = reload::diff(&self.config, &file);
        let mut run = plan.effective(&self.config, &file);
        let mut applied: Vec<String> = plan
            .live()
            .filter(|c| !c.key.starts_with("tls."))
            .map(|c| c.key.to_owned())
            .collect();
        let mut pending: Vec<String> = Vec::new();
        for change in plan.pending() {
            tracing::warn!("{}", change.pending_line());
            pending.push(change.key.to_owned());
        }

        // TLS files are read again on every reload, changed paths or not: a certificate
        // renewed in place needs no restart. They must still name the node this agent
        // runs as (a renamed node is a restart).
        if !new_tls.same_as(&self.tls) {
            let me = self.config.node.as_str();
            let expires = new_tls.leaf().and_then(tls::not_after);
            if !new_tls.leaf().is_some_and(|c| tls::cert_names(c, me)) {
                tracing::warn!(
                    "reload: tls.cert {} does not name node {me}, the node this agent runs as: needs a restart (systemctl restart quorate); still using the current certificate",
                    run.tls.cert.display()
                );
                run.tls = self.config.tls.clone();
                run.tls_crl = self.config.tls_crl.clone();
                pending.push("tls".to_owned());
            } else {
                match self.net.set_tls(&new_tls) {
                    Ok(()) => {
                        applied.push(reload::tls_applied(
                            expires.as_deref(),
                            self.config.tls_crl.is_some() || run.tls_crl.is_some(),
                            new_tls.revocations().count(),
                        ));
                        self.revocations.send_replace(new_tls.revocations());
                        self.tls = new_tls;
                        // A renewed certificate's end, judged again by the certs check.
                        self.local.cert_expires = self.tls.leaf().and_then(tls::expires);
                    }
                    Err(e) => {
                        tracing::error!("reload: tls: {e}; still using the current certificate");
                        run.tls = self.config.tls.clone();
                        run.tls_crl = self.config.tls_crl.clone();
                    }
                }
            }
        }

        let run = Arc::new(run);
        let (app, mounts, sets) = (
            plan.changed("app"),
            plan.changed("mount"),
            plan.changed("config"),
        );
        if app {
            self.probes.replace_app(&run.app);
        }
        if mounts {
            self.probes.replace_mounts(&run.mounts);
        }
        if sets && let Err(e) = self.probes.replace_config_sets(&run.config_sets) {
            tracing::error!("reload: cannot watch the [[config]] sets: {e:#}");
        }
        self.local.reconfigure(run.clone(), app, mounts, sets);
        if plan.changed("control_allow") {
            self.net.set_control_allow(run.control_allow.clone());
        }
        let now = clock::now();
        if plan.changed("priority") {
            self.core
                .handle_command(now, Command::SetPriority(run.priority));
        }
        if plan.changed_in("election") {
            self.core.handle_command(
                now,
                Command::SetPreempt(run.election.preempt.then_some(run.election.preempt_delay.0)),
            );
        }
        if plan.changed("task") || plan.changed_in("election") {
            self.core.handle_command(
                now,
                Command::SetTasks {
                    tasks: run.tasks.clone(),
                    return_delay: run.election.preempt_delay.0,
                },
            );
        }
        if plan.changed("priority") || plan.changed("roles") {
            // Peers see it through this node's state: a new digest makes them fetch it.
            self.state_tx.send_modify(|s| {
                s.priority = run.priority;
                s.roles = run.roles.clone();
            });
            self.digest = self.state_tx.borrow().digest();
        }
        if plan.changed("peers") {
            // Dialed and admitted at once; compared with the agreed set in the next view.
            // A node still bootstrapping judges its new list afresh.
            self.core.handle_command(
                now,
                Command::SetBootstrap {
                    list: run.bootstrap_list(),
                    hash: run.bootstrap_hash(),
                },
            );
            self.state_tx
                .send_modify(|s| s.peers_hash = run.bootstrap_hash());
            self.digest = self.state_tx.borrow().digest();
        }
        if plan.changed("hooks") {
            // A hook already queued or running finishes on the old runner.
            self.hooks = self.hooks.reconfigured(run.hooks.clone(), run.node.clone());
        }
        self.config = run;
        if plan.changed("peers") {
            let (peers, dial) = self.peer_lists();
            self.net.set_peers_dialing(peers, dial);
        }
        if plan.changed("load") {
            // Judged again against the new limits (logged if that changes the verdict).
            self.on_load(self.local.load);
        }
        self.pending_restart = pending.clone();
        self.dirty = true;
        // http.allow, drain_status, tasks and roles reach readers with the next view.
        self.published = None;

        let me = self.config.node.to_string();
        let summary = match (applied.is_empty(), pending.is_empty()) {
            (true, true) => "nothing changed".to_owned(),
            (false, true) => format!("applied {}", applied.join(", ")),
            (true, false) => format!("applied nothing; needs a restart: {}", pending.join(", ")),
            (false, false) => format!(
                "applied {}; needs a restart: {}",
                applied.join(", "),
                pending.join(", ")
            ),
        };
        tracing::info!("reload: {summary}");
        self.journal.record(
            clock::wall(),
            EventKind::Operator,
            Some(&me),
            format!("{me} reloaded its configuration: {summary}"),
        );
        ReloadOutcome {
            log_level: plan
                .changed("log_level")
                .then(|| self.config.log_level.clone()),
            applied,
            pending_restart: pending,
        }
    }

    fn on_load(&mut self, sample: Option<LoadSample>) {
        if self.local.load.is_none() != sample.is_none() {
            self.dirty = true;
        }
        self.local.load = sample;
        let over = match (&self.config.load, sample) {
            (Some(limits), Some(s)) => crate::assess::load::over(&s, limits),
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
        // Logged where it is heard (`http::balancer`, rate-limited), which also paces
        // these changes: each one changes the digest peers refetch the state on.
        if changed {
            self.local.balancer = Some(proto::BalancerSeen {
                state: seen.state,
                balancer: seen.balancer,
                weight: seen.weight,
                since: clock::wall(),
            });
            self.dirty = true;
        }
    }

    /// Carries out an operator's command ([`execute`]), or refuses it, and answers at
    /// once; a member change goes to the core and is answered when the primary has.
    fn on_order(&mut self, order: Order) {
        let Order {
            command,
            caller,
            reply,
        } = order;
        let now = clock::now();
        let req = self.member_req + 1;
        if let Some(change) = execute::to_primary(&command, &caller, req) {
            // Answered by the core's `Event::MemberAnswer` (from the primary, for a
            // change typed elsewhere). Callers that gave up waiting leave closed
            // senders behind.
            self.member_replies.retain(|_, r| !r.is_closed());
            self.member_req = req;
            self.member_replies.insert(req, reply);
            self.core.handle_command(now, change);
            self.flush_quietly();
            return;
        }
        let (health, checks) = self
            .assessment
            .as_ref()
            .map(|(a, _)| (a.health, a.checks.as_slice()))
            .unwrap_or_default();
        let here = execute::Here {
            me: &self.config.node,
            mode: self.config.mode,
            config_path: &self.config.path,
            config_sets: self
                .config
                .config_sets
                .iter()
                .map(|c| c.name.as_str())
                .collect(),
            app_version: self.local.app_version().map(str::to_owned),
            health,
            checks,
        };
        let mut kept = execute::Kept {
            operator: &mut self.local.operator,
            drain_orders: &mut self.local.drain_orders,
        };
        let wall = clock::wall();
        let done = execute::carry_out(
            &mut self.core,
            now,
            wall,
            &command,
            &caller,
            &here,
            &mut kept,
        );
        for event in &done.events {
            self.on_event(event);
        }
        if done.save_operator {
            self.save_operator();
        }
        match &done.answer {
            Ok(text) => {
                tracing::info!("{caller}: {text}");
                let (node, text) = execute::record(&command, &caller, text);
                self.journal
                    .record(clock::wall(), EventKind::Operator, node.as_deref(), text);
            }
            Err(why) => tracing::warn!("refused {caller}'s {}: {why}", execute::name_of(&command)),
        }
        // The caller may have given up waiting; the command stands either way.
        let _ = reply.send(done.answer);
        self.dirty = true;
    }

    /// Logs and records the core's events now.
    fn core_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            self.on_event(&event);
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
        let me = self.config.node.to_string();
        for line in self.local.expire(wall) {
            tracing::info!("{line}");
            self.journal.record(
                wall,
                EventKind::Operator,
                Some(&me),
                format!("{me}: {line}"),
            );
            self.save_operator();
        }
        if let Some(line) = self.local.adopt_orders(&self.core) {
            tracing::warn!("{line}");
            self.journal
                .record(wall, EventKind::Operator, Some(&me), format!("{me} {line}"));
            self.save_operator();
        }
        self.lease_held_assessed = lease_held;
        let a = self.local.assess(&self.core, now, wall, lease_held);
        if let Some((old, _)) = &self.assessment {
            self.journal.tally_mut().checks(&old.checks, &a.checks);
            for t in transitions(&self.config.node, old, &a) {
                if t.logged {
                    describe::emit!(&t.description);
                }
                let d = t.description;
                self.journal.record(wall, d.kind, d.node.as_deref(), d.text);
            }
        }
        let state = self.local.node_state(&self.state_tx.borrow(), &a);
        if state != *self.state_tx.borrow() {
            self.digest = state.digest();
            self.state_tx.send_replace(state);
        }
        self.agent_check = self.agent.update(
            now,
            AgentInput::of(&a, self.local.load, self.config.load.as_ref()),
        );
        self.assessment = Some((a, now));
    }

    fn on_role_change(&mut self, from: proto::Role, to: proto::Role) {
        let term = self.core.term().0;
        tracing::info!(term, "role {from} → {to}");
        self.journal.tally_mut().role_changed(to);
        if let Some(run) = hooks::on_role_change(from, to, term) {
            self.hooks.fire(run);
        }
    }

    /// Flushes the core's outputs after an input, in the order its contract says:
    /// persist, (a fresh view if the lease shrank), datagrams out, state fetches, events;
    /// then publishes. (Not an operator's drain: that is `execute`'s.)
    fn flush(&mut self) -> anyhow::Result<()> {
        let now = clock::now();
        if !self.local.joined && self.core.has_quorum() {
            self.local.joined = true;
            self.dirty = true;
            let line = format!(
                "joined the cluster: {} of {} voters alive",
                self.core.alive_voters(),
                self.core.voters()
            );
            tracing::info!("{line}");
            let me = self.config.node.to_string();
            self.journal.record(
                clock::wall(),
                EventKind::Membership,
                Some(&me),
                format!("{me} {line}"),
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
            let before = self.core.persisted().clone();
            let record_vote = self.core.records_vote();
            persist::save_hard_state(&self.config.state_dir, &hs, &before, record_vote).context(
                "cannot record this node's vote; stopping rather than risk voting twice",
            )?;
            self.core.handle_persisted(clock::now(), hs);
        }
        self.sync_members();
        // A lease this turn dropped must be gone from what `/primary` reads before
        // anything leaves: a handover queues its TimeoutNow in the same turn, and the
        // successor may win one round trip later, while the HTTP thread (its own) would
        // still answer 200 from the old view.
        let published = self.published.as_ref().and_then(|(sig, _)| sig.lease_until);
        if lease_shrank(published, self.core.lease().map(|l| l.until), now) {
            self.publish(now);
        }
        while let Some(t) = self.core.poll_transmit() {
            self.net.send(&t.to, &t.datagram);
        }
        while let Some(node) = self.core.poll_fetch() {
            if !self.net.fetch_state(&node) {
                self.core.handle_fetch_failed(&node);
            }
        }
        self.core_events();
        self.publish(now);
        Ok(())
    }

    /// The agreed member set, once durable, goes into this node's state (peers learn it
    /// there) and decides whom the network layer dials and admits: its addresses and
    /// the configured peers (a new node must reach the cluster to learn it).
    fn sync_members(&mut self) {
        let disagree = self.core.lists_disagree();
        if self.state_tx.borrow().lists_disagree != disagree {
            self.state_tx.send_modify(|s| s.lists_disagree = disagree);
            self.digest = self.state_tx.borrow().digest();
        }
        let held = &self.core.persisted().members;
        if self.state_tx.borrow().members == *held {
            return;
        }
        let held = held.clone();
        self.state_tx.send_modify(|s| s.members = held);
        self.digest = self.state_tx.borrow().digest();
        let (peers, dial) = self.peer_lists();
        self.net.set_peers_dialing(peers, dial);
        self.dirty = true;
    }

    /// Whom the network layer admits: the configured peers and every other member of
    /// the agreed set this node holds durably; and whom it dials: those the core talks
    /// to (`Node::talks_to_addr`: all of them, but only the voters on a non-voter, so
    /// one `peers` listing the whole fleet serves every node).
    fn peer_lists(&self) -> (Vec<std::net::SocketAddr>, Vec<std::net::SocketAddr>) {
        let peers = self.admit_list();
        let dial = peers
            .iter()
            .copied()
            .filter(|a| self.core.talks_to_addr(&a.to_string()))
            .collect();
        (peers, dial)
    }

    fn admit_list(&self) -> Vec<std::net::SocketAddr> {
        let held = &self.core.persisted().members;
        let own = self.config.advertise.to_string();
        let mut dial: Vec<std::net::SocketAddr> = self.config.peers.clone();
        for slot in held.members.iter().filter(|s| s.addr != own) {
            match slot.addr.parse::<std::net::SocketAddr>() {
                Ok(a) if !dial.contains(&a) => dial.push(a),
                Ok(_) => {}
                Err(_) => tracing::warn!(
                    "member {} has address {:?}, which is not ip:port; it cannot be dialed",
                    slot.node.as_ref().map(|n| n.as_str()).unwrap_or("-"),
                    slot.addr
                ),
            }
        }
        dial
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
            claims: self
                .config
                .tasks
                .iter()
                .map(|t| self.core.task_claim(&t.name, now).map(|c| c.until))
                .collect(),
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
        let held = |s: &Signature| s.claims.iter().map(Option::is_some).collect::<Vec<_>>();
        if self.published.as_ref().map(|(last, _)| held(last)) != Some(held(&sig)) {
            let running: Vec<&str> = self
                .config
                .tasks
                .iter()
                .zip(&sig.claims)
                .filter(|(_, c)| c.is_some())
                .map(|(t, _)| t.name.as_str())
                .collect();
            tracing::info!(tasks = ?running, "singleton tasks running here changed");
        }
        let state = self.state_tx.borrow();
        let local = view::Inputs {
            config: &self.config,
            state: &self.local,
            assessment: a,
            node_state: &state,
            agent_check: self.agent_check.clone(),
            pending_restart: &self.pending_restart,
        };
        let mut view = view::build(&self.core, &local, now, clock::boottime());
        drop(state);
        view.counts = self.journal.tally().clone();
        view.counts.hooks = self.hooks.counts();
        view.links = self.net.link_counts();
        self.log_members(&view.status.members);
        self.view_tx.send_replace(Arc::new(view));
        self.published = Some((sig, now));
    }

    /// On SIGTERM: hand the primary role over (waiting, bounded, for the successor),
    /// then say goodbye.
    async fn leave(&mut self) -> anyhow::Result<()> {
        let was_primary = self.core.lease().is_some();
        self.core.handle_command(clock::now(), Command::Shutdown);
        self.flush()?;
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
                self.flush()?;
            }
        }
        let bye = self.core.goodbye();
        let peers = self.net.linked_nodes();
        for peer in &peers {
            self.net.send(peer, &bye);
        }
        tracing::info!("said goodbye to {} peers", peers.len());
        let me = self.config.node.to_string();
        self.journal.record(
            clock::wall(),
            EventKind::Membership,
            Some(&me),
            format!("{me} stopped cleanly"),
        );
        self.net.close(Duration::from_millis(500)).await;
        if let Some(writer) = self.journal.close() {
            // The last lines reach the file before the process exits (bounded).
            let joined = tokio::task::spawn_blocking(move || writer.join());
            let _ = tokio::time::timeout(Duration::from_secs(1), joined).await;
        }
        Ok(())
    }

    /// Says once, when it changes, that this node cannot vote or that its `peers` file
    /// disagrees with the agreed member set (and when that is over).
    fn log_members(&mut self, m: &proto::status::MembersStatus) {
        let now = describe::members_problem(m);
        if now == self.members_logged {
            return;
        }
        match &now {
            // Bootstrapping is what a new cluster does first; anything else is a fault.
            Some(line) if m.stamp.is_empty() => tracing::info!("members: {line}"),
            Some(line) => tracing::warn!(stamp = %m.stamp, "members: {line}"),
            None => {
                tracing::info!(stamp = %m.stamp, "members: this node votes, and its peers agree with the member set")
            }
        }
        self.members_logged = now;
    }

    /// Runs [`flush`](Self::flush), logging (not returning) an error: a failed write
    /// stops the agent from the main loop's next turn.
    fn flush_quietly(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("{e:#}");
        }
    }

    /// Logs a core event, writes it to the journal, answers a member change waiting
    /// for it, and runs the hook a fault calls for.
    fn on_event(&mut self, event: &Event) {
        if let Event::MemberAnswer {
            req,
            accepted,
            message,
        } = event
            && let Some(reply) = self.member_replies.remove(req)
        {
            let _ = reply.send(if *accepted {
                Ok(message.clone())
            } else {
                Err(message.clone())
            });
        }
        self.journal.tally_mut().event(event);
        let d = describe(&self.config.node, event);
        describe::emit!(&d);
        if let Some(run) = hooks::on_event(event) {
            self.hooks.fire(run);
        }
        self.journal
            .record(clock::wall(), d.kind, d.node.as_deref(), d.text);
    }
}

/// Whether the published view's lease (`published`) may still hold after `now` beyond
/// what the core's lease (`current`) now allows: then a fresh view must be published
/// before any datagram of this turn is sent (the driving contract of `core::Node`).
fn lease_shrank(published: Option<Instant>, current: Option<Instant>, now: Instant) -> bool {
    match (published, current) {
        (Some(p), _) if p <= now => false,
        (Some(p), Some(c)) => c < p,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lease that ended or shrank since the last view forces a view before sending; a
    /// lease that grew, stayed, or had already expired in the view does not.
    #[test]
    fn a_dropped_lease_is_published_before_anything_is_sent() {
        let now = clock::now();
        let ms = Duration::from_millis;
        let cases = [
            (Some(now + ms(200)), None, true),
            (Some(now + ms(200)), Some(now + ms(100)), true),
            (Some(now + ms(200)), Some(now + ms(200)), false),
            (Some(now + ms(200)), Some(now + ms(300)), false),
            (Some(now), None, false),
            (None, None, false),
            (None, Some(now + ms(300)), false),
        ];
        for (published, current, want) in cases {
            assert_eq!(
                lease_shrank(published, current, now),
                want,
                "{published:?} → {current:?}"
            );
        }
    }
}
