//! The version check and the upgrade gate: a node that starts on a newer app version
//! than the primary's is held not-ready until an operator lets that version through
//! (`quorate upgrade allow`), so an upgrade never hands the primary role to an untried
//! version by accident. Versions that differ from the peers' are shown as skew.

use std::cmp::Ordering;

use proto::ctl::EventKind;
use proto::{CheckCode, CheckName, HealthBits, MemberState, compare_versions};

use super::check::{Cx, Detail, Holds, Judged, Spec};
use super::reason::Reason;

pub const SPEC: Spec = Spec {
    name: CheckName::Version,
    judge,
    bit: HealthBits::UPGRADE_HELD,
    bad: CheckCode::Fail,
    blocks_eligibility: false,
    probe_logs: false,
    event: EventKind::Check,
};

fn judge(cx: &Cx<'_>, _: &mut Detail) -> Judged {
    let (cfg, local, core) = (cx.cfg, cx.local, cx.core);
    let primary = if cx.lease_held { None } else { core.primary() };
    let primary_version = primary
        .and_then(|p| core.member(p))
        .filter(|m| m.state == MemberState::Alive)
        .and_then(|m| m.node_state.as_ref())
        .and_then(|s| s.app_version.clone().map(|v| (s.node.to_string(), v)));
    let mine = local.app_version();
    let gate_open = local.operator.upgrade_allowed.as_deref() == mine && mine.is_some();
    let held = match (mine, &primary_version) {
        (Some(v), Some((_, pv))) => {
            cfg.app.upgrade_gate && compare_versions(v, pv) == Ordering::Greater && !gate_open
        }
        _ => false,
    };
    let pending = (cfg.app.version_file.is_some() || cfg.app.version_command.is_some())
        && local.app_version.is_none();
    let (code, reason) = match (&local.app_version, &primary_version) {
        (Some(Err(e)), _) => (CheckCode::Fail, e.clone()),
        (None, _) => (CheckCode::Off, String::new()),
        (Some(Ok(_)), Some((p, pv))) if held => (
            CheckCode::Fail,
            format!("newer than primary {p}'s {pv}: held not-ready until `quorate upgrade allow`"),
        ),
        (Some(Ok(v)), _) => {
            let skew: Vec<String> = cx
                .peers
                .iter()
                .filter_map(|(id, s)| {
                    s.app_version
                        .as_ref()
                        .filter(|pv| *pv != v)
                        .map(|pv| format!("{id} {pv}"))
                })
                .collect();
            if skew.is_empty() {
                (CheckCode::Ok, String::new())
            } else {
                (CheckCode::Ok, format!("skew: {}", skew.join(", ")))
            }
        }
    };
    Judged {
        code,
        reason,
        pending,
        holds: Holds {
            ready: held,
            reason: held.then_some(Reason::UpgradeHeld),
            bit: held,
            ..Holds::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order() {
        use Ordering::*;
        for (a, b, want) in [
            ("5.2.1", "5.2.1", Equal),
            ("5.10.0", "5.9.1", Greater),
            ("5.2", "5.2.1", Less),
            ("5.2.1-rc1", "5.2.1-rc2", Less),
            ("v6", "v5", Greater),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
    }
}
