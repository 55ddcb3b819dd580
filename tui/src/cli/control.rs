//! `quorate transfer NODE`, `quorate freeze`, `quorate unfreeze`: commands over the
//! operator channel. The agent asked checks the command against what it knows and
//! answers at once — carried out (a transfer is forwarded to the primary), or refused
//! with the reason; `transfer` then waits to see the new primary.
//!
//! Also what every such command ends with: a [`Reply`], printed as a line or as a
//! [`CommandJson`] by [`finish`].

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use proto::NodeId;
use proto::ctl::CtlCommand;
use quorate_agent::ctl::client::blocking::Client;
use quorate_agent::ctl::client::{Outcome, Update};

use super::json::{self, CommandJson, CommandName};
use super::status::out;
use super::{CommandOutput, Global};
use crate::target;

/// How long `transfer` waits to see the new primary.
const TRANSFER_WAIT: Duration = Duration::from_secs(5);

/// What became of a command the agent answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Carried out (and, where the command waits for it, seen).
    pub ok: bool,
    /// The node it is about, when known.
    pub node: Option<String>,
    /// The agent's words, or why it was refused or not seen.
    pub message: String,
}

impl Reply {
    pub fn done(node: Option<String>, message: String) -> Self {
        Self {
            ok: true,
            node,
            message,
        }
    }

    pub fn not_done(node: Option<String>, message: String) -> Self {
        Self {
            ok: false,
            node,
            message,
        }
    }
}

/// Sends `command`: `Ok(what the agent did)` or `Err(why it refused)`, worded for the
/// operator; the outer error is one of reaching the agent.
pub fn ask(client: &Client, command: CtlCommand) -> anyhow::Result<Result<String, String>> {
    Ok(match client.command(command)? {
        Outcome::Done(message) => Ok(message),
        Outcome::Refused(reason) => Err(format!("{} refused: {reason}", client.addr())),
    })
}

/// Prints `reply`: its message on stdout, or with `--json` a [`CommandJson`]. Without
/// `--json` a command not carried out is an error (its message on stderr, exit 1); with
/// it, it is `"ok": false` on stdout and exit 1.
pub fn finish(
    name: CommandName,
    output: CommandOutput,
    reply: anyhow::Result<Reply>,
) -> anyhow::Result<ExitCode> {
    let reply = reply?;
    if output.json {
        out(&json::line(&CommandJson {
            ok: reply.ok,
            command: name,
            node: reply.node,
            message: reply.message,
        })?)?;
    } else if reply.ok {
        out(&format!("{}\n", reply.message))?;
    } else {
        bail!("{}", reply.message);
    }
    Ok(if reply.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn transfer(global: &Global, to: &NodeId) -> anyhow::Result<Reply> {
    let node = Some(to.to_string());
    let client = target::connect(global)?;
    let mut updates = client.subscribe()?;
    let before = match updates.next(Duration::from_secs(5))? {
        Some(Update::Snapshot(s)) => s.status,
        _ => bail!("{}: no snapshot to start from", client.addr()),
    };
    let message = match ask(
        &client,
        CtlCommand::Transfer {
            node: to.to_string(),
        },
    )? {
        Ok(message) => message,
        Err(refusal) => return Ok(Reply::not_done(node, refusal)),
    };
    if before.primary.as_deref() == Some(to.as_str()) {
        return Ok(Reply::done(node, message));
    }
    let old = before.primary.clone().unwrap_or_else(|| "-".into());
    let started = now();
    while now().duration_since(started) < TRANSFER_WAIT {
        let Ok(Some(Update::Snapshot(s))) = updates.next(Duration::from_millis(500)) else {
            continue;
        };
        let s = s.status;
        if s.primary.as_deref() == Some(to.as_str()) {
            return Ok(Reply::done(
                node,
                format!("primary {old} → {to} (term {} → {})", before.term, s.term),
            ));
        }
        if let Some(p) = s.primary.as_deref()
            && p != old
            && s.term > before.term
        {
            return Ok(Reply::not_done(
                node,
                format!("{p} became primary (term {}), not {to}", s.term),
            ));
        }
    }
    Ok(Reply::not_done(
        node,
        format!(
            "{message}, but {old} is still primary after {}s (see `quorate events` on it)",
            TRANSFER_WAIT.as_secs()
        ),
    ))
}

pub fn freeze(global: &Global, on: bool) -> anyhow::Result<Reply> {
    let client = target::connect(global)?;
    let cmd = if on {
        CtlCommand::Freeze
    } else {
        CtlCommand::Unfreeze
    };
    Ok(reply(None, ask(&client, cmd)?))
}

/// `ask`'s answer as a [`Reply`] about `node`.
pub fn reply(node: Option<String>, answer: Result<String, String>) -> Reply {
    match answer {
        Ok(message) => Reply::done(node, message),
        Err(refusal) => Reply::not_done(node, refusal),
    }
}

#[allow(clippy::disallowed_methods)] // a CLI waiting for a result, not decision logic
fn now() -> Instant {
    Instant::now()
}
