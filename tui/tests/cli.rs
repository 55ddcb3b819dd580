//! The `quorate` binary as an operator runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

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
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    assert!(quorate(&["ca", "init", "--dir", d]).status.success());
    assert!(
        quorate(&["ca", "issue", "--dir", d, "--operator", "alice"])
            .status
            .success()
    );
    let creds = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for (flag, file) in [
            ("--ca", "ca.pem"),
            ("--cert", "alice.pem"),
            ("--key", "alice.key"),
        ] {
            v.push(flag.into());
            v.push(tmp.path().join(file).to_string_lossy().into_owned());
        }
        v
    };
    // `status` is a monitoring check: no agent to ask is critical (2); other commands'
    // errors are 1. With `--json` too, the error is text on stderr and stdout is empty.
    for (args, code) in [
        (&["status", "--connect", "127.0.0.1:1"][..], 2),
        (&["status", "--json", "--connect", "127.0.0.1:1"][..], 2),
        (&["--connect", "127.0.0.1:1"][..], 2),
        (&["events", "--json", "--connect", "127.0.0.1:1"][..], 1),
        (&["freeze", "--json", "--connect", "127.0.0.1:1"][..], 1),
    ] {
        let args = creds(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = quorate(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("127.0.0.1:1") && err.contains("no handshake"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn missing_credentials_name_the_file_and_the_flag() {
    // `status` cannot say the cluster is fine: critical (2), as for any of its errors.
    let out = quorate(&["status", "--config", "/nonexistent/agent.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/agent.toml"),
        "{}",
        stderr(&out)
    );

    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        "cluster = \"demo\"\nlisten = \"127.0.0.1:17700\"\n",
    )
    .unwrap();
    let out = quorate(&["status", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--ca") && err.contains("agent.toml"), "{err}");

    // A certificate file that is not there is named.
    let out = quorate(&[
        "status",
        "--connect",
        "127.0.0.1:1",
        "--ca",
        "/nonexistent/ca.pem",
        "--cert",
        "a.pem",
        "--key",
        "a.key",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/ca.pem"),
        "{}",
        stderr(&out)
    );
    // `task should-run` keeps exit 2 for errors (1 means "not here").
    let out = quorate(&[
        "task",
        "should-run",
        "x",
        "--config",
        "/nonexistent/agent.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn member_commands_check_their_arguments_before_connecting() {
    // Without its flag, force-new-cluster explains itself and connects nowhere (the
    // config named does not exist, and is not mentioned).
    let out = quorate(&[
        "member",
        "force-new-cluster",
        "--config",
        "/nonexistent/agent.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("--yes-i-lost-the-majority") && err.contains("lost for good"),
        "{err}"
    );
    assert!(!err.contains("/nonexistent"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());

    // Bad ids and addresses are usage errors naming the argument.
    let out = quorate(&["member", "add", "n4", "n4.example"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<ADDR>"), "{}", stderr(&out));
    let out = quorate(&["member", "replace", "n3", "n_5", "10.0.0.15:7700"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<NEW>"), "{}", stderr(&out));

    // A change goes through the agent like any command: its address is named.
    let out = quorate(&[
        "member",
        "remove",
        "n3",
        "--config",
        "/nonexistent/agent.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/agent.toml"),
        "{}",
        stderr(&out)
    );
}

// `status` and `status --json` against real agents, over the operator channel, are
// tested in tests/tests/cluster.rs (`status_cli_prints_the_cluster_as_a_table_and_as_json`)
// and tests/tests/ctl.rs.

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

/// The operator guide's command list and `quorate --help` name the same subcommands
/// (STYLE P11: what is written in two places gets a drift test).
#[test]
fn the_operator_guide_lists_every_subcommand() {
    let help = String::from_utf8_lossy(&quorate(&["--help"]).stdout).into_owned();
    let from_help: std::collections::BTreeSet<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(from_help.len() > 5, "{help}");
    let guide_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operator-guide.md");
    let guide = std::fs::read_to_string(&guide_path).unwrap();
    let block: Vec<&str> = guide
        .split("## 10. The operator tool")
        .nth(1)
        .and_then(|s| s.split("```sh").nth(1))
        .and_then(|s| s.split("```").next())
        .unwrap_or_default()
        .lines()
        .collect();
    let from_guide: std::collections::BTreeSet<String> = block
        .iter()
        .filter_map(|l| l.strip_prefix("quorate "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|w| !w.starts_with('#'))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_owned()
        })
        .flat_map(|w| {
            // `freeze | unfreeze` lists two.
            if w == "freeze" {
                vec![w, "unfreeze".to_owned()]
            } else {
                vec![w]
            }
        })
        .collect();
    assert_eq!(
        from_help, from_guide,
        "docs/operator-guide.md section 10 and `quorate --help` disagree"
    );
}
