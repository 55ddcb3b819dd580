//! [`Node`]: one agent's membership state machine.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use proto::{
    Datagram, Goodbye, HealthBits, Heartbeat, Hello, Incarnation, LoadFigures, Mode, NodeId,
    NodeState, Seq, StateDigest, Term, WallMicros,
};
use rand::{Rng, SeedableRng, rngs::SmallRng};

use super::membership::{Accepted, Member, MemberState};

/// What the core needs to know about this node and its timing.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub mode: Mode,
    /// Configured voters: the peers plus this node.
    pub voters: usize,
    pub heartbeat_interval: Duration,
    pub phi_threshold: f64,
    /// Silence, once suspected, before a member is `dead`.
    pub dead_after: Duration,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Transmit {
    pub to: NodeId,
    pub datagram: Datagram,
}

/// Something worth telling an operator about. The driver logs these; later the event
/// journal keeps them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A member was identified for the first time.
    Joined {
        node: NodeId,
        incarnation: Incarnation,
    },
    /// A member came back with a new incarnation (it restarted).
    Restarted {
        node: NodeId,
        incarnation: Incarnation,
    },
    /// A member's liveness changed.
    StateChanged {
        node: NodeId,
        from: MemberState,
        to: MemberState,
    },
}

/// This node's own figures, fed in by the probes.
#[derive(Debug, Clone, Copy, Default)]
struct Local {
    health: HealthBits,
    load: LoadFigures,
    digest: StateDigest,
}

/// One agent's view of the cluster, as a sans-IO state machine.
///
/// # Driving contract
///
/// The driver owns the only `Node` and is the only caller. It MUST:
/// 1. feed every input through a `handle_*` method with the current monotonic `now`
///    (and wall clock where a heartbeat is involved) — the node never reads a clock;
/// 2. after every `handle_*` call, drain [`poll_transmit`](Self::poll_transmit),
///    [`poll_fetch`](Self::poll_fetch) and [`poll_event`](Self::poll_event), in that order;
/// 3. call [`handle_timeout`](Self::handle_timeout) no later than
///    [`poll_timeout`](Self::poll_timeout) says.
///
/// It MUST NOT feed a datagram from a connection whose hello it has not passed to
/// [`handle_hello`](Self::handle_hello): the node trusts that the sender is who the
/// connection's certificate says.
#[derive(Debug)]
pub struct Node {
    cfg: CoreConfig,
    members: BTreeMap<NodeId, Member>,
    seq: u64,
    local: Local,
    next_check: Instant,
    rng: SmallRng,
    transmits: VecDeque<Transmit>,
    fetches: VecDeque<NodeId>,
    events: VecDeque<Event>,
}

impl Node {
    /// `seed` makes heartbeat staggering reproducible; production seeds it from the OS.
    pub fn new(cfg: CoreConfig, now: Instant, seed: u64) -> Self {
        Self {
            cfg,
            members: BTreeMap::new(),
            seq: 0,
            local: Local::default(),
            next_check: now,
            rng: SmallRng::seed_from_u64(seed),
            transmits: VecDeque::new(),
            fetches: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn id(&self) -> &NodeId {
        &self.cfg.node
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Every member but this node.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }

    /// Voters alive from this node's point of view, itself included.
    pub fn alive_voters(&self) -> usize {
        1 + self
            .members
            .values()
            .filter(|m| m.state == MemberState::Alive)
            .count()
    }

    /// Whether this node sees a majority of the configured voters alive.
    pub fn has_quorum(&self) -> bool {
        self.alive_voters() > self.cfg.voters / 2
    }

    /// A connection to a peer was authenticated: its certificate names `hello.node`, and
    /// the cluster and address were checked.
    pub fn handle_hello(&mut self, now: Instant, hello: &Hello) {
        if hello.node == self.cfg.node {
            return;
        }
        let interval = self.cfg.heartbeat_interval;
        match self.members.get_mut(&hello.node) {
            None => {
                let mut m = Member::new(
                    hello.node.clone(),
                    hello.advertise.clone(),
                    hello.mode,
                    hello.incarnation,
                    now,
                    interval,
                );
                // Stagger first heartbeats so a cluster started at once does not beat in
                // lockstep.
                m.next_heartbeat = now + interval.mul_f64(self.rng.random::<f64>() * 0.2);
                self.members.insert(hello.node.clone(), m);
                self.events.push_back(Event::Joined {
                    node: hello.node.clone(),
                    incarnation: hello.incarnation,
                });
            }
            Some(m) if hello.incarnation > m.incarnation => {
                m.restart(hello.incarnation, now, interval);
                m.addr = hello.advertise.clone();
                m.mode = hello.mode;
                self.events.push_back(Event::Restarted {
                    node: hello.node.clone(),
                    incarnation: hello.incarnation,
                });
            }
            Some(_) => {}
        }
    }

    /// A datagram arrived from `from` (the node its connection is bound to).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        wall: WallMicros,
        from: &NodeId,
        datagram: Datagram,
    ) {
        match datagram {
            Datagram::Heartbeat(hb) => self.on_heartbeat(now, wall, from, &hb),
            Datagram::Goodbye(bye) => self.on_goodbye(now, from, &bye),
        }
    }

    fn on_heartbeat(&mut self, now: Instant, wall: WallMicros, from: &NodeId, hb: &Heartbeat) {
        // A connection speaks for the node its certificate names, and no other.
        if hb.node != *from {
            return;
        }
        let interval = self.cfg.heartbeat_interval;
        let Some(m) = self.members.get_mut(from) else {
            return;
        };
        if hb.incarnation > m.incarnation {
            m.restart(hb.incarnation, now, interval);
            self.events.push_back(Event::Restarted {
                node: from.clone(),
                incarnation: hb.incarnation,
            });
        }
        match m.accept(now, wall, hb) {
            Accepted::Stale => {}
            Accepted::Fresh { fetch } => {
                if fetch {
                    m.fetch_pending = true;
                    self.fetches.push_back(from.clone());
                }
                if m.state != MemberState::Left
                    && let Some((from_state, to)) = m.set_state(MemberState::Alive, now)
                {
                    self.events.push_back(Event::StateChanged {
                        node: from.clone(),
                        from: from_state,
                        to,
                    });
                }
            }
        }
    }

    fn on_goodbye(&mut self, now: Instant, from: &NodeId, bye: &Goodbye) {
        if bye.node != *from {
            return;
        }
        self.handle_left(now, from, bye.incarnation);
    }

    /// `node` said goodbye (in a datagram, or by closing its connection with the goodbye
    /// code) in `incarnation`.
    pub fn handle_left(&mut self, now: Instant, node: &NodeId, incarnation: Incarnation) {
        let Some(m) = self.members.get_mut(node) else {
            return;
        };
        if incarnation != m.incarnation {
            return;
        }
        if let Some((from, to)) = m.set_state(MemberState::Left, now) {
            self.events.push_back(Event::StateChanged {
                node: node.clone(),
                from,
                to,
            });
        }
    }

    /// The full state of `from`, fetched after a digest change.
    pub fn handle_state(&mut self, from: &NodeId, state: NodeState) {
        let Some(m) = self.members.get_mut(from) else {
            return;
        };
        m.fetch_pending = false;
        if state.node != *from || state.incarnation != m.incarnation {
            return;
        }
        m.addr = state.advertise.clone();
        m.mode = state.mode;
        m.node_state = Some(state);
    }

    /// A state fetch from `from` failed; the next heartbeat may trigger another.
    pub fn handle_fetch_failed(&mut self, from: &NodeId) {
        if let Some(m) = self.members.get_mut(from) {
            m.fetch_pending = false;
            // Forget the digest so the next heartbeat asks again.
            m.digest = StateDigest::default();
        }
    }

    /// This node's own health, load and state digest changed.
    pub fn handle_local(&mut self, health: HealthBits, load: LoadFigures, digest: StateDigest) {
        self.local = Local {
            health,
            load,
            digest,
        };
    }

    /// Timers: failure detection and heartbeats due.
    pub fn handle_timeout(&mut self, now: Instant, wall: WallMicros) {
        if now >= self.next_check {
            self.check_members(now);
            self.next_check = now + self.check_interval();
        }
        let interval = self.cfg.heartbeat_interval;
        let due: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.state != MemberState::Left && m.next_heartbeat <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in due {
            self.seq += 1;
            let Some(m) = self.members.get_mut(&id) else {
                continue;
            };
            m.next_heartbeat += interval;
            if m.next_heartbeat <= now {
                m.next_heartbeat = now + interval;
            }
            let hb = Heartbeat {
                node: self.cfg.node.clone(),
                incarnation: self.cfg.incarnation,
                seq: Seq(self.seq),
                sent: wall,
                echo: m.echo(now),
                term: Term::default(),
                primary: None,
                lease_ack: None,
                health: self.local.health,
                load: self.local.load,
                digest: self.local.digest,
            };
            self.transmits.push_back(Transmit {
                to: id,
                datagram: Datagram::Heartbeat(hb),
            });
        }
    }

    fn check_interval(&self) -> Duration {
        self.cfg.heartbeat_interval / 5
    }

    fn check_members(&mut self, now: Instant) {
        for m in self.members.values_mut() {
            let next = match m.state {
                MemberState::Alive if m.phi(now) >= self.cfg.phi_threshold => MemberState::Suspect,
                MemberState::Suspect
                    if m.last_heard().is_none_or(|t| {
                        now.saturating_duration_since(t) >= self.cfg.dead_after
                    }) =>
                {
                    MemberState::Dead
                }
                s => s,
            };
            if let Some((from, to)) = m.set_state(next, now) {
                self.events.push_back(Event::StateChanged {
                    node: m.id.clone(),
                    from,
                    to,
                });
            }
        }
    }

    /// The goodbye to send to every peer on a clean shutdown.
    pub fn goodbye(&self) -> Datagram {
        Datagram::Goodbye(Goodbye {
            node: self.cfg.node.clone(),
            incarnation: self.cfg.incarnation,
        })
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let beats = self
            .members
            .values()
            .filter(|m| m.state != MemberState::Left)
            .map(|m| m.next_heartbeat);
        beats.chain(std::iter::once(self.next_check)).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// A member whose full state should be fetched.
    pub fn poll_fetch(&mut self) -> Option<NodeId> {
        self.fetches.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
