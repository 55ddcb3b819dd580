//! The balancer and product recipes under `docs/recipes/` work as docs/balancers.md and
//! docs/products.md say.
//!
//! - Every `*.toml` there passes `quorate-agent --check-config`; every `haproxy.cfg`
//!   passes `haproxy -c`; every open-source `nginx.conf` passes `nginx -t`; every shell
//!   script passes `shellcheck` (when installed).
//! - The open-source nginx recipe for real: three agents, Debian's nginx with the
//!   recipe's `nginx.conf` and its renderer `quorate-nginx-upstreams.sh`: nginx follows
//!   a drain (handover, then `down` in the tier) and a killed primary. The same cluster
//!   answers the F5 monitors' send strings, the nginx Plus `match` blocks and the AWS
//!   health-check paths the way those recipes expect (they cannot run here: their files
//!   are checked for syntax and shape).
//! - The keepalived floating-address hook adds and removes its address in a network
//!   namespace of its own.
//! - Each product: three agents from the product's own files, which `/cluster` shows
//!   with the checks the recipe describes.
//!
//! What the tests change in a recipe file, and nothing else: `/etc/quorate/tls/` (a
//! temporary CA); each node's id, addresses, `peers` and `state_dir` (loopback ports, a
//! temporary directory); a product's `[app] check` (the node's own agent `/live`, as a
//! stand-in application); every other absolute path under a temporary root, where each
//! agent, in a mount namespace of its own, sees the product's shared storage and its own
//! copy of the config files (so this needs root, as CI has); `fstype` (the stand-in
//! share is a bind mount). nginx configs: their ports, `pid`, logs and include
//! directory.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use quorate_tests::cluster::{NodeConfig, free_port};
use quorate_tests::mountns::can_unshare;
use quorate_tests::nginx::{self, KillOnDrop, Nginx};
use quorate_tests::primary::{current_primary, wait_one_primary};
use quorate_tests::{
    HTTP_TIMEOUT, Stopwatch, TestCluster, bin, ca_init, ca_issue, http_request, wait_until,
};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn recipes() -> PathBuf {
    repo().join("docs/recipes")
}

/// Every file under `docs/recipes/` whose name satisfies `pick`, sorted.
fn recipe_files(pick: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(&recipes(), &mut all);
    all.retain(|p| pick(p.file_name().and_then(|n| n.to_str()).unwrap_or("")));
    all.sort();
    all
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `docs/recipes/…` for messages.
fn short(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}

/// The value of top-level `key = "…"` in a TOML recipe.
fn top_string(text: &str, key: &str) -> Option<String> {
    let t: toml::Table = toml::from_str(text).unwrap();
    t.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

fn check_config(path: &Path) -> std::process::Output {
    Command::new(bin("quorate-agent"))
        .arg("--check-config")
        .arg("--config")
        .arg(path)
        .output()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Syntax: every file passes the tool that reads it.

#[test]
fn every_agent_config_in_the_recipes_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("tls");
    ca_init(&ca);
    let files = recipe_files(|n| n.ends_with(".toml"));
    assert!(files.len() >= 6, "recipes: {files:?}");
    for f in &files {
        let text = read(f);
        assert!(
            text.contains("/etc/quorate/tls/"),
            "{}: use the standard [tls] paths",
            short(f)
        );
        let node = top_string(&text, "node").unwrap();
        if !ca.join(format!("{node}.pem")).exists() {
            ca_issue(&ca, &node);
        }
        // Hooks must exist and be executable: install each one the recipe names, from
        // the recipe's own script beside it (`NAME.sh`) when there is one.
        let hooks = dir.path().join("hooks");
        fs::create_dir_all(&hooks).unwrap();
        for name in text.split("/etc/quorate/hooks/").skip(1) {
            let name = name.split('"').next().unwrap();
            let script = f.with_file_name(format!("{name}.sh"));
            let body = fs::read_to_string(&script).unwrap_or_else(|_| "#!/bin/sh\n".into());
            let hook = hooks.join(name);
            fs::write(&hook, body).unwrap();
            fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let tested = dir.path().join("agent.toml");
        fs::write(
            &tested,
            text.replace("/etc/quorate/tls/", &format!("{}/", ca.display()))
                .replace("/etc/quorate/hooks/", &format!("{}/", hooks.display())),
        )
        .unwrap();
        let out = check_config(&tested);
        assert!(
            out.status.success(),
            "{}: {}",
            short(f),
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "{}: {}",
            short(f),
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
        );
    }
}

#[test]
fn every_haproxy_config_in_the_recipes_passes_haproxy_c() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        eprintln!("SKIP: haproxy is not installed (scripts/test.sh installs it as root)");
        return;
    }
    let files = recipe_files(|n| n.ends_with(".cfg"));
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let out = Command::new("haproxy")
            .args(["-c", "-f"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "haproxy -c -f {}: {}{}",
            short(&f),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An nginx recipe made runnable in `dir`: its pid file, logs and included upstream
/// directory moved into `dir`, and each `listen PORT;` given a loopback port. Returns
/// the text and the ports, by the recipe's port.
fn nginx_for_test(text: &str, dir: &Path) -> (String, BTreeMap<u16, SocketAddr>) {
    let mut out = text.to_owned();
    for (from, to) in [
        (
            "pid /run/nginx.pid;",
            format!("pid {}/nginx.pid;", dir.display()),
        ),
        (
            "error_log /var/log/nginx/error.log;",
            format!("error_log {}/error.log;", dir.display()),
        ),
        (
            "access_log /var/log/nginx/access.log;",
            format!("access_log {}/access.log;", dir.display()),
        ),
        (
            "include /etc/nginx/quorate/*.conf;",
            format!("include {}/quorate/*.conf;", dir.display()),
        ),
    ] {
        assert!(out.contains(from), "the nginx recipe lost `{from}`");
        out = out.replace(from, &to);
    }
    let mut ports = BTreeMap::new();
    let lines: Vec<String> = out
        .lines()
        .map(|l| {
            let t = l.trim();
            match t
                .strip_prefix("listen ")
                .and_then(|r| r.strip_suffix(';'))
                .and_then(|p| p.parse::<u16>().ok())
            {
                Some(port) => {
                    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
                    ports.insert(port, addr);
                    l.replace(t, &format!("listen {addr};"))
                }
                None => l.to_owned(),
            }
        })
        .collect();
    (lines.join("\n") + "\n", ports)
}

/// Upstream files as quorate-nginx-upstreams writes them, for `nginx -t` alone.
fn stub_upstreams(dir: &Path) {
    let q = dir.join("quorate");
    fs::create_dir_all(&q).unwrap();
    for name in ["app_primary", "app_tier"] {
        fs::write(
            q.join(format!("{name}.conf")),
            format!("upstream {name} {{\n    server 127.0.0.1:9 down;\n}}\n"),
        )
        .unwrap();
    }
}

#[test]
fn every_open_source_nginx_config_in_the_recipes_passes_nginx_t() {
    let Some(nginx) = nginx::binary() else {
        eprintln!("SKIP: nginx is not installed (scripts/test.sh installs it as root)");
        return;
    };
    let files: Vec<PathBuf> = recipe_files(|n| n == "nginx.conf")
        .into_iter()
        .filter(|p| !p.starts_with(recipes().join("nginx-plus")))
        .collect();
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let dir = tempfile::tempdir().unwrap();
        stub_upstreams(dir.path());
        let (text, _) = nginx_for_test(&read(&f), dir.path());
        let conf = dir.path().join("nginx.conf");
        fs::write(&conf, text).unwrap();
        let out = nginx::test_config(&nginx, &conf, dir.path());
        assert!(
            out.status.success(),
            "nginx -t: {}: {}",
            short(&f),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_shell_script_in_the_recipes_passes_shellcheck() {
    if Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: shellcheck is not installed (apt-get install shellcheck)");
        return;
    }
    let files = recipe_files(|n| n.ends_with(".sh"));
    assert!(files.len() >= 4, "{files:?}");
    let out = Command::new("shellcheck").args(&files).output().unwrap();
    assert!(
        out.status.success(),
        "shellcheck: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// ---------------------------------------------------------------------------------------
// Shape: the balancers that cannot run here.

/// Every health-checked target group of every CloudFormation template: the agent port,
/// a quorate path, an exact 200, intervals of at least 5 s and thresholds of at least 2
/// (what AWS allows, and what docs/balancers.md computes the failover time from).
#[test]
fn aws_templates_check_the_agent_at_the_documented_pace() {
    let files = recipe_files(|n| n.ends_with(".json"));
    assert!(files.len() >= 2, "{files:?}");
    let mut paths = BTreeSet::new();
    for f in files {
        let t: Value = serde_json::from_str(&read(&f))
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", short(&f)));
        assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09", "{}", short(&f));
        let resources = t["Resources"].as_object().unwrap();
        let params = t["Parameters"].as_object().unwrap();
        // Every Ref names a parameter or a resource of the template.
        let mut refs = Vec::new();
        collect_refs(&t, &mut refs);
        for r in refs {
            assert!(
                resources.contains_key(&r) || params.contains_key(&r),
                "{}: Ref {r} names nothing",
                short(&f)
            );
        }
        let groups: Vec<(&String, &Value)> = resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup")
            .collect();
        assert!(!groups.is_empty(), "{}", short(&f));
        for (name, g) in groups {
            let p = &g["Properties"];
            let what = format!("{} {name}", short(&f));
            let path = p["HealthCheckPath"].as_str().unwrap();
            assert!(["/primary", "/health"].contains(&path), "{what}: {path}");
            paths.insert(path.to_owned());
            assert_eq!(p["HealthCheckPort"], "7701", "{what}");
            assert_eq!(p["HealthCheckProtocol"], "HTTP", "{what}");
            assert_eq!(p["Matcher"]["HttpCode"], "200", "{what}");
            let interval = p["HealthCheckIntervalSeconds"].as_u64().unwrap();
            let timeout = p["HealthCheckTimeoutSeconds"].as_u64().unwrap();
            assert!(interval >= 5 && timeout < interval, "{what}");
            for k in ["HealthyThresholdCount", "UnhealthyThresholdCount"] {
                assert!(p[k].as_u64().unwrap() >= 2, "{what}: {k}");
            }
            println!(
                "{what}: {path} every {interval} s, {} to fail, {} to pass: failover ≈ {} s",
                p["UnhealthyThresholdCount"],
                p["HealthyThresholdCount"],
                interval * p["HealthyThresholdCount"].as_u64().unwrap()
            );
            // Writes go to the primary only, through an NLB (TCP).
            if path == "/primary" {
                assert_eq!(p["Protocol"], "TCP", "{what}");
            }
        }
    }
    assert_eq!(
        paths.len(),
        2,
        "both /primary and /health are used: {paths:?}"
    );
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "Ref" {
                    out.push(x.as_str().unwrap().to_owned());
                } else if k == "Fn::GetAtt" {
                    out.push(x[0].as_str().unwrap().to_owned());
                }
                collect_refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The `ltm monitor http NAME { key value }` and `ltm pool NAME { … monitor M … }`
/// stanzas of a bigip.conf: monitor → key → value, and pool → monitor.
type F5 = (
    BTreeMap<String, BTreeMap<String, String>>,
    BTreeMap<String, String>,
);

fn parse_f5(text: &str) -> F5 {
    let mut monitors = BTreeMap::new();
    let mut pools = BTreeMap::new();
    let mut current: Option<(bool, String)> = None;
    let mut depth = 0;
    let mut keys = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if depth == 0 {
            if let Some(rest) = line.strip_prefix("ltm monitor http ") {
                current = Some((true, rest.trim_end_matches('{').trim().to_owned()));
            } else if let Some(rest) = line.strip_prefix("ltm pool ") {
                current = Some((false, rest.trim_end_matches('{').trim().to_owned()));
            } else {
                panic!("bigip.conf: unexpected stanza {line:?}");
            }
            keys = BTreeMap::new();
        } else if depth == 1 && !line.ends_with('{') && line != "}" {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            keys.insert(k.to_owned(), v.to_owned());
        }
        depth += line.matches('{').count();
        depth -= line.matches('}').count();
        if depth == 0
            && let Some((monitor, name)) = current.take()
        {
            if monitor {
                monitors.insert(name, std::mem::take(&mut keys));
            } else {
                pools.insert(name, keys.remove("monitor").unwrap_or_default());
            }
        }
    }
    assert_eq!(depth, 0, "bigip.conf: unbalanced braces");
    (monitors, pools)
}

/// A tmsh quoted string as the bytes BIG-IP sends or matches (`\r`, `\n`, `\"`).
fn f5_unquote(s: &str) -> String {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a quoted string: {s}"));
    inner
        .replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\\"", "\"")
}

fn f5_recipe() -> F5 {
    parse_f5(&read(&recipes().join("f5/bigip.conf")))
}

#[test]
fn f5_monitors_have_the_documented_strings_and_pace() {
    let (monitors, pools) = f5_recipe();
    assert_eq!(
        monitors.keys().collect::<Vec<_>>(),
        ["quorate_health", "quorate_primary"]
    );
    for (name, m) in &monitors {
        assert_eq!(m["destination"], "*:7701", "{name}");
        assert_eq!(m["defaults-from"], "http", "{name}");
        let send = f5_unquote(&m["send"]);
        assert!(
            send.starts_with("GET /") && send.ends_with("\r\nConnection: close\r\n\r\n"),
            "{name}: {send:?}"
        );
        assert!(send.contains(" HTTP/1.1\r\nHost: "), "{name}: {send:?}");
        assert_eq!(f5_unquote(&m["recv"]), "\"status\":\"ok\"", "{name}");
        // BIG-IP's rule: timeout = 3 × interval + 1.
        let interval: u32 = m["interval"].parse().unwrap();
        let timeout: u32 = m["timeout"].parse().unwrap();
        assert_eq!(timeout, 3 * interval + 1, "{name}");
    }
    assert!(f5_unquote(&monitors["quorate_primary"]["send"]).starts_with("GET /primary "));
    assert!(f5_unquote(&monitors["quorate_health"]["send"]).starts_with("GET /health "));
    assert_eq!(
        f5_unquote(&monitors["quorate_health"]["recv-disable"]),
        "\"status\":\"draining\""
    );
    assert!(!monitors["quorate_primary"].contains_key("recv-disable"));
    for (pool, monitor) in &pools {
        assert!(monitors.contains_key(monitor), "pool {pool}: {monitor}");
    }
    assert_eq!(pools.len(), 2);
}

/// The nginx Plus recipe's `health_check k=v …` lines, and its `match NAME { … }`
/// blocks (name → conditions).
type PlusChecks = (Vec<BTreeMap<String, String>>, BTreeMap<String, Vec<String>>);

/// Reads the nginx Plus recipe's health checks and matches.
fn nginx_plus() -> PlusChecks {
    let text = read(&recipes().join("nginx-plus/nginx.conf"));
    let mut checks = Vec::new();
    let mut matches = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("health_check ") {
            checks.push(
                rest.trim_end_matches(';')
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            );
        } else if let Some(rest) = line.strip_prefix("match ") {
            current = Some((rest.trim_end_matches('{').trim().to_owned(), Vec::new()));
        } else if line == "}" {
            if let Some((name, conds)) = current.take() {
                matches.insert(name, conds);
            }
        } else if let Some((_, conds)) = &mut current {
            conds.push(line.trim_end_matches(';').to_owned());
        }
    }
    (checks, matches)
}

#[test]
fn nginx_plus_health_checks_ask_the_agent_port_with_defined_matches() {
    let (checks, matches) = nginx_plus();
    let uris: Vec<&str> = checks.iter().map(|c| c["uri"].as_str()).collect();
    assert_eq!(uris, ["/primary", "/health"]);
    for c in &checks {
        assert_eq!(c["port"], "7701", "{c:?}");
        assert_eq!(c["interval"], "1s", "{c:?}");
        assert!(matches.contains_key(&c["match"]), "{c:?}: {matches:?}");
        for k in ["fails", "passes"] {
            assert!(c[k].parse::<u32>().unwrap() >= 1, "{c:?}");
        }
    }
    for conds in matches.values() {
        assert!(conds.contains(&"status 200".to_owned()), "{conds:?}");
    }
}

// ---------------------------------------------------------------------------------------
// nginx open source, for real; and the other balancers' strings against real agents.

/// Which node nginx's server at `addr` sends `GET /live` to (the stand-in application
/// is the agents' own HTTP port, which names itself in `X-Quorate-Node`).
fn routed(addr: SocketAddr) -> Option<String> {
    let r = http_request(addr, "GET", "/live").ok()?;
    (r.status == 200).then(|| r.header("X-Quorate-Node").map(str::to_owned))?
}

/// The nodes nginx's tier spreads `n` requests over.
fn tier_nodes(addr: SocketAddr, n: usize) -> BTreeSet<String> {
    (0..n).filter_map(|_| routed(addr)).collect()
}

/// The raw answer of an agent to a request written byte for byte (a balancer's send
/// string).
fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).unwrap();
    s.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The nginx Plus match condition `body ~ "…"` as the substring it looks for.
fn plus_body_token(conds: &[String]) -> Option<String> {
    conds.iter().find_map(|c| {
        c.strip_prefix("body ~ ")
            .and_then(|q| q.strip_prefix('"'))
            .and_then(|q| q.strip_suffix('"'))
            .map(|q| q.replace("\\\"", "\""))
    })
}

#[test]
fn nginx_follows_a_drain_and_a_failover_and_other_balancers_strings_match_real_agents() {
    let Some(nginx_bin) = nginx::binary() else {
        eprintln!("SKIP: nginx is not installed (scripts/test.sh installs it as root)");
        return;
    };
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIP: the nginx recipe's renderer needs curl");
        return;
    }
    let mut c = TestCluster::new(3);
    let addrs: Vec<SocketAddr> = (0..3).map(|i| c.http_addr(i)).collect();
    let p = wait_one_primary(&addrs, SETTLE).expect("no single primary");
    assert!(wait_until(SETTLE, || (0..3)
        .all(|i| c.http_get(i, "/health").status == 200)));

    // The other balancers' strings, against these real agents.
    let s = (p + 1) % 3;
    let (monitors, _) = f5_recipe();
    for (name, m) in &monitors {
        let send = f5_unquote(&m["send"]);
        let recv = f5_unquote(&m["recv"]);
        let up: Vec<usize> = (0..3)
            .filter(|&i| raw_exchange(c.http_addr(i), &send).contains(&recv))
            .collect();
        let want: Vec<usize> = if name == "quorate_primary" {
            vec![p]
        } else {
            vec![0, 1, 2]
        };
        assert_eq!(up, want, "F5 monitor {name}: recv matches on {up:?}");
    }
    let (_, matches) = nginx_plus();
    let fit = plus_body_token(&matches["quorate_fit"]).unwrap();
    assert!(c.http_get(s, "/health").body.contains(&fit));
    assert!(c.http_get(p, "/primary").header("X-Quorate-Term").is_some());
    assert_eq!(c.http_get(s, "/primary").status, 503);

    // nginx with the recipe's config, and the renderer's first round.
    let dir = tempfile::tempdir().unwrap();
    let (text, ports) = nginx_for_test(&read(&recipes().join("nginx/nginx.conf")), dir.path());
    let (front, tier) = (ports[&8080], ports[&8081]);
    let conf = dir.path().join("nginx.conf");
    fs::write(&conf, text).unwrap();
    let updir = dir.path().join("quorate");
    fs::create_dir_all(&updir).unwrap();
    let nodes_file = updir.join("nodes");
    let mut nodes = String::from("# NAME AGENT APP (the app: the agent's own /live)\n");
    for (i, a) in addrs.iter().enumerate() {
        nodes.push_str(&format!("{} {a} {a}\n", c.id(i)));
    }
    fs::write(&nodes_file, nodes).unwrap();
    let renderer = recipes().join("nginx/quorate-nginx-upstreams.sh");
    let render = |args: &[&str], reload: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg(&renderer)
            .args(args)
            .env("QUORATE_NODES", &nodes_file)
            .env("QUORATE_DIR", &updir)
            .env("QUORATE_INTERVAL", "0.2")
            .env("QUORATE_RELOAD", reload)
            .stdin(Stdio::null());
        cmd
    };
    let once = render(&["--once"], "true").output().unwrap();
    assert!(once.status.success(), "{once:?}");
    let primary_file = read(&updir.join("app-primary.conf"));
    assert!(
        primary_file.contains(&format!("server {};", addrs[p])),
        "{primary_file}"
    );
    let n = Nginx::start(&nginx_bin, &conf, dir.path(), &dir.path().join("nginx.pid"));
    assert!(
        wait_until(SETTLE, || routed(front).is_some()),
        "nginx does not route: {:?}\n{}",
        http_request(front, "GET", "/live"),
        n.error_log()
    );
    for _ in 0..10 {
        assert_eq!(routed(front).as_deref(), Some(c.id(p)), "{}", n.error_log());
    }
    assert_eq!(tier_nodes(tier, 9).len(), 3);

    // The loop, from now on.
    let log = fs::File::create(dir.path().join("renderer.log")).unwrap();
    let _loop = KillOnDrop(
        render(&[], &n.reload_command())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let renderer_log = || read(&dir.path().join("renderer.log"));

    // The drain sequence on the primary: it hands over, nginx follows; the tier takes
    // it out; undrained, it comes back.
    let clock = Stopwatch::start();
    let out = c.quorate(p, &["drain", "--reason", "nginx recipe"]);
    assert!(out.status.success(), "{out:?}");
    let mut q = None;
    assert!(
        wait_until(SETTLE, || {
            q = current_primary(&addrs).filter(|&q| q != p);
            q.is_some_and(|q| routed(front).as_deref() == Some(c.id(q)))
        }),
        "nginx did not follow the handover: {}",
        renderer_log()
    );
    let q = q.unwrap();
    println!(
        "drained {}: nginx routes to {} after {:?}",
        c.id(p),
        c.id(q),
        clock.elapsed()
    );
    let others: BTreeSet<String> = (0..3)
        .filter(|&i| i != p)
        .map(|i| c.id(i).to_owned())
        .collect();
    assert!(
        wait_until(SETTLE, || tier_nodes(tier, 6) == others),
        "the tier still sends to the drained node: {}\n{}",
        read(&updir.join("app-tier.conf")),
        renderer_log()
    );
    assert!(read(&updir.join("app-tier.conf")).contains("/health 404"));
    // F5's receive-disable string matches the drained node's answer.
    let drained = raw_exchange(
        c.http_addr(p),
        &f5_unquote(&monitors["quorate_health"]["send"]),
    );
    assert!(drained.contains(&f5_unquote(&monitors["quorate_health"]["recv-disable"])));
    assert!(!drained.contains(&f5_unquote(&monitors["quorate_health"]["recv"])));
    let out = c.quorate(p, &["undrain"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_until(SETTLE, || tier_nodes(tier, 9).len() == 3),
        "the undrained node did not come back: {}",
        renderer_log()
    );

    // Kill the primary: nginx follows to the new one after the renderer's reload.
    let clock = Stopwatch::start();
    c.kill(q);
    let mut r = None;
    assert!(
        wait_until(SETTLE, || {
            r = current_primary(&addrs).filter(|&r| r != q);
            r.is_some_and(|r| routed(front).as_deref() == Some(c.id(r)))
        }),
        "nginx did not follow the failover: {}",
        renderer_log()
    );
    println!(
        "killed {}: nginx routes to {} after {:?}",
        c.id(q),
        c.id(r.unwrap()),
        clock.elapsed()
    );
    for _ in 0..10 {
        assert_eq!(routed(front).as_deref(), Some(c.id(r.unwrap())));
    }
    assert!(
        wait_until(SETTLE, || !tier_nodes(tier, 6).contains(c.id(q))),
        "the tier still sends to the dead node"
    );
    println!("renderer log:\n{}", renderer_log());
}

// ---------------------------------------------------------------------------------------
// keepalived: the floating-address hook.

#[test]
fn the_floating_address_hook_adds_and_removes_its_address() {
    let ok = Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: needs root for a network namespace (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("floating-address.env");
    // The recipe's settings file, with the namespace's loopback device.
    let settings = read(&recipes().join("keepalived/floating-address.env"))
        .replace("ADDRESS=10.0.0.100/24", "ADDRESS=10.99.0.10/24")
        .replace("DEVICE=eth0", "DEVICE=lo");
    assert!(settings.contains("DEVICE=lo") && settings.contains("10.99.0.10/24"));
    fs::write(&env, settings).unwrap();
    let hook = recipes().join("keepalived/floating-address.sh");
    let script = format!(
        "set -e; ip link set lo up; \
         QUORATE_HOOK=on_primary QUORATE_TERM=7 sh '{h}'; ip -o addr show dev lo; echo ====; \
         QUORATE_HOOK=on_primary QUORATE_TERM=7 sh '{h}'; ip -o addr show dev lo; echo ====; \
         QUORATE_HOOK=on_fault QUORATE_TERM=8 sh '{h}'; ip -o addr show dev lo",
        h = hook.display()
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .env("QUORATE_FLOATING_CONF", &env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let parts: Vec<&str> = stdout.split("====").collect();
    assert_eq!(parts.len(), 3, "{stdout}");
    assert!(parts[0].contains("inet 10.99.0.10/24"), "{stdout}");
    assert_eq!(
        parts[1].matches("inet 10.99.0.10/24").count(),
        1,
        "{stdout}"
    );
    assert!(!parts[2].contains("10.99.0.10"), "{stdout}");
    println!("{stderr}");
}

// ---------------------------------------------------------------------------------------
// Products: three agents from each product's own files.

/// A product recipe: which file each of n1, n2, n3 runs, and what its paths are.
struct Product {
    dir: &'static str,
    files: [&'static str; 3],
    /// Paths that are one storage seen by every node (an NFS share).
    shared: &'static [&'static str],
    /// Paths every node has its own copy of (config files).
    per_node: &'static [&'static str],
}

/// The agent's own `/live`: a stand-in application that passes.
fn app_stand_in(node: &NodeConfig) -> String {
    format!("http://{}/live", node.http)
}

/// `"/x"` → `"ROOT/x"` in a TOML value.
fn under_root(value: &str, root: &Path) -> String {
    value.replace("\"/", &format!("\"{}/", root.display()))
}

/// A product's recipe file made into node `node`'s config: see the module doc for what
/// changes. Returns the text.
fn product_config(recipe: &str, node: &NodeConfig, root: &Path, agent_port: u16) -> String {
    let identity = format!(
        "node = \"{}\"\nlisten = \"{q}\"\nadvertise = \"{q}\"\npeers = [{}]\nstate_dir = \"{}\"\n",
        node.node,
        node.peers
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", "),
        node.state_dir.display(),
        q = node.quic,
    );
    let mut out = String::new();
    let mut section = String::new();
    let mut saw_http = false;
    let mut identity_done = false;
    for line in recipe.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if !identity_done {
                out.push_str(&identity);
                identity_done = true;
            }
            section = t.trim_matches(['[', ']']).to_owned();
            out.push_str(line);
            out.push('\n');
            match section.as_str() {
                "tls" => out.push_str(&format!(
                    "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
                    node.ca.display(),
                    node.cert.display(),
                    node.key.display()
                )),
                "http" => {
                    saw_http = true;
                    out.push_str(&format!("listen = \"{}\"\n", node.http));
                }
                "haproxy_agent" => out.push_str(&format!("listen = \"127.0.0.1:{agent_port}\"\n")),
                _ => {}
            }
            continue;
        }
        let key = (!t.starts_with('#'))
            .then(|| t.split_once('=').map(|(k, _)| k.trim()))
            .flatten()
            .unwrap_or("");
        let replaced = match (section.as_str(), key) {
            ("", "node" | "listen" | "advertise" | "peers" | "state_dir") => None,
            ("tls", "ca" | "cert" | "key") => None,
            ("http" | "haproxy_agent", "listen") => None,
            ("app", "check") => Some(format!("check = \"{}\"", app_stand_in(node))),
            ("app", "version_file") | ("mount", "path") | ("config", "paths") => {
                Some(under_root(line, root))
            }
            ("mount", "fstype") => None,
            _ => Some(line.to_owned()),
        };
        if let Some(l) = replaced {
            out.push_str(&l);
            out.push('\n');
        }
    }
    if !saw_http {
        out.push_str(&format!("\n[http]\nlisten = \"{}\"\n", node.http));
    }
    out
}

/// `ROOT/path` for an absolute path.
fn rooted(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// A started product cluster: its agents, and the temporary root its paths live under
/// (`ROOT/.shared/PATH`: the shared storage; `ROOT/.nK/PATH`: node K's own copy).
struct Running {
    c: TestCluster,
    root: tempfile::TempDir,
    addrs: Vec<SocketAddr>,
    agent_ports: Vec<u16>,
}

impl Running {
    fn own_copy(&self, node: usize, path: &str) -> PathBuf {
        rooted(&self.root.path().join(format!(".n{}", node + 1)), path)
    }

    fn check(&self, asked: usize, about: usize, check: &str) -> Option<String> {
        self.c
            .member(asked, self.c.id(about))
            .and_then(|m| m["checks"][check].as_str().map(str::to_owned))
    }

    /// Waits until every node shows every node's `checks` as `want`.
    fn checks_everywhere(&self, checks: &[&str], want: &str) {
        assert!(
            wait_until(SETTLE, || (0..3).all(|i| (0..3).all(|k| checks
                .iter()
                .all(|ch| self.check(i, k, ch).as_deref() == Some(want))))),
            "checks {checks:?} not all {want}: {:#}",
            self.c.cluster(0)
        );
    }

    fn holders(&self, task: &str) -> Vec<usize> {
        (0..3)
            .filter(|&i| {
                self.c
                    .http(i, "GET", &format!("/task/{task}"))
                    .is_ok_and(|r| r.status == 200)
            })
            .collect()
    }

    fn held_by(&self, task: &str, want: &[usize]) -> bool {
        wait_until(SETTLE, || self.holders(task) == want)
    }
}

/// Starts a product's three nodes from its files; `None` without root (mount
/// namespaces). `env` is set for a node before it starts (fault injection).
fn start_product(p: &Product, env: &[(usize, &str, &str)]) -> Option<Running> {
    if !can_unshare() {
        eprintln!("SKIP: needs root for mount namespaces (CI runs as root)");
        return None;
    }
    let mut c = TestCluster::builder(3).build();
    let root = tempfile::Builder::new()
        .prefix("quorate-recipe-")
        .tempdir()
        .unwrap();
    let agent_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut binds = Vec::new();
    for path in p.shared {
        let storage = rooted(&root.path().join(".shared"), path);
        fs::create_dir_all(&storage).unwrap();
        binds.push((storage, rooted(root.path(), path)));
    }
    for (i, &agent_port) in agent_ports.iter().enumerate() {
        let recipe_path = recipes().join(p.dir).join(p.files[i]);
        let text = product_config(&read(&recipe_path), c.config(i), root.path(), agent_port);
        fs::write(c.config_path(i), &text).unwrap();
        let out = check_config(c.config_path(i));
        assert!(
            out.status.success(),
            "{} as {}: {}\n{text}",
            short(&recipe_path),
            c.id(i),
            String::from_utf8_lossy(&out.stderr)
        );
        // Each node's own copies, and what every node binds where.
        let mut mine = binds.clone();
        for path in p.per_node {
            let copy = rooted(&root.path().join(format!(".n{}", i + 1)), path);
            fs::create_dir_all(&copy).unwrap();
            mine.push((copy, rooted(root.path(), path)));
        }
        let mut script = String::new();
        for (from, to) in &mine {
            fs::create_dir_all(to).unwrap();
            script.push_str(&format!(
                "mount --bind '{}' '{}' && ",
                from.display(),
                to.display()
            ));
        }
        script.push_str("exec \"$@\"");
        let wrap = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "sh",
        ];
        c.set_wrapper(i, &wrap);
        for (k, key, value) in env {
            if *k == i {
                c.set_env(i, key, value);
            }
        }
    }
    println!(
        "{}: the recipe's paths under {}",
        p.dir,
        root.path().display()
    );
    let addrs = (0..3).map(|i| c.http_addr(i)).collect();
    Some(Running {
        c,
        root,
        addrs,
        agent_ports,
    })
}

fn start_all(r: &mut Running) {
    for i in 0..3 {
        r.c.start(i);
    }
    assert!(r.c.wait_converged(SETTLE), "{:#}", r.c.cluster(0));
}

const DAM: Product = Product {
    dir: "products/dam",
    files: ["agent.toml"; 3],
    shared: &["/mnt/nfs/repository"],
    per_node: &["/opt/dam/config"],
};

#[test]
fn dam_shows_the_shared_repository_and_config_drift_of_one_node() {
    let Some(mut r) = start_product(&DAM, &[]) else {
        return;
    };
    let copies: Vec<PathBuf> = (0..3).map(|i| r.own_copy(i, "/opt/dam/config")).collect();
    let config = |i: usize, site: &str, setting: &str| {
        let d = &copies[i];
        fs::write(
            d.join("exogen-config.xml"),
            format!(
                "<config>\n  <sys.site_domain>{site}</sys.site_domain>\n  <search.threads>{setting}</search.threads>\n</config>\n"
            ),
        )
        .unwrap();
        fs::write(
            d.join("dam.properties"),
            format!("node.name=n{}\ncache.size=512m\n", i + 1),
        )
        .unwrap();
    };
    for i in 0..3 {
        // Per-node lines differ (ignored); the rest is equal.
        config(i, &format!("n{}.dam.example", i + 1), "4");
    }
    fs::create_dir_all(rooted(r.root.path(), "/opt/dam")).unwrap();
    fs::write(rooted(r.root.path(), "/opt/dam/VERSION"), "5.2.1\n").unwrap();
    start_all(&mut r);
    r.checks_everywhere(&["app", "mounts", "config", "version", "clock"], "ok");
    let m = r.c.member(0, "n2").unwrap();
    assert_eq!(m["mounts"][0]["status"], "ok", "{m:#}");
    assert_eq!(m["version"]["app"], "5.2.1", "{m:#}");
    assert_eq!(m["config"][0]["name"], "dam-config", "{m:#}");
    let p = wait_one_primary(&r.addrs, SETTLE).unwrap();
    assert!(r.held_by("index-optimizer", &[p]));

    // An edit on n3's copy: drift, shown on every node, naming the file.
    let clock = Stopwatch::start();
    config(2, "n3.dam.example", "8");
    assert!(
        wait_until(SETTLE, || (0..3)
            .all(|i| r.check(i, 2, "config").as_deref() == Some("drift"))
            && r.c.member(0, "n1").is_some_and(
                |m| m["config"][0]["differs_from"] == serde_json::json!(["n3"])
            )),
        "{:#}",
        r.c.cluster(0)
    );
    println!("edit on n3 → drift everywhere in {:?}", clock.elapsed());
    let n3 = r.c.member(1, "n3").unwrap();
    println!("n3 in n2's /cluster: {n3:#}");
    let files = n3["config"][0]["differing_files"].to_string();
    assert!(files.contains("exogen-config.xml"), "{n3:#}");
    assert!(!files.contains("dam.properties"), "{n3:#}");
    // Drift is news, not a fault: every node stays healthy, the primary stays.
    assert!((0..3).all(|i| r.c.http_get(i, "/health").status == 200));
    assert_eq!(current_primary(&r.addrs), Some(p));
}

const DOCUMENTS: Product = Product {
    dir: "products/documents",
    files: ["agent.toml"; 3],
    shared: &["/srv/documents"],
    per_node: &[],
};

fn agent_check(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.trim().to_owned()
}

#[test]
fn documents_shows_app_storage_and_load_and_drains_without_cutting_sessions() {
    // Every agent shares this machine's CPU: each node's reading is set instead, n3's
    // above the recipe's `max_cpu`.
    let cpu = [(0, "0.2"), (1, "0.2"), (2, "0.95")];
    let env: Vec<(usize, &str, &str)> = cpu
        .iter()
        .map(|&(i, v)| (i, "QUORATE_FAULT_CPU", v))
        .collect();
    let Some(mut r) = start_product(&DOCUMENTS, &env) else {
        return;
    };
    start_all(&mut r);
    r.checks_everywhere(&["app", "mounts"], "ok");
    assert!(
        wait_until(SETTLE, || (0..3).all(|i| {
            r.check(i, 0, "load").as_deref() == Some("ok")
                && r.check(i, 1, "load").as_deref() == Some("ok")
                && r.check(i, 2, "load").as_deref() == Some("fail")
        })),
        "{:#}",
        r.c.cluster(0)
    );
    // The overloaded node takes no new users; the others do, weighted.
    let h = r.c.http_get(2, "/health");
    assert_eq!(h.status, 503, "{}", h.body);
    assert!(h.body.contains("overloaded"), "{}", h.body);
    let checks = || {
        r.agent_ports
            .iter()
            .map(|&p| agent_check(p))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(SETTLE, || {
            let a = checks();
            a[0].starts_with("up") && a[1].starts_with("up") && a[2] == "down"
        }),
        "agent-check: {:?}",
        checks()
    );
    for i in 0..3 {
        assert_eq!(r.c.http_get(i, "/role/editor").status, [200, 200, 503][i]);
    }
    assert!(wait_until(SETTLE, || r.holders("thumbnail-cleanup").len() == 1));

    // Drain n2: /health says 404 "draining" (HAProxy's disable-on-404 keeps its
    // sessions), the agent-check says drain, every node sees why, and the task leaves.
    let out = r.c.quorate(1, &["drain", "--reason", "update"]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_until(SETTLE, || r.c.http_get(1, "/health").status == 404));
    assert!(
        r.c.http_get(1, "/health")
            .body
            .contains("\"status\":\"draining\"")
    );
    assert!(wait_until(SETTLE, || agent_check(r.agent_ports[1]) == "drain"));
    assert!(wait_until(SETTLE, || r.c.member(0, "n2").is_some_and(
        |m| m["draining"] == true && m["drain"]["reason"] == "update"
    )));
    assert!(r.held_by("thumbnail-cleanup", &[0]));
}

const SCHEDULER: Product = Product {
    dir: "products/scheduler",
    files: ["agent.toml"; 3],
    shared: &[],
    per_node: &[],
};

#[test]
fn scheduler_blames_the_skewed_clock_and_runs_its_tasks_once() {
    // n3's wall clock is 2 s ahead.
    let Some(mut r) = start_product(&SCHEDULER, &[(2, "QUORATE_FAULT_WALL_SKEW_MS", "2000")])
    else {
        return;
    };
    start_all(&mut r);
    assert!(
        wait_until(SETTLE, || (0..3)
            .all(|i| r.check(i, 2, "clock").as_deref() == Some("fail"))),
        "{:#}",
        r.c.cluster(0)
    );
    for i in 0..3 {
        for k in [0, 1] {
            assert_eq!(
                r.check(i, k, "clock").as_deref(),
                Some("ok"),
                "{i} about {k}"
            );
        }
    }
    let m = r.c.member(0, "n3").unwrap();
    println!(
        "n3 as n1 sees it: clock_offset_ms {}, {}",
        m["clock_offset_ms"], m["check_reasons"]["clock"]
    );
    // A clock fault is news for the scheduler's operators, not a health fault.
    assert!((0..3).all(|i| r.c.http_get(i, "/health").status == 200));
    let p = wait_one_primary(&r.addrs, SETTLE).unwrap();
    assert!(r.held_by("scheduler", &[p]));
    // The nightly export: `quorate task should-run` says yes on n3 alone.
    assert!(r.held_by("nightly-export", &[2]));
    for i in 0..3 {
        let out = r.c.quorate(i, &["task", "should-run", "nightly-export"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if i == 2 {
            assert_eq!(out.status.code(), Some(0), "{out:?}");
            assert!(stdout.starts_with("QUORATE_TERM="), "{stdout}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{out:?}");
        }
    }
}

const IMAGING: Product = Product {
    dir: "products/imaging",
    files: ["archive.toml", "archive.toml", "shadow.toml"],
    shared: &["/mnt/archive"],
    per_node: &[],
};

#[test]
fn imaging_runs_each_resolver_once_moves_it_on_failover_and_shadows_only_read() {
    let Some(mut r) = start_product(&IMAGING, &[]) else {
        return;
    };
    start_all(&mut r);
    r.checks_everywhere(&["app", "mounts"], "ok");
    let shadow = 2;
    assert_eq!(r.c.member(0, "n3").unwrap()["role"], "witness");
    // Each resolver runs on exactly one archive node. (Which one: the node it prefers,
    // once that node has been fit for the return delay; right after a cold start both
    // may be on the node that was fit first.)
    let mut h = Vec::new();
    assert!(
        wait_until(SETTLE, || {
            h = r.holders("hl7-resolver");
            h.len() == 1 && h[0] != shadow && r.holders("dicom-resolver").len() == 1
        }),
        "{:#}",
        r.c.cluster(0)
    );
    let (from, to) = (h[0], 1 - h[0]);
    assert_ne!(r.holders("dicom-resolver"), [shadow]);
    let reads = |r: &Running, i: usize| r.c.http_get(i, "/role/read").status;
    for i in 0..3 {
        assert_eq!(reads(&r, i), 200, "{}", r.c.id(i));
    }
    assert_eq!(r.c.http_get(shadow, "/role/archive").status, 503);
    assert_eq!(r.c.http_get(shadow, "/primary").status, 503);

    // The archive node running hl7-resolver fails: the resolver moves to the other
    // archive node, which is (or becomes) primary; the shadow still serves reads and
    // is still not primary.
    let clock = Stopwatch::start();
    r.c.kill(from);
    assert!(
        r.held_by("hl7-resolver", &[to]),
        "hl7-resolver did not move to {}: {:#}",
        r.c.id(to),
        r.c.cluster(to)
    );
    println!(
        "{} killed → hl7-resolver on {} after {:?}",
        r.c.id(from),
        r.c.id(to),
        clock.elapsed()
    );
    assert!(r.held_by("dicom-resolver", &[to]));
    assert!(
        wait_until(SETTLE, || current_primary(&r.addrs) == Some(to)),
        "{:#}",
        r.c.cluster(to)
    );
    assert_eq!(reads(&r, shadow), 200);
    assert_eq!(r.c.http_get(shadow, "/primary").status, 503);
}
