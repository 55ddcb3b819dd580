//! docs/ and README.md stand on their own: every link and every repository path they
//! name exists in the repository, and they never send a reader to a file outside it.

use std::path::{Path, PathBuf};

/// Top-level folders of the repository: a backticked word starting with one of these is
/// a path that must exist.
const ROOTS: &[&str] = &[
    "agent/",
    "tui/",
    "tests/",
    "protocol/",
    "packaging/",
    "docs/",
    "scripts/",
    ".ci/",
    "fuzz/",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.push(root.join("README.md"));
    docs.push(root.join("CONTRIBUTING.md"));
    docs.sort();
    docs
}

/// `](target)` links that are not URLs or anchors, without their `#fragment`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.contains("://") && !t.starts_with('#') && !t.starts_with("mailto:"))
        .map(|t| t.split('#').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Backticked words that start at a repository root folder, trimmed of `:line` and of
/// anything after a space.
fn repo_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.split_whitespace().next())
        .filter(|w| ROOTS.iter().any(|r| w.starts_with(r)))
        .map(|w| w.split(':').next().unwrap_or_default().to_owned())
        .filter(|w| !w.contains(['*', '{', '<']))
        .collect()
}

#[test]
fn every_link_and_repository_path_in_the_docs_exists() {
    let root = repo();
    let mut missing = Vec::new();
    let docs = documents();
    assert!(
        docs.len() > 3,
        "no documents found under {}",
        root.display()
    );
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap_or_default();
        let base = doc.parent().unwrap_or(&root).to_path_buf();
        for link in links(&text) {
            if !base.join(&link).exists() {
                missing.push(format!("{}: link {link}", doc.display()));
            }
        }
        for path in repo_paths(&text) {
            if !root.join(&path).exists() {
                missing.push(format!("{}: path {path}", doc.display()));
            }
        }
        for outside in ["DESIGN.md", "STYLE.md", "../shared"] {
            if text.contains(outside) {
                missing.push(format!("{}: refers to {outside}", doc.display()));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_checker_sees_links_and_paths() {
    let text = "see [guide](guide.md#x), [web](https://x.invalid), `packaging/build.sh --x` \
                and `agent/src/lib.rs:12`, not `cargo test`";
    assert_eq!(links(text), vec!["guide.md"]);
    assert_eq!(
        repo_paths(text),
        vec!["packaging/build.sh", "agent/src/lib.rs"]
    );
}
