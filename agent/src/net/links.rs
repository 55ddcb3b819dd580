//! The link table: the authenticated connections the driver admitted, per node, newest
//! last.
//!
//! A pair of nodes usually has two links (each dials the other); both stay in the table
//! and traffic goes on the newest. A link leaves the table when its "link down" arrives,
//! by its [`LinkId`], so a late report about an old link never removes a newer one. It
//! must never be touched but from the driver's turn (through [`Net`](super::Net)): what
//! is in it is what the driver has admitted, in the order it did.

use std::collections::HashMap;

use proto::NodeId;

/// Identifies one connection, so a late "link down" is not mistaken for the newer link.
pub type LinkId = u64;

/// An authenticated connection, handed to the driver with its hello
/// ([`Inbound::LinkUp`](super::Inbound::LinkUp)) for it to admit or refuse through
/// [`Net`](super::Net).
pub struct Link {
    pub(super) id: LinkId,
    pub(super) conn: quinn::Connection,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("id", &self.id)
            .field("remote", &self.conn.remote_address())
            .finish()
    }
}

/// Live links per node, newest last. Generic over the connection only so that its rules
/// can be tested without sockets.
pub(super) struct Links<C = quinn::Connection> {
    by_node: HashMap<NodeId, Vec<(LinkId, C)>>,
}

impl<C> Default for Links<C> {
    fn default() -> Self {
        Self {
            by_node: HashMap::new(),
        }
    }
}

impl<C> Links<C> {
    pub(super) fn add(&mut self, node: NodeId, id: LinkId, conn: C) {
        self.by_node.entry(node).or_default().push((id, conn));
    }

    /// Drops link `id` of `node`; any other link of the node stays.
    pub(super) fn remove(&mut self, node: &NodeId, id: LinkId) {
        if let Some(links) = self.by_node.get_mut(node) {
            links.retain(|(l, _)| *l != id);
        }
    }

    /// The link traffic to `node` goes on: its newest.
    pub(super) fn newest(&self, node: &NodeId) -> Option<&C> {
        self.by_node.get(node)?.last().map(|(_, c)| c)
    }

    /// Every node a link was admitted from since start, whether or not one is up now.
    pub(super) fn nodes(&self) -> Vec<NodeId> {
        self.by_node.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn traffic_goes_on_the_newest_link_and_a_late_link_down_keeps_the_newer() {
        let n1 = NodeId::new("n1").unwrap();
        let n2 = NodeId::new("n2").unwrap();
        let mut links = Links::default();
        assert_eq!(links.newest(&n1), None);
        links.add(n1.clone(), 1, "dialed");
        links.add(n1.clone(), 2, "accepted");
        links.add(n2.clone(), 3, "n2");
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
}
