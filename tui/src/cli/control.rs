//! `quorate transfer [NODE]`, `quorate freeze`, `quorate unfreeze`: commands to the local
//! agent, which forwards a transfer to the primary. Until the operator channel exists
//! they use the agent's loopback-only HTTP POSTs, so they must run on a node.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use proto::NodeId;

use super::Global;
use super::status::{TIMEOUT, fetch};
use crate::http;
use crate::target;

/// How long `transfer` waits to see the new primary.
const TRANSFER_WAIT: Duration = Duration::from_secs(5);

pub fn transfer(global: &Global, to: Option<&NodeId>) -> anyhow::Result<()> {
    let target = target::resolve(global)?;
    let before = fetch(&target.addr, TIMEOUT)
        .with_context(|| format!("cannot reach the agent at {target}"))?;
    let Some(old) = before.primary.clone() else {
        bail!("no primary to hand over from (term {})", before.term);
    };
    if to.is_some_and(|t| t.as_str() == old) {
        println!("{old} is already primary (term {})", before.term);
        return Ok(());
    }
    let path = match to {
        Some(t) => format!("/admin/transfer?to={t}"),
        None => "/admin/transfer".to_owned(),
    };
    send(&target.addr, &path).with_context(|| format!("transfer via {target}"))?;
    let started = now();
    while now().duration_since(started) < TRANSFER_WAIT {
        std::thread::sleep(Duration::from_millis(50));
        let Ok(s) = fetch(&target.addr, TIMEOUT) else {
            continue;
        };
        if let Some(p) = s.primary.as_deref()
            && p != old
            && s.term > before.term
        {
            if to.is_some_and(|t| t.as_str() != p) {
                bail!(
                    "{p} became primary (term {}), not {}",
                    s.term,
                    to.map(|t| t.as_str()).unwrap_or("?")
                );
            }
            println!("primary {old} → {p} (term {} → {})", before.term, s.term);
            return Ok(());
        }
    }
    bail!(
        "{old} is still primary after {}s: the target may not be eligible (see `quorate status` and the agents' logs)",
        TRANSFER_WAIT.as_secs()
    )
}

pub fn freeze(global: &Global, on: bool) -> anyhow::Result<()> {
    let target = target::resolve(global)?;
    let path = if on {
        "/admin/freeze"
    } else {
        "/admin/unfreeze"
    };
    send(&target.addr, path).with_context(|| format!("{} via {target}", &path[7..]))?;
    println!(
        "cluster {}",
        if on {
            "frozen: no elections or handovers until `quorate unfreeze`"
        } else {
            "unfrozen"
        }
    );
    Ok(())
}

fn send(addr: &str, path: &str) -> anyhow::Result<()> {
    let r = http::post(addr, path, TIMEOUT)?;
    match r.status {
        200 | 202 => Ok(()),
        403 => bail!("refused: commands are only taken from the node itself (loopback)"),
        code => bail!(
            "the agent answered {code} {}: {}",
            r.reason,
            String::from_utf8_lossy(&r.body).trim()
        ),
    }
}

#[allow(clippy::disallowed_methods)] // a CLI waiting for a result, not decision logic
fn now() -> Instant {
    Instant::now()
}
