//! Majority arithmetic.

use std::time::Instant;

/// Votes needed out of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// Whether a suspicion is confirmed: `electorate` voters other than the suspected member,
/// `confirming` of them (this node, if it is one, and those whose state lists the member
/// as suspect) suspect it. A majority of them must; with nobody else to ask (no voter
/// but the suspected one), this node's own judgement stands.
pub fn suspicion_confirmed(electorate: usize, confirming: usize) -> bool {
    electorate == 0 || confirming >= majority(electorate)
}

/// The newest instant that a majority of voters have acknowledged, when this node (one of
/// the voters) acknowledges everything and `others` holds the other voters'
/// acknowledgements (absent voters simply have none). `None` if too few acknowledged.
pub fn majority_acked(voters: usize, others: impl IntoIterator<Item = Instant>) -> Option<Instant> {
    let needed = majority(voters).saturating_sub(1);
    if needed == 0 {
        return None;
    }
    let mut acks: Vec<Instant> = others.into_iter().collect();
    if acks.len() < needed {
        return None;
    }
    acks.sort_unstable_by(|a, b| b.cmp(a));
    acks.get(needed - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn majorities() {
        // (voters, majority)
        for (n, m) in [
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 3),
            (6, 4),
            (7, 4),
            (20, 11),
        ] {
            assert_eq!(majority(n), m, "voters {n}");
        }
    }

    #[test]
    fn majority_acked_table() {
        let t0 = crate::clock::now();
        let t = |ms: u64| t0 + Duration::from_millis(ms);
        // (voters, acks of the others, expected newest majority-acked instant)
        let table: Vec<(usize, Vec<Instant>, Option<Instant>)> = vec![
            (1, vec![], None),
            (3, vec![], None),
            (3, vec![t(10)], Some(t(10))),
            (3, vec![t(10), t(30)], Some(t(30))),
            (5, vec![t(10), t(30)], Some(t(10))),
            (5, vec![t(10)], None),
            (5, vec![t(50), t(10), t(30), t(20)], Some(t(30))),
            (4, vec![t(10), t(30)], Some(t(10))),
            (4, vec![t(10)], None),
        ];
        for (voters, acks, want) in table {
            assert_eq!(
                majority_acked(voters, acks.clone()),
                want,
                "{voters} voters, {acks:?}"
            );
        }
    }

    #[test]
    fn suspicion_confirmed_table() {
        // (case, voters in the set, the suspect is one of them, this node is one of them,
        //  other voters whose state lists the suspect, dead?)
        let table = [
            ("3 voters, only this node suspects", 3, true, true, 0, false),
            ("3 voters, the other voter confirms", 3, true, true, 1, true),
            (
                "2 members + witness: the witness confirms",
                3,
                true,
                true,
                1,
                true,
            ),
            (
                "2 members + witness: the witness hears it",
                3,
                true,
                true,
                0,
                false,
            ),
            ("5 voters, this node and one other", 5, true, true, 1, false),
            ("5 voters, this node and two others", 5, true, true, 2, true),
            (
                "a non-voter suspected by this voter alone, 3 voters",
                3,
                false,
                true,
                0,
                false,
            ),
            (
                "a non-voter suspected by this voter and one other",
                3,
                false,
                true,
                1,
                true,
            ),
            (
                "this non-voter and one voter of 3, the suspect a voter",
                3,
                true,
                false,
                1,
                false,
            ),
            (
                "this non-voter and both other voters",
                3,
                true,
                false,
                2,
                true,
            ),
            (
                "one voter, this node, suspecting a non-voter",
                1,
                false,
                true,
                0,
                true,
            ),
            (
                "two voters: the only other one suspected",
                2,
                true,
                true,
                0,
                true,
            ),
            (
                "nobody else votes (no set yet, nothing to ask)",
                1,
                true,
                false,
                0,
                true,
            ),
        ];
        for (case, voters, suspect_votes, me_votes, others, dead) in table {
            let electorate: usize = voters - usize::from(suspect_votes);
            let confirming = usize::from(me_votes) + others;
            assert_eq!(suspicion_confirmed(electorate, confirming), dead, "{case}");
        }
    }
}
