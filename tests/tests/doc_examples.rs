//! Every example in README.md and docs/*.md is true: the docs cannot rot.
//!
//! - Every ```toml block is an agent config and passes the real
//!   `quorate-agent --check-config`: a block with `[tls]` as a complete file, any other
//!   as a fragment added to a minimal valid config (its top-level keys win over the
//!   base's). `/etc/quorate/` and `/var/lib/quorate` are rewritten to a temporary
//!   directory holding a real CA and node certificates made with `quorate ca`, a
//!   revocation list, and executable hooks, so the paths the docs show are the ones
//!   checked.
//! - A block whose first line is a comment `file: PATH` (`# file: docs/recipes/x.cfg`,
//!   `// file: …`, `; file: …`, `<!-- file: … -->`) is a verbatim excerpt: its other
//!   lines are contiguous lines of that repository file (trailing spaces aside).
//! - Every `quorate-agent …` command in a ```sh, ```bash, ```shell or ```console block
//!   runs: `--check-config` against a valid config (its `--config` replaced),
//!   `--print-default-config` as is, anything else with `--help` appended (clap refuses
//!   an unknown flag or value before it gets to `--help`).
//! - Every ```json block parses as JSON; every ```nft block passes `nft -c` (the
//!   nftables parser; run in a user and network namespace of its own when possible),
//!   every ```haproxy block that is not an excerpt `haproxy -c`; each skipped with a
//!   note where the tool is not installed.
//! - A block whose info string has the word `no-check` (```` ```toml no-check ````) is
//!   none of these: another tool's TOML, a deliberately wrong example. CONTRIBUTING.md
//!   describes the convention.
//!
//! `quorate …` commands are checked by the operator tool's own unit test
//! (`tui/src/cli/doc_commands.rs`), which can use its clap definition.
//!
//! Needs the binaries: `cargo build --workspace --bins`.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use quorate_tests::{bin, ca_init, ca_issue, run_ok};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// docs/*.md and README.md.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.push(root.join("README.md"));
    docs.sort();
    docs
}

/// A fenced code block: the document (relative), the info string's words, the line of
/// its first body line, and its body with the fence's indentation removed.
#[derive(Debug)]
struct Block {
    doc: String,
    info: Vec<String>,
    line: usize,
    body: Vec<String>,
}

impl Block {
    fn lang(&self) -> &str {
        self.info.first().map(String::as_str).unwrap_or("")
    }

    fn unchecked(&self) -> bool {
        self.info.iter().any(|w| w == "no-check")
    }

    fn at(&self, offset: usize) -> String {
        format!("{}:{}", self.doc, self.line + offset)
    }
}

fn blocks(doc: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(&str, usize, Block)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        if let Some((fence, ind, block)) = &mut open {
            if trimmed.starts_with(*fence) && trimmed.trim_matches(['`', '~']).is_empty() {
                if let Some((_, _, b)) = open.take() {
                    out.push(b);
                }
            } else {
                let cut = (*ind).min(raw.len());
                let body = match raw.get(..cut) {
                    Some(head) if head.trim().is_empty() => &raw[cut..],
                    _ => trimmed,
                };
                block.body.push(body.to_owned());
            }
            continue;
        }
        for fence in ["```", "~~~"] {
            if let Some(info) = trimmed.strip_prefix(fence) {
                let block = Block {
                    doc: doc.to_owned(),
                    info: info
                        .trim_start_matches(['`', '~'])
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                    line: i + 2,
                    body: Vec::new(),
                };
                open = Some((fence, indent, block));
                break;
            }
        }
    }
    out
}

fn all_blocks() -> Vec<Block> {
    let root = repo();
    documents()
        .iter()
        .flat_map(|doc| {
            let text = fs::read_to_string(doc).unwrap_or_default();
            let rel = doc.strip_prefix(&root).unwrap_or(doc).display().to_string();
            blocks(&rel, &text)
        })
        .collect()
}

/// The repository path an excerpt block names on its first line, if it is one.
fn excerpt_of(block: &Block) -> Option<String> {
    let first = block.body.first()?.trim();
    let rest = ["#", "//", ";", "--", "<!--"]
        .iter()
        .find_map(|c| first.strip_prefix(c))?
        .trim_start();
    let path = rest
        .strip_prefix("file:")?
        .trim()
        .trim_end_matches("-->")
        .trim();
    (!path.is_empty()).then(|| path.to_owned())
}

// ---- the temporary /etc/quorate ----------------------------------------------------

/// A stand-in for `/etc/quorate` and `/var/lib/quorate`: a real CA, certificates for
/// every node id the docs' configs name, a revocation list, executable hooks.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(nodes: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc/quorate");
        let tls = etc.join("tls");
        ca_init(&tls);
        for node in nodes {
            ca_issue(&tls, node);
        }
        // A revocation list of this CA that does not revoke any node's certificate.
        ca_issue(&tls, "revoked-in-docs");
        run_ok(
            Command::new(bin("quorate"))
                .args(["ca", "revoke", "--dir"])
                .arg(&tls)
                .arg("revoked-in-docs"),
        );
        let hooks = etc.join("hooks");
        fs::create_dir_all(&hooks).unwrap();
        for hook in ["primary", "secondary", "fault"] {
            let path = hooks.join(hook);
            fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::create_dir_all(dir.path().join("var/lib/quorate")).unwrap();
        Self { dir }
    }

    /// `text` with `/etc/quorate/` and `/var/lib/quorate` moved here.
    fn rewrite(&self, text: &str) -> String {
        let base = self.dir.path().display().to_string();
        text.replace("/etc/quorate/", &format!("{base}/etc/quorate/"))
            .replace("/var/lib/quorate", &format!("{base}/var/lib/quorate"))
    }

    /// The minimal valid config fragments are added to (node n1, two peers).
    fn base_top(&self) -> Vec<(String, String)> {
        [
            ("cluster", "\"docs\""),
            ("node", "\"n1\""),
            ("peers", "[\"10.0.0.12:7700\", \"10.0.0.13:7700\"]"),
            ("state_dir", "\"/var/lib/quorate\""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), self.rewrite(v)))
        .collect()
    }

    fn base_tls(&self) -> String {
        self.rewrite(
            "[tls]\nca = \"/etc/quorate/tls/ca.pem\"\ncert = \"/etc/quorate/tls/n1.pem\"\nkey = \"/etc/quorate/tls/n1.key\"\n",
        )
    }

    /// A complete valid config file.
    fn base_config(&self) -> PathBuf {
        let path = self.dir.path().join("base.toml");
        let top: String = self
            .base_top()
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        fs::write(&path, format!("{top}\n{}", self.base_tls())).unwrap();
        path
    }

    /// The file a block is checked as: itself if complete, else the base with it.
    fn config_for(&self, block: &Block) -> Result<String, String> {
        let text = self.rewrite(&(block.body.join("\n") + "\n"));
        if block.body.iter().any(|l| l.trim() == "[tls]") {
            return Ok(text);
        }
        let header = text
            .lines()
            .position(|l| l.trim_start().starts_with('['))
            .unwrap_or(text.lines().count());
        let lines: Vec<&str> = text.lines().collect();
        let top = lines[..header].join("\n");
        let tables = lines[header..].join("\n");
        let set: toml::Table =
            toml::from_str(&top).map_err(|e| format!("its top-level keys are not TOML: {e}"))?;
        let base: String = self
            .base_top()
            .iter()
            .filter(|(k, _)| !set.contains_key(k))
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        Ok(format!("{base}{top}\n\n{}\n{tables}\n", self.base_tls()))
    }

    fn check(&self, name: &str, config: &str) -> Result<(), String> {
        let path = self.dir.path().join(format!("{name}.toml"));
        fs::write(&path, config).unwrap();
        let out = Command::new(bin("quorate-agent"))
            .arg("--check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "--check-config: {}\n{}--- checked as:\n{config}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// Node ids the docs' configs name (`node = "…"`), n1, and this machine's short
/// hostname (the default `node` of a config that sets none).
fn node_ids(blocks: &[Block]) -> Vec<String> {
    let mut ids = vec!["n1".to_owned()];
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim().split('.').next().unwrap_or_default();
    if !host.is_empty()
        && host.len() <= 63
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && host != "n1"
    {
        ids.push(host.to_ascii_lowercase());
    }
    for b in blocks.iter().filter(|b| b.lang() == "toml") {
        for l in &b.body {
            if let Some(v) = l.trim().strip_prefix("node = \"")
                && let Some(id) = v.split('"').next()
                && !ids.iter().any(|x| x == id)
            {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

#[test]
fn every_toml_block_is_a_valid_agent_config() {
    let blocks = all_blocks();
    let root = Root::new(&node_ids(&blocks));
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, b) in blocks.iter().enumerate() {
        if b.lang() != "toml" || b.unchecked() || excerpt_of(b).is_some() {
            continue;
        }
        checked += 1;
        let result = root
            .config_for(b)
            .and_then(|config| root.check(&format!("block{i}"), &config));
        if let Err(e) = result {
            failures.push(format!("{}: {e}", b.at(0)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 5, "only {checked} toml blocks found");
}

#[test]
fn a_wrong_config_block_is_caught() {
    let root = Root::new(&["n1".to_owned()]);
    let block = |body: &str| Block {
        doc: "x.md".into(),
        info: vec!["toml".into()],
        line: 1,
        body: body.lines().map(str::to_owned).collect(),
    };
    let ok = |b: &Block| root.config_for(b).and_then(|c| root.check("t", &c));
    assert!(ok(&block("[timing]\nlease = \"300ms\"")).is_ok());
    assert!(ok(&block("priority = 5\n[http]\nallow = [\"10.0.0.5/32\"]")).is_ok());
    assert!(ok(&block("[timing]\nlease = \"fast\"")).is_err());
    assert!(ok(&block("[timing]\nleese = \"300ms\"")).is_err());
    assert!(
        ok(&block("node = \"n9\"")).is_err(),
        "no certificate names n9"
    );
}

#[test]
fn every_excerpt_is_a_verbatim_part_of_its_file() {
    let mut failures = Vec::new();
    for b in all_blocks() {
        let Some(path) = excerpt_of(&b) else {
            continue;
        };
        let Ok(file) = fs::read_to_string(repo().join(&path)) else {
            failures.push(format!("{}: {path} does not exist", b.at(0)));
            continue;
        };
        if let Err(e) = is_excerpt(&b.body[1..], &file) {
            failures.push(format!("{}: not an excerpt of {path}: {e}", b.at(0)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether `lines` are contiguous lines of `file` (trailing whitespace aside).
fn is_excerpt(lines: &[String], file: &str) -> Result<(), String> {
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    let file: Vec<&str> = file.lines().map(str::trim_end).collect();
    if lines.is_empty() {
        return Err("the excerpt is empty".into());
    }
    if file.windows(lines.len()).any(|w| w == lines.as_slice()) {
        return Ok(());
    }
    // Say where it stops matching, from the best starting point.
    let first_bad = file
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == lines[0])
        .map(|(start, _)| {
            lines
                .iter()
                .zip(&file[start..])
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0);
    Err(format!(
        "line {} of the excerpt, {:?}, does not follow in the file",
        first_bad + 1,
        lines.get(first_bad).unwrap_or(&"")
    ))
}

#[test]
fn the_excerpt_check_has_teeth() {
    let file = "a\nb\nc\n";
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert!(is_excerpt(&v(&["b", "c"]), file).is_ok());
    assert!(is_excerpt(&v(&["a", "c"]), file).is_err());
    assert!(is_excerpt(&v(&["b  "]), file).is_ok());
    assert!(is_excerpt(&v(&[]), file).is_err());
    let b = Block {
        doc: "x.md".into(),
        info: vec!["haproxy".into()],
        line: 1,
        body: v(&["# file: docs/recipes/haproxy.cfg", "x"]),
    };
    assert_eq!(excerpt_of(&b).as_deref(), Some("docs/recipes/haproxy.cfg"));
    let b = Block {
        body: v(&["<!-- file: docs/x.xml -->"]),
        ..b
    };
    assert_eq!(excerpt_of(&b).as_deref(), Some("docs/x.xml"));
}

#[test]
fn every_json_block_parses() {
    let mut failures = Vec::new();
    for b in all_blocks() {
        if b.lang() != "json" || b.unchecked() || excerpt_of(&b).is_some() {
            continue;
        }
        // One document, or several in a row (JSON Lines, as `events --json` prints).
        let text = b.body.join("\n");
        let docs = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
        let mut count = 0;
        for doc in docs {
            match doc {
                Ok(_) => count += 1,
                Err(e) => {
                    failures.push(format!("{}: {e}", b.at(0)));
                    break;
                }
            }
        }
        if count == 0 {
            failures.push(format!("{}: no JSON document", b.at(0)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `nft -c -f FILE`: in a namespace of its own if `unshare` allows, else as is.
fn nft_check(file: &Path) -> Option<Result<(), String>> {
    let run = |wrap: bool| {
        let mut cmd = if wrap {
            let mut c = Command::new("unshare");
            c.args(["-rn", "nft"]);
            c
        } else {
            Command::new("nft")
        };
        cmd.arg("-c").arg("-f").arg(file).output()
    };
    let out = match run(true) {
        Ok(o) if o.status.success() => return Some(Ok(())),
        Ok(o) if !String::from_utf8_lossy(&o.stderr).contains("unshare") => o,
        _ => run(false).ok()?,
    };
    if out.status.success() {
        Some(Ok(()))
    } else if out.status.code() == Some(127) {
        None
    } else {
        Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}

#[test]
fn every_nft_block_is_valid_nftables() {
    if Command::new("nft").arg("--version").output().is_err() {
        eprintln!("nft is not installed: the ```nft blocks are not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, b) in all_blocks().iter().enumerate() {
        if b.lang() != "nft" || b.unchecked() || excerpt_of(b).is_some() {
            continue;
        }
        let file = dir.path().join(format!("block{i}.nft"));
        fs::write(&file, b.body.join("\n") + "\n").unwrap();
        match nft_check(&file) {
            Some(Ok(())) => checked += 1,
            Some(Err(e)) => failures.push(format!("{}: {e}", b.at(0))),
            None => failures.push(format!("{}: nft could not run", b.at(0))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 1, "no nft block found");
    let bad = dir.path().join("bad.nft");
    fs::write(
        &bad,
        "table inet t {\n chain c {\n  udp dprt 7700 drop\n }\n}\n",
    )
    .unwrap();
    assert!(matches!(nft_check(&bad), Some(Err(_))), "nft -c has teeth");
}

#[test]
fn every_haproxy_block_is_a_valid_haproxy_config() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        eprintln!("haproxy is not installed: the ```haproxy blocks are not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, b) in all_blocks().iter().enumerate() {
        if b.lang() != "haproxy" || b.unchecked() || excerpt_of(b).is_some() {
            continue;
        }
        let file = dir.path().join(format!("block{i}.cfg"));
        fs::write(&file, b.body.join("\n") + "\n").unwrap();
        let out = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{}: haproxy -c: {}{}",
                b.at(0),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- quorate-agent command lines -----------------------------------------------------

/// The command lines of a shell block, `\` continuations joined, here-documents skipped;
/// in ```console blocks only `$ ` lines.
fn shell_lines(block: &Block) -> Vec<(usize, String)> {
    let lang = block.lang();
    if !matches!(lang, "sh" | "bash" | "shell" | "console") || block.unchecked() {
        return Vec::new();
    }
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut heredoc: Option<String> = None;
    let mut continued = false;
    for (i, line) in block.body.iter().enumerate() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let mut text = line.as_str();
        if !continued && lang == "console" {
            match text.strip_prefix("$ ") {
                Some(rest) => text = rest,
                None => continue,
            }
        }
        let body = text.trim().trim_end_matches('\\').trim_end();
        match out.last_mut() {
            Some((_, last)) if continued => {
                last.push(' ');
                last.push_str(body);
            }
            _ => out.push((block.line + i, body.to_owned())),
        }
        continued = text.trim_end().ends_with('\\');
        if let Some(pos) = text.find("<<") {
            let word: String = text[pos + 2..]
                .trim_start_matches('-')
                .trim()
                .trim_matches(['\'', '"'])
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                heredoc = Some(word);
            }
        }
    }
    out
}

/// The simple commands of a shell line (split at `;`, `&&`, `||`, `|`, `&`, `$(`,
/// parentheses and backticks; quotes kept together; comments dropped).
fn simple_commands(line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|q| *q != '\''));
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => break,
            '$' if chars.peek() == Some(&'(') => {
                chars.next();
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                out.push(std::mem::take(&mut words));
            }
            ' ' | '\t' | ';' | '&' | '|' | '(' | ')' | '`' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if c != ' ' && c != '\t' {
                    out.push(std::mem::take(&mut words));
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    out.push(words);
    out.retain(|w| !w.is_empty());
    out
}

/// The words after wrappers (`sudo`, `runuser -u U --`, `ssh HOST`, `VAR=x`…).
fn unwrap(words: &[String]) -> &[String] {
    let mut w = words;
    loop {
        match w.first().map(String::as_str) {
            Some("sudo" | "exec" | "time" | "if" | "then" | "do" | "else" | "!" | "command") => {
                w = &w[1..];
            }
            Some("runuser") => match w.iter().position(|x| x == "--") {
                Some(p) => w = &w[p + 1..],
                None => return &[],
            },
            Some("ssh") => {
                let mut i = 1;
                while w.get(i).is_some_and(|x| x.starts_with('-')) {
                    i += 1;
                }
                w = w.get(i + 1..).unwrap_or(&[]);
            }
            Some(x)
                if x.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }) =>
            {
                w = &w[1..];
            }
            _ => return w,
        }
    }
}

/// Runs one `quorate-agent` command from the docs the harmless way (see the module doc).
fn run_agent_command(args: &[String], base: &Path) -> Result<(), String> {
    let mut args: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with('[') && !a.ends_with(']'))
        .map(|a| match a.as_str() {
            "FILE" | "PATH" => base.display().to_string(),
            _ => a.clone(),
        })
        .collect();
    let mut cmd = Command::new(bin("quorate-agent"));
    if args.iter().any(|a| a == "--check-config") {
        if let Some(p) = args.iter().position(|a| a == "--config") {
            args.drain(p..(p + 2).min(args.len()));
        }
        args.retain(|a| !a.starts_with("--config="));
        cmd.args(&args).arg("--config").arg(base);
    } else if args.iter().any(|a| a == "--print-default-config") {
        cmd.args(&args);
    } else {
        cmd.args(&args).arg("--help");
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn every_quorate_agent_command_runs() {
    let blocks = all_blocks();
    let root = Root::new(&["n1".to_owned()]);
    let base = root.base_config();
    let mut failures = Vec::new();
    let mut checked = 0;
    for b in &blocks {
        for (line, text) in shell_lines(b) {
            for words in simple_commands(&text) {
                let words = unwrap(&words);
                if words.first().is_some_and(|w| w == "quorate-agent") {
                    checked += 1;
                    if let Err(e) = run_agent_command(&words[1..], &base) {
                        failures.push(format!("{}:{line}: `{text}`: {e}", b.doc));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 1, "no quorate-agent command found in the docs");
    // The checker has teeth.
    let w = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert!(run_agent_command(&w("--check-config"), &base).is_ok());
    assert!(run_agent_command(&w("--chek-config"), &base).is_err());
    assert!(run_agent_command(&w("--log-format loud"), &base).is_err());
}

#[test]
fn shell_lines_are_split_into_commands() {
    let b = Block {
        doc: "x.md".into(),
        info: vec!["sh".into()],
        line: 10,
        body: [
            "runuser -u quorate -- quorate-agent --check-config   # as the agent",
            "out=$(quorate task should-run x); rc=$?",
            "quorate-agent \\",
            "  --print-default-config | less",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
    };
    let lines = shell_lines(&b);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2],
        (12, "quorate-agent --print-default-config | less".to_owned())
    );
    let first = simple_commands(&lines[0].1);
    assert_eq!(unwrap(&first[0]), ["quorate-agent", "--check-config"]);
    let second = simple_commands(&lines[1].1);
    assert_eq!(unwrap(&second[1]), ["quorate", "task", "should-run", "x"]);
}
