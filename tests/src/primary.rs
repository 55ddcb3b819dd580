//! [`PrimaryWatch`]: pollers that ask every node's `/primary` every few milliseconds and
//! keep every answer with the interval in which it was given, so a test can look for two
//! primaries at once after the fact.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{http_request, now};

/// One answer of one node's `/primary`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub node: usize,
    /// When the request was sent and when its answer was read: the node answered at
    /// some instant in between.
    pub sent: Instant,
    pub received: Instant,
    /// `None` when the node did not answer (stopped, killed, refused).
    pub status: Option<u16>,
    pub term: Option<u64>,
}

impl Answer {
    pub fn is_primary(&self) -> bool {
        self.status == Some(200)
    }

    /// Whether this answer was certainly given before `other` (its interval ended before
    /// the other's began).
    pub fn before(&self, other: &Answer) -> bool {
        self.received < other.sent
    }
}

/// Pollers on every node, until [`PrimaryWatch::finish`].
pub struct PrimaryWatch {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Answer>>>,
}

impl PrimaryWatch {
    /// Polls each address's `/primary` every `every`.
    pub fn start(addrs: &[SocketAddr], every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = addrs
            .iter()
            .enumerate()
            .map(|(node, &addr)| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = now();
                        let r = http_request(addr, "GET", "/primary").ok();
                        let received = now();
                        answers.push(Answer {
                            node,
                            sent,
                            received,
                            status: r.as_ref().map(|r| r.status),
                            term: r
                                .as_ref()
                                .and_then(|r| r.header("x-quorate-term"))
                                .and_then(|t| t.parse().ok()),
                        });
                        std::thread::sleep(every);
                    }
                    answers
                })
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops polling and returns every answer, in order of sending.
    pub fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Vec<Answer> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().expect("a poller thread"))
            .collect();
        all.sort_by_key(|a| a.sent);
        all
    }
}

/// Evidence that two nodes held the primary role at the same moment, if the answers
/// prove it:
/// - two nodes answered 200 with the same term (a term has at most one winner), or
/// - node A answered 200 in term T, then node B answered 200, then A again 200 in T,
///   each answer certainly after the previous one: A held its term's lease across B's.
pub fn proven_overlap(answers: &[Answer]) -> Option<String> {
    let primaries: Vec<&Answer> = answers.iter().filter(|a| a.is_primary()).collect();
    for (i, a) in primaries.iter().enumerate() {
        for b in &primaries[i + 1..] {
            if a.node != b.node && a.term.is_some() && a.term == b.term {
                return Some(format!(
                    "nodes {} and {} both answered 200 in term {:?}",
                    a.node, b.node, a.term
                ));
            }
        }
    }
    for (i, a) in primaries.iter().enumerate() {
        for b in primaries[i + 1..]
            .iter()
            .filter(|b| b.node != a.node && a.before(b))
        {
            let sandwich = primaries
                .iter()
                .any(|c| c.node == a.node && c.term == a.term && b.before(c));
            if sandwich {
                return Some(format!(
                    "node {} answered 200 in term {:?} before and after node {} answered 200 (term {:?})",
                    a.node, a.term, b.node, b.term
                ));
            }
        }
    }
    None
}

/// The node answering `/primary` 200 now, if exactly one does.
pub fn current_primary(addrs: &[SocketAddr]) -> Option<usize> {
    let holders: Vec<usize> = addrs
        .iter()
        .enumerate()
        .filter(|(_, a)| http_request(**a, "GET", "/primary").is_ok_and(|r| r.status == 200))
        .map(|(i, _)| i)
        .collect();
    match holders.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Waits up to `timeout` for exactly one of `addrs` to answer `/primary` 200, and
/// returns its index.
pub fn wait_one_primary(addrs: &[SocketAddr], timeout: std::time::Duration) -> Option<usize> {
    let mut found = None;
    crate::wait_until(timeout, || {
        found = current_primary(addrs);
        found.is_some()
    });
    found
}
