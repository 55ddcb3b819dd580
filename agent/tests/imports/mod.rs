//! The import graph of `agent/src`, read with `syn`: which file names which, through
//! `use` lines and inline paths alike (`crate::…`, `super::…`, `self::…`, and a parent's
//! paths into its own child modules). Test code (`#[cfg(test)]` items and the files
//! they declare) is left out: tests may reach anywhere. Shared by `layers.rs` and
//! `core_fence.rs`.

#![allow(dead_code)] // shared by two test files; each uses part of it

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// A module path below the crate root (`["core", "node"]`); the root is `[]`.
pub type ModPath = Vec<String>;

/// One source file of the crate and the files it imports.
#[derive(Debug)]
pub struct File {
    /// Relative to `agent/src`, e.g. `core/node/mod.rs`.
    pub rel: String,
    /// The module the file is (its inline modules share the file).
    pub module: ModPath,
    /// Every path into the crate found in non-test code: (line, path as written,
    /// the file it resolves to).
    pub imports: Vec<Import>,
}

#[derive(Debug, Clone)]
pub struct Import {
    pub line: usize,
    pub written: String,
    pub target: String,
}

/// The crate's files and their imports.
pub struct Graph {
    pub files: Vec<File>,
}

/// The agent's `src/`.
fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Walks the module tree from `lib.rs` through `mod x;` items (not test ones).
fn walk(src: &Path, rel: &str, module: ModPath, out: &mut Vec<(String, ModPath, syn::File)>) {
    let path = src.join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    // A file's children live beside it (`lib.rs`, `mod.rs`) or in a folder of its name.
    let dir = if rel == "lib.rs" || rel == "main.rs" || rel.ends_with("/mod.rs") {
        Path::new(rel)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    } else {
        Path::new(rel).with_extension("")
    };
    let mut children = Vec::new();
    collect_mods(src, &file.items, &dir, &module, &mut children);
    out.push((rel.to_owned(), module, file));
    for (child_rel, child_mod) in children {
        walk(src, &child_rel, child_mod, out);
    }
}

fn collect_mods(
    src: &Path,
    items: &[syn::Item],
    dir: &Path,
    module: &ModPath,
    out: &mut Vec<(String, ModPath)>,
) {
    for item in items {
        let syn::Item::Mod(m) = item else { continue };
        if is_cfg_test(&m.attrs) {
            continue;
        }
        let name = m.ident.to_string();
        let mut child = module.clone();
        child.push(name.clone());
        match &m.content {
            // An inline module: its own `mod x;` items live in a folder of its name.
            Some((_, inner)) => collect_mods(src, inner, &dir.join(&name), &child, out),
            None => {
                let flat = dir.join(format!("{name}.rs"));
                let rel = if src.join(&flat).exists() {
                    flat
                } else {
                    dir.join(&name).join("mod.rs")
                };
                out.push((rel.to_string_lossy().into_owned(), child));
            }
        }
    }
}

/// Collects every path in non-test code, with the module it is written in.
struct Paths {
    module: ModPath,
    /// (module the path is written in, line, segments)
    found: Vec<(ModPath, usize, Vec<String>)>,
}

impl Paths {
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, line: usize) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, line);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.push(prefix, Some(n.ident.to_string()), line),
            syn::UseTree::Rename(r) => self.push(prefix, Some(r.ident.to_string()), line),
            syn::UseTree::Glob(_) => self.push(prefix, None, line),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, line);
                }
            }
        }
    }

    fn push(&mut self, prefix: &[String], last: Option<String>, line: usize) {
        let mut segs = prefix.to_vec();
        // `use a::b::{self}` names `a::b`.
        if let Some(l) = last.filter(|l| l != "self") {
            segs.push(l);
        }
        self.found.push((self.module.clone(), line, segs));
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            return;
        }
        self.module.push(m.ident.to_string());
        visit::visit_item_mod(self, m);
        self.module.pop();
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_cfg_test(&f.attrs) {
            visit::visit_item_fn(self, f);
        }
    }
    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if !is_cfg_test(&i.attrs) {
            visit::visit_item_impl(self, i);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(crate)`, `pub(in crate::core)`: who may see an item, not an import.
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if is_cfg_test(&u.attrs) {
            return;
        }
        let line = u.use_token.span.start().line;
        self.use_tree(&mut Vec::new(), &u.tree, line);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p
            .segments
            .first()
            .map(|s| s.ident.span().start().line)
            .unwrap_or(0);
        self.found.push((self.module.clone(), line, segs));
        visit::visit_path(self, p);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // Paths inside a macro's tokens (`tracing::info!(…)`, `matches!(…)`) are not
        // parsed by syn: read them as plain `a::b::c` runs of identifiers.
        let text = m.tokens.to_string().replace(' ', "");
        for run in text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
            if run.starts_with("crate::") || run.starts_with("super::") || run.starts_with("self::")
            {
                let segs = run
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                let line = m
                    .path
                    .segments
                    .first()
                    .map(|s| s.ident.span().start().line)
                    .unwrap_or(0);
                self.found.push((self.module.clone(), line, segs));
            }
        }
        visit::visit_macro(self, m);
    }
}

impl Graph {
    /// The agent's library, from `src/lib.rs`.
    pub fn read() -> Graph {
        Self::read_crate(&src(), "lib.rs")
    }

    /// Any crate of the workspace: its `src/` folder and its root file there.
    pub fn read_crate(src: &Path, root: &str) -> Graph {
        let mut parsed = Vec::new();
        walk(src, root, Vec::new(), &mut parsed);
        // Every module (files and inline ones) and the file it is in.
        let mut module_file: BTreeMap<ModPath, String> = BTreeMap::new();
        for (rel, module, file) in &parsed {
            module_file.insert(module.clone(), rel.clone());
            inline_modules(&file.items, module, rel, &mut module_file);
        }
        // `pub use` re-exports (a facade's `pub use node::Node`): a path through one
        // names the file that defines the item, not the facade.
        let mut reexports = Reexports::new();
        for (_, module, file) in &parsed {
            collect_reexports(&file.items, module, &module_file, &mut reexports);
        }
        let modules = Modules {
            files: module_file,
            reexports,
        };
        let files = parsed
            .iter()
            .map(|(rel, module, file)| {
                let mut paths = Paths {
                    module: module.clone(),
                    found: Vec::new(),
                };
                paths.visit_file(file);
                let mut imports: Vec<Import> = paths
                    .found
                    .into_iter()
                    .filter_map(|(at, line, segs)| {
                        let abs = absolute(&at, &segs, &modules.files)?;
                        let target = modules.resolve(&abs, 0)?;
                        (target != *rel).then(|| Import {
                            line,
                            written: segs.join("::"),
                            target,
                        })
                    })
                    .collect();
                imports.sort_by(|a, b| (a.line, &a.target).cmp(&(b.line, &b.target)));
                imports.dedup_by(|a, b| a.line == b.line && a.target == b.target);
                File {
                    rel: rel.clone(),
                    module: module.clone(),
                    imports,
                }
            })
            .collect();
        Graph { files }
    }

    /// Each file's module, by file.
    pub fn module_of(&self) -> BTreeMap<&str, &[String]> {
        self.files
            .iter()
            .map(|f| (f.rel.as_str(), f.module.as_slice()))
            .collect()
    }

    /// Files that import each other, directly or around a loop (Tarjan's SCCs).
    pub fn circles(&self) -> Vec<Vec<String>> {
        let edges: BTreeMap<&str, BTreeSet<&str>> = self
            .files
            .iter()
            .map(|f| {
                (
                    f.rel.as_str(),
                    f.imports.iter().map(|i| i.target.as_str()).collect(),
                )
            })
            .collect();
        strongly_connected(&edges)
    }
}

fn inline_modules(
    items: &[syn::Item],
    module: &ModPath,
    rel: &str,
    out: &mut BTreeMap<ModPath, String>,
) {
    for item in items {
        if let syn::Item::Mod(m) = item
            && let Some((_, inner)) = &m.content
            && !is_cfg_test(&m.attrs)
        {
            let mut child = module.clone();
            child.push(m.ident.to_string());
            out.insert(child.clone(), rel.to_owned());
            inline_modules(inner, &child, rel, out);
        }
    }
}

/// The absolute module path a path written in module `at` means, if it points into
/// this crate.
fn absolute(
    at: &ModPath,
    segs: &[String],
    modules: &BTreeMap<ModPath, String>,
) -> Option<Vec<String>> {
    let first = segs.first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => at.clone(),
        "super" => {
            let mut b = at.clone();
            let mut rest = segs;
            while rest.first().is_some_and(|s| s == "super") {
                b.pop()?;
                rest = &rest[1..];
            }
            b.extend(rest.iter().cloned());
            return Some(b);
        }
        // A path starting with one of this module's children (`validate::validate` in
        // `config/mod.rs`).
        name => {
            if segs.len() < 2 {
                return None; // a local name (`tasks` in `Heartbeat { tasks }`), not a path
            }
            let mut child = at.clone();
            child.push(name.to_owned());
            if !modules.contains_key(&child) {
                return None;
            }
            at.clone()
        }
    };
    let skip = usize::from(matches!(first.as_str(), "crate" | "self"));
    base.extend(segs.iter().skip(skip).cloned());
    Some(base)
}

/// Re-exported names: (module, name) → the absolute path they stand for.
type Reexports = BTreeMap<(ModPath, String), Vec<String>>;

struct Modules {
    files: BTreeMap<ModPath, String>,
    reexports: Reexports,
}

impl Modules {
    /// The file of the longest module prefix of `abs`, following re-exports.
    fn resolve(&self, abs: &[String], depth: usize) -> Option<String> {
        let n = (0..=abs.len())
            .rev()
            .find(|n| self.files.contains_key(&abs[..*n]))?;
        if depth < 8
            && let Some(name) = abs.get(n)
            && let Some(target) = self.reexports.get(&(abs[..n].to_vec(), name.clone()))
        {
            let mut through = target.clone();
            through.extend(abs[n + 1..].iter().cloned());
            if let Some(file) = self.resolve(&through, depth + 1) {
                return Some(file);
            }
        }
        self.files.get(&abs[..n]).cloned()
    }
}

fn collect_reexports(
    items: &[syn::Item],
    module: &ModPath,
    files: &BTreeMap<ModPath, String>,
    out: &mut Reexports,
) {
    fn flatten(
        tree: &syn::UseTree,
        prefix: &mut Vec<String>,
        out: &mut Vec<(String, Vec<String>)>,
    ) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                flatten(&p.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut segs = prefix.clone();
                segs.push(n.ident.to_string());
                out.push((n.ident.to_string(), segs));
            }
            syn::UseTree::Rename(r) => {
                let mut segs = prefix.clone();
                segs.push(r.ident.to_string());
                out.push((r.rename.to_string(), segs));
            }
            syn::UseTree::Glob(_) => {}
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    flatten(t, prefix, out);
                }
            }
        }
    }
    for item in items {
        match item {
            syn::Item::Use(u)
                if !matches!(u.vis, syn::Visibility::Inherited) && !is_cfg_test(&u.attrs) =>
            {
                let mut names = Vec::new();
                flatten(&u.tree, &mut Vec::new(), &mut names);
                for (name, segs) in names {
                    if let Some(abs) = absolute(module, &segs, files) {
                        out.insert((module.clone(), name), abs);
                    }
                }
            }
            syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => {
                if let Some((_, inner)) = &m.content {
                    let mut child = module.clone();
                    child.push(m.ident.to_string());
                    collect_reexports(inner, &child, files, out);
                }
            }
            _ => {}
        }
    }
}

pub fn strongly_connected<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<String>> {
    struct Tarjan<'a, 'e> {
        edges: &'e BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a, '_> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for &w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for &v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}
