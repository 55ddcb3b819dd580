//! `[[mount]]` checks: the paths the application needs, usually a shared NFS repository.
//!
//! Owns:
//! - the /proc/self/mountinfo parser ([`parse_mountinfo`], [`mount_for`]): pure, text in,
//!   entries out, table-tested;
//! - the filesystem check of one path ([`check_mount`]): exists, is a directory, is a
//!   mount point, has the expected fstype, is readable, is writable, and writes and reads
//!   the shared-storage proofs under `<path>/.quorate/`;
//! - one thread per mount that runs the check every `interval` on its own
//!   [`Worker`] and reports to the driver ([`spawn`]).
//!
//! Must never: run a filesystem call on an async worker or without a timeout (a hung NFS
//! server blocks `stat` forever); write anything but `<path>/.quorate-probe-<node>` and
//! `<path>/.quorate/<node>` (and its temp file); delete or rewrite another node's proof;
//! follow a symlink below the mount point, writing or reading (`.quorate` and the proofs
//! are opened relative to a directory fd with O_NOFOLLOW: a `.quorate` planted as a link
//! would lead the proof out of the share), or open anything but a regular file when
//! reading (a FIFO planted in `.quorate/` would block the read); decide anything (whether the proofs
//! show shared storage is judged in `assess::mounts`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::runner::{Outcome, Worker};
use super::{CheckCode, CheckResult, MountReport, ProbeReport};
use crate::clock;
use crate::config::Mount;

/// The directory, under a `shared` mount, that holds one proof file per node.
pub const PROOF_DIR: &str = ".quorate";
/// At most this many proof files are read per check: 20 nodes fit with room to spare,
/// and a directory filled with junk cannot make a check read without end.
const MAX_PROOFS: usize = 64;
/// Directory entries looked at per check, junk included, for the same reason.
const MAX_PROOF_ENTRIES: usize = 1024;
/// A proof is a nonce; anything longer is not one of ours and is not read.
const MAX_PROOF_LEN: usize = 256;

const NOT_A_MOUNT_POINT: &str = "not a mount point (the share is not mounted?)";
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of /proc/self/mountinfo, with the octal escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u64,
    pub parent: u64,
    /// Device `major:minor` (`0:N` for NFS, tmpfs, overlay…).
    pub dev: (u32, u32),
    /// The directory of the filesystem that is mounted here (not `/` for a bind mount).
    pub root: PathBuf,
    /// Where it is mounted, relative to this process's root.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,relatime`).
    pub options: String,
    /// Optional fields (`shared:1`, `master:2`…).
    pub optional: Vec<String>,
    pub fstype: String,
    /// `10.0.0.5:/export/repo`, `/dev/sda1`, `tmpfs`…
    pub source: String,
    /// Per-superblock options (`rw,vers=4.2,…,addr=10.0.0.5`).
    pub super_options: String,
}

/// Parses /proc/self/mountinfo (see proc(5)). Lines that do not parse are skipped: a
/// kernel with a new field layout must cost a mount check, not the agent.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    // Single spaces separate the fields; the kernel escapes any space inside one. Split
    // on each space, not on runs, so an empty field (an empty source) keeps its place.
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let parent = fields.next()?.parse().ok()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let dev = (major.parse().ok()?, minor.parse().ok()?);
    let root = fields.next()?;
    let mount_point = fields.next()?;
    let options = fields.next()?;
    let mut optional = Vec::new();
    loop {
        match fields.next()? {
            "-" => break,
            "" => return None,
            tag => optional.push(unescape_string(tag)),
        }
    }
    let fstype = fields.next()?;
    let source = fields.next()?;
    let super_options = fields.next().unwrap_or_default();
    if fields.next().is_some()
        || root.is_empty()
        || !mount_point.starts_with('/')
        || fstype.is_empty()
    {
        return None;
    }
    Some(MountEntry {
        id,
        parent,
        dev,
        root: unescape_path(root),
        mount_point: unescape_path(mount_point),
        options: unescape_string(options),
        optional,
        fstype: unescape_string(fstype),
        source: unescape_string(source),
        super_options: unescape_string(super_options),
    })
}

/// Decodes the kernel's `\ooo` octal escapes (`\040` space, `\011` tab, `\012` newline,
/// `\134` backslash, and any other byte). A backslash not followed by three octal digits
/// is kept as it is.
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\'
            && let Some(&[d0, d1, d2]) = b.get(i + 1..i + 4)
            && d0 <= b'3'
            && [d0, d1, d2].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push(((d0 - b'0') << 6) | ((d1 - b'0') << 3) | (d2 - b'0'));
            i += 4;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Paths are bytes on Linux: an escape may decode to a byte that is not UTF-8.
fn unescape_path(field: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

fn unescape_string(field: &str) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

/// The entry of the filesystem that holds `path`: the one whose mount point is the
/// longest prefix of it, counted in path components (`/mnt/a` does not hold `/mnt/ab`),
/// the last mounted winning when several are stacked on the same point (mountinfo lists
/// mounts in the order they were made).
///
/// `path` should be absolute and canonical (no symlinks, no `..`), as mount points are.
pub fn mount_for<'a>(entries: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let mut best: Option<(usize, &MountEntry)> = None;
    for entry in entries {
        if path.starts_with(&entry.mount_point) {
            let depth = entry.mount_point.components().count();
            if best.is_none_or(|(d, _)| depth >= d) {
                best = Some((depth, entry));
            }
        }
    }
    best.map(|(_, entry)| entry)
}

/// Checks one `[[mount]]` path, in this order: it exists and is a directory; it is a
/// mount point (`expect_mount`); its fstype (`fstype`); it is readable; it is writable
/// (`writable`); and for `shared`, writes this node's proof `<path>/.quorate/<node>` with
/// `nonce` and reads every node's proof back into [`MountReport::proofs`]. The first
/// failure ends the check, with a reason an operator can act on.
///
/// Blocks for as long as the filesystem does: run it on a
/// [`Worker`] with a timeout, never on an async thread.
pub fn check_mount(cfg: &Mount, node: &str, nonce: &str) -> MountReport {
    let mut report = MountReport {
        path: cfg.path.clone(),
        result: CheckResult {
            code: CheckCode::Ok,
            reason: String::new(),
            at: clock::now(),
        },
        source: None,
        fstype: None,
        proofs: BTreeMap::new(),
    };
    let (code, reason) = match run_checks(cfg, node, nonce, &mut report) {
        Ok(()) => (CheckCode::Ok, String::new()),
        Err(reason) => (CheckCode::Fail, reason),
    };
    report.result = CheckResult {
        code,
        reason,
        at: clock::now(),
    };
    report
}

fn run_checks(
    cfg: &Mount,
    node: &str,
    nonce: &str,
    report: &mut MountReport,
) -> Result<(), String> {
    let path = cfg.path.as_path();
    // The node name becomes a file name: never let it climb out of the directory.
    if proto::NodeId::new(node).is_err() {
        return Err(format!("invalid node name {node:?}"));
    }

    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => "missing".to_owned(),
        ErrorKind::PermissionDenied => "permission denied reaching the path".to_owned(),
        ErrorKind::NotADirectory => "missing (a parent is not a directory)".to_owned(),
        _ => io_reason("cannot stat", &e),
    })?;
    if !meta.is_dir() {
        return Err("not a directory".to_owned());
    }

    // Mount points are canonical paths: compare the real one, symlinks resolved.
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match fs::read_to_string(MOUNTINFO) {
        Ok(text) => {
            let entries = parse_mountinfo(&text);
            let entry = mount_for(&entries, &real);
            report.source = entry.map(|e| e.source.clone());
            report.fstype = entry.map(|e| e.fstype.clone());
            if cfg.expect_mount && entry.is_none_or(|e| e.mount_point != real) {
                return Err(NOT_A_MOUNT_POINT.to_owned());
            }
            if let Some(want) = &cfg.fstype {
                match entry {
                    Some(e) if e.fstype == *want => {}
                    Some(e) => {
                        return Err(format!(
                            "fstype is {} from {}, expected {want}",
                            e.fstype, e.source
                        ));
                    }
                    None => return Err(format!("fstype unknown (not in {MOUNTINFO})")),
                }
            }
        }
        Err(e) if cfg.expect_mount || cfg.fstype.is_some() => {
            return Err(io_reason(&format!("cannot read {MOUNTINFO}"), &e));
        }
        // Nothing hangs on it: source and fstype stay unknown.
        Err(_) => {}
    }

    // One entry is enough to make NFS answer a READDIR, not just a cached GETATTR.
    let mut listing = fs::read_dir(path).map_err(|e| read_reason("", &e))?;
    if let Some(Err(e)) = listing.next() {
        return Err(read_reason("", &e));
    }

    if cfg.writable {
        let probe = path.join(format!(".quorate-probe-{node}"));
        write_synced(&probe, b"quorate write probe\n").map_err(|e| {
            // Best effort: a full disk may have let the create through but not the write.
            let _ = fs::remove_file(&probe);
            write_reason("probe file", &e)
        })?;
        fs::remove_file(&probe).map_err(|e| io_reason("cannot remove probe file", &e))?;
    }

    if cfg.shared {
        // Every component from the mount point down is opened without following a
        // symlink: a `.quorate` planted as a link elsewhere must not take the proof
        // (or its read-back) out of the share.
        let proof_name = format!("{PROOF_DIR}/{node}");
        let dir = proof_dir(path).map_err(|e| write_reason(&proof_name, &e))?;
        // Write then rename, so a peer reading at any moment sees the old nonce or the
        // new one, never half a file. The temp name starts with '.', which is not a node
        // name, so readers skip it. No fsync of the directory: the proof is rewritten
        // every interval, and NFS close-to-open already makes the rename visible.
        let tmp = format!(".{node}.tmp");
        write_synced_at(&dir, &tmp, format!("{nonce}\n").as_bytes())
            .map_err(|e| write_reason(&proof_name, &e))?;
        rustix::fs::renameat(&dir, tmp.as_str(), &dir, node)
            .map_err(|e| write_reason(&proof_name, &e.into()))?;
        report.proofs = read_proofs(&dir, node)?;
    }
    Ok(())
}

/// Creates or truncates `path`, writes `data` and fsyncs it: on NFS an error of the
/// write itself (ENOSPC, EDQUOT) often only shows at fsync or close.
fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        // A symlink planted at this name must not make us truncate its target.
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// Opens (creating it if missing) `<path>/.quorate` as a directory fd, refusing a symlink
/// at either step.
fn proof_dir(path: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let base = rustix::fs::open(
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match rustix::fs::mkdirat(&base, PROOF_DIR, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    rustix::fs::openat(
        &base,
        PROOF_DIR,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        // O_NOFOLLOW | O_DIRECTORY on a symlink fails with ENOTDIR (or ELOOP): say which.
        let link = rustix::fs::statat(&base, PROOF_DIR, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
            });
        if link {
            io::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{PROOF_DIR} is a symlink, which could lead out of the share (make it a directory)"
                ),
            )
        } else {
            e.into()
        }
    })
}

/// [`write_synced`] for `name` inside the directory `dir`, never through a symlink.
fn write_synced_at(dir: &OwnedFd, name: &str, data: &[u8]) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = fs::File::from(fd);
    file.write_all(data)?;
    file.sync_all()
}

/// Reads every node's proof in `dir`: this node's own first, so that junk in the
/// directory can never crowd it out, then up to [`MAX_PROOFS`] others. Files that are
/// not regular, not named like a node, too long or not UTF-8 are skipped; a peer's proof
/// that cannot be read is left out, which the judgement
/// (`assess::mounts`) reports as not seen.
fn read_proofs(dir: &OwnedFd, me: &str) -> Result<BTreeMap<String, String>, String> {
    let mut proofs = BTreeMap::new();
    match read_proof(dir, me) {
        Ok(Some(nonce)) => {
            proofs.insert(me.to_owned(), nonce);
        }
        Ok(None) => {}
        Err(e) => return Err(read_reason(&format!(" back {PROOF_DIR}/{me}"), &e)),
    }
    let listing = rustix::fs::Dir::read_from(dir)
        .map_err(|e| read_reason(&format!(" {PROOF_DIR}/"), &e.into()))?;
    for entry in listing.take(MAX_PROOF_ENTRIES) {
        if proofs.len() >= MAX_PROOFS {
            break;
        }
        let entry = entry.map_err(|e| read_reason(&format!(" {PROOF_DIR}/"), &e.into()))?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == me || proto::NodeId::new(name).is_err() {
            continue;
        }
        // From the directory entry, without following symlinks (`read_proof` checks
        // again on the file it opened: some file systems report no type here).
        if !matches!(
            entry.file_type(),
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Unknown
        ) {
            continue;
        }
        if let Ok(Some(nonce)) = read_proof(dir, name) {
            proofs.insert(name.to_owned(), nonce);
        }
    }
    Ok(proofs)
}

/// A proof file's trimmed content; `None` when it is not a regular file, is longer than
/// [`MAX_PROOF_LEN`] or is not UTF-8.
fn read_proof(dir: &OwnedFd, name: &str) -> io::Result<Option<String>> {
    use rustix::fs::{Mode, OFlags};
    // Opening a FIFO for reading blocks until a writer comes; O_NONBLOCK returns at once.
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let file = match fd {
        Ok(fd) => fs::File::from(fd),
        // Our own proof not there is for the judge to report, not an io failure.
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(MAX_PROOF_LEN + 1);
    Read::take(file, MAX_PROOF_LEN as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_PROOF_LEN {
        return Ok(None);
    }
    Ok(String::from_utf8(buf).ok().map(|s| s.trim().to_owned()))
}

/// Why a read failed; `what` follows "reading" (" back .quorate/n1").
fn read_reason(what: &str, e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => format!("permission denied reading{what}"),
        _ => io_reason(&format!("cannot read{what}"), e),
    }
}

/// Why a write failed; `what` names the file written ("probe file", ".quorate/n1").
fn write_reason(what: &str, e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::ReadOnlyFilesystem => format!("read-only: cannot write {what} (EROFS)"),
        ErrorKind::PermissionDenied => format!("permission denied writing {what}"),
        ErrorKind::StorageFull => format!("full: cannot write {what} (ENOSPC)"),
        ErrorKind::QuotaExceeded => format!("over quota: cannot write {what} (EDQUOT)"),
        ErrorKind::NotADirectory => format!("cannot write {what}: {PROOF_DIR} is not a directory"),
        _ => io_reason(&format!("cannot write {what}"), e),
    }
}

fn io_reason(what: &str, e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::StaleNetworkFileHandle => {
            format!("{what}: stale NFS file handle (remount the share)")
        }
        _ => format!("{what}: {e}"),
    }
}

/// Starts one thread per mount that runs [`check_mount`] every `interval` on a
/// [`Worker`] of its own with the mount's `timeout`, and sends a
/// [`ProbeReport::Mount`] after every run. A run that does not return in time is
/// reported `hung`, keeping the last known source and fstype. Each thread ends when
/// `tx` is closed. Logs only changes: a mount turning bad, and a mount ok again.
pub fn spawn(mounts: &[Mount], node: String, nonce: String, tx: mpsc::Sender<ProbeReport>) {
    let node: Arc<str> = node.into();
    let nonce: Arc<str> = nonce.into();
    for (index, cfg) in mounts.iter().enumerate() {
        let cfg = Arc::new(cfg.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("quorate-mount{index}"))
            // It only waits on its worker and a channel.
            .stack_size(256 * 1024)
            .spawn({
                let (cfg, tx) = (Arc::clone(&cfg), tx.clone());
                let (node, nonce) = (Arc::clone(&node), Arc::clone(&nonce));
                move || run_mount(index, &cfg, &node, &nonce, &tx)
            });
        if let Err(e) = spawned {
            tracing::error!(
                "cannot start the check thread of mount {}: {e}",
                cfg.path.display()
            );
            let _ = tx.try_send(ProbeReport::Mount {
                index,
                report: failed_to_start(&cfg, &e),
            });
        }
    }
}

fn failed_to_start(cfg: &Mount, e: &io::Error) -> MountReport {
    MountReport {
        path: cfg.path.clone(),
        result: CheckResult {
            code: CheckCode::Fail,
            reason: format!("check not running: cannot start its thread ({e})"),
            at: clock::now(),
        },
        source: None,
        fstype: None,
        proofs: BTreeMap::new(),
    }
}

fn run_mount(
    index: usize,
    cfg: &Arc<Mount>,
    node: &Arc<str>,
    nonce: &Arc<str>,
    tx: &mpsc::Sender<ProbeReport>,
) {
    let worker = match Worker::spawn(&format!("mnt{index}")) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(
                "cannot start the check worker of mount {}: {e}",
                cfg.path.display()
            );
            let _ = tx.blocking_send(ProbeReport::Mount {
                index,
                report: failed_to_start(cfg, &e),
            });
            return;
        }
    };
    let interval: Duration = cfg.interval.0;
    let timeout: Duration = cfg.timeout.0;
    let mut last: Option<MountReport> = None;
    while !tx.is_closed() {
        let started = clock::now();
        let outcome = worker.run(timeout, {
            let (cfg, node, nonce) = (Arc::clone(cfg), Arc::clone(node), Arc::clone(nonce));
            move || check_mount(&cfg, &node, &nonce)
        });
        let report = match outcome {
            Outcome::Done(report) => report,
            Outcome::Hung | Outcome::StillHung => hung_report(cfg, last.as_ref()),
        };
        match change(last.as_ref().map(|r| &r.result), &report.result) {
            Change::None => {}
            Change::Failing => tracing::warn!(
                "mount {}: {}: {}",
                cfg.path.display(),
                report.result.code.as_str(),
                report.result.reason
            ),
            Change::Recovered => tracing::info!("mount {}: ok again", cfg.path.display()),
        }
        last = Some(report.clone());
        if tx
            .blocking_send(ProbeReport::Mount { index, report })
            .is_err()
        {
            return;
        }
        std::thread::sleep(
            interval.saturating_sub(clock::now().saturating_duration_since(started)),
        );
    }
}

/// The report of a run that did not answer in time: what the filesystem is is still
/// known from the last run; whether it works is not, and no proof was read.
fn hung_report(cfg: &Mount, last: Option<&MountReport>) -> MountReport {
    MountReport {
        path: cfg.path.clone(),
        result: CheckResult {
            code: CheckCode::Hung,
            reason: format!("no answer in {} (hung NFS?)", cfg.timeout),
            at: clock::now(),
        },
        source: last.and_then(|r| r.source.clone()),
        fstype: last.and_then(|r| r.fstype.clone()),
        proofs: BTreeMap::new(),
    }
}

/// What a new result changes, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    /// Turned bad, or bad for another reason.
    Failing,
    /// Ok again after being bad.
    Recovered,
}

fn change(prev: Option<&CheckResult>, new: &CheckResult) -> Change {
    let prev = prev.map(|p| (p.code, p.reason.as_str()));
    match (prev, new.code) {
        (None, CheckCode::Ok) => Change::None,
        (Some((CheckCode::Ok, _)), CheckCode::Ok) => Change::None,
        (Some(_), CheckCode::Ok) => Change::Recovered,
        (Some(p), code) if p == (code, new.reason.as_str()) => Change::None,
        _ => Change::Failing,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::Dur;

    const MOUNTINFO_SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 22 0:26 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=812356k,mode=755,inode64
120 22 0:52 / /mnt/nfs/repository rw,relatime shared:88 - nfs4 10.0.0.5:/export/repo rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.11,local_lock=none,addr=10.0.0.5
121 22 8:1 /srv/data /mnt/bind rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
122 22 0:53 / /mnt/my\\040share rw,relatime - cifs //fs/my\\040share rw,vers=3.1.1,addr=10.0.0.6
123 22 0:54 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X:/var/lib/docker/overlay2/l/Y,upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/var/lib/docker/overlay2/abc/work
this is not a mountinfo line
124 22 0:55 / /mnt/odd\\011tab\\012nl\\134bs rw master:3 shared:9 - tmpfs tmpfs rw
x 22 0:56 / /mnt/bad-id rw - tmpfs tmpfs rw
125 22 0:57 / /mnt/no-separator rw tmpfs tmpfs rw
126 22 057 / /mnt/bad-dev rw - tmpfs tmpfs rw
127 22 0:58 / relative rw - tmpfs tmpfs rw
128 22 0:59 / /mnt/too-many rw - tmpfs tmpfs rw extra

129 22 0:60 / /mnt/nfs/repository rw,relatime shared:90 - nfs4 10.0.0.7:/export/repo rw,vers=4.2,addr=10.0.0.7
130 22 0:61 / /mnt/trunc\\04 rw - tmpfs tmpfs rw
";

    fn entry(entries: &[MountEntry], id: u64) -> &MountEntry {
        entries.iter().find(|e| e.id == id).unwrap()
    }

    #[test]
    fn mountinfo_lines_parse_and_garbage_is_skipped() {
        let entries = parse_mountinfo(MOUNTINFO_SAMPLE);
        let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, [22, 25, 30, 120, 121, 122, 123, 124, 129, 130]);

        let nfs = entry(&entries, 120);
        assert_eq!(nfs.parent, 22);
        assert_eq!(nfs.dev, (0, 52));
        assert_eq!(nfs.root, Path::new("/"));
        assert_eq!(nfs.mount_point, Path::new("/mnt/nfs/repository"));
        assert_eq!(nfs.options, "rw,relatime");
        assert_eq!(nfs.optional, ["shared:88"]);
        assert_eq!(nfs.fstype, "nfs4");
        assert_eq!(nfs.source, "10.0.0.5:/export/repo");
        assert!(nfs.super_options.ends_with(",addr=10.0.0.5"));

        let bind = entry(&entries, 121);
        assert_eq!(bind.root, Path::new("/srv/data"));
        assert_eq!(bind.mount_point, Path::new("/mnt/bind"));
        assert_eq!(bind.source, "/dev/sda1");

        let cifs = entry(&entries, 122);
        assert_eq!(cifs.mount_point, Path::new("/mnt/my share"));
        assert_eq!(cifs.source, "//fs/my share");

        let tmpfs = entry(&entries, 30);
        assert_eq!(
            (tmpfs.fstype.as_str(), tmpfs.source.as_str()),
            ("tmpfs", "tmpfs")
        );

        let overlay = entry(&entries, 123);
        assert_eq!(overlay.fstype, "overlay");
        assert!(
            overlay
                .super_options
                .contains("lowerdir=/var/lib/docker/overlay2/l/X:")
        );

        let odd = entry(&entries, 124);
        assert_eq!(odd.mount_point, Path::new("/mnt/odd\ttab\nnl\\bs"));
        assert_eq!(odd.optional, ["master:3", "shared:9"]);

        // A backslash without three octal digits is kept as written.
        assert_eq!(
            entry(&entries, 130).mount_point,
            Path::new("/mnt/trunc\\04")
        );
    }

    #[test]
    fn unescape_table() {
        for (raw, want) in [
            ("plain", &b"plain"[..]),
            ("a\\040b", b"a b"),
            ("\\011\\012\\134", b"\t\n\\"),
            ("\\377", b"\xff"),
            ("\\400", b"\\400"),
            ("\\08", b"\\08"),
            ("end\\", b"end\\"),
            ("\\", b"\\"),
            ("é\\040", "é ".as_bytes()),
        ] {
            assert_eq!(unescape(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn parse_never_panics_on_prefixes_of_real_lines() {
        for line in MOUNTINFO_SAMPLE.lines() {
            for (i, _) in line.char_indices() {
                let _ = parse_mountinfo(&line[..i]);
            }
        }
    }

    #[test]
    fn mount_for_is_longest_prefix_by_components_last_mounted_wins() {
        let entries = parse_mountinfo(MOUNTINFO_SAMPLE);
        for (path, want) in [
            ("/", 22),
            ("/etc/hosts", 22),
            ("/proc", 25),
            ("/proc/self/mountinfo", 25),
            // Stacked on the same point: the later mount (129) is the one visible.
            ("/mnt/nfs/repository", 129),
            ("/mnt/nfs/repository/", 129),
            ("/mnt/nfs/repository/assets/a.jpg", 129),
            // A string prefix is not a path prefix.
            ("/mnt/nfs/repositoryX", 22),
            ("/mnt/nfs", 22),
            ("/mnt/bind/x", 121),
            ("/mnt/bindx", 22),
            ("/mnt/my share/x", 122),
            ("/mnt/my", 22),
        ] {
            let got = mount_for(&entries, Path::new(path)).map(|e| e.id);
            assert_eq!(got, Some(want), "{path}");
        }
        assert_eq!(mount_for(&entries, Path::new("relative/path")), None);
        assert_eq!(mount_for(&[], Path::new("/x")), None);
    }

    /// A plain required mount at `path` (the judging tests build shared ones on it).
    pub(crate) fn mount(path: &Path) -> Mount {
        Mount {
            path: path.to_path_buf(),
            expect_mount: false,
            writable: false,
            shared: false,
            required: true,
            fstype: None,
            interval: Dur(Duration::from_secs(2)),
            timeout: Dur(Duration::from_secs(5)),
        }
    }

    pub(crate) fn assert_ok(report: &MountReport) {
        assert_eq!(
            (report.result.code, report.result.reason.as_str()),
            (CheckCode::Ok, ""),
            "{}",
            report.path.display()
        );
    }

    fn assert_fail(report: &MountReport, reason: &str) {
        assert_eq!(report.result.code, CheckCode::Fail, "{report:?}");
        assert!(
            report.result.reason.starts_with(reason),
            "{:?} does not start with {reason:?}",
            report.result.reason
        );
    }

    #[test]
    fn plain_dir_is_ok_with_its_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let report = check_mount(&mount(dir.path()), "n1", "x");
        assert_ok(&report);
        assert!(
            report.fstype.is_some() && report.source.is_some(),
            "{report:?}"
        );
        assert!(report.proofs.is_empty());
    }

    #[test]
    fn missing_path_and_file_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_fail(
            &check_mount(&mount(&dir.path().join("nope")), "n1", "x"),
            "missing",
        );
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        assert_fail(&check_mount(&mount(&file), "n1", "x"), "not a directory");
        assert_fail(
            &check_mount(&mount(&file.join("below")), "n1", "x"),
            "missing",
        );
    }

    #[test]
    fn writable_dir_is_ok_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Mount {
            writable: true,
            ..mount(dir.path())
        };
        assert_ok(&check_mount(&cfg, "n1", "x"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn read_only_dir_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
        // Tests often run as root, whom permission bits do not stop: find out by trying,
        // which also covers CAP_DAC_OVERRIDE without root.
        let privileged = fs::write(dir.path().join("try"), "x").is_ok();
        let _ = fs::remove_file(dir.path().join("try"));
        let report = check_mount(
            &Mount {
                writable: true,
                ..mount(dir.path())
            },
            "n1",
            "x",
        );
        if privileged {
            assert_ok(&report);
        } else {
            assert_fail(&report, "permission denied writing probe file");
        }
        // Readable either way, and a check that does not write passes.
        assert_ok(&check_mount(&mount(dir.path()), "n1", "x"));
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn write_errors_say_what_to_do() {
        for (errno, want) in [
            (libc::EROFS, "read-only: cannot write probe file (EROFS)"),
            (libc::EACCES, "permission denied writing probe file"),
            (libc::ENOSPC, "full: cannot write probe file (ENOSPC)"),
            (libc::EDQUOT, "over quota: cannot write probe file (EDQUOT)"),
            (
                libc::ESTALE,
                "cannot write probe file: stale NFS file handle (remount the share)",
            ),
        ] {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(write_reason("probe file", &e), want);
        }
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(read_reason("", &e), "permission denied reading");
    }

    #[test]
    fn expect_mount_tells_a_directory_from_a_mount_point() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Mount {
            expect_mount: true,
            ..mount(dir.path())
        };
        assert_fail(&check_mount(&cfg, "n1", "x"), "not a mount point");

        let proc_cfg = Mount {
            expect_mount: true,
            fstype: Some("proc".into()),
            ..mount(Path::new("/proc"))
        };
        let report = check_mount(&proc_cfg, "n1", "x");
        assert_ok(&report);
        assert_eq!(report.fstype.as_deref(), Some("proc"));

        let nfs_cfg = Mount {
            fstype: Some("nfs4".into()),
            ..proc_cfg
        };
        assert_fail(
            &check_mount(&nfs_cfg, "n1", "x"),
            "fstype is proc from proc, expected nfs4",
        );
    }

    /// A writable, shared mount at `path` (the judging tests in `assess::mounts` too).
    pub(crate) fn shared(path: &Path) -> Mount {
        Mount {
            writable: true,
            shared: true,
            ..mount(path)
        }
    }

    pub(crate) fn proofs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn junk_in_the_proof_dir_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let proof_dir = dir.path().join(PROOF_DIR);
        fs::create_dir(&proof_dir).unwrap();
        fs::write(proof_dir.join("not a node"), "x").unwrap();
        fs::write(proof_dir.join(".n9.tmp"), "x").unwrap();
        fs::write(proof_dir.join("n3"), "a".repeat(MAX_PROOF_LEN + 1)).unwrap();
        fs::write(proof_dir.join("n4"), b"\xff\xfe").unwrap();
        fs::create_dir(proof_dir.join("n5")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", proof_dir.join("n6")).unwrap();
        fs::write(proof_dir.join("n7"), "  nonce-7 \n").unwrap();
        // A FIFO would block a plain open for reading until a writer came.
        let fifo = std::process::Command::new("mkfifo")
            .arg(proof_dir.join("n8"))
            .status()
            .is_ok_and(|s| s.success());
        let report = check_mount(&shared(dir.path()), "n1", "nonce-1");
        assert_ok(&report);
        assert_eq!(
            report.proofs,
            proofs(&[("n1", "nonce-1"), ("n7", "nonce-7")]),
            "fifo: {fifo}"
        );
    }

    #[test]
    fn a_planted_symlink_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(".quorate-probe-n1")).unwrap();
        let report = check_mount(
            &Mount {
                writable: true,
                ..mount(dir.path())
            },
            "n1",
            "x",
        );
        assert_fail(&report, "cannot write probe file");
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_proof_dir_that_is_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(PROOF_DIR)).unwrap();
        assert_fail(
            &check_mount(&shared(dir.path()), "n1", "a"),
            "cannot write .quorate/n1: .quorate is a symlink",
        );
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_proof_dir_that_is_a_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(PROOF_DIR), "x").unwrap();
        assert_fail(
            &check_mount(&shared(dir.path()), "n1", "a"),
            "cannot write .quorate/n1: .quorate is not a directory",
        );
    }

    #[test]
    fn a_bad_node_name_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_fail(
            &check_mount(&shared(dir.path()), "../x", "n"),
            "invalid node name",
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// (case, what n1 read, peers with their advertised nonces, expected judgement).
    #[test]
    fn changes_are_logged_once() {
        let at = clock::now();
        let r = |code, reason: &str| CheckResult {
            code,
            reason: reason.to_owned(),
            at,
        };
        let ok = r(CheckCode::Ok, "");
        let missing = r(CheckCode::Fail, "missing");
        let hung = r(CheckCode::Hung, "no answer in 5s (hung NFS?)");
        for (prev, new, want) in [
            (None, &ok, Change::None),
            (None, &missing, Change::Failing),
            (Some(&ok), &ok, Change::None),
            (Some(&ok), &missing, Change::Failing),
            (Some(&missing), &missing, Change::None),
            (Some(&missing), &hung, Change::Failing),
            (Some(&hung), &hung, Change::None),
            (Some(&hung), &ok, Change::Recovered),
        ] {
            assert_eq!(change(prev, new), want, "{prev:?} -> {new:?}");
        }
    }

    #[test]
    fn hung_keeps_what_was_known() {
        let cfg = mount(Path::new("/mnt/nfs/repository"));
        let last = MountReport {
            source: Some("10.0.0.5:/export/repo".into()),
            fstype: Some("nfs4".into()),
            proofs: proofs(&[("n1", "a")]),
            ..failed_to_start(&cfg, &io::Error::other("x"))
        };
        let hung = hung_report(&cfg, Some(&last));
        assert_eq!(hung.result.code, CheckCode::Hung);
        assert_eq!(hung.result.reason, "no answer in 5s (hung NFS?)");
        assert_eq!(hung.source, last.source);
        assert_eq!(hung.fstype, last.fstype);
        assert!(hung.proofs.is_empty());
    }

    #[test]
    fn spawn_reports_every_mount_until_the_channel_closes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let fast = |path: &Path| Mount {
            interval: Dur(Duration::from_millis(20)),
            ..shared(path)
        };
        let mounts = [
            fast(a.path()),
            Mount {
                interval: Dur(Duration::from_millis(20)),
                ..mount(&b.path().join("gone"))
            },
        ];
        let (tx, mut rx) = mpsc::channel(16);
        spawn(&mounts, "n1".into(), "nonce-1".into(), tx);
        let mut seen = [0usize; 2];
        while seen.iter().any(|&n| n < 2) {
            let Some(ProbeReport::Mount { index, report }) = rx.blocking_recv() else {
                panic!("unexpected report or closed channel");
            };
            match index {
                0 => {
                    assert_ok(&report);
                    assert_eq!(report.proofs, proofs(&[("n1", "nonce-1")]));
                }
                1 => assert_fail(&report, "missing"),
                _ => panic!("index {index}"),
            }
            seen[index] += 1;
        }
        // Closing the channel stops the threads; nothing to observe but that the test
        // ends without a thread writing into a removed directory panicking.
        drop(rx);
    }
}
