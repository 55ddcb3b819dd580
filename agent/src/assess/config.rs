//! The config check: each `[[config]]` set's hashes on this node against the same set on
//! its peers ([`compare`]). A set that differs from some peer's is `drift` unless an
//! operator acknowledged it; one this node cannot hash is `fail`. Drift never makes the
//! node unfit: it is news for operators, and the heartbeat's drift bit says so.
//!
//! The same comparison, made as each alive peer would make it, is kept for `/cluster`
//! ([`super::Detail::peer_config`]) so the view shows it without comparing again.

use std::collections::BTreeSet;

use proto::ctl::EventKind;
use proto::status::ConfigStatus;
use proto::{CheckCode, CheckName, ConfigSetState, DriftAck, HealthBits, NodeId, NodeState};

use super::check::{Cx, Detail, Holds, Judged, Spec};
use super::state::rfc3339;
use crate::probe::config_hash::{FileMap, file_map, set_hash, short_hash};

pub const SPEC: Spec = Spec {
    name: CheckName::Config,
    judge,
    bit: HealthBits::CONFIG_DRIFT,
    bad: CheckCode::Drift,
    blocks_eligibility: false,
    probe_logs: false,
    event: EventKind::Drift,
};

fn judge(cx: &Cx<'_>, out: &mut Detail) -> Judged {
    let local = cx.local;
    let me = cx.cfg.node.as_str();
    let acks: Vec<&DriftAck> = local
        .operator
        .drift_acks
        .iter()
        .chain(cx.peers.iter().flat_map(|(_, s)| s.drift_acks.iter()))
        .filter(|a| a.until > cx.wall)
        .collect();
    let mine = local.config_sets();
    let (mut code, mut reason) = (CheckCode::Off, String::new());
    if local.config.is_some() {
        code = CheckCode::Ok;
        for set in &mine {
            let peers: Vec<(&str, &ConfigSetState)> = cx
                .peers
                .iter()
                .filter_map(|(id, s)| {
                    s.config
                        .iter()
                        .find(|c| c.name == set.name)
                        .map(|c| (id.as_str(), c))
                })
                .collect();
            let mut st = compare(me, set, &peers);
            if let Some(a) = acks.iter().find(|a| a.name == set.name) {
                st.acknowledged = Some(format!(
                    "{} (by {}, until {})",
                    a.reason,
                    a.by,
                    rfc3339(a.until)
                ));
            }
            // As `compare` writes `status`, with an acknowledged drift let through.
            let set_code = if set.error.is_some() {
                CheckCode::Fail
            } else if !st.differs_from.is_empty() && st.acknowledged.is_none() {
                CheckCode::Drift
            } else {
                CheckCode::Ok
            };
            if set_code != CheckCode::Ok && code == CheckCode::Ok {
                code = set_code;
                reason = match set_code {
                    CheckCode::Fail => {
                        format!("{}: {}", set.name, set.error.clone().unwrap_or_default())
                    }
                    _ => format!("{} differs from {}", set.name, st.differs_from.join(", ")),
                };
            }
            out.config.push(st);
        }
    }
    out.peer_config = peers_compared(me, &mine, &cx.peers);
    Judged {
        code,
        reason,
        pending: !cx.cfg.config_sets.is_empty() && local.config.is_none(),
        holds: Holds {
            bit: code == CheckCode::Drift,
            ..Holds::default()
        },
    }
}

/// Every alive peer's sets compared as that peer would compare them, against the others
/// this node knows (itself, with `mine`, included).
fn peers_compared(
    me: &str,
    mine: &[ConfigSetState],
    peers: &[(&NodeId, &NodeState)],
) -> Vec<(NodeId, Vec<ConfigStatus>)> {
    let all: Vec<(&str, &[ConfigSetState])> = peers
        .iter()
        .map(|(id, s)| (id.as_str(), s.config.as_slice()))
        .chain([(me, mine)])
        .collect();
    peers
        .iter()
        .map(|(id, s)| {
            let sets = s
                .config
                .iter()
                .map(|set| {
                    let others: Vec<(&str, &ConfigSetState)> = all
                        .iter()
                        .filter(|(n, _)| *n != id.as_str())
                        .filter_map(|(n, sets)| {
                            sets.iter().find(|c| c.name == set.name).map(|c| (*n, c))
                        })
                        .collect();
                    compare(id.as_str(), set, &others)
                })
                .collect();
            ((*id).clone(), sets)
        })
        .collect()
}

/// One set on this node (`me`, with `mine`) against the same set on its peers.
///
/// Two nodes agree on the set when both hashed it without error and have the same files
/// with the same hashes; a peer whose set has an error never agrees. `differing_files`
/// lists every path present on some node whose hash is not the same on all nodes (the
/// ones lacking it included); per file, `agrees_with` are the peers with the same hash as
/// this node (or lacking it too, when this node lacks it). `status` is `fail` when this
/// node could not hash the set, `drift` when some peer differs, else `ok`.
/// `acknowledged` is left to the caller, which knows the operators' acknowledgements.
/// A peer that does not have the set configured at all should be passed as an empty,
/// error-free set. Every node list is sorted.
pub fn compare(
    me: &str,
    mine: &proto::ConfigSetState,
    peers: &[(&str, &proto::ConfigSetState)],
) -> proto::status::ConfigStatus {
    let my_files = file_map(mine);
    let peer_files: Vec<(&str, FileMap<'_>, bool)> = peers
        .iter()
        .map(|(name, state)| (*name, file_map(state), state.error.is_some()))
        .collect();

    let mut agrees_with = Vec::new();
    let mut differs_from = Vec::new();
    for (name, files, failed) in &peer_files {
        if !failed && *files == my_files {
            agrees_with.push((*name).to_owned());
        } else {
            differs_from.push((*name).to_owned());
        }
    }
    agrees_with.sort();
    differs_from.sort();

    let all_paths: BTreeSet<&str> = my_files
        .keys()
        .copied()
        .chain(peer_files.iter().flat_map(|(_, f, _)| f.keys().copied()))
        .collect();
    let mut differing_files = Vec::new();
    for path in all_paths {
        let my_hash = my_files.get(path);
        let theirs: Vec<(&str, Option<&[u8; 16]>)> = peer_files
            .iter()
            .map(|(name, files, _)| (*name, files.get(path)))
            .collect();
        if my_hash.is_some() && theirs.iter().all(|(_, h)| *h == my_hash) {
            continue;
        }
        let mut drift = proto::status::FileDrift {
            path: path.to_owned(),
            hash: my_hash.map(|h| short_hash(h)),
            agrees_with: Vec::new(),
            differs_from: Vec::new(),
            missing_on: Vec::new(),
        };
        if my_hash.is_none() {
            drift.missing_on.push(me.to_owned());
        }
        for (name, hash) in theirs {
            if hash == my_hash {
                drift.agrees_with.push(name.to_owned());
            } else {
                drift.differs_from.push(name.to_owned());
            }
            if hash.is_none() {
                drift.missing_on.push(name.to_owned());
            }
        }
        drift.agrees_with.sort();
        drift.differs_from.sort();
        drift.missing_on.sort();
        differing_files.push(drift);
    }

    let status = if mine.error.is_some() {
        CheckCode::Fail
    } else if !differs_from.is_empty() {
        CheckCode::Drift
    } else {
        CheckCode::Ok
    };
    proto::status::ConfigStatus {
        name: mine.name.clone(),
        hash: short_hash(&set_hash(&my_files)),
        agrees_with,
        differs_from,
        status: status.as_str().to_owned(),
        differing_files,
        acknowledged: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, files: &[(&str, u8)], error: Option<&str>) -> proto::ConfigSetState {
        proto::ConfigSetState {
            name: name.into(),
            files: files
                .iter()
                .map(|(path, h)| proto::FileHash {
                    path: (*path).into(),
                    hash: [*h; 16],
                })
                .collect(),
            error: error.map(Into::into),
        }
    }

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn compare_table() {
        let base = state("cfg", &[("/etc/a", 1), ("/etc/b", 2)], None);
        let edited = state("cfg", &[("/etc/a", 1), ("/etc/b", 9)], None);
        let extra = state("cfg", &[("/etc/a", 1), ("/etc/b", 2), ("/etc/c", 3)], None);
        let failed = state("cfg", &[("/etc/a", 1)], Some("cannot read /etc/b: x"));

        // Three nodes equal.
        let c = compare("n1", &base, &[("n3", &base), ("n2", &base)]);
        assert_eq!(c.status, "ok");
        assert_eq!(c.agrees_with, v(&["n2", "n3"]));
        assert!(c.differs_from.is_empty() && c.differing_files.is_empty());
        assert_eq!(c.hash.len(), 12);
        assert_eq!(c.acknowledged, None);

        // One file edited on n3, seen from n1 and from n3.
        let c = compare("n1", &base, &[("n2", &base), ("n3", &edited)]);
        assert_eq!(c.status, "drift");
        assert_eq!((c.agrees_with, c.differs_from), (v(&["n2"]), v(&["n3"])));
        assert_eq!(
            c.differing_files,
            vec![proto::status::FileDrift {
                path: "/etc/b".into(),
                hash: Some(short_hash(&[2; 16])),
                agrees_with: v(&["n2"]),
                differs_from: v(&["n3"]),
                missing_on: vec![],
            }]
        );
        let c3 = compare("n3", &edited, &[("n1", &base), ("n2", &base)]);
        assert_eq!(c3.differs_from, v(&["n1", "n2"]));
        assert_ne!(c3.hash, compare("n1", &base, &[]).hash);

        // A file only on n2: from n1, n1 lacks it like n3.
        let c = compare("n1", &base, &[("n2", &extra), ("n3", &base)]);
        assert_eq!(c.status, "drift");
        assert_eq!(
            c.differing_files,
            vec![proto::status::FileDrift {
                path: "/etc/c".into(),
                hash: None,
                agrees_with: v(&["n3"]),
                differs_from: v(&["n2"]),
                missing_on: v(&["n1", "n3"]),
            }]
        );
        // ... and from n2.
        let c = compare("n2", &extra, &[("n1", &base), ("n3", &base)]);
        assert_eq!(c.differing_files[0].hash, Some(short_hash(&[3; 16])));
        assert_eq!(c.differing_files[0].missing_on, v(&["n1", "n3"]));
        assert_eq!(c.differing_files[0].differs_from, v(&["n1", "n3"]));

        // A peer with an error differs, even where its files are equal.
        let c = compare("n1", &failed, &[("n2", &failed), ("n3", &base)]);
        assert_eq!(c.status, "fail");
        assert_eq!(c.differs_from, v(&["n2", "n3"]));
        let c = compare("n3", &base, &[("n1", &failed), ("n2", &base)]);
        assert_eq!(c.status, "drift");
        assert_eq!((c.agrees_with, c.differs_from), (v(&["n2"]), v(&["n1"])));
        assert_eq!(c.differing_files[0].path, "/etc/b");
        assert_eq!(c.differing_files[0].missing_on, v(&["n1"]));

        // Order of a peer's list does not matter.
        let mut reversed = base.clone();
        reversed.files.reverse();
        let c = compare("n1", &base, &[("n2", &reversed)]);
        assert_eq!(c.status, "ok");
    }

    /// `/cluster` shows each peer's comparison as that peer would make it: against every
    /// other node this node knows, itself included.
    #[test]
    fn peers_are_compared_as_they_would_compare_themselves() {
        let id = |s: &str| NodeId::new(s).unwrap();
        let base = state("cfg", &[("/etc/a", 1)], None);
        let edited = state("cfg", &[("/etc/a", 2)], None);
        let (n2, n3) = (id("n2"), id("n3"));
        let mut s2 = NodeState::new(
            n2.clone(),
            proto::Incarnation(1),
            "a:1".into(),
            proto::Mode::Member,
            100,
            proto::WallMicros(0),
        );
        s2.config = vec![base.clone()];
        let mut s3 = NodeState {
            node: n3.clone(),
            ..s2.clone()
        };
        s3.config = vec![edited.clone()];
        let got = peers_compared("n1", std::slice::from_ref(&base), &[(&n2, &s2), (&n3, &s3)]);
        assert_eq!(
            got,
            vec![
                (
                    n2,
                    vec![compare("n2", &base, &[("n3", &edited), ("n1", &base)])]
                ),
                (
                    n3,
                    vec![compare("n3", &edited, &[("n2", &base), ("n1", &base)])]
                ),
            ]
        );
        assert_eq!(got[1].1[0].differs_from, v(&["n1", "n2"]));
    }
}
