//! What the agent keeps in `state_dir` across restarts: its incarnation counter, the
//! election's `(term, voted_for)`, and what operators set on this node (`operator.json`:
//! drain, drift acknowledgements, the upgrade gate).
//!
//! Writes are atomic (write a temporary file, fsync, rename, fsync the directory), so a
//! crash leaves either the old or the new value, never a torn one. An unreadable or
//! corrupt file stops the agent with an error naming it; it is never silently reset.

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

/// Reads `(term, voted_for)`; a missing file is a first start (term 0). A corrupt file is
/// an error: resetting to term 0 could let this node vote twice in a term.
pub fn load_hard_state(state_dir: &Path) -> Result<crate::core::HardState, PersistError> {
    let path = state_dir.join(ELECTION_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(err(&path, e)),
    };
    let corrupt = |why: &str| {
        err(
            &path,
            format!(
                "corrupt ({why}); it holds this node's vote, so it is not reset: inspect it, and remove it only if every node is stopped"
            ),
        )
    };
    let mut term = None;
    let mut voted_for = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once('=') {
            Some(("term", v)) => {
                term = Some(
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| corrupt("term is not a number"))?,
                )
            }
            Some(("voted_for", v)) if v.trim().is_empty() => voted_for = None,
            Some(("voted_for", v)) => {
                voted_for = Some(
                    proto::NodeId::new(v.trim())
                        .map_err(|_| corrupt("voted_for is not a node id"))?,
                )
            }
            _ => return Err(corrupt("unexpected line")),
        }
    }
    Ok(crate::core::HardState {
        term: proto::Term(term.ok_or_else(|| corrupt("no term"))?),
        voted_for,
    })
}

/// Writes `(term, voted_for)` atomically and durably.
pub fn save_hard_state(state_dir: &Path, hs: &crate::core::HardState) -> Result<(), PersistError> {
    let voted = hs.voted_for.as_ref().map(|n| n.as_str()).unwrap_or("");
    write_atomic(
        &state_dir.join(ELECTION_FILE),
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
        assert_eq!(load_hard_state(dir.path()).unwrap(), Default::default());
        let hs = crate::core::HardState {
            term: proto::Term(7),
            voted_for: Some(proto::NodeId::new("n2").unwrap()),
        };
        save_hard_state(dir.path(), &hs).unwrap();
        assert_eq!(load_hard_state(dir.path()).unwrap(), hs);
        let none = crate::core::HardState {
            term: proto::Term(8),
            voted_for: None,
        };
        save_hard_state(dir.path(), &none).unwrap();
        assert_eq!(load_hard_state(dir.path()).unwrap(), none);
        fs::write(dir.path().join("election"), "term=x\n").unwrap();
        let e = load_hard_state(dir.path()).unwrap_err().to_string();
        assert!(e.contains("election") && e.contains("corrupt"), "{e}");
        fs::write(dir.path().join("election"), "").unwrap();
        assert!(
            load_hard_state(dir.path()).is_err(),
            "an empty file is not term 0"
        );
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
