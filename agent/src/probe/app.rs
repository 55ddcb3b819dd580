//! The `[app]` check (an HTTP GET, a TCP connect or a command) with rise/fall, and the
//! app version (`version_file` or `version_command`).
//!
//! Owns: one thread (`quorate-app`) that runs the check every `interval` and reads the
//! version every 30 s, each through its own [`Worker`], and reports to the driver as
//! [`ProbeReport::App`] / [`ProbeReport::AppVersion`]; the rise/fall state machine
//! ([`RiseFall`]); and the app check's log lines (transitions, plus one summary every
//! 10 minutes while failing).
//!
//! Must never: run on (or block) the async runtime, start a check while the previous one
//! is stuck, read more than a few KiB from the app, leave a timed-out command's processes
//! running, or log a line per probe.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use proto::WallMicros;
use tokio::sync::mpsc;

use super::runner::{Outcome, Worker};
use super::{CheckCode, CheckResult, ProbeReport};
use crate::clock;
use crate::config::{App, AppCheck};

/// How often the version is read again (an upgrade changes it while the agent runs).
const VERSION_EVERY: Duration = Duration::from_secs(30);
/// How often a check that stays failing is logged again.
const SUMMARY_EVERY: Duration = Duration::from_secs(600);
/// The probes apply the timeout themselves (and kill a command at it); the worker waits
/// a little longer so that such a probe reports its own reason ("killed after 2s"), still
/// as `hung`.
const GRACE: Duration = Duration::from_millis(500);
/// The most read of an HTTP answer: the status line is all we want.
const STATUS_LINE_MAX: usize = 2048;
/// The most kept of a version file or command output.
const VERSION_READ_MAX: u64 = 4096;
/// A version longer than this is cut (it travels in every node's state).
const VERSION_MAX_CHARS: usize = 64;
/// The probe loop and a command's output reader need little stack.
const STACK_SIZE: usize = 256 * 1024;

/// Starts the app probe thread. Without `[app] check` only the version is read; without
/// a version source either, nothing starts.
///
/// Sends [`ProbeReport::App`] after every probe (so at least every `interval`, with a
/// fresh `at`, and on every change) and [`ProbeReport::AppVersion`] when the version
/// changes. The thread ends when the channel is closed.
pub fn spawn(app: &App, tx: mpsc::Sender<ProbeReport>) {
    if app.check.is_none() && app.version_file.is_none() && app.version_command.is_none() {
        return;
    }
    let app = app.clone();
    let has_check = app.check.is_some();
    let thread_tx = tx.clone();
    let spawned = thread::Builder::new()
        .name("quorate-app".into())
        .stack_size(STACK_SIZE)
        .spawn(move || run(&app, &thread_tx));
    if let Err(e) = spawned {
        tracing::error!("cannot start the app check thread: {e}");
        if has_check {
            // Say so where the operator looks, rather than leave the check pending.
            let _ = tx.try_send(ProbeReport::App(CheckResult {
                code: CheckCode::Fail,
                reason: format!("cannot start the check thread: {e}"),
                at: clock::now(),
            }));
        }
    }
}

/// The probe loop: check and version, each on its own schedule.
fn run(app: &App, tx: &mpsc::Sender<ProbeReport>) {
    let mut check = match &app.check {
        None => None,
        Some(c) => match Worker::spawn("app-check") {
            Ok(worker) => Some(CheckLoop::new(worker, c.clone(), app)),
            Err(e) => {
                tracing::error!("cannot start the app check worker thread: {e}");
                let report = ProbeReport::App(CheckResult {
                    code: CheckCode::Fail,
                    reason: format!("cannot start the check thread: {e}"),
                    at: clock::now(),
                });
                if tx.blocking_send(report).is_err() {
                    return;
                }
                None
            }
        },
    };
    let mut version = if app.version_file.is_some() || app.version_command.is_some() {
        match Worker::spawn("app-version") {
            Ok(worker) => Some(VersionLoop { worker, last: None }),
            Err(e) => {
                tracing::error!("cannot start the app version worker thread: {e}");
                let report =
                    ProbeReport::AppVersion(Err(format!("cannot start the version thread: {e}")));
                if tx.blocking_send(report).is_err() {
                    return;
                }
                None
            }
        }
    } else {
        None
    };

    let start = clock::now();
    let (mut next_check, mut next_version) = (start, start);
    loop {
        if let Some(v) = &mut version
            && clock::now() >= next_version
        {
            if let Some(report) = v.step(app)
                && tx.blocking_send(report).is_err()
            {
                return;
            }
            next_version = after(next_version, VERSION_EVERY, clock::now());
        }
        if let Some(c) = &mut check
            && clock::now() >= next_check
        {
            if tx.blocking_send(c.step()).is_err() {
                return;
            }
            next_check = after(next_check, app.interval, clock::now());
        }
        let wake = match (&check, &version) {
            (Some(_), Some(_)) => next_check.min(next_version),
            (Some(_), None) => next_check,
            (None, Some(_)) => next_version,
            (None, None) => return,
        };
        // Nothing is sent while we sleep; notice a closed channel here too, so a stopped
        // driver does not leave the thread probing for up to 30 s.
        if tx.is_closed() {
            return;
        }
        thread::sleep(wake.saturating_duration_since(clock::now()));
    }
}

/// The next tick after `prev`, or now if that is already past (a slow probe delays the
/// schedule instead of causing a burst of catch-up probes).
fn after(prev: Instant, every: Duration, now: Instant) -> Instant {
    (prev + every).max(now)
}

/// The check half of the probe loop.
struct CheckLoop {
    worker: Worker,
    check: AppCheck,
    expect_status: u16,
    timeout: Duration,
    rise_fall: RiseFall,
    log: CheckLog,
}

impl CheckLoop {
    fn new(worker: Worker, check: AppCheck, app: &App) -> Self {
        Self {
            worker,
            check,
            expect_status: app.expect_status,
            timeout: app.timeout,
            rise_fall: RiseFall::new(app.rise, app.fall),
            log: CheckLog::default(),
        }
    }

    /// Runs one probe and returns the report to send.
    fn step(&mut self) -> ProbeReport {
        let (check, expect, timeout) = (self.check.clone(), self.expect_status, self.timeout);
        let outcome = self
            .worker
            .run(timeout + GRACE, move || probe(&check, expect, timeout));
        let observed = match outcome {
            Outcome::Done(Ok(())) => Observed::Pass,
            Outcome::Done(Err(ProbeError::Failed(reason))) => Observed::Fail(reason),
            Outcome::Done(Err(ProbeError::TimedOut(reason))) => Observed::Hung(reason),
            Outcome::Hung => Observed::Hung(format!("no answer in {}", human(timeout))),
            // The reason stays the same while stuck: it travels in the node's state, and
            // a text that changed every second would make every peer fetch it again.
            Outcome::StillHung => Observed::Hung(format!(
                "no answer in {}; the check is still running",
                human(timeout)
            )),
        };
        let failed = !matches!(observed, Observed::Pass);
        self.rise_fall.observe(observed);
        let verdict = self.rise_fall.verdict().cloned().unwrap_or(Verdict {
            // Unreachable: a verdict exists after the first observation.
            code: CheckCode::Fail,
            reason: "no result yet".into(),
        });
        let now = clock::now();
        if let Some(line) = self.log.note(now, clock::wall(), &verdict, failed) {
            line.emit();
        }
        ProbeReport::App(CheckResult {
            code: verdict.code,
            reason: verdict.reason,
            at: now,
        })
    }
}

/// The version half of the probe loop.
struct VersionLoop {
    worker: Worker,
    /// The version last sent.
    last: Option<Result<String, String>>,
}

impl VersionLoop {
    /// Reads the version; returns a report when it changed.
    fn step(&mut self, app: &App) -> Option<ProbeReport> {
        let job_app = app.clone();
        let read = match self
            .worker
            .run(app.timeout + GRACE, move || read_version(&job_app))
        {
            Outcome::Done(read) => read?,
            Outcome::Hung => Err(format!(
                "{}: no answer in {}",
                version_source(app),
                human(app.timeout)
            )),
            // Keep what was last said until the stuck read returns.
            Outcome::StillHung => return None,
        };
        if self.last.as_ref() == Some(&read) {
            return None;
        }
        match &read {
            Ok(v) => tracing::info!("app version: {v}"),
            Err(e) => tracing::warn!("cannot read the app version: {e}"),
        }
        self.last = Some(read.clone());
        Some(ProbeReport::AppVersion(read))
    }
}

// ---------------------------------------------------------------------------------------
// Probes. Each blocks (it runs on a Worker) but applies the timeout itself where the OS
// allows, so the usual failures carry a precise reason.

/// Why a probe did not pass. The split matters to the operator: a wrong answer is `fail`,
/// no answer at all within the timeout is `hung` (a stuck app or NFS mount, not a broken
/// one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// It answered, and the answer was wrong (or the connection was refused).
    Failed(String),
    /// It gave no answer within the timeout (a command is killed at it).
    TimedOut(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(reason) | Self::TimedOut(reason) => f.write_str(reason),
        }
    }
}

impl From<String> for ProbeError {
    fn from(reason: String) -> Self {
        Self::Failed(reason)
    }
}

impl From<&str> for ProbeError {
    fn from(reason: &str) -> Self {
        Self::Failed(reason.into())
    }
}

/// Runs one app check: `Ok` when it passes, else why not.
pub fn probe(check: &AppCheck, expect_status: u16, timeout: Duration) -> Result<(), ProbeError> {
    match check {
        AppCheck::Http { authority, path } => {
            let status = http_status(authority, path, timeout)?;
            if status == expect_status {
                Ok(())
            } else {
                Err(ProbeError::Failed(format!("HTTP {status}")))
            }
        }
        AppCheck::Tcp { authority } => {
            let deadline = clock::now() + timeout;
            connect(authority, deadline, timeout).map(drop)
        }
        AppCheck::Exec { command } => run_sh(command, timeout, Output::Discard).map(drop),
    }
}

/// A minimal HTTP/1.1 GET: returns the status code, having read the status line only.
pub fn http_status(authority: &str, path: &str, timeout: Duration) -> Result<u16, ProbeError> {
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("path {path:?} has spaces or control characters").into());
    }
    let deadline = clock::now() + timeout;
    let no_answer = || ProbeError::TimedOut(format!("no answer in {}", human(timeout)));
    let mut stream = connect(authority, deadline, timeout)?;

    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: quorate\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let left = remaining(deadline).ok_or_else(no_answer)?;
    stream
        .set_write_timeout(Some(left))
        .map_err(|e| format!("send: {}", describe(&e)))?;
    stream.write_all(request.as_bytes()).map_err(|e| {
        if timed_out(&e) {
            no_answer()
        } else {
            format!("send: {}", describe(&e)).into()
        }
    })?;

    let mut buf = [0u8; STATUS_LINE_MAX];
    let mut len = 0;
    while len < buf.len() && !buf[..len].contains(&b'\n') {
        let left = remaining(deadline).ok_or_else(no_answer)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| format!("receive: {}", describe(&e)))?;
        match stream.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => return Err(no_answer()),
            Err(e) => return Err(format!("receive: {}", describe(&e)).into()),
        }
    }
    Ok(parse_status_line(&buf[..len])?)
}

/// The status code from the start of an HTTP answer.
fn parse_status_line(answer: &[u8]) -> Result<u16, String> {
    if answer.is_empty() {
        return Err("connection closed without an answer".into());
    }
    let line = answer.split(|&b| b == b'\n').next().unwrap_or(answer);
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if version.starts_with("HTTP/1.")
        && code.len() == 3
        && code.bytes().all(|b| b.is_ascii_digit())
        && let Ok(code) = code.parse::<u16>()
    {
        return Ok(code);
    }
    let shown: String = line.chars().take(40).collect();
    Err(format!("not an HTTP answer: {shown:?}"))
}

/// Connects to the first address of `authority` that answers before `deadline`.
fn connect(authority: &str, deadline: Instant, timeout: Duration) -> Result<TcpStream, ProbeError> {
    // Name resolution has no timeout of its own; a stuck resolver is the worker's `hung`.
    let addrs: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map_err(|e| format!("resolve {authority}: {}", describe(&e)))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        let Some(left) = remaining(deadline) else {
            break;
        };
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        _ if addrs.is_empty() => format!("resolve {authority}: no address").into(),
        Some(e) if !timed_out(&e) => format!("connect: {}", describe(&e)).into(),
        _ => ProbeError::TimedOut(format!("connect: no answer in {}", human(timeout))),
    })
}

/// What to do with a command's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Discard,
    /// Return its first line.
    FirstLine,
}

/// Runs `/bin/sh -c command` in a process group of its own, with stdin and stderr null.
/// On exit 0 returns the first line of its output (empty with [`Output::Discard`]); past
/// `timeout` kills the whole group, so a check's children do not outlive it.
fn run_sh(command: &str, timeout: Duration, output: Output) -> Result<String, ProbeError> {
    let deadline = clock::now() + timeout;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(match output {
            Output::Discard => Stdio::null(),
            Output::FirstLine => Stdio::piped(),
        })
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start /bin/sh: {}", describe(&e)))?;
    let lines = match child.stdout.take() {
        Some(out) => match read_output(out) {
            Ok(rx) => Some(rx),
            Err(e) => {
                kill_group(&mut child);
                return Err(format!("cannot start the output reader: {e}").into());
            }
        },
        None => None,
    };

    let status = wait_until(&mut child, deadline, timeout)?;
    // The output is complete when every writer closed it: normally right at exit, unless
    // the command left a child holding it. Such a child is killed with the rest of the
    // group at the deadline, or its reader thread would wait on the pipe for as long as
    // it lives (one more thread every run).
    let out = lines.map(|lines| {
        lines
            .recv_timeout(remaining(deadline).unwrap_or(Duration::ZERO))
            .map_err(|_| kill_leftovers(&child))
    });
    if !status.success() {
        return Err(describe_exit(status).into());
    }
    match out {
        None => Ok(String::new()),
        Some(Ok(out)) => Ok(out),
        Some(Err(())) => Err(ProbeError::TimedOut(format!(
            "output still open {} after start",
            human(timeout)
        ))),
    }
}

/// SIGKILLs what is left of an exited command's process group. Safe after the leader
/// was reaped: a member still holds the output pipe open, so the group (and its id) is
/// still in use and cannot name anyone else's.
fn kill_leftovers(child: &Child) {
    let Some(pgid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL)
        && e != rustix::io::Errno::SRCH
    {
        tracing::warn!("cannot kill what the command left running (group {pgid:?}): {e}");
    }
}

/// Waits for `child` until `deadline`, then kills its process group.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
    timeout: Duration,
) -> Result<ExitStatus, ProbeError> {
    // std has no wait with a timeout; poll, quickly at first (most checks are fast).
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => {
                kill_group(child);
                return Err(format!("wait: {}", describe(&e)).into());
            }
        }
        let Some(left) = remaining(deadline) else {
            kill_group(child);
            return Err(ProbeError::TimedOut(format!(
                "killed after {}",
                human(timeout)
            )));
        };
        thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// SIGKILLs the child's whole process group and reaps the child.
fn kill_group(child: &mut Child) {
    // The child leads its group (process_group(0)) and is not reaped yet, so its pid
    // cannot name anyone else's group.
    let pgid = rustix::process::Pid::from_child(child);
    if let Err(e) = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL) {
        // ESRCH: the group is already gone.
        if e != rustix::io::Errno::SRCH {
            tracing::warn!("cannot kill the check command's process group {pgid:?}: {e}");
        }
    }
    // Reap it now, or it stays a zombie. SIGKILL cannot be ignored; this waits only if the
    // process is stuck in the kernel, which is the worker's `hung`.
    let _ = child.wait();
}

/// Reads a command's output on a thread of its own (a pipe read has no timeout): keeps
/// the first line (at most [`VERSION_READ_MAX`] bytes), drains the rest so the command
/// never blocks on a full pipe, and sends the line at end of output.
fn read_output(mut out: ChildStdout) -> io::Result<std_mpsc::Receiver<String>> {
    let (tx, rx) = std_mpsc::sync_channel(1);
    thread::Builder::new()
        .name("quorate-app-out".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let mut kept = Vec::new();
            let _ = (&mut out).take(VERSION_READ_MAX).read_to_end(&mut kept);
            let _ = io::copy(&mut out, &mut io::sink());
            let _ = tx.send(first_line(&kept));
        })?;
    Ok(rx)
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("ended: {status}"),
    }
}

// ---------------------------------------------------------------------------------------
// Version.

/// The app version from `version_file` (its first line) or `version_command` (the first
/// line of its output, run with the app timeout), trimmed and cut to 64 characters.
/// `None` when neither is configured; `Err` says what failed.
pub fn read_version(app: &App) -> Option<Result<String, String>> {
    if let Some(path) = &app.version_file {
        let read = read_head(path)
            .map_err(|e| describe(&e))
            .and_then(|head| non_empty(first_line(&head)));
        return Some(read.map_err(|e| format!("{}: {e}", version_source(app))));
    }
    let command = app.version_command.as_ref()?;
    let read = run_sh(command, app.timeout, Output::FirstLine)
        .map_err(|e| e.to_string())
        .and_then(non_empty);
    Some(read.map_err(|e| format!("{}: {e}", version_source(app))))
}

/// Where the version comes from, to prefix what went wrong.
fn version_source(app: &App) -> String {
    match &app.version_file {
        Some(path) => format!("version_file {}", path.display()),
        None => "version_command".into(),
    }
}

/// The first [`VERSION_READ_MAX`] bytes of a file (a version file is one short line; do
/// not read a huge one whole).
fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    File::open(path)?
        .take(VERSION_READ_MAX)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The first line, trimmed and cut to [`VERSION_MAX_CHARS`] characters.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or("").trim();
    line.chars()
        .take(VERSION_MAX_CHARS)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn non_empty(version: String) -> Result<String, String> {
    if version.is_empty() {
        Err("empty first line".into())
    } else {
        Ok(version)
    }
}

// ---------------------------------------------------------------------------------------
// Rise and fall.

/// One probe's result, as [`RiseFall`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Pass,
    /// Failed, with the reason.
    Fail(String),
    /// Did not return in time, with the reason.
    Hung(String),
}

/// The app check's state after rise/fall: `Ok`, `Fail` or `Hung`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub code: CheckCode,
    /// Empty when ok.
    pub reason: String,
}

/// Rise/fall: a passing app turns failing only after `fall` consecutive failed probes
/// (hung ones included), and a failing app turns passing only after `rise` consecutive
/// passes, so one slow answer does not flap the node.
///
/// It starts pending ([`RiseFall::verdict`] is `None`), and the first probe decides at
/// once, passing or failing: a node that starts does not wait `rise × interval` before
/// it can be ready, nor look healthy for `fall × interval` while its app is down.
///
/// While failing, the verdict carries the latest failure: code `Hung` if that one hung,
/// `Fail` otherwise, with its reason.
#[derive(Debug, Clone)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    verdict: Option<Verdict>,
    /// Consecutive probes that disagree with the verdict.
    against: u32,
}

impl RiseFall {
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            // The config check refuses 0; treat it as 1 rather than never changing.
            rise: rise.max(1),
            fall: fall.max(1),
            verdict: None,
            against: 0,
        }
    }

    /// Takes one probe's result; returns whether the verdict turned (pending to
    /// anything, passing to failing, or failing to passing).
    pub fn observe(&mut self, observed: Observed) -> bool {
        let failure = match observed {
            Observed::Pass => None,
            Observed::Fail(reason) => Some(Verdict {
                code: CheckCode::Fail,
                reason,
            }),
            Observed::Hung(reason) => Some(Verdict {
                code: CheckCode::Hung,
                reason,
            }),
        };
        let Some(verdict) = &mut self.verdict else {
            self.verdict = Some(failure.unwrap_or_else(ok_verdict));
            self.against = 0;
            return true;
        };
        let passing = verdict.code == CheckCode::Ok;
        match (passing, failure) {
            (true, None) => {
                self.against = 0;
                false
            }
            (true, Some(failure)) => {
                self.against += 1;
                if self.against >= self.fall {
                    *verdict = failure;
                    self.against = 0;
                    true
                } else {
                    false
                }
            }
            (false, None) => {
                self.against += 1;
                if self.against >= self.rise {
                    *verdict = ok_verdict();
                    self.against = 0;
                    true
                } else {
                    false
                }
            }
            (false, Some(failure)) => {
                // Still failing: show the latest failure, and restart the pass count.
                *verdict = failure;
                self.against = 0;
                false
            }
        }
    }

    /// The current verdict; `None` until the first probe.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }
}

fn ok_verdict() -> Verdict {
    Verdict {
        code: CheckCode::Ok,
        reason: String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Logging.

/// A line the app check logs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LogLine {
    /// The app turned failing (a warning).
    Failing(String),
    /// The app passes: at start (`after` is `None`) or again after failing.
    Passing { after: Option<(u64, WallMicros)> },
    /// The app has been failing for another [`SUMMARY_EVERY`].
    StillFailing {
        reason: String,
        failures: u64,
        since: WallMicros,
    },
}

impl LogLine {
    fn emit(&self) {
        match self {
            LogLine::Failing(_) | LogLine::StillFailing { .. } => tracing::warn!("{self}"),
            LogLine::Passing { .. } => tracing::info!("{self}"),
        }
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogLine::Failing(reason) => write!(f, "app check failing: {reason}"),
            LogLine::Passing { after: None } => write!(f, "app check passing"),
            LogLine::Passing {
                after: Some((failures, since)),
            } => write!(
                f,
                "app check passing again (failed ×{failures} since {})",
                time_of_day(*since)
            ),
            LogLine::StillFailing {
                reason,
                failures,
                since,
            } => write!(
                f,
                "app check still failing: {reason} (×{failures} since {})",
                time_of_day(*since)
            ),
        }
    }
}

/// Decides which verdicts are worth a log line: transitions, and one summary per
/// [`SUMMARY_EVERY`] while failing, never a line per probe.
#[derive(Debug, Default)]
struct CheckLog {
    started: bool,
    failing: Option<FailingSpell>,
}

#[derive(Debug)]
struct FailingSpell {
    since: WallMicros,
    last_line: Instant,
    /// Failed probes since it turned failing, that one included.
    failures: u64,
}

impl CheckLog {
    /// Takes the verdict after a probe (`failed`: whether that probe failed or hung).
    fn note(
        &mut self,
        now: Instant,
        wall: WallMicros,
        verdict: &Verdict,
        failed: bool,
    ) -> Option<LogLine> {
        let first = !self.started;
        self.started = true;
        if verdict.code == CheckCode::Ok {
            return match self.failing.take() {
                Some(spell) => Some(LogLine::Passing {
                    after: Some((spell.failures, spell.since)),
                }),
                None if first => Some(LogLine::Passing { after: None }),
                None => None,
            };
        }
        let Some(spell) = &mut self.failing else {
            self.failing = Some(FailingSpell {
                since: wall,
                last_line: now,
                failures: 1,
            });
            return Some(LogLine::Failing(verdict.reason.clone()));
        };
        if failed {
            spell.failures += 1;
        }
        if now.saturating_duration_since(spell.last_line) < SUMMARY_EVERY {
            return None;
        }
        spell.last_line = now;
        Some(LogLine::StillFailing {
            reason: verdict.reason.clone(),
            failures: spell.failures,
            since: spell.since,
        })
    }
}

/// `HH:MM:SS UTC` of a wall-clock time (the log's own timestamps are UTC too).
fn time_of_day(wall: WallMicros) -> String {
    let secs = (wall.0 / 1_000_000) % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// ---------------------------------------------------------------------------------------
// Small helpers.

/// Time left until `deadline`, `None` once it passed (a zero timeout is an error to std).
fn remaining(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(clock::now())).filter(|d| !d.is_zero())
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// An I/O error as a reason: "connection refused", not "Connection refused (os error
/// 111)".
fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", e.kind()),
    }
}

fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    const T: Duration = Duration::from_millis(500);

    /// Serves one connection: reads the request head, answers `answer` (or nothing, if
    /// `None`, holding the connection open), and hands back the request.
    fn serve_once(answer: Option<&'static str>) -> (String, std_mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let (tx, rx) = std_mpsc::channel();
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
            match answer {
                Some(a) => {
                    let _ = conn.write_all(a.as_bytes());
                    // A long body we must not read.
                    let _ = conn.write_all(&[b'x'; 64 * 1024]);
                }
                None => thread::sleep(Duration::from_secs(5)),
            }
        });
        (authority, rx)
    }

    fn http(authority: &str) -> AppCheck {
        AppCheck::Http {
            authority: authority.into(),
            path: "/status?x=1".into(),
        }
    }

    #[test]
    fn http_200_passes_and_sends_a_proper_request() {
        let (authority, request) =
            serve_once(Some("HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n"));
        assert_eq!(probe(&http(&authority), 200, T), Ok(()));
        let request = request.recv().unwrap();
        assert!(
            request.starts_with("GET /status?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains(&format!("\r\nHost: {authority}\r\n")),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    }

    #[test]
    fn http_503_fails_with_the_status() {
        let (authority, _request) = serve_once(Some("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        assert_eq!(probe(&http(&authority), 200, T), Err("HTTP 503".into()));
        let (authority, _request) = serve_once(Some("HTTP/1.0 503 Service Unavailable\r\n\r\n"));
        assert_eq!(
            probe(&http(&authority), 503, T),
            Ok(()),
            "expect_status is honoured"
        );
    }

    #[test]
    fn http_without_answer_is_hung_within_the_timeout() {
        let (authority, _request) = serve_once(None);
        let start = clock::now();
        assert_eq!(
            probe(&http(&authority), 200, T),
            Err(ProbeError::TimedOut("no answer in 500ms".into()))
        );
        let took = clock::now() - start;
        assert!(took >= T && took < T + Duration::from_secs(1), "{took:?}");
    }

    /// An address nothing listens on.
    fn closed_port() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    }

    #[test]
    fn refused_connections_fail() {
        let authority = closed_port();
        let tcp = AppCheck::Tcp {
            authority: authority.clone(),
        };
        assert_eq!(
            probe(&tcp, 200, T),
            Err("connect: connection refused".into())
        );
        assert_eq!(
            probe(&http(&authority), 200, T),
            Err("connect: connection refused".into())
        );
    }

    #[test]
    fn tcp_connect_passes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = AppCheck::Tcp {
            authority: listener.local_addr().unwrap().to_string(),
        };
        assert_eq!(probe(&tcp, 200, T), Ok(()));
    }

    #[test]
    fn status_lines_parse() {
        let table: &[(&[u8], Result<u16, &str>)] = &[
            (b"HTTP/1.1 200 OK\r\n", Ok(200)),
            (b"HTTP/1.0 404 Not Found\r\nServer: x\r\n", Ok(404)),
            (b"HTTP/1.1 204\r\n", Ok(204)),
            (b"HTTP/1.1 200 OK", Ok(200)),
            (b"", Err("connection closed without an answer")),
            (
                b"SSH-2.0-OpenSSH\r\n",
                Err("not an HTTP answer: \"SSH-2.0-OpenSSH\""),
            ),
            (
                b"HTTP/1.1 2000 OK\r\n",
                Err("not an HTTP answer: \"HTTP/1.1 2000 OK\""),
            ),
            (b"HTTP/2 200\r\n", Err("not an HTTP answer: \"HTTP/2 200\"")),
        ];
        for (answer, want) in table {
            let got = parse_status_line(answer);
            assert_eq!(got, want.map_err(String::from), "{answer:?}");
        }
    }

    fn exec(command: &str) -> AppCheck {
        AppCheck::Exec {
            command: command.into(),
        }
    }

    #[test]
    fn exec_passes_on_exit_0_and_fails_otherwise() {
        assert_eq!(probe(&exec("exit 0"), 200, T), Ok(()));
        assert_eq!(probe(&exec("true > /dev/null"), 200, T), Ok(()));
        assert_eq!(probe(&exec("exit 3"), 200, T), Err("exit 3".into()));
        assert_eq!(
            probe(&exec("kill -TERM $$"), 200, T),
            Err("killed by signal 15".into())
        );
    }

    #[test]
    fn exec_past_the_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The sleep is a grandchild (sh waits for it), so only a group kill reaches it.
        let command = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let start = clock::now();
        assert_eq!(
            probe(&exec(&command), 200, T),
            Err(ProbeError::TimedOut("killed after 500ms".into()))
        );
        let took = clock::now() - start;
        assert!(took < T + Duration::from_secs(1), "{took:?}");

        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        // Gone, or a zombie waiting for whoever reaps orphans here.
        for _ in 0..100 {
            match std::fs::read_to_string(&stat) {
                Err(_) => return,
                Ok(s) if s.rsplit(')').next().unwrap().trim_start().starts_with('Z') => return,
                Ok(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
        panic!("the command's sleep ({}) survived the kill", pid.trim());
    }

    #[test]
    fn exec_plain_sleep_is_killed_in_time() {
        let start = clock::now();
        assert_eq!(
            probe(&exec("sleep 60"), 200, T),
            Err(ProbeError::TimedOut("killed after 500ms".into()))
        );
        assert!(clock::now() - start < T + Duration::from_secs(1));
    }

    fn app() -> App {
        App {
            check: None,
            expect_status: 200,
            interval: Duration::from_secs(1),
            timeout: T,
            rise: 2,
            fall: 2,
            version_file: None,
            version_command: None,
            upgrade_gate: true,
        }
    }

    #[test]
    fn version_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("VERSION");
        std::fs::write(&path, "  4.2.1-rc1  \nbuilt yesterday\n").unwrap();
        let mut a = app();
        a.version_file = Some(path.clone());
        assert_eq!(read_version(&a), Some(Ok("4.2.1-rc1".into())));

        std::fs::write(&path, format!("{}\n", "v".repeat(200))).unwrap();
        assert_eq!(read_version(&a), Some(Ok("v".repeat(64))));

        std::fs::write(&path, "\n").unwrap();
        let empty = read_version(&a).unwrap().unwrap_err();
        assert!(empty.ends_with("VERSION: empty first line"), "{empty}");

        a.version_file = Some(dir.path().join("missing"));
        let missing = read_version(&a).unwrap().unwrap_err();
        assert!(missing.starts_with("version_file "), "{missing}");
        assert!(
            missing.ends_with("missing: no such file or directory"),
            "{missing}"
        );
    }

    #[test]
    fn version_from_a_command() {
        let mut a = app();
        assert_eq!(read_version(&a), None);
        a.version_command = Some("echo ' 1.2.3 '; echo second line; echo noise >&2".into());
        assert_eq!(read_version(&a), Some(Ok("1.2.3".into())));
        a.version_command = Some("exit 2".into());
        assert_eq!(
            read_version(&a),
            Some(Err("version_command: exit 2".into()))
        );
        a.version_command = Some("echo 1; sleep 60".into());
        assert_eq!(
            read_version(&a),
            Some(Err("version_command: killed after 500ms".into()))
        );
        // Much more output than a pipe holds: drained, not blocking the command.
        a.version_command = Some("echo 9.9; head -c 1000000 /dev/zero".into());
        assert_eq!(read_version(&a), Some(Ok("9.9".into())));
    }

    /// A command that exits but leaves a child holding its output: the answer is an
    /// error at the timeout, and the child dies with its group, so the reader thread
    /// waiting on the pipe ends too (it used to wait as long as the child lived).
    #[test]
    fn a_version_command_leaving_its_output_open_leaves_nothing_running() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut a = app();
        a.version_command = Some(format!(
            "echo 1.0; sleep 300 & echo $! > {}",
            pid_file.display()
        ));
        assert_eq!(
            read_version(&a),
            Some(Err(
                "version_command: output still open 500ms after start".into()
            ))
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let running = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .is_ok_and(|s| s.split_whitespace().nth(2) != Some("Z"))
        };
        let mut waited = 0;
        while running() && waited < 100 {
            thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        assert!(!running(), "the command's child {} outlived it", pid.trim());
    }

    #[test]
    fn rise_and_fall() {
        // Probes: p = pass, f = fail, h = hung. Verdict after each probe: P = ok, F = fail,
        // H = hung; `*` where the verdict turned.
        let table: &[(u32, u32, &str, &str)] = &[
            // (rise, fall, probes, verdicts)
            // The first result decides at once, either way.
            (2, 2, "p", "P*"),
            (2, 2, "f", "F*"),
            (2, 2, "h", "H*"),
            // Passing turns failing after `fall` consecutive failures, hangs included.
            (2, 3, "pfhf", "P* P P F*"),
            (2, 2, "pfh", "P* P H*"),
            // A pass in between restarts the count.
            (2, 2, "pfpfp", "P* P P P P"),
            // Failing turns passing after `rise` consecutive passes; a failure restarts it.
            (3, 2, "fppp", "F* F F P*"),
            (2, 2, "fpfpp", "F* F F F P*"),
            // While failing, the code follows the latest failure.
            (2, 2, "fhfph", "F* H F F H"),
            // rise = fall = 1: every change shows at once.
            (1, 1, "pfph", "P* F* P* H*"),
        ];
        for &(rise, fall, probes, want) in table {
            let mut rf = RiseFall::new(rise, fall);
            assert_eq!(rf.verdict(), None, "pending before the first probe");
            let mut got = Vec::new();
            for probe in probes.chars() {
                let turned = rf.observe(match probe {
                    'p' => Observed::Pass,
                    'f' => Observed::Fail("HTTP 503".into()),
                    _ => Observed::Hung("no answer in 2s".into()),
                });
                let verdict = rf.verdict().unwrap();
                let code = match verdict.code {
                    CheckCode::Ok => 'P',
                    CheckCode::Fail => 'F',
                    CheckCode::Hung => 'H',
                    other => panic!("{other:?}"),
                };
                assert_eq!(verdict.reason.is_empty(), code == 'P', "{probes}");
                got.push(format!("{code}{}", if turned { "*" } else { "" }));
            }
            assert_eq!(
                got.join(" "),
                want,
                "rise {rise}, fall {fall}, probes {probes}"
            );
        }
    }

    #[test]
    fn ten_minutes_of_failures_log_two_lines() {
        let t0 = clock::now();
        // 12:00:01 UTC on some day.
        let w0 = WallMicros((19_000 * 86_400 + 12 * 3600 + 1) * 1_000_000);
        let failing = Verdict {
            code: CheckCode::Fail,
            reason: "HTTP 503".into(),
        };
        let mut log = CheckLog::default();
        let mut lines = Vec::new();
        for s in 0..=600u64 {
            let now = t0 + Duration::from_secs(s);
            let wall = WallMicros(w0.0 + s * 1_000_000);
            lines.extend(log.note(now, wall, &failing, true));
        }
        let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "app check failing: HTTP 503",
                "app check still failing: HTTP 503 (×601 since 12:00:01 UTC)",
            ]
        );

        let passing = ok_verdict();
        let again = log.note(t0 + Duration::from_secs(601), w0, &passing, false);
        assert_eq!(
            again.unwrap().to_string(),
            "app check passing again (failed ×601 since 12:00:01 UTC)"
        );
        // Passing quietly from then on.
        for s in 602..700 {
            assert_eq!(
                log.note(t0 + Duration::from_secs(s), w0, &passing, false),
                None
            );
        }
    }

    #[test]
    fn a_passing_start_logs_once() {
        let t0 = clock::now();
        let mut log = CheckLog::default();
        let ok = ok_verdict();
        assert_eq!(
            log.note(t0, WallMicros(0), &ok, false),
            Some(LogLine::Passing { after: None })
        );
        assert_eq!(log.note(t0, WallMicros(0), &ok, false), None);
    }

    #[test]
    fn spawn_reports_and_stops_when_the_channel_closes() {
        let (authority, _request) = serve_once(Some("HTTP/1.1 503 Nope\r\n\r\n"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("VERSION");
        std::fs::write(&path, "7.0\n").unwrap();
        let mut a = app();
        a.check = Some(http(&authority));
        a.interval = Duration::from_millis(50);
        a.version_file = Some(path);
        let (tx, mut rx) = mpsc::channel(16);
        spawn(&a, tx);

        let mut app_reports = Vec::new();
        let mut version = None;
        // The one-shot server answers 503 once, then is gone: connections are refused.
        while app_reports
            .last()
            .is_none_or(|r: &CheckResult| r.reason != "connect: connection refused")
        {
            assert!(app_reports.len() < 100, "{app_reports:?}");
            match rx.blocking_recv().unwrap() {
                ProbeReport::App(r) => app_reports.push(r),
                ProbeReport::AppVersion(v) => version = Some(v),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(version, Some(Ok("7.0".into())));
        assert_eq!(app_reports[0].code, CheckCode::Fail);
        assert_eq!(app_reports[0].reason, "HTTP 503");
        assert!(
            app_reports.windows(2).all(|w| w[0].at < w[1].at),
            "a fresh `at` every probe"
        );
        drop(rx);
        // The loop notices within an interval, and its workers end with it.
        for _ in 0..200 {
            let left = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|comm| {
                    ["quorate-app", "quorate-app-che", "quorate-app-ver"].contains(&comm.trim_end())
                })
                .count();
            if left == 0 {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("app probe threads still running after the channel closed");
    }
}
