//! Majority arithmetic.

use std::time::Instant;

/// Votes needed out of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
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
}
