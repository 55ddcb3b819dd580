//! SIGINT/SIGTERM as a flag, and signals to child processes, with no unsafe code of our
//! own: signal-hook registers the handler (an atomic store, async-signal-safe) and rustix
//! sends the signal.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::{Pid, Signal};

static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Makes SIGINT and SIGTERM set the flag [`stop_requested`] reads instead of killing the
/// process, so that the caller can clean up. Child processes start with the default
/// dispositions again (exec resets caught signals).
pub fn install() -> io::Result<()> {
    let flag = STOP.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn stop_requested() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Sends SIGTERM to process `pid`. The caller must own `pid` as an unreaped child (so the
/// id cannot have been reused).
pub fn terminate(pid: u32) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    rustix::process::kill_process(pid, Signal::TERM).map_err(io::Error::from)
}
