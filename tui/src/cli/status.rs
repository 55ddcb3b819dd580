//! `quorate status [--json]` (and `quorate` without a subcommand, until the TUI exists):
//! one agent's view of the cluster over the operator channel, as a table or as JSON.

use std::io::{self, Write as _};

use anyhow::Context as _;

use super::{Global, StatusArgs};
use crate::table::render_status;
use crate::target;

pub fn run(global: &Global, args: &StatusArgs) -> anyhow::Result<()> {
    let client = target::connect(global)?;
    let snapshot = client.snapshot()?;
    let text = if args.json {
        // Exactly the agent's document (what `GET /cluster` answers).
        snapshot.json
    } else {
        render_status(&snapshot.status)
    };
    out(&text)
}

/// Writes to stdout. Not print!: that panics when stdout is a closed pipe.
pub fn out(text: &str) -> anyhow::Result<()> {
    io::stdout()
        .write_all(text.as_bytes())
        .and_then(|()| io::stdout().flush())
        .context("writing to stdout")
}
