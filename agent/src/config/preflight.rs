//! What the machine must provide before the agent starts, beyond the file's text: a
//! `state_dir` it can write, hook programs it can run, a certificate that has not
//! ended. `Config::load` (the agent's start, `--check-config`, a reload) runs them;
//! `Config::parse` runs only the certificate's, which reads no path of the machine's.
//!
//! Owns the rules and their wording (each reason names the path and the fix). It must
//! never create, change or remove anything: a check that `state_dir` can be created
//! asks the kernel (access(2)) and leaves the directory to the agent's start. access(2)
//! answers for the user running the check: as root, permission bits do not refuse a
//! write, but a read-only filesystem still does (`EROFS`), and an ancestor that is a
//! file does for everyone.

use std::io::ErrorKind;
use std::path::Path;

use rustix::fs::Access;

/// How soon before its end a certificate is warned about.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Why `dir` cannot serve as `state_dir` for the user running this check, or `None`.
pub fn state_dir_problem(dir: &Path) -> Option<String> {
    let d = dir.display();
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Some(format!(
            "state_dir: {d} is not a directory: choose a directory (default /var/lib/quorate)"
        )),
        Ok(_) => rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK)
            .err()
            .map(|e| {
                format!(
                    "state_dir: {d} is not writable by this user ({}): {}",
                    std::io::Error::from(e),
                    write_fix(dir, e)
                )
            }),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            // The agent creates it at start (with its missing parents): the nearest
            // ancestor that exists must be a directory this user can write.
            let Some(parent) = dir.ancestors().skip(1).find(|a| a.exists()) else {
                return Some(format!("state_dir: {d}: no part of it exists"));
            };
            let p = parent.display();
            if !parent.is_dir() {
                return Some(format!(
                    "state_dir: {d} cannot be created: {p} is a file, not a directory"
                ));
            }
            rustix::fs::access(parent, Access::WRITE_OK | Access::EXEC_OK)
                .err()
                .map(|e| {
                    format!(
                        "state_dir: {d} does not exist and cannot be created in {p} ({}): {}",
                        std::io::Error::from(e),
                        write_fix(dir, e)
                    )
                })
        }
        Err(e) => Some(format!("state_dir: {d}: {e}")),
    }
}

fn write_fix(dir: &Path, e: rustix::io::Errno) -> String {
    if e == rustix::io::Errno::ROFS {
        "it is on a read-only filesystem: choose a state_dir on a writable one".to_owned()
    } else {
        format!(
            "create it for the agent's user (`install -d -o quorate -g quorate -m 0750 {}`)",
            dir.display()
        )
    }
}

/// Why the hook `key` (`hooks.on_primary`…) at `path` cannot be run by the user running
/// this check, or `None`.
pub fn hook_problem(key: &str, path: &Path) -> Option<String> {
    let p = path.display();
    if !path.is_absolute() {
        return Some(format!(
            "{key}: {p} must be an absolute path (the agent runs hooks from /)"
        ));
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Some(format!(
            "{key}: {p} does not exist: install the hook there, or remove the key"
        )),
        Err(e) => Some(format!("{key}: {p}: {e}")),
        Ok(meta) if !meta.is_file() => Some(format!(
            "{key}: {p} is not a file: name the program the agent should run"
        )),
        // Root passes access(X_OK) only when some execute bit is set, as exec(2) wants.
        Ok(_) => rustix::fs::access(path, Access::EXEC_OK).err().map(|e| {
            format!(
                "{key}: {p} is not executable by this user ({}): `chmod 0755 {p}`",
                std::io::Error::from(e)
            )
        }),
    }
}

/// What a certificate's end (`not_after`, Unix seconds) means at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Valid,
    /// Ends within [`EXPIRY_WARNING_DAYS`]: days left, rounded down.
    Soon {
        days: i64,
    },
    Ended,
}

pub fn expiry(not_after: i64, now: i64) -> Expiry {
    let left = not_after.saturating_sub(now);
    if left <= 0 {
        Expiry::Ended
    } else if left < EXPIRY_WARNING_DAYS * 86_400 {
        Expiry::Soon {
            days: left / 86_400,
        }
    } else {
        Expiry::Valid
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC), for messages.
pub fn date(unix: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm: no calendar crate for one line of text.
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn dates_and_expiry() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_798_675_200), "2026-12-31");
        let now = 1_000_000_000;
        assert_eq!(expiry(now - 1, now), Expiry::Ended);
        assert_eq!(expiry(now, now), Expiry::Ended);
        assert_eq!(
            expiry(now + 86_400 * 12 + 5, now),
            Expiry::Soon { days: 12 }
        );
        assert_eq!(expiry(now + 86_400 * 30, now), Expiry::Valid);
    }

    /// A state_dir under a file fails for every user, root included; one that exists or
    /// can be made in a writable directory passes.
    #[test]
    fn state_dir_must_be_a_directory_this_user_can_write_or_make() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(state_dir_problem(dir.path()), None);
        assert_eq!(state_dir_problem(&dir.path().join("a/b/state")), None);
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let e = state_dir_problem(&file).unwrap();
        assert!(e.contains("is not a directory"), "{e}");
        let e = state_dir_problem(&file.join("state")).unwrap();
        assert!(
            e.contains("cannot be created") && e.contains("is a file"),
            "{e}"
        );
        let e = state_dir_problem(&file.join("a/state")).unwrap();
        assert!(e.contains("cannot be created"), "{e}");
    }

    #[test]
    fn hooks_must_exist_be_files_and_executable() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("hook");
        let e = hook_problem("hooks.on_primary", &hook).unwrap();
        assert!(
            e.starts_with("hooks.on_primary: ") && e.contains("does not exist"),
            "{e}"
        );
        std::fs::write(&hook, "#!/bin/sh\n").unwrap();
        // No execute bit at all: refused for root too.
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = hook_problem("hooks.on_primary", &hook).unwrap();
        assert!(
            e.contains("not executable") && e.contains("chmod 0755"),
            "{e}"
        );
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(hook_problem("hooks.on_primary", &hook), None);
        let e = hook_problem("hooks.on_fault", dir.path()).unwrap();
        assert!(e.contains("is not a file"), "{e}");
        let e = hook_problem("hooks.on_fault", Path::new("hooks/fault")).unwrap();
        assert!(e.contains("absolute"), "{e}");
    }
}
