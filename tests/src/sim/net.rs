//! The simulated network: one state per directed link (up or cut, loss), one delay model.
//!
//! A datagram's fate is decided when it is sent: lost, or delivered after `base + U(0,
//! jitter)`. Reordering falls out of the jitter. A cut is decided at send time too: what
//! is already in flight still arrives (it left before the cable was pulled).

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

/// One-way delay: `base` plus a uniform jitter in `[0, jitter)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    pub base: Duration,
    pub jitter: Duration,
}

impl Delay {
    /// A LAN: 0.2 ms ± 0.3 ms.
    pub const LAN: Delay = Delay {
        base: Duration::from_micros(200),
        jitter: Duration::from_micros(300),
    };

    fn sample(&self, rng: &mut SmallRng) -> Duration {
        if self.jitter.is_zero() {
            return self.base;
        }
        self.base + self.jitter.mul_f64(rng.random::<f64>())
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} + U(0, {:?})", self.base, self.jitter)
    }
}

/// One direction between two nodes.
#[derive(Debug, Clone, Copy)]
struct Link {
    up: bool,
    /// Probability that a datagram is lost, 0–1.
    loss: f64,
}

/// Every directed link between `size` nodes.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    size: usize,
    links: Vec<Link>,
    delay: Delay,
}

impl Network {
    pub(crate) fn new(size: usize, delay: Delay) -> Self {
        Self {
            size,
            links: vec![
                Link {
                    up: true,
                    loss: 0.0,
                };
                size * size
            ],
            delay,
        }
    }

    fn link_mut(&mut self, from: usize, to: usize) -> &mut Link {
        &mut self.links[from * self.size + to]
    }

    fn link(&self, from: usize, to: usize) -> &Link {
        &self.links[from * self.size + to]
    }

    /// `from`'s datagrams no longer reach `to`.
    pub(crate) fn cut_one_way(&mut self, from: usize, to: usize) {
        self.link_mut(from, to).up = false;
    }

    /// Neither direction between `a` and `b` works.
    pub(crate) fn cut(&mut self, a: usize, b: usize) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Both directions between `a` and `b` work again.
    pub(crate) fn repair(&mut self, a: usize, b: usize) {
        self.link_mut(a, b).up = true;
        self.link_mut(b, a).up = true;
    }

    /// Nodes talk only within their group; nodes in no group keep all their links.
    pub(crate) fn partition(&mut self, groups: &[Vec<usize>]) {
        for (gi, g) in groups.iter().enumerate() {
            for (hi, h) in groups.iter().enumerate() {
                if gi != hi {
                    for &a in g {
                        for &b in h {
                            self.cut_one_way(a, b);
                        }
                    }
                }
            }
        }
    }

    /// Every link up; loss and delay stay as they are.
    pub(crate) fn heal(&mut self) {
        for l in &mut self.links {
            l.up = true;
        }
    }

    /// The same loss probability on every link.
    pub(crate) fn set_loss(&mut self, loss: f64) {
        for l in &mut self.links {
            l.loss = loss;
        }
    }

    pub(crate) fn set_delay(&mut self, delay: Delay) {
        self.delay = delay;
    }

    /// Whether `from`'s datagrams can reach `to` (the link is not cut; loss aside).
    pub(crate) fn up(&self, from: usize, to: usize) -> bool {
        self.link(from, to).up
    }

    /// Whether both directions between `a` and `b` are up (a handshake can complete).
    pub(crate) fn connected(&self, a: usize, b: usize) -> bool {
        self.link(a, b).up && self.link(b, a).up
    }

    /// How long a datagram sent now from `from` to `to` travels; `None` if it is lost.
    pub(crate) fn transit(&self, from: usize, to: usize, rng: &mut SmallRng) -> Option<Duration> {
        let link = self.link(from, to);
        if !link.up || (link.loss > 0.0 && rng.random_bool(link.loss)) {
            return None;
        }
        Some(self.delay.sample(rng))
    }

    /// A request/response round trip between `a` and `b` (a state fetch on a stream),
    /// if both directions are up. Streams retransmit, so loss only adds delay.
    pub(crate) fn round_trip(&self, a: usize, b: usize, rng: &mut SmallRng) -> Option<Duration> {
        self.connected(a, b)
            .then(|| self.delay.sample(rng) + self.delay.sample(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn partition_cuts_between_groups_only() {
        let mut net = Network::new(4, Delay::LAN);
        net.partition(&[vec![0], vec![1, 2]]);
        let mut rng = SmallRng::seed_from_u64(1);
        assert!(net.transit(0, 1, &mut rng).is_none());
        assert!(net.transit(2, 0, &mut rng).is_none());
        assert!(net.transit(1, 2, &mut rng).is_some());
        assert!(
            net.transit(3, 0, &mut rng).is_some(),
            "node 3 is in no group"
        );
        net.heal();
        assert!(net.connected(0, 1));
        net.cut_one_way(0, 1);
        assert!(!net.connected(0, 1));
        assert!(net.transit(1, 0, &mut rng).is_some());
    }

    #[test]
    fn loss_drops_about_that_share() {
        let mut net = Network::new(2, Delay::LAN);
        net.set_loss(0.3);
        let mut rng = SmallRng::seed_from_u64(7);
        let lost = (0..10_000)
            .filter(|_| net.transit(0, 1, &mut rng).is_none())
            .count();
        assert!((2_700..3_300).contains(&lost), "{lost} of 10 000 lost");
    }
}
