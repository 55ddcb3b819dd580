//! `quorate status [--json]` (and `quorate` without a subcommand, until the TUI exists):
//! one agent's view of the cluster over the operator channel, as a table or as JSON.
//! Also [`fetch`], the `GET /cluster` the demo uses to watch its own agents.

use std::io::{self, Write as _};
use std::time::Duration;

use anyhow::{Context as _, bail};
use proto::status::ClusterStatus;

use super::{Global, StatusArgs};
use crate::http;
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

/// `GET /cluster` from the agent's HTTP port at `addr`, parsed (for the demo, which
/// watches agents it started, on loopback).
pub fn fetch(addr: &str, timeout: Duration) -> anyhow::Result<ClusterStatus> {
    let response = http::get(addr, "/cluster", timeout)?;
    match response.status {
        200 => {}
        403 => bail!(
            "/cluster answered 403 {}: this host is not in the agent's http.allow",
            response.reason
        ),
        code => bail!("/cluster answered {code} {}", response.reason),
    }
    serde_json::from_slice(&response.body).context("/cluster did not answer a cluster status")
}
