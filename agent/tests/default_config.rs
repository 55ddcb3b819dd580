//! The shipped config file (`packaging/agent.toml`) is `--print-default-config`, its
//! comments tell the truth about the defaults, and it starts once an operator fills in
//! what the comments ask for.

#![allow(clippy::unwrap_used)] // a failing setup step should fail the test

use std::path::{Path, PathBuf};
use std::process::Command;

use quorate_agent::config::{Config, defaults};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/agent.toml")
}

/// `quorate-agent --check-config --config PATH`.
fn check_config(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quorate-agent"))
        .args(["--check-config", "--config"])
        .arg(path)
        .output()
        .unwrap()
}

/// A CA and a certificate for `n1` in `dir`, and the `[tls]` section naming them.
fn tls(dir: &Path) -> String {
    quorate_agent::ca::init(dir).unwrap();
    quorate_agent::ca::issue_node(dir, &"n1".parse().unwrap()).unwrap();
    format!(
        "\n[tls]\nca = \"{0}/ca.pem\"\ncert = \"{0}/n1.pem\"\nkey = \"{0}/n1.key\"\n",
        dir.display()
    )
}

#[test]
fn the_packaged_file_is_the_printed_default() {
    let file = std::fs::read_to_string(shipped()).unwrap();
    let printed = Command::new(env!("CARGO_BIN_EXE_quorate-agent"))
        .arg("--print-default-config")
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert!(
        file == String::from_utf8(printed.stdout).unwrap(),
        "packaging/agent.toml differs from the agent's default: regenerate it with\n  \
         cargo run -q -p quorate-agent -- --print-default-config > packaging/agent.toml"
    );
}

#[test]
fn every_commented_default_is_the_parser_default() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls(dir.path());
    let path = dir.path().join("agent.toml");
    let active = format!("node = \"n1\"\n{}{tls}", defaults::render(true));
    let minimal = format!("node = \"n1\"\n{tls}");
    let from_defaults = Config::parse(&path, &active).unwrap();
    let bare = Config::parse(&path, &minimal).unwrap();
    assert_eq!(format!("{from_defaults:?}"), format!("{bare:?}"));
}

#[test]
fn every_example_key_exists() {
    // Uncomment every `# key = value` line and every section header: a misspelt example
    // is then an unknown key. (version_command is an alternative to version_file.)
    let dir = tempfile::tempdir().unwrap();
    let tls = tls(dir.path());
    let text: String = defaults::render(false)
        .lines()
        .filter_map(|l| {
            let body = l.strip_prefix("# ")?;
            let is_key = body.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            });
            let is_header = body.starts_with('[') && body.ends_with(']') && body != "[tls]";
            let is_tls_key = ["ca = ", "cert = ", "key = ", "crl = "]
                .iter()
                .any(|k| body.starts_with(k));
            (is_key && !is_tls_key && !body.starts_with("version_command") || is_header)
                .then(|| format!("{body}\n"))
        })
        .collect();
    Config::parse(&dir.path().join("agent.toml"), &format!("{text}{tls}")).unwrap();
}

#[test]
fn the_packaged_file_starts_once_node_peers_and_tls_are_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    quorate_agent::ca::init(dir.path()).unwrap();
    quorate_agent::ca::issue_node(dir.path(), &"n1".parse().unwrap()).unwrap();
    let text = std::fs::read_to_string(shipped()).unwrap();
    // As an operator would: uncomment and edit the lines the header names.
    let edited = text
        .replace("# node = \"n1\"", "node = \"n1\"")
        .replace("# peers = [", "peers = [")
        .replace("# [tls]", "[tls]")
        .replace(
            "# ca = \"/etc/quorate/tls/ca.pem\"",
            &format!("ca = \"{}/ca.pem\"", dir.path().display()),
        )
        .replace(
            "# cert = \"/etc/quorate/tls/n1.pem\"",
            &format!("cert = \"{}/n1.pem\"", dir.path().display()),
        )
        .replace(
            "# key = \"/etc/quorate/tls/n1.key\"",
            &format!("key = \"{}/n1.key\"", dir.path().display()),
        );
    assert_ne!(edited, text);
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, &edited).unwrap();
    let check = check_config(&path);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(out.contains("node n1 in cluster quorate"), "{out}");

    // Untouched, it fails with a clear reason rather than starting half-configured.
    let untouched = check_config(&shipped());
    assert!(!untouched.status.success());
    let err = String::from_utf8_lossy(&untouched.stderr);
    assert!(err.contains("agent.toml") && err.contains("tls"), "{err}");
}

#[test]
fn nothing_live_in_the_packaged_file_points_at_a_file() {
    let text = std::fs::read_to_string(shipped()).unwrap();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(
            !line.contains("\"/"),
            "a live path in the shipped file: {line}"
        );
    }
}

#[test]
fn check_config_names_the_paths_the_service_sandbox_needs_opened() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls(dir.path());
    let path = dir.path().join("agent.toml");
    let text = format!(
        "node = \"n1\"\n[[mount]]\npath = \"/mnt/repo\"\nwritable = true\n[[mount]]\npath = \"/mnt/ro\"\n{tls}"
    );
    std::fs::write(&path, text).unwrap();
    let check = check_config(&path);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.contains("ReadWritePaths=/mnt/repo"), "{out}");
    assert!(!out.contains("/mnt/ro"), "{out}");
}
