//! `quorate` as a monitoring check and as a JSON source, against real agents (processes,
//! QUIC, mutual TLS): `status` exits 0 on a healthy cluster, 1 when a node's app check
//! fails or a node is down, 2 without quorum or without an agent to ask; `--json` of every
//! command that prints parses and carries the fields the operator guide documents.
//!
//! Waits are generous (a noisy 2-core CI box) and end as soon as the state is seen.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::time::Duration;

use quorate_tests::cluster::free_port;
use quorate_tests::primary::wait_one_primary;
use quorate_tests::{TestCluster, bin, wait_until};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(30);

fn addrs(c: &TestCluster) -> Vec<SocketAddr> {
    (0..c.members()).map(|i| c.http_addr(i)).collect()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last line `quorate status` printed: the verdict.
fn verdict_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `status` on node `i` until it exits `code` with a verdict line `want` accepts;
/// that run.
fn status_until(c: &TestCluster, i: usize, code: i32, want: impl Fn(&str) -> bool) -> Output {
    let mut last = None;
    let seen = wait_until(SETTLE, || {
        let out = c.quorate(i, &["status"]);
        let hit = out.status.code() == Some(code) && want(&verdict_line(&out));
        last = Some(out);
        hit
    });
    let out = last.unwrap();
    assert!(
        seen,
        "status never exited {code} as expected: {}",
        text(&out)
    );
    out
}

/// Any verdict line.
fn any(_: &str) -> bool {
    true
}

/// `args --json` on node `i`: the exit status and the one JSON object it printed.
fn json(c: &TestCluster, i: usize, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = c.quorate(i, &all);
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out)));
    (out.status.code(), value)
}

/// The field names of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

const COMMAND_KEYS: [&str; 4] = ["command", "message", "node", "ok"];

#[test]
fn status_exits_like_a_monitoring_check() {
    // n3's app check connects to a port this test holds open, then closes.
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let app_port = app.local_addr().unwrap().port();
    let mut c = TestCluster::builder(3)
        .extra(
            2,
            &format!(
                "[app]\ncheck = \"tcp://127.0.0.1:{app_port}\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n"
            ),
        )
        // n3 is never primary unless it must be: the one to make unhealthy is a secondary.
        .priority(2, 1)
        .start();
    assert!(c.wait_converged(SETTLE));
    wait_one_primary(&addrs(&c), SETTLE).expect("no single primary");

    // Healthy: 0, the table, then the verdict.
    let out = status_until(&c, 0, 0, any);
    assert_eq!(
        verdict_line(&out),
        "ok: one primary, quorum, every node alive and healthy",
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("cluster "),
        "{}",
        text(&out)
    );
    // `quorate` alone without a terminal prints the same and exits the same.
    let bare = Command::new(bin("quorate"))
        .arg("--config")
        .arg(c.config_path(1))
        .arg("--connect")
        .arg(c.quic_addr(1).to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(0), "{}", text(&bare));
    assert!(verdict_line(&bare).starts_with("ok: "), "{}", text(&bare));

    // n3's app goes down: degraded (1), saying why.
    drop(app);
    // (Its health bit may arrive before the state that says which check failed.)
    let out = status_until(&c, 0, 1, |line| line.contains("app fail on n3"));
    assert!(
        verdict_line(&out).starts_with("degraded: "),
        "{}",
        text(&out)
    );
    let (code, v) = json(&c, 0, &["status"]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["verdict"]["level"], "degraded", "{v:#}");
    assert_eq!(v["verdict"]["exit_code"], 1, "{v:#}");
    let findings = v["verdict"]["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "check"
            && f["node"] == "n3"
            && f["check"] == "app"
            && f["code"] == "fail"),
        "{v:#}"
    );

    // It comes back: 0 again (the 1 was the app check's).
    let _app = TcpListener::bind(("127.0.0.1", app_port)).unwrap();
    status_until(&c, 0, 0, any);

    // A secondary killed: degraded once it is seen suspect or dead.
    let p = wait_one_primary(&addrs(&c), SETTLE).expect("no single primary");
    let victim = (0..3).find(|&i| i != p && i != 2).unwrap();
    let asked = 3 - p - victim;
    let name = c.id(victim).to_owned();
    c.kill(victim);
    let out = status_until(&c, asked, 1, |line| {
        line.contains(&format!("{name} suspect")) || line.contains(&format!("{name} dead"))
    });
    assert!(
        verdict_line(&out).starts_with("degraded: "),
        "{}",
        text(&out)
    );

    // A second node killed: the one left has no quorum, and soon no primary: 2.
    let other = 3 - asked - victim;
    c.kill(other);
    let out = status_until(&c, asked, 2, |line| line.contains("no quorum"));
    assert!(
        verdict_line(&out).starts_with("critical: "),
        "{}",
        text(&out)
    );
    let (code, v) = json(&c, asked, &["status"]);
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["verdict"]["level"], "critical", "{v:#}");
    assert_eq!(v["quorum"], false, "{v:#}");

    // Nobody at the address: 2, the error on stderr, nothing on stdout (--json too).
    let nowhere = format!("127.0.0.1:{}", free_port());
    for args in [&["status"][..], &["status", "--json"]] {
        let out = Command::new(bin("quorate"))
            .args(args)
            .arg("--config")
            .arg(c.config_path(asked))
            .args(["--connect", &nowhere])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&nowhere),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn json_of_every_command_parses_with_the_documented_fields() {
    let c = TestCluster::builder(3)
        .extra_all("[[task]]\nname = \"nightly\"\nrun_on = \"primary\"\n")
        .start();
    assert!(c.wait_converged(SETTLE));
    let p = wait_one_primary(&addrs(&c), SETTLE).expect("no single primary");
    let s = (p + 1) % 3;
    status_until(&c, 0, 0, any);

    // status: the /cluster document, with the verdict beside its fields.
    let (code, v) = json(&c, 0, &["status"]);
    assert_eq!(code, Some(0), "{v:#}");
    for field in [
        "cluster", "node", "term", "primary", "quorum", "frozen", "voters", "nodes", "members",
    ] {
        assert!(v.get(field).is_some(), "no {field}: {v:#}");
    }
    assert_eq!(
        keys(&v["verdict"]),
        ["exit_code", "findings", "level", "summary"]
    );
    assert_eq!(v["verdict"]["level"], "ok");
    assert_eq!(v["verdict"]["findings"], Value::Array(vec![]));

    // events: one object per line.
    let out = c.quorate(0, &["events", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!lines.is_empty());
    for line in lines.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            keys(&e),
            ["at_micros", "kind", "node", "recorded_by", "seq", "text"]
        );
    }

    // member list: the agent's `members` object.
    let (code, v) = json(&c, 0, &["member", "list"]);
    assert_eq!(code, Some(0));
    assert!(v["stamp"].is_string() && v["members"].is_array(), "{v:#}");
    // member changes: a refusal is ok false with exit 1, like every other command.
    let (code, v) = json(&c, 0, &["member", "remove", "n9"]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(keys(&v), COMMAND_KEYS);
    assert_eq!(
        (&v["ok"], &v["command"], &v["node"]),
        (&Value::Bool(false), &"member-remove".into(), &"n9".into())
    );
    let (code, v) = json(
        &c,
        0,
        &["member", "force-new-cluster", "--yes-i-lost-the-majority"],
    );
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(
        (&v["ok"], &v["command"]),
        (&Value::Bool(false), &"member-force-new-cluster".into())
    );

    // upgrade status: no app versions configured.
    let (code, v) = json(&c, 0, &["upgrade", "status"]);
    assert_eq!(code, Some(0));
    assert_eq!(keys(&v), ["newest", "next", "nodes"]);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3, "{v:#}");
    assert_eq!(
        keys(&v["nodes"][0]),
        ["agent", "app", "held", "node", "role"]
    );
    assert!(v["newest"].is_null() && v["next"].is_null(), "{v:#}");

    // task should-run: the same exit status as without --json, an object on every node.
    let answers: Vec<(Option<i32>, Value)> = (0..3)
        .map(|i| json(&c, i, &["task", "should-run", "nightly"]))
        .collect();
    for (code, v) in &answers {
        assert_eq!(keys(v), ["holder", "run_here", "task", "term"], "{v:#}");
        assert_eq!(v["task"], "nightly");
        assert_eq!(*code, Some(if v["run_here"] == true { 0 } else { 1 }));
    }
    assert_eq!(
        answers.iter().filter(|(code, _)| *code == Some(0)).count(),
        1,
        "{answers:?}"
    );

    // drain: carried out and seen; the cluster is then degraded by it.
    let (code, v) = json(&c, 0, &["drain", c.id(s), "--reason", "disk swap"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(keys(&v), COMMAND_KEYS);
    assert_eq!(v["ok"], true);
    assert_eq!(v["command"], "drain");
    assert_eq!(v["node"], c.id(s));
    let draining = format!("{} draining", c.id(s));
    status_until(&c, 0, 1, |line| line.contains(&draining));
    let (code, v) = json(&c, 0, &["undrain", c.id(s)]);
    assert_eq!(
        (code, &v["ok"], &v["command"]),
        (Some(0), &Value::Bool(true), &"undrain".into())
    );

    // A refusal: ok false, exit 1, nothing on stderr.
    let out = c.quorate(
        0,
        &["drain", c.id(s), "--reason", &"x".repeat(300), "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys(&v), COMMAND_KEYS);
    assert_eq!(v["ok"], false);
    assert!(
        v["message"].as_str().unwrap().contains("longer than 200"),
        "{v:#}"
    );

    // freeze / unfreeze: cluster-wide, no node; frozen degrades the verdict.
    let (code, v) = json(&c, 0, &["freeze"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(
        (&v["command"], &v["node"]),
        (&"freeze".into(), &Value::Null)
    );
    status_until(&c, 0, 1, |line| line.contains("frozen"));
    let (code, v) = json(&c, 0, &["transfer", c.id(s)]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(
        (&v["ok"], &v["command"]),
        (&Value::Bool(false), &"transfer".into())
    );
    assert!(v["message"].as_str().unwrap().contains("frozen"), "{v:#}");
    let (code, v) = json(&c, 0, &["unfreeze"]);
    assert_eq!((code, &v["command"]), (Some(0), &"unfreeze".into()));
    status_until(&c, 0, 0, any);

    // transfer: carried out and seen.
    let (code, v) = json(&c, 0, &["transfer", c.id(s)]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(keys(&v), COMMAND_KEYS);
    assert_eq!(
        (&v["ok"], &v["node"]),
        (&Value::Bool(true), &c.id(s).into())
    );

    // drift ack and upgrade allow, refused here: ok false with the agent's reason.
    let (code, v) = json(
        &c,
        0,
        &["drift", "ack", "nope", "--for", "2h", "--reason", "x"],
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        (&v["ok"], &v["command"]),
        (&Value::Bool(false), &"drift-ack".into())
    );
    assert!(v["message"].as_str().unwrap().contains("nope"), "{v:#}");
    let (code, v) = json(&c, 1, &["upgrade", "allow"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        (&v["ok"], &v["command"]),
        (&Value::Bool(false), &"upgrade-allow".into())
    );
}

#[test]
fn ca_json_names_the_files_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let d = dir.to_str().unwrap();
    let run = |args: &[&str]| -> Value {
        let out = Command::new(bin("quorate")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    };
    let all = [
        "already_revoked",
        "command",
        "crl_number",
        "kept",
        "kind",
        "name",
        "revoked",
        "valid_until",
        "wrote",
    ];
    let path = |f: &str| Value::from(dir.join(f).display().to_string());

    let v = run(&["ca", "init", "--dir", d, "--json"]);
    assert_eq!(keys(&v), all);
    assert_eq!(v["command"], "init");
    assert_eq!(
        v["wrote"],
        Value::from(vec![path("ca.key"), path("ca.pem")])
    );

    let v = run(&["ca", "issue", "--dir", d, "n1", "--json"]);
    assert_eq!(
        (&v["command"], &v["name"], &v["kind"]),
        (&"issue".into(), &"n1".into(), &"node".into())
    );
    let wrote = v["wrote"].as_array().unwrap();
    assert!(
        wrote.contains(&path("n1.pem")) && wrote.contains(&path("n1.key")),
        "{v:#}"
    );
    for f in wrote {
        assert!(std::path::Path::new(f.as_str().unwrap()).is_file(), "{f}");
    }

    let v = run(&["ca", "renew", "--dir", d, "n1", "--json"]);
    assert_eq!(v["command"], "renew");
    assert!(
        v["wrote"].as_array().unwrap().contains(&path("n1.pem")),
        "{v:#}"
    );
    assert_eq!(v["kept"], Value::from(vec![path("n1.key")]));
    assert!(v["valid_until"].is_string(), "{v:#}");

    run(&["ca", "issue", "--dir", d, "--operator", "alice", "--json"]);
    let v = run(&["ca", "revoke", "--dir", d, "--operator", "alice", "--json"]);
    assert_eq!(
        (&v["command"], &v["kind"]),
        (&"revoke".into(), &"operator".into())
    );
    assert_eq!(v["revoked"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(
        v["crl_number"].as_u64().map(|n| n >= 1),
        Some(true),
        "{v:#}"
    );
    assert!(
        v["wrote"].as_array().unwrap().contains(&path("crl.pem")),
        "{v:#}"
    );
    // Again: nothing new revoked, the list not rewritten.
    let v = run(&["ca", "revoke", "--dir", d, "--operator", "alice", "--json"]);
    assert_eq!(v["already_revoked"].as_array().unwrap().len(), 1, "{v:#}");
    assert!(
        v["crl_number"].is_null() && v["wrote"] == Value::Array(vec![]),
        "{v:#}"
    );
}
