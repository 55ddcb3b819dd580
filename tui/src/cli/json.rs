//! What `--json` prints, for every command that prints something: one serde type per
//! command, here and nowhere else, each with a test pinning its field names (the shapes
//! the operator guide documents). `events --json` prints `proto::ctl::EventRecord`s and
//! `member list --json` the agent's `members` object; both are the agent's, not here.
//!
//! Owns the shapes. Must never change a field's name or meaning: fields are only ever
//! added. Must never build JSON by hand: every object is one of these types.

use std::io;
use std::path::Path;

use proto::Role;
use proto::status::{Finding, Level, Verdict};
use serde::{Deserialize, Serialize};

/// `quorate status --json`: the agent's `/cluster` document as it sent it (fields this
/// tool does not know included), with `verdict` added beside its fields.
#[derive(Debug, Serialize)]
pub struct StatusJson<'a> {
    #[serde(flatten)]
    pub document: serde_json::Map<String, serde_json::Value>,
    pub verdict: VerdictJson<'a>,
}

/// The verdict as `status --json` carries it: its level and findings, the exit status
/// it means and the line the table ends with.
#[derive(Debug, Serialize)]
pub struct VerdictJson<'a> {
    pub level: Level,
    pub exit_code: u8,
    /// `degraded: n3 dead; config drift on n2`.
    pub summary: String,
    pub findings: &'a [Finding],
}

impl<'a> VerdictJson<'a> {
    pub fn new(verdict: &'a Verdict) -> Self {
        Self {
            level: verdict.level,
            exit_code: verdict.level.exit_code(),
            summary: verdict.to_string(),
            findings: &verdict.findings,
        }
    }
}

/// Which command a [`CommandJson`] answers, as its words on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandName {
    Drain,
    Undrain,
    Transfer,
    Freeze,
    Unfreeze,
    DriftAck,
    UpgradeAllow,
    MemberAdd,
    MemberRemove,
    MemberReplace,
    MemberPromote,
    MemberForceNewCluster,
}

/// `drain`, `undrain`, `transfer`, `freeze`, `unfreeze`, `drift ack`, `upgrade allow`
/// with `--json`: whether it was carried out (and, where the command waits to see it,
/// seen), and what the agent said. `ok: false` (a refusal, or not seen in time) comes
/// with exit status 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandJson {
    pub ok: bool,
    pub command: CommandName,
    /// The node the command is about (`null` for the cluster-wide ones, and for a drain
    /// of "this node" the agent refused before it was seen).
    pub node: Option<String>,
    /// The agent's answer, or the reason it refused.
    pub message: String,
}

/// `quorate upgrade status --json`: which node runs which version, and what to do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeJson {
    pub nodes: Vec<UpgradeNode>,
    /// The newest app version any node reports (`null`: none reports one).
    pub newest: Option<String>,
    /// The next step (`null`: every node runs `newest`, or no version is known).
    pub next: Option<UpgradeNext>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeNode {
    pub node: String,
    pub role: Role,
    pub app: Option<String>,
    pub agent: String,
    /// Held back by the upgrade gate (`quorate upgrade allow` on it opens it).
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeNext {
    pub node: String,
    pub step: UpgradeStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpgradeStep {
    /// Run `quorate upgrade allow` on it: it waits on the gate.
    Allow,
    /// Upgrade it (the primary last: it hands over when it stops).
    Upgrade,
}

/// `quorate task should-run NAME --json`. The exit status is the same as without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShouldRunJson {
    pub task: String,
    /// Whether the node asked runs the task now (exit 0).
    pub run_here: bool,
    /// The fencing token (`QUORATE_TERM`).
    pub term: u64,
    /// Where the agent asked places the task, if anywhere.
    pub holder: Option<String>,
}

/// Which `quorate ca` command a [`CaJson`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaAction {
    Init,
    Issue,
    Renew,
    Revoke,
}

/// Whose certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    Node,
    Operator,
}

/// `quorate ca init|issue|renew|revoke --json`: what was written, and for a renewal or a
/// revocation what changed. Every field is always there (empty or `null` when it does
/// not apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaJson {
    pub command: CaAction,
    /// The node or operator named (`null` for `init`).
    pub name: Option<String>,
    pub kind: Option<CertKind>,
    /// Files written (created or replaced), in the order written.
    pub wrote: Vec<String>,
    /// Files used and left as they were (a renewal keeps the key).
    pub kept: Vec<String>,
    /// The renewed certificate's end of validity.
    pub valid_until: Option<String>,
    /// Serials this revocation added to the list.
    pub revoked: Vec<String>,
    /// Serials of that name that were already on it.
    pub already_revoked: Vec<String>,
    /// The new revocation list's number (`null`: the list was not rewritten).
    pub crl_number: Option<u64>,
}

impl CaJson {
    pub fn new(command: CaAction, name: Option<&str>, kind: Option<CertKind>) -> Self {
        Self {
            command,
            name: name.map(str::to_owned),
            kind,
            wrote: Vec::new(),
            kept: Vec::new(),
            valid_until: None,
            revoked: Vec::new(),
            already_revoked: Vec::new(),
            crl_number: None,
        }
    }
}

/// A path as the JSON shows it.
pub fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `value` as one line of JSON, newline included.
pub fn line<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string(value).map_err(io::Error::other)? + "\n")
}

#[cfg(test)]
mod tests {
    use proto::status::ClusterStatus;
    use serde_json::Value;

    use super::*;

    /// The field names of a JSON object (sorted: serde_json's map keeps no order).
    fn keys<T: Serialize>(value: &T) -> Vec<String> {
        match serde_json::to_value(value).unwrap() {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn status_is_the_document_with_a_verdict_beside_it() {
        let document = r#"{"cluster":"c","node":"n1","term":3,"primary":null,"quorum":true,
            "frozen":false,"voters":1,"nodes":[],"a_newer_field":{"x":1}}"#;
        let status: ClusterStatus = serde_json::from_str(document).unwrap();
        let verdict = status.verdict();
        let out = StatusJson {
            document: serde_json::from_str(document).unwrap(),
            verdict: VerdictJson::new(&verdict),
        };
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["a_newer_field"]["x"], 1, "kept as the agent sent it");
        assert_eq!(v["term"], 3);
        assert_eq!(
            keys(&out.verdict),
            ["exit_code", "findings", "level", "summary"]
        );
        assert_eq!(v["verdict"]["level"], "critical");
        assert_eq!(v["verdict"]["exit_code"], 2);
        assert_eq!(v["verdict"]["summary"], "critical: no primary");
        assert_eq!(v["verdict"]["findings"][0]["kind"], "no_primary");
    }

    #[test]
    fn command_shape() {
        let c = CommandJson {
            ok: false,
            command: CommandName::DriftAck,
            node: None,
            message: "no [[config]] set named \"x\"".into(),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"ok":false,"command":"drift-ack","node":null,"message":"no [[config]] set named \"x\""}"#
        );
        for (name, word) in [
            (CommandName::Drain, "drain"),
            (CommandName::Undrain, "undrain"),
            (CommandName::Transfer, "transfer"),
            (CommandName::Freeze, "freeze"),
            (CommandName::Unfreeze, "unfreeze"),
            (CommandName::DriftAck, "drift-ack"),
            (CommandName::UpgradeAllow, "upgrade-allow"),
            (CommandName::MemberAdd, "member-add"),
            (
                CommandName::MemberForceNewCluster,
                "member-force-new-cluster",
            ),
        ] {
            assert_eq!(serde_json::to_value(name).unwrap(), word);
        }
    }

    #[test]
    fn upgrade_shape() {
        let u = UpgradeJson {
            nodes: vec![UpgradeNode {
                node: "n1".into(),
                role: Role::Primary,
                app: Some("5.2".into()),
                agent: "0.1.0".into(),
                held: false,
            }],
            newest: Some("5.3".into()),
            next: Some(UpgradeNext {
                node: "n1".into(),
                step: UpgradeStep::Upgrade,
            }),
        };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            concat!(
                r#"{"nodes":[{"node":"n1","role":"primary","app":"5.2","agent":"0.1.0","held":false}],"#,
                r#""newest":"5.3","next":{"node":"n1","step":"upgrade"}}"#
            )
        );
        assert_eq!(serde_json::to_value(UpgradeStep::Allow).unwrap(), "allow");
    }

    #[test]
    fn should_run_shape() {
        let s = ShouldRunJson {
            task: "nightly".into(),
            run_here: true,
            term: 9,
            holder: Some("n2".into()),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"task":"nightly","run_here":true,"term":9,"holder":"n2"}"#
        );
    }

    #[test]
    fn ca_shape() {
        let mut c = CaJson::new(CaAction::Revoke, Some("alice"), Some(CertKind::Operator));
        c.wrote = vec!["d/crl.pem".into(), "d/serials.json".into()];
        c.revoked = vec!["0a1b".into()];
        c.crl_number = Some(2);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            concat!(
                r#"{"command":"revoke","name":"alice","kind":"operator","#,
                r#""wrote":["d/crl.pem","d/serials.json"],"kept":[],"valid_until":null,"#,
                r#""revoked":["0a1b"],"already_revoked":[],"crl_number":2}"#
            )
        );
        for (a, word) in [
            (CaAction::Init, "init"),
            (CaAction::Issue, "issue"),
            (CaAction::Renew, "renew"),
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), word);
        }
        assert_eq!(serde_json::to_value(CertKind::Node).unwrap(), "node");
    }
}
