//! `quorate status [--json]` (and `quorate` without a subcommand, until the TUI exists):
//! one agent's `/cluster`, as a table or as JSON.

use std::io::{self, Write as _};
use std::time::Duration;

use anyhow::{Context as _, bail};
use proto::status::ClusterStatus;

use super::{Global, StatusArgs};
use crate::http;
use crate::table::render_status;
use crate::target;

/// How long each step of asking an agent may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(global: &Global, args: &StatusArgs) -> anyhow::Result<()> {
    let target = target::resolve(global)?;
    let status = fetch(&target.addr, TIMEOUT)
        .with_context(|| format!("cannot get the cluster status from {target}"))?;
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&status)?;
        json.push('\n');
        json
    } else {
        render_status(&status)
    };
    // Not print!: that panics when stdout is a closed pipe.
    io::stdout()
        .write_all(text.as_bytes())
        .and_then(|()| io::stdout().flush())
        .context("writing to stdout")
}

/// `GET /cluster` from the agent at `addr`, parsed.
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
