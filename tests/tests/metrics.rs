//! Monitoring with real agents (and the real promtool): every metric documented in
//! docs/monitoring.md is exposed by a live cluster and nothing undocumented is;
//! `promtool check metrics` passes on each node's `/metrics`; the counters move when
//! health checks are answered and when the primary is killed; the shipped alert rules
//! pass `promtool check rules` and their unit tests; the dashboard queries only
//! documented metrics; a certificate near its end is a warning that fails no answer,
//! and a renewed one is read again on a reload.
//!
//! promtool comes with the Debian package prometheus (CI installs it): without it the
//! promtool steps are skipped with a note, the rest runs.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use quorate_tests::primary::wait_one_primary;
use quorate_tests::{TestCluster, wait_until};

const SETTLE: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn promtool() -> bool {
    let ok = have("promtool");
    if !ok {
        eprintln!("SKIP promtool steps: promtool is not installed (Debian package prometheus)");
    }
    ok
}

/// Runs promtool with `args`, feeding it `stdin`; its exit status and everything it said.
fn run_promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(repo().join("packaging/monitoring"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The exposition as promtool's `check metrics` reads it: the classic text format, in
/// which a counter's `# HELP` and `# TYPE` lines name its sample (`…_total`), while
/// OpenMetrics (what the agent serves, and Prometheus asks for) names the family.
/// Nothing else changes: names, help texts, types and samples are linted as served.
fn classic(openmetrics: &str) -> String {
    let counters: BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::new();
    for line in openmetrics.lines() {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The metric names of docs/monitoring.md's table (its first column).
fn documented() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/monitoring.md")).unwrap();
    let names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `quorate_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("quorate_{name}"))
        .collect();
    assert!(
        names.len() > 30,
        "the metrics table is not where it was: {names:?}"
    );
    names
}

/// The metric names in an exposition: every sample's, and every declared family's (a
/// counter by its `_total` sample name), so a family without samples yet counts too.
fn exposed(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let mut words = decl.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            names.insert(if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            });
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            if !name.is_empty() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The value of the sample `series` (its name and labels exactly as written), if there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(c: &TestCluster, i: usize) -> String {
    let r = c.http_get(i, "/metrics");
    assert_eq!(r.status, 200, "/metrics on {}: {}", c.id(i), r.body);
    r.body
}

#[test]
fn every_documented_metric_is_exposed_lint_clean_and_counts_what_happens() {
    // A config set on every node (the same file: they agree), so its gauges exist; and
    // n3's app check fails, a check transition to count (n3 stays out of the election).
    let set = tempfile::tempdir().unwrap();
    std::fs::write(set.path().join("app.xml"), "<app/>\n").unwrap();
    let mut c = TestCluster::builder(3)
        .extra_all(&format!(
            "[[config]]\nname = \"app\"\npaths = [\"{}/*.xml\"]\n",
            set.path().display()
        ))
        .extra(
            2,
            "[app]\ncheck = \"exec:/bin/false\"\ninterval = \"200ms\"\nrise = 1\nfall = 1\n",
        )
        .start();
    let addrs: Vec<_> = (0..3).map(|i| c.http_addr(i)).collect();
    let p = wait_one_primary(&addrs, SETTLE).expect("no single primary");
    let docs = documented();
    let lint = promtool();
    // What every scrape showed: a counter family appears once it has counted something.
    let mut seen = BTreeSet::new();
    let n3_app_failed = "quorate_check_transitions_total{check=\"app\",result=\"fail\"}";
    assert!(
        wait_until(SETTLE, || sample(&scrape(&c, 2), n3_app_failed)
            == Some(1.0)),
        "n3 did not count its app check failing:\n{}",
        scrape(&c, 2)
    );
    for i in 0..3 {
        let text = scrape(&c, i);
        let names = exposed(&text);
        let undocumented: Vec<_> = names
            .iter()
            .filter(|n| n.starts_with("quorate_") && !docs.contains(*n))
            .collect();
        assert!(
            undocumented.is_empty(),
            "{}: exposed but not in docs/monitoring.md: {undocumented:?}\n{text}",
            c.id(i)
        );
        seen.extend(names);
        if lint {
            let (ok, said) = run_promtool(&["check", "metrics"], &classic(&text));
            assert!(
                ok,
                "promtool check metrics on {}'s /metrics:\n{said}\n{text}",
                c.id(i)
            );
        }
        // Every node knows every node's certificate end (5 years ahead: ok).
        for n in 1..=3 {
            let series = format!("quorate_certificate_expiry_timestamp_seconds{{node=\"n{n}\"}}");
            assert!(
                wait_until(SETTLE, || sample(&scrape(&c, i), &series).is_some()),
                "{} does not show {series}",
                c.id(i)
            );
        }
    }
    let missing: Vec<_> = docs.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but never exposed: {missing:?}"
    );
    assert!(
        wait_until(SETTLE, || {
            sample(&scrape(&c, p), "quorate_lease_remaining_seconds").is_some_and(|s| s > 0.0)
        }),
        "the primary's lease_remaining stays 0"
    );
    // A healthy secondary (n3's app check fails).
    let s = (0..2).find(|i| *i != p).unwrap();
    assert_eq!(
        sample(&scrape(&c, s), "quorate_lease_remaining_seconds"),
        Some(0.0)
    );

    // Health checks are counted by endpoint and code.
    let health = "quorate_http_requests_total{endpoint=\"health\",code=\"200\"}";
    let primary_no = "quorate_http_requests_total{endpoint=\"primary\",code=\"503\"}";
    let before = scrape(&c, s);
    for _ in 0..5 {
        assert_eq!(c.http_get(s, "/health").status, 200);
    }
    for _ in 0..3 {
        assert_eq!(c.http_get(s, "/primary").status, 503);
    }
    let after = scrape(&c, s);
    let moved = |series: &str| {
        sample(&after, series).unwrap_or(0.0) - sample(&before, series).unwrap_or(0.0)
    };
    assert_eq!(moved(health), 5.0, "{after}");
    assert_eq!(moved(primary_no), 3.0, "{after}");

    // Kill the primary: the survivor that takes over counts an election and a role
    // change to primary.
    let counted = |text: &str| {
        (
            sample(text, "quorate_elections_total").unwrap_or(0.0),
            sample(text, "quorate_role_changes_total{role=\"primary\"}").unwrap_or(0.0),
        )
    };
    let before: Vec<(f64, f64)> = (0..3)
        .map(|i| {
            if i == p {
                (0.0, 0.0)
            } else {
                counted(&scrape(&c, i))
            }
        })
        .collect();
    c.kill(p);
    let survivors: Vec<_> = (0..3).filter(|i| *i != p).map(|i| c.http_addr(i)).collect();
    let q = wait_one_primary(&survivors, SETTLE).expect("no new primary after the kill");
    let q = (0..3).filter(|i| *i != p).nth(q).unwrap();
    let (elections, to_primary) = counted(&scrape(&c, q));
    assert!(
        elections > before[q].0 && to_primary > before[q].1,
        "{}: elections {} → {elections}, role changes to primary {} → {to_primary}",
        c.id(q),
        before[q].0,
        before[q].1
    );
    let dead = "quorate_nodes{state=\"dead\"}";
    assert!(
        wait_until(SETTLE, || sample(&scrape(&c, q), dead)
            .is_some_and(|n| n >= 1.0)),
        "{} never counts the killed node dead",
        c.id(q)
    );
}

#[test]
fn the_alert_rules_pass_promtool_and_fire_on_synthetic_series() {
    if !promtool() {
        return;
    }
    let (ok, said) = run_promtool(&["check", "rules", "quorate-alerts.yml"], "");
    assert!(ok, "promtool check rules:\n{said}");
    let (ok, said) = run_promtool(&["test", "rules", "quorate-alerts.test.yml"], "");
    assert!(ok, "promtool test rules:\n{said}");
}

/// Every `quorate_…` name in `text`.
fn queried(text: &str) -> BTreeSet<String> {
    text.match_indices("quorate_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .collect()
}

#[test]
fn the_dashboard_and_the_rules_query_only_documented_metrics() {
    let docs = documented();
    let dir = repo().join("packaging/monitoring");
    let dashboard = std::fs::read_to_string(dir.join("grafana-dashboard.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&json, &mut exprs);
    assert!(
        exprs.len() > 10,
        "the dashboard queries almost nothing: {exprs:?}"
    );
    let mut names = BTreeSet::new();
    for e in &exprs {
        names.extend(queried(e));
    }
    let unknown: Vec<_> = names.difference(&docs).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries undocumented metrics: {unknown:?}"
    );

    let rules = std::fs::read_to_string(dir.join("quorate-alerts.yml")).unwrap();
    let unknown: Vec<_> = queried(&rules)
        .into_iter()
        .filter(|n| !docs.contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "the alert rules use undocumented metrics: {unknown:?}"
    );
}

/// Signs `node`'s certificate again, with the same key and names, valid for `days`.
fn short_lived(ca: &Path, node: &str, days: u32) {
    let pem = ca.join(format!("{node}.pem"));
    let csr = ca.join(format!("{node}.csr"));
    let key = ca.join(format!("{node}.key"));
    let ok = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(Command::new("openssl")
        .args(["x509", "-x509toreq", "-copy_extensions", "copyall", "-in"])
        .arg(&pem)
        .arg("-signkey")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    ok(Command::new("openssl")
        .args(["x509", "-req", "-copy_extensions", "copyall", "-days"])
        .arg(days.to_string())
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(ca.join("ca.pem"))
        .arg("-CAkey")
        .arg(ca.join("ca.key"))
        .arg("-out")
        .arg(&pem));
}

#[test]
fn a_certificate_near_its_end_warns_without_failing_an_answer_and_a_renewal_clears_it() {
    if !have("openssl") {
        eprintln!("SKIP: openssl is not installed (it re-signs a certificate for 10 days)");
        return;
    }
    let mut c = TestCluster::builder(3).build();
    // n1, the preferred primary, runs with a certificate that ends in 10 days.
    short_lived(c.ca_dir(), "n1", 10);
    for i in 0..3 {
        c.start(i);
    }
    let certs_of = |i: usize, node: &str| {
        c.member(i, node)
            .and_then(|m| m["checks"]["certs"].as_str().map(str::to_owned))
    };
    assert!(
        wait_until(SETTLE, || (0..3)
            .all(|i| certs_of(i, "n1").as_deref() == Some("warn"))),
        "n1's certs check is not `warn` everywhere: {:?}",
        (0..3).map(|i| certs_of(i, "n1")).collect::<Vec<_>>()
    );
    let n1 = c.member(1, "n1").unwrap();
    let end = n1["cert_expires"].as_str().unwrap_or_default().to_owned();
    assert!(end.ends_with('Z') && end.len() == 20, "{n1}");
    assert!(
        n1["check_reasons"]["certs"]
            .as_str()
            .is_some_and(|r| r.contains("quorate ca renew")),
        "{n1}"
    );
    assert_eq!(certs_of(0, "n2").as_deref(), Some("ok"));

    // A warning only: n1 stays ready, healthy and primary.
    let addrs: Vec<_> = (0..3).map(|i| c.http_addr(i)).collect();
    assert!(
        wait_until(SETTLE, || wait_one_primary(&addrs, Duration::from_secs(1))
            == Some(0)),
        "n1 (highest priority, certificate warning) is not the primary"
    );
    for path in ["/health", "/ready", "/primary"] {
        let r = c.http_get(0, path);
        assert_eq!(r.status, 200, "{path} on n1: {}", r.body);
    }
    let verbose = c.http_get(0, "/health?verbose").body;
    assert!(verbose.contains("[-]certs warn"), "{verbose}");
    let m = scrape(&c, 0);
    assert_eq!(
        sample(&m, "quorate_check{check=\"certs\",status=\"warn\"}"),
        Some(1.0),
        "{m}"
    );

    // Renewed in place (5 years again) and reloaded: the check reads the new end.
    let renew = Command::new(quorate_tests::bin("quorate"))
        .args(["ca", "renew", "--dir"])
        .arg(c.ca_dir())
        .arg("n1")
        .output()
        .unwrap();
    assert!(renew.status.success(), "{renew:?}");
    c.signal(0, libc::SIGHUP);
    assert!(
        wait_until(SETTLE, || (0..3)
            .all(|i| certs_of(i, "n1").as_deref() == Some("ok"))),
        "n1's certs check stays {:?} after the renewal and reload",
        certs_of(0, "n1")
    );
    let renewed = c.member(2, "n1").unwrap()["cert_expires"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(renewed > end, "{renewed} is not after {end}");
    let m = scrape(&c, 0);
    assert_eq!(
        sample(
            &m,
            "quorate_check_transitions_total{check=\"certs\",result=\"ok\"}"
        ),
        Some(1.0),
        "{m}"
    );
}
