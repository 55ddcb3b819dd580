//! docs/first-cluster.md, followed on loopback with real agents: the guide's own
//! `quorate ca` commands make the CA and the certificates, its files are installed with
//! the modes it gives, its `agent.toml` blocks become the nodes' configs (only
//! addresses, ports and paths substituted), each passes `--check-config`, the agents
//! start in any order, `quorate status` exits 0 and exactly one node answers `/primary`
//! with 200. The same for two nodes and a witness (section 8), where the witness never
//! answers 200 and shows the role `witness`.
//!
//! The guide's app check (`http://127.0.0.1:8080/status`) is answered by a tiny HTTP
//! server of the test's own. Bounds are generous (a noisy 2-core CI box).
//!
//! Needs the binaries: `cargo build --workspace --bins`.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use quorate_tests::cluster::{free_port, spawn_agent};
use quorate_tests::primary::wait_one_primary;
use quorate_tests::{bin, http_request, run_ok, wait_until};

const SETTLE: Duration = Duration::from_secs(30);

fn guide() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/first-cluster.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The guide's text from the heading starting with `from` up to the next one of the
/// same level starting with `until` (or the end).
fn section(text: &str, from: &str, until: Option<&str>) -> String {
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("no {from:?} in docs/first-cluster.md"));
    let rest = &text[start..];
    let end = until.and_then(|u| rest.find(u)).unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The bodies of the fenced blocks of language `lang` in `text`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<(bool, String)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match &mut open {
            Some((wanted, body)) => {
                if t.starts_with("```") {
                    if *wanted {
                        out.push(std::mem::take(body));
                    }
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None => {
                if let Some(info) = t.strip_prefix("```") {
                    let wanted = info.split_whitespace().next() == Some(lang);
                    open = Some((wanted, String::new()));
                }
            }
        }
    }
    out
}

/// The `node = "…"` of a config block.
fn node_of(block: &str) -> String {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("node = \""))
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("no node in\n{block}"))
        .to_owned()
}

/// Answers every connection with `200 OK`: the application the guide's `[app]` checks.
fn fake_app() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    addr
}

/// The agents of one test; killed when dropped, their logs printed on a failure.
struct Agents {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

struct Node {
    id: String,
    config: PathBuf,
    log: PathBuf,
    quic: SocketAddr,
    http: SocketAddr,
    child: Option<Child>,
}

impl Drop for Agents {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                let log = fs::read_to_string(&n.log).unwrap_or_default();
                let config = fs::read_to_string(&n.config).unwrap_or_default();
                eprintln!("===== {} =====\n{config}\n----- log -----\n{log}", n.id);
            }
        }
    }
}

/// Follows one part of the guide: its `quorate ca` commands, the install of each node's
/// three files, its config blocks (as the guide lists the machines, in order: the
/// first is 10.0.0.11, …), `--check-config` on each.
fn set_up(part: &str) -> Agents {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let ca_dir = ca.display().to_string();

    // Section 3's commands, as written, with the CA directory moved.
    let mut ran = 0;
    for block in blocks(part, "sh") {
        for line in block.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if !line.starts_with("quorate ca ") {
                continue;
            }
            let args: Vec<String> = line
                .split_whitespace()
                .skip(1)
                .map(|w| w.replace("/root/quorate-ca", &ca_dir))
                .collect();
            run_ok(Command::new(bin("quorate")).args(&args));
            ran += 1;
        }
    }
    assert!(ran >= 3, "the guide's quorate ca commands were not found");

    let app = fake_app();
    let configs = blocks(part, "toml");
    assert!(
        configs.len() >= 3,
        "fewer than three config blocks: {configs:?}"
    );
    let quic: Vec<SocketAddr> = configs
        .iter()
        .map(|_| SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())))
        .collect();
    let mut nodes = Vec::new();
    for (i, block) in configs.iter().enumerate() {
        let id = node_of(block);
        // The three files of section 3, with its modes.
        let tls = dir.path().join(&id).join("tls");
        fs::create_dir_all(&tls).unwrap();
        for (file, mode) in [
            ("ca.pem".to_owned(), 0o644),
            (format!("{id}.pem"), 0o644),
            (format!("{id}.key"), 0o640),
        ] {
            fs::copy(ca.join(&file), tls.join(&file)).unwrap();
            fs::set_permissions(tls.join(&file), fs::Permissions::from_mode(mode)).unwrap();
        }
        assert!(!tls.join("ca.key").exists(), "ca.key never goes to a node");

        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let agent_check = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut text = block.replace("/etc/quorate/tls/", &format!("{}/", tls.display()));
        for (j, q) in quic.iter().enumerate() {
            text = text.replace(&format!("10.0.0.1{}:7700", j + 1), &q.to_string());
        }
        text = text
            .replace("127.0.0.1:8080", &app.to_string())
            .replace("0.0.0.0:7702", &agent_check.to_string());
        let state = dir.path().join(&id).join("state");
        let top = format!(
            "listen = \"{}\"\nstate_dir = \"{}\"\n",
            quic[i],
            state.display()
        );
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.insert(1, top.trim_end().to_owned());
        match lines.iter().position(|l| l.trim() == "[http]") {
            Some(p) => lines.insert(p + 1, format!("listen = \"{http}\"")),
            None => lines.push(format!("\n[http]\nlisten = \"{http}\"")),
        }
        let config = dir.path().join(format!("{id}.toml"));
        fs::write(&config, lines.join("\n") + "\n").unwrap();

        // Section 5: check each file before starting.
        let out = run_ok(
            Command::new(bin("quorate-agent"))
                .arg("--check-config")
                .arg("--config")
                .arg(&config),
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("node {id} in cluster")), "{said}");

        nodes.push(Node {
            log: dir.path().join(format!("{id}.log")),
            id,
            config,
            quic: quic[i],
            http,
            child: None,
        });
    }
    Agents { dir, nodes }
}

impl Agents {
    /// Section 6: start every node, in the order given.
    fn start(&mut self, order: &[usize]) {
        for &i in order {
            let n = &mut self.nodes[i];
            n.child = Some(spawn_agent(&n.config, &n.log));
        }
    }

    fn quorate(&self, i: usize, args: &[&str]) -> std::process::Output {
        Command::new(bin("quorate"))
            .args(args)
            .arg("--config")
            .arg(&self.nodes[i].config)
            .output()
            .unwrap()
    }

    fn primary_status(&self, i: usize) -> Option<u16> {
        http_request(self.nodes[i].http, "GET", "/primary")
            .ok()
            .map(|r| r.status)
    }

    /// Section 7: `quorate status` exits 0, and exactly one of `members` answers 200.
    fn verify(&self, members: &[usize]) -> usize {
        let addrs: Vec<SocketAddr> = members.iter().map(|&i| self.nodes[i].http).collect();
        let primary = wait_one_primary(&addrs, SETTLE).expect("no single primary");
        let mut last = None;
        let healthy = wait_until(SETTLE, || {
            let out = self.quorate(0, &["status"]);
            let ok = out.status.success();
            last = Some(out);
            ok
        });
        let out = last.unwrap();
        assert!(
            healthy,
            "quorate status: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let statuses: Vec<Option<u16>> = (0..self.nodes.len())
            .map(|i| self.primary_status(i))
            .collect();
        let ones = statuses.iter().filter(|s| **s == Some(200)).count();
        assert_eq!(ones, 1, "exactly one /primary 200: {statuses:?}");
        members[primary]
    }
}

#[test]
fn three_nodes_as_the_guide_says() {
    let text = guide();
    let part = section(&text, "## 3. Certificates", Some("## 8."));
    let mut c = set_up(&part);
    assert_eq!(
        c.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["n1", "n2", "n3"]
    );
    // Any order: the lowest priority first.
    c.start(&[2, 0, 1]);
    c.verify(&[0, 1, 2]);

    // Section 7: Alice's operator certificate, from outside the node's files.
    let ca = c.dir.path().join("ca");
    let out = Command::new(bin("quorate"))
        .arg("status")
        .arg("--connect")
        .arg(c.nodes[1].quic.to_string())
        .arg("--ca")
        .arg(ca.join("ca.pem"))
        .arg("--cert")
        .arg(ca.join("alice.pem"))
        .arg("--key")
        .arg(ca.join("alice.key"))
        .arg("--config")
        .arg(&c.nodes[1].config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "quorate status with alice's certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_nodes_and_a_witness_as_the_guide_says() {
    let text = guide();
    let part = section(&text, "## 8. Two nodes and a witness", Some("## 9."));
    let mut c = set_up(&part);
    let ids: Vec<&str> = c.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2", "w1"]);
    c.start(&[2, 1, 0]);
    c.verify(&[0, 1]);
    assert_eq!(c.primary_status(2), Some(503), "a witness is never primary");
    let out = c.quorate(0, &["status", "--json"]);
    assert!(out.status.success());
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w1 = view["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node"] == "w1"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(w1["role"], "witness", "{view}");
    assert_eq!(w1["state"], "alive", "{view}");
}
