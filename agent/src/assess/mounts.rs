//! The mounts check: every `[[mount]]` as its probe found it, and for `shared = true` the
//! proofs judged against the nonces the peers advertise ([`judge_shared`]). A failing
//! required mount makes the node unfit for traffic and ineligible; any failing mount
//! shows in the check's line.

use std::collections::BTreeMap;

use proto::ctl::EventKind;
use proto::{CheckCode, CheckName, HealthBits, Mode, MountState};

use super::check::{Cx, Detail, FIRST_PROBE_PENDING, Holds, Judged, Spec};
use super::reason::Reason;
use crate::probe::mounts::PROOF_DIR;

pub const SPEC: Spec = Spec {
    name: CheckName::Mounts,
    judge,
    bit: HealthBits::MOUNT_FAIL,
    bad: CheckCode::Fail,
    blocks_eligibility: true,
    probe_logs: true,
    event: EventKind::Check,
};

fn judge(cx: &Cx<'_>, out: &mut Detail) -> Judged {
    let cfg = cx.cfg;
    let local = cx.local;
    let mut pending = false;
    let mut required_fail = false;
    let mut any_fail: Option<(CheckCode, String)> = None;
    for (i, m) in cfg.mounts.iter().enumerate() {
        let path = m.path.to_string_lossy().into_owned();
        let proof = m.shared.then(|| local.nonce.clone());
        let Some(Some(rep)) = local.mounts.get(i) else {
            pending = true;
            out.mounts.push(MountState {
                path,
                code: CheckCode::Off,
                reason: FIRST_PROBE_PENDING.into(),
                source: None,
                fstype: None,
                proof,
            });
            continue;
        };
        let (mut code, mut why) = (rep.result.code, rep.result.reason.clone());
        if m.shared && code == CheckCode::Ok {
            let peers: Vec<(&str, Option<&str>)> = cx
                .peers
                .iter()
                .filter(|(_, s)| s.mode == Mode::Member)
                .map(|(id, s)| {
                    let proof = s
                        .mounts
                        .iter()
                        .find(|pm| pm.path == path)
                        .and_then(|pm| pm.proof.as_deref());
                    (id.as_str(), proof)
                })
                .collect();
            (code, why) = judge_shared(cfg.node.as_str(), &local.nonce, &rep.proofs, &peers);
        }
        if !code.passing() {
            required_fail |= m.required;
            if any_fail.is_none() {
                any_fail = Some((code, format!("{path} {}: {why}", code.as_str())));
            }
        }
        out.mounts.push(MountState {
            path,
            code,
            reason: why,
            source: rep.source.clone(),
            fstype: rep.fstype.clone(),
            proof,
        });
    }
    let (code, reason) = if cfg.mounts.is_empty() {
        (CheckCode::Off, String::new())
    } else if let Some(fail) = any_fail {
        fail
    } else if pending {
        (CheckCode::Off, FIRST_PROBE_PENDING.into())
    } else {
        (CheckCode::Ok, String::new())
    };
    Judged {
        code,
        reason,
        pending,
        holds: Holds {
            healthy: required_fail,
            eligible: required_fail,
            reason: required_fail.then_some(Reason::Mount),
            bit: required_fail,
            ..Holds::default()
        },
    }
}

/// Judges the shared-storage proofs this node read (`proofs`, from [`check_mount`](crate::probe::mounts::check_mount))
/// against what the peers advertise: `peers` are the other alive members with the nonce
/// each says it wrote at this path (`None`: not known yet, skipped).
///
/// Fails when this node's own proof does not read back as `my_nonce`, or when it sees
/// the current proof of fewer than half the peers whose nonce is known: then it is the
/// one looking at other storage. With a single peer not seen, both nodes fail, since
/// neither can tell which of the two is wrong.
pub fn judge_shared(
    me: &str,
    my_nonce: &str,
    proofs: &BTreeMap<String, String>,
    peers: &[(&str, Option<&str>)],
) -> (CheckCode, String) {
    match proofs.get(me) {
        Some(n) if n == my_nonce => {}
        Some(_) => {
            return (
                CheckCode::Fail,
                format!(
                    "own proof {PROOF_DIR}/{me} reads back another nonce (another node named {me} on this storage?)"
                ),
            );
        }
        None => {
            return (
                CheckCode::Fail,
                format!("own proof {PROOF_DIR}/{me} not read back"),
            );
        }
    }
    let mut known = 0usize;
    let mut unseen = Vec::new();
    for &(peer, nonce) in peers {
        let Some(nonce) = nonce else { continue };
        if peer == me {
            continue;
        }
        known += 1;
        if proofs.get(peer).map(String::as_str) != Some(nonce) {
            unseen.push(peer);
        }
    }
    let seen = known - unseen.len();
    if seen * 2 >= known {
        return (CheckCode::Ok, String::new());
    }
    let names = match unseen.as_slice() {
        [one] => format!("{one}'s proof"),
        many if many.len() <= 5 => format!("the proofs of {}", many.join(", ")),
        many => format!(
            "the proofs of {} and {} more",
            many[..4].join(", "),
            many.len() - 4
        ),
    };
    (
        CheckCode::Fail,
        format!("cannot see {names}: different storage at this path?"),
    )
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::probe::mounts::check_mount;
    use crate::probe::mounts::tests::{assert_ok, proofs, shared};

    #[test]
    fn two_nodes_on_the_same_storage_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = shared(dir.path());
        assert_ok(&check_mount(&cfg, "n1", "nonce-1"));
        let n2 = check_mount(&cfg, "n2", "nonce-2");
        assert_ok(&n2);
        let n1 = check_mount(&cfg, "n1", "nonce-1");
        assert_ok(&n1);
        let both = proofs(&[("n1", "nonce-1"), ("n2", "nonce-2")]);
        assert_eq!(n1.proofs, both);
        assert_eq!(n2.proofs, both);
        assert_eq!(
            judge_shared("n1", "nonce-1", &n1.proofs, &[("n2", Some("nonce-2"))]),
            (CheckCode::Ok, String::new())
        );
        assert_eq!(
            judge_shared("n2", "nonce-2", &n2.proofs, &[("n1", Some("nonce-1"))]),
            (CheckCode::Ok, String::new())
        );
        // Only the proofs are left: no temp or probe files.
        let mut names: Vec<_> = fs::read_dir(dir.path().join(PROOF_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["n1", "n2"]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        // A restarted n2 with a new nonce overwrites its proof.
        assert_ok(&check_mount(&cfg, "n2", "nonce-2b"));
        let n1 = check_mount(&cfg, "n1", "nonce-1");
        assert_eq!(n1.proofs.get("n2").map(String::as_str), Some("nonce-2b"));
    }

    #[test]
    fn two_nodes_on_different_storage_both_fail() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let n1 = check_mount(&shared(a.path()), "n1", "nonce-1");
        let n2 = check_mount(&shared(b.path()), "n2", "nonce-2");
        assert_ok(&n1);
        assert_ok(&n2);
        assert_eq!(n1.proofs, proofs(&[("n1", "nonce-1")]));
        assert_eq!(
            judge_shared("n1", "nonce-1", &n1.proofs, &[("n2", Some("nonce-2"))]),
            (
                CheckCode::Fail,
                "cannot see n2's proof: different storage at this path?".into()
            )
        );
        assert_eq!(
            judge_shared("n2", "nonce-2", &n2.proofs, &[("n1", Some("nonce-1"))]).0,
            CheckCode::Fail
        );
    }

    type JudgeCase<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, Option<&'a str>)],
        (CheckCode, String),
    );

    #[test]
    fn judge_shared_table() {
        let fail = |s: &str| (CheckCode::Fail, s.to_owned());
        let ok = (CheckCode::Ok, String::new());
        // (case, me's proofs, peers, want) with me = "n1", my nonce "a".
        let cases: &[JudgeCase<'_>] = &[
            ("alone", &[("n1", "a")], &[], ok.clone()),
            (
                "peer nonce not known yet",
                &[("n1", "a")],
                &[("n2", None)],
                ok.clone(),
            ),
            (
                "one peer seen",
                &[("n1", "a"), ("n2", "b")],
                &[("n2", Some("b"))],
                ok.clone(),
            ),
            (
                "one peer not seen: both nodes are flagged",
                &[("n1", "a")],
                &[("n2", Some("b"))],
                fail("cannot see n2's proof: different storage at this path?"),
            ),
            (
                "peer's old nonce is not its current proof",
                &[("n1", "a"), ("n2", "old")],
                &[("n2", Some("b"))],
                fail("cannot see n2's proof: different storage at this path?"),
            ),
            (
                "3 nodes, n3 elsewhere: n1 sees n2, half is enough",
                &[("n1", "a"), ("n2", "b")],
                &[("n2", Some("b")), ("n3", Some("c"))],
                ok.clone(),
            ),
            (
                "3 nodes, n1 elsewhere: n1 sees nobody",
                &[("n1", "a")],
                &[("n2", Some("b")), ("n3", Some("c"))],
                fail("cannot see the proofs of n2, n3: different storage at this path?"),
            ),
            (
                "unknown nonces do not count",
                &[("n1", "a")],
                &[("n2", Some("b")), ("n3", None), ("n4", None)],
                fail("cannot see n2's proof: different storage at this path?"),
            ),
            (
                "4 peers, 1 seen: fewer than half",
                &[("n1", "a"), ("n2", "b")],
                &[
                    ("n2", Some("b")),
                    ("n3", Some("c")),
                    ("n4", Some("d")),
                    ("n5", Some("e")),
                ],
                fail("cannot see the proofs of n3, n4, n5: different storage at this path?"),
            ),
            (
                "many not seen are summed up",
                &[("n1", "a")],
                &[
                    ("n2", Some("b")),
                    ("n3", Some("c")),
                    ("n4", Some("d")),
                    ("n5", Some("e")),
                    ("n6", Some("f")),
                    ("n7", Some("g")),
                ],
                fail(
                    "cannot see the proofs of n2, n3, n4, n5 and 2 more: different storage at this path?",
                ),
            ),
            (
                "own proof missing",
                &[("n2", "b")],
                &[("n2", Some("b"))],
                fail("own proof .quorate/n1 not read back"),
            ),
            (
                "own proof overwritten",
                &[("n1", "z"), ("n2", "b")],
                &[("n2", Some("b"))],
                fail(
                    "own proof .quorate/n1 reads back another nonce (another node named n1 on this storage?)",
                ),
            ),
            (
                "me among the peers is ignored",
                &[("n1", "a")],
                &[("n1", Some("a"))],
                ok.clone(),
            ),
        ];
        for (case, mine, peers, want) in cases {
            assert_eq!(
                &judge_shared("n1", "a", &proofs(mine), peers),
                want,
                "{case}"
            );
        }
    }

    #[test]
    fn three_nodes_one_on_other_storage_only_that_one_fails() {
        let (common, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let nodes = [
            ("n1", "a", common.path()),
            ("n2", "b", common.path()),
            ("n3", "c", other.path()),
        ];
        for (node, nonce, path) in nodes {
            assert_ok(&check_mount(&shared(path), node, nonce));
        }
        for (node, nonce, path) in nodes {
            let report = check_mount(&shared(path), node, nonce);
            let peers: Vec<(&str, Option<&str>)> = nodes
                .iter()
                .filter(|(n, _, _)| *n != node)
                .map(|(n, nonce, _)| (*n, Some(*nonce)))
                .collect();
            let (code, _) = judge_shared(node, nonce, &report.proofs, &peers);
            let want = if node == "n3" {
                CheckCode::Fail
            } else {
                CheckCode::Ok
            };
            assert_eq!(code, want, "{node}");
        }
    }
}
