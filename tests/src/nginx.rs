//! Real nginx (Debian's package, open source) for the balancer recipes: `nginx -t` on a
//! config file, and a running nginx with a prefix, pid and logs in a test directory.
//!
//! nginx runs in the foreground (`daemon off`) as a child of the test; dropping [`Nginx`]
//! stops it with SIGTERM (its workers exit with the master), then SIGKILL if it lingers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::cluster::send_signal;
use crate::wait_until;

/// The nginx binary: `nginx` on `PATH`, else Debian's `/usr/sbin/nginx`.
pub fn binary() -> Option<PathBuf> {
    ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| Command::new(p).arg("-v").output().is_ok())
}

/// Runs `nginx -t` on `conf` with `prefix` as its prefix and error log.
///
/// # Panics
///
/// If nginx cannot be run at all.
pub fn test_config(nginx: &Path, conf: &Path, prefix: &Path) -> Output {
    Command::new(nginx)
        .args(base_args(conf, prefix))
        .arg("-t")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx.display()))
}

fn base_args(conf: &Path, prefix: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        format!("{}/", prefix.display()),
        "-e".into(),
        prefix.join("error.log").display().to_string(),
        "-c".into(),
        conf.display().to_string(),
    ]
}

/// A running nginx.
pub struct Nginx {
    child: Child,
    binary: PathBuf,
    conf: PathBuf,
    prefix: PathBuf,
}

impl Nginx {
    /// Checks `conf` (`nginx -t`), then starts nginx on it in the foreground. The config
    /// must set `pid` to a file under `prefix`: this waits for it to appear.
    ///
    /// # Panics
    ///
    /// If the check fails or nginx does not start.
    pub fn start(nginx: &Path, conf: &Path, prefix: &Path, pid: &Path) -> Nginx {
        let t = test_config(nginx, conf, prefix);
        assert!(
            t.status.success(),
            "nginx -t -c {}: {}",
            conf.display(),
            String::from_utf8_lossy(&t.stderr)
        );
        let child = Command::new(nginx)
            .args(base_args(conf, prefix))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nginx.display()));
        let n = Nginx {
            child,
            binary: nginx.to_owned(),
            conf: conf.to_owned(),
            prefix: prefix.to_owned(),
        };
        assert!(
            wait_until(Duration::from_secs(10), || pid.exists()),
            "nginx did not start: {}",
            n.error_log()
        );
        n
    }

    /// The command that checks the config and reloads this nginx, as a shell line (what
    /// a renderer runs).
    pub fn reload_command(&self) -> String {
        let args = base_args(&self.conf, &self.prefix)
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let bin = self.binary.display();
        format!("{bin} {args} -t -q && {bin} {args} -s reload")
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            send_signal(self.child.id(), libc::SIGTERM);
            let exited = wait_until(Duration::from_secs(5), || {
                matches!(self.child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// A child process killed (SIGKILL) and reaped when dropped: a renderer loop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
