//! The layering of `agent/src` (docs/ARCHITECTURE.md, "Layers"), enforced over every
//! `crate::` path in non-test code, `use` lines and inline paths alike:
//!
//! - every top-level module has a place in [`LAYERS`], and imports only from its own
//!   layer or below;
//! - no two files import each other, directly or around a loop;
//! - no two top-level modules do either (sideways imports within a layer stay one-way).

mod imports;

use std::collections::{BTreeMap, BTreeSet};

use imports::{Graph, strongly_connected};

/// Lowest first. The crate root (`lib.rs`, which starts the agent) sits above them all.
const LAYERS: &[(&str, &[&str])] = &[
    ("the sans-IO core, the clock", &["core", "clock", "ratelog"]),
    (
        "durable state and configuration",
        &["persist", "events", "config"],
    ),
    ("measuring", &["probe"]),
    ("judging and the published snapshot", &["assess", "view"]),
    (
        "the edges: sockets, endpoints, operator channel, side effects",
        &[
            "net", "http", "ctl", "hooks", "systemd", "ca", "reload", "logging", "generate",
            "timer",
        ],
    ),
    ("the loop", &["driver"]),
];

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&top))
}

fn top(module: &[String]) -> &str {
    module.first().map(String::as_str).unwrap_or("")
}

#[test]
fn every_module_has_a_layer_and_imports_only_downward() {
    let graph = Graph::read();
    let module_of = graph.module_of();
    let mut problems = Vec::new();
    for f in &graph.files {
        let from = top(&f.module);
        if from.is_empty() {
            continue; // the crate root may use anything
        }
        let Some(from_layer) = layer_of(from) else {
            problems.push(format!("{}: module `{from}` has no layer in LAYERS", f.rel));
            continue;
        };
        for i in &f.imports {
            let to = top(module_of[i.target.as_str()]);
            if to.is_empty() {
                problems.push(format!(
                    "{}:{}: `{}` reaches up to the crate root (lib.rs)",
                    f.rel, i.line, i.written
                ));
                continue;
            }
            match layer_of(to) {
                Some(l) if l <= from_layer => {}
                Some(l) => problems.push(format!(
                    "{}:{}: `{}` runs up from {from} ({}) to {to} ({})",
                    f.rel, i.line, i.written, LAYERS[from_layer].0, LAYERS[l].0
                )),
                None => {} // reported once for its own files
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other() {
    let graph = Graph::read();
    let circles = graph.circles();
    let mut report = Vec::new();
    for circle in &circles {
        report.push(format!("circle: {}", circle.join(" ")));
        for f in graph.files.iter().filter(|f| circle.contains(&f.rel)) {
            for i in f.imports.iter().filter(|i| circle.contains(&i.target)) {
                report.push(format!(
                    "  {}:{}: `{}` → {}",
                    f.rel, i.line, i.written, i.target
                ));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "files import each other:\n{}",
        report.join("\n")
    );
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let graph = Graph::read();
    let module_of = graph.module_of();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in &graph.files {
        let from = top(&f.module);
        for i in &f.imports {
            let to = top(module_of[i.target.as_str()]);
            if from != to && !from.is_empty() {
                edges.entry(from).or_default().insert(to);
            }
        }
    }
    let circles = strongly_connected(&edges);
    assert!(circles.is_empty(), "modules import each other: {circles:?}");
}

/// The other crates keep to the same rule: no two files import each other.
#[test]
fn no_two_files_of_protocol_or_tui_import_each_other() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    for (krate, root) in [("protocol", "lib.rs"), ("tui", "main.rs")] {
        let graph = Graph::read_crate(&workspace.join(krate).join("src"), root);
        assert!(
            graph.files.len() > 3,
            "{krate}: read {} files",
            graph.files.len()
        );
        let circles = graph.circles();
        assert!(
            circles.is_empty(),
            "{krate}: files import each other: {circles:?}"
        );
    }
}

/// The reader itself: it sees `use` lines and inline paths, follows re-exports, and
/// finds a planted circle.
#[test]
fn the_reader_sees_use_lines_inline_paths_and_macros() {
    let graph = Graph::read();
    let driver = graph
        .files
        .iter()
        .find(|f| f.rel == "driver.rs")
        .expect("driver.rs");
    let reaches = |written: &str, target: &str| {
        driver
            .imports
            .iter()
            .any(|i| i.written == written && i.target == target)
    };
    // A `use` line, followed through the core's re-export to the file defining `Node`.
    assert!(
        reaches("crate::core::Node", "core/node/mod.rs"),
        "{:?}",
        driver.imports
    );
    // A path written inline in a function body.
    assert!(
        reaches("crate::systemd::Notifier", "systemd.rs"),
        "{:?}",
        driver.imports
    );
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    edges.entry("a").or_default().insert("b");
    edges.entry("b").or_default().insert("c");
    edges.entry("c").or_default().insert("a");
    edges.entry("c").or_default().insert("d");
    assert_eq!(strongly_connected(&edges), vec![vec!["a", "b", "c"]]);
}
