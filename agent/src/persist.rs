//! What the agent keeps in `state_dir` across restarts: its incarnation counter, the
//! election's `(term, voted_for)`, and what operators set on this node (`operator.json`:
//! drain, drift acknowledgements, the upgrade gate).
//!
//! Writes are atomic (write a temporary file, fsync, rename, fsync the directory), so a
//! crash leaves either the old or the new value, never a torn one. An unreadable or
//! corrupt file stops the agent with an error naming it; it is never silently reset.
//! The one exception is `election` (the vote record): the core knows how to go on
//! without it safely (`LostVote`: it rejoins, voting only above every term its peers
//! report), so a missing or corrupt one is reported as lost, never read as term 0, and a
//! corrupt one is kept aside as `election.corrupt` for inspection.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A state file that could not be read or written. The message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct PersistError {
    pub path: PathBuf,
    pub reason: String,
}

fn err(path: &Path, reason: impl std::fmt::Display) -> PersistError {
    PersistError {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Writes `contents` to `path` atomically and durably.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), PersistError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| err(&tmp, e))?;
    f.write_all(contents).map_err(|e| err(&tmp, e))?;
    f.sync_all().map_err(|e| err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| err(path, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, e))?;
    Ok(())
}

/// The incarnation for this start: greater than every earlier one of this node, even if
/// the wall clock stepped back (it is at least the stored value + 1).
pub fn next_incarnation(
    state_dir: &Path,
    wall: proto::WallMicros,
) -> Result<proto::Incarnation, PersistError> {
    fs::create_dir_all(state_dir).map_err(|e| err(state_dir, format!("cannot create: {e}")))?;
    let path = state_dir.join("incarnation");
    let previous = match fs::read_to_string(&path) {
        Ok(s) => s.trim().parse::<u64>().map_err(|_| {
            err(
                &path,
                format!(
                    "corrupt: {:?} is not a number; remove the file if the node is stopped",
                    s.trim()
                ),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(err(&path, e)),
    };
    let next = wall.0.max(previous.saturating_add(1));
    write_atomic(&path, format!("{next}\n").as_bytes())?;
    Ok(proto::Incarnation(next))
}

const ELECTION_FILE: &str = "election";

/// What `state_dir` holds for the election: the hard state, and why this node cannot
/// prove its last vote, if it cannot (then `hard` holds term 0 and no vote; pass it to
/// [`Node::with_lost_vote`](crate::core::Node::with_lost_vote)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub hard: crate::core::HardState,
    pub lost_vote: Option<crate::core::LostVote>,
}

/// Reads `(term, voted_for)` and the member set. Both missing is a first start (or a
/// lost `state_dir`: the core treats a set it learns that names it as a lost vote). An
/// `election` file missing beside a `members` file, or corrupt (unparsable, empty,
/// truncated), is a lost vote: never term 0 (the node may have voted before), and a
/// corrupt file is renamed `election.corrupt`. A file that cannot be read at all (an
/// I/O error) is an error.
pub fn load_hard_state(state_dir: &Path) -> Result<Stored, PersistError> {
    let members = load_members(state_dir)?;
    let path = state_dir.join(ELECTION_FILE);
    let lost = |lost_vote| Stored {
        hard: crate::core::HardState {
            members: members.clone(),
            ..Default::default()
        },
        lost_vote: Some(lost_vote),
    };
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && members.stamp.is_none() => {
            return Ok(Stored {
                hard: Default::default(),
                lost_vote: None,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(lost(crate::core::LostVote::Missing));
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return set_aside(&path, "not UTF-8")
                .map(|why| lost(crate::core::LostVote::Corrupt(why)));
        }
        Err(e) => return Err(err(&path, e)),
    };
    match parse_election(&text) {
        Ok((term, voted_for)) => Ok(Stored {
            hard: crate::core::HardState {
                term,
                voted_for,
                members,
            },
            lost_vote: None,
        }),
        Err(why) => set_aside(&path, why).map(|why| lost(crate::core::LostVote::Corrupt(why))),
    }
}

/// Renames a corrupt `election` file to `election.corrupt` (an operator may want to see
/// it; the next vote writes a fresh one) and says why it was corrupt.
fn set_aside(path: &Path, why: &str) -> Result<String, PersistError> {
    let aside = path.with_extension("corrupt");
    fs::rename(path, &aside).map_err(|e| {
        err(
            path,
            format!("corrupt ({why}) and cannot be set aside: {e}"),
        )
    })?;
    Ok(format!("{why}; kept as {}", aside.display()))
}

/// `term=N` and `voted_for=ID|` lines, or why not.
fn parse_election(text: &str) -> Result<(proto::Term, Option<proto::NodeId>), &'static str> {
    let mut term = None;
    let mut voted_for = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once('=') {
            Some(("term", v)) => {
                term = Some(
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| "term is not a number")?,
                )
            }
            Some(("voted_for", v)) if v.trim().is_empty() => voted_for = None,
            Some(("voted_for", v)) => {
                voted_for =
                    Some(proto::NodeId::new(v.trim()).map_err(|_| "voted_for is not a node id")?)
            }
            _ => return Err("unexpected line"),
        }
    }
    Ok((proto::Term(term.ok_or("no term")?), voted_for))
}

const MEMBERS_FILE: &str = "members";

/// Reads the agreed member set; a missing file is "none yet" (a new node, or one from
/// before the set was agreed). A corrupt file is an error: guessing could count a
/// majority of the wrong voters.
fn load_members(state_dir: &Path) -> Result<proto::Membership, PersistError> {
    let path = state_dir.join(MEMBERS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(err(&path, e)),
    };
    let corrupt = |line: usize, why: &str| {
        err(
            &path,
            format!(
                "line {line}: corrupt ({why}); it holds the cluster's agreed member set, so it is not reset: see the operator guide, \"a lost or damaged state_dir\""
            ),
        )
    };
    let mut set = proto::Membership::default();
    let mut stamped = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some(("stamp", v)) => {
                let (t, idx) = v
                    .trim()
                    .split_once('.')
                    .ok_or_else(|| corrupt(n, "stamp is not TERM.INDEX"))?;
                set.stamp = proto::ConfigStamp {
                    term: proto::Term(t.parse().map_err(|_| corrupt(n, "bad stamp term"))?),
                    index: idx.parse().map_err(|_| corrupt(n, "bad stamp index"))?,
                };
                stamped = true;
            }
            Some(("origin", v)) => {
                set.origin = u64::from_str_radix(v.trim(), 16)
                    .map_err(|_| corrupt(n, "origin is not a hex number"))?;
            }
            Some(("member", v)) => {
                let mut parts = v.split_whitespace();
                let (Some(addr), Some(node), Some(kind), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(corrupt(n, "a member line is ADDR NODE|- voter|non-voter"));
                };
                let node = match node {
                    "-" => None,
                    id => Some(proto::NodeId::new(id).map_err(|_| corrupt(n, "bad node id"))?),
                };
                let voter = match kind {
                    "voter" => true,
                    "non-voter" => false,
                    _ => return Err(corrupt(n, "a member is a voter or a non-voter")),
                };
                set.members.push(proto::MemberSlot {
                    addr: addr.to_owned(),
                    node,
                    voter,
                });
            }
            _ => return Err(corrupt(n, "unexpected line")),
        }
    }
    if !stamped {
        return Err(corrupt(0, "no stamp"));
    }
    Ok(set)
}

fn render_members(set: &proto::Membership) -> String {
    let mut out = format!(
        "# The agreed member set of this node's cluster. Changed only by `quorate member`.\norigin={:016x}\nstamp={}\n",
        set.origin, set.stamp
    );
    for s in &set.members {
        let node = s.node.as_ref().map(|n| n.as_str()).unwrap_or("-");
        let kind = if s.voter { "voter" } else { "non-voter" };
        out.push_str(&format!("member={} {node} {kind}\n", s.addr));
    }
    out
}

/// Writes what changed since `before` (the state last written) atomically and durably:
/// `(term, voted_for)` and the member set are separate files, each written only when it
/// changed (each is monotonic on its own, so a crash between the two is no worse than
/// the second change not having happened yet). `(term, voted_for)` only when
/// `record_vote` ([`Node::records_vote`](crate::core::Node::records_vote)), and then
/// also when the file is missing.
pub fn save_hard_state(
    state_dir: &Path,
    hs: &crate::core::HardState,
    before: &crate::core::HardState,
    record_vote: bool,
) -> Result<(), PersistError> {
    if hs.members != before.members {
        write_atomic(
            &state_dir.join(MEMBERS_FILE),
            render_members(&hs.members).as_bytes(),
        )?;
    }
    let path = state_dir.join(ELECTION_FILE);
    let unchanged = hs.term == before.term && hs.voted_for == before.voted_for;
    if !record_vote || (unchanged && path.exists()) {
        return Ok(());
    }
    let voted = hs.voted_for.as_ref().map(|n| n.as_str()).unwrap_or("");
    write_atomic(
        &path,
        format!("term={}\nvoted_for={voted}\n", hs.term.0).as_bytes(),
    )
}

/// The operator state file.
pub fn operator_path(state_dir: &Path) -> PathBuf {
    state_dir.join("operator.json")
}

/// Reads a JSON state file; a missing file is `T::default()`, a corrupt one an error
/// naming it.
pub fn load_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, PersistError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(path, format!("corrupt: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(err(path, e)),
    }
}

/// Writes a JSON state file atomically.
pub fn save_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), PersistError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| err(path, e))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_state_round_trips_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = |dir: &Path| load_hard_state(dir).unwrap();
        assert_eq!(
            fresh(dir.path()),
            Stored {
                hard: Default::default(),
                lost_vote: None
            }
        );
        let hs = crate::core::HardState {
            term: proto::Term(7),
            voted_for: Some(proto::NodeId::new("n2").unwrap()),
            members: crate::core::voters::bootstrap_set(&["b:1".into(), "a:1".into()]),
        };
        save_hard_state(dir.path(), &hs, &Default::default(), true).unwrap();
        assert_eq!(fresh(dir.path()).hard, hs);
        let mut none = crate::core::HardState {
            term: proto::Term(8),
            voted_for: None,
            members: hs.members.clone(),
        };
        none.members.members[0].node = Some(proto::NodeId::new("n1").unwrap());
        none.members.members[1].voter = false;
        none.members.stamp.index = 2;
        save_hard_state(dir.path(), &none, &hs, true).unwrap();
        assert_eq!(fresh(dir.path()).hard, none);
        // A corrupt member set stops the agent: guessing could count the wrong voters.
        let good_members = fs::read(dir.path().join("members")).unwrap();
        fs::write(dir.path().join("members"), "stamp=1.2\nmember=a:1 n1\n").unwrap();
        let e = load_hard_state(dir.path()).unwrap_err().to_string();
        assert!(e.contains("members") && e.contains("line 2"), "{e}");
        fs::write(dir.path().join("members"), good_members).unwrap();
    }

    /// A vote record that is missing (beside a member set), corrupt, empty or truncated
    /// is a lost vote, never term 0; the member set is kept, and a corrupt file is set
    /// aside for inspection.
    #[test]
    fn a_lost_or_corrupt_vote_record_is_a_lost_vote_not_term_zero() {
        use crate::core::LostVote;
        let dir = tempfile::tempdir().unwrap();
        let hs = crate::core::HardState {
            term: proto::Term(7),
            voted_for: Some(proto::NodeId::new("n2").unwrap()),
            members: crate::core::voters::bootstrap_set(&["b:1".into(), "a:1".into()]),
        };
        save_hard_state(dir.path(), &hs, &Default::default(), true).unwrap();
        let election = dir.path().join("election");
        let lost = |expect_corrupt: bool| {
            let stored = load_hard_state(dir.path()).unwrap();
            assert_eq!(stored.hard.term, proto::Term(0));
            assert_eq!(stored.hard.voted_for, None);
            assert_eq!(stored.hard.members, hs.members, "the member set is kept");
            match stored.lost_vote {
                Some(LostVote::Corrupt(why)) if expect_corrupt => {
                    assert!(why.contains("election.corrupt"), "{why}");
                    assert!(dir.path().join("election.corrupt").exists());
                    assert!(!election.exists());
                }
                Some(LostVote::Missing) if !expect_corrupt => {}
                other => panic!("{other:?}"),
            }
        };
        fs::remove_file(&election).unwrap();
        lost(false);
        // While the core does not record votes (rejoining), only the member set is
        // written: the file stays missing, so a restart still knows the vote is lost.
        let adopted = crate::core::HardState {
            term: proto::Term(9),
            voted_for: None,
            members: hs.members.clone(),
        };
        save_hard_state(dir.path(), &adopted, &Default::default(), false).unwrap();
        lost(false);
        // Recording again, the file is written even if nothing changed since `before`.
        save_hard_state(dir.path(), &adopted, &adopted, true).unwrap();
        assert_eq!(load_hard_state(dir.path()).unwrap().lost_vote, None);
        fs::remove_file(&election).unwrap();
        for bad in ["term=x\n", "", "term=", "voted_for=n2\n", "\u{0}\u{ff}"] {
            fs::write(&election, bad).unwrap();
            lost(true);
        }
        fs::write(&election, [0xff, 0xfe, b'\n']).unwrap();
        lost(true);
    }

    #[test]
    fn incarnation_grows_even_when_the_clock_steps_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = next_incarnation(dir.path(), proto::WallMicros(1_000)).unwrap();
        let b = next_incarnation(dir.path(), proto::WallMicros(500)).unwrap();
        let c = next_incarnation(dir.path(), proto::WallMicros(5_000)).unwrap();
        assert_eq!(a.0, 1_000);
        assert_eq!(b.0, 1_001);
        assert_eq!(c.0, 5_000);
    }

    #[test]
    fn corrupt_incarnation_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("incarnation"), "garbage").unwrap();
        let e = next_incarnation(dir.path(), proto::WallMicros(1)).unwrap_err();
        assert!(e.to_string().contains("incarnation"), "{e}");
        assert!(e.to_string().contains("corrupt"), "{e}");
    }
}
