//! `quorate transfer NODE`, `quorate freeze`, `quorate unfreeze`: commands over the
//! operator channel. The agent asked checks the command against what it knows and
//! answers at once — carried out (a transfer is forwarded to the primary), or refused
//! with the reason; `transfer` then waits to see the new primary.

use std::time::{Duration, Instant};

use anyhow::bail;
use proto::NodeId;
use proto::ctl::CtlCommand;
use quorate_agent::ctl::client::blocking::Client;
use quorate_agent::ctl::client::{Outcome, Update};

use super::Global;
use super::status::out;
use crate::target;

/// How long `transfer` waits to see the new primary.
const TRANSFER_WAIT: Duration = Duration::from_secs(5);

/// Sends `command`; what the agent did, or an error with its reason for refusing.
pub fn command(client: &Client, command: CtlCommand) -> anyhow::Result<String> {
    match client.command(command)? {
        Outcome::Done(message) => Ok(message),
        Outcome::Refused(reason) => bail!("{} refused: {reason}", client.addr()),
    }
}

pub fn transfer(global: &Global, to: &NodeId) -> anyhow::Result<()> {
    let client = target::connect(global)?;
    let mut updates = client.subscribe()?;
    let before = match updates.next(Duration::from_secs(5))? {
        Some(Update::Snapshot(s)) => s.status,
        _ => bail!("{}: no snapshot to start from", client.addr()),
    };
    let message = command(
        &client,
        CtlCommand::Transfer {
            node: to.to_string(),
        },
    )?;
    if before.primary.as_deref() == Some(to.as_str()) {
        return out(&format!("{message}\n"));
    }
    let old = before.primary.clone().unwrap_or_else(|| "-".into());
    let started = now();
    while now().duration_since(started) < TRANSFER_WAIT {
        let Ok(Some(Update::Snapshot(s))) = updates.next(Duration::from_millis(500)) else {
            continue;
        };
        let s = s.status;
        if s.primary.as_deref() == Some(to.as_str()) {
            return out(&format!(
                "primary {old} → {to} (term {} → {})\n",
                before.term, s.term
            ));
        }
        if let Some(p) = s.primary.as_deref()
            && p != old
            && s.term > before.term
        {
            bail!("{p} became primary (term {}), not {to}", s.term);
        }
    }
    bail!(
        "{message}, but {old} is still primary after {}s (see `quorate events` on it)",
        TRANSFER_WAIT.as_secs()
    )
}

pub fn freeze(global: &Global, on: bool) -> anyhow::Result<()> {
    let client = target::connect(global)?;
    let cmd = if on {
        CtlCommand::Freeze
    } else {
        CtlCommand::Unfreeze
    };
    let message = command(&client, cmd)?;
    out(&format!("{message}\n"))
}

#[allow(clippy::disallowed_methods)] // a CLI waiting for a result, not decision logic
fn now() -> Instant {
    Instant::now()
}
