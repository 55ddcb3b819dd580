//! docs/troubleshooting.md has an entry for everything the agent can tell an operator
//! is wrong, read from the agent's source so that a new one cannot be added silently:
//!
//! - every reason code (`Reason::as_str` in `agent/src/assess/reason.rs`) has a heading
//!   that names it in backticks (`` ### `no-quorum` ``);
//! - every kind of rate-limited log line (the variants of `Refusal` in
//!   `agent/src/ratelog.rs`) is named in backticks (`` `Handshake` ``), in the table of
//!   rate-limited lines;
//! - every warning and error log line the agent writes appears by its *key*: the first
//!   fixed part of its format string (between placeholders) that has at least two words,
//!   cut to six words, with whitespace collapsed. Sites are `warn!`/`error!` (with or
//!   without `tracing::`), `RateLog::warn(Refusal::…, …)`, and the `Level::WARN` /
//!   `Level::ERROR` events of `agent/src/events/describe.rs`, outside `#[cfg(test)]`
//!   modules. A line made only of placeholders (`"{line}"`, `"hook: {e}"`) has no key and
//!   is covered where its text is made (and by hand).
//!
//! The key rule is deliberately loose: a reworded tail, a new field or placeholder does
//! not break it; a new line, or a changed beginning, does, and then the doc needs the
//! new words.

use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read(rel: &str) -> String {
    fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The guide, whitespace collapsed.
fn guide() -> String {
    collapse(&read("docs/troubleshooting.md"))
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The codes `Reason::as_str` returns.
fn reason_codes(source: &str) -> Vec<String> {
    let body = source
        .split("fn as_str")
        .nth(1)
        .and_then(|s| s.split("\n    }\n").next())
        .unwrap_or_default();
    body.split("=> \"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The variants of `enum Refusal`.
fn refusal_kinds(source: &str) -> Vec<String> {
    let body = source
        .split("pub enum Refusal {")
        .nth(1)
        .and_then(|s| s.split("\n}").next())
        .unwrap_or_default();
    body.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.is_empty())
        .filter_map(|l| {
            let name: String = l
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            (name.starts_with(|c: char| c.is_ascii_uppercase())).then_some(name)
        })
        .collect()
}

/// Every `.rs` file under `dir`, except `tests/` folders.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "tests") {
                out.extend(sources(&p));
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The source without its inline `#[cfg(test)] mod … { … }` (they end files here; a
/// `#[cfg(test)] mod x;` declaration is not cut at).
fn without_tests(source: &str) -> &str {
    let inline = source.match_indices("#[cfg(test)]\nmod ").find(|(p, _)| {
        source[*p..]
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_end().ends_with('{'))
    });
    match inline {
        Some((p, _)) => &source[..p],
        None => source,
    }
}

/// The first string literal at or after `from` (its contents, escapes and `\`-newline
/// continuations resolved), if one starts within `within` bytes.
fn literal_after(source: &str, from: usize, within: usize) -> Option<String> {
    let rest = source.get(from..)?;
    let start = rest.find('"')?;
    if start > within {
        return None;
    }
    let mut out = String::new();
    let mut chars = rest[start + 1..].chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next() {
                Some('\n') => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => return None,
            },
            _ => out.push(c),
        }
    }
    None
}

/// A format string's key (see the module doc), if it has one.
fn key(format: &str) -> Option<String> {
    let mut segments = Vec::new();
    let mut seg = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                seg.push('{');
            }
            '{' => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                segments.push(std::mem::take(&mut seg));
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                seg.push('}');
            }
            _ => seg.push(c),
        }
    }
    segments.push(seg);
    segments.iter().find_map(|s| {
        let s = s.trim_matches(|c: char| c.is_whitespace() || ":;,.()".contains(c));
        let words: Vec<&str> = s.split_whitespace().collect();
        (words.len() >= 2).then(|| words.into_iter().take(6).collect::<Vec<_>>().join(" "))
    })
}

/// `(file:line, key)` of every warning and error log line with a key.
fn log_keys() -> Vec<(String, String)> {
    let root = repo();
    let mut out = Vec::new();
    for path in sources(&root.join("agent/src")) {
        let full = fs::read_to_string(&path).unwrap_or_default();
        let src = without_tests(&full);
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut sites: Vec<usize> = Vec::new();
        for pat in ["warn!(", "error!(", ".warn(Refusal::"] {
            sites.extend(src.match_indices(pat).map(|(i, _)| i + pat.len()));
        }
        if rel.ends_with("describe.rs") {
            for pat in ["Level::WARN", "Level::ERROR"] {
                sites.extend(src.match_indices(pat).map(|(i, _)| i + pat.len()));
            }
        }
        for at in sites {
            // The macros' arms in describe.rs pass a level, not a line.
            let Some(lit) = literal_after(src, at, 600) else {
                continue;
            };
            if let Some(k) = key(&lit) {
                let line = src[..at].lines().count();
                out.push((format!("{rel}:{line}"), k));
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

#[test]
fn every_reason_code_has_an_entry() {
    let codes = reason_codes(&read("agent/src/assess/reason.rs"));
    assert!(codes.len() >= 15, "reason codes not found: {codes:?}");
    let doc = read("docs/troubleshooting.md");
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| {
            !doc.lines()
                .any(|l| l.starts_with('#') && l.contains(&format!("`{c}`")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md has no heading for the reason codes {missing:?}"
    );
}

#[test]
fn every_rate_limited_kind_has_an_entry() {
    let kinds = refusal_kinds(&read("agent/src/ratelog.rs"));
    assert!(kinds.len() >= 10, "Refusal variants not found: {kinds:?}");
    let doc = read("docs/troubleshooting.md");
    let missing: Vec<&String> = kinds
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md does not name the rate-limited kinds {missing:?}"
    );
}

#[test]
fn every_warning_and_error_line_has_an_entry() {
    let keys = log_keys();
    assert!(keys.len() >= 30, "log lines not found: {keys:?}");
    let doc = guide();
    let missing: Vec<String> = keys
        .iter()
        .filter(|(_, k)| !doc.contains(k.as_str()))
        .map(|(at, k)| format!("{at}: {k:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md does not mention these log lines:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_readers_find_what_they_look_for() {
    assert_eq!(key("mount {}: {}: {}"), None);
    assert_eq!(key("{line}"), None);
    assert_eq!(
        key("cannot read the app version: {e}").as_deref(),
        Some("cannot read the app version")
    );
    assert_eq!(
        key("refused {remote}: {reason}").as_deref(),
        None,
        "one-word segments have no key"
    );
    assert_eq!(
        key("{peer} is in this node's member set but holds another").as_deref(),
        Some("is in this node's member set")
    );
    let src =
        "x tracing::warn!(\n  peer = %n,\n  \"closed the link \\\n   to {node}: revoked\"\n);";
    assert_eq!(
        literal_after(src, src.find("warn!(").unwrap() + 6, 600).as_deref(),
        Some("closed the link to {node}: revoked")
    );
    assert_eq!(
        without_tests("a\n#[cfg(test)]\nmod x;\nb\n#[cfg(test)]\nmod tests {\nc\n}\n"),
        "a\n#[cfg(test)]\nmod x;\nb\n"
    );
    assert_eq!(
        reason_codes(
            "fn as_str(self) {\n  match self {\n A => \"a\",\n B => \"b-c\",\n  }\n    }\n"
        ),
        ["a", "b-c"]
    );
    assert_eq!(
        refusal_kinds("pub enum Refusal {\n    /// doc\n    Address = 0,\n    Busy,\n}\n"),
        ["Address", "Busy"]
    );
}
