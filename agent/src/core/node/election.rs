//! The election: Raft's, without a log, with leases, priorities and handover.
//!
//! Rules (DESIGN.md "Election"), and where each is enforced:
//! - a vote is a promise: a voter that acknowledged the primary's heartbeat, or granted a
//!   vote, grants no other vote for `election_timeout` after it ([`Node::votes_open`]);
//! - the primary holds its lease only until the newest send time a majority acknowledged,
//!   plus `lease` (< `election_timeout`) ([`Node::update_lease`]);
//! - each node reads its timing from its own file, so "the promise outlasts the lease" is
//!   judged per message: a voter acknowledges a lease, and grants a (pre-)vote, only when
//!   its own promise outlasts the sender's lease; a primary (or candidate) counts an
//!   acknowledgement (or vote) only when the voter's promise outlasts its own lease
//!   ([`Node::covers`], `lease::promise_covers`);
//! - pre-vote before any term change, so a node rejoining after a partition cannot
//!   depose a healthy primary ([`Node::on_pre_vote`]);
//! - `(term, voted_for)` is durable before a vote or a vote request leaves
//!   ([`Node::poll_persist`], [`Node::handle_persisted`]);
//! - a node that has just started grants no vote for one election timeout; requests that
//!   arrive meanwhile are held and judged when it ends ([`Node::release_embargoed`]);
//! - handover is a transfer (TimeoutNow): the primary drops its lease *before* telling
//!   the successor to campaign, and voters let that successor past their promise;
//! - priority and preemption only order who campaigns first and when a primary hands
//!   over; none of the rules above reads them, so a reload may change them at any time
//!   (`Command::SetPriority`, `Command::SetPreempt`):
//!   - deference ([`Node::defers`]): within [`DEFER_WINDOW`] election timeouts of last
//!     having a primary (or starting), no pre-vote is started, or granted to a candidate,
//!     while an eligible voter that outranks it is heard both ways — so a cold start
//!     elects the highest priority first by rule, not by the stagger's timing. Liveness
//!     bound: it only withholds pre-votes, and only for that window, so a preferred node
//!     that cannot win delays an election by at most `DEFER_WINDOW × election_timeout`;
//!   - preemption ([`Node::maybe_preempt`]) hands over to a higher-priority node seen
//!     alive and eligible *without a break* for `preempt_delay`: `Member::eligible_since`
//!     restarts when the member leaves alive (`Member::set_state`), comes back after a
//!     silence longer than an election timeout, or says (its echo's hold time) that it
//!     has not heard this node for that long (`Member::accept`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proto::{
    Datagram, FreezeFlag, HealthBits, Heartbeat, Mode, NodeId, Seq, Term, TimeoutNow,
    TransferRequest, VoteReply, VoteRequest,
};
use rand::Rng;

use super::Node;
use crate::core::contract::{Command, Event, HardState, InjectedFault, TransferReason, Transmit};
use crate::core::lease::{self, Lease};
use crate::core::membership::MemberState;
use crate::core::quorum::{majority, majority_acked};
use crate::core::role::{DEFER_WINDOW, Role, TIMING_MISMATCH_SHOWN};

impl Node {
    pub fn term(&self) -> Term {
        self.hard.term
    }

    /// The primary this node believes in: itself while it holds the role, else the
    /// primary of its term it last heard from.
    pub fn primary(&self) -> Option<&NodeId> {
        if self.is_primary_role() {
            Some(&self.cfg.node)
        } else {
            self.leader.as_ref()
        }
    }

    /// This node's lease, if it is primary. Whether it *holds* is for
    /// [`lease::holds`](crate::core::lease::holds) to say, at the moment of answering.
    pub fn lease(&self) -> Option<Lease> {
        match &self.role {
            Role::Primary { lease_until, .. } => Some(Lease {
                term: self.hard.term,
                until: *lease_until,
            }),
            _ => None,
        }
    }

    /// `primary`, `candidate`, `witness` or `secondary`, for the view.
    pub fn role_name(&self, now: Instant) -> proto::Role {
        match &self.role {
            Role::Primary { lease_until, .. } if now < *lease_until => proto::Role::Primary,
            Role::Primary { .. } | Role::PreCandidate { .. } | Role::Candidate { .. } => {
                proto::Role::Candidate
            }
            Role::Follower if self.cfg.mode == Mode::Witness => proto::Role::Witness,
            Role::Follower => proto::Role::Secondary,
        }
    }

    pub fn frozen(&self) -> bool {
        self.freeze.frozen
    }

    /// The freeze flag as this node knows it (its version orders operator commands).
    pub fn freeze_flag(&self) -> FreezeFlag {
        self.freeze
    }

    /// Whether this node may become primary right now, as far as it knows.
    pub fn eligible(&self) -> bool {
        self.eligible
    }

    pub(super) fn is_primary_role(&self) -> bool {
        matches!(self.role, Role::Primary { .. })
    }

    /// The state to write durably now, if it changed. Report it with
    /// [`handle_persisted`](Self::handle_persisted); until then, votes are held.
    pub fn poll_persist(&mut self) -> Option<HardState> {
        if self.hard != self.persisted && !self.persist_handed_out {
            self.persist_handed_out = true;
            return Some(self.hard.clone());
        }
        None
    }

    /// The state last reported durable (what the driver compares a new write against).
    pub fn persisted(&self) -> &HardState {
        &self.persisted
    }

    /// `hs` is on disk: release what waited for it.
    pub fn handle_persisted(&mut self, now: Instant, hs: HardState) {
        self.persist_handed_out = false;
        if hs.term < self.persisted.term {
            return;
        }
        self.persisted = hs;
        let persisted = self.persisted.clone();
        let mut keep = std::collections::VecDeque::new();
        let mut asked = false;
        while let Some((need, t)) = self.held.pop_front() {
            if need.term < persisted.term || need == persisted {
                asked |= matches!(t.datagram, Datagram::Vote(_));
                self.transmits.push_back(t);
            } else {
                keep.push_back((need, t));
            }
        }
        self.held = keep;
        // The lease a win brings runs from when the requests actually leave, not from
        // when the campaign began (before the fsync).
        if asked && let Role::Candidate { sent, .. } = &mut self.role {
            *sent = now;
        }
        self.try_win(now);
    }

    /// The monotonic clock stopped while wall time went on (a suspended VM), or the loop
    /// stalled for longer than a lease: a lease measured on it can no longer be trusted,
    /// and no peer was seen alive without a break meanwhile.
    pub fn handle_clock_jump(&mut self, now: Instant) {
        if self.is_primary_role() {
            self.step_down(now, "clock-jump");
        }
        // Task claims are leases on the same clock.
        self.tasks.forget_support();
        // Nobody was seen alive "without a break" across this node's own stop: its
        // monotonic clock did not see the silence, so neither would `accept`.
        for m in self.members.values_mut().filter(|m| !m.keep_eligible) {
            m.eligible_since = None;
        }
    }

    /// An operator's or the driver's command.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Freeze(flag) => self.merge_freeze(flag),
            Command::Shutdown => {
                self.shutting_down = true;
                match self.role {
                    Role::Primary { .. } => match self.best_successor(None) {
                        Some(to) => self.transfer_to(now, to, TransferReason::Shutdown),
                        None => self.step_down(now, "shutdown"),
                    },
                    Role::PreCandidate { .. } | Role::Candidate { .. } => {
                        self.role = Role::Follower;
                    }
                    Role::Follower => {}
                }
            }
            Command::Transfer(to) => self.request_transfer(now, to),
            // Taken into account at the next timer reset and preemption check; nothing
            // to redo now.
            Command::SetPriority(p) => self.cfg.priority = p,
            Command::SetPreempt(p) => self.cfg.preempt = p,
            Command::SetTasks {
                tasks,
                return_delay,
            } => {
                self.tasks.set_specs(tasks.clone());
                self.cfg.tasks = tasks;
                self.cfg.task_return_delay = return_delay;
            }
            Command::Member { req, change } => self.member_command(now, req, change),
            Command::ForceNewCluster { req } => self.force_new_cluster(now, req),
            Command::SetBootstrap { list, hash } => {
                self.cfg.bootstrap = list;
                self.cfg.bootstrap_hash = hash;
                self.bootstrap_status = None;
            }
        }
    }

    fn request_transfer(&mut self, now: Instant, to: Option<NodeId>) {
        let refuse = |node: &mut Self, reason: String| {
            node.events.push_back(Event::Refused {
                command: match &to {
                    Some(t) => format!("transfer to {t}"),
                    None => "transfer".to_owned(),
                },
                reason,
            });
        };
        if self.freeze.frozen {
            return refuse(self, "the cluster is frozen".into());
        }
        if !self.is_primary_role() {
            // Forward to the primary, which decides.
            match self.leader.clone() {
                Some(leader) => self.transmits.push_back(Transmit {
                    to: leader,
                    datagram: Datagram::TransferRequest(TransferRequest { to }),
                }),
                None => refuse(self, "no primary is known to this node".into()),
            }
            return;
        }
        match self.best_successor(to.as_ref()) {
            Some(target) => self.transfer_to(now, target, TransferReason::Operator),
            None => {
                let unfit = to
                    .as_ref()
                    .and_then(|t| self.members.get(t))
                    .is_some_and(|m| {
                        m.timing.is_some()
                            && m.state == MemberState::Alive
                            && m.health.has(HealthBits::ELIGIBLE)
                            && !self.could_hold_a_lease(m)
                    });
                let reason = match &to {
                    Some(t) if *t == self.cfg.node => format!("{t} is already primary"),
                    Some(t) if unfit => format!(
                        "{t}'s lease is longer than a majority's election timeout: it could not keep the primary role (see the timing reason)"
                    ),
                    Some(t) if !self.counts(t) => format!(
                        "{t} is not a voter in the agreed member set (`quorate member add` first)"
                    ),
                    Some(t) => format!("{t} is not an alive, eligible member"),
                    None => "no other alive, eligible voter".into(),
                };
                refuse(self, reason);
            }
        }
    }

    /// The member to hand over to: `want` if it qualifies, else the highest priority
    /// alive eligible member (ties: lowest RTT, then id).
    fn best_successor(&self, want: Option<&NodeId>) -> Option<NodeId> {
        let qualifies = |m: &&super::Member| {
            m.state == MemberState::Alive
                && m.mode == Mode::Member
                && m.health.has(HealthBits::ELIGIBLE)
                && self.counts(&m.id)
                // It would lose the vote holding an older member set than ours.
                && m.config >= self.hard.members.stamp
                && self.follows_me(m)
                && self.could_hold_a_lease(m)
        };
        if let Some(want) = want {
            return self
                .members
                .get(want)
                .filter(qualifies)
                .map(|m| m.id.clone());
        }
        self.members
            .values()
            .filter(qualifies)
            .max_by(|a, b| {
                let pa = a.node_state.as_ref().map(|s| s.priority).unwrap_or(0);
                let pb = b.node_state.as_ref().map(|s| s.priority).unwrap_or(0);
                pa.cmp(&pb)
                    .then_with(|| b.rtt.cmp(&a.rtt))
                    .then_with(|| b.id.cmp(&a.id))
            })
            .map(|m| m.id.clone())
    }

    /// Whether a majority of the voters this node knows promise longer than `m`'s lease,
    /// as their heartbeats announce it: a handover to a node they cannot back would only
    /// leave the cluster without a primary until someone else wins. (A liveness choice;
    /// safety rests on the checks at acknowledgement and vote time.)
    fn could_hold_a_lease(&self, m: &super::Member) -> bool {
        let Some((lease_ms, _)) = m.timing else {
            return false;
        };
        let mine = u32::from(
            self.is_voter()
                && self.covers(
                    lease::promise_ms(self.cfg.timing.election_timeout),
                    lease_ms,
                ),
        );
        let others = self
            .members
            .values()
            .filter(|v| self.counts(&v.id))
            .filter_map(|v| v.timing)
            .filter(|(_, promise_ms)| self.covers(*promise_ms, lease_ms))
            .count();
        mine as usize + others >= majority(self.voter_count())
    }

    /// Drops the lease, then tells `to` to campaign at once.
    fn transfer_to(&mut self, now: Instant, to: NodeId, reason: TransferReason) {
        let term = self.hard.term;
        self.role = Role::Follower;
        // A change in flight is the next primary's to finish (it holds the set or not).
        self.in_flight = None;
        self.leader = None;
        self.transfer = Some((to.clone(), now + self.cfg.timing.election_timeout));
        self.events.push_back(Event::TransferStarted {
            to: to.clone(),
            term,
            reason,
        });
        self.transmits.push_back(Transmit {
            to,
            datagram: Datagram::TimeoutNow(TimeoutNow {
                term,
                from: self.cfg.node.clone(),
            }),
        });
        self.reset_election_timer(now);
    }

    pub(super) fn on_ineligible(&mut self, now: Instant) {
        match self.role {
            // Frozen means the primary stays (the operator is working on the cluster and
            // a transfer target would refuse to campaign anyway); it hands over once
            // unfrozen, from the election tick.
            Role::Primary { .. } if self.freeze.frozen => self.events.push_back(Event::Refused {
                command: "hand over (this node is no longer eligible)".into(),
                reason: "the cluster is frozen; staying primary until unfrozen".into(),
            }),
            Role::Primary { .. } => match self.best_successor(None) {
                Some(to) => self.transfer_to(now, to, TransferReason::Ineligible),
                None => self.events.push_back(Event::Refused {
                    command: "hand over (this node is no longer eligible)".into(),
                    reason: "no other alive, eligible member; staying primary".into(),
                }),
            },
            Role::PreCandidate { .. } | Role::Candidate { .. } => {
                self.role = Role::Follower;
                self.reset_election_timer(now);
            }
            Role::Follower => {}
        }
    }

    pub(super) fn merge_freeze(&mut self, flag: FreezeFlag) {
        if flag.version > self.freeze.version {
            let changed = flag.frozen != self.freeze.frozen;
            self.freeze = flag;
            if changed {
                self.events.push_back(Event::FreezeChanged {
                    frozen: flag.frozen,
                });
            }
        }
    }

    /// Election side of a fresh heartbeat from `from`.
    pub(super) fn election_heartbeat(
        &mut self,
        now: Instant,
        wall: proto::WallMicros,
        from: &NodeId,
        hb: &Heartbeat,
    ) {
        // Said at once, not at the next failover: would either of us, as primary, get
        // an acknowledgement the other can keep? (Only the checks at acknowledgement
        // and vote time below decide anything; this one only reports.)
        let (own_lease, own_promise) = (
            lease::lease_ms(self.cfg.timing.lease),
            lease::promise_ms(self.cfg.timing.election_timeout),
        );
        if !self.covers(hb.promise_ms, own_lease) {
            self.report_timing(now, from, own_lease, hb.promise_ms);
        } else if !self.covers(own_promise, hb.lease_ms) {
            self.report_timing(now, from, hb.lease_ms, own_promise);
        }
        if hb.term > self.hard.term {
            self.adopt_term(now, hb.term);
        }
        let claims_primary = hb.primary.as_ref() == Some(from);
        if hb.term < self.hard.term {
            if claims_primary {
                // A primary of an old term (back from a partition): answer at once, our
                // higher term makes it step down.
                self.send_heartbeat(now, wall, from);
            }
            return;
        }
        // Same term from here on.
        if claims_primary {
            let conflict = if self.is_primary_role() {
                Some(self.cfg.node.clone())
            } else {
                self.leader.clone().filter(|l| l != from)
            };
            if conflict.is_some() {
                self.events.push_back(Event::SplitBrainSuspected {
                    claimant: from.clone(),
                    term: hb.term,
                    believed: conflict,
                });
                return;
            }
            if self.leader.as_ref() != Some(from) {
                self.leader = Some(from.clone());
                self.events.push_back(Event::PrimaryChanged {
                    node: from.clone(),
                    term: hb.term,
                });
            }
            if !matches!(self.role, Role::Follower) {
                self.role = Role::Follower;
            }
            self.transfer = None;
            self.had_primary = now;
            self.primary_seq = Some((hb.term, hb.seq));
            // Followed, but acknowledged only if our promise outlasts this lease
            // (`lease_ack_for`); a mismatch was reported above.
            self.leader_lease_ms = hb.lease_ms;
            self.promise = Some((from.clone(), now + self.cfg.timing.election_timeout));
            self.reset_election_timer(now);
            // Acknowledge at once: the primary's lease runs from its send time.
            self.send_heartbeat(now, wall, from);
            // The next acknowledgement answers the primary's next heartbeat; the timer is
            // only a fallback should that one be lost, set late enough not to race it
            // (a race sends two heartbeats a beat).
            let interval = self.interval_to(from);
            if let Some(m) = self.members.get_mut(from) {
                m.next_heartbeat = now + interval + interval / 2;
            }
            // The checks if nearly due, and the heartbeats to the others that are due,
            // share this wake-up (checks first: they decide the task grants those carry).
            self.checks_if_near(now);
            self.send_early(now, wall);
            return;
        }
        // An acknowledgement whose promise ends before our lease does not count (the
        // mismatch was reported above).
        if self.is_primary_role()
            && hb.lease_ack.is_some()
            && hb.primary.as_ref() == Some(&self.cfg.node)
            && !self.covers(hb.promise_ms, lease::lease_ms(self.cfg.timing.lease))
        {
            return;
        }
        if let (Role::Primary { acks, .. }, Some(ack)) = (&mut self.role, hb.lease_ack)
            && hb.primary.as_ref() == Some(&self.cfg.node)
            && let Some(sent) = self
                .sent_log
                .iter()
                .find(|(seq, _)| *seq == ack.0)
                .map(|(_, t)| *t)
        {
            let entry = acks.entry(from.clone()).or_insert(sent);
            if sent > *entry {
                *entry = sent;
            }
            self.update_lease(now);
        }
    }

    /// The lease acknowledgement for our heartbeat to `to`.
    pub(super) fn lease_ack_for(&self, to: &NodeId) -> Option<Seq> {
        // Rejoining, this node may have acknowledged a lease of a later term than any it
        // knows (its record is lost): backing a primary of an older term now could give
        // two leases at once. It acknowledges again once its term is a floor.
        if self.rejoining {
            return None;
        }
        match &self.primary_seq {
            Some((term, seq))
                if *term == self.hard.term
                    && self.leader.as_ref() == Some(to)
                    && self.covers(
                        lease::promise_ms(self.cfg.timing.election_timeout),
                        self.leader_lease_ms,
                    ) =>
            {
                Some(*seq)
            }
            _ => None,
        }
    }

    /// Whether `promise_ms` outlasts `lease_ms` (the broken-core switch
    /// `IgnoreTiming` says yes to everything).
    pub(super) fn covers(&self, promise_ms: u32, lease_ms: u32) -> bool {
        self.cfg.fault == Some(InjectedFault::IgnoreTiming)
            || lease::promise_covers(promise_ms, lease_ms)
    }

    /// Says once per peer and values that their timing and ours do not fit, and keeps
    /// when it was last seen (see [`Node::timing_mismatches`]).
    fn report_timing(&mut self, now: Instant, peer: &NodeId, lease_ms: u32, promise_ms: u32) {
        let values = (lease_ms, promise_ms);
        if let Some(seen) = self.timing_reported.get_mut(peer) {
            // Every heartbeat repeats it: refresh without allocating.
            let changed = seen.0 != values;
            *seen = (values, now);
            if !changed {
                return;
            }
        } else {
            self.timing_reported.insert(peer.clone(), (values, now));
        }
        self.events.push_back(Event::TimingMismatch {
            peer: peer.clone(),
            lease_ms,
            promise_ms,
        });
    }

    /// The peers whose timing did not fit this node's within the last
    /// `TIMING_MISMATCH_SHOWN` (10 s): the `timing` reason.
    pub fn timing_mismatches(&self, now: Instant) -> impl Iterator<Item = &NodeId> {
        self.timing_reported
            .iter()
            .filter(move |(_, (_, at))| now.saturating_duration_since(*at) < TIMING_MISMATCH_SHOWN)
            .map(|(peer, _)| peer)
    }

    /// Recomputes the primary's lease from its acknowledgements.
    pub(super) fn update_lease(&mut self, now: Instant) {
        let voters = self.voter_count();
        let lease = self.cfg.timing.lease;
        let fault = self.cfg.fault;
        let counted: Vec<Instant> = match &self.role {
            Role::Primary { acks, .. } => acks
                .iter()
                .filter(|(id, _)| self.counts(id))
                .map(|(_, t)| *t)
                .collect(),
            _ => return,
        };
        if let Role::Primary { lease_until, .. } = &mut self.role {
            let until = match majority_acked(voters, counted) {
                Some(t) => t + lease,
                // Alone in a one-voter cluster, this node is its own majority.
                None if majority(voters) == 1 => now + lease,
                None => *lease_until,
            };
            *lease_until = if fault == Some(InjectedFault::LeaseNeverExpires) {
                now + Duration::from_secs(86_400)
            } else {
                until.max(*lease_until)
            };
        }
    }

    pub(super) fn adopt_term(&mut self, now: Instant, term: Term) {
        if self.is_primary_role() {
            self.events.push_back(Event::SteppedDown {
                term: self.hard.term,
                reason: "higher-term",
            });
        }
        self.hard.term = term;
        self.hard.voted_for = None;
        self.leader = None;
        self.in_flight = None;
        if !matches!(self.role, Role::Follower) {
            self.role = Role::Follower;
            self.reset_election_timer(now);
        }
    }

    fn step_down(&mut self, now: Instant, reason: &'static str) {
        self.events.push_back(Event::SteppedDown {
            term: self.hard.term,
            reason,
        });
        self.role = Role::Follower;
        self.leader = None;
        self.in_flight = None;
        self.reset_election_timer(now);
    }

    /// Keeps a (pre-)vote request that arrived in the start-up embargo, to judge when it
    /// ends; says whether it did. Refusing it instead would fail a cold start's first
    /// campaign everywhere and leave the retry order to chance.
    fn hold_in_embargo(&mut self, now: Instant, req: &VoteRequest, vote: bool) -> bool {
        if now >= self.no_votes_until {
            return false;
        }
        self.embargoed
            .insert((req.candidate.clone(), vote), req.clone());
        true
    }

    /// The embargo is over: the requests it held are judged now, as if they had just
    /// arrived (a vote still waits for its persistence before it leaves).
    pub(super) fn release_embargoed(&mut self, now: Instant) {
        if now < self.no_votes_until || self.embargoed.is_empty() {
            return;
        }
        for ((candidate, vote), req) in std::mem::take(&mut self.embargoed) {
            if !self.members.contains_key(&candidate) {
                continue;
            }
            if vote {
                self.on_vote_request(now, &req);
            } else {
                self.on_pre_vote(now, &req);
            }
        }
    }

    /// Priority deference, a liveness rule: within [`DEFER_WINDOW`] election timeouts of
    /// last having a primary (or of starting), this node neither starts a pre-vote nor
    /// grants one to `candidate` while it hears, within an election timeout, an eligible
    /// voter that hears it too and outranks `candidate` (priority, then the lower id; itself
    /// included when it is eligible) and could win: a voter of its set whose lease a
    /// majority can back. (Not "holding a set at least as new": during a bootstrap the
    /// preferred node may announce its set a heartbeat late.) So the highest-priority eligible node wins the first
    /// election of a cold start (and of a failover) by rule, whatever the start skew.
    /// Votes, promises and leases never read it.
    pub(super) fn defers(&self, now: Instant, candidate: &NodeId) -> bool {
        let window = self.cfg.timing.election_timeout * DEFER_WINDOW;
        if now >= self.had_primary + window {
            return false;
        }
        let rank_of = |id: &NodeId| -> (u32, std::cmp::Reverse<NodeId>) {
            let priority = if *id == self.cfg.node {
                self.cfg.priority
            } else {
                self.members
                    .get(id)
                    .and_then(|m| m.node_state.as_ref())
                    .map_or(0, |s| s.priority)
            };
            (priority, std::cmp::Reverse(id.clone()))
        };
        let theirs = rank_of(candidate);
        if *candidate != self.cfg.node
            && self.eligible
            && self.in_the_set()
            && rank_of(&self.cfg.node) > theirs
        {
            return true;
        }
        self.members.values().any(|m| {
            m.id != *candidate
                && m.state == MemberState::Alive
                // Two-way: a node that does not hear us could not win our vote either.
                && self.hears_both_ways(m, now)
                && m.mode == Mode::Member
                && m.health.has(HealthBits::ELIGIBLE)
                && self.counts(&m.id)
                && self.could_hold_a_lease(m)
                && m.node_state.is_some()
                && rank_of(&m.id) > theirs
        })
    }

    /// Whether this node may grant `candidate` a (pre-)vote now: not just started, not
    /// primary, and not bound by a promise to another node — unless that node handed
    /// over to `candidate`.
    pub(super) fn votes_open(
        &self,
        now: Instant,
        candidate: &NodeId,
        transfer_from: Option<&NodeId>,
    ) -> bool {
        if now < self.no_votes_until || self.is_primary_role() || !self.in_the_set() {
            return false;
        }
        match &self.promise {
            Some((to, until)) if now < *until && to != candidate => {
                transfer_from == Some(to)
                    || self.cfg.fault == Some(InjectedFault::IgnoreLeasePromise)
            }
            _ => true,
        }
    }

    pub(super) fn on_pre_vote(&mut self, now: Instant, req: &VoteRequest) {
        if self.hold_in_embargo(now, req, false) {
            return;
        }
        let own_promise = lease::promise_ms(self.cfg.timing.election_timeout);
        let fits = self.covers(own_promise, req.lease_ms);
        if !fits {
            self.report_timing(now, &req.candidate, req.lease_ms, own_promise);
        }
        let granted = req.term > self.hard.term
            && fits
            && self.up_to_date(req)
            && self.votes_open(now, &req.candidate, req.transfer_from.as_ref())
            && !self.defers(now, &req.candidate);
        self.transmits.push_back(Transmit {
            to: req.candidate.clone(),
            datagram: Datagram::PreVoteReply(VoteReply {
                term: self.hard.term,
                voter: self.cfg.node.clone(),
                granted,
                req: req.req,
                promise_ms: own_promise,
            }),
        });
    }

    pub(super) fn on_vote_request(&mut self, now: Instant, req: &VoteRequest) {
        if self.hold_in_embargo(now, req, true) {
            return;
        }
        let reply = |node: &Self, granted: bool| Transmit {
            to: req.candidate.clone(),
            datagram: Datagram::VoteReply(VoteReply {
                term: node.hard.term,
                voter: node.cfg.node.clone(),
                granted,
                req: req.req,
                promise_ms: lease::promise_ms(node.cfg.timing.election_timeout),
            }),
        };
        let own_promise = lease::promise_ms(self.cfg.timing.election_timeout);
        let fits = self.covers(own_promise, req.lease_ms);
        if !fits {
            self.report_timing(now, &req.candidate, req.lease_ms, own_promise);
        }
        if req.term < self.hard.term
            || !fits
            || !self.up_to_date(req)
            || !self.votes_open(now, &req.candidate, req.transfer_from.as_ref())
        {
            let t = reply(self, false);
            self.transmits.push_back(t);
            return;
        }
        if req.term > self.hard.term {
            self.adopt_term(now, req.term);
        }
        match &self.hard.voted_for {
            Some(v) if *v != req.candidate => {
                let t = reply(self, false);
                self.transmits.push_back(t);
            }
            _ => {
                self.hard.voted_for = Some(req.candidate.clone());
                self.promise = Some((
                    req.candidate.clone(),
                    now + self.cfg.timing.election_timeout,
                ));
                // A vote is a promise: any pre-candidacy of ours is over.
                if matches!(self.role, Role::PreCandidate { .. }) {
                    self.role = Role::Follower;
                }
                self.reset_election_timer(now);
                let t = reply(self, true);
                // Persist before you speak.
                self.held.push_back((self.hard.clone(), t));
            }
        }
    }

    /// Raft's "at least as up to date", over the member set: a candidate holding an older
    /// set than this voter must not win (a majority of a set it never saw may have moved
    /// on without it).
    fn up_to_date(&self, req: &VoteRequest) -> bool {
        req.config >= self.hard.members.stamp
            || self.cfg.fault == Some(InjectedFault::OwnListMajority)
    }

    pub(super) fn on_pre_vote_reply(&mut self, now: Instant, r: &VoteReply) {
        if r.term > self.hard.term && !r.granted {
            // The voter is ahead of us: catch up, and stop asking.
            self.adopt_term(now, r.term);
            return;
        }
        let majority = majority(self.voter_count());
        let counts = self.counts(&r.voter);
        if let Role::PreCandidate { req, granted, .. } = &mut self.role
            && r.req.0 == *req
            && r.granted
            && counts
        {
            granted.insert(r.voter.clone());
            let bound = self
                .promise
                .as_ref()
                .is_some_and(|(to, until)| now < *until && *to != self.cfg.node);
            if bound {
                // We promised our vote to someone since asking: that promise wins.
                self.role = Role::Follower;
                self.reset_election_timer(now);
            } else if granted.len() + 1 >= majority {
                self.start_campaign(now, None);
            }
        }
    }

    pub(super) fn on_vote_reply(&mut self, now: Instant, r: &VoteReply) {
        if r.term > self.hard.term {
            self.adopt_term(now, r.term);
            return;
        }
        // A vote seeds the lease: count it only if the voter's promise outlasts it.
        let own_lease = lease::lease_ms(self.cfg.timing.lease);
        let fits = self.covers(r.promise_ms, own_lease);
        let counts = self.counts(&r.voter);
        if let Role::Candidate {
            term,
            req,
            sent,
            granted,
            ..
        } = &mut self.role
            && r.req.0 == *req
            && r.term == *term
            && r.granted
            && counts
        {
            if fits {
                granted.insert(r.voter.clone(), *sent);
                self.try_win(now);
            } else {
                self.report_timing(now, &r.voter, own_lease, r.promise_ms);
            }
        }
    }

    pub(super) fn on_timeout_now(&mut self, now: Instant, t: &TimeoutNow) {
        // From the primary we follow, or from the node we just voted in (its first
        // heartbeat may not have reached us yet).
        let from_primary = self.leader.as_ref() == Some(&t.from)
            || (self.leader.is_none() && self.hard.voted_for.as_ref() == Some(&t.from));
        if t.term == self.hard.term
            && from_primary
            && self.in_the_set()
            && self.eligible
            && !self.shutting_down
            && !self.freeze.frozen
        {
            self.start_campaign(now, Some(t.from.clone()));
        }
    }

    pub(super) fn on_transfer_request(&mut self, now: Instant, r: &TransferRequest) {
        if self.is_primary_role() {
            self.request_transfer(now, r.to.clone());
        }
    }

    fn start_pre_vote(&mut self, now: Instant) {
        let blocked = !self.eligible
            || !self.in_the_set()
            || self.shutting_down
            || self.freeze.frozen
            || self
                .transfer
                .as_ref()
                .is_some_and(|(_, until)| now < *until);
        if blocked {
            self.reset_election_timer(now);
            return;
        }
        if self.defers(now, &self.cfg.node.clone()) {
            // A better node is there to campaign: leave it the first go.
            self.reset_election_timer(now);
            return;
        }
        if let Some((_, until)) = &self.promise
            && now < *until
        {
            // Still bound to a primary: look again when the promise runs out.
            let until = *until;
            self.election_deadline = until + self.jitter();
            return;
        }
        let Some(term) = self.next_term() else {
            self.reset_election_timer(now);
            return;
        };
        self.req_seq += 1;
        self.role = Role::PreCandidate {
            req: self.req_seq,
            granted: BTreeSet::new(),
            until: now + self.randomized_timeout(),
        };
        if majority(self.voter_count()) == 1 {
            self.start_campaign(now, None);
            return;
        }
        let req = VoteRequest {
            term,
            candidate: self.cfg.node.clone(),
            transfer_from: None,
            req: Seq(self.req_seq),
            lease_ms: lease::lease_ms(self.cfg.timing.lease),
            config: self.hard.members.stamp,
        };
        for to in self.reachable_voters() {
            self.transmits.push_back(Transmit {
                to,
                datagram: Datagram::PreVote(req.clone()),
            });
        }
    }

    fn start_campaign(&mut self, now: Instant, transfer_from: Option<NodeId>) {
        let Some(next) = self.next_term() else {
            self.role = Role::Follower;
            self.reset_election_timer(now);
            return;
        };
        self.hard.term = next;
        self.hard.voted_for = Some(self.cfg.node.clone());
        self.leader = None;
        self.req_seq += 1;
        let term = self.hard.term;
        self.role = Role::Candidate {
            term,
            req: self.req_seq,
            sent: now,
            granted: BTreeMap::new(),
            until: now + self.randomized_timeout(),
        };
        self.events.push_back(Event::ElectionStarted {
            term,
            transfer: transfer_from.is_some(),
        });
        let req = VoteRequest {
            term,
            candidate: self.cfg.node.clone(),
            transfer_from,
            req: Seq(self.req_seq),
            lease_ms: lease::lease_ms(self.cfg.timing.lease),
            config: self.hard.members.stamp,
        };
        for to in self.reachable_voters() {
            // Our own vote must be durable before we ask for others'.
            self.held.push_back((
                self.hard.clone(),
                Transmit {
                    to,
                    datagram: Datagram::Vote(req.clone()),
                },
            ));
        }
        self.try_win(now);
    }

    /// Becomes primary once a majority (our own durable vote included) granted.
    fn try_win(&mut self, now: Instant) {
        let Role::Candidate { term, granted, .. } = &self.role else {
            return;
        };
        let own_vote_durable = self.persisted.term == *term
            && self.persisted.voted_for.as_ref() == Some(&self.cfg.node);
        // Only a voter of its own set may win (a node outside it counts for nothing).
        if !own_vote_durable
            || !self.in_the_set()
            || granted.len() + 1 < majority(self.voter_count())
        {
            return;
        }
        let term = *term;
        let acks = granted.clone();
        self.role = Role::Primary {
            acks,
            lease_until: now,
        };
        self.leader = Some(self.cfg.node.clone());
        self.transfer = None;
        self.had_primary = now;
        self.update_lease(now);
        self.events.push_back(Event::BecamePrimary { term });
        // Announce at once; the heartbeats are what voters acknowledge.
        for m in self.members.values_mut() {
            m.next_heartbeat = now;
        }
    }

    /// The term after this node's, or `None` at `u64::MAX` (reported once): the term is
    /// a fencing token, so it must never wrap to a value already used. Such a node
    /// stays a voter but never campaigns again.
    pub(super) fn next_term(&mut self) -> Option<Term> {
        let next = self.hard.term.0.checked_add(1).map(Term);
        if next.is_none() && !self.term_exhausted {
            self.term_exhausted = true;
            self.events.push_back(Event::TermExhausted {
                term: self.hard.term,
            });
        }
        next
    }

    fn reachable_voters(&self) -> Vec<NodeId> {
        self.members
            .values()
            .filter(|m| m.state != MemberState::Left)
            .map(|m| m.id.clone())
            .collect()
    }

    /// Election timeout in [T, 1.3T): the higher this node ranks by priority among the
    /// alive eligible nodes, the earlier in that range.
    fn randomized_timeout(&mut self) -> Duration {
        let t = self.cfg.timing.election_timeout;
        let mine = (self.cfg.priority, std::cmp::Reverse(self.cfg.node.clone()));
        let contenders: Vec<_> = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Alive && m.health.has(HealthBits::ELIGIBLE))
            // Only voters of the set campaign: a non-voter or removed node takes no slot.
            .filter(|m| self.counts(&m.id))
            .map(|m| {
                (
                    m.node_state.as_ref().map(|s| s.priority).unwrap_or(0),
                    std::cmp::Reverse(m.id.clone()),
                )
            })
            .collect();
        let rank = contenders.iter().filter(|c| **c > mine).count();
        let slots = (contenders.len() + 1) as f64;
        let u: f64 = self.rng.random();
        // A slot must outlast a round trip to the voters, or two candidates a slot apart
        // still split the vote on a slow link: it widens with the slowest RTT seen.
        let rtt = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Alive && self.counts(&m.id))
            .filter_map(|m| m.rtt)
            .max()
            .unwrap_or_default();
        // Capped: an RTT measured across a pause is not the link's.
        let slot = t.mul_f64(0.3 / slots).max((rtt * 2).min(t.mul_f64(0.3)));
        t + slot.mul_f64(rank as f64 + u)
    }

    fn jitter(&mut self) -> Duration {
        self.cfg
            .timing
            .election_timeout
            .mul_f64(0.3 * self.rng.random::<f64>())
    }

    pub(super) fn reset_election_timer(&mut self, now: Instant) {
        self.election_deadline = now + self.randomized_timeout();
    }

    /// Timer-driven election steps.
    pub(super) fn election_tick(&mut self, now: Instant) {
        if let Some((_, until)) = &self.transfer
            && now >= *until
        {
            self.transfer = None;
        }
        match &self.role {
            Role::Primary { .. } if !self.foreign.is_empty() => {
                self.step_down(now, "foreign-cluster");
            }
            Role::Primary { .. } => {
                self.had_primary = now;
                self.update_lease(now);
                // Without a lease it answers no /primary; it keeps the role (and takes
                // late acknowledgements) for an election timeout before giving up.
                if let Role::Primary { lease_until, .. } = &self.role
                    && now >= *lease_until + self.cfg.timing.election_timeout
                {
                    self.step_down(now, "lost-quorum");
                    return;
                }
                self.maybe_preempt(now);
                self.retry_handover(now);
            }
            Role::PreCandidate { until, .. } => {
                if now >= *until {
                    self.role = Role::Follower;
                    self.reset_election_timer(now);
                }
            }
            Role::Candidate { until, .. } => {
                if now >= *until {
                    // A split vote (candidates that timed out within a round trip of
                    // each other). The candidacy already lasted a staggered election
                    // timeout; the retry comes after a fresh random share of half of one,
                    // so the candidates part (Raft's randomised retry) without waiting a
                    // whole timeout again.
                    self.role = Role::Follower;
                    self.election_deadline = now
                        + self
                            .cfg
                            .timing
                            .election_timeout
                            .mul_f64(0.5 * self.rng.random::<f64>());
                }
            }
            Role::Follower => {
                if now >= self.election_deadline {
                    self.start_pre_vote(now);
                }
            }
        }
    }

    /// Whether `m` has acknowledged this node as primary of the current term: only such
    /// a node acts on our TimeoutNow.
    fn follows_me(&self, m: &super::Member) -> bool {
        m.term == self.hard.term && m.believed_primary.as_ref() == Some(&self.cfg.node)
    }

    /// With `preempt`, hand over to a higher-priority node that has stayed eligible for
    /// `preempt_delay`.
    fn maybe_preempt(&mut self, now: Instant) {
        let Some(delay) = self.cfg.preempt else {
            return;
        };
        if self.freeze.frozen || self.shutting_down {
            return;
        }
        let mine = self.cfg.priority;
        let better = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Alive && m.mode == Mode::Member)
            .filter(|m| self.counts(&m.id) && m.config >= self.hard.members.stamp)
            .filter(|m| self.follows_me(m))
            .filter(|m| self.could_hold_a_lease(m))
            .filter(|m| {
                m.eligible_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= delay)
            })
            // Alive *now*, both ways: the failure detector can take seconds to suspect a
            // node whose heartbeats it learnt across a pause, and a silent node would
            // neither hear the TimeoutNow nor be "seen alive without a break".
            .filter(|m| self.hears_both_ways(m, now))
            .filter_map(|m| m.node_state.as_ref().map(|s| (s.priority, m.id.clone())))
            .filter(|(p, _)| *p > mine)
            .max();
        if let Some((_, to)) = better {
            self.transfer_to(now, to, TransferReason::Preempt);
        }
    }

    /// Whether `m` was heard within an election timeout and its latest heartbeat says it
    /// heard this node within one too.
    fn hears_both_ways(&self, m: &super::Member, now: Instant) -> bool {
        let t = self.cfg.timing.election_timeout;
        m.last_heard()
            .is_some_and(|h| now.saturating_duration_since(h) < t)
            && m.heard_us.is_some_and(|h| h < t)
    }

    /// An ineligible primary that could not hand over (frozen, or nobody to take it)
    /// does so as soon as it can.
    fn retry_handover(&mut self, now: Instant) {
        if self.eligible || self.freeze.frozen || self.shutting_down || self.transfer.is_some() {
            return;
        }
        if !matches!(self.role, Role::Primary { .. }) {
            return;
        }
        if let Some(to) = self.best_successor(None) {
            self.transfer_to(now, to, TransferReason::Ineligible);
        }
    }

    /// Instants at which the election needs a tick.
    pub(super) fn election_timers(&self) -> impl Iterator<Item = Instant> + '_ {
        let role_timer = match &self.role {
            Role::Primary { lease_until, .. } => {
                Some(*lease_until + self.cfg.timing.election_timeout)
            }
            Role::PreCandidate { until, .. } | Role::Candidate { until, .. } => Some(*until),
            Role::Follower => Some(self.election_deadline),
        };
        let embargo_ends = (!self.embargoed.is_empty()).then_some(self.no_votes_until);
        role_timer.into_iter().chain(embargo_ends)
    }
}
