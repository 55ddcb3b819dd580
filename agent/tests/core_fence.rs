//! The sans-IO fence: nothing in `src/core/` may reach a runtime, a socket, a clock or
//! unseeded randomness. Clippy bans the clock reads workspace-wide; this catches the
//! rest, which clippy cannot scope to one module.

mod imports;

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "quinn",
    "std::net",
    "std::fs",
    "std::thread",
    "spawn",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "rand::rng(",
    "from_os_rng",
];

fn visit(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("src/core is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            visit(&path, hits);
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    hits.push(format!(
                        "{}:{}: {word}: {}",
                        path.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
}

#[test]
fn core_stays_sans_io() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut hits = Vec::new();
    visit(&core, &mut hits);
    assert!(
        hits.is_empty(),
        "src/core reaches outside its fence:\n{}",
        hits.join("\n")
    );
}

/// The core imports nothing of the agent's: every `crate::` path in `src/core/` (test
/// code aside) stays inside it, so the simulation can run it alone and no change
/// elsewhere reaches the election.
#[test]
fn core_imports_only_the_core() {
    let graph = imports::Graph::read();
    let reached: Vec<String> = graph
        .files
        .iter()
        .filter(|f| f.rel.starts_with("core/"))
        .flat_map(|f| {
            f.imports
                .iter()
                .filter(|i| !i.target.starts_with("core/"))
                .map(move |i| format!("{}:{}: {} → {}", f.rel, i.line, i.written, i.target))
        })
        .collect();
    assert!(
        reached.is_empty(),
        "src/core reaches outside itself:\n{}",
        reached.join("\n")
    );
}
