//! The `quorate` binary as an operator runs it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;

fn quorate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(args)
        .env_remove("QUORATE_DEMO_SECONDS")
        .output()
        .expect("run quorate")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ca_init_and_issue_write_certificates_and_private_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let d = dir.to_str().unwrap();

    let out = quorate(&["ca", "init", "--dir", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert!(dir.join("ca.pem").is_file());

    let out = quorate(&["ca", "issue", "--dir", d, "n1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&dir.join("n1.key")), 0o600);
    let pem = std::fs::read_to_string(dir.join("n1.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let out = quorate(&["ca", "issue", "--dir", d, "--operator", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&dir.join("alice.key")), 0o600);
    assert!(dir.join("alice.pem").is_file());
}

#[test]
fn ca_refuses_to_overwrite_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    assert!(quorate(&["ca", "init", "--dir", d]).status.success());
    assert!(quorate(&["ca", "issue", "--dir", d, "n1"]).status.success());

    let out = quorate(&["ca", "init", "--dir", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ca.key"), "{}", stderr(&out));

    let out = quorate(&["ca", "issue", "--dir", d, "n1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("n1.key"), "{}", stderr(&out));
}

#[test]
fn status_names_the_address_it_cannot_reach() {
    for args in [
        &["status", "--connect", "127.0.0.1:1"][..],
        &["--connect", "127.0.0.1:1"][..],
        &["status", "--json", "--connect", "127.0.0.1:1"][..],
    ] {
        let out = quorate(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty());
    }
}

/// Serves one HTTP answer on a loopback port; returns the address.
fn serve_once(status: &'static str, body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address").to_string();
    thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(answer.as_bytes());
    });
    addr
}

const CLUSTER: &str = r#"{"cluster":"demo","node":"n1","term":3,"primary":"n1","quorum":true,
 "frozen":false,"voters":2,"a_field_from_the_future":1,
 "nodes":[{"node":"n1","addr":"127.0.0.1:17701","state":"alive","role":"primary","local":true,
  "ready":true,"healthy":true,"draining":false,"priority":100,"roles":[],"incarnation":1,
  "rtt_ms":null,"clock_offset_ms":null,"last_seen_ms":null,"phi":null,
  "load":{"cpu":0.5,"mem":0.25,"load1":1.0},"checks":{"app":"ok"},
  "version":{"agent":"0.1.0","app":null}}],
 "unreachable_peers":["127.0.0.1:17702"]}"#;

#[test]
fn status_prints_a_table_or_json() {
    let addr = serve_once("200 OK", CLUSTER.to_string());
    let out = quorate(&["status", "--connect", &addr]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("cluster demo  term 3  primary n1  quorum yes (1/2)\n"),
        "{text}"
    );
    assert!(text.contains("\nn1*  "), "{text}");
    assert!(text.ends_with("unreachable: 127.0.0.1:17702\n"), "{text}");

    let addr = serve_once("200 OK", CLUSTER.to_string());
    let out = quorate(&["status", "--json", "--connect", &addr]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["term"], 3);
    assert_eq!(json["nodes"][0]["node"], "n1");
}

#[test]
fn status_explains_a_refusal() {
    let addr = serve_once("403 Forbidden", "{}".to_string());
    let out = quorate(&["status", "--connect", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&addr) && err.contains("http.allow"), "{err}");
}

#[test]
fn status_reads_the_http_address_from_the_config() {
    let addr = serve_once("200 OK", CLUSTER.to_string());
    let port = addr.rsplit(':').next().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("cluster = \"demo\"\nnode = \"n1\"\n[http]\nlisten = \"0.0.0.0:{port}\"\n"),
    )
    .unwrap();
    let out = quorate(&["status", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// End to end: needs `quorate-agent` next to `quorate` (`scripts/test.sh` builds every
/// binary first). Three real agents elect a primary and are stopped cleanly.
#[test]
fn demo_runs_a_cluster_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(["demo", "--nodes", "3", "--no-tui"])
        .env("QUORATE_DEMO_SECONDS", "4")
        .output()
        .expect("run quorate demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("demo directory: "))
        .expect("demo prints its directory");
    assert!(!Path::new(dir).exists(), "{dir} was not removed");
    assert!(text.contains("cluster demo  term "), "{text}");
    assert!(text.contains("primary n"), "a primary was elected: {text}");
}
