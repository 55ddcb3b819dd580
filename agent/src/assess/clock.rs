//! The clock check: whether this node's wall clock is the odd one out, by majority
//! attribution over the offsets the heartbeats measured ([`clock_fault`]).

use proto::ctl::EventKind;
use proto::{CheckCode, CheckName, HealthBits, NodeId};

use super::check::{Cx, Detail, Holds, Judged, Spec};

pub const SPEC: Spec = Spec {
    name: CheckName::Clock,
    judge,
    bit: HealthBits::CLOCK_FAIL,
    bad: CheckCode::Fail,
    blocks_eligibility: false,
    probe_logs: false,
    event: EventKind::Check,
};

fn judge(cx: &Cx<'_>, _: &mut Detail) -> Judged {
    let offsets: Vec<(&NodeId, i64)> = cx
        .alive
        .iter()
        .filter_map(|m| m.clock_offset_us.map(|o| (&m.id, o)))
        .collect();
    let max = cx.cfg.clock.max_offset;
    let max_us = i64::try_from(max.0.as_micros()).unwrap_or(i64::MAX);
    let (code, reason) = match clock_fault(&offsets, cx.alive.len(), max_us) {
        None => (CheckCode::Ok, String::new()),
        Some(off) => (
            CheckCode::Fail,
            format!("wall clock off by more than {max} from {}", off.join(", ")),
        ),
    };
    Judged {
        holds: Holds {
            bit: code == CheckCode::Fail,
            ..Holds::default()
        },
        code,
        reason,
        pending: false,
    }
}

/// Majority attribution of a clock fault: `offsets` are (peer, its clock − ours, µs) for
/// alive peers. This node is at fault when it is off by more than `max_us` from a strict
/// majority of them, or from all of them (with one peer, both nodes are flagged: two
/// clocks cannot say which is wrong). Returns the peers it is off from, if at fault.
///
/// DESIGN.md says "at least half"; with three nodes and one bad clock, a good node is off
/// from exactly half (the bad one), so "at least half" would flag it too.
///
/// `peers` counts every alive peer, measured or not: a node that has so far measured
/// only the one bad clock is off from all it has measured, yet not from a majority.
pub fn clock_fault(offsets: &[(&NodeId, i64)], peers: usize, max_us: i64) -> Option<Vec<String>> {
    let off: Vec<String> = offsets
        .iter()
        .filter(|(_, o)| o.unsigned_abs() > max_us.unsigned_abs())
        .map(|(id, o)| format!("{id} ({:+} ms)", o / 1000))
        .collect();
    let n = peers.max(offsets.len());
    (n > 0 && !off.is_empty() && (off.len() * 2 > n || off.len() == n)).then_some(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn clock_fault_is_attributed_to_the_odd_one_out() {
        let (n1, n2, n3, n4) = (id("n1"), id("n2"), id("n3"), id("n4"));
        let max = 500_000;
        // (offsets to peers, alive peers, at fault)
        type Case<'a> = (&'a [(&'a NodeId, i64)], usize, bool);
        let table: &[Case<'_>] = &[
            (&[], 0, false),
            (&[], 2, false),
            // Two nodes a second apart: neither can tell, both are flagged.
            (&[(&n2, 1_000_000)], 1, true),
            (&[(&n2, 100_000)], 1, false),
            // Three nodes, n3 one second ahead. As n1: off from n3 only → fine.
            (&[(&n2, 0), (&n3, 1_000_000)], 2, false),
            // As n1 before it measured n2: off from all it measured, not from a majority.
            (&[(&n3, 1_000_000)], 2, false),
            // As n3: off from both → at fault.
            (&[(&n1, -1_000_000), (&n2, -1_000_000)], 2, true),
            // Four nodes, this one off from three.
            (&[(&n2, 900_000), (&n3, -900_000), (&n4, 800_000)], 3, true),
            // Four nodes, off from one of three.
            (&[(&n2, 900_000), (&n3, 0), (&n4, 0)], 3, false),
        ];
        for (offsets, peers, fault) in table {
            assert_eq!(
                clock_fault(offsets, *peers, max).is_some(),
                *fault,
                "{offsets:?} of {peers}"
            );
        }
    }
}
