//! [`Tally`]: how often things happened since the agent started — elections it began,
//! role changes, handovers by reason, split-brain alarms, check transitions — for the
//! `_total` counters of `/metrics`.
//!
//! Owns the numbers and what counts as one of each. The journal holds the one
//! [`Tally`] and the driver feeds it the same events and transitions it journals, so the
//! counters and `quorate events` never disagree about what happened. Plain integers: the
//! driver is the only writer and hands readers a copy with each published view, so the
//! health path never touches them.
//!
//! Must never: count anything the journal does not also record, or grow with anything
//! but the fixed vocabularies it is keyed by (roles, transfer reasons, check names and
//! codes, hook names): every key is a label value, and labels must stay few.

use proto::{CheckCode, CheckName, CheckState, Role};

use crate::core::{Event, TransferReason};

/// Counts of what happened, as of one moment. Each list holds only keys seen so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Campaigns this node started (one per term it stood in).
    pub elections: u64,
    /// `split_brain_suspected` alarms: a primary claim in a term this node did not expect.
    pub split_brain: u64,
    /// By the role this node moved to.
    pub role_changes: Vec<(Role, u64)>,
    /// Handovers this node started as primary, by why.
    pub handovers: Vec<(TransferReason, u64)>,
    /// Check transitions, by check and the code it moved to.
    pub check_changes: Vec<(CheckName, CheckCode, u64)>,
    /// Hook runs and how many of them failed (non-zero exit, timeout, cannot start), by
    /// hook (`on_primary`, …). Kept by the hook runner; the driver copies them in.
    pub hooks: Vec<(&'static str, u64, u64)>,
}

fn bump<K: PartialEq>(list: &mut Vec<(K, u64)>, key: K) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => list.push((key, 1)),
    }
}

impl Tally {
    /// Counts a core event, if it is one of the counted kinds.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::ElectionStarted { .. } => self.elections += 1,
            Event::TransferStarted { reason, .. } => bump(&mut self.handovers, *reason),
            Event::SplitBrainSuspected { .. } => self.split_brain += 1,
            _ => {}
        }
    }

    /// Counts a change of this node's role to `to`.
    pub fn role_changed(&mut self, to: Role) {
        bump(&mut self.role_changes, to);
    }

    /// Counts the check transitions from `old` to `new` (the same list, in the same
    /// order), by the rule the journal records them with: a change of code, except a
    /// check's first passing result.
    pub fn checks(&mut self, old: &[CheckState], new: &[CheckState]) {
        for (o, n) in old.iter().zip(new) {
            if o.code == n.code || (o.code == CheckCode::Off && n.code.passing()) {
                continue;
            }
            match self
                .check_changes
                .iter_mut()
                .find(|(name, code, _)| *name == n.name && *code == n.code)
            {
                Some((_, _, count)) => *count += 1,
                None => self.check_changes.push((n.name.clone(), n.code, 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::{NodeId, Term};

    use super::*;

    fn check(name: CheckName, code: CheckCode) -> CheckState {
        CheckState {
            name,
            code,
            reason: String::new(),
        }
    }

    #[test]
    fn counts_what_the_journal_records() {
        let mut t = Tally::default();
        let n2 = NodeId::new("n2").unwrap();
        for e in [
            Event::ElectionStarted {
                term: Term(2),
                transfer: false,
            },
            Event::ElectionStarted {
                term: Term(3),
                transfer: true,
            },
            Event::TransferStarted {
                to: n2.clone(),
                term: Term(3),
                reason: TransferReason::Shutdown,
            },
            Event::SplitBrainSuspected {
                claimant: n2.clone(),
                term: Term(3),
                believed: None,
            },
            Event::FreezeChanged { frozen: true },
        ] {
            t.event(&e);
        }
        t.role_changed(Role::Primary);
        t.role_changed(Role::Secondary);
        t.role_changed(Role::Primary);
        assert_eq!((t.elections, t.split_brain), (2, 1));
        assert_eq!(t.handovers, [(TransferReason::Shutdown, 1)]);
        assert_eq!(t.role_changes, [(Role::Primary, 2), (Role::Secondary, 1)]);

        let off = [
            check(CheckName::App, CheckCode::Off),
            check(CheckName::Certs, CheckCode::Off),
        ];
        let first = [
            check(CheckName::App, CheckCode::Ok),
            check(CheckName::Certs, CheckCode::Warn),
        ];
        let later = [
            check(CheckName::App, CheckCode::Fail),
            check(CheckName::Certs, CheckCode::Warn),
        ];
        t.checks(&off, &first);
        t.checks(&first, &later);
        t.checks(&later, &first);
        // A first passing result is not a transition; the rest are, by their new code.
        assert_eq!(
            t.check_changes,
            [
                (CheckName::Certs, CheckCode::Warn, 1),
                (CheckName::App, CheckCode::Fail, 1),
                (CheckName::App, CheckCode::Ok, 1),
            ]
        );
    }
}
