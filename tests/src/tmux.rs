//! [`Tmux`]: a real terminal for end-to-end tests of the TUI. The program runs in a
//! detached tmux session of a fixed size on a private server socket; the test types
//! with `send-keys` and reads the screen with `capture-pane`, as an operator over SSH
//! would see it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::wait_until;

/// One tmux server (private socket) with one session running one command.
pub struct Tmux {
    socket: PathBuf,
    session: String,
    /// Where the wrapper writes the program's exit status.
    status: PathBuf,
}

impl Tmux {
    /// Whether tmux is installed here.
    pub fn available() -> bool {
        Command::new("tmux").arg("-V").output().is_ok()
    }

    /// Starts `argv` in a new `cols`×`rows` session whose server socket lives in `dir`.
    /// `env` is set for the command (`TERM` is tmux's own). When the command exits, the
    /// pane stays, so its last screen and exit status can be read.
    ///
    /// # Panics
    ///
    /// If tmux cannot start the session.
    pub fn start(dir: &Path, cols: u16, rows: u16, env: &[(&str, &str)], argv: &[&str]) -> Self {
        let t = Tmux {
            socket: dir.join("tmux.sock"),
            session: "quorate-e2e".into(),
            status: dir.join("exit-status"),
        };
        // The server reads this as it starts, before the program runs: the pane stays
        // after the program exits, to read its exit status. (Set afterwards, a fast exit
        // could close the session first.)
        let conf = dir.join("tmux.conf");
        std::fs::write(&conf, "set-option -g remain-on-exit on\n")
            .unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        let mut args: Vec<String> = vec![
            "-f".into(),
            conf.to_string_lossy().into_owned(),
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            t.session.clone(),
            "-x".into(),
            cols.to_string(),
            "-y".into(),
            rows.to_string(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        // The exit status comes from a wrapper, not from tmux: tmux can mark a pane dead
        // when its terminal closes, before (and on a busy machine instead of) recording
        // the status.
        args.extend([
            "sh".to_owned(),
            "-c".to_owned(),
            "\"$@\"; echo $? > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"".to_owned(),
            t.status.to_string_lossy().into_owned(),
        ]);
        args.extend(argv.iter().map(|a| (*a).to_owned()));
        let out = t.tmux(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux: {e}"))
    }

    /// Types keys, in tmux's `send-keys` names (`q`, `Enter`, `Down`, `Escape`, `C-c`).
    pub fn send_keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "tmux send-keys: {out:?}");
    }

    /// The visible screen, one line per row, without colours.
    pub fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `f`; returns the last screen either way.
    pub fn wait_for(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> (bool, String) {
        let mut last = String::new();
        let ok = wait_until(timeout, || {
            last = self.screen();
            f(&last)
        });
        (ok, last)
    }

    /// The pane's state in words, for assertion messages: alive or dead, exit status or
    /// signal.
    pub fn describe_pane(&self) -> String {
        let out = self.tmux(&[
            "list-panes",
            "-a",
            "-F",
            "dead=#{pane_dead} status=#{pane_dead_status} signal=#{pane_dead_signal} pid=#{pane_pid}",
        ]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The program's exit status once it has exited (`None` while it runs; 128 + N
    /// after signal N, as the shell says it).
    pub fn exit_status(&self) -> Option<i32> {
        std::fs::read_to_string(&self.status)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn runs_a_program_reads_its_screen_and_exit_status() {
        if !Tmux::available() {
            eprintln!("SKIP: tmux is not installed (scripts/test.sh installs it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let t = Tmux::start(
            dir.path(),
            80,
            24,
            &[("GREETING", "hello")],
            &[
                "sh",
                "-c",
                "echo \"$GREETING from $(tput cols)x$(tput lines)\"; read x; exit 3",
            ],
        );
        let (ok, screen) = t.wait_for(Duration::from_secs(5), |s| s.contains("hello from 80x24"));
        assert!(ok, "{screen}");
        assert_eq!(t.exit_status(), None);
        t.send_keys(&["x", "Enter"]);
        assert!(
            wait_until(Duration::from_secs(5), || t.exit_status() == Some(3)),
            "{}\n{}",
            t.describe_pane(),
            t.screen()
        );
    }
}
