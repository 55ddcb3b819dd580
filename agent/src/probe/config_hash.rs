//! `[[config]]` sets: which files a set names on this node, their BLAKE3 hashes after
//! dropping ignored lines, a watcher that reports a new [`ProbeReport::Config`] whenever a
//! hash changes. Comparing this node's hashes with its peers' (drift) is judgement: it is
//! `assess::config`'s.
//!
//! It owns: glob expansion of a set's paths, per-file hashing, the notify watches on the
//! sets' directories and the thread that rehashes. It must never send or log a file's
//! contents (only paths, 16-byte hashes and I/O error kinds leave this module), never read
//! files or directories on the async runtime (a hung NFS share would stall heartbeats:
//! all filesystem work is on the watcher's own thread, and the hashing on a job thread
//! with a timeout, so a hung read is reported rather than silent; adding watches is not
//! timed), and never decide anything: `assess` folds and compares the reports.
//!
//! Hashing is byte-exact apart from the dropped lines: CRLF and LF files hash differently,
//! as do a missing and a present trailing newline, and trailing whitespace. A file that an
//! editor converted to CRLF on one node *is* different there, and the application may
//! well read it differently.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use glob::{MatchOptions, Pattern};
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use regex::Regex;
use tokio::sync::mpsc::Sender;

use super::{ConfigSetReport, ProbeReport, runner};
use crate::clock;
use crate::config::ConfigSet;

/// Bigger files are not hashed (the set reports an error naming them): config files are
/// small, and this keeps a glob that catches a log or a dump from eating memory and CPU.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// How long the directories must stay quiet after an event before the sets are rehashed.
/// An editor's save (write temp, fsync, rename, chmod) is a burst of events within a few
/// milliseconds; waiting this long turns it into one rehash, and stays far inside the
/// 1 s budget from an edit to drift shown on every node.
const QUIET: Duration = Duration::from_millis(50);

/// Upper bound on the wait after the first event, so a directory that never stays quiet
/// (a busy writer next to a watched file) still gets its files rehashed.
const MAX_DELAY: Duration = Duration::from_millis(200);

/// Safety net: rehash every set this often even without any event. inotify misses
/// changes made on another NFS client (events are local to the kernel that made the
/// change), changes behind a symlink whose target lives in an unwatched directory, and
/// changes lost to a queue overflow that raced with our read.
const SAFETY_NET: Duration = Duration::from_secs(60);

/// While some directory could not be watched (inotify watch limit, permission), rescan
/// this often instead of waiting for the safety net, and retry the watch.
const RETRY: Duration = Duration::from_secs(10);

/// Without any watcher (inotify unavailable, e.g. out of inotify instances), poll this
/// often: the 1 s end-to-end budget is then spent here, and rehashing config files
/// once a second is cheap.
const POLL_WITHOUT_WATCHER: Duration = Duration::from_secs(1);
/// Longest a full rehash may take before the sets are reported failing (a config file on
/// a hung NFS mount blocks its read forever).
const HASH_TIMEOUT: Duration = Duration::from_secs(10);

/// How set and file hashes are shown: the first 6 bytes, 12 hex digits.
const SHORT_HASH_BYTES: usize = 6;

/// The hash of one file's text after dropping every line that matches any of `ignore`:
/// BLAKE3 over the kept lines' original bytes (newlines included), truncated to 16 bytes.
///
/// Lines are split on `\n`. A line is matched without its line ending (`\n`, or `\r\n`,
/// so `$`-anchored patterns work on CRLF files too), and through a lossy UTF-8 conversion
/// when it is not UTF-8; the hash always covers the original bytes. Nothing else is
/// normalised: CRLF and LF versions of a file differ.
pub fn hash_file(text: &[u8], ignore: &[Regex]) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    if ignore.is_empty() {
        // Every line is kept, in order: that is the whole text.
        hasher.update(text);
    } else {
        for line in text.split_inclusive(|&b| b == b'\n') {
            let bare = line.strip_suffix(b"\n").unwrap_or(line);
            let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
            let bare = String::from_utf8_lossy(bare);
            if !ignore.iter().any(|re| re.is_match(&bare)) {
                hasher.update(line);
            }
        }
    }
    truncate(hasher.finalize())
}

/// Expands `set`'s paths and globs, reads and hashes every regular file they name.
///
/// A glob that matches nothing and a literal path that does not exist are not errors:
/// the files are simply absent, and the comparison (`assess::config`) shows which nodes
/// lack them. A file that cannot be read (or is bigger than [`MAX_FILE_BYTES`], or is a
/// FIFO or device) makes `error` say so, naming it; the other files are still hashed.
/// Directories matched by a glob are skipped. Globs follow the shell: `*` does not match
/// a leading dot, so editor swap files (`.x.conf.swp`) are not part of a set unless named
/// with the dot.
pub fn hash_set(set: &ConfigSet) -> ConfigSetReport {
    let mut files: BTreeMap<String, [u8; 16]> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    for raw in &set.paths {
        let spec = match Spec::parse(raw) {
            Ok(spec) => spec,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for path in spec.expand(&mut errors) {
            match read_capped(&path) {
                Ok(Some(text)) => {
                    files.insert(
                        path.to_string_lossy().into_owned(),
                        hash_file(&text, &set.ignore),
                    );
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    errors.dedup();
    ConfigSetReport {
        name: set.name.clone(),
        files: files
            .into_iter()
            .map(|(path, hash)| proto::FileHash { path, hash })
            .collect(),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

/// The gossiped form of a report.
pub fn to_state(report: &ConfigSetReport) -> proto::ConfigSetState {
    proto::ConfigSetState {
        name: report.name.clone(),
        files: report.files.clone(),
        error: report.error.clone(),
    }
}

/// How a hash is shown to operators: the first 6 bytes in hex.
pub fn short_hash(hash: &[u8]) -> String {
    hash.iter()
        .take(SHORT_HASH_BYTES)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keeps the config watcher running; dropping it stops the watcher thread (at its next
/// wake-up, within milliseconds unless it is stuck reading a hung file).
#[must_use = "the config watcher stops when this handle is dropped"]
#[derive(Debug)]
pub struct ConfigWatch {
    wake: mpsc::Sender<Wake>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        // The thread may already be gone (receiver closed); nothing to do then.
        let _ = self.wake.send(Wake::Stop);
    }
}

/// Starts watching `sets`: a thread of its own hashes every set, sends the first
/// [`ProbeReport::Config`] at once, and another whenever any hash (or error) changes.
///
/// Watches are on the parent directory of every path and glob, non-recursive, not on
/// the files: an editor that saves by writing a temporary file and renaming it over the
/// original (vim, `sed -i`) would leave a watch on the file itself pointing at the
/// unlinked old inode. A directory that does not exist yet is handled by watching its
/// nearest existing ancestor, so a `mkdir` shows at once (no polling delay); when it
/// appears the watch moves down to it, and back up if it is removed.
///
/// Why not `notify-debouncer-full`: it exists to stitch renames into per-file events and
/// keeps a file-id cache of the watched trees. Here every relevant event triggers the
/// same action (rehash all sets, which is cheap, and compare with the last report), so
/// the rename bookkeeping would be unused; a 50 ms quiet window on our own thread is
/// all the debouncing needed, and it keeps the latency bound visible in this file.
///
/// The thread ends when the returned handle is dropped or the receiver of `tx` is gone.
/// Reading a file on a hung NFS share blocks this thread (only it): no report is sent
/// until the read returns.
pub fn spawn(sets: &[ConfigSet], tx: Sender<ProbeReport>) -> anyhow::Result<ConfigWatch> {
    let sets = sets.to_vec();
    let interest = Arc::new(Interest::new(&sets));
    let (wake_tx, wake_rx) = mpsc::channel();

    // Creating the watcher does not touch the watched paths (inotify_init only); adding
    // watches does, so that happens on the thread.
    let handler_tx = wake_tx.clone();
    let handler_interest = Arc::clone(&interest);
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        // Filtered here, on notify's thread, so the queue only ever holds wake-ups that
        // matter: the directories may see heavy unrelated traffic (every open of a file
        // in /etc is an event), our own reads included.
        let wake = match ev {
            Ok(ev) => handler_interest.relevant(&ev),
            // An error from the inotify read loop: we may have missed something.
            Err(e) => {
                tracing::debug!("config watch: {e}");
                true
            }
        };
        if wake {
            let _ = handler_tx.send(Wake::Changed);
        }
    });
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "cannot start the config file watcher ({e}); rescanning config files every {}s instead",
                POLL_WITHOUT_WATCHER.as_secs()
            );
            None
        }
    };

    let job = runner::Worker::spawn("cfghash")?;
    std::thread::Builder::new()
        .name("quorate-config".into())
        .spawn(move || {
            let mut rehasher = Rehasher {
                sets,
                job,
                interest,
                watches: Watches {
                    watcher,
                    active: BTreeMap::new(),
                    failed: BTreeSet::new(),
                },
                tx,
                last: Vec::new(),
            };
            rehasher.run(&wake_rx);
        })?;
    Ok(ConfigWatch { wake: wake_tx })
}

enum Wake {
    /// Something relevant happened in a watched directory.
    Changed,
    Stop,
}

/// One configured path, split into its directory and a file-name matcher.
#[derive(Debug)]
struct Spec {
    dir: PathBuf,
    name: NameMatch,
}

#[derive(Debug)]
enum NameMatch {
    Literal(std::ffi::OsString),
    Glob(Pattern),
}

/// Shell-like: `*` stays inside the file name and does not match a leading dot.
const GLOB_OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

impl Spec {
    /// The config check guarantees absolute paths with wildcards in the file name only;
    /// anything else is reported, not trusted.
    fn parse(raw: &str) -> Result<Spec, String> {
        let path = Path::new(raw);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(format!("{raw} names no file"));
        };
        let name = if name.to_string_lossy().contains(['*', '?', '[']) {
            NameMatch::Glob(
                Pattern::new(&name.to_string_lossy()).map_err(|e| format!("{raw}: {e}"))?,
            )
        } else {
            NameMatch::Literal(name.to_owned())
        };
        Ok(Spec {
            dir: dir.to_owned(),
            name,
        })
    }

    /// The paths this spec names now. Missing directories and files are simply absent;
    /// an unreadable directory is an error.
    fn expand(&self, errors: &mut Vec<String>) -> Vec<PathBuf> {
        match &self.name {
            NameMatch::Literal(name) => vec![self.dir.join(name)],
            NameMatch::Glob(_) => {
                let entries = match fs::read_dir(&self.dir) {
                    Ok(entries) => entries,
                    Err(e) if absent(&e) => return Vec::new(),
                    Err(e) => {
                        errors.push(cannot_read(&self.dir, &e));
                        return Vec::new();
                    }
                };
                let mut paths = Vec::new();
                for entry in entries {
                    match entry {
                        Ok(entry) if self.name.matches(&entry.file_name()) => {
                            paths.push(entry.path());
                        }
                        Ok(_) => {}
                        Err(e) => errors.push(cannot_read(&self.dir, &e)),
                    }
                }
                paths
            }
        }
    }
}

impl NameMatch {
    fn matches(&self, name: &OsStr) -> bool {
        match self {
            NameMatch::Literal(lit) => lit == name,
            NameMatch::Glob(p) => p.matches_with(&name.to_string_lossy(), GLOB_OPTIONS),
        }
    }
}

/// Reads a regular file whole. `Ok(None)`: it is gone or a directory (not part of the
/// set); `Err`: the message for the set's `error`.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, String> {
    // `fs::metadata` follows symlinks: a symlinked config file counts as its target.
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if absent(&e) => return Ok(None),
        Err(e) => return Err(cannot_read(path, &e)),
    };
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        // Opening a FIFO would block this thread until some writer came along.
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(path));
    }
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if absent(&e) => return Ok(None),
        Err(e) => return Err(cannot_read(path, &e)),
    };
    let mut text = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow between the stat and the read: the cap holds anyway.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| cannot_read(path, &e))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(path));
    }
    Ok(Some(text))
}

/// A path that does not exist (or has a non-directory where a directory should be) is
/// just absent from the set.
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// "cannot read /etc/x: permission denied": the OS message without its "(os error 13)"
/// and with a lower-case start, so it reads as one sentence.
fn cannot_read(path: &Path, e: &io::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.find(" (os error ") {
        Some(i) => &msg[..i],
        None => msg.as_str(),
    };
    let mut chars = msg.chars();
    let msg = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    format!("cannot read {}: {msg}", path.display())
}

fn too_big(path: &Path) -> String {
    format!(
        "{} is larger than {} MiB; not hashed",
        path.display(),
        MAX_FILE_BYTES / (1024 * 1024)
    )
}

fn truncate(hash: blake3::Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash.as_bytes()[..16]);
    out
}

/// Path → hash of one node's set.
pub type FileMap<'a> = BTreeMap<&'a str, [u8; 16]>;

/// Deduplicated and sorted: a peer's list came off the network, no order is trusted.
pub fn file_map(state: &proto::ConfigSetState) -> FileMap<'_> {
    state
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.hash))
        .collect()
}

/// One hash over a whole set: BLAKE3 over the sorted (path, hash) pairs, each path
/// length-prefixed so that no two different sets encode alike.
pub fn set_hash(files: &FileMap<'_>) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    for (path, hash) in files {
        hasher.update(&(path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update(hash);
    }
    truncate(hasher.finalize())
}

/// What the sets care about, for filtering watch events: each configured directory and
/// the file names in it that belong to some set.
#[derive(Debug)]
struct Interest {
    dirs: BTreeMap<PathBuf, Vec<NameMatch>>,
}

impl Interest {
    fn new(sets: &[ConfigSet]) -> Self {
        let mut dirs: BTreeMap<PathBuf, Vec<NameMatch>> = BTreeMap::new();
        for spec in sets
            .iter()
            .flat_map(|s| &s.paths)
            .filter_map(|raw| Spec::parse(raw).ok())
        {
            dirs.entry(spec.dir).or_default().push(spec.name);
        }
        Self { dirs }
    }

    /// Whether `ev` may change a hash: it names a file of some set, or a configured
    /// directory or one of its ancestors (a directory created, removed or renamed), or
    /// notify asks for a rescan. Opens and read-only closes (our own reads among them)
    /// never do.
    fn relevant(&self, ev: &notify::Event) -> bool {
        if ev.need_rescan() {
            return true;
        }
        match ev.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return false,
            _ => {}
        }
        if ev.paths.is_empty() {
            return true;
        }
        ev.paths.iter().any(|p| {
            let names_a_file = match (p.parent(), p.file_name()) {
                (Some(dir), Some(name)) => self
                    .dirs
                    .get(dir)
                    .is_some_and(|ms| ms.iter().any(|m| m.matches(name))),
                _ => false,
            };
            names_a_file || self.dirs.keys().any(|d| d.starts_with(p))
        })
    }
}

/// The notify watches in place, kept equal to what the configured directories need.
struct Watches {
    watcher: Option<RecommendedWatcher>,
    /// Watched directory → identity (device, inode) when the watch was added: a watch
    /// follows the inode, so a directory removed and recreated needs a new one.
    active: BTreeMap<PathBuf, (u64, u64)>,
    /// Directories that should be watched but could not be (logged once each).
    failed: BTreeSet<PathBuf>,
}

impl Watches {
    /// Moves the watches to where they are needed now: each configured directory, or
    /// its nearest existing ancestor while it does not exist.
    fn reconcile(&mut self, interest: &Interest) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let mut wanted: BTreeMap<PathBuf, (u64, u64)> = BTreeMap::new();
        for dir in interest.dirs.keys() {
            if let Some((target, id)) = nearest_dir(dir) {
                wanted.insert(target, id);
            }
        }
        let stale: Vec<PathBuf> = self
            .active
            .iter()
            .filter(|(path, id)| wanted.get(*path) != Some(*id))
            .map(|(path, _)| path.clone())
            .collect();
        for path in stale {
            // notify drops its own record when the directory is deleted, so "not
            // watched" here is normal.
            let _ = watcher.unwatch(&path);
            self.active.remove(&path);
        }
        for (path, id) in wanted.iter() {
            if self.active.contains_key(path) {
                continue;
            }
            match watcher.watch(path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.active.insert(path.clone(), *id);
                    if self.failed.remove(path) {
                        tracing::info!("watching {} for config changes again", path.display());
                    }
                }
                Err(e) => {
                    if self.failed.insert(path.clone()) {
                        tracing::warn!(
                            "cannot watch {} for config changes ({e}); rescanning every {}s",
                            path.display(),
                            RETRY.as_secs()
                        );
                    }
                }
            }
        }
        self.failed.retain(|p| wanted.contains_key(p));
    }

    fn rescan_every(&self) -> Duration {
        if self.watcher.is_none() {
            POLL_WITHOUT_WATCHER
        } else if !self.failed.is_empty() {
            RETRY
        } else {
            SAFETY_NET
        }
    }
}

/// `dir` if it is a directory, else its nearest ancestor that is, with its identity.
fn nearest_dir(dir: &Path) -> Option<(PathBuf, (u64, u64))> {
    let mut candidate = Some(dir);
    while let Some(d) = candidate {
        if let Ok(meta) = fs::metadata(d)
            && meta.is_dir()
        {
            return Some((d.to_owned(), (meta.dev(), meta.ino())));
        }
        candidate = d.parent();
    }
    None
}

/// The watcher thread's state: the sets, their watches and the last report. (Not a
/// [`runner::Worker`]: it owns one, `job`, for the hashing.)
struct Rehasher {
    sets: Vec<ConfigSet>,
    /// Runs the hashing, so a read that never returns is noticed.
    job: runner::Worker,
    interest: Arc<Interest>,
    watches: Watches,
    tx: Sender<ProbeReport>,
    last: Vec<ConfigSetReport>,
}

impl Rehasher {
    fn run(&mut self, wake: &mpsc::Receiver<Wake>) {
        self.watches.reconcile(&self.interest);
        let first = self.hash_all();
        self.last = first.clone();
        if self.tx.blocking_send(ProbeReport::Config(first)).is_err() {
            return;
        }
        // (first wake-up seen, latest wake-up seen) while a rehash is pending.
        let mut pending: Option<(Instant, Instant)> = None;
        let mut next_rescan = clock::now() + self.watches.rescan_every();
        loop {
            let deadline = match pending {
                Some((first, latest)) => (latest + QUIET).min(first + MAX_DELAY),
                None => next_rescan,
            };
            let now = clock::now();
            // Checked before waiting, so a flood of wake-ups cannot postpone the
            // rehash past MAX_DELAY.
            if now < deadline {
                match wake.recv_timeout(deadline - now) {
                    Ok(Wake::Changed) => {
                        let now = clock::now();
                        pending = Some(pending.map_or((now, now), |(first, _)| (first, now)));
                        continue;
                    }
                    Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
            }
            if self.tx.is_closed() {
                return;
            }
            pending = None;
            // Watches first, then hashes: a file created in a directory that just
            // appeared is either already there for the hash or raises an event.
            self.watches.reconcile(&self.interest);
            let reports = self.hash_all();
            if reports != self.last {
                log_changes(&self.last, &reports);
                self.last = reports.clone();
                if self.tx.blocking_send(ProbeReport::Config(reports)).is_err() {
                    return;
                }
            }
            next_rescan = clock::now() + self.watches.rescan_every();
        }
    }

    /// Hashes every set on the job thread. If that does not finish in time, every set
    /// keeps its last files and says why it is failing, until a hash finishes again.
    fn hash_all(&self) -> Vec<ConfigSetReport> {
        let sets = self.sets.clone();
        match self
            .job
            .run(HASH_TIMEOUT, move || sets.iter().map(hash_set).collect())
        {
            runner::Outcome::Done(reports) => reports,
            runner::Outcome::Hung | runner::Outcome::StillHung => self
                .sets
                .iter()
                .map(|set| ConfigSetReport {
                    name: set.name.clone(),
                    files: self
                        .last
                        .iter()
                        .find(|r| r.name == set.name)
                        .map(|r| r.files.clone())
                        .unwrap_or_default(),
                    error: Some(format!(
                        "hashing got no answer in {}s (a file on a hung mount?)",
                        HASH_TIMEOUT.as_secs()
                    )),
                })
                .collect(),
        }
    }
}

/// One line per set that changed, naming the files: never per event, never contents.
fn log_changes(old: &[ConfigSetReport], new: &[ConfigSetReport]) {
    for report in new {
        let before = old.iter().find(|o| o.name == report.name);
        let old_files: BTreeMap<&str, &[u8; 16]> = before
            .map(|o| o.files.iter().map(|f| (f.path.as_str(), &f.hash)).collect())
            .unwrap_or_default();
        let new_files: BTreeMap<&str, &[u8; 16]> = report
            .files
            .iter()
            .map(|f| (f.path.as_str(), &f.hash))
            .collect();
        let changed: BTreeSet<&str> = old_files
            .keys()
            .chain(new_files.keys())
            .copied()
            .filter(|p| old_files.get(p) != new_files.get(p))
            .collect();
        if !changed.is_empty() {
            let changed: Vec<&str> = changed.into_iter().collect();
            tracing::info!("config set {} changed: {}", report.name, changed.join(", "));
        }
        let old_error = before.and_then(|o| o.error.as_deref());
        if report.error.as_deref() != old_error {
            match &report.error {
                Some(e) => tracing::warn!("config set {}: {e}", report.name),
                None => tracing::info!("config set {}: every file readable again", report.name),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(patterns: &[&str]) -> Vec<Regex> {
        patterns.iter().map(|p| Regex::new(p).unwrap()).collect()
    }

    #[test]
    fn hash_file_table() {
        let site = re(&[r"sys\.site_domain"]);
        // (a, b, ignore, same hash?, what)
        type Case<'a> = (&'a [u8], &'a [u8], &'a [Regex], bool, &'a str);
        let cases: &[Case<'_>] = &[
            (
                b"a=1\nsys.site_domain=n1\nb=2\n",
                b"a=1\nsys.site_domain=n2.example\nb=2\n",
                &site,
                true,
                "ignored line differs",
            ),
            (
                b"a=1\nsys.site_domain=n1\nb=2\n",
                b"a=1\nsys.site_domain=n1\nb=3\n",
                &site,
                false,
                "other line differs",
            ),
            (b"", b"", &[], true, "empty file"),
            (b"", b"\n", &[], false, "empty vs one empty line"),
            (
                b"anything\nat all\n",
                b"",
                &re(&[".*"]),
                true,
                "ignore everything equals empty",
            ),
            (
                b"a=1\r\nb=2\r\n",
                b"a=1\nb=2\n",
                &[],
                false,
                "CRLF and LF differ",
            ),
            (
                b"a=1\nb=2",
                b"a=1\nb=2\n",
                &[],
                false,
                "trailing newline counts",
            ),
            (
                b"a=1\r\nsys.site_domain=x\r\n",
                b"a=1\r\nsys.site_domain=y\r\n",
                &re(&[r"^sys\.site_domain=\w+$"]),
                true,
                "anchored pattern matches a CRLF line",
            ),
            (
                b"a\xff\nhost=n1\xfe\n",
                b"a\xff\nhost=n2\xfe\n",
                &re(&["^host="]),
                true,
                "non-UTF-8 lines are matched lossily",
            ),
            (
                b"a\xff\nb\n",
                b"a\xfe\nb\n",
                &re(&["^host="]),
                false,
                "non-UTF-8 bytes are hashed as they are",
            ),
            (
                b"a=1\nx=1\nb=2\n",
                b"a=1\nb=2\n",
                &re(&["^x="]),
                true,
                "an ignored line is as if absent",
            ),
        ];
        for (a, b, ignore, same, what) in cases {
            assert_eq!(
                hash_file(a, ignore) == hash_file(b, ignore),
                *same,
                "{what}"
            );
        }
        // Without ignore patterns it is plain BLAKE3, truncated.
        assert_eq!(
            hash_file(b"x\n", &[]),
            blake3::hash(b"x\n").as_bytes()[..16]
        );
        assert_eq!(
            hash_file(b"x\n", &[]),
            hash_file(b"x\n", &re(&["^nomatch$"]))
        );
    }

    fn set(name: &str, paths: &[String], ignore: &[&str]) -> ConfigSet {
        ConfigSet {
            name: name.into(),
            paths: paths.to_vec(),
            ignore: re(ignore),
        }
    }

    fn p(dir: &Path, rest: &str) -> String {
        format!("{}/{rest}", dir.display())
    }

    #[test]
    fn hash_set_expands_globs_and_reports_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("app-a.xml"), "a\n").unwrap();
        fs::write(d.join("app-b.xml"), "b\n").unwrap();
        fs::write(d.join(".app-c.xml.swp"), "swap").unwrap();
        fs::write(d.join("other.txt"), "o\n").unwrap();
        fs::create_dir(d.join("app-dir.xml")).unwrap();
        let s = set(
            "s",
            &[
                p(d, "app-*.xml"),
                p(d, "app-a.xml"), // named twice: listed once
                p(d, "missing.conf"),
                p(d, "nothing-*.conf"),
                p(d, "nodir/x.conf"),
            ],
            &[],
        );
        let r = hash_set(&s);
        assert_eq!(r.name, "s");
        assert_eq!(r.error, None);
        let paths: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [p(d, "app-a.xml"), p(d, "app-b.xml")]);
        assert_eq!(r.files[0].hash, hash_file(b"a\n", &[]));

        // Too big: an error naming the file, the others still hashed.
        let big = fs::File::create(d.join("app-z.xml")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let r = hash_set(&s);
        assert_eq!(r.files.len(), 2);
        let err = r.error.unwrap();
        assert!(
            err.contains(&p(d, "app-z.xml")) && err.contains("16 MiB"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("a.conf"), "a\n").unwrap();
        fs::write(d.join("b.conf"), "b\n").unwrap();
        fs::set_permissions(d.join("b.conf"), fs::Permissions::from_mode(0o000)).unwrap();
        // The message, whoever runs the test.
        assert_eq!(
            cannot_read(Path::new("/etc/x"), &io::Error::from_raw_os_error(13)),
            "cannot read /etc/x: permission denied"
        );
        if fs::read(d.join("b.conf")).is_ok() {
            // Running as root: permissions do not apply. A FIFO is unreadable for all.
            fs::remove_file(d.join("b.conf")).unwrap();
            let ok = std::process::Command::new("mkfifo")
                .arg(d.join("b.conf"))
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return;
            }
            let r = hash_set(&set("s", &[p(d, "*.conf")], &[]));
            assert_eq!(r.files.len(), 1);
            assert_eq!(
                r.error.as_deref(),
                Some(format!("{} is not a regular file", p(d, "b.conf")).as_str())
            );
            return;
        }
        let r = hash_set(&set("s", &[p(d, "*.conf")], &[]));
        assert_eq!(r.files.len(), 1);
        assert_eq!(
            r.error.as_deref(),
            Some(format!("cannot read {}: permission denied", p(d, "b.conf")).as_str())
        );
    }

    // The watcher, on real files in a temporary directory.

    struct Harness {
        rt: tokio::runtime::Runtime,
        rx: tokio::sync::mpsc::Receiver<ProbeReport>,
        watch: Option<ConfigWatch>,
    }

    /// Generous: CI is a noisy 2-core box. The debounce itself is 50 ms.
    const WITHIN: Duration = Duration::from_secs(2);

    type Files = Vec<(String, [u8; 16])>;

    impl Harness {
        fn start(sets: &[ConfigSet]) -> Self {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            let watch = spawn(sets, tx).unwrap();
            Self {
                rt,
                rx,
                watch: Some(watch),
            }
        }

        /// The next message within `d`: `None` on timeout, `Some(None)` when closed.
        fn recv(&mut self, d: Duration) -> Option<Option<Files>> {
            let got = self
                .rt
                .block_on(async { tokio::time::timeout(d, self.rx.recv()).await })
                .ok()?;
            Some(got.map(|report| match report {
                ProbeReport::Config(reports) => files(&reports),
                other => panic!("unexpected {other:?}"),
            }))
        }

        fn next(&mut self) -> Files {
            self.recv(WITHIN)
                .expect("a report within 2 s")
                .expect("the watcher is running")
        }

        /// Reports until one shows `want`, all within 2 s. A writer truncates before
        /// it writes, so a loaded box may show an empty file in between; what matters
        /// is that the final state arrives, and soon.
        fn until(&mut self, want: &[(String, [u8; 16])], what: &str) {
            let deadline = clock::now() + WITHIN;
            let mut seen = Vec::new();
            loop {
                let left = deadline.saturating_duration_since(clock::now());
                match self.recv(left) {
                    Some(Some(got)) if got == want => return,
                    Some(Some(got)) => seen.push(got),
                    Some(None) => panic!("{what}: watcher gone"),
                    None => panic!("{what}: no report of {want:?} within 2 s; saw {seen:?}"),
                }
            }
        }
    }

    fn files(reports: &[ConfigSetReport]) -> Files {
        reports[0]
            .files
            .iter()
            .map(|f| (f.path.clone(), f.hash))
            .collect()
    }

    fn h(text: &str, ignore: &[&str]) -> [u8; 16] {
        hash_file(text.as_bytes(), &re(ignore))
    }

    #[test]
    fn watcher_follows_edits_renames_deletes_and_new_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let a = p(d, "app-a.conf");
        let b = p(d, "app-b.conf");
        let ign = ["^host="];
        fs::write(&a, "x=1\nhost=n1\n").unwrap();
        let mut w = Harness::start(&[set("s", &[p(d, "app-*.conf")], &ign)]);
        assert_eq!(
            w.next(),
            [(a.clone(), h("x=1\nhost=n1\n", &ign))],
            "first report at start"
        );

        fs::write(&a, "x=2\nhost=n1\n").unwrap();
        w.until(&[(a.clone(), h("x=2\n", &[]))], "edit");

        // Replaced by rename, as vim and sed -i save: exactly one report.
        let tmpfile = p(d, "sedXYZ123");
        fs::write(&tmpfile, "x=3\n").unwrap();
        fs::rename(&tmpfile, &a).unwrap();
        assert_eq!(w.next(), [(a.clone(), h("x=3\n", &[]))], "rename");

        fs::write(&b, "y=1\n").unwrap();
        w.until(
            &[(a.clone(), h("x=3\n", &[])), (b.clone(), h("y=1\n", &[]))],
            "new file matching the glob",
        );

        fs::remove_file(&a).unwrap();
        assert_eq!(w.next(), [(b.clone(), h("y=1\n", &[]))], "delete");

        // An edit of an ignored line only, and a file outside the set: no report.
        // Written by rename so that no truncated intermediate state exists.
        fs::write(&tmpfile, "y=1\nhost=n7\n").unwrap();
        fs::rename(&tmpfile, &b).unwrap();
        fs::write(p(d, "unrelated.txt"), "z").unwrap();
        assert_eq!(w.recv(Duration::from_millis(400)), None, "ignored edit");
        fs::write(&tmpfile, "y=2\nhost=n7\n").unwrap();
        fs::rename(&tmpfile, &b).unwrap();
        assert_eq!(w.next(), [(b.clone(), h("y=2\n", &[]))], "real edit");
    }

    #[test]
    fn watcher_sees_a_directory_that_appears_later() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("not/yet");
        let f = format!("{}/app.conf", d.display());
        let mut w = Harness::start(&[set("late", std::slice::from_ref(&f), &[])]);
        assert_eq!(w.next(), []);

        fs::create_dir_all(&d).unwrap();
        fs::write(&f, "v=1\n").unwrap();
        w.until(&[(f.clone(), h("v=1\n", &[]))], "directory created");

        // Removed with its directory, then back: the watch moves up and down again.
        fs::remove_dir_all(tmp.path().join("not")).unwrap();
        assert_eq!(w.next(), [], "directory removed");
        fs::create_dir_all(&d).unwrap();
        fs::write(&f, "v=2\n").unwrap();
        w.until(&[(f.clone(), h("v=2\n", &[]))], "directory recreated");
        fs::write(&f, "v=3\n").unwrap();
        w.until(&[(f, h("v=3\n", &[]))], "edit in the recreated directory");
    }

    #[test]
    fn dropping_the_handle_stops_the_watcher() {
        let tmp = tempfile::tempdir().unwrap();
        let f = p(tmp.path(), "a.conf");
        let mut w = Harness::start(&[set("s", std::slice::from_ref(&f), &[])]);
        assert_eq!(w.next(), []);
        drop(w.watch.take());
        // The thread ends and drops its sender: the channel closes.
        assert_eq!(w.recv(WITHIN), Some(None));
    }
}
