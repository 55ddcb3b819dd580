//! What a process costs, read from outside through `/proc`: CPU time on every thread
//! (`/proc/PID/task/*/schedstat`), context switches (`/proc/PID/task/*/status`), RSS, and
//! the one-off tools the idle benchmark runs beside it (`strace -c`, `perf stat`).
//!
//! It owns the parsing of those files and the subtraction of two samples. It never
//! signals, traces or otherwise touches a process except through the tools
//! [`strace_counts`] and [`perf_stat`] start, and never panics on what `/proc` holds: a
//! thread or process that went away in between reads as absent.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One thread at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSample {
    pub tid: u32,
    /// Its name (`/proc/PID/task/TID/comm`): `quorate-driver`, `quorate-http`…
    pub name: String,
    /// Nanoseconds on a CPU (schedstat's first field).
    pub cpu_ns: u64,
    /// Voluntary and involuntary context switches: each one ends a run on a CPU, so over
    /// an idle process this is its wake-ups.
    pub switches: u64,
}

/// One process (all its threads) at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcSample {
    pub threads: Vec<ThreadSample>,
    pub rss_kib: u64,
}

impl ProcSample {
    /// Every thread's CPU time, summed.
    pub fn cpu_ns(&self) -> u64 {
        self.threads.iter().map(|t| t.cpu_ns).sum()
    }

    /// Every thread's context switches, summed.
    pub fn switches(&self) -> u64 {
        self.threads.iter().map(|t| t.switches).sum()
    }
}

/// Samples `pid` and every one of its threads; `None` if the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status_field(&status, "VmRSS:").unwrap_or(0);
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(t) = thread(pid, tid) {
            threads.push(t);
        }
    }
    Some(ProcSample { threads, rss_kib })
}

fn thread(pid: u32, tid: u32) -> Option<ThreadSample> {
    let dir = format!("/proc/{pid}/task/{tid}");
    let schedstat = std::fs::read_to_string(format!("{dir}/schedstat")).ok()?;
    let cpu_ns = schedstat.split_whitespace().next()?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let switches = status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0)
        + status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
    let name = std::fs::read_to_string(format!("{dir}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    Some(ThreadSample {
        tid,
        name,
        cpu_ns,
        switches,
    })
}

/// The first number after `key` at the start of a line of a `/proc` status file.
pub fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// What a process did between two samples.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Nanoseconds on a CPU, all threads.
    pub cpu_ns: u64,
    pub switches: u64,
    /// RSS at the end.
    pub rss_kib: u64,
    /// CPU nanoseconds by thread name (threads of one name summed; a thread that started
    /// during the window counts from zero, one that ended is lost).
    pub by_thread: BTreeMap<String, u64>,
}

/// `after - before`, thread by thread (matched by thread id).
pub fn usage(before: &ProcSample, after: &ProcSample) -> Usage {
    let mut u = Usage {
        rss_kib: after.rss_kib,
        ..Usage::default()
    };
    for t in &after.threads {
        let (cpu0, sw0) = before
            .threads
            .iter()
            .find(|b| b.tid == t.tid)
            .map_or((0, 0), |b| (b.cpu_ns, b.switches));
        let cpu = t.cpu_ns.saturating_sub(cpu0);
        u.cpu_ns += cpu;
        u.switches += t.switches.saturating_sub(sw0);
        *u.by_thread.entry(t.name.clone()).or_default() += cpu;
    }
    u
}

/// The children of `pid` (from every process's `stat`): keepalived forks its VRRP
/// process.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| parent(*p) == Some(pid))
        .collect()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (in parentheses, which may hold spaces).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A running `strace -c -f -p PID`; [`finish`](Strace::finish) interrupts it and returns
/// its summary.
pub struct Strace {
    child: std::process::Child,
    out: tempfile::NamedTempFile,
}

/// Starts counting `pid`'s system calls (all threads); `None` without strace.
pub fn strace_counts(pid: u32) -> Option<Strace> {
    let out = tempfile::NamedTempFile::new().ok()?;
    let child = Command::new("strace")
        .args(["-c", "-f", "-q", "-o"])
        .arg(out.path())
        .args(["-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Strace { child, out })
}

/// One row of `strace -c`: calls and errors of one system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    pub name: String,
    pub calls: u64,
    pub errors: u64,
}

impl Strace {
    /// Interrupts strace (it detaches and writes its table) and parses the table, most
    /// calls first.
    pub fn finish(mut self) -> Vec<Syscall> {
        crate::cluster::send_signal(self.child.id(), libc::SIGINT);
        let _ = self.child.wait();
        let text = std::fs::read_to_string(self.out.path()).unwrap_or_default();
        parse_strace(&text)
    }
}

/// Parses `strace -c`'s table (`% time seconds usecs/call calls errors syscall`).
pub fn parse_strace(text: &str) -> Vec<Syscall> {
    let mut rows: Vec<Syscall> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = (*f.last()?).to_owned();
            if name == "total" || name == "syscall" || f.len() < 5 {
                return None;
            }
            let calls = f.get(3)?.parse().ok()?;
            let errors = if f.len() == 6 {
                f.get(4)?.parse().ok()?
            } else {
                0
            };
            Some(Syscall {
                name,
                calls,
                errors,
            })
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.calls));
    rows
}

/// Why an event loop woke, counted from `strace -tt -e trace=epoll_wait` over a window:
/// each `epoll_wait` that returns after waiting (a timeout other than 0) is one wake-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wakes {
    /// The wait ran out: a timer was due.
    pub timer: u64,
    /// A socket became readable (a packet arrived), alone or with other events.
    pub input: u64,
    /// Only a socket's write readiness (EPOLLOUT): nothing to read, no timer due.
    pub write_ready: u64,
    /// Only the runtime's own eventfd (token 0): another thread, or the loop itself,
    /// unparked it.
    pub unpark: u64,
}

/// Starts `strace -e trace=epoll_wait -p PID` (the thread given, not its siblings) and
/// classifies its wake-ups after `window`; `None` without strace.
pub fn strace_wakes(pid: u32, window: Duration) -> Option<Wakes> {
    let out = tempfile::NamedTempFile::new().ok()?;
    let mut child = Command::new("strace")
        .args(["-q", "-e", "trace=epoll_wait", "-o"])
        .arg(out.path())
        .args(["-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(window);
    crate::cluster::send_signal(child.id(), libc::SIGINT);
    let _ = child.wait();
    Some(parse_wakes(
        &std::fs::read_to_string(out.path()).unwrap_or_default(),
    ))
}

/// Classifies `epoll_wait(FD, [EVENTS], MAX, TIMEOUT) = N` lines (see [`Wakes`]).
pub fn parse_wakes(text: &str) -> Wakes {
    let mut w = Wakes::default();
    for line in text.lines() {
        let Some(args) = line.split_once("epoll_wait(").map(|(_, a)| a) else {
            continue;
        };
        // strace pads the result to a column: `epoll_wait(…)      = 0`.
        let Some((call, result)) = args.rsplit_once(" = ") else {
            continue;
        };
        let Some(call) = call.trim_end().strip_suffix(')') else {
            continue;
        };
        let timeout = call.rsplit(", ").next().unwrap_or("0").trim();
        if timeout == "0" {
            continue; // a poll that did not wait
        }
        if result.trim() == "0" {
            w.timer += 1;
            continue;
        }
        let mut input = false;
        let mut socket_out = false;
        let mut unpark = false;
        for ev in call.split("{events=").skip(1) {
            let token0 = ev.contains("u64=0}");
            if token0 {
                unpark = true;
            } else if ev.starts_with("EPOLLIN") || ev.contains("|EPOLLIN") {
                input = true;
            } else if ev.contains("EPOLLOUT") {
                socket_out = true;
            }
        }
        if input {
            w.input += 1;
        } else if socket_out {
            w.write_ready += 1;
        } else if unpark {
            w.unpark += 1;
        }
    }
    w
}

/// What [`perf_stat`] counts: instructions (where the machine has the counter), CPU time,
/// context switches, and the event loop's system calls from their tracepoints (far
/// cheaper than strace, so the counts are those of an untraced process).
pub const PERF_EVENTS: &str = "instructions,task-clock,context-switches,\
     syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmsg,\
     syscalls:sys_enter_write";

/// `perf stat -e PERF_EVENTS -p PID` over `window`: each event's count (`None` for an
/// event the machine does not support, as instructions in most VMs); empty without perf.
pub fn perf_stat(pid: u32, window: Duration) -> BTreeMap<String, Option<f64>> {
    let out = Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            PERF_EVENTS,
            "-p",
            &pid.to_string(),
            "--",
            "sleep",
            &format!("{}", window.as_secs_f64()),
        ])
        .stdout(Stdio::null())
        .output();
    let Ok(out) = out else {
        return BTreeMap::new();
    };
    parse_perf_csv(&String::from_utf8_lossy(&out.stderr))
}

/// Parses `perf stat -x ,` lines: `value,unit,event,...`.
pub fn parse_perf_csv(text: &str) -> BTreeMap<String, Option<f64>> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let event = f.get(2)?.trim();
            if event.is_empty() {
                return None;
            }
            let event = event.to_owned();
            Some((event, f.first()?.trim().parse::<f64>().ok()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_table() {
        let t = "% time     seconds  usecs/call     calls    errors syscall\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 \x20 40.00    0.000400          10        40           epoll_wait\n\
                 \x20 30.00    0.000300           5        60        12 recvmmsg\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 100.00    0.001000          10       100        12 total\n";
        let rows = parse_strace(t);
        assert_eq!(rows[0].name, "recvmmsg");
        assert_eq!((rows[0].calls, rows[0].errors), (60, 12));
        assert_eq!((rows[1].name.as_str(), rows[1].calls), ("epoll_wait", 40));
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn wake_causes() {
        let t = "epoll_wait(3, [], 1024, 7)            = 0\n\
                 epoll_wait(3, [{events=EPOLLIN|EPOLLOUT, data={u32=5, u64=940}}], 1024, 7) = 1\n\
                 epoll_wait(3, [{events=EPOLLOUT, data={u32=5, u64=940}}], 1024, 15) = 1\n\
                 epoll_wait(3, [{events=EPOLLIN, data={u32=0, u64=0}}], 1024, 36) = 1\n\
                 epoll_wait(3, [{events=EPOLLOUT, data={u32=5, u64=940}}], 1024, 0) = 1\n\
                 epoll_wait(3, [], 1024, 0) = 0\n";
        let w = parse_wakes(t);
        assert_eq!(
            w,
            Wakes {
                timer: 1,
                input: 1,
                write_ready: 1,
                unpark: 1
            }
        );
    }

    #[test]
    fn perf_csv() {
        let t = "<not supported>,,instructions,0,100.00,,\n\
                 10.03,msec,task-clock,10030000,100.00,0.001,CPUs utilized\n\
                 40,,context-switches,10030000,100.00,3.988,K/sec\n";
        let m = parse_perf_csv(t);
        assert_eq!(m["instructions"], None);
        assert_eq!(m["task-clock"], Some(10.03));
        assert_eq!(m["context-switches"], Some(40.0));
    }

    #[test]
    fn this_process() {
        let s = sample(std::process::id()).expect("our own /proc entry");
        assert!(s.rss_kib > 0);
        assert!(!s.threads.is_empty());
    }
}
