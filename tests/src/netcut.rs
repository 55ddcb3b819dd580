//! Real network cuts for process tests: nftables rules that drop a node's QUIC (UDP)
//! traffic on loopback, in one direction or both. Needs root and `nft` (`.ci/run` and
//! `scripts/test.sh` install nftables); tests skip with a message when it is missing.
//!
//! Each [`Cut`] owns its own nftables table (named after the process and a counter), so
//! tests running in parallel never touch each other's rules, and dropping it heals.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Which packets of the node's port to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Packets to the node (it hears nothing, but can still send).
    Inbound,
    /// Packets from the node (it is heard by no one, but can still hear).
    Outbound,
    Both,
}

/// An installed cut; dropping it removes the rules.
pub struct Cut {
    table: String,
}

/// Whether nftables can be used here (root and `nft` present).
pub fn available() -> bool {
    Command::new("nft")
        .args(["list", "tables"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs an nftables script (`nft -f -`); the error carries nft's own message.
pub fn nft(script: &str) -> Result<(), String> {
    nft_with(Command::new("nft"), "nft", script)
}

/// Feeds `script` to `cmd` (an `nft -f -`, perhaps behind `ip netns exec`); errors
/// start with `what` and carry nft's own message.
pub fn nft_with(mut cmd: Command, what: &str, script: &str) -> Result<(), String> {
    let out = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            if let Some(stdin) = child.stdin.as_mut() {
                stdin.write_all(script.as_bytes())?;
            }
            child.wait_with_output()
        })
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}\nscript:\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Cut {
    /// Drops UDP packets to and/or from `port` on every interface (loopback included).
    pub fn udp_port(port: u16, direction: Direction) -> Result<Cut, String> {
        let table = format!(
            "quorate_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut rules = String::new();
        if matches!(direction, Direction::Inbound | Direction::Both) {
            rules.push_str(&format!("    udp dport {port} drop\n"));
        }
        if matches!(direction, Direction::Outbound | Direction::Both) {
            rules.push_str(&format!("    udp sport {port} drop\n"));
        }
        // `output` sees every locally sent packet, loopback included, exactly once.
        nft(&format!(
            "table inet {table} {{\n  chain out {{\n    type filter hook output priority -10; policy accept;\n{rules}  }}\n}}\n"
        ))?;
        Ok(Cut { table })
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {}\n", self.table));
    }
}
