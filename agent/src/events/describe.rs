//! What a core [`Event`] says, once, for both the log and the journal.
//!
//! Owns: the level, the structured fields and the message of an event's log line, and
//! the kind, node and text of its journal record — one match over the events
//! ([`describe`]), so a new event is worded in one place and the log and the journal
//! cannot drift apart. `emit!` writes the log line. Also the wording of the member
//! set's problems ([`members_problem`]), logged when they change.
//!
//! It must never log by itself, write the journal, fire a hook or read a clock: the
//! driver emits and records what it is given.

use proto::NodeId;
use proto::ctl::EventKind;
use tracing::Level;

use crate::core::{Event, LostVote};

/// An event, worded for the log and for the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The log line's level.
    pub level: Level,
    /// The log line's structured fields.
    pub fields: Fields,
    /// The log line's message.
    pub message: String,
    /// The journal record's kind.
    pub kind: EventKind,
    /// The node the journal record is about, if one.
    pub node: Option<String>,
    /// The journal record's text.
    pub text: String,
}

/// The structured fields an event's log line may carry; those set are logged, in this
/// order (displayed names unquoted, words quoted, as `tracing` records them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub peer: Option<NodeId>,
    pub incarnation: Option<u64>,
    pub primary: Option<NodeId>,
    pub to: Option<NodeId>,
    pub claimant: Option<NodeId>,
    pub term: Option<u64>,
    pub transfer: Option<bool>,
    pub reason: Option<&'static str>,
    pub believed: Option<String>,
    pub stamp: Option<String>,
    pub floor: Option<u64>,
    pub frozen: Option<bool>,
    /// A check's name (assessment transitions).
    pub check: Option<String>,
    /// The reason codes, as `tracing` records a list (`["app", "mount"]`).
    pub reasons: Option<String>,
}

/// Writes `$d` (a `&Description`) as a log line. A macro so that the line keeps the
/// target of the module that emits it (the driver's, as it always had), where a
/// function here would log under this module's.
macro_rules! emit {
    ($d:expr) => {{
        let d: &$crate::events::describe::Description = $d;
        match d.level {
            ::tracing::Level::ERROR => {
                $crate::events::describe::emit_at!(::tracing::Level::ERROR, d)
            }
            ::tracing::Level::WARN => $crate::events::describe::emit_at!(::tracing::Level::WARN, d),
            ::tracing::Level::INFO => $crate::events::describe::emit_at!(::tracing::Level::INFO, d),
            ::tracing::Level::DEBUG => {
                $crate::events::describe::emit_at!(::tracing::Level::DEBUG, d)
            }
            ::tracing::Level::TRACE => {
                $crate::events::describe::emit_at!(::tracing::Level::TRACE, d)
            }
        }
    }};
}

/// [`emit!`] at one level (a `tracing` call site's level is fixed).
macro_rules! emit_at {
    ($level:expr, $d:expr) => {{
        let f = &$d.fields;
        ::tracing::event!(
            $level,
            peer = f.peer.as_ref().map(::tracing::field::display),
            incarnation = f.incarnation,
            primary = f.primary.as_ref().map(::tracing::field::display),
            to = f.to.as_ref().map(::tracing::field::display),
            claimant = f.claimant.as_ref().map(::tracing::field::display),
            term = f.term,
            transfer = f.transfer,
            reason = f.reason,
            believed = f.believed.as_deref(),
            stamp = f.stamp.as_ref().map(::tracing::field::display),
            floor = f.floor,
            frozen = f.frozen,
            check = f.check.as_deref().map(::tracing::field::display),
            reasons = f.reasons.as_deref().map(::tracing::field::display),
            "{}",
            $d.message
        )
    }};
}

pub(crate) use {emit, emit_at};

/// What keeps this node from voting, or where its `peers` file disagrees with the agreed
/// member set, as the `members:` log line says it; `None` when all is well.
pub fn members_problem(m: &proto::status::MembersStatus) -> Option<String> {
    if !m.disagrees() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(p) = &m.problem {
        parts.push(p.clone());
    }
    if !m.only_in_peers.is_empty() {
        parts.push(format!(
            "peers lists {} outside the agreed member set (`quorate member add` it, or remove it from peers)",
            m.only_in_peers.join(", ")
        ));
    }
    if !m.not_in_peers.is_empty() {
        parts.push(format!(
            "the agreed member set has {}, which peers does not list (add it to peers)",
            m.not_in_peers.join(", ")
        ));
    }
    Some(parts.join("; "))
}

/// How `me` words `event` for the log and the journal.
pub fn describe(id: &NodeId, event: &Event) -> Description {
    use EventKind::{Alarm, Election, Membership, Operator};
    let me = id.as_str();
    let d = |level: Level,
             fields: Fields,
             message: String,
             kind: EventKind,
             node: Option<&NodeId>,
             text: String| Description {
        level,
        fields,
        message,
        kind,
        node: node.map(NodeId::to_string),
        text,
    };
    match event {
        Event::Joined { node, incarnation } => d(
            Level::INFO,
            Fields {
                peer: Some(node.clone()),
                incarnation: Some(incarnation.0),
                ..Fields::default()
            },
            "peer joined".into(),
            Membership,
            Some(node),
            format!("{node} joined"),
        ),
        Event::Restarted { node, incarnation } => d(
            Level::INFO,
            Fields {
                peer: Some(node.clone()),
                incarnation: Some(incarnation.0),
                ..Fields::default()
            },
            "peer restarted".into(),
            Membership,
            Some(node),
            format!("{node} restarted"),
        ),
        Event::StateChanged { node, from, to } => d(
            Level::INFO,
            Fields {
                peer: Some(node.clone()),
                ..Fields::default()
            },
            format!("peer {} → {}", from.as_str(), to.as_str()),
            Membership,
            Some(node),
            format!("{node}: {} → {}", from.as_str(), to.as_str()),
        ),
        Event::ElectionStarted { term, transfer } => d(
            Level::INFO,
            Fields {
                term: Some(term.0),
                transfer: Some(*transfer),
                ..Fields::default()
            },
            "campaigning".into(),
            Election,
            Some(id),
            format!(
                "{me} campaigns for term {}{}",
                term.0,
                if *transfer { " (handover)" } else { "" }
            ),
        ),
        Event::BecamePrimary { term } => d(
            Level::INFO,
            Fields {
                term: Some(term.0),
                ..Fields::default()
            },
            "became primary".into(),
            Election,
            Some(id),
            format!("{me} became primary (term {})", term.0),
        ),
        Event::SteppedDown { term, reason } => d(
            Level::WARN,
            Fields {
                term: Some(term.0),
                reason: Some(*reason),
                ..Fields::default()
            },
            "stepped down".into(),
            Election,
            Some(id),
            format!("{me} stepped down (term {}): {reason}", term.0),
        ),
        Event::PrimaryChanged { node, term } => d(
            Level::INFO,
            Fields {
                primary: Some(node.clone()),
                term: Some(term.0),
                ..Fields::default()
            },
            "new primary".into(),
            Election,
            Some(node),
            format!("{node} is primary (term {})", term.0),
        ),
        Event::TransferStarted { to, term, reason } => d(
            Level::INFO,
            Fields {
                to: Some(to.clone()),
                term: Some(term.0),
                reason: Some(reason.as_str()),
                ..Fields::default()
            },
            "handing over".into(),
            Election,
            Some(to),
            format!(
                "{me} hands the primary role over to {to} (term {}, {})",
                term.0,
                reason.as_str()
            ),
        ),
        Event::SplitBrainSuspected {
            claimant,
            term,
            believed,
        } => d(
            Level::ERROR,
            Fields {
                claimant: Some(claimant.clone()),
                term: Some(term.0),
                believed: Some(
                    believed
                        .as_ref()
                        .map(|b| b.as_str())
                        .unwrap_or("-")
                        .to_owned(),
                ),
                ..Fields::default()
            },
            "split_brain_suspected: two primary claims in one term".into(),
            Alarm,
            Some(claimant),
            format!(
                "split brain suspected: {claimant} claims primary of term {} while {} was believed",
                term.0,
                believed.as_ref().map(|b| b.as_str()).unwrap_or("no one")
            ),
        ),
        Event::Refused { command, reason } => d(
            Level::WARN,
            Fields::default(),
            format!("refused {command}: {reason}"),
            Election,
            None,
            format!("{me} refused {command}: {reason}"),
        ),
        Event::TimingMismatch {
            peer,
            lease_ms,
            promise_ms,
        } => d(
            Level::WARN,
            Fields {
                peer: Some(peer.clone()),
                ..Fields::default()
            },
            format!(
                "timing: a voter's promise ({promise_ms} ms) does not outlast the primary's lease ({lease_ms} ms) between this node and {peer}: no lease acknowledgement or vote between them counts; set [timing] election_timeout > lease on every node, the same on all (see the fast preset)"
            ),
            Alarm,
            Some(peer),
            format!(
                "timing mismatch between {me} and {peer}: a promise of {promise_ms} ms does not outlast a lease of {lease_ms} ms; their acknowledgements and votes do not count"
            ),
        ),
        Event::MembersChanged { stamp, voters } => d(
            Level::INFO,
            Fields {
                stamp: Some(stamp.to_string()),
                ..Fields::default()
            },
            format!("member set {stamp}: {}", voters.join(", ")),
            Membership,
            None,
            format!("{me} holds member set {stamp}: {}", voters.join(", ")),
        ),
        Event::MembersCommitted { stamp, what } => d(
            Level::INFO,
            Fields {
                stamp: Some(stamp.to_string()),
                ..Fields::default()
            },
            format!("committed: {what}"),
            Membership,
            None,
            format!("member set {stamp} committed: {what}"),
        ),
        Event::ForeignCluster { peer } => d(
            Level::ERROR,
            Fields {
                peer: Some(peer.clone()),
                ..Fields::default()
            },
            format!(
                "{peer} is in this node's member set but holds another cluster's set (another origin): two clusters were formed from these nodes; this node stands down and votes for no one until one side is re-made"
            ),
            Alarm,
            Some(peer),
            format!("{peer} holds another cluster's member set: {me} stands down"),
        ),
        Event::MemberAnswer {
            accepted, message, ..
        } => {
            let (level, text) = if *accepted {
                (Level::INFO, format!("member change: {message}"))
            } else {
                (Level::WARN, format!("member change refused: {message}"))
            };
            d(level, Fields::default(), text.clone(), Operator, None, text)
        }
        Event::Rejoining { cause, voters } => {
            // A first start beside a cluster that is itself starting (every node empty)
            // goes through the same rejoin and ends at term 0 a moment later: no alarm.
            // A lost or corrupt vote record is one.
            let (level, kind) = if *cause == LostVote::EmptyStateDir {
                (Level::INFO, Election)
            } else {
                (Level::WARN, Alarm)
            };
            d(
                level,
                Fields::default(),
                format!(
                    "rejoining: {cause}, so this node may have voted in terms it no longer knows; it grants no vote and does not campaign until it has heard every other voter ({}) or, after a settling wait, a majority of them, and then only above the highest term they report",
                    voters.join(", ")
                ),
                kind,
                None,
                format!(
                    "{me} is rejoining ({cause}): it votes only above the highest term its peers report"
                ),
            )
        }
        Event::Rejoined { floor, heard } => d(
            if floor.0 == 0 {
                Level::INFO
            } else {
                Level::WARN
            },
            Fields {
                floor: Some(floor.0),
                ..Fields::default()
            },
            if floor.0 == 0 {
                format!(
                    "rejoined: heard {heard} voter(s), none has been in a term yet: a new cluster"
                )
            } else {
                format!(
                    "rejoined: heard {heard} voter(s); term {floor} and below count as voted in, so this node votes and campaigns only above it"
                )
            },
            Election,
            None,
            format!(
                "{me} rejoined after hearing {heard} voter(s): it votes only above term {floor}"
            ),
        ),
        Event::TermExhausted { term } => d(
            Level::ERROR,
            Fields {
                term: Some(term.0),
                ..Fields::default()
            },
            format!(
                "the term is at its maximum ({term}): this node can never campaign again (a term must not wrap, it is a fencing token); it still votes. Another node must be primary; see the operator guide"
            ),
            Alarm,
            None,
            format!("{me} cannot campaign: its term is at the maximum ({term})"),
        ),
        Event::FreezeChanged { frozen } => {
            let word = if *frozen { "frozen" } else { "unfrozen" };
            d(
                Level::INFO,
                Fields {
                    frozen: Some(*frozen),
                    ..Fields::default()
                },
                format!("cluster {word}"),
                Operator,
                None,
                format!("the cluster is {word} (as {me} learned it)"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::mpsc;

    use proto::{Incarnation, Term};

    use super::*;
    use crate::core::TransferReason;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// The log line (as the text format prints it, without time and target) and the
    /// journal record of an event described by n1.
    fn worded(event: &Event) -> (String, (EventKind, Option<String>, String)) {
        logged(event, false)
    }

    fn logged(event: &Event, target: bool) -> (String, (EventKind, Option<String>, String)) {
        /// What the subscriber writes, sent here line by line (no lock to share).
        struct Buf(mpsc::Sender<Vec<u8>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                let _ = self.0.send(b.to_vec());
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (tx, rx) = mpsc::channel();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Buf(tx.clone()))
            .with_ansi(false)
            .without_time()
            .with_target(target)
            .with_max_level(Level::TRACE)
            .finish();
        let d = describe(&id("n1"), event);
        tracing::subscriber::with_default(subscriber, || emit!(&d));
        let line = String::from_utf8(rx.try_iter().flatten().collect()).unwrap();
        (line.trim_end().to_owned(), (d.kind, d.node, d.text))
    }

    /// Log lines and journal records as the driver wrote them before they had one
    /// home: same level, fields in the same order, same quoting, same words.
    #[test]
    fn one_description_serves_the_log_and_the_journal() {
        use EventKind::{Alarm, Election, Membership, Operator};
        let n2 = || id("n2");
        let s = |t: &str| t.to_owned();
        type Record<'a> = (EventKind, Option<&'a str>, &'a str);
        let table: Vec<(Event, &str, Record<'_>)> = vec![
            (
                Event::Joined {
                    node: n2(),
                    incarnation: Incarnation(3),
                },
                " INFO peer joined peer=n2 incarnation=3",
                (Membership, Some("n2"), "n2 joined"),
            ),
            (
                Event::SteppedDown {
                    term: Term(4),
                    reason: "lease lost",
                },
                " WARN stepped down term=4 reason=\"lease lost\"",
                (Election, Some("n1"), "n1 stepped down (term 4): lease lost"),
            ),
            (
                Event::PrimaryChanged {
                    node: n2(),
                    term: Term(5),
                },
                " INFO new primary primary=n2 term=5",
                (Election, Some("n2"), "n2 is primary (term 5)"),
            ),
            (
                Event::TransferStarted {
                    to: n2(),
                    term: Term(5),
                    reason: TransferReason::Operator,
                },
                " INFO handing over to=n2 term=5 reason=\"operator\"",
                (
                    Election,
                    Some("n2"),
                    "n1 hands the primary role over to n2 (term 5, operator)",
                ),
            ),
            (
                Event::SplitBrainSuspected {
                    claimant: n2(),
                    term: Term(6),
                    believed: None,
                },
                "ERROR split_brain_suspected: two primary claims in one term claimant=n2 term=6 believed=\"-\"",
                (
                    Alarm,
                    Some("n2"),
                    "split brain suspected: n2 claims primary of term 6 while no one was believed",
                ),
            ),
            (
                Event::ElectionStarted {
                    term: Term(7),
                    transfer: true,
                },
                " INFO campaigning term=7 transfer=true",
                (Election, Some("n1"), "n1 campaigns for term 7 (handover)"),
            ),
            (
                Event::Refused {
                    command: s("transfer"),
                    reason: s("frozen"),
                },
                " WARN refused transfer: frozen",
                (Election, None, "n1 refused transfer: frozen"),
            ),
            (
                Event::MemberAnswer {
                    req: 1,
                    accepted: false,
                    message: s("not primary"),
                },
                " WARN member change refused: not primary",
                (Operator, None, "member change refused: not primary"),
            ),
            (
                Event::Rejoined {
                    floor: Term(0),
                    heard: 2,
                },
                " INFO rejoined: heard 2 voter(s), none has been in a term yet: a new cluster floor=0",
                (
                    Election,
                    None,
                    "n1 rejoined after hearing 2 voter(s): it votes only above term 0",
                ),
            ),
            (
                Event::Rejoining {
                    cause: LostVote::EmptyStateDir,
                    voters: vec![s("n2")],
                },
                " INFO rejoining: ",
                (Election, None, "n1 is rejoining ("),
            ),
            (
                Event::FreezeChanged { frozen: true },
                " INFO cluster frozen frozen=true",
                (Operator, None, "the cluster is frozen (as n1 learned it)"),
            ),
        ];
        for (event, line, (kind, node, text)) in table {
            let (got_line, (got_kind, got_node, got_text)) = worded(&event);
            assert!(got_line.starts_with(line), "{got_line:?} vs {line:?}");
            assert_eq!(got_kind, kind, "{event:?}");
            assert_eq!(got_node.as_deref(), node, "{event:?}");
            assert!(got_text.starts_with(text), "{got_text:?} vs {text:?}");
        }
    }

    /// The line is logged under the module that emits it (the driver's, in the agent).
    #[test]
    fn the_emitter_names_the_target() {
        let (line, _) = logged(&Event::FreezeChanged { frozen: false }, true);
        assert_eq!(
            line,
            " INFO quorate_agent::events::describe::tests: cluster unfrozen frozen=false"
        );
    }

    #[test]
    fn member_set_problems_in_words() {
        let mut m = proto::status::MembersStatus {
            stamp: "1.2".into(),
            members: Vec::new(),
            problem: None,
            only_in_peers: Vec::new(),
            not_in_peers: Vec::new(),
            change: None,
            unwatched: Vec::new(),
        };
        assert_eq!(members_problem(&m), None);
        m.only_in_peers = vec!["10.0.0.9:7000".into()];
        m.not_in_peers = vec!["10.0.0.3:7000".into()];
        assert_eq!(
            members_problem(&m).unwrap(),
            "peers lists 10.0.0.9:7000 outside the agreed member set (`quorate member add` it, or remove it from peers); the agreed member set has 10.0.0.3:7000, which peers does not list (add it to peers)"
        );
        m.problem = Some("not a member".into());
        m.not_in_peers.clear();
        assert!(
            members_problem(&m)
                .unwrap()
                .starts_with("not a member; peers lists")
        );
    }
}
