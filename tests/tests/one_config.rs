//! One config file for every node, with real agents on a real (virtual) network:
//!
//! - three agents read the same `agent.toml`, the operator guide's one-file example
//!   (§2.2): it names no node, no `listen` and no `advertise`, lists the peers by name
//!   (each node's own name included) and its TLS files with `{node}`. Each agent runs as on a machine of its own: a network namespace
//!   with one address on a shared bridge, a UTS namespace with its hostname (`n1`…), and a
//!   mount namespace with its own `/etc/hosts` (the three names), `nsswitch.conf` (files
//!   only) and `state_dir`. The cluster elects a primary and every `/cluster` shows the
//!   three nodes alive at the addresses their names resolve to; `quorate status` on a
//!   node reads the same file (its `{node}` paths too). A reload that names a peer that
//!   does not resolve changes nothing and says which line and why.
//! - `--check-config` on that file (run as node n2) says `ok` with what it derived, and
//!   on a file full of mistakes lists every one, in file order, and exits 2 — as the
//!   agent's start does; a certificate near its end is a `warning:` (exit 0), past it an
//!   error.
//!
//! The lab needs root (network, UTS and mount namespaces, a bridge): without it that
//! test says so and passes. Bounds are generous (a noisy 2-core CI box).

#![allow(clippy::unwrap_used)] // a failing setup step should fail the test

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use quorate_tests::cluster::{free_port, spawn_agent_with_env};
use quorate_tests::lab::Net;
use quorate_tests::lab::net::is_root;
use quorate_tests::{bin, ca_init, ca_issue, http_request, wait_until};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(30);
const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Three "machines": network namespaces on one bridge (`quorate_tests::lab::Net`), the
/// test's own namespace on it too (at `.254`) so it can reach their HTTP ports. Removed
/// on drop.
struct Lab {
    net: Net,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        Ok(Lab {
            net: Net::new("qoc", 213, NODES.len())?,
        })
    }

    fn ip(&self, host: u8) -> String {
        self.net.ip(host)
    }

    /// Runs a command as machine `k` (1-based): in its network namespace, with its
    /// hostname, and `binds` (source, target) mounted in a mount namespace of its own.
    fn wrapper(&self, k: usize, binds: &[(PathBuf, PathBuf)]) -> Vec<String> {
        let mut script = format!("hostname {}", NODES[k - 1]);
        for (src, dst) in binds {
            script.push_str(&format!(
                " && mount --bind '{}' '{}'",
                src.display(),
                dst.display()
            ));
        }
        script.push_str(" && exec \"$@\"");
        [
            "ip",
            "netns",
            "exec",
            &self.net.netns(k),
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "sh",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }
}

/// The agents of the lab; killed on drop, their logs printed when a test fails.
struct Agents {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Agents {
    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.logs[i]).unwrap_or_default()
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, _) in self.logs.iter().enumerate() {
                eprintln!("===== {} =====\n{}", NODES[i], self.log(i));
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn cluster_doc(addr: SocketAddr) -> Option<Value> {
    let r = http_request(addr, "GET", "/cluster").ok()?;
    (r.status == 200).then(|| r.json())
}

/// The operator guide's one-file example (§2.2 "One file for every node"): no node,
/// listen or advertise; peers by name, each node's own included; `{node}` in the TLS
/// paths. The lab runs it as printed, but for the paths of its files and an `http.allow`
/// that lets the test read `/cluster`.
fn shared_config(dir: &Path, lab: &Lab) -> String {
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operator-guide.md");
    let guide = std::fs::read_to_string(&guide).unwrap();
    let section = guide
        .split("### 2.2 One file for every node")
        .nth(1)
        .expect("the operator guide has section 2.2 One file for every node");
    // The block is marked `toml no-check` for the doc-example test, whose machine cannot
    // resolve n1…n3: this lab can, and runs it.
    let example = section
        .split("```toml no-check\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("section 2.2 shows a config (```toml no-check)");
    format!(
        "state_dir = \"{d}/state\"\n{}\n[http]\nallow = [\"127.0.0.0/8\", \"{net}/24\"]\n",
        example.replace("/etc/quorate/tls/", &format!("{}/ca/", dir.display())),
        d = dir.display(),
        net = lab.ip(0),
    )
}

#[test]
fn one_file_serves_three_nodes_named_by_their_hostnames() {
    if !is_root() {
        eprintln!("skipped: the lab needs root (network, UTS and mount namespaces)");
        return;
    }
    let lab = Lab::new().unwrap_or_else(|e| panic!("cannot build the network lab: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca_init(&d.join("ca"));
    for n in NODES {
        ca_issue(&d.join("ca"), n);
    }
    let hosts = d.join("hosts");
    let mut text = "127.0.0.1 localhost\n".to_owned();
    for (k, n) in NODES.iter().enumerate() {
        text.push_str(&format!("{} {n}\n", lab.ip(k as u8 + 1)));
    }
    std::fs::write(&hosts, text).unwrap();
    // Names come from the hosts file alone: no DNS server is reachable from the lab.
    let nsswitch = d.join("nsswitch.conf");
    std::fs::write(&nsswitch, "hosts: files\n").unwrap();
    std::fs::create_dir(d.join("state")).unwrap();
    let config = d.join("agent.toml");
    let text = shared_config(d, &lab);
    let peers_line = text.lines().position(|l| l.starts_with("peers =")).unwrap() + 1;
    assert!(
        text.contains("\"n2\""),
        "the example lists n2 by name:\n{text}"
    );
    std::fs::write(&config, &text).unwrap();
    let binds = |k: usize| {
        let own_state = d.join(format!("state-{}", NODES[k - 1]));
        std::fs::create_dir_all(&own_state).unwrap();
        vec![
            (hosts.clone(), PathBuf::from("/etc/hosts")),
            (nsswitch.clone(), PathBuf::from("/etc/nsswitch.conf")),
            (own_state, d.join("state")),
        ]
    };

    // `--check-config` as node n2: ok, and what it derived.
    let wrap = lab.wrapper(2, &binds(2));
    let out = Command::new(&wrap[0])
        .args(&wrap[1..])
        .arg(bin("quorate-agent"))
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let advertise = format!("{}:7700", lab.ip(2));
    for want in [
        format!("ok (node n2 in cluster dam-prod, advertise {advertise}, 2 peers)"),
        "note: node n2: the hostname's first label".to_owned(),
        format!("note: advertise {advertise}: the address n2 resolves to"),
        format!("note: peers: \"n2\" (line {peers_line}) is this node ({advertise}): skipped"),
    ] {
        assert!(stdout.contains(&want), "no {want:?} in:\n{stdout}");
    }

    let mut agents = Agents {
        children: Vec::new(),
        logs: Vec::new(),
    };
    for k in 1..=NODES.len() {
        let log = d.join(format!("{}.log", NODES[k - 1]));
        agents.children.push(spawn_agent_with_env(
            &config,
            &log,
            &[],
            &lab.wrapper(k, &binds(k)),
        ));
        agents.logs.push(log);
    }
    let http: Vec<SocketAddr> = (1..=NODES.len())
        .map(|k| format!("{}:7701", lab.ip(k as u8)).parse().unwrap())
        .collect();
    // Every node sees the three alive at the addresses their names resolve to, and they
    // agree on one primary.
    let converged = |docs: &[Value]| {
        let primary = &docs[0]["primary"];
        primary.is_string()
            && docs.iter().all(|doc| {
                let nodes = doc["nodes"].as_array().cloned().unwrap_or_default();
                doc["primary"] == *primary
                    && nodes.len() == 3
                    && NODES.iter().enumerate().all(|(k, n)| {
                        nodes.iter().any(|m| {
                            m["node"] == *n
                                && m["state"] == "alive"
                                && m["addr"] == format!("{}:7700", lab.ip(k as u8 + 1))
                        })
                    })
            })
    };
    let mut last = Vec::new();
    let ok = wait_until(SETTLE, || {
        last = http.iter().filter_map(|a| cluster_doc(*a)).collect();
        last.len() == 3 && converged(&last)
    });
    assert!(
        ok,
        "the cluster did not converge; last /cluster answers: {last:#?}"
    );
    let primaries = http
        .iter()
        .filter(|a| http_request(**a, "GET", "/primary").is_ok_and(|r| r.status == 200))
        .count();
    assert!(primaries <= 1, "{primaries} nodes answer /primary with 200");

    // The operator tool on a node reads the same file: its listen (the default, dialed
    // on loopback) and its `[tls]` with `{node}` expanded to this machine's node id.
    let out = Command::new(&wrap[0])
        .args(&wrap[1..])
        .arg(bin("quorate"))
        .args(["status", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "quorate status as n2: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(status["node"], "n2", "{status:#}");
    assert_eq!(
        status["nodes"].as_array().map(Vec::len),
        Some(3),
        "{status:#}"
    );

    // A reload naming a peer that does not resolve: refused with the line, nothing
    // changes, the agent keeps running.
    std::fs::write(&config, text.replace("\"n3\"]", "\"n3\", \"n9\"]")).unwrap();
    quorate_tests::cluster::send_signal(agents.children[0].id(), libc::SIGHUP);
    let want = format!(
        "reload: {}:{peers_line}: peers: \"n9\" does not resolve",
        config.display()
    );
    assert!(
        wait_until(SETTLE, || agents
            .log(0)
            .lines()
            .any(|l| l.contains(&want) && l.contains("nothing changed"))),
        "n1 never logged {want:?}"
    );
    assert!(
        agents.children[0].try_wait().unwrap().is_none(),
        "n1 stopped"
    );
    let doc = cluster_doc(http[0]).unwrap();
    assert_eq!(doc["nodes"].as_array().map(Vec::len), Some(3), "{doc:#}");
    drop(agents);
    drop(lab);
}

/// `quorate-agent` with `args` and `--config path`.
fn agent(args: &[&str], path: &Path) -> Output {
    Command::new(bin("quorate-agent"))
        .args(args)
        .arg("--config")
        .arg(path)
        .env("QUORATE_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn check_config_lists_every_mistake_in_file_order_and_exits_2() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca_init(&d.join("ca"));
    ca_issue(&d.join("ca"), "n1");
    let exposed = d.join("exposed.key");
    std::fs::copy(d.join("ca/n1.key"), &exposed).unwrap();
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let hook = d.join("hook.sh");
    std::fs::write(&hook, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(d.join("file"), "").unwrap();
    let text = format!(
        "cluster = \"one\"\n\
         node = \"n1\"\n\
         listen = \"127.0.0.1:{p1}\"\n\
         peers = [\"127.0.0.1:{p2}\", \"nas-b.invalid:7700\"]\n\
         colour = \"red\"\n\
         state_dir = \"{d}/file/state\"\n\
         \n\
         [tls]\n\
         ca = \"{d}/ca/ca.pem\"\n\
         cert = \"{d}/ca/{{host}}.pem\"\n\
         key = \"{d}/exposed.key\"\n\
         \n\
         [timing]\n\
         lease = \"fast\"\n\
         \n\
         [hooks]\n\
         on_primary = \"{d}/hook.sh\"\n",
        p1 = free_port(),
        p2 = free_port(),
        d = d.display(),
    );
    let path = d.join("agent.toml");
    std::fs::write(&path, &text).unwrap();
    // (line, words the line must hold)
    let want: &[(usize, &[&str])] = &[
        (4, &["peers: \"nas-b.invalid:7700\" does not resolve"]),
        (5, &["unknown field `colour`"]),
        (
            6,
            &["state_dir: ", "/file/state cannot be created", "is a file"],
        ),
        (
            10,
            &["tls.cert: ", "{host} is not a placeholder", "only {node}"],
        ),
        (
            11,
            &[
                "tls.key: ",
                "exposed.key",
                "readable by every user",
                "chmod 0640",
            ],
        ),
        (14, &["timing.lease: invalid duration \"fast\""]),
        (
            17,
            &[
                "hooks.on_primary: ",
                "hook.sh is not executable",
                "chmod 0755",
            ],
        ),
    ];
    // The check and the start refuse the same way.
    for args in [&["--check-config"][..], &[][..]] {
        let out = agent(args, &path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{args:?}: stderr:\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{what}");
        assert!(out.stdout.is_empty(), "{what}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), want.len(), "{what}");
        for (got, (line, words)) in lines.iter().zip(want) {
            let at = format!("quorate-agent: {}:{line}: ", path.display());
            assert!(got.starts_with(&at), "{got:?} is not at {at:?}\n{what}");
            for w in *words {
                assert!(got.contains(w), "{got:?} lacks {w:?}\n{what}");
            }
        }
    }

    // Fixed, it passes, and says what it skipped.
    let fixed = text
        .replace(
            "\"nas-b.invalid:7700\"",
            &format!("\"localhost:{}\"", free_port()),
        )
        .replace("colour = \"red\"\n", "")
        .replace("/file/state", "/state")
        .replace("{host}", "{node}")
        .replace("/exposed.key", "/ca/{node}.key")
        .replace("\"fast\"", "\"300ms\"");
    std::fs::write(&path, &fixed).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = agent(&["--check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(": ok (node n1 in cluster one, advertise 127.0.0.1:"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning:"), "{stdout}");
    assert!(
        !d.join("state").exists(),
        "--check-config created state_dir"
    );

    // The certificate's end, seen from a wall clock moved forward (the agent's fault
    // injection): 12 days before it, a warning and exit 0; a day after it, an error.
    let end = {
        use rustls_pki_types::pem::PemObject as _;
        let pem = std::fs::read(d.join("ca/n1.pem")).unwrap();
        let cert = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        quorate_agent::config::tls::not_after_unix(&cert).unwrap()
    };
    let now = i64::try_from(quorate_agent::clock::wall().0 / 1_000_000).unwrap();
    let cert_line = fixed.lines().position(|l| l.starts_with("cert =")).unwrap() + 1;
    let at_clock = |offset_s: i64| {
        Command::new(bin("quorate-agent"))
            .args(["--check-config", "--config"])
            .arg(&path)
            .env(
                quorate_agent::clock::WALL_SKEW_ENV,
                ((end - now + offset_s) * 1000).to_string(),
            )
            .output()
            .unwrap()
    };
    let out = at_clock(-12 * 86_400 - 600);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let want = format!(
        "warning: {}:{cert_line}: tls.cert: {}/ca/n1.pem ends on ",
        path.display(),
        d.display()
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&want) && l.contains("(in 12 days)")),
        "no {want:?}… in:\n{stdout}"
    );
    let out = at_clock(86_400);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!("quorate-agent: {}:{cert_line}: tls.cert: ", path.display());
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&want) && l.contains("ended on")),
        "no {want:?}… in:\n{stderr}"
    );
}
