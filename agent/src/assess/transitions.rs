//! What changed between two assessments, worded once for the log and the journal: a
//! check that failed or passed again, the node becoming (not) ready, (not) fit for
//! traffic. Every change is a journal record; the log line is written only for checks
//! judged with the peers (the probes log their own transitions: app, mounts, load).
//!
//! Pure: it words, the driver emits and records.

use proto::ctl::EventKind;
use proto::{CheckCode, NodeId};
use tracing::Level;

use super::reason;
use super::spec;
use super::state::Assessment;
use crate::events::describe::{Description, Fields};

/// One change, and whether its log line is written here.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub description: Description,
    pub logged: bool,
}

/// The changes from `old` to `new` on node `me`.
pub fn transitions(me: &NodeId, old: &Assessment, new: &Assessment) -> Vec<Transition> {
    let node = Some(me.to_string());
    let change = |level, fields, message, kind, text, logged| Transition {
        description: Description {
            level,
            fields,
            message,
            kind,
            node: node.clone(),
            text,
        },
        logged,
    };
    let mut out = Vec::new();
    for (o, n) in old.checks.iter().zip(&new.checks) {
        // A first result that passes is not news ("ok again" at every start would be).
        if o.code == n.code || (o.code == CheckCode::Off && n.code.passing()) {
            continue;
        }
        let spec = spec(&n.name);
        let kind = spec.map_or(EventKind::Check, |s| s.event);
        let logged = spec.is_some_and(|s| !s.probe_logs);
        let fields = Fields {
            check: Some(n.name.to_string()),
            ..Fields::default()
        };
        let code = n.code.as_str();
        if n.code.passing() {
            out.push(change(
                Level::INFO,
                fields,
                format!("{} check {code} again", n.name),
                kind,
                format!("{me}: {} check {code} again", n.name),
                logged,
            ));
        } else {
            let why = if n.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", n.reason)
            };
            out.push(change(
                Level::WARN,
                fields,
                format!("{} check {code}: {}", n.name, n.reason),
                kind,
                format!("{me}: {} check {code}{why}", n.name),
                logged,
            ));
        }
    }
    let reasons = || Fields {
        reasons: Some(format!("{:?}", new.reasons)),
        ..Fields::default()
    };
    if old.ready != new.ready {
        let (message, text) = if new.ready {
            ("ready".to_owned(), format!("{me} is ready"))
        } else {
            (
                "not ready".to_owned(),
                format!("{me} is not ready: {}", reason::join(&new.reasons)),
            )
        };
        out.push(change(
            Level::INFO,
            reasons(),
            message,
            EventKind::Check,
            text,
            true,
        ));
    }
    if old.healthy != new.healthy {
        out.push(if new.healthy {
            change(
                Level::INFO,
                Fields::default(),
                "healthy: fit for traffic".to_owned(),
                EventKind::Check,
                format!("{me} is fit for traffic"),
                true,
            )
        } else {
            change(
                Level::WARN,
                reasons(),
                "not fit for traffic".to_owned(),
                EventKind::Check,
                format!(
                    "{me} is not fit for traffic: {}",
                    reason::join(&new.reasons)
                ),
                true,
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use proto::CheckState;

    use super::*;

    fn with_config(code: CheckCode) -> Assessment {
        Assessment {
            checks: vec![CheckState {
                name: "config".into(),
                code,
                reason: if code.passing() {
                    String::new()
                } else {
                    "app differs from n3".into()
                },
            }],
            ..Assessment::starting()
        }
    }

    #[test]
    fn a_first_passing_result_is_not_an_event_but_changes_are() {
        let n1 = NodeId::new("n1").unwrap();
        let texts = |old, new| -> Vec<(String, String, bool)> {
            transitions(&n1, &with_config(old), &with_config(new))
                .into_iter()
                .map(|t| (t.description.message, t.description.text, t.logged))
                .collect()
        };
        assert!(texts(CheckCode::Off, CheckCode::Ok).is_empty());
        assert_eq!(
            texts(CheckCode::Off, CheckCode::Drift),
            [(
                "config check drift: app differs from n3".to_owned(),
                "n1: config check drift: app differs from n3".to_owned(),
                true
            )]
        );
        assert_eq!(
            texts(CheckCode::Drift, CheckCode::Ok),
            [(
                "config check ok again".to_owned(),
                "n1: config check ok again".to_owned(),
                true
            )]
        );
        assert!(texts(CheckCode::Ok, CheckCode::Ok).is_empty());
    }

    #[test]
    fn readiness_and_health_changes_carry_the_reasons() {
        let n1 = NodeId::new("n1").unwrap();
        let ready = Assessment {
            ready: true,
            healthy: true,
            reasons: Vec::new(),
            ..Assessment::starting()
        };
        let down = Assessment::starting();
        let t = transitions(&n1, &ready, &down);
        let got: Vec<(&str, &str, Option<&str>)> = t
            .iter()
            .map(|t| {
                let d = &t.description;
                (
                    d.message.as_str(),
                    d.text.as_str(),
                    d.fields.reasons.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "not ready",
                    "n1 is not ready: starting",
                    Some("[\"starting\"]")
                ),
                (
                    "not fit for traffic",
                    "n1 is not fit for traffic: starting",
                    Some("[\"starting\"]")
                ),
            ]
        );
    }
}
