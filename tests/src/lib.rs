//! quorate's multi-agent tests.
//!
//! This crate holds the test harnesses; the tests themselves live in `tests/*.rs`.
//!
//! - [`cluster`]: [`TestCluster`] runs REAL `quorate-agent` processes on loopback, with
//!   certificates made by the real `quorate ca`, one config file per node in the
//!   documented format, and a log file per node. The binaries must be built first
//!   (`cargo build --workspace --bins`); [`bin`] finds them next to the test executable.
//! - [`haproxy`]: real HAProxy in front of a cluster; [`mountns`]: per-agent mount
//!   namespaces; [`fuse`]: a mount that stops answering, like a hung NFS server;
//!   [`tmux`]: a real terminal for the TUI; [`keepalived`]: three real keepalived
//!   instances in network namespaces, the idle benchmark's baseline; [`procstat`]: what
//!   a process costs, read from `/proc` (CPU per thread, wake-ups, RSS).
//! - [`quic`]: a bare quinn client for tests that play a misbehaving peer (a certificate
//!   from another CA, a hello that claims another node).
//! - Here: the small tools every test uses — [`wait_until`], a blocking HTTP/1.1 client
//!   ([`http_request`]), a seeded PRNG ([`XorShift`]) and a [`Stopwatch`].
//!
//! Tests that use randomness take a fixed seed and print it in their assertion
//! messages; replaying a failure means running the same test again (the seed is in the
//! source). A failing cluster test prints every node's log (see [`TestCluster`]'s
//! `Drop`).

pub mod bench;
pub mod cluster;
pub mod fuse;
pub mod haproxy;
pub mod keepalived;
pub mod lab;
pub mod mountns;
pub mod netcut;
pub mod nginx;
pub mod primary;
pub mod procstat;
pub mod quic;
pub mod sim;
pub mod tmux;

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use cluster::{NodeConfig, TestCluster, TestClusterBuilder};

/// The path of a workspace binary (`quorate-agent`, `quorate`) of the same profile as
/// the running test: the test executable lives in `target/<profile>/deps/`, binaries in
/// `target/<profile>/`.
///
/// # Panics
///
/// If the binary is missing: run `cargo build --workspace --bins` first.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe.parent().expect("the test executable has a directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("deps/ has a parent");
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Runs `quorate ca init --dir DIR` (the real binary).
pub fn ca_init(dir: &Path) {
    run_ok(
        Command::new(bin("quorate"))
            .args(["ca", "init", "--dir"])
            .arg(dir),
    );
}

/// Runs `quorate ca issue --dir DIR NODE`: writes `DIR/NODE.pem` and `DIR/NODE.key`.
pub fn ca_issue(dir: &Path, node: &str) {
    run_ok(
        Command::new(bin("quorate"))
            .args(["ca", "issue", "--dir"])
            .arg(dir)
            .arg(node),
    );
}

/// Runs a command to completion; panics with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Reads the monotonic clock. The workspace bans `Instant::now` so that agent logic
/// takes time as an input; tests that measure real processes need the real clock, and
/// this is the one place in the harness that reads it.
#[allow(clippy::disallowed_methods)] // tests measure real processes: see above
pub fn now() -> Instant {
    Instant::now()
}

/// Measures elapsed time since it was started.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(now())
    }

    pub fn elapsed(&self) -> Duration {
        now().saturating_duration_since(self.0)
    }
}

/// Polls `cond` every 50 ms until it is true (returns `true`) or `timeout` has passed
/// (returns `false`). `cond` is always evaluated at least once, and once more at the
/// deadline.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until_every(timeout, Duration::from_millis(50), cond)
}

/// [`wait_until`] with another polling interval.
pub fn wait_until_every(
    timeout: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let clock = Stopwatch::start();
    loop {
        if cond() {
            return true;
        }
        if clock.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// An HTTP answer. Header names are lower-cased.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// Timeout for connecting, and for each read and write, of [`http_request`].
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// A minimal blocking HTTP/1.1 client: one request per connection
/// (`Connection: close`), read until the server closes.
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: quorate-tests\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what}: {:?}", String::from_utf8_lossy(raw)),
        )
    };
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = String::from_utf8_lossy(&raw[end + 4..]).into_owned();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// xorshift64*: a tiny seeded PRNG, so garbage tests are reproducible without `rand`.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // The state must never be zero.
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        assert!(lo <= hi);
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let r = parse_response(b"HTTP/1.1 503 Service Unavailable\r\nX-Quorate-Node: n1\r\ncontent-length: 2\r\n\r\n{}")
            .unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.header("x-quorate-node"), Some("n1"));
        assert_eq!(r.header("Content-Length"), Some("2"));
        assert_eq!(r.body, "{}");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn xorshift_is_seeded_and_in_range() {
        let mut a = XorShift::new(7);
        let mut b = XorShift::new(7);
        let xs: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..10).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(XorShift::new(8).next_u64(), xs[0]);
        for _ in 0..1000 {
            let r = a.range(1, 1500);
            assert!((1..=1500).contains(&r));
        }
        assert_eq!(XorShift::new(0).range(3, 3), 3);
    }
}
