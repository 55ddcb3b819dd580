//! The member set's changes, as the node drives them: bootstrap, adding and removing
//! voters, committing a change, rejoining after a lost vote record; and who talks to
//! whom under the set (`talks_to`: a non-voter only to the voters, so a fleet costs
//! nodes × voters), which `watch_tick` re-applies after every change. The set
//! arithmetic itself is pure and lives in [`crate::core::voters`].

use std::time::{Duration, Instant};

use proto::{
    ConfigStamp, Datagram, MemberReply, MemberRequest, MemberSlot, Membership, NodeId, Seq, Term,
};

use super::Node;
use crate::core::contract::{Event, InjectedFault, LostVote, MembersProblem, Transmit};
use crate::core::membership::MemberState;
use crate::core::quorum::majority;
use crate::core::voters::{BOOTSTRAP_WAIT, InFlight, MemberChange, apply, bootstrap_set, describe};

impl Node {
    /// The agreed member set this node holds (adopted, perhaps not yet durable).
    pub fn agreed(&self) -> &Membership {
        &self.hard.members
    }

    /// Why this node cannot vote or campaign now, if it cannot.
    pub fn members_problem(&self) -> Option<MembersProblem> {
        if self.cfg.fault == Some(InjectedFault::OwnListMajority) {
            return None;
        }
        if self.hard.members.stamp.is_none() {
            return Some(
                self.bootstrap_status
                    .clone()
                    .unwrap_or(MembersProblem::Bootstrapping {
                        seen: 1,
                        needed: majority(self.cfg.bootstrap.len()),
                    }),
            );
        }
        if self
            .hard
            .members
            .slot(&self.cfg.node, &self.cfg.advertise)
            .is_none()
        {
            return Some(MembersProblem::Removed);
        }
        if !self.foreign.is_empty() {
            return Some(MembersProblem::ForeignCluster {
                peers: self.foreign.iter().map(|n| n.to_string()).collect(),
            });
        }
        self.rejoining.then(|| {
            let (fresh, needed) = self.fresh_voters();
            MembersProblem::Rejoining {
                cause: self.vote_lost.clone().unwrap_or(LostVote::EmptyStateDir),
                waiting_for: self.unheard_voters(),
                settled: self.rejoin_mark.is_some(),
                fresh,
                needed,
            }
        })
    }

    /// The other voters of this node's set (ids, or addresses of unnamed slots) it has
    /// not heard a heartbeat from since it started.
    fn unheard_voters(&self) -> Vec<String> {
        let is = |slot: &MemberSlot, id: &NodeId, addr: &str| match &slot.node {
            Some(n) => n == id,
            None => slot.addr == addr,
        };
        self.hard
            .members
            .members
            .iter()
            .filter(|s| s.voter && !is(s, &self.cfg.node, &self.cfg.advertise))
            .filter(|s| {
                !self
                    .members
                    .values()
                    .any(|m| m.last_heard().is_some() && is(s, &m.id, &m.addr))
            })
            .map(|s| {
                s.node
                    .as_ref()
                    .map_or_else(|| s.addr.clone(), |n| n.to_string())
            })
            .collect()
    }

    /// Starts rejoining (the driver said its vote is lost, or it learned a set naming it
    /// with no vote record): no votes, no campaign, until `rejoin_tick` takes a floor.
    /// Said once, with what it waits for. `since` is when it started (the settling wait
    /// runs from there).
    pub(super) fn start_rejoin(&mut self, since: Instant) {
        if self.cfg.fault == Some(InjectedFault::ForgetLostVote) || self.rejoining {
            return;
        }
        let cause = self
            .vote_lost
            .get_or_insert(LostVote::EmptyStateDir)
            .clone();
        self.rejoining = true;
        self.rejoin_since = since;
        self.rejoin_mark = None;
        self.events.push_back(Event::Rejoining {
            cause,
            voters: self.unheard_voters(),
        });
    }

    /// Other voters heard afresh (a heartbeat echoing one of ours sent at or after
    /// `rejoin_mark`), and how many are enough: a majority of the other voters.
    fn fresh_voters(&self) -> (usize, usize) {
        let others = self
            .voter_count()
            .saturating_sub(usize::from(self.is_voter()));
        let fresh = match self.rejoin_mark {
            Some(mark) => self
                .members
                .values()
                .filter(|m| self.counts(&m.id) && m.echoed.is_some_and(|t| t >= mark))
                .count(),
            None => 0,
        };
        (fresh, majority(others))
    }

    /// How long a candidacy this node voted in before it lost its record may still run
    /// after it started: a candidate gives up after its randomised timeout, at most
    /// `election_timeout × (1 + 0.3 × voters)` (`randomized_timeout`: the base, plus at
    /// most one slot of at most 0.3 × the timeout per contender), over the longest
    /// election timeout it knows (its own, and every voter's announced promise);
    /// doubled for margin.
    fn rejoin_settle(&self) -> Duration {
        let longest = self
            .members
            .values()
            .filter(|m| self.counts(&m.id))
            .filter_map(|m| m.timing.map(|(_, promise_ms)| promise_ms))
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .fold(self.cfg.timing.election_timeout, Duration::max);
        let voters = self.voter_count() as f64;
        longest.mul_f64(2.0 * (1.0 + 0.3 * voters))
    }

    /// Rejoining without a vote record: once every other voter has been heard, or a
    /// majority of the other voters has been heard afresh after the settling wait, take
    /// the highest term heard (or its own) as voted in. The argument is in
    /// docs/protocol.md ("A lost vote record"): a vote this node gave was in a term its
    /// candidate still holds (so hearing every voter covers it); a term anyone won with
    /// it is held by the rest of that winning majority, which any majority of the other
    /// voters meets, once that candidacy is over.
    pub(super) fn rejoin_tick(&mut self, now: Instant, wall: proto::WallMicros) {
        if !self.rejoining {
            return;
        }
        if self.rejoin_mark.is_none()
            && now.saturating_duration_since(self.rejoin_since) >= self.rejoin_settle()
        {
            // Heartbeats sent from now on carry `wall` or later: an echo of one proves
            // the peer spoke after every candidacy our lost vote may have fed was over.
            self.rejoin_mark = Some(wall);
        }
        let (fresh, needed) = self.fresh_voters();
        let all = self.unheard_voters().is_empty();
        if !all && (self.rejoin_mark.is_none() || fresh < needed) {
            return;
        }
        let heard: Vec<Term> = self
            .members
            .values()
            .filter(|m| self.counts(&m.id) && m.last_heard().is_some())
            .map(|m| m.term)
            .collect();
        let floor = heard
            .iter()
            .copied()
            .max()
            .unwrap_or_default()
            .max(self.hard.term);
        if floor > self.hard.term {
            self.adopt_term(now, floor);
        }
        if self.hard.voted_for.is_none() {
            self.hard.voted_for = Some(self.cfg.node.clone());
        }
        self.rejoining = false;
        self.vote_lost = None;
        self.rejoin_mark = None;
        self.events.push_back(Event::Rejoined {
            floor,
            heard: heard.len(),
        });
    }

    /// Holding no set yet, it saw a listed node with another bootstrap list (what its
    /// state publishes as `lists_disagree`). Cheap: asked on every driver turn.
    pub fn lists_disagree(&self) -> bool {
        self.hard.members.stamp.is_none()
            && matches!(
                self.bootstrap_status,
                Some(MembersProblem::ListsDisagree { .. })
            )
    }

    /// The change the primary is committing, if any.
    pub fn member_change_in_flight(&self) -> Option<&str> {
        self.in_flight.as_ref().map(|c| c.what.as_str())
    }

    /// Whether this node votes in the set it holds.
    pub(super) fn is_voter(&self) -> bool {
        // Without a set (bootstrapping), the configured list stands in for counting who
        // is up; such a node grants and wins nothing (`in_the_set`).
        if self.cfg.fault == Some(InjectedFault::OwnListMajority)
            || self.hard.members.stamp.is_none()
        {
            return true;
        }
        self.hard
            .members
            .is_voter(&self.cfg.node, &self.cfg.advertise)
    }

    /// Whether a vote or acknowledgement from `id` counts towards a majority of this
    /// node's set. The one place that says so.
    pub(super) fn counts(&self, id: &NodeId) -> bool {
        let Some(m) = self.members.get(id) else {
            return false;
        };
        if self.cfg.fault == Some(InjectedFault::OwnListMajority)
            || self.hard.members.stamp.is_none()
        {
            return self.cfg.bootstrap.contains(&m.addr);
        }
        self.hard.members.is_voter(id, &m.addr)
    }

    /// Whether this node exchanges heartbeats with `id`, and so watches it with its
    /// failure detector: a voter talks to every member, a non-voter only to the voters
    /// of the set it holds. The one place that says so.
    ///
    /// Why a fleet costs nodes × voters, not nodes²: nothing a non-voter needs travels
    /// between two non-voters. Votes, lease acknowledgements and task grants count only
    /// from voters (`counts`), a suspicion is confirmed only by voters
    /// (`suspicion_confirmed`), and a new set reaches a non-voter from the primary, a
    /// voter. For two nodes holding the same set the rule is symmetric (each talks to
    /// the other iff either votes), so neither watches a silence the other chose. A
    /// node without a set (bootstrapping, or not added yet) talks to everyone: it has a
    /// set to find. A stale set converges: voters talk to everyone, so the primary's
    /// heartbeats bring a non-voter its new set, and then its new peers.
    pub(super) fn talks_to(&self, id: &NodeId) -> bool {
        self.cfg.fault == Some(InjectedFault::TalkToEveryone) || self.is_voter() || self.counts(id)
    }

    /// `talks_to` (the one rule, and why, is there) asked of an address: whom the
    /// driver dials, before any link names a node there. Everyone on a voter or without
    /// a set; else the voters of the set it holds.
    pub fn talks_to_addr(&self, addr: &str) -> bool {
        self.cfg.fault == Some(InjectedFault::TalkToEveryone)
            || self.is_voter()
            || self
                .hard
                .members
                .members
                .iter()
                .any(|s| s.voter && s.addr == addr)
    }

    /// The slots of the set this node holds that it does not talk to (the rule of
    /// `talks_to`, asked of slots, which name no member yet when no
    /// link was ever made): on a non-voter, the other non-voters; else none.
    pub fn unwatched_slots(&self) -> impl Iterator<Item = &MemberSlot> {
        let all = self.is_voter() || self.cfg.fault == Some(InjectedFault::TalkToEveryone);
        let me = self.hard.members.slot(&self.cfg.node, &self.cfg.advertise);
        self.hard
            .members
            .members
            .iter()
            .filter(move |s| !all && !s.voter && me.is_none_or(|m| m.addr != s.addr))
    }

    /// Whether the heartbeats to `id` carry the lease when one end is primary: both
    /// ends vote. A non-voter's acknowledgement never counts, so the primary owes it no
    /// lease-rate heartbeats, and a non-voter none to the primary.
    pub(super) fn lease_link(&self, id: &NodeId) -> bool {
        self.is_voter() && self.counts(id)
    }

    /// Keeps each member's `watched` flag equal to [`talks_to`](Self::talks_to), on
    /// every timer and before every batch of heartbeats (a set changes on fetches and
    /// persists, between them; a steady follower's heartbeats may all leave in the
    /// wake-ups answering its primary, never on its own timer). A member
    /// watched again starts afresh ([`Member::rewatch`](crate::core::membership::Member)):
    /// its silence while unwatched was chosen, not a failure, and its old figures are stale.
    pub(super) fn watch_tick(&mut self, now: Instant) {
        let interval = self.cfg.timing.heartbeat_interval;
        let threshold = self.cfg.timing.phi_threshold;
        if self.is_voter() || self.cfg.fault == Some(InjectedFault::TalkToEveryone) {
            // `talks_to` says yes to every member: every tick on a voter, with nothing
            // to look up.
            for m in self.members.values_mut().filter(|m| !m.watched) {
                m.rewatch(now, interval, threshold);
                m.next_heartbeat = now;
            }
            return;
        }
        let changed: Vec<(NodeId, bool)> = self
            .members
            .values()
            .filter(|m| m.watched != self.talks_to(&m.id))
            .map(|m| (m.id.clone(), !m.watched))
            .collect();
        for (id, watched) in changed {
            let Some(m) = self.members.get_mut(&id) else {
                continue;
            };
            if watched {
                m.rewatch(now, interval, threshold);
                m.next_heartbeat = now;
            } else {
                m.watched = false;
            }
        }
    }

    /// How many voters a majority is taken of.
    pub(super) fn voter_count(&self) -> usize {
        if self.cfg.fault == Some(InjectedFault::OwnListMajority)
            || self.hard.members.stamp.is_none()
        {
            return self.cfg.bootstrap.len();
        }
        self.hard.members.voters()
    }

    /// May grant votes and campaign: holds a set in which it votes.
    pub(super) fn in_the_set(&self) -> bool {
        if self.cfg.fault == Some(InjectedFault::OwnListMajority) {
            return true;
        }
        !self.hard.members.stamp.is_none()
            && self.is_voter()
            && !self.rejoining
            && self.foreign.is_empty()
    }

    /// A fetched state from `from`: learn its member set if this node should.
    pub(super) fn member_state(&mut self, from: &NodeId) {
        let Some(m) = self.members.get(from) else {
            return;
        };
        let Some(state) = m.node_state.as_ref() else {
            return;
        };
        let theirs = &state.members;
        if self.cfg.fault == Some(InjectedFault::OwnListMajority) || theirs.stamp.is_none() {
            return;
        }
        let mine = self.hard.members.stamp;
        if !mine.is_none() {
            // A member of our set holding a set of another cluster: two clusters were
            // formed (different bootstrap lists kept apart at install, or lost voters
            // back after force-new-cluster). This node cannot reconcile that: it grants
            // nothing and stands down until the other side is fixed.
            let ours = self.counts(from) || self.hard.members.slot(from, &m.addr).is_some();
            if ours && theirs.origin != self.hard.members.origin {
                if self.foreign.insert(from.clone()) {
                    self.events
                        .push_back(Event::ForeignCluster { peer: from.clone() });
                }
            } else {
                self.foreign.remove(from);
            }
        }
        if mine.is_none() {
            if let Some(slot) = theirs.slot(&self.cfg.node, &self.cfg.advertise) {
                // A voter starting without a vote record may have voted before its
                // `state_dir` was lost (or was added before its first start): see
                // `rejoin_tick`. One whose `election` file survived knows its votes.
                // Not "its term is still 0": it may have taken a peer's term from a
                // heartbeat before it learned the set, and then voted with it.
                let unproven = self.vote_lost.is_some() || self.started_empty;
                let voter = slot.voter;
                let set = theirs.clone();
                self.adopt(set);
                if voter && unproven {
                    self.start_rejoin(self.started);
                }
            } else {
                self.bootstrap_status = Some(MembersProblem::NotAMember {
                    held_by: from.clone(),
                });
            }
            return;
        }
        let from_primary = self.leader.as_ref() == Some(from)
            && m.term == self.hard.term
            && !self.is_primary_role();
        // Rejoining after an empty start, it has granted nothing yet: it takes the newest
        // set any peer holds (a stale one could leave it refusing the only candidates).
        if (from_primary || self.rejoining)
            && theirs.origin == self.hard.members.origin
            && theirs.stamp > mine
        {
            let set = theirs.clone();
            self.adopt(set);
        }
    }

    fn adopt(&mut self, set: Membership) {
        self.events.push_back(Event::MembersChanged {
            stamp: set.stamp,
            voters: describe(&set),
        });
        self.hard.members = set;
        self.bootstrap_status = None;
    }

    /// Whether a heartbeat from `from` announcing `stamp` means this node should fetch
    /// its state to learn a newer set.
    pub(super) fn wants_set_from(&self, from: &NodeId, stamp: ConfigStamp) -> bool {
        if stamp.is_none() || stamp <= self.hard.members.stamp {
            return false;
        }
        self.hard.members.stamp.is_none() || self.rejoining || self.leader.as_ref() == Some(from)
    }

    /// With no set yet: bootstrap one when every listed node is up with an equal list, or
    /// a majority is and [`BOOTSTRAP_WAIT`] has passed with no listed node disagreeing.
    pub(super) fn bootstrap_tick(&mut self, now: Instant) {
        if !self.hard.members.stamp.is_none()
            || self.cfg.fault == Some(InjectedFault::OwnListMajority)
        {
            return;
        }
        if matches!(
            self.bootstrap_status,
            Some(MembersProblem::NotAMember { .. })
        ) {
            return;
        }
        // Judged afresh every time from the last state seen of each listed node, so it
        // lasts until that node shows an equal list (a corrected file, reloaded).
        let listed = self.cfg.bootstrap.len();
        let mut equal = 1;
        let (mut differs, mut heard) = (None, None);
        for m in self.members.values() {
            if !self.cfg.bootstrap.contains(&m.addr) {
                continue;
            }
            let Some(state) = m.node_state.as_ref() else {
                continue;
            };
            if !state.members.stamp.is_none() {
                // It holds a set: this node learns it from its state (member_state).
                return;
            }
            if state.peers_hash != self.cfg.bootstrap_hash {
                differs.get_or_insert_with(|| m.id.clone());
            } else if state.lists_disagree {
                heard.get_or_insert_with(|| m.id.clone());
            } else if m.state == MemberState::Alive {
                equal += 1;
            }
        }
        let blocked = match (differs, heard) {
            (Some(node), _) => Some(MembersProblem::ListsDisagree { node }),
            (None, Some(node)) => Some(MembersProblem::HeardOfDisagreement { node }),
            (None, None) => None,
        };
        if let Some(problem) = blocked {
            self.bootstrap_status = Some(problem);
            return;
        }
        if matches!(
            self.bootstrap_status,
            Some(MembersProblem::ListsDisagree { .. } | MembersProblem::HeardOfDisagreement { .. })
        ) {
            // Resolved: wait again before bootstrapping without every listed node.
            self.started = now;
        }
        let needed = majority(listed);
        self.bootstrap_status = Some(MembersProblem::Bootstrapping {
            seen: equal,
            needed,
        });
        let waited = now.saturating_duration_since(self.started) >= BOOTSTRAP_WAIT;
        if equal == listed || (equal >= needed && waited) {
            let set = bootstrap_set(&self.cfg.bootstrap);
            self.adopt(set);
        }
    }

    /// Writes down the ids of unnamed bootstrap slots whose node this primary knows (by
    /// its address): content only, no voter changes.
    fn pin_ids(&self, set: &mut Membership) {
        for slot in set.members.iter_mut().filter(|s| s.node.is_none()) {
            if slot.addr == self.cfg.advertise {
                slot.node = Some(self.cfg.node.clone());
            } else if let Some(m) = self.members.values().find(|m| m.addr == slot.addr) {
                slot.node = Some(m.id.clone());
            }
        }
    }

    /// Before its first change, a primary re-stamps the set it won with in its own term
    /// (writing down ids it knows) and commits that: then no set made in an earlier term
    /// and never committed can come back (the fix for Ongaro's 2015 flaw). Done on
    /// demand, not at every election, so a fresh primary can hand over at once.
    fn stamp_own_term(&mut self, steps: std::collections::VecDeque<MemberChange>) -> String {
        let term = self.hard.term;
        let mut next = self.hard.members.clone();
        self.pin_ids(&mut next);
        next.stamp = ConfigStamp {
            term,
            index: next.stamp.index + 1,
        };
        let what = format!("member set of term {}", term.0);
        self.in_flight = Some(InFlight {
            stamp: next.stamp,
            what: what.clone(),
            then: steps,
        });
        let stamp = next.stamp;
        self.events.push_back(Event::MembersChanged {
            stamp,
            voters: describe(&next),
        });
        self.hard.members = next;
        format!("{what} ({stamp}) is being committed first")
    }

    /// Whether a majority of this node's voters hold `stamp` durably (itself included).
    pub(super) fn committed(&self, stamp: ConfigStamp) -> bool {
        let mine = u32::from(self.is_voter() && self.persisted.members.stamp >= stamp) as usize;
        let others = self
            .members
            .values()
            .filter(|m| m.config >= stamp && self.counts(&m.id))
            .count();
        mine + others >= majority(self.voter_count())
    }

    /// Primary: moves a change along once the set it made is committed.
    pub(super) fn members_tick(&mut self, now: Instant) {
        let Some(flight) = self.in_flight.as_ref() else {
            return;
        };
        if !self.committed(flight.stamp) {
            return;
        }
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        self.events.push_back(Event::MembersCommitted {
            stamp: flight.stamp,
            what: flight.what,
        });
        let mut steps = flight.then;
        if let Some(next) = steps.pop_front()
            && let Err(reason) = self.start_change(now, next.clone(), steps)
        {
            self.events.push_back(Event::Refused {
                command: format!("member {next}"),
                reason,
            });
        }
    }

    /// An operator's change, typed on this node: made here if this node is primary,
    /// else forwarded to the primary. The answer comes back as [`Event::MemberAnswer`]
    /// with `req`.
    pub(super) fn member_command(&mut self, now: Instant, req: u64, change: MemberChange) {
        if !self.is_primary_role() {
            match self.leader.clone() {
                Some(leader) => self.transmits.push_back(Transmit {
                    to: leader,
                    datagram: Datagram::MemberRequest(MemberRequest {
                        req: Seq(req),
                        change,
                    }),
                }),
                None => self.events.push_back(Event::MemberAnswer {
                    req,
                    accepted: false,
                    message: "no primary is known to this node; a change needs one (try again once one is elected)".into(),
                }),
            }
            return;
        }
        let result = self.member_change(now, change);
        self.answer(req, result);
    }

    /// Answers `Command::Member` / `ForceNewCluster` number `req`.
    fn answer(&mut self, req: u64, result: Result<String, String>) {
        let (accepted, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        self.events.push_back(Event::MemberAnswer {
            req,
            accepted,
            message,
        });
    }

    /// `quorate member force-new-cluster`, typed on this node: the way out when a
    /// majority of the voters is lost for good. This node becomes the only voter of a
    /// new set in a new term, and so primary on its own. Refused while any other voter
    /// answers: that is not a lost majority, and forcing would make two clusters.
    pub(super) fn force_new_cluster(&mut self, now: Instant, req: u64) {
        let result = self.try_force_new_cluster(now);
        self.answer(req, result);
    }

    fn try_force_new_cluster(&mut self, now: Instant) -> Result<String, String> {
        if self.hard.members.stamp.is_none() {
            return Err("this node holds no member set: there is no cluster to recover".into());
        }
        if !self.is_voter() {
            return Err("this node is not a voter of its member set: run it on a voter".into());
        }
        let answering: Vec<String> = self
            .members
            .values()
            // A suspect silent for `dead_after` does not answer, confirmed or not: a lost
            // majority cannot confirm anything.
            .filter(|m| m.answers() && self.counts(&m.id))
            .map(|m| m.id.to_string())
            .collect();
        if !answering.is_empty() {
            return Err(format!(
                "voter(s) {} still answer: this is not a lost majority (force-new-cluster would make a second cluster beside theirs); stop them first if they are to be discarded",
                answering.join(", ")
            ));
        }
        let mine = self
            .hard
            .members
            .slot(&self.cfg.node, &self.cfg.advertise)
            .cloned()
            .ok_or("this node has no slot in its member set")?;
        // A new term, so the new set outranks every set the lost voters may hold.
        let term = self
            .next_term()
            .ok_or("the term is at its maximum (u64::MAX): no new term can be made")?;
        self.adopt_term(now, term);
        self.hard.voted_for = Some(self.cfg.node.clone());
        let set = Membership {
            // A new cluster: the lost voters' sets (their old origin) are foreign to it.
            origin: rand::Rng::random(&mut self.rng),
            stamp: ConfigStamp {
                term,
                index: self.hard.members.stamp.index + 1,
            },
            members: vec![MemberSlot {
                node: Some(self.cfg.node.clone()),
                ..mine
            }],
        };
        let stamp = set.stamp;
        self.events.push_back(Event::MembersChanged {
            stamp,
            voters: describe(&set),
        });
        self.hard.members = set;
        self.in_flight = None;
        self.rejoining = false;
        self.vote_lost = None;
        self.reset_election_timer(now);
        Ok(format!(
            "FORCED a new cluster: member set {stamp} has {} as its only voter; add the other nodes back with `quorate member add` (each with an emptied state_dir)",
            self.cfg.node
        ))
    }

    /// A change forwarded by `from`: answered at once.
    pub(super) fn on_member_request(&mut self, now: Instant, from: &NodeId, r: &MemberRequest) {
        let (accepted, message) = if self.is_primary_role() {
            match self.member_change(now, r.change.clone()) {
                Ok(m) => (true, m),
                Err(m) => (false, m),
            }
        } else {
            (
                false,
                format!("{} is no longer the primary; try again", self.cfg.node),
            )
        };
        self.transmits.push_back(Transmit {
            to: from.clone(),
            datagram: Datagram::MemberReply(MemberReply {
                req: r.req,
                accepted,
                message,
            }),
        });
    }

    /// The primary's answer to a change this node forwarded.
    pub(super) fn on_member_reply(&mut self, from: &NodeId, r: &MemberReply) {
        self.events.push_back(Event::MemberAnswer {
            req: r.req.0,
            accepted: r.accepted,
            message: if r.accepted {
                format!("{from} (the primary): {}", r.message)
            } else {
                format!("refused by {from} (the primary): {}", r.message)
            },
        });
    }

    /// At the primary: starts `change`, or says why not.
    fn member_change(&mut self, now: Instant, change: MemberChange) -> Result<String, String> {
        let result = self.try_member_change(now, &change);
        if let Err(reason) = &result {
            self.events.push_back(Event::Refused {
                command: format!("member {change}"),
                reason: reason.clone(),
            });
        }
        result
    }

    fn try_member_change(&mut self, now: Instant, change: &MemberChange) -> Result<String, String> {
        if let Some(f) = &self.in_flight {
            return Err(format!(
                "a change is still being committed ({}); retry when it is",
                f.what
            ));
        }
        let mut steps: std::collections::VecDeque<MemberChange> = match change {
            MemberChange::Replace { old, node, addr } => [
                MemberChange::Remove { node: old.clone() },
                MemberChange::Add {
                    node: node.clone(),
                    addr: addr.clone(),
                    voter: true,
                },
            ]
            .into(),
            other => [other.clone()].into(),
        };
        if let Some(MemberChange::Remove { node }) = steps.front()
            && *node == self.cfg.node
        {
            return Err(format!(
                "{node} is the primary: hand over first (`quorate transfer`)"
            ));
        }
        // Every step must be possible now, before the first is taken.
        let mut set = self.hard.members.clone();
        self.pin_ids(&mut set);
        for step in &steps {
            set = self.check_step(&set, step)?;
        }
        if self.hard.members.stamp.term < self.hard.term {
            let first = self.stamp_own_term(steps);
            return Ok(format!("{first}, then: {change}"));
        }
        let Some(first) = steps.pop_front() else {
            return Err("nothing to change".into());
        };
        self.start_change(now, first, steps)
    }

    /// `set` after `change`, if the change is possible and leaves a majority of the new
    /// set's voters up and able to back this primary's lease (safe either way; refused
    /// so the cluster is not left without a primary).
    fn check_step(&self, set: &Membership, change: &MemberChange) -> Result<Membership, String> {
        let next = apply(set, change)?;
        let own_lease = crate::core::lease::lease_ms(self.cfg.timing.lease);
        let backs = |m: &super::Member| {
            m.state == MemberState::Alive
                && m.timing
                    .is_some_and(|(_, promise)| self.covers(promise, own_lease))
        };
        let alive = |slot: &MemberSlot| {
            slot.addr == self.cfg.advertise
                || self.members.values().any(|m| {
                    backs(m)
                        && (slot.node.as_ref() == Some(&m.id)
                            || (slot.node.is_none() && slot.addr == m.addr))
                })
        };
        let up = next.members.iter().filter(|s| s.voter && alive(s)).count();
        if up >= majority(next.voters()) {
            return Ok(next);
        }
        // Say which node is missing when it is the one being made a voter.
        let newcomer = match change {
            MemberChange::Add {
                node, voter: true, ..
            }
            | MemberChange::Promote { node } => Some(node),
            _ => None,
        };
        if let Some(node) = newcomer
            && !self.members.get(node).is_some_and(backs)
        {
            return Err(format!(
                "{node} is not connected to the primary ({}), and without it only {up} of the {} voters would be up: start it, list its address in the primary's `peers`, or add it with --non-voter first and promote it once it shows alive",
                self.cfg.node,
                next.voters()
            ));
        }
        Err(format!(
            "afterwards only {up} of {} voters would be up and able to back the primary's lease, not a majority: bring a voter back (or fix its [timing]) first",
            next.voters()
        ))
    }

    fn start_change(
        &mut self,
        now: Instant,
        change: MemberChange,
        then: std::collections::VecDeque<MemberChange>,
    ) -> Result<String, String> {
        let mut current = self.hard.members.clone();
        self.pin_ids(&mut current);
        let next = self.check_step(&current, &change)?;
        let mut next = next;
        next.stamp = ConfigStamp {
            term: self.hard.term,
            index: self.hard.members.stamp.index + 1,
        };
        let what = change.to_string();
        self.in_flight = Some(InFlight {
            stamp: next.stamp,
            what: what.clone(),
            then,
        });
        let voters = describe(&next);
        self.events.push_back(Event::MembersChanged {
            stamp: next.stamp,
            voters: voters.clone(),
        });
        let message = format!(
            "{what}: member set {} ({}) is being committed",
            next.stamp,
            voters.join(", ")
        );
        self.hard.members = next;
        // The primary's own lease is now counted in the new set; acknowledgements from a
        // removed voter no longer count.
        self.update_lease(now);
        Ok(message)
    }
}
