//! What the HTTP port was asked, counted: requests by [`Endpoint`] (the kind of route,
//! never the raw path) and status code, for `quorate_http_requests_total`. A balancer
//! that stops polling shows as a rate of zero on the node it stopped polling.
//!
//! Owns the endpoint classes, the code buckets and the counters ([`Requests`]: one
//! relaxed atomic add per answer, on the HTTP thread). Must never key a counter by
//! anything a client chooses (a path, a role or task name, a code from `?ok=`): every
//! key is a label value, and the label set must stay small and fixed.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kind of route a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Live,
    Ready,
    /// `/health`, and `/` (HAProxy's default probe).
    Health,
    Primary,
    Secondary,
    /// `/role/{role}`, any role.
    Role,
    /// `/task/{name}`, any task.
    Task,
    Cluster,
    Metrics,
    /// Any other path.
    Other,
}

impl Endpoint {
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Live,
        Endpoint::Ready,
        Endpoint::Health,
        Endpoint::Primary,
        Endpoint::Secondary,
        Endpoint::Role,
        Endpoint::Task,
        Endpoint::Cluster,
        Endpoint::Metrics,
        Endpoint::Other,
    ];

    /// The class of a request path (as received; routes match it the same way).
    pub fn of(path: &str) -> Self {
        if path.starts_with("/role/") {
            return Endpoint::Role;
        }
        if path.starts_with("/task/") {
            return Endpoint::Task;
        }
        match path {
            "/live" => Endpoint::Live,
            "/ready" => Endpoint::Ready,
            "/health" | "/" => Endpoint::Health,
            "/primary" => Endpoint::Primary,
            "/secondary" => Endpoint::Secondary,
            "/cluster" => Endpoint::Cluster,
            "/metrics" => Endpoint::Metrics,
            _ => Endpoint::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Live => "live",
            Endpoint::Ready => "ready",
            Endpoint::Health => "health",
            Endpoint::Primary => "primary",
            Endpoint::Secondary => "secondary",
            Endpoint::Role => "role",
            Endpoint::Task => "task",
            Endpoint::Cluster => "cluster",
            Endpoint::Metrics => "metrics",
            Endpoint::Other => "other",
        }
    }
}

/// The status codes counted apart; any other (a `?ok=`/`?fail=` override, say) is
/// counted as `other`.
pub const CODES: [u16; 6] = [200, 403, 404, 405, 500, 503];
const BUCKETS: usize = CODES.len() + 1;

fn bucket(code: u16) -> usize {
    CODES.iter().position(|c| *c == code).unwrap_or(CODES.len())
}

/// A code bucket's label: the code, or `other`.
pub fn code_label(bucket: usize) -> String {
    CODES
        .get(bucket)
        .map_or_else(|| "other".to_owned(), u16::to_string)
}

/// Requests answered, per endpoint and code bucket, since the server started.
#[derive(Debug)]
pub struct Requests {
    counts: [[AtomicU64; BUCKETS]; Endpoint::ALL.len()],
}

impl Default for Requests {
    fn default() -> Self {
        Self::new()
    }
}

impl Requests {
    pub const fn new() -> Self {
        Self {
            counts: [const { [const { AtomicU64::new(0) }; BUCKETS] }; Endpoint::ALL.len()],
        }
    }

    /// Counts one answer.
    pub fn count(&self, endpoint: Endpoint, status: u16) {
        self.counts[endpoint as usize][bucket(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every (endpoint, code label, count), code buckets in [`CODES`] order then `other`.
    pub fn read(&self) -> Vec<(Endpoint, String, u64)> {
        let mut out = Vec::with_capacity(Endpoint::ALL.len() * BUCKETS);
        for e in Endpoint::ALL {
            for (b, n) in self.counts[e as usize].iter().enumerate() {
                out.push((e, code_label(b), n.load(Ordering::Relaxed)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_into_a_fixed_set_of_endpoints_and_codes() {
        for (path, want) in [
            ("/", Endpoint::Health),
            ("/health", Endpoint::Health),
            ("/primary", Endpoint::Primary),
            ("/role/web", Endpoint::Role),
            ("/task/nightly%20job", Endpoint::Task),
            ("/metrics", Endpoint::Metrics),
            ("/health/", Endpoint::Other),
            ("/etc/passwd", Endpoint::Other),
        ] {
            assert_eq!(Endpoint::of(path), want, "{path}");
        }
        for (i, e) in Endpoint::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i, "{e:?} out of order");
        }
        let r = Requests::default();
        r.count(Endpoint::Health, 200);
        r.count(Endpoint::Health, 200);
        r.count(Endpoint::Health, 418);
        r.count(Endpoint::Primary, 503);
        let got: Vec<(&str, String, u64)> = r
            .read()
            .into_iter()
            .filter(|(_, _, n)| *n > 0)
            .map(|(e, c, n)| (e.as_str(), c, n))
            .collect();
        assert_eq!(
            got,
            [
                ("health", "200".to_owned(), 2),
                ("health", "other".to_owned(), 1),
                ("primary", "503".to_owned(), 1),
            ]
        );
    }
}
