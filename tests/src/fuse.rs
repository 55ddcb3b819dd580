//! [`StallableMount`]: a FUSE mount (bindfs) whose daemon can be stopped, so every file
//! operation on it blocks — what a hung NFS server does to its clients. Needs root,
//! `/dev/fuse` and the bindfs package (scripts/test.sh installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_until;

/// `source` bind-mounted at `target` through FUSE, until dropped.
pub struct StallableMount {
    daemon: Child,
    target: PathBuf,
    /// The directories of [`StallableMount::temporary`], removed after the unmount
    /// (fields drop after `Drop::drop`).
    _dir: Option<tempfile::TempDir>,
}

impl StallableMount {
    /// Mounts `source` at `target` (both existing directories). `None` when bindfs or
    /// FUSE is not available here.
    pub fn mount(source: &Path, target: &Path) -> Option<Self> {
        let daemon = Command::new("bindfs")
            .arg("-f")
            .arg(source)
            .arg(target)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut m = Self {
            daemon,
            target: target.to_owned(),
            _dir: None,
        };
        let mounted = wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
                info.lines().any(|l| {
                    l.split(' ').nth(4) == Some(&*target.to_string_lossy()) && l.contains("fuse")
                })
            })
        });
        if !mounted || m.daemon.try_wait().ok().flatten().is_some() {
            return None;
        }
        Some(m)
    }

    /// A fresh export mounted at a fresh mount point, both in a temporary directory that
    /// goes away with the mount. `None` when bindfs or FUSE is not available here.
    pub fn temporary() -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let (src, mnt) = (dir.path().join("export"), dir.path().join("repo"));
        std::fs::create_dir_all(&src).ok()?;
        std::fs::create_dir_all(&mnt).ok()?;
        let mut m = Self::mount(&src, &mnt)?;
        m._dir = Some(dir);
        Some(m)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Stops the FUSE daemon: from now on every access to the mount blocks.
    pub fn stall(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets the daemon answer again.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        crate::cluster::send_signal(self.daemon.id(), sig);
    }
}

impl Drop for StallableMount {
    fn drop(&mut self) {
        if self.daemon.try_wait().ok().flatten().is_none() {
            self.resume();
        }
        // Lazy: whoever still blocks on it (a killed agent's thread) must not keep it.
        let _ = Command::new("umount").arg("-l").arg(&self.target).status();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
