//! What the agent keeps in `state_dir` across restarts: for now, its incarnation counter.
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
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| err(dir, e))?;
    Ok(())
}

/// The incarnation for this start: greater than every earlier one of this node, even if
/// the wall clock stepped back (it is at least the stored value + 1).
pub fn next_incarnation(state_dir: &Path, wall: proto::WallMicros) -> Result<proto::Incarnation, PersistError> {
    fs::create_dir_all(state_dir).map_err(|e| err(state_dir, format!("cannot create: {e}")))?;
    let path = state_dir.join("incarnation");
    let previous = match fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| err(&path, format!("corrupt: {:?} is not a number; remove the file if the node is stopped", s.trim())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(err(&path, e)),
    };
    let next = wall.0.max(previous.saturating_add(1));
    write_atomic(&path, format!("{next}\n").as_bytes())?;
    Ok(proto::Incarnation(next))
}

#[cfg(test)]
mod tests {
    use super::*;

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
