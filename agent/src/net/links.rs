//! The link table: the authenticated connections the driver admitted, per node, newest
//! last.
//!
//! A pair of nodes keeps one connection: the one the node with the lower id dialed. Both
//! ends may dial (neither knows the other's id before its hello), so for a moment a pair
//! can have two, one each way; the higher id then closes the link it dialed
//! ([`Links::take_outdone`]) and does not dial again while the lower id's link is up.
//! The table holds at most one link a node dialed and one it accepted per peer: a link
//! admitted in the direction of one already held replaces it, the older of the two (by
//! [`LinkId`]) being handed back for the caller to close (`Replaced`), so a peer that
//! reconnects, or a certificate holder that dials again and again, never piles up
//! connections. While two are up, traffic to a node goes on the link both ends pick
//! alike (see [`Links::preferred`]), so that each side's acknowledgements ride on the
//! other's heartbeats instead of leaving in packets of their own. A link leaves the
//! table when its "link down" arrives, by its [`LinkId`], so a late report about an old
//! or replaced link never removes a newer one. It must never be touched but from the
//! driver's turn (through [`Net`](super::Net)): what is in it is what the driver has
//! admitted, in the order it did.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use proto::{Incarnation, NodeId};

/// Identifies one connection, so a late "link down" is not mistaken for the newer link.
/// Given in the order hellos complete: of two links, the higher id is the newer.
pub type LinkId = u64;

/// Which side opened a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This node dialed the peer (its dialer for the peer's address).
    Dialed,
    /// The peer dialed this node.
    Accepted,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Dialed => "dialed",
            Self::Accepted => "accepted",
        })
    }
}

/// An authenticated connection, handed to the driver with its hello
/// ([`Inbound::LinkUp`](super::Inbound::LinkUp)) for it to admit or refuse through
/// [`Net`](super::Net).
pub struct Link {
    pub(super) id: LinkId,
    pub(super) direction: Direction,
    /// The address the peer advertised in its hello, checked to be a peer's (and the
    /// one dialed, on a dialed link).
    pub(super) advertised: SocketAddr,
    pub(super) conn: quinn::Connection,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("id", &self.id)
            .field("direction", &self.direction)
            .field("remote", &self.conn.remote_address())
            .finish()
    }
}

struct Entry<C> {
    id: LinkId,
    direction: Direction,
    /// The peer's incarnation its hello on this link named.
    incarnation: Incarnation,
    /// The address its hello on this link advertised.
    advertised: SocketAddr,
    conn: C,
}

/// Live links per node, at most one per [`Direction`], newest admitted last. Generic over
/// the connection only so that its rules can be tested without sockets.
pub(super) struct Links<C = quinn::Connection> {
    by_node: HashMap<NodeId, Vec<Entry<C>>>,
}

impl<C> Default for Links<C> {
    fn default() -> Self {
        Self {
            by_node: HashMap::new(),
        }
    }
}

impl<C> Links<C> {
    /// Admits a link. When the node already has one in `direction`, the older of the two
    /// is returned (with its id) for the caller to close; the newer stays. That is the
    /// one just added, unless its hello was overtaken by a newer link's on the way to
    /// the driver.
    #[must_use = "a replaced link must be closed"]
    pub(super) fn add(
        &mut self,
        node: NodeId,
        id: LinkId,
        direction: Direction,
        incarnation: Incarnation,
        advertised: SocketAddr,
        conn: C,
    ) -> Option<(LinkId, C)> {
        let links = self.by_node.entry(node).or_default();
        let new = Entry {
            id,
            direction,
            incarnation,
            advertised,
            conn,
        };
        let Some(pos) = links.iter().position(|l| l.direction == direction) else {
            links.push(new);
            return None;
        };
        if links[pos].id > id {
            return Some((new.id, new.conn));
        }
        let old = links.remove(pos);
        links.push(new);
        Some((old.id, old.conn))
    }

    /// Drops link `id` of `node`; any other link of the node stays.
    pub(super) fn remove(&mut self, node: &NodeId, id: LinkId) {
        if let Some(links) = self.by_node.get_mut(node) {
            links.retain(|l| l.id != id);
        }
    }

    /// The link traffic to `node` goes on: of the links to its newest incarnation, the
    /// one the node with the lower id dialed (`lower_dials`: this node has the lower id
    /// and so prefers its own [`Dialed`](Direction::Dialed) link), else the newest.
    ///
    /// Both ends pick the same connection this way, so a heartbeat's QUIC
    /// acknowledgement rides on the heartbeat going the other way (quinn bundles pending
    /// ACKs into any packet it sends) instead of leaving alone after the ACK delay: with
    /// each end on its own newest link, half the packets of an idle cluster carried only
    /// an ACK. Links to an older incarnation are passed over: after a restart, the link
    /// dialed to the dead process may linger until its idle timeout.
    pub(super) fn preferred(&self, node: &NodeId, lower_dials: bool) -> Option<&C> {
        let links = self.by_node.get(node)?;
        let newest = links.iter().map(|l| l.incarnation).max()?;
        let want = if lower_dials {
            Direction::Dialed
        } else {
            Direction::Accepted
        };
        links
            .iter()
            .find(|l| l.incarnation == newest && l.direction == want)
            .or_else(|| links.iter().rev().find(|l| l.incarnation == newest))
            .map(|l| &l.conn)
    }

    /// The links this node dialed to `node` that a link `node` dialed has made
    /// redundant, taken out of the table for the caller to close: every dialed link,
    /// once an accepted link to the node's newest incarnation is up. Called only on the
    /// end with the higher id, whose dialed link is the one a pair does without.
    #[must_use = "an outdone link must be closed"]
    pub(super) fn take_outdone(&mut self, node: &NodeId) -> Vec<(LinkId, C)> {
        let Some(links) = self.by_node.get_mut(node) else {
            return Vec::new();
        };
        let Some(newest) = links.iter().map(|l| l.incarnation).max() else {
            return Vec::new();
        };
        if !links
            .iter()
            .any(|l| l.direction == Direction::Accepted && l.incarnation == newest)
        {
            return Vec::new();
        }
        let (outdone, kept) = std::mem::take(links)
            .into_iter()
            .partition(|l| l.direction == Direction::Dialed);
        *links = kept;
        outdone.into_iter().map(|l| (l.id, l.conn)).collect()
    }

    /// The addresses advertised by the nodes with an id below `me` that have a link up
    /// that they dialed (one this node accepted).
    pub(super) fn dialing_us_from_below(&self, me: &NodeId) -> HashSet<SocketAddr> {
        self.by_node
            .iter()
            .filter(|(node, _)| *node < me)
            .flat_map(|(_, links)| links.iter())
            .filter(|l| l.direction == Direction::Accepted)
            .map(|l| l.advertised)
            .collect()
    }

    /// How many links are up, dialed and accepted.
    pub(super) fn counts(&self) -> (usize, usize) {
        self.by_node
            .values()
            .flatten()
            .fold((0, 0), |(dialed, accepted), l| match l.direction {
                Direction::Dialed => (dialed + 1, accepted),
                Direction::Accepted => (dialed, accepted + 1),
            })
    }

    /// Every link up, with its node.
    pub(super) fn all(&self) -> impl Iterator<Item = (&NodeId, &C)> {
        self.by_node
            .iter()
            .flat_map(|(node, links)| links.iter().map(move |l| (node, &l.conn)))
    }

    /// Every node a link was admitted from since start, whether or not one is up now.
    pub(super) fn nodes(&self) -> Vec<NodeId> {
        self.by_node.keys().cloned().collect()
    }

    /// The link admitted last for `node`.
    #[cfg(test)]
    fn newest(&self, node: &NodeId) -> Option<&C> {
        self.by_node.get(node)?.last().map(|l| &l.conn)
    }

    /// How many links to `node` are up.
    #[cfg(test)]
    fn count(&self, node: &NodeId) -> usize {
        self.by_node.get(node).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use Direction::{Accepted, Dialed};

    const INC: Incarnation = Incarnation(1);
    const AT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(10, 0, 0, 1),
        7700,
    ));

    #[test]
    fn both_ends_pick_the_link_the_lower_id_dialed_of_the_newest_incarnation() {
        let n2 = NodeId::new("n2").unwrap();
        // n1 (lower id) holds its dialed link 1 and the accepted link 2; n2 holds the same
        // two connections the other way round. Each picks connection "1".
        let mut at_n1 = Links::default();
        assert!(at_n1.add(n2.clone(), 1, Dialed, INC, AT, "1").is_none());
        assert!(at_n1.add(n2.clone(), 2, Accepted, INC, AT, "2").is_none());
        assert_eq!(at_n1.preferred(&n2, true), Some(&"1"));
        let n1 = NodeId::new("n1").unwrap();
        let mut at_n2 = Links::default();
        assert!(at_n2.add(n1.clone(), 7, Accepted, INC, AT, "1").is_none());
        assert!(at_n2.add(n1.clone(), 8, Dialed, INC, AT, "2").is_none());
        assert_eq!(at_n2.preferred(&n1, false), Some(&"1"));
        // Without the agreed link, the other one carries traffic.
        at_n2.remove(&n1, 7);
        assert_eq!(at_n2.preferred(&n1, false), Some(&"2"));
        // n2 restarted (incarnation 2) and dialed n1: its new link wins over n1's dialed
        // link to the old process, which may linger until its idle timeout.
        assert!(
            at_n1
                .add(n2.clone(), 3, Accepted, Incarnation(2), AT, "3")
                .is_some()
        );
        assert_eq!(at_n1.preferred(&n2, true), Some(&"3"));
        // n1's redial to the new process is the agreed link again.
        assert!(
            at_n1
                .add(n2.clone(), 4, Dialed, Incarnation(2), AT, "4")
                .is_some()
        );
        assert_eq!(at_n1.preferred(&n2, true), Some(&"4"));
        assert_eq!(at_n1.preferred(&n1, true), None);
    }

    #[test]
    fn a_late_link_down_keeps_the_newer() {
        let n1 = NodeId::new("n1").unwrap();
        let n2 = NodeId::new("n2").unwrap();
        let mut links = Links::default();
        assert_eq!(links.newest(&n1), None);
        assert!(
            links
                .add(n1.clone(), 1, Dialed, INC, AT, "dialed")
                .is_none()
        );
        assert!(
            links
                .add(n1.clone(), 2, Accepted, INC, AT, "accepted")
                .is_none()
        );
        assert!(links.add(n2.clone(), 3, Dialed, INC, AT, "n2").is_none());
        assert_eq!(links.newest(&n1), Some(&"accepted"));
        // The older link's report: the newer one carries on.
        links.remove(&n1, 1);
        assert_eq!(links.newest(&n1), Some(&"accepted"));
        links.remove(&n1, 2);
        assert_eq!(links.newest(&n1), None);
        // Another node's id is not this node's link.
        links.remove(&n2, 2);
        assert_eq!(links.newest(&n2), Some(&"n2"));
        let mut nodes = links.nodes();
        nodes.sort();
        assert_eq!(nodes, [n1, n2]);
    }

    #[test]
    fn a_node_keeps_one_link_per_direction_and_the_newer_replaces_the_older() {
        let n1 = NodeId::new("n1").unwrap();
        let n2 = NodeId::new("n2").unwrap();
        let mut links = Links::default();
        type Admitted = (LinkId, Direction, &'static str);
        type Closed = Option<(LinkId, &'static str)>;
        // (link admitted, what is handed back to close, links of n1 after, newest)
        let steps: &[(Admitted, Closed, usize, &str)] = &[
            // One dialed and one accepted: the pair the design needs, both kept.
            ((1, Dialed, "d1"), None, 1, "d1"),
            ((2, Accepted, "a2"), None, 2, "a2"),
            // The peer dials again (restarted, or a hostile holder of its key): the new
            // accepted link replaces the old one, the dialed one is untouched.
            ((3, Accepted, "a3"), Some((2, "a2")), 2, "a3"),
            ((4, Accepted, "a4"), Some((3, "a3")), 2, "a4"),
            // Our own redial replaces our old dialed link.
            ((5, Dialed, "d5"), Some((1, "d1")), 2, "d5"),
            // A hello overtaken on its way to the driver: the older link is the one
            // closed, though it arrives last; the table is unchanged.
            ((0, Accepted, "a0"), Some((0, "a0")), 2, "d5"),
        ];
        for (i, &((id, dir, conn), closed, count, newest)) in steps.iter().enumerate() {
            assert_eq!(
                links.add(n1.clone(), id, dir, INC, AT, conn),
                closed,
                "step {i}"
            );
            assert_eq!(links.count(&n1), count, "step {i}");
            assert_eq!(links.newest(&n1), Some(&newest), "step {i}");
        }
        // Another node's links are its own.
        assert!(links.add(n2.clone(), 6, Accepted, INC, AT, "n2").is_none());
        assert_eq!(links.count(&n1), 2);
        // The replaced links' late reports remove nothing; the live ones' do.
        for id in [0, 1, 2, 3] {
            links.remove(&n1, id);
        }
        assert_eq!(links.count(&n1), 2);
        links.remove(&n1, 5);
        assert_eq!(links.newest(&n1), Some(&"a4"));
        links.remove(&n1, 4);
        assert_eq!(links.newest(&n1), None);
    }

    #[test]
    fn the_higher_id_gives_up_its_dialed_link_for_the_one_the_lower_id_dialed() {
        let n1 = NodeId::new("n1").unwrap();
        let n3 = NodeId::new("n3").unwrap();
        // At n3: its own dial is the only link, and it stays.
        let mut at_n3 = Links::default();
        assert!(at_n3.add(n1.clone(), 1, Dialed, INC, AT, "d1").is_none());
        assert!(at_n3.take_outdone(&n1).is_empty());
        assert!(at_n3.dialing_us_from_below(&n3).is_empty());
        // n1's link arrives: n3's dialed one is outdone, n1 is dialing us.
        assert!(at_n3.add(n1.clone(), 2, Accepted, INC, AT, "a2").is_none());
        assert_eq!(at_n3.take_outdone(&n1), [(1, "d1")]);
        assert_eq!(at_n3.counts(), (0, 1));
        assert_eq!(at_n3.dialing_us_from_below(&n3), HashSet::from([AT]));
        assert_eq!(at_n3.preferred(&n1, false), Some(&"a2"));
        // n1 restarted: n3's link to the new process outlives the one from the old
        // process, which is not n1 any more and lingers until its idle timeout.
        assert!(
            at_n3
                .add(n1.clone(), 3, Dialed, Incarnation(2), AT, "d3")
                .is_none()
        );
        assert!(at_n3.take_outdone(&n1).is_empty());
        assert_eq!(at_n3.preferred(&n1, false), Some(&"d3"));
        // The new process dials n3 in turn: its link replaces the old one, and outdoes
        // n3's.
        assert_eq!(
            at_n3.add(n1.clone(), 4, Accepted, Incarnation(2), AT, "a4"),
            Some((2, "a2"))
        );
        assert_eq!(at_n3.take_outdone(&n1), [(3, "d3")]);
        assert_eq!(at_n3.counts(), (0, 1));
        // Its link down: nothing is left, and n1 no longer dials us.
        at_n3.remove(&n1, 4);
        assert_eq!(at_n3.counts(), (0, 0));
        assert!(at_n3.dialing_us_from_below(&n3).is_empty());
    }
}
