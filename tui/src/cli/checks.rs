//! `quorate drain|undrain`, `drift ack`, `upgrade status|allow` and `task should-run`:
//! the commands that steer or read the node checks. Until the operator channel exists
//! they use the local agent's loopback-only HTTP endpoints, so they must run on a node.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use proto::status::ClusterStatus;
use proto::{NodeId, compare_versions};

use super::Global;
use super::status::{TIMEOUT, fetch};
use crate::http;
use crate::target;

/// How long `drain`/`undrain` wait to see the change gossiped back.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn post(global: &Global, path: &str) -> anyhow::Result<String> {
    let target = target::resolve(global)?;
    let r = http::post(&target.addr, path, TIMEOUT)
        .with_context(|| format!("cannot reach the agent at {target}"))?;
    match r.status {
        200 | 202 => Ok(target.addr),
        403 => bail!("refused: commands are only taken from the node itself (loopback)"),
        code => bail!(
            "the agent at {target} answered {code} {}: {}",
            r.reason,
            String::from_utf8_lossy(&r.body).trim()
        ),
    }
}

/// Waits until `done` holds for the agent's `/cluster`, or [`SETTLE_WAIT`].
fn settle(addr: &str, done: impl Fn(&ClusterStatus) -> bool) -> Option<ClusterStatus> {
    let start = now();
    while now().duration_since(start) < SETTLE_WAIT {
        if let Ok(s) = fetch(addr, TIMEOUT)
            && done(&s)
        {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

pub fn drain(
    global: &Global,
    node: Option<&NodeId>,
    reason: &str,
    for_: Option<&str>,
    on: bool,
) -> anyhow::Result<()> {
    let mut path = if on {
        format!("/admin/drain?reason={}", enc(reason))
    } else {
        "/admin/undrain?".to_owned()
    };
    if let Some(f) = for_ {
        humantime::parse_duration(f).with_context(|| format!("--for {f:?}"))?;
        path.push_str(&format!("&for={}", enc(f)));
    }
    if let Some(n) = node {
        path.push_str(&format!("&node={n}"));
    }
    let addr = post(global, &path)?;
    let who = |s: &ClusterStatus| node.map(|n| n.to_string()).unwrap_or(s.node.clone());
    match settle(&addr, |s| {
        let name = who(s);
        s.nodes.iter().any(|n| n.node == name && n.draining == on)
    }) {
        Some(s) => {
            let name = who(&s);
            if on {
                println!(
                    "{name} drained: it hands the primary role over, then its /health answers the drain code"
                );
            } else {
                println!("{name} undrained");
            }
            Ok(())
        }
        None => bail!(
            "the order was taken, but the node does not show it after {}s (unreachable? it applies when it hears the order)",
            SETTLE_WAIT.as_secs()
        ),
    }
}

pub fn drift_ack(global: &Global, name: &str, for_: &str, reason: &str) -> anyhow::Result<()> {
    humantime::parse_duration(for_).with_context(|| format!("--for {for_:?}"))?;
    post(
        global,
        &format!(
            "/admin/drift-ack?name={}&for={}&reason={}",
            enc(name),
            enc(for_),
            enc(reason)
        ),
    )?;
    println!("drift in {name} acknowledged for {for_}: {reason}");
    Ok(())
}

pub fn upgrade_allow(global: &Global) -> anyhow::Result<()> {
    post(global, "/admin/upgrade-allow")?;
    println!("upgrade gate opened for this node's app version");
    Ok(())
}

pub fn upgrade_status(global: &Global) -> anyhow::Result<()> {
    let target = target::resolve(global)?;
    let s = fetch(&target.addr, TIMEOUT)
        .with_context(|| format!("cannot reach the agent at {target}"))?;
    print!("{}", upgrade_report(&s));
    Ok(())
}

/// Which node runs which app version, and which node to upgrade next: a node held by
/// the gate first (allow it), else the lowest-priority secondary still on an older
/// version, and the primary last.
pub fn upgrade_report(s: &ClusterStatus) -> String {
    let mut out = String::new();
    let newest = s
        .nodes
        .iter()
        .filter_map(|n| n.version.app.as_deref())
        .max_by(|a, b| compare_versions(a, b))
        .map(str::to_owned);
    for n in &s.nodes {
        let app = n.version.app.as_deref().unwrap_or("-");
        let held = n.checks.get("version").is_some_and(|c| c == "fail");
        out.push_str(&format!(
            "{:<12} {:<10} app {:<12} agent {:<8}{}\n",
            n.node,
            n.role,
            app,
            n.version.agent,
            if held {
                "  held by the upgrade gate"
            } else {
                ""
            }
        ));
    }
    let Some(newest) = newest else {
        out.push_str("no node reports an app version ([app] version_file or version_command)\n");
        return out;
    };
    if let Some(n) = s
        .nodes
        .iter()
        .find(|n| n.checks.get("version").is_some_and(|c| c == "fail"))
    {
        out.push_str(&format!(
            "next: run `quorate upgrade allow` on {} (it waits on the gate)\n",
            n.node
        ));
        return out;
    }
    let mut older: Vec<_> = s
        .nodes
        .iter()
        .filter(|n| {
            n.role != "witness"
                && n.version
                    .app
                    .as_deref()
                    .is_some_and(|v| compare_versions(v, &newest).is_lt())
        })
        .collect();
    older.sort_by_key(|n| (n.role == "primary", n.priority, n.node.clone()));
    match older.first() {
        Some(n) => out.push_str(&format!(
            "next: upgrade {} ({}{})\n",
            n.node,
            n.role,
            if n.role == "primary" {
                "; it hands over when it stops"
            } else {
                ""
            }
        )),
        None => out.push_str(&format!("every node runs {newest}\n")),
    }
    out
}

/// `quorate task should-run NAME`: exit 0 and `QUORATE_TERM=N` on the one node that
/// should run the task now; exit 1 elsewhere.
pub fn should_run(global: &Global, name: &str) -> anyhow::Result<bool> {
    let target = target::resolve(global)?;
    let r = http::get(&target.addr, &format!("/task/{}", enc(name)), TIMEOUT)
        .with_context(|| format!("cannot reach the agent at {target}"))?;
    let term = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v.get("term").and_then(|t| t.as_u64()));
    match r.status {
        200 => {
            println!("QUORATE_TERM={}", term.unwrap_or(0));
            Ok(true)
        }
        404 => bail!("no [[task]] named {name:?} in the agent's config"),
        _ => Ok(false),
    }
}

#[allow(clippy::disallowed_methods)] // a CLI waiting for a result, not decision logic
fn now() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(enc("kernel update #2"), "kernel%20update%20%232");
        assert_eq!(enc("a&b=c"), "a%26b%3Dc");
        assert_eq!(enc("1h"), "1h");
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(compare_versions("5.10", "5.9").is_gt());
        assert!(compare_versions("5.2.1", "5.2.1").is_eq());
    }
}
