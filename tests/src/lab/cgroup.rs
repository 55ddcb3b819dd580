//! [`CpuLimit`]: a process starved of CPU with the cgroup v1 `cpu` controller
//! (`/sys/fs/cgroup/cpu`): a child cgroup `PREFIX<pid>n<k>` with `cpu.cfs_quota_us` a
//! share of `cpu.cfs_period_us` (the kernel's default 100 ms period, so a 5 % share runs
//! 5 ms and is then throttled for 95 ms, as a container at its limit is), shared with a
//! busy loop (`sh -c 'while kill -0 TEST_PID; do :; done'`): an idle agent needs about 1 % of a core,
//! so a quota alone would never bite; with the loop eating whatever the agent leaves,
//! the agent gets at most its fair part of the 5 % and waits out every throttled 95 ms,
//! like an agent on a node whose CPU something else saturates.
//!
//! Owns: the child cgroups it creates, the busy loop it starts, and the membership of
//! the one process it was given. Undone on drop: the loop is killed, the process goes
//! back to the cgroup it came from and the child is removed. [`clean_stale`] removes
//! what a dead test process left.
//!
//! It must never change a cgroup it did not create, or move a process it was not given.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup/cpu";
/// The period every limit uses, in microseconds (the kernel's default).
pub const PERIOD_US: u64 = 100_000;

/// Whether the cgroup v1 cpu controller is mounted where this module expects it.
pub fn available() -> bool {
    Path::new(ROOT).join("cpu.cfs_quota_us").exists()
}

/// The cpu cgroup `pid` is in, as a directory under the controller's mount.
fn cgroup_of(pid: u32) -> Result<PathBuf, String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            controllers
                .split(',')
                .any(|c| c == "cpu")
                .then(|| Path::new(ROOT).join(path.trim_start_matches('/')))
        })
        .ok_or_else(|| format!("pid {pid} is in no cgroup v1 cpu hierarchy"))
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("write {value} to {}: {e}", path.display()))
}

/// Removes a child cgroup after moving whatever is left in it to the root.
fn remove(dir: &Path) {
    if let Ok(tasks) = fs::read_to_string(dir.join("tasks")) {
        for t in tasks.lines() {
            let _ = fs::write(Path::new(ROOT).join("tasks"), t);
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Kills what is left in a dead test process's cgroup (its busy loop, an agent that
/// outlived it), then removes the cgroup: nothing in a lab cgroup belongs to anyone else.
fn remove_stale(dir: &Path) {
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for p in procs.lines() {
            let _ = std::process::Command::new("kill").args(["-9", p]).status();
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    remove(dir);
}

/// Removes the cgroups `PREFIX<pid>…` of processes that are gone.
pub fn clean_stale(prefix: &str) {
    let Ok(entries) = fs::read_dir(ROOT) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(pid) = digits.parse::<u32>()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            remove_stale(&e.path());
        }
    }
}

/// A process held to a share of one core; dropping it lets the process go.
#[derive(Debug)]
pub struct CpuLimit {
    dir: PathBuf,
    home: PathBuf,
    pid: u32,
    hog: Option<std::process::Child>,
}

impl CpuLimit {
    /// Moves `pid` (every thread of it) into a new cgroup `name` limited to `percent` %
    /// of one core (at least 1 %: the kernel's smallest quota is 1 ms).
    pub fn apply(name: &str, pid: u32, percent: u32) -> Result<CpuLimit, String> {
        let home = cgroup_of(pid)?;
        let dir = Path::new(ROOT).join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut limit = CpuLimit {
            dir,
            home,
            pid,
            hog: None,
        };
        let quota = PERIOD_US * u64::from(percent.max(1)) / 100;
        write(&limit.dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
        write(&limit.dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        // cgroup.procs moves the whole thread group at once, so no thread the agent
        // starts meanwhile is left outside.
        write(&limit.dir.join("cgroup.procs"), &pid.to_string())?;
        // The loop ends by itself once the test process is gone (a SIGKILLed run must
        // not leave a core spinning).
        let hog = std::process::Command::new("sh")
            .args([
                "-c",
                &format!(
                    "while kill -0 {} 2>/dev/null; do :; done",
                    std::process::id()
                ),
            ])
            .spawn()
            .map_err(|e| format!("a busy loop: {e}"))?;
        let hog_pid = hog.id();
        limit.hog = Some(hog);
        write(&limit.dir.join("cgroup.procs"), &hog_pid.to_string())?;
        Ok(limit)
    }

    /// How often, and how long in all, the kernel throttled the group (`cpu.stat`).
    pub fn throttled(&self) -> (u64, std::time::Duration) {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        (
            field("nr_throttled "),
            std::time::Duration::from_nanos(field("throttled_time ")),
        )
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        if let Some(mut hog) = self.hog.take() {
            let _ = hog.kill();
            let _ = hog.wait();
        }
        if Path::new(&format!("/proc/{}", self.pid)).exists() {
            let _ = fs::write(self.home.join("cgroup.procs"), self.pid.to_string());
        }
        remove(&self.dir);
    }
}
