//! Where the agent's log lines go, and the log level that `systemctl reload` can change.
//!
//! Owns: the tracing subscriber. Under systemd (stderr is the `JOURNAL_STREAM` systemd
//! gave us) lines go to the journal with real priorities (error → 3 … debug → 7) and the
//! event's fields as journal fields, so `journalctl -u quorate -p warning` works and no
//! timestamp is printed twice; on a terminal, today's human format; `json` for log
//! shippers. Must never fail the agent: a journal that cannot be opened falls back to
//! stderr text, with one line saying so.

use std::io::IsTerminal as _;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The environment variable that overrides the config's `log_level`.
pub const LOG_ENV: &str = "QUORATE_LOG";

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// The journal when systemd connected stderr to it, else text.
    #[default]
    Auto,
    /// Human-readable lines on stderr (colours on a terminal).
    Text,
    /// One JSON object per line on stderr.
    Json,
    /// The systemd journal, with priorities and fields.
    Journald,
}

/// Changes the level of a running subscriber.
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `QUORATE_LOG` was set: it wins over the config file, at start and on reload.
    from_env: bool,
}

impl LogLevel {
    /// Applies `directive` (like `info` or `quorate_agent::net=debug`), unless the
    /// environment fixed the level. Returns whether it changed anything.
    pub fn set(&self, directive: &str) -> Result<bool, String> {
        if self.from_env {
            return Ok(false);
        }
        let filter = EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        Ok(true)
    }
}

/// Installs the global subscriber. `level` is the config's `log_level`; `QUORATE_LOG`
/// overrides it.
pub fn init(format: LogFormat, level: &str) -> LogLevel {
    let env = std::env::var(LOG_ENV).ok().filter(|v| !v.is_empty());
    let from_env = env.is_some();
    let filter = env
        .as_deref()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);

    let format = match format {
        LogFormat::Auto if stderr_is_journal() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        f => f,
    };
    let mut journal_error = None;
    let journald = match format {
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => Some(layer.with_syslog_identifier("quorate-agent".into())),
            Err(e) => {
                journal_error = Some(e);
                None
            }
        },
        _ => None,
    };
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let text = (json.is_none() && journald.is_none()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(json)
        .with(text)
        .try_init();
    if installed.is_err() {
        // Only in tests that start several agents in one process: the first one logs.
        tracing::debug!("a log subscriber was already installed");
    }
    if let Some(e) = journal_error {
        tracing::warn!("cannot open the systemd journal ({e}); logging to stderr instead");
    }
    LogLevel { handle, from_env }
}

/// Whether stderr is the journal stream systemd set up for this service (systemd.exec(5):
/// compare `JOURNAL_STREAM`'s `device:inode` with stderr's), not merely inherited.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| {
        let (d, i) = v.split_once(':')?;
        Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?))
    }) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}
