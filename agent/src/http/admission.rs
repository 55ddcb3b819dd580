//! Who may hold one of the HTTP port's connection slots, and for how long.
//!
//! Owns: the numbers (slots, the share kept for `http.allow`, the cap per source address
//! outside it, the header timeout, the buffer size, the listen backlog), the admission
//! rule ([`admit`], a pure function of the source's class and the counts), the book of
//! who holds a slot ([`Slots`]; [`Gate`] for an accept loop, whose connections give their
//! slot back when they end), and the counters `/metrics` shows ([`Counters`],
//! [`ConnStats`]). The agent-check port is rationed the same way, with its own numbers.
//!
//! Must never: refuse an `http.allow` address while a slot is free (the load balancer
//! belongs there: a flood from elsewhere may use up its own share, never the
//! balancer's), block, or read a clock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::ratelog::Refusal;
use crate::view::ClusterView;

/// Connections served at once, at most (fewer if the file descriptor limit is lower:
/// see `budget` in `http/mod.rs`).
pub const MAX_CONNECTIONS: usize = 1024;
/// Of the slots, how many only `http.allow` addresses may take: what a flood from
/// elsewhere can never take from the balancer. A balancer needs a handful (HAProxy
/// opens one connection per check).
pub const RESERVED: usize = MAX_CONNECTIONS / 8;
/// Connections one source outside `http.allow` may hold at once (an IPv4 address, or an
/// IPv6 /64: one host usually holds a whole /64). A balancer outside `http.allow`, or
/// a person with curl, needs a few.
pub const PER_SOURCE: usize = 32;
/// A connection must deliver a complete request head within this long after it opens
/// or after its previous answer; else it is closed. Balancers send their request at
/// once; this is what a slow (slowloris) or idle client can hold a slot for.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// hyper's read and write buffer per connection (its default is about 400 KiB; a
/// request to this port is a few hundred bytes, hyper's minimum is 8 KiB).
pub const MAX_BUF: usize = 16 * 1024;
/// The listen backlog: connections the kernel holds until they are accepted (Rust's
/// default is 128; Linux caps it at `net.core.somaxconn`, 4096 by default), so a burst
/// of connections does not drop the balancer's SYN while the accept loop catches up.
pub const BACKLOG: u32 = 4096;

/// The agent-check port's numbers: an answer takes a moment (written at accept, then
/// at most a second's linger), HAProxy opens one connection per check; its reserve is
/// for `http.allow` too.
pub const AGENT_CHECK: Limits = Limits {
    slots: 64,
    reserved: 16,
    per_source: 8,
};

/// Whether `ip` is in `http.allow` (as of `view`: a reload applies to the next
/// connection).
pub fn allowed(view: &ClusterView, ip: IpAddr) -> bool {
    view.http_allow.iter().any(|c| c.contains(ip))
}

/// The limits [`admit`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections at once, in all.
    pub slots: usize,
    /// Of them, kept for `http.allow`.
    pub reserved: usize,
    /// Per source outside `http.allow`.
    pub per_source: usize,
}

impl Limits {
    /// The limits for `slots` connections: [`RESERVED`] and [`PER_SOURCE`] scaled down
    /// with them when the file descriptor limit allows fewer than [`MAX_CONNECTIONS`].
    pub fn for_slots(slots: usize) -> Self {
        let slots = slots.clamp(1, MAX_CONNECTIONS);
        Self {
            slots,
            reserved: (slots * RESERVED / MAX_CONNECTIONS).max(1).min(slots),
            per_source: PER_SOURCE.min(slots),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::for_slots(MAX_CONNECTIONS)
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken (by `http.allow` addresses too).
    Full,
    /// Only the share kept for `http.allow` is left, and the source is not in it.
    Reserved,
    /// The source (outside `http.allow`) holds [`Limits::per_source`] connections.
    PerSource,
}

impl Refused {
    /// The label `/metrics` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Reserved => "reserved",
            Self::PerSource => "per-source",
        }
    }
}

/// The admission rule: may a connection from a source that is (`allowed`) or is not in
/// `http.allow` have a slot, while `open` connections are held in all and `from_source`
/// by the same source? `from_source` is not looked at for an `allowed` source.
pub fn admit(
    limits: &Limits,
    allowed: bool,
    open: usize,
    from_source: usize,
) -> Result<(), Refused> {
    if open >= limits.slots {
        return Err(Refused::Full);
    }
    if allowed {
        return Ok(());
    }
    if from_source >= limits.per_source {
        return Err(Refused::PerSource);
    }
    if open >= limits.slots.saturating_sub(limits.reserved) {
        return Err(Refused::Reserved);
    }
    Ok(())
}

/// The rate-limited log line a refusal goes under.
pub fn refusal_kind(why: Refused) -> Refusal {
    match why {
        Refused::Full | Refused::Reserved => Refusal::HttpBusy,
        Refused::PerSource => Refusal::HttpSource,
    }
}

/// What the log says about a connection to `port` (`HTTP`, `agent-check`) from `remote`
/// refused for `why`, with the counts of `slots`.
pub fn refusal_line(port: &str, remote: SocketAddr, why: Refused, slots: &Slots) -> String {
    let l = slots.limits();
    match why {
        Refused::Full | Refused::Reserved => {
            let (mine, others) = slots.open();
            format!(
                "refused an {port} connection from {remote}: {} connections open ({mine} from \
                 http.allow, {others} from elsewhere; {} slots, {} of them kept for \
                 http.allow): a flood? The load balancer keeps its share if its address is \
                 in http.allow",
                mine + others,
                l.slots,
                l.reserved
            )
        }
        Refused::PerSource => format!(
            "refused an {port} connection from {remote}: that address already holds {} \
             connections, the most one address outside http.allow may hold (a load balancer \
             belongs in http.allow)",
            l.per_source
        ),
    }
}

/// Where a connection comes from, as the per-source cap counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    V4(Ipv4Addr),
    /// The upper 64 bits: an IPv6 /64.
    V6(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(a) => Self::V4(a),
            // The shift leaves 64 bits: the cast loses nothing.
            IpAddr::V6(a) => Self::V6((u128::from(a) >> 64) as u64),
        }
    }
}

/// A slot held; handed back with [`Slots::give_back`] when the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// `None` for an `http.allow` source (not counted per source).
    source: Option<Source>,
}

/// Who holds the slots: the counts [`admit`] judges by.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    limits: Limits,
    allowed: usize,
    other: usize,
    /// Connections held per source outside `http.allow`; a source holding none has no
    /// entry (so the map never holds more entries than there are slots).
    by_source: HashMap<Source, usize>,
}

impl Slots {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes a slot for a connection from `ip`, or says why not.
    pub fn take(&mut self, ip: IpAddr, allowed: bool) -> Result<Ticket, Refused> {
        let source = Source::of(ip);
        let from_source = if allowed {
            0
        } else {
            self.by_source.get(&source).copied().unwrap_or(0)
        };
        admit(
            &self.limits,
            allowed,
            self.allowed + self.other,
            from_source,
        )?;
        if allowed {
            self.allowed += 1;
            Ok(Ticket { source: None })
        } else {
            self.other += 1;
            *self.by_source.entry(source).or_default() += 1;
            Ok(Ticket {
                source: Some(source),
            })
        }
    }

    pub fn give_back(&mut self, ticket: Ticket) {
        match ticket.source {
            None => self.allowed = self.allowed.saturating_sub(1),
            Some(source) => {
                self.other = self.other.saturating_sub(1);
                if let Some(n) = self.by_source.get_mut(&source) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.by_source.remove(&source);
                    }
                }
            }
        }
    }

    /// Connections held: (from `http.allow`, from elsewhere).
    pub fn open(&self) -> (usize, usize) {
        (self.allowed, self.other)
    }
}

/// A slot held by a connection: handed back to its [`Gate`] when dropped (wherever the
/// connection ends, on whichever thread).
#[derive(Debug)]
pub struct Held {
    ticket: Ticket,
    release: mpsc::UnboundedSender<Ticket>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // The gate gone means its server is gone: nothing to give back to.
        let _ = self.release.send(self.ticket);
    }
}

/// [`Slots`] for one accept loop, with the way back for slots that connections end.
#[derive(Debug)]
pub struct Gate {
    slots: Slots,
    /// At most one message per open connection, so it holds at most `limits.slots`.
    release_tx: mpsc::UnboundedSender<Ticket>,
    release_rx: mpsc::UnboundedReceiver<Ticket>,
}

impl Gate {
    pub fn new(limits: Limits) -> Self {
        let (release_tx, release_rx) = mpsc::unbounded_channel();
        Self {
            slots: Slots::new(limits),
            release_tx,
            release_rx,
        }
    }

    /// A slot for a connection from `ip` (`allowed`: in `http.allow`), after taking back
    /// those of the connections that ended, or why not.
    pub fn admit(&mut self, ip: IpAddr, allowed: bool) -> Result<Held, Refused> {
        while let Ok(ticket) = self.release_rx.try_recv() {
            self.slots.give_back(ticket);
        }
        let ticket = self.slots.take(ip, allowed)?;
        Ok(Held {
            ticket,
            release: self.release_tx.clone(),
        })
    }

    pub fn slots(&self) -> &Slots {
        &self.slots
    }
}

/// The HTTP server's counts, shared by its tasks (relaxed atomics: each is a number on
/// its own, read for `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    open_allowed: AtomicU64,
    open_other: AtomicU64,
    refused_full: AtomicU64,
    refused_reserved: AtomicU64,
    refused_per_source: AtomicU64,
    slow: AtomicU64,
    malformed: AtomicU64,
}

impl Counters {
    pub fn set_open(&self, (allowed, other): (usize, usize)) {
        self.open_allowed.store(allowed as u64, Ordering::Relaxed);
        self.open_other.store(other as u64, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refused) {
        let c = match why {
            Refused::Full => &self.refused_full,
            Refused::Reserved => &self.refused_reserved,
            Refused::PerSource => &self.refused_per_source,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed without a complete request within [`HEADER_TIMEOUT`].
    pub fn slow(&self) {
        self.slow.fetch_add(1, Ordering::Relaxed);
    }

    /// A request hyper could not parse.
    pub fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> ConnStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConnStats {
            open_allowed: get(&self.open_allowed),
            open_other: get(&self.open_other),
            refused_full: get(&self.refused_full),
            refused_reserved: get(&self.refused_reserved),
            refused_per_source: get(&self.refused_per_source),
            slow: get(&self.slow),
            malformed: get(&self.malformed),
        }
    }
}

/// [`Counters`] read at one moment, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Connections open now from `http.allow` addresses.
    pub open_allowed: u64,
    /// Connections open now from other addresses.
    pub open_other: u64,
    /// Connections refused since start, per [`Refused`].
    pub refused_full: u64,
    pub refused_reserved: u64,
    pub refused_per_source: u64,
    /// Connections closed without a complete request within [`HEADER_TIMEOUT`].
    pub slow: u64,
    /// Requests hyper could not parse.
    pub malformed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn the_admission_rule() {
        let l = Limits {
            slots: 10,
            reserved: 2,
            per_source: 3,
        };
        use Refused::*;
        // (allowed, open, from the same source, verdict)
        let table: &[(bool, usize, usize, Result<(), Refused>)] = &[
            (false, 0, 0, Ok(())),
            (false, 0, 2, Ok(())),
            (false, 0, 3, Err(PerSource)),
            (false, 5, 3, Err(PerSource)),
            (false, 7, 0, Ok(())),
            // The last two slots are the balancer's.
            (false, 8, 0, Err(Reserved)),
            (false, 9, 1, Err(Reserved)),
            (false, 10, 0, Err(Full)),
            (false, 11, 5, Err(Full)),
            // `http.allow`: no cap per source, the reserve is theirs.
            (true, 0, 0, Ok(())),
            (true, 0, 100, Ok(())),
            (true, 8, 0, Ok(())),
            (true, 9, 50, Ok(())),
            (true, 10, 0, Err(Full)),
        ];
        for (allowed, open, from_source, want) in table {
            assert_eq!(
                admit(&l, *allowed, *open, *from_source),
                *want,
                "allowed={allowed} open={open} from_source={from_source}"
            );
        }
    }

    #[test]
    fn limits_scale_with_the_slots() {
        assert_eq!(
            Limits::default(),
            Limits {
                slots: 1024,
                reserved: 128,
                per_source: 32
            }
        );
        assert_eq!(
            Limits::for_slots(512),
            Limits {
                slots: 512,
                reserved: 64,
                per_source: 32
            }
        );
        assert_eq!(
            Limits::for_slots(0),
            Limits {
                slots: 1,
                reserved: 1,
                per_source: 1
            }
        );
        assert_eq!(Limits::for_slots(5000), Limits::default());
    }

    #[test]
    fn slots_count_per_source_and_give_back() {
        let mut s = Slots::new(Limits {
            slots: 6,
            reserved: 2,
            per_source: 2,
        });
        let a1 = s.take(A, false).unwrap();
        let _a2 = s.take(A, false).unwrap();
        assert_eq!(s.take(A, false), Err(Refused::PerSource));
        let _b1 = s.take(B, false).unwrap();
        let _b2 = s.take(B, false).unwrap();
        assert_eq!(s.open(), (0, 4));
        // Another source finds only the reserve left; the balancer gets it all.
        let c = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));
        assert_eq!(s.take(c, false), Err(Refused::Reserved));
        let lb1 = s.take(A, true).unwrap();
        let lb2 = s.take(A, true).unwrap();
        assert_eq!(s.take(A, true), Err(Refused::Full));
        assert_eq!(s.open(), (2, 4));
        s.give_back(lb1);
        s.give_back(lb2);
        s.give_back(a1);
        assert_eq!(s.open(), (0, 3));
        assert!(s.take(A, false).is_ok(), "A's slot came back");
        assert_eq!(s.take(A, false), Err(Refused::PerSource));
        // No entry is kept for a source that holds nothing.
        let mut t = Slots::new(Limits::default());
        let x = t.take(A, false).unwrap();
        t.give_back(x);
        assert!(t.by_source.is_empty());
    }

    #[test]
    fn a_gate_takes_back_the_slots_of_ended_connections() {
        let mut g = Gate::new(Limits {
            slots: 2,
            reserved: 0,
            per_source: 2,
        });
        let a = g.admit(A, false).unwrap();
        let _b = g.admit(A, false).unwrap();
        assert_eq!(g.admit(B, false).err(), Some(Refused::Full));
        drop(a);
        assert!(g.admit(B, false).is_ok());
        assert_eq!(g.slots().open(), (0, 2));
    }

    #[test]
    fn a_source_is_an_ipv4_address_or_an_ipv6_64() {
        let v6 = |s: &str| Source::of(s.parse().unwrap());
        assert_eq!(v6("2001:db8::1"), v6("2001:db8::ffff:1"));
        assert_ne!(v6("2001:db8::1"), v6("2001:db8:0:1::1"));
        assert_eq!(v6("::ffff:192.0.2.1"), Source::of(A));
        assert_ne!(Source::of(A), Source::of(B));
    }
}
