//! What makes an operator command acceptable, as pure functions: node names, reasons,
//! durations, and whether a node may take the primary role (with the words an operator
//! reads when it may not: "n3 is not eligible: app check failing (HTTP 503)").
//!
//! [`execute`](super::execute) gathers the facts (from the core and what the driver
//! lends it) and calls these; they never read a clock, a socket or the core.
//! Table-tested below.

use proto::ctl::{MAX_FOR_SECS, MAX_REASON_CHARS};
use proto::{CheckState, HealthBits, Mode, NodeId};

use crate::core::MemberState;

/// Which node a command is for: `Ok(None)` for the node that took it (no name, or its
/// own), `Ok(Some(id))` for a known member, else why not.
pub fn target(name: Option<&str>, me: &NodeId, known: &[NodeId]) -> Result<Option<NodeId>, String> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let id = NodeId::new(name).map_err(|_| format!("{name:?} is not a node name"))?;
    if id == *me {
        return Ok(None);
    }
    if known.contains(&id) {
        Ok(Some(id))
    } else {
        Err(format!("no node {id} in this cluster"))
    }
}

/// A reason an operator typed: one line, at most [`MAX_REASON_CHARS`], trimmed.
pub fn reason(text: &str) -> Result<String, String> {
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("the reason must be one line of text".into());
    }
    Ok(text.trim().to_owned())
}

/// A duration in seconds: more than zero, at most [`MAX_FOR_SECS`].
pub fn for_secs(secs: u64) -> Result<std::time::Duration, String> {
    if secs == 0 || secs > MAX_FOR_SECS {
        return Err(format!(
            "a duration of {secs}s is out of range (1s to {} days)",
            MAX_FOR_SECS / 86_400
        ));
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// What is known about a node that might take the primary role.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub id: &'a NodeId,
    /// `Alive` for the node that took the command.
    pub state: MemberState,
    pub mode: Mode,
    pub health: HealthBits,
    /// Its checks with their reasons, when its full state is known.
    pub checks: &'a [CheckState],
}

/// Why `c` cannot take the primary role now, or `None` if it can.
pub fn not_eligible(c: &Candidate<'_>) -> Option<String> {
    let id = c.id;
    if c.mode == Mode::Witness {
        return Some(format!("{id} is a witness: it never becomes primary"));
    }
    if c.state != MemberState::Alive {
        return Some(format!("{id} is {}, not alive", c.state.as_str()));
    }
    if c.health.has(HealthBits::ELIGIBLE) {
        return None;
    }
    let check = |name: &proto::CheckName| {
        let reason = c
            .checks
            .iter()
            .find(|s| s.name == *name)
            .filter(|s| !s.code.passing() || !s.reason.is_empty())
            .map(|s| {
                if s.reason.is_empty() {
                    s.code.as_str().to_owned()
                } else {
                    s.reason.clone()
                }
            });
        match reason {
            Some(r) => format!("{name} check failing ({r})"),
            None => format!("{name} check failing"),
        }
    };
    let mut why = Vec::new();
    if c.health.has(HealthBits::DRAINING) {
        why.push("draining".to_owned());
    }
    for spec in crate::assess::CHECKS
        .iter()
        .filter(|s| s.blocks_eligibility && c.health.has(s.bit))
    {
        why.push(check(&spec.name));
    }
    if c.health.has(HealthBits::UPGRADE_HELD) {
        why.push("held by the upgrade gate (`quorate upgrade allow` on it)".to_owned());
    } else if !c.health.has(HealthBits::READY) {
        why.push("not ready yet".to_owned());
    }
    if why.is_empty() {
        why.push("its checks say so".to_owned());
    }
    Some(format!("{id} is not eligible: {}", why.join(", ")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proto::CheckCode;

    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn targets() {
        let me = id("n1");
        let known = [id("n2"), id("n3")];
        type Want = Result<Option<&'static str>, &'static str>;
        let table: &[(Option<&str>, Want)] = &[
            (None, Ok(None)),
            (Some(""), Ok(None)),
            (Some("n1"), Ok(None)),
            (Some("n2"), Ok(Some("n2"))),
            (Some(" n3 "), Ok(Some("n3"))),
            (Some("n9"), Err("no node n9 in this cluster")),
            (Some("a.b"), Err("\"a.b\" is not a node name")),
        ];
        for (name, want) in table {
            let got = target(*name, &me, &known);
            let got = got.as_ref().map(|o| o.as_ref().map(|n| n.as_str()));
            assert_eq!(
                got,
                want.map_err(str::to_owned).as_ref().map(|o| *o),
                "{name:?}"
            );
        }
    }

    #[test]
    fn reasons_and_durations() {
        assert_eq!(reason("  kernel update ").unwrap(), "kernel update");
        assert!(reason("a\nb").unwrap_err().contains("one line"));
        assert!(reason(&"x".repeat(201)).unwrap_err().contains("200"));
        assert_eq!(for_secs(60).unwrap().as_secs(), 60);
        assert!(for_secs(0).is_err());
        assert!(for_secs(MAX_FOR_SECS + 1).unwrap_err().contains("366 days"));
    }

    #[test]
    fn eligibility_in_words() {
        let n3 = id("n3");
        let app_fail = [CheckState {
            name: "app".into(),
            code: CheckCode::Fail,
            reason: "HTTP 503".into(),
        }];
        let ok = HealthBits(HealthBits::READY | HealthBits::HEALTHY | HealthBits::ELIGIBLE);
        let c = |state, mode, bits: u32, checks| Candidate {
            id: &n3,
            state,
            mode,
            health: HealthBits(bits),
            checks,
        };
        use MemberState::{Alive, Suspect};
        use Mode::{Member, Witness};
        let table: Vec<(Candidate<'_>, Option<&str>)> = vec![
            (c(Alive, Member, ok.0, &[]), None),
            (
                c(Alive, Witness, ok.0, &[]),
                Some("n3 is a witness: it never becomes primary"),
            ),
            (
                c(Suspect, Member, ok.0, &[]),
                Some("n3 is suspect, not alive"),
            ),
            (
                c(
                    Alive,
                    Member,
                    HealthBits::READY | HealthBits::APP_FAIL,
                    &app_fail,
                ),
                Some("n3 is not eligible: app check failing (HTTP 503)"),
            ),
            (
                c(Alive, Member, HealthBits::READY | HealthBits::APP_FAIL, &[]),
                Some("n3 is not eligible: app check failing"),
            ),
            (
                c(
                    Alive,
                    Member,
                    HealthBits::READY | HealthBits::DRAINING | HealthBits::MOUNT_FAIL,
                    &[],
                ),
                Some("n3 is not eligible: draining, mounts check failing"),
            ),
            (
                c(Alive, Member, 0, &[]),
                Some("n3 is not eligible: not ready yet"),
            ),
            (
                c(Alive, Member, HealthBits::UPGRADE_HELD, &[]),
                Some(
                    "n3 is not eligible: held by the upgrade gate (`quorate upgrade allow` on it)",
                ),
            ),
            (
                c(Alive, Member, HealthBits::READY, &[]),
                Some("n3 is not eligible: its checks say so"),
            ),
        ];
        for (cand, want) in table {
            assert_eq!(not_eligible(&cand).as_deref(), want, "{cand:?}");
        }
    }
}
