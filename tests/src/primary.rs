//! [`PrimaryWatch`]: pollers that ask every node's `/primary` (or a `/task/{name}`) every
//! few milliseconds and keep every answer with the interval in which it was given, so a
//! test can look for two primaries, or two runners of a task, at once after the fact.

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
        Self::start_path(addrs, "/primary", every)
    }

    /// Polls `path` on each address every `every`.
    pub fn start_path(addrs: &[SocketAddr], path: &'static str, every: Duration) -> Self {
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
                        let r = http_request(addr, "GET", path).ok();
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
    // The first 200 of each term, by node.
    let mut firsts: Vec<&Answer> = Vec::new();
    for a in &primaries {
        if a.term.is_some() && !firsts.iter().any(|f| f.node == a.node && f.term == a.term) {
            firsts.push(a);
        }
    }
    for (i, a) in firsts.iter().enumerate() {
        for b in &firsts[i + 1..] {
            if a.node != b.node && a.term == b.term {
                return Some(format!(
                    "nodes {} and {} both answered 200 in term {:?}",
                    a.node, b.node, a.term
                ));
            }
        }
    }
    // Per node and term: the earliest end of an answer and the latest start of one. Node
    // A held term T across B's answer exactly when one of A's answers in T ended before
    // B's began and another began after B's ended (linear in the answers, so pollers
    // running for many seconds stay cheap to check).
    struct Span<'a> {
        first: &'a Answer,
        earliest_received: Instant,
        latest_sent: Instant,
    }
    let mut spans: Vec<Span<'_>> = Vec::new();
    for a in &primaries {
        match spans
            .iter_mut()
            .find(|s| s.first.node == a.node && s.first.term == a.term)
        {
            Some(s) => {
                s.earliest_received = s.earliest_received.min(a.received);
                s.latest_sent = s.latest_sent.max(a.sent);
            }
            None => spans.push(Span {
                first: a,
                earliest_received: a.received,
                latest_sent: a.sent,
            }),
        }
    }
    for s in &spans {
        let a = s.first;
        if let Some(b) = primaries.iter().find(|b| {
            b.node != a.node && s.earliest_received < b.sent && b.received < s.latest_sent
        }) {
            return Some(format!(
                "node {} answered 200 in term {:?} before and after node {} answered 200 (term {:?})",
                a.node, a.term, b.node, b.term
            ));
        }
    }
    None
}

/// Evidence that two nodes ran a singleton task at the same moment, if the answers of
/// their `/task/{name}` prove it: a node answered 200 certainly after one of another
/// node's 200s and certainly before the next answer of that node, which was a 200 too
/// (a task has no term to tell claims apart, so a run of 200s from one node, polled
/// every few milliseconds, counts as one claim held throughout).
pub fn proven_task_overlap(answers: &[Answer]) -> Option<String> {
    let nodes = answers.iter().map(|a| a.node).max().map_or(0, |n| n + 1);
    for a_node in 0..nodes {
        let mine: Vec<&Answer> = answers.iter().filter(|a| a.node == a_node).collect();
        for pair in mine.windows(2) {
            let (first, next) = (pair[0], pair[1]);
            if !(first.is_primary() && next.is_primary()) {
                continue;
            }
            if let Some(b) = answers.iter().find(|b| {
                b.node != a_node
                    && b.is_primary()
                    && first.received < b.sent
                    && b.received < next.sent
            }) {
                return Some(format!(
                    "node {} answered 200 between two 200s of node {} ({:?} apart)",
                    b.node,
                    a_node,
                    next.sent.saturating_duration_since(first.received)
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

/// A stretch in which no node was seen answering `/primary` 200: from the answer of the
/// last 200 before it (`after`) to the request of the first 200 after it (`before`).
/// The real stretch is at most this long (a poller's interval is added on each side at
/// worst, less the time the requests took).
#[derive(Debug, Clone, Copy)]
pub struct Gap {
    pub from: Instant,
    pub to: Instant,
    /// The nodes that answered 200 on each side of it.
    pub after: usize,
    pub before: usize,
}

impl Gap {
    pub fn len(&self) -> Duration {
        self.to.saturating_duration_since(self.from)
    }
}

/// The stretches without a primary between the first and the last 200 answer (a handover,
/// a failover), longest first. `answers` as [`PrimaryWatch::finish`] returns them.
pub fn gaps(answers: &[Answer]) -> Vec<Gap> {
    let primaries: Vec<&Answer> = answers.iter().filter(|a| a.is_primary()).collect();
    let mut gaps: Vec<Gap> = primaries
        .windows(2)
        .map(|w| Gap {
            from: w[0].received,
            to: w[1].sent,
            after: w[0].node,
            before: w[1].node,
        })
        .collect();
    gaps.sort_by_key(|g| std::cmp::Reverse(g.len()));
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(t0: Instant, node: usize, from_ms: u64, to_ms: u64, term: u64) -> Answer {
        Answer {
            node,
            sent: t0 + Duration::from_millis(from_ms),
            received: t0 + Duration::from_millis(to_ms),
            status: Some(200),
            term: Some(term),
        }
    }

    #[test]
    fn overlaps_are_proven_only_by_a_shared_term_or_a_sandwich() {
        let t0 = now();
        // A handover: n0 in term 1, then n1 in term 2.
        let handover = [
            answer(t0, 0, 0, 2, 1),
            answer(t0, 0, 5, 7, 1),
            answer(t0, 1, 10, 12, 2),
        ];
        assert_eq!(proven_overlap(&handover), None);
        // Overlapping requests prove nothing.
        let close = [
            answer(t0, 0, 0, 10, 1),
            answer(t0, 1, 5, 15, 2),
            answer(t0, 0, 12, 20, 1),
        ];
        assert_eq!(proven_overlap(&close), None);
        // Two nodes in one term.
        let shared = [answer(t0, 0, 0, 2, 3), answer(t0, 1, 50, 52, 3)];
        assert!(proven_overlap(&shared).is_some_and(|p| p.contains("both answered")));
        // n0 in term 1 before and after n1 in term 2.
        let sandwich = [
            answer(t0, 0, 0, 2, 1),
            answer(t0, 1, 5, 7, 2),
            answer(t0, 0, 10, 12, 1),
        ];
        assert!(proven_overlap(&sandwich).is_some_and(|p| p.contains("before and after")));
    }
}
