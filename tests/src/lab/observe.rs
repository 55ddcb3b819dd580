//! [`Observer`]: what the lab's nodes said over a run, kept for counting afterwards.
//!
//! Owns: one poller thread per node asking `/primary` every 10 ms (scheduled from the
//! start of each request, so a slow answer does not stretch the period) and one asking
//! `/cluster` every 100 ms, and the [`Record`] they make: every `/primary` answer with
//! the interval it was given in, and every `/cluster` view (term, primary, member
//! states). [`Record`] counts term changes, changes of primary, `dead` marks, proven
//! overlaps of two primaries (`primary::proven_overlap`) and the gaps without one.
//!
//! It must never judge a scenario (the scenarios say what a count must be) or change
//! anything on the nodes: it only reads their HTTP ports, over TCP, which the lab's
//! faults (UDP only) leave alone.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::primary::{self, Answer, Gap};
use crate::{http_request, now};

/// How often each node's `/primary` is asked.
pub const PRIMARY_EVERY: Duration = Duration::from_millis(10);
/// How often each node's `/cluster` is read.
pub const CLUSTER_EVERY: Duration = Duration::from_millis(100);

/// One node's `/cluster` at one moment.
#[derive(Debug, Clone)]
pub struct View {
    /// The node that answered.
    pub node: usize,
    pub at: Instant,
    pub term: u64,
    pub primary: Option<String>,
    /// (member, state) as this node sees them.
    pub states: Vec<(String, String)>,
}

/// Pollers on every node until [`Observer::finish`].
pub struct Observer {
    stop: Arc<AtomicBool>,
    started: Instant,
    primary: Vec<JoinHandle<Vec<Answer>>>,
    cluster: Vec<JoinHandle<Vec<View>>>,
}

fn every<T: Send + 'static>(
    stop: &Arc<AtomicBool>,
    period: Duration,
    mut ask: impl FnMut() -> Option<T> + Send + 'static,
) -> JoinHandle<Vec<T>> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut next = now();
        while !stop.load(Ordering::Relaxed) {
            if let Some(x) = ask() {
                out.push(x);
            }
            next += period;
            let t = now();
            if next > t {
                std::thread::sleep(next - t);
            } else {
                next = t;
            }
        }
        out
    })
}

impl Observer {
    /// Starts polling the nodes' HTTP addresses (node `i` is `addrs[i]`).
    pub fn start(addrs: &[SocketAddr]) -> Observer {
        let stop = Arc::new(AtomicBool::new(false));
        let primary = addrs
            .iter()
            .enumerate()
            .map(|(node, &addr)| {
                every(&stop, PRIMARY_EVERY, move || {
                    let sent = now();
                    let r = http_request(addr, "GET", "/primary").ok();
                    Some(Answer {
                        node,
                        sent,
                        received: now(),
                        status: r.as_ref().map(|r| r.status),
                        term: r
                            .as_ref()
                            .and_then(|r| r.header("x-quorate-term"))
                            .and_then(|t| t.parse().ok()),
                    })
                })
            })
            .collect();
        let cluster = addrs
            .iter()
            .enumerate()
            .map(|(node, &addr)| {
                every(&stop, CLUSTER_EVERY, move || {
                    let r = http_request(addr, "GET", "/cluster").ok()?;
                    let doc: serde_json::Value = serde_json::from_str(&r.body).ok()?;
                    Some(View {
                        node,
                        at: now(),
                        term: doc["term"].as_u64()?,
                        primary: doc["primary"].as_str().map(str::to_owned),
                        states: crate::cluster::nodes(&doc)
                            .iter()
                            .filter_map(|m| {
                                Some((
                                    m["node"].as_str()?.to_owned(),
                                    m["state"].as_str()?.to_owned(),
                                ))
                            })
                            .collect(),
                    })
                })
            })
            .collect();
        Observer {
            stop,
            started: now(),
            primary,
            cluster,
        }
    }

    /// Stops polling; everything seen.
    pub fn finish(self) -> Record {
        self.stop.store(true, Ordering::Relaxed);
        let mut answers: Vec<Answer> = self
            .primary
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect();
        answers.sort_by_key(|a| a.sent);
        let mut views: Vec<View> = self
            .cluster
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect();
        views.sort_by_key(|v| v.at);
        Record {
            started: self.started,
            finished: now(),
            answers,
            views,
        }
    }
}

/// What an [`Observer`] saw.
#[derive(Debug, Clone)]
pub struct Record {
    pub started: Instant,
    pub finished: Instant,
    pub answers: Vec<Answer>,
    pub views: Vec<View>,
}

/// A node seen taking a state by another node: (seen by, member, state, when).
#[derive(Debug, Clone)]
pub struct Mark {
    pub by: usize,
    pub member: String,
    pub state: String,
    pub at: Instant,
}

impl Record {
    /// Evidence of two nodes answering `/primary` 200 at one moment (must never be).
    pub fn overlap(&self) -> Option<String> {
        primary::proven_overlap(&self.answers)
    }

    /// Every term any node reported, in `/primary` headers or `/cluster`.
    pub fn terms(&self) -> BTreeSet<u64> {
        self.answers
            .iter()
            .filter_map(|a| a.term)
            .chain(self.views.iter().map(|v| v.term))
            .filter(|t| *t > 0)
            .collect()
    }

    /// How many times the highest term seen so far went up during the run.
    pub fn term_changes(&self) -> usize {
        self.terms().len().saturating_sub(1)
    }

    /// The (node, term) holding `/primary` 200, each time it changed, in order.
    pub fn primaries(&self) -> Vec<(usize, Option<u64>)> {
        let mut out: Vec<(usize, Option<u64>)> = Vec::new();
        for a in self.answers.iter().filter(|a| a.is_primary()) {
            if out.last() != Some(&(a.node, a.term)) {
                out.push((a.node, a.term));
            }
        }
        out
    }

    /// How many times the primary changed (another node, or the same one in a new term).
    pub fn failovers(&self) -> usize {
        self.primaries().len().saturating_sub(1)
    }

    /// Each time a node was seen marking `member` (or anyone, if `None`) `state`, once
    /// per stretch: the first view of it after a view without it.
    pub fn marks(&self, state: &str, member: Option<&str>) -> Vec<Mark> {
        let mut out = Vec::new();
        let mut marked: BTreeSet<(usize, String)> = BTreeSet::new();
        for v in &self.views {
            for (m, s) in &v.states {
                if member.is_some_and(|want| want != m) {
                    continue;
                }
                let key = (v.node, m.clone());
                if s == state {
                    if marked.insert(key) {
                        out.push(Mark {
                            by: v.node,
                            member: m.clone(),
                            state: s.clone(),
                            at: v.at,
                        });
                    }
                } else {
                    marked.remove(&key);
                }
            }
        }
        out
    }

    /// Stretches without any 200 between two 200s, longest first.
    pub fn gaps(&self) -> Vec<Gap> {
        primary::gaps(&self.answers)
    }

    /// The gaps where the role moved to another node (handovers, failovers).
    pub fn handover_gaps(&self) -> Vec<Duration> {
        let mut g: Vec<Duration> = self
            .gaps()
            .iter()
            .filter(|g| g.after != g.before)
            .map(Gap::len)
            .collect();
        g.sort();
        g
    }

    /// Answers of node `i` to `/primary` that were not 200 (`None`: no answer at all).
    pub fn not_primary(&self, i: usize) -> Vec<Option<u16>> {
        self.answers
            .iter()
            .filter(|a| a.node == i && !a.is_primary())
            .map(|a| a.status)
            .collect()
    }

    /// Answers of `/primary` (all nodes), for the report.
    pub fn polls(&self) -> usize {
        self.answers.len()
    }

    pub fn duration(&self) -> Duration {
        self.finished.saturating_duration_since(self.started)
    }
}
