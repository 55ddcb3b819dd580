//! [`Node`]: one agent's state machine — membership, failure detection and the election.
//!
//! This file owns the node's state and the driving contract (every `handle_*` and
//! `poll_*`) and handles membership (hellos, heartbeats, suspicion). Its rules for each
//! further concern are child modules, which see the node's private state and are seen
//! by nothing else: `election.rs` (votes, leases, handover), `voters.rs` (the agreed
//! member set's changes) and `tasks.rs` (task claims). What they keep besides the node's
//! fields, and what crosses the contract, lives below them in `core/` (`contract.rs`,
//! `role.rs`, `voters.rs`, `tasks.rs`, `lease.rs`, `quorum.rs`), which never name `Node`'s
//! file: so no two files of the core import each other.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use proto::{
    Datagram, FreezeFlag, Goodbye, HealthBits, Heartbeat, Hello, Incarnation, LoadFigures, Mode,
    NodeId, NodeState, Seq, StateDigest, Term, WallMicros,
};
use rand::{SeedableRng, rngs::SmallRng};

use super::contract::{
    CoreConfig, Event, HardState, InjectedFault, LostVote, MembersProblem, Transmit,
};
use super::membership::{Accepted, Member, MemberState};
use super::role::Role;
use super::tasks::Tasks;
use super::voters::InFlight;

mod election;
mod tasks;
mod voters;

/// This node's own figures, fed in by the probes.
#[derive(Debug, Clone, Copy, Default)]
struct OwnFigures {
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
/// 2. after every `handle_*` call, drain [`poll_persist`](Self::poll_persist) first:
///    write that state durably (write, fsync, rename, fsync the directory) and report it
///    with [`handle_persisted`](Self::handle_persisted). Votes wait for it: a vote
///    reply or a candidate's requests are only released by `handle_persisted`;
/// 3. then, if [`lease`](Self::lease) now ends earlier than (or is gone from) the view
///    readers were last given, publish a fresh view BEFORE draining
///    [`poll_transmit`](Self::poll_transmit): a handover drops the lease and queues its
///    TimeoutNow in the same call, and the successor may win one round trip after that
///    datagram leaves, so no reader may still see the old lease by then;
/// 4. then drain [`poll_transmit`](Self::poll_transmit), [`poll_fetch`](Self::poll_fetch)
///    and [`poll_event`](Self::poll_event);
/// 5. call [`handle_timeout`](Self::handle_timeout) no later than
///    [`poll_timeout`](Self::poll_timeout) says;
/// 6. answer "am I primary?" only with [`lease::holds`](super::lease::holds) on
///    [`lease`](Self::lease) at the moment of answering.
///
/// It MUST NOT feed a datagram from a connection whose hello it has not passed to
/// [`handle_hello`](Self::handle_hello): the node trusts that the sender is who the
/// connection's certificate says.
#[derive(Debug)]
pub struct Node {
    cfg: CoreConfig,
    members: BTreeMap<NodeId, Member>,
    seq: u64,
    own: OwnFigures,
    next_check: Instant,
    rng: SmallRng,
    transmits: VecDeque<Transmit>,
    fetches: VecDeque<NodeId>,
    events: VecDeque<Event>,
    // The election (see `election.rs`).
    hard: HardState,
    persisted: HardState,
    persist_handed_out: bool,
    /// Messages that may only leave once `.0` is durable.
    held: VecDeque<(HardState, Transmit)>,
    role: Role,
    /// The primary of `hard.term`, if known.
    leader: Option<NodeId>,
    /// The lease promise: no vote for anyone but `.0` until `.1`.
    promise: Option<(NodeId, Instant)>,
    election_deadline: Instant,
    /// No votes before this (this node may have acknowledged a lease before a restart).
    no_votes_until: Instant,
    /// (Pre-)vote requests that arrived before `no_votes_until`, newest per candidate and
    /// kind (`true`: a vote): judged afresh when the embargo ends, so a cold start's
    /// first campaign is answered instead of refused everywhere.
    embargoed: BTreeMap<(NodeId, bool), proto::VoteRequest>,
    /// When this node last had a primary (followed one, or was one), or started: priority
    /// deference applies for [`DEFER_WINDOW`](super::election::DEFER_WINDOW) election
    /// timeouts after it.
    had_primary: Instant,
    eligible: bool,
    freeze: FreezeFlag,
    req_seq: u64,
    /// Send times of this node's heartbeats while primary: seq → monotonic instant.
    sent_log: VecDeque<(u64, Instant)>,
    /// A handover in progress: to whom, and when to give up waiting.
    transfer: Option<(NodeId, Instant)>,
    shutting_down: bool,
    /// The newest heartbeat received from the primary of a term, to acknowledge.
    primary_seq: Option<(Term, Seq)>,
    /// The lease the primary of `primary_seq` said it holds per acknowledgement (ms).
    leader_lease_ms: u32,
    /// Timing mismatches seen, per peer: `(lease_ms, promise_ms)` as last reported, and
    /// when last seen.
    timing_reported: BTreeMap<NodeId, ((u32, u32), Instant)>,
    /// The primary's change to the member set not yet committed.
    in_flight: Option<InFlight>,
    /// Without a set: why none yet (bootstrap progress, or what stops it).
    bootstrap_status: Option<MembersProblem>,
    started: Instant,
    /// Cannot prove its last vote and is a voter: no votes until `rejoin_tick` says.
    rejoining: bool,
    /// Why its last vote is unknown, until a rejoin takes a floor (`None`: it knows).
    vote_lost: Option<LostVote>,
    /// It started with nothing on disk (no vote record, no set): a term it adopts from
    /// a heartbeat before it learns a set is no vote record (it is not written), so
    /// only this says whether a set naming it finds it without one.
    started_empty: bool,
    /// Rejoining since (a bound on how long a candidacy it voted in may still run is
    /// measured from here), and the wall time of its first heartbeat after that bound:
    /// an echo of it (or a later one) proves the peer's report was sent after it.
    rejoin_since: Instant,
    rejoin_mark: Option<WallMicros>,
    /// `TermExhausted` was reported.
    term_exhausted: bool,
    /// Members of our set seen holding another cluster's set (see `voters::member_state`).
    foreign: std::collections::BTreeSet<NodeId>,
    /// Task placement, grants and claims (see `tasks.rs`).
    tasks: Tasks,
}

impl Node {
    /// `hard` is the state last persisted (default on first start); `seed` makes timer
    /// jitter reproducible (production seeds it from the OS).
    pub fn new(cfg: CoreConfig, now: Instant, seed: u64, hard: HardState) -> Self {
        let started_empty = hard == HardState::default();
        let mut node = Self {
            members: BTreeMap::new(),
            seq: 0,
            own: OwnFigures::default(),
            next_check: now,
            rng: SmallRng::seed_from_u64(seed),
            transmits: VecDeque::new(),
            fetches: VecDeque::new(),
            events: VecDeque::new(),
            persisted: hard.clone(),
            hard,
            persist_handed_out: false,
            held: VecDeque::new(),
            role: Role::Follower,
            leader: None,
            promise: None,
            election_deadline: now,
            no_votes_until: now + cfg.timing.election_timeout,
            embargoed: BTreeMap::new(),
            had_primary: now,
            eligible: false,
            freeze: FreezeFlag::default(),
            req_seq: 0,
            sent_log: VecDeque::new(),
            transfer: None,
            shutting_down: false,
            primary_seq: None,
            leader_lease_ms: u32::MAX,
            timing_reported: BTreeMap::new(),
            in_flight: None,
            bootstrap_status: None,
            started: now,
            rejoining: false,
            vote_lost: None,
            started_empty,
            rejoin_since: now,
            rejoin_mark: None,
            term_exhausted: false,
            foreign: Default::default(),
            tasks: Tasks::new(cfg.tasks.clone()),
            cfg,
        };
        node.reset_election_timer(now);
        node
    }

    /// The driver found no proof of this node's last `(term, voted_for)` (`hard` then
    /// holds term 0 and no vote): it may have voted before, so it rejoins — it votes in
    /// no term at or below the highest its peers report, and campaigns only above it.
    /// Call right after [`new`](Self::new), before any input.
    pub fn with_lost_vote(mut self, now: Instant, why: LostVote) -> Self {
        if self.cfg.fault == Some(InjectedFault::ForgetLostVote) {
            return self;
        }
        self.vote_lost = Some(why);
        if self
            .hard
            .members
            .slot(&self.cfg.node, &self.cfg.advertise)
            .is_some()
        {
            self.start_rejoin(now);
        }
        // Without a set, it learns one from a peer; `member_state` starts the rejoin then.
        self
    }

    /// Whether the driver writes `(term, voted_for)` (the `election` file) with the
    /// state [`poll_persist`](Self::poll_persist) hands out, or only the member set.
    /// Not while rejoining: a term adopted from a peer then is no vote record, and a
    /// file holding it would let a restart take it for one (and forget that this node's
    /// vote is unknown). Nor without a member set: such a node grants nothing, so it
    /// has nothing to record. The first write after this turns true writes the file.
    pub fn records_vote(&self) -> bool {
        self.vote_lost.is_none() && !self.hard.members.stamp.is_none()
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

    /// Voters of the agreed set alive from this node's point of view, itself included
    /// if it votes.
    pub fn alive_voters(&self) -> usize {
        usize::from(self.is_voter())
            + self
                .members
                .values()
                .filter(|m| m.state == MemberState::Alive && self.counts(&m.id))
                .count()
    }

    /// Voters in the agreed set this node holds.
    pub fn voters(&self) -> usize {
        self.voter_count()
    }

    /// Whether this node sees a majority of the agreed voters alive.
    pub fn has_quorum(&self) -> bool {
        self.voter_count() > 0 && self.alive_voters() > self.voter_count() / 2
    }

    /// A connection to a peer was authenticated: its certificate names `hello.node`, and
    /// the cluster and address were checked.
    ///
    /// Each configured peer address holds at most one node id, so a certificate for a
    /// new id cannot add a voter: a hello for an address held by another node that is
    /// still alive or suspect is ignored (see [`hello_conflict`](Self::hello_conflict));
    /// a dead or departed holder is replaced.
    pub fn handle_hello(&mut self, now: Instant, hello: &Hello) {
        if hello.node == self.cfg.node || self.hello_conflict(hello).is_some() {
            return;
        }
        let replaced: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.addr == hello.advertise && m.id != hello.node)
            .map(|m| m.id.clone())
            .collect();
        for old in replaced {
            self.members.remove(&old);
            if self.leader.as_ref() == Some(&old) {
                self.leader = None;
            }
        }
        let interval = self.cfg.timing.heartbeat_interval;
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
                m.keep_eligible = self.cfg.fault == Some(InjectedFault::KeepEligibleThroughSilence);
                // Stagger first heartbeats so a cluster started at once does not beat in
                // lockstep.
                m.next_heartbeat =
                    now + interval.mul_f64(rand::Rng::random::<f64>(&mut self.rng) * 0.2);
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

    /// Why `hello` must be refused, if it must: its address belongs to another node id
    /// that is alive, or suspect and heard within `dead_after`. The driver closes such a connection.
    pub fn hello_conflict(&self, hello: &Hello) -> Option<String> {
        self.members
            .values()
            // An unwatched member's state is not this node's judgement (it may be long gone).
            .find(|m| m.addr == hello.advertise && m.id != hello.node && m.watched && m.answers())
            .map(|m| {
                format!(
                    "{} claims address {}, which belongs to node {} ({})",
                    hello.node,
                    hello.advertise,
                    m.id,
                    m.state.as_str()
                )
            })
    }

    /// A datagram arrived from `from` (the node its connection is bound to).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        wall: WallMicros,
        from: &NodeId,
        datagram: Datagram,
    ) {
        if !self.members.contains_key(from) {
            return;
        }
        match datagram {
            Datagram::Heartbeat(hb) => self.on_heartbeat(now, wall, from, &hb),
            Datagram::Goodbye(bye) => self.on_goodbye(now, from, &bye),
            Datagram::PreVote(req) if req.candidate == *from => self.on_pre_vote(now, &req),
            Datagram::Vote(req) if req.candidate == *from => self.on_vote_request(now, &req),
            Datagram::PreVoteReply(r) if r.voter == *from => self.on_pre_vote_reply(now, &r),
            Datagram::VoteReply(r) if r.voter == *from => self.on_vote_reply(now, &r),
            Datagram::TimeoutNow(t) if t.from == *from => self.on_timeout_now(now, &t),
            Datagram::TransferRequest(r) => self.on_transfer_request(now, &r),
            Datagram::MemberRequest(r) => self.on_member_request(now, from, &r),
            Datagram::MemberReply(r) => self.on_member_reply(from, &r),
            // A connection speaks for the node its certificate names, and no other.
            _ => {}
        }
    }

    fn on_heartbeat(&mut self, now: Instant, wall: WallMicros, from: &NodeId, hb: &Heartbeat) {
        if hb.node != *from {
            return;
        }
        let interval = self.cfg.timing.heartbeat_interval;
        let threshold = self.cfg.timing.phi_threshold;
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
        match m.accept(now, wall, hb, self.cfg.timing.election_timeout) {
            Accepted::Stale => return,
            Accepted::Fresh { fetch } => {
                m.refresh_suspect_at(threshold);
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
        self.merge_freeze(hb.freeze);
        self.task_heartbeat(from, hb);
        self.election_heartbeat(now, wall, from, hb);
        self.answer_in_step(now, wall, from);
        if self.wants_set_from(from, hb.config)
            && let Some(m) = self.members.get_mut(from)
            && !m.fetch_pending
        {
            m.fetch_pending = true;
            self.fetches.push_back(from.clone());
        }
    }

    /// On a slow link between two nodes that are not the primary, the node with the
    /// lower id leads and the other answers each of its heartbeats at once, its own timer
    /// only a fallback at 1.25 intervals. So the answer carries the QUIC acknowledgement
    /// of the heartbeat it answers, and only the leader's acknowledgement of the answer
    /// leaves in a packet of its own (25 ms later, QUIC's acknowledgement delay). Left to
    /// their timers, both ends send on the primary's beat: the two heartbeats cross, and
    /// each is acknowledged by a packet of its own. The primary's links have their own
    /// answer (`election_heartbeat`); at most one answer per half interval keeps the rate.
    fn answer_in_step(&mut self, now: Instant, wall: WallMicros, from: &NodeId) {
        if self.is_primary_role() || self.leader.as_ref() == Some(from) || self.cfg.node < *from {
            return;
        }
        let interval = self.interval_to(from);
        if interval <= self.cfg.timing.lease_heartbeat_interval {
            return;
        }
        let answer = self.members.get(from).is_some_and(|m| {
            m.state != MemberState::Left
                && m.watched
                && m.next_heartbeat <= now + interval.mul_f64(0.75)
        });
        if answer {
            self.send_heartbeat(now, wall, from);
            if let Some(m) = self.members.get_mut(from) {
                m.next_heartbeat = now + interval + interval / 4;
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
        if self.leader.as_ref() == Some(node) {
            // It left cleanly after handing over (or without a successor): no need to
            // wait out a failure detector, but its lease promise still runs out by time.
            self.leader = None;
        }
    }

    /// The full state of `from`, fetched after a digest change.
    pub fn handle_state(&mut self, from: &NodeId, state: NodeState) {
        let Some(m) = self.members.get_mut(from) else {
            return;
        };
        m.fetch_pending = false;
        // The address stays the one its hello was checked against.
        if state.node != *from || state.incarnation != m.incarnation || state.advertise != m.addr {
            return;
        }
        m.mode = state.mode;
        m.node_state = Some(state);
        self.member_state(from);
    }

    /// A state fetch from `from` failed; the next heartbeat may trigger another.
    pub fn handle_fetch_failed(&mut self, from: &NodeId) {
        if let Some(m) = self.members.get_mut(from) {
            m.fetch_pending = false;
            // Forget the digest so the next heartbeat asks again.
            m.digest = StateDigest::default();
        }
    }

    /// This node's own health, load and state digest. [`HealthBits::ELIGIBLE`] says
    /// whether it may be primary; losing it while primary hands over at once.
    pub fn handle_local(
        &mut self,
        now: Instant,
        health: HealthBits,
        load: LoadFigures,
        digest: StateDigest,
    ) {
        self.own = OwnFigures {
            health,
            load,
            digest,
        };
        let eligible = health.has(HealthBits::ELIGIBLE) && self.cfg.mode == Mode::Member;
        if eligible != self.eligible {
            self.eligible = eligible;
            if !eligible {
                self.on_ineligible(now);
            }
        }
    }

    /// Timers: failure detection, elections, lease upkeep and heartbeats due.
    pub fn handle_timeout(&mut self, now: Instant, wall: WallMicros) {
        self.watch_tick(now);
        if self.check_due().is_some_and(|due| now >= due) {
            self.run_checks(now);
        }
        self.bootstrap_tick(now);
        self.rejoin_tick(now, wall);
        self.release_embargoed(now);
        self.election_tick(now);
        if self.is_primary_role() {
            self.members_tick(now);
        }
        self.send_heartbeats(now, wall);
    }

    /// Every heartbeat due by now. The timer asks for each only once its slack is over
    /// ([`slack`](Self::slack)), so a heartbeat due earlier leaves with whatever wakes
    /// the node first.
    fn send_heartbeats(&mut self, now: Instant, wall: WallMicros) {
        self.send_early(now, wall);
    }

    /// This wake-up sends anyway (a timer ran out, or it answers the primary): every
    /// heartbeat due by now leaves with it, and a lease heartbeat due within half its
    /// interval too. So an idle follower wakes once per beat of the primary rather than
    /// once more for each peer's phase, and a primary sends all its lease heartbeats on
    /// one timer (once sent together, they stay together).
    pub(super) fn send_early(&mut self, now: Instant, wall: WallMicros) {
        self.watch_tick(now);
        let lease_rate = self.cfg.timing.lease_heartbeat_interval;
        let due: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.state != MemberState::Left && m.watched)
            .filter(|m| {
                let early = if self.interval_to(&m.id) <= lease_rate {
                    lease_rate / 2
                } else {
                    Duration::ZERO
                };
                m.next_heartbeat <= now + early
            })
            .map(|m| m.id.clone())
            .collect();
        for id in due {
            self.send_heartbeat(now, wall, &id);
        }
    }

    /// How late a heartbeat to `to` may leave to share a wake-up: on a slow link, up to
    /// one lease heartbeat interval, the rate at which a follower wakes to answer its
    /// primary; a fast (lease) link keeps its rate exactly. Sent at a beat, the next one
    /// falls due on a beat again, so the slow heartbeats lock onto the primary's beats
    /// after the first; the receiver's detector learns the slightly longer intervals.
    fn slack(&self, to: &NodeId) -> Duration {
        let lease_rate = self.cfg.timing.lease_heartbeat_interval;
        if self.interval_to(to) > lease_rate {
            lease_rate
        } else {
            Duration::ZERO
        }
    }

    /// The heartbeat interval on the link to `to`: fast between the primary and its
    /// voters (they carry the lease), slow otherwise.
    pub(super) fn interval_to(&self, to: &NodeId) -> Duration {
        if self.lease_link(to) && (self.is_primary_role() || self.leader.as_ref() == Some(to)) {
            self.cfg.timing.lease_heartbeat_interval
        } else {
            self.cfg.timing.heartbeat_interval
        }
    }

    pub(super) fn send_heartbeat(&mut self, now: Instant, wall: WallMicros, to: &NodeId) {
        let interval = self.interval_to(to);
        self.seq += 1;
        let seq = self.seq;
        let is_primary = self.is_primary_role();
        let lease_ack = self.lease_ack_for(to);
        let tasks = self.task_grant_for(to);
        let Some(m) = self.members.get_mut(to) else {
            return;
        };
        m.next_heartbeat = now + interval;
        let hb = Heartbeat {
            node: self.cfg.node.clone(),
            incarnation: self.cfg.incarnation,
            seq: Seq(seq),
            sent: wall,
            interval_ms: u16::try_from(interval.as_millis()).unwrap_or(u16::MAX),
            echo: m.echo(now),
            term: self.hard.term,
            primary: if is_primary {
                Some(self.cfg.node.clone())
            } else {
                self.leader.clone()
            },
            lease_ack,
            lease_ms: super::lease::lease_ms(self.cfg.timing.lease),
            promise_ms: super::lease::promise_ms(self.cfg.timing.election_timeout),
            freeze: self.freeze,
            health: self.own.health,
            load: self.own.load,
            digest: self.own.digest,
            config: self.persisted.members.stamp,
            tasks,
        };
        self.task_heartbeat_sent(now, wall, to);
        if is_primary {
            self.sent_log.push_back((seq, now));
            let horizon = self.cfg.timing.election_timeout * 2;
            while self
                .sent_log
                .front()
                .is_some_and(|(_, t)| now.saturating_duration_since(*t) > horizon)
            {
                self.sent_log.pop_front();
            }
        }
        self.transmits.push_back(Transmit {
            to: to.clone(),
            datagram: Datagram::Heartbeat(hb),
        });
    }

    /// Failure detection and task placement, on [`check_due`](Self::check_due)'s
    /// schedule.
    fn run_checks(&mut self, now: Instant) {
        self.check_members(now);
        self.tasks_tick(now);
        self.next_check = now + self.check_interval();
    }

    /// This wake-up answers the primary: the checks run in it too if they fall due
    /// within half a lease heartbeat interval, so a ticking follower (one with tasks)
    /// does not wake again for them a moment later.
    pub(super) fn checks_if_near(&mut self, now: Instant) {
        let near = now + self.cfg.timing.lease_heartbeat_interval / 2;
        if self.check_due().is_some_and(|due| due <= near) {
            self.run_checks(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout)'s checks must next run: on a tick
    /// while the node follows something by time, else when the first live member's
    /// silence would make it suspect (`None`: none could be). So an idle follower
    /// without tasks wakes for heartbeats only, not on a fixed tick.
    ///
    /// On the tick: a primary (its heartbeats share the tick's wake-ups: both are set from
    /// the same instant), a suspect to confirm or declare dead, task placements (they move
    /// when promises run out and nodes settle), a bootstrap, a rejoin, a member change or
    /// a handover in progress. Anything else a follower waits for by time is an
    /// election timer, which [`poll_timeout`](Self::poll_timeout) reports itself.
    fn check_due(&self) -> Option<Instant> {
        let ticking = self.is_primary_role()
            || !matches!(self.role, Role::Follower)
            || !self.tasks.tasks.is_empty()
            || self.hard.members.stamp.is_none()
            || self.rejoining
            || self.in_flight.is_some()
            || self.transfer.is_some()
            || self
                .members
                .values()
                .any(|m| m.state == MemberState::Suspect && m.watched);
        if ticking {
            return Some(self.next_check);
        }
        self.members
            .values()
            .filter(|m| m.state == MemberState::Alive && m.watched)
            .filter_map(|m| m.suspect_at)
            .min()
    }

    fn check_interval(&self) -> Duration {
        self.cfg
            .timing
            .lease_heartbeat_interval
            .min(self.cfg.timing.heartbeat_interval / 5)
    }

    /// Failure detection: alive → suspect when phi crosses the threshold; suspect → dead
    /// once silent for `dead_after` *and* a majority confirms the suspicion
    /// ([`suspicion_confirmed`](Self::suspicion_confirmed)): a node that cannot hear one
    /// peer does not declare it dead on its own.
    fn check_members(&mut self, now: Instant) {
        // Asked only about suspects (most ticks: none, and nothing allocated).
        let confirmed: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Suspect && self.suspicion_confirmed(&m.id))
            .map(|m| m.id.clone())
            .collect();
        let dead_after = self.cfg.timing.dead_after;
        for m in self.members.values_mut().filter(|m| m.watched) {
            let confirmed = confirmed.contains(&m.id);
            let silent = m.state == MemberState::Suspect
                && m.last_heard()
                    .is_none_or(|t| now.saturating_duration_since(t) >= dead_after);
            if matches!(m.state, MemberState::Suspect | MemberState::Dead) {
                m.silent = silent || m.state == MemberState::Dead;
            }
            let next = match m.state {
                MemberState::Alive if m.phi(now) >= self.cfg.timing.phi_threshold => {
                    MemberState::Suspect
                }
                MemberState::Suspect if silent && confirmed => MemberState::Dead,
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

    /// Whether a majority of the voters other than `suspect` suspect it: this node (if it
    /// is one of them) and each voter whose fetched state lists `suspect` among its
    /// suspects (`NodeState::suspects`, who suspects whom).
    pub(super) fn suspicion_confirmed(&self, suspect: &NodeId) -> bool {
        let electorate = self.voter_count() - usize::from(self.counts(suspect));
        let others = self
            .members
            .values()
            .filter(|v| v.id != *suspect && self.counts(&v.id))
            .filter(|v| {
                v.node_state
                    .as_ref()
                    .is_some_and(|s| s.suspects.contains(suspect))
            })
            .count();
        super::quorum::suspicion_confirmed(electorate, usize::from(self.is_voter()) + others)
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
            .filter(|m| m.state != MemberState::Left && m.watched)
            .map(|m| m.next_heartbeat + self.slack(&m.id));
        beats
            .chain(self.check_due())
            .chain(self.election_timers())
            .min()
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
