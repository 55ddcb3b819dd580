//! The event journal: what happened, as this agent saw it — membership changes,
//! elections and handovers, check transitions, drift, operator commands, alarms.
//!
//! Owns: the sequence numbers (they continue across restarts), the history kept in
//! memory (the newest [`HISTORY_CAP`] records), the broadcast to live readers (the
//! operator channel's `Subscribe` and `Events { follow }`), and the file
//! `state_dir/events.jsonl` (one [`EventRecord`] as JSON per line, at most about
//! [`FILE_CAP`] bytes: when it grows past that, it is rewritten keeping its newest half).
//!
//! The driver is the only writer ([`Journal::record`]); readers hold a [`JournalReader`].
//! This module must never block the driver on the disk (lines go to a writer thread of
//! their own through a bounded queue), never stop the agent because the file cannot be
//! written (that is logged once, and the history lives on in memory), and never let a
//! slow reader hold anyone up (a reader that lags behind the broadcast is told so and
//! catches up from the history).
//!
//! [`describe`] words a core event for the log line and the journal record at once;
//! [`counts`] keeps the [`Tally`] of what happened, for `/metrics`'s counters.

pub mod counts;
pub mod describe;

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self as std_mpsc, SyncSender, TrySendError};

use proto::WallMicros;
use proto::ctl::{EventKind, EventRecord};
use tokio::sync::{broadcast, watch};

use crate::persist::{self, PersistError};
pub use counts::Tally;

/// Records kept in memory and served to `quorate events`.
pub const HISTORY_CAP: usize = 1000;
/// The journal file is rewritten, keeping its newest half, once it grows past this.
pub const FILE_CAP: u64 = 1 << 20;
/// The journal file's name under `state_dir`.
pub const FILE_NAME: &str = "events.jsonl";
/// Records a live reader may fall behind by before it is told it lagged.
const LIVE_CAP: usize = 256;
/// Lines waiting for the writer thread; beyond it a line is dropped from the file (it
/// stays in memory) and that is logged.
const WRITE_QUEUE: usize = 1024;

/// The history as readers see it: the newest records, oldest first.
pub type History = Arc<VecDeque<EventRecord>>;

/// The journal's file path under `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// The driver's handle: numbers, keeps, broadcasts and persists records.
pub struct Journal {
    node: String,
    next_seq: u64,
    history: watch::Sender<History>,
    live: broadcast::Sender<EventRecord>,
    writer: Option<(SyncSender<EventRecord>, std::thread::JoinHandle<()>)>,
    /// Set once a line could not be queued, so that is logged once per burst.
    dropping: bool,
    /// What happened, counted (not persisted: counters start at 0 with the process).
    tally: Tally,
}

/// A reader's handle: the history, and the live records from the moment it subscribes.
#[derive(Clone)]
pub struct JournalReader {
    history: watch::Receiver<History>,
    live: broadcast::Sender<EventRecord>,
}

impl JournalReader {
    /// Live records from now on. Subscribe *before* reading [`history`](Self::history)
    /// and skip what was already seen by `seq`: then nothing falls in between.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.live.subscribe()
    }

    /// The records kept in memory, oldest first.
    pub fn history(&self) -> History {
        self.history.borrow().clone()
    }
}

/// What was read back from a journal file.
#[derive(Debug, Default, PartialEq)]
pub struct Loaded {
    /// The newest records, at most [`HISTORY_CAP`], oldest first.
    pub records: Vec<EventRecord>,
    /// The highest sequence number in the file (0 if none).
    pub last_seq: u64,
    /// Lines that were not records (a line torn by a crash, an edit by hand).
    pub bad_lines: usize,
}

/// Parses journal text: one record per line; lines that are not records are counted and
/// skipped, so a torn last line never stops the agent.
pub fn parse(text: &str) -> Loaded {
    let mut records = VecDeque::new();
    let mut last_seq = 0;
    let mut bad_lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<EventRecord>(line) {
            Ok(r) => {
                last_seq = last_seq.max(r.seq);
                records.push_back(r);
                if records.len() > HISTORY_CAP {
                    records.pop_front();
                }
            }
            Err(_) => bad_lines += 1,
        }
    }
    Loaded {
        records: records.into(),
        last_seq,
        bad_lines,
    }
}

/// The newest half of journal text (by bytes), starting at a line boundary.
pub fn newest_half(text: &str) -> &str {
    // The first line that starts at or after the middle. A newline byte is always a
    // character boundary in UTF-8.
    let from = (text.len() / 2).saturating_sub(1);
    match text.as_bytes()[from..].iter().position(|&b| b == b'\n') {
        Some(i) => &text[from + i + 1..],
        None => "",
    }
}

impl Journal {
    /// Reads `state_dir/events.jsonl` (a missing file is an empty journal) and starts the
    /// writer thread. Fails only if the file exists and cannot be read.
    pub fn open(state_dir: &Path, node: &str) -> Result<Self, PersistError> {
        let file = path(state_dir);
        let (loaded, size) = match fs::read(&file) {
            Ok(bytes) => (parse(&String::from_utf8_lossy(&bytes)), bytes.len() as u64),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Loaded::default(), 0),
            Err(e) => {
                return Err(PersistError {
                    path: file,
                    reason: e.to_string(),
                });
            }
        };
        if loaded.bad_lines > 0 {
            tracing::warn!(
                "{}: skipped {} line(s) that are not event records",
                file.display(),
                loaded.bad_lines
            );
        }
        let mut journal = Self::in_memory(node, loaded.records, loaded.last_seq);
        let (tx, rx) = std_mpsc::sync_channel(WRITE_QUEUE);
        let handle = std::thread::Builder::new()
            .name("quorate-events".into())
            .spawn(move || write_loop(&file, size, &rx))
            .map_err(|e| PersistError {
                path: path(state_dir),
                reason: format!("cannot start the journal's writer thread: {e}"),
            })?;
        journal.writer = Some((tx, handle));
        Ok(journal)
    }

    /// A journal that keeps nothing on disk, starting after `last_seq` with `records`.
    pub fn in_memory(node: &str, records: Vec<EventRecord>, last_seq: u64) -> Self {
        let (history, _) = watch::channel(Arc::new(VecDeque::from(records)));
        let (live, _) = broadcast::channel(LIVE_CAP);
        Self {
            node: node.to_owned(),
            next_seq: last_seq + 1,
            history,
            live,
            writer: None,
            dropping: false,
            tally: Tally::default(),
        }
    }

    /// The counts of what happened so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// For the driver, which counts what it records (see [`counts`]).
    pub fn tally_mut(&mut self) -> &mut Tally {
        &mut self.tally
    }

    pub fn reader(&self) -> JournalReader {
        JournalReader {
            history: self.history.subscribe(),
            live: self.live.clone(),
        }
    }

    /// Records one event at wall time `at`: numbered, kept, sent to live readers and
    /// queued for the file. Never blocks.
    pub fn record(
        &mut self,
        at: WallMicros,
        kind: EventKind,
        node: Option<&str>,
        text: impl Into<String>,
    ) -> EventRecord {
        let record = EventRecord {
            seq: self.next_seq,
            at_micros: at.0,
            recorded_by: self.node.clone(),
            kind,
            node: node.map(str::to_owned),
            text: text.into(),
        };
        self.next_seq += 1;
        self.history.send_modify(|h| {
            let h = Arc::make_mut(h);
            h.push_back(record.clone());
            while h.len() > HISTORY_CAP {
                h.pop_front();
            }
        });
        // No live reader is not an error.
        let _ = self.live.send(record.clone());
        if let Some((tx, _)) = &self.writer {
            match tx.try_send(record.clone()) {
                Ok(()) => self.dropping = false,
                Err(TrySendError::Full(_)) => {
                    if !self.dropping {
                        tracing::warn!(
                            "the event journal's writer is behind: event {} is kept in memory only",
                            record.seq
                        );
                    }
                    self.dropping = true;
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        record
    }

    /// Stops taking lines; the writer thread finishes what is queued. Join the handle
    /// (off the async runtime) to wait for it.
    pub fn close(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.writer.take().map(|(tx, handle)| {
            drop(tx);
            handle
        })
    }
}

/// The writer thread: appends each record as a line, and rewrites the file keeping its
/// newest half when it grows past [`FILE_CAP`]. Errors are logged when they start and when
/// they stop, not per line.
fn write_loop(path: &Path, mut size: u64, rx: &std_mpsc::Receiver<EventRecord>) {
    let mut failing = false;
    let mut report = |result: Result<(), String>| match (result, failing) {
        (Ok(()), true) => {
            failing = false;
            tracing::info!("{}: the event journal is written again", path.display());
        }
        (Err(e), false) => {
            failing = true;
            tracing::warn!(
                "{}: cannot write the event journal ({e}); events are kept in memory only",
                path.display()
            );
        }
        _ => {}
    };
    while let Ok(record) = rx.recv() {
        let mut line = match serde_json::to_string(&record) {
            Ok(l) => l,
            Err(e) => {
                report(Err(e.to_string()));
                continue;
            }
        };
        line.push('\n');
        let appended = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        match appended {
            Ok(()) => {
                size += line.len() as u64;
                report(Ok(()));
            }
            Err(e) => {
                report(Err(e.to_string()));
                continue;
            }
        }
        if size > FILE_CAP {
            match compact(path) {
                Ok(new_size) => size = new_size,
                Err(e) => report(Err(e.to_string())),
            }
        }
    }
}

/// Rewrites the file with its newest half; returns the new size.
fn compact(path: &Path) -> Result<u64, PersistError> {
    let bytes = fs::read(path).map_err(|e| PersistError {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let kept = newest_half(&text);
    persist::write_atomic(path, kept.as_bytes())?;
    Ok(kept.len() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(seq: u64) -> EventRecord {
        EventRecord {
            seq,
            at_micros: seq * 10,
            recorded_by: "n1".into(),
            kind: EventKind::Election,
            node: Some("n2".into()),
            text: format!("event {seq}"),
        }
    }

    #[test]
    fn parse_skips_torn_lines_and_keeps_the_newest() {
        let mut text = String::new();
        for seq in 1..=(HISTORY_CAP as u64 + 5) {
            text.push_str(&serde_json::to_string(&rec(seq)).unwrap());
            text.push('\n');
        }
        text.push_str("{\"seq\":99999,\"at_mic");
        let loaded = parse(&text);
        assert_eq!(loaded.bad_lines, 1);
        assert_eq!(loaded.last_seq, HISTORY_CAP as u64 + 5);
        assert_eq!(loaded.records.len(), HISTORY_CAP);
        assert_eq!(loaded.records[0].seq, 6);
        assert_eq!(parse(""), Loaded::default());
        assert_eq!(parse("garbage\n\n").bad_lines, 1);
    }

    #[test]
    fn newest_half_starts_at_a_line() {
        assert_eq!(newest_half("aaaa\nbbbb\ncccc\ndddd\n"), "cccc\ndddd\n");
        assert_eq!(newest_half("one line\n"), "");
        assert_eq!(newest_half(""), "");
        // Multi-byte text is never split inside a character.
        assert_eq!(newest_half("é\né\né\né\n"), "é\né\n");
    }

    #[test]
    fn records_are_numbered_kept_broadcast_and_bounded() {
        let mut j = Journal::in_memory("n1", vec![rec(41)], 41);
        let reader = j.reader();
        let mut live = reader.subscribe();
        let r = j.record(WallMicros(7), EventKind::Operator, None, "frozen");
        assert_eq!((r.seq, r.at_micros, r.recorded_by.as_str()), (42, 7, "n1"));
        assert_eq!(live.try_recv().unwrap(), r);
        let h = reader.history();
        assert_eq!(h.iter().map(|r| r.seq).collect::<Vec<_>>(), [41, 42]);
        for _ in 0..HISTORY_CAP {
            j.record(WallMicros(8), EventKind::Check, Some("n1"), "x");
        }
        let h = reader.history();
        assert_eq!(h.len(), HISTORY_CAP);
        assert_eq!(h.back().unwrap().seq, 42 + HISTORY_CAP as u64);
        // The reader that kept an old history still has it, unchanged.
        assert_eq!(h.front().unwrap().seq, 43);
    }

    #[test]
    fn the_file_survives_a_restart_and_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "n1").unwrap();
        j.record(WallMicros(1), EventKind::Membership, Some("n1"), "started");
        j.record(WallMicros(2), EventKind::Election, Some("n1"), "primary");
        j.close().unwrap().join().unwrap();

        let mut j = Journal::open(dir.path(), "n1").unwrap();
        let h = j.reader().history();
        assert_eq!(h.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(j.record(WallMicros(3), EventKind::Check, None, "x").seq, 3);
        // Past the cap, the file keeps its newest half.
        let long = "x".repeat(2000);
        for _ in 0..600 {
            j.record(WallMicros(4), EventKind::Check, None, long.clone());
        }
        j.close().unwrap().join().unwrap();
        let size = fs::metadata(path(dir.path())).unwrap().len();
        assert!(size <= FILE_CAP, "{size}");
        assert!(size > FILE_CAP / 4, "{size}");
        let loaded = parse(&fs::read_to_string(path(dir.path())).unwrap());
        assert_eq!(loaded.bad_lines, 0);
        assert_eq!(loaded.last_seq, 603);
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(path(dir.path())).unwrap();
        let e = Journal::open(dir.path(), "n1").err().unwrap().to_string();
        assert!(e.contains(FILE_NAME), "{e}");
    }

    #[test]
    fn a_file_that_cannot_be_written_keeps_events_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "n1").unwrap();
        // The file's place is taken by a directory: every append fails.
        fs::create_dir(path(dir.path())).unwrap();
        j.record(WallMicros(1), EventKind::Alarm, None, "x");
        assert_eq!(j.record(WallMicros(2), EventKind::Alarm, None, "y").seq, 2);
        j.close().unwrap().join().unwrap();
        assert_eq!(j.reader().history().len(), 2);
    }
}
