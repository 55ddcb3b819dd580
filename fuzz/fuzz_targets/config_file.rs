//! Any text as the agent's config file: `Config::parse` never panics, and refuses what it
//! cannot take with one line per error, each naming the file, the line and the reason
//! (`/path/agent.toml:12: timing: …`), the line within the file, in file order.
//!
//! The file sits in a directory with a real CA and node `n1`'s certificate and key, so
//! that a config naming `ca.pem`, `n1.pem` and `n1.key` (as the seeds do) gets past the
//! TLS checks into everything after them.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use quorate_agent::config::{Config, ConfigError};

fn config_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("quorate-fuzz-config")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        let node = quorate_protocol::NodeId::new("n1").expect("a node id");
        quorate_agent::ca::init(&dir).expect("a CA");
        quorate_agent::ca::issue_node(&dir, &node).expect("a node certificate");
        dir.join("agent.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = config_path();
    let Err(errors) = Config::parse(path, text) else {
        return;
    };
    assert!(!errors.is_empty(), "refused without a reason");
    let mut last = 0;
    for e in &errors {
        let message = e.to_string();
        assert!(!message.contains('\n'), "not one line: {message:?}");
        match e {
            ConfigError::Invalid {
                path: p,
                line,
                reason,
            } => {
                assert_eq!(p, path);
                assert!(
                    *line >= 1 && *line <= text.lines().count().max(1) + 1,
                    "line {line}"
                );
                assert!(*line >= last, "not in file order: {errors}");
                last = *line;
                assert!(!reason.trim().is_empty(), "an empty reason");
                assert!(
                    message.starts_with(&format!("{}:{line}: ", path.display())),
                    "{message:?}"
                );
            }
            ConfigError::Read { .. } => {}
        }
    }
});
