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
