//! `quorate status [--json]` (and `quorate` without a subcommand when not on a terminal):
//! one agent's view of the cluster over the operator channel, as a table or as JSON, and
//! the verdict on it ([`proto::status::ClusterStatus::verdict`]) as the exit status of a
//! monitoring check: 0 ok, 1 degraded, 2 critical. Not reaching the agent is critical
//! too: `main` exits 2 on this command's errors.
//!
//! Must never judge the cluster itself: the verdict is the document's.

use std::io::{self, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;

use super::json::{StatusJson, VerdictJson};
use super::{Global, StatusArgs};
use crate::table::render_status;
use crate::target;

pub fn run(global: &Global, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let client = target::connect(global)?;
    let snapshot = client.snapshot()?;
    let verdict = snapshot.status.verdict();
    let text = if args.json {
        let mut document: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&snapshot.json)
                .with_context(|| format!("{}: the snapshot is not a JSON object", client.addr()))?;
        // Ours is the verdict this tool's exit status follows, whatever an agent says.
        document.remove("verdict");
        let json = StatusJson {
            document,
            verdict: VerdictJson::new(&verdict),
        };
        serde_json::to_string_pretty(&json).context("writing the status as JSON")? + "\n"
    } else {
        format!("{}{verdict}\n", render_status(&snapshot.status))
    };
    out(&text)?;
    Ok(ExitCode::from(verdict.level.exit_code()))
}

/// Writes to stdout. Not print!: that panics when stdout is a closed pipe.
pub fn out(text: &str) -> anyhow::Result<()> {
    io::stdout()
        .write_all(text.as_bytes())
        .and_then(|()| io::stdout().flush())
        .context("writing to stdout")
}
