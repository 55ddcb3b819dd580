//! The member table: what this node knows of every other node, and the alive → suspect →
//! dead → (alive) / left transitions.
//!
//! Pure data and rules. It never decides who is primary; it only says who is reachable.

use std::time::{Duration, Instant};

use proto::{
    ConfigStamp, Echo, HealthBits, Heartbeat, Incarnation, LoadFigures, Mode, NodeId, NodeState,
    Seq, StateDigest, Term, WallMicros,
};

use super::detector::PhiDetector;

/// A member's liveness as this node judges it (the protocol's word for it).
pub use proto::MemberState;

/// The last heartbeat received from a member, kept to echo it back (NTP-style).
#[derive(Debug, Clone, Copy)]
struct Received {
    peer_sent: WallMicros,
    at_wall: WallMicros,
    at: Instant,
}

/// One other node.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: NodeId,
    /// Its advertised QUIC address.
    pub addr: String,
    pub mode: Mode,
    pub incarnation: Incarnation,
    pub state: MemberState,
    pub state_since: Instant,
    detector: PhiDetector,
    last_seq: Option<Seq>,
    last_rx: Option<Received>,
    pub health: HealthBits,
    pub load: LoadFigures,
    /// The digest of its state, as its latest heartbeat announced it.
    pub digest: StateDigest,
    /// Its full state, as last fetched.
    pub node_state: Option<NodeState>,
    /// Smoothed round-trip time.
    pub rtt: Option<Duration>,
    /// Smoothed estimate of (its wall clock − ours), in microseconds.
    pub clock_offset_us: Option<i64>,
    pub term: Term,
    pub believed_primary: Option<NodeId>,
    /// Since when this node has heard it alive and eligible to be primary, without a
    /// break: cleared when it stops being alive (suspect, dead, left), restarts, says it
    /// is not eligible, comes back after a silence longer than an election timeout (a
    /// pause or a cut too short for the failure detector), or says it has not heard us
    /// for that long (a one-way cut towards it). Preemption counts `preempt_delay` from
    /// here.
    pub eligible_since: Option<Instant>,
    /// Silent for `dead_after` as far as this node alone can tell: what `dead` meant
    /// before suspicions needed a quorum's confirmation. A new holder of its address may
    /// replace it, and it no longer answers for `force-new-cluster`.
    pub silent: bool,
    /// How long it had gone without hearing from us when it sent its latest heartbeat
    /// (the echo's hold time; `None` if it has never heard us): whether contact is
    /// two-way.
    pub heard_us: Option<Duration>,
    /// Test-only (`InjectedFault::KeepEligibleThroughSilence`): `eligible_since` survives
    /// suspicion and silence, as it did before preemption waited for a node's return.
    pub(super) keep_eligible: bool,
    /// The heartbeat interval it last announced on its link to us.
    interval_ms: u16,
    /// Its timing as its latest heartbeat announced it: the lease it would hold as
    /// primary and how long it promises after acknowledging one (ms; `None` before its
    /// first heartbeat).
    pub timing: Option<(u32, u32)>,
    /// The agreed member set it holds durably, as its latest heartbeat announced it.
    pub config: ConfigStamp,
    /// Our send time (wall clock) of the heartbeat its latest heartbeat echoed: its
    /// report was sent after ours left (a causal order, not a clock comparison across
    /// nodes; a rejoining node relies on it, `voters::rejoin_tick`).
    pub(super) echoed: Option<WallMicros>,
    pub(super) next_heartbeat: Instant,
    pub(super) fetch_pending: bool,
    /// Whether this node exchanges heartbeats with it, and so judges its liveness
    /// (`Node::talks_to`, kept current by `Node::watch_tick`). An unwatched member keeps
    /// the state it had; readers do not show it as this node's judgement.
    pub watched: bool,
    /// When phi reaches the suspicion threshold if nothing more arrives: the core's next
    /// look at this member (see [`PhiDetector::crossing`]).
    pub(super) suspect_at: Option<Instant>,
}

/// What a received heartbeat did to the member.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Accepted {
    /// Older incarnation, or a sequence number already seen: ignored.
    Stale,
    /// Accepted; `fetch` says the full state should be fetched.
    Fresh { fetch: bool },
}

impl Member {
    pub(super) fn new(
        id: NodeId,
        addr: String,
        mode: Mode,
        incarnation: Incarnation,
        now: Instant,
        expected: Duration,
    ) -> Self {
        Self {
            id,
            addr,
            mode,
            incarnation,
            state: MemberState::Alive,
            state_since: now,
            detector: PhiDetector::new(expected),
            last_seq: None,
            last_rx: None,
            health: HealthBits::default(),
            load: LoadFigures::default(),
            digest: StateDigest::default(),
            node_state: None,
            rtt: None,
            clock_offset_us: None,
            term: Term::default(),
            believed_primary: None,
            eligible_since: None,
            silent: false,
            heard_us: None,
            keep_eligible: false,
            interval_ms: u16::try_from(expected.as_millis()).unwrap_or(u16::MAX),
            timing: None,
            config: ConfigStamp::NONE,
            echoed: None,
            next_heartbeat: now,
            fetch_pending: false,
            watched: true,
            suspect_at: None,
        }
    }

    /// It is watched again after a time unwatched (a set change made one end a voter):
    /// what was known of it is stale, so start over as if it had just said hello, heard
    /// `now` (a silence from here on is suspected as usual).
    pub(super) fn rewatch(&mut self, now: Instant, expected: Duration, threshold: f64) {
        self.restart(self.incarnation, now, expected);
        self.detector.heartbeat(now);
        self.refresh_suspect_at(threshold);
        self.watched = true;
    }

    /// Forgets everything learnt from the previous incarnation.
    pub(super) fn restart(&mut self, incarnation: Incarnation, now: Instant, expected: Duration) {
        *self = Self {
            next_heartbeat: self.next_heartbeat,
            keep_eligible: self.keep_eligible,
            watched: self.watched,
            ..Self::new(
                self.id.clone(),
                self.addr.clone(),
                self.mode,
                incarnation,
                now,
                expected,
            )
        };
    }

    pub fn phi(&self, now: Instant) -> f64 {
        self.detector.phi(now)
    }

    /// Recomputes [`suspect_at`](Self::suspect_at) after a heartbeat.
    pub(super) fn refresh_suspect_at(&mut self, threshold: f64) {
        self.suspect_at = self.detector.crossing(threshold);
    }

    /// Alive, or suspect but heard within `dead_after`: a node that may still be running
    /// (what an address conflict and `force-new-cluster` ask). A suspect silent for that
    /// long no longer answers, whether or not a quorum has confirmed it dead.
    pub fn answers(&self) -> bool {
        match self.state {
            MemberState::Alive => true,
            MemberState::Suspect => !self.silent,
            // The core never sets `Unknown` (a newer peer's word, read only from JSON).
            MemberState::Dead | MemberState::Left | MemberState::Unknown => false,
        }
    }

    pub fn last_heard(&self) -> Option<Instant> {
        self.detector.last()
    }

    pub(super) fn set_state(
        &mut self,
        state: MemberState,
        now: Instant,
    ) -> Option<(MemberState, MemberState)> {
        if self.state == state {
            return None;
        }
        let from = self.state;
        self.state = state;
        self.state_since = now;
        if state == MemberState::Alive {
            self.silent = false;
        } else if !self.keep_eligible {
            // "Seen alive without a break" is broken: a node back from a pause or a cut
            // waits the whole `preempt_delay` again.
            self.eligible_since = None;
        }
        Some((from, state))
    }

    /// Takes a heartbeat of the member's current incarnation. A heartbeat after a silence
    /// longer than `gap` (the election timeout), or one saying the member has not heard
    /// us for that long, restarts `eligible_since`: the member was cut off (either way)
    /// or stopped, even if too briefly for the failure detector to suspect it.
    pub(super) fn accept(
        &mut self,
        now: Instant,
        wall: WallMicros,
        hb: &Heartbeat,
        gap: Duration,
    ) -> Accepted {
        if hb.incarnation != self.incarnation || self.last_seq.is_some_and(|s| hb.seq <= s) {
            return Accepted::Stale;
        }
        // Seen alive both ways without a break, or not: silent for longer than `gap`, or
        // not hearing us (its echo held for longer than that, or no echo yet: a one-way
        // cut towards it).
        self.heard_us = hb.echo.map(|e| Duration::from_micros(u64::from(e.held_us)));
        let silent = self
            .last_heard()
            .is_some_and(|t| now.saturating_duration_since(t) > gap);
        // This heartbeat ends a silence: it counts (the member is back). One saying it does
        // not hear us does not: the count starts at the first that does.
        let deaf = !self.keep_eligible && self.heard_us.is_none_or(|h| h > gap);
        if !self.keep_eligible && (silent || deaf) {
            self.eligible_since = None;
        }
        self.last_seq = Some(hb.seq);
        self.timing = Some((hb.lease_ms, hb.promise_ms));
        self.config = hb.config;
        if hb.interval_ms != self.interval_ms && hb.interval_ms > 0 {
            // The sender changed rate (a primary came or went): re-learn from the new
            // rate instead of suspecting a slower sender or missing a faster one's death.
            self.interval_ms = hb.interval_ms;
            self.detector
                .reset(Duration::from_millis(u64::from(hb.interval_ms)));
        }
        self.detector.heartbeat(now);
        if hb.health.has(HealthBits::ELIGIBLE) {
            if !deaf {
                self.eligible_since.get_or_insert(now);
            }
        } else {
            self.eligible_since = None;
        }
        self.last_rx = Some(Received {
            peer_sent: hb.sent,
            at_wall: wall,
            at: now,
        });
        self.echoed = hb.echo.map(|e| e.peer_sent);
        if let Some(echo) = hb.echo {
            self.take_echo(echo, hb.sent, wall);
        }
        self.health = hb.health;
        self.load = hb.load;
        self.term = hb.term;
        self.believed_primary = hb.primary.clone();
        let fetch = hb.digest != self.digest || self.node_state.is_none();
        self.digest = hb.digest;
        Accepted::Fresh {
            fetch: fetch && !self.fetch_pending,
        }
    }

    /// RTT and offset from an echo of one of our heartbeats (`t1` ours, `t2` theirs at
    /// arrival, `t3` theirs at send, `t4` ours at arrival).
    fn take_echo(&mut self, echo: Echo, t3: WallMicros, t4: WallMicros) {
        let (t1, t2, t3, t4) = (
            echo.peer_sent.0 as i128,
            echo.received.0 as i128,
            t3.0 as i128,
            t4.0 as i128,
        );
        let rtt_us = (t4 - t1) - i128::from(echo.held_us);
        // A wall clock stepped between t1 and t4 gives nonsense; skip the sample.
        if !(0..=10_000_000).contains(&rtt_us) {
            return;
        }
        let offset_us = ((t2 - t1) + (t3 - t4)) / 2;
        let rtt = Duration::from_micros(rtt_us as u64);
        self.rtt = Some(match self.rtt {
            Some(old) => (old * 7 + rtt) / 8,
            None => rtt,
        });
        let offset_us = offset_us.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        self.clock_offset_us = Some(match self.clock_offset_us {
            Some(old) => old + (offset_us - old) / 8,
            None => offset_us,
        });
    }

    /// The echo to put in our next heartbeat to this member.
    pub(super) fn echo(&self, now: Instant) -> Option<Echo> {
        self.last_rx.map(|rx| Echo {
            peer_sent: rx.peer_sent,
            received: rx.at_wall,
            held_us: u32::try_from(now.saturating_duration_since(rx.at).as_micros())
                .unwrap_or(u32::MAX),
        })
    }
}
