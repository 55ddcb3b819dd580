//! Valid configs for unit tests: a CA and node `n1`'s certificate in a temporary
//! directory, and the smallest file that uses them.

use std::path::Path;

use super::Config;

/// A minimal valid config for node `n1` with `extra` appended (start it with top-level
/// keys, then tables). Makes the CA and certificate in `dir` on first use.
pub fn config_text(dir: &Path, extra: &str) -> String {
    if !dir.join("n1.pem").exists() {
        crate::ca::init(dir).expect("a CA");
        crate::ca::issue_node(dir, &proto::NodeId::new("n1").expect("a node id"))
            .expect("a certificate");
    }
    // Top-level keys of `extra` must come before the first table.
    let (top, tables) = match extra
        .find("\n[")
        .map(|i| i + 1)
        .or_else(|| extra.starts_with('[').then_some(0))
    {
        Some(i) => extra.split_at(i),
        None => (extra, ""),
    };
    format!(
        "cluster = \"c\"\nnode = \"n1\"\nlisten = \"127.0.0.1:7800\"\n\
         peers = [\"127.0.0.1:7801\"]\nstate_dir = \"{d}/state\"\n{top}\n\
         [tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/n1.pem\"\nkey = \"{d}/n1.key\"\n\n{tables}",
        d = dir.display()
    )
}

/// [`config_text`], parsed; panics with the error if invalid.
pub fn parse(dir: &Path, extra: &str) -> Config {
    let path = dir.join("agent.toml");
    Config::parse(&path, &config_text(dir, extra)).unwrap_or_else(|e| panic!("{e}"))
}
