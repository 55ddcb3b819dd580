//! What a config check found: every error (`file:line: reason`, in file order), the
//! warnings and notes that do not stop the agent, and the text helpers that give a value
//! its line (`key_at`, `key_line`) or blank a refused value out so the rest can be read.
//!
//! Owns the types callers see ([`ConfigError`], [`ConfigErrors`], [`ConfigWarning`],
//! [`Checked`]) and the collector `validate.rs` fills. It must never judge a value: the
//! rules live in `validate.rs`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::model::Config;

/// One error in a config file. Its message is one line: `file:line: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl ConfigError {
    pub(super) fn line(&self) -> usize {
        match self {
            ConfigError::Read { .. } => 0,
            ConfigError::Invalid { line, .. } => *line,
        }
    }
}

/// Every error found in a config file, in file order; never empty. Displayed one per
/// line. The file changes nothing while it has any.
#[derive(Debug)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    fn new(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(ConfigError::line);
        Self { errors }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false (kept for the `len` convention).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self { errors: vec![e] }
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Something the operator should act on that does not stop the agent (a certificate
/// that ends within 30 days): `--check-config` prints `warning: file:line: reason`, the
/// agent logs it at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct ConfigWarning {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// A config that passed its check, with what the check wants said about it.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
    /// What was derived or skipped (the node id from the hostname, the advertised
    /// address and where it came from, this node's own entry in `peers`).
    pub notes: Vec<String>,
}

/// The dotted key (`timing.lease`) of the `key = value` line holding `offset`, for
/// messages from the TOML parser that name only the value.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

/// The 1-based line of `key = …` in `[table]` (`None`: before any table), for values
/// serde reads without a span.
pub(super) fn key_line(text: &str, table: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            // `[hooks]  # a comment` and `[[task]]` alike: the name inside the brackets.
            let name = l
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default();
            current = Some(name.trim().to_owned());
            continue;
        }
        let is_key = l
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_key && current.as_deref() == table {
            return Some(i + 1);
        }
    }
    None
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Blanks (with spaces, keeping every offset) the lines of `span`, and when it starts at
/// a table header the whole table, so serde can read the rest. False if nothing changed.
pub(super) fn blank(work: &mut String, span: Range<usize>) -> bool {
    let len = work.len();
    let start = work[..span.start.min(len)]
        .rfind('\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let line_end = |at: usize| work[at..].find('\n').map(|i| at + i).unwrap_or(len);
    let mut end = line_end(span.end.max(span.start).min(len));
    if work[start..].trim_start().starts_with('[') {
        let mut at = end;
        while at < len {
            let next = at + 1;
            if next >= len || work[next..].trim_start().starts_with('[') {
                break;
            }
            at = line_end(next);
        }
        end = at.min(len);
    }
    let mut bytes = std::mem::take(work).into_bytes();
    let mut changed = false;
    for b in &mut bytes[start..end] {
        if *b != b'\n' && *b != b' ' {
            *b = b' ';
            changed = true;
        }
    }
    // Only ASCII spaces were written over whole lines: still UTF-8.
    *work = String::from_utf8(bytes).unwrap_or_default();
    changed
}

/// What one check found so far.
pub(super) struct Report<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigWarning>,
    pub(super) notes: Vec<String>,
}

impl<'a> Report<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str) -> Self {
        Self {
            path,
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(super) fn line(&self, span: Option<Range<usize>>) -> usize {
        span.map(|s| line_of(self.text, s.start)).unwrap_or(1)
    }

    pub(super) fn error_line(&mut self, line: usize, reason: String) {
        self.errors.push(ConfigError::Invalid {
            path: self.path.to_owned(),
            line,
            // toml's messages can span lines; an operator's terminal wants one.
            reason: reason.trim().replace('\n', "; "),
        });
    }

    pub(super) fn error(&mut self, span: Range<usize>, reason: String) {
        let line = self.line(Some(span));
        self.error_line(line, reason);
    }

    pub(super) fn warn(&mut self, span: Range<usize>, reason: String) {
        let line = self.line(Some(span));
        self.warnings.push(ConfigWarning {
            path: self.path.to_owned(),
            line,
            reason,
        });
    }

    pub(super) fn into_errors(self) -> ConfigErrors {
        ConfigErrors::new(self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::key_line;

    #[test]
    fn key_line_finds_a_key_under_a_header_with_a_comment() {
        let text = "cluster = \"c\"\n[hooks]   # notify_master\non_primary = \"/x\"\n\
                    [[task]]\nname = \"t\"\n";
        assert_eq!(key_line(text, Some("hooks"), "on_primary"), Some(3));
        assert_eq!(key_line(text, Some("task"), "name"), Some(5));
        assert_eq!(key_line(text, None, "cluster"), Some(1));
        assert_eq!(key_line(text, Some("hooks"), "on_fault"), None);
    }
}
