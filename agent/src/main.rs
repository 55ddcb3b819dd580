//! `quorate-agent`: parse arguments, check the config, run the agent until SIGTERM;
//! SIGHUP reloads the config.
//! Everything else lives in the library so tests run the same code.

// Nothing here needs unsafe code; `forbid` (not the workspace's `deny`) so no
// `#[allow]` can bring it back.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser};
use quorate_agent::config::{Checked, Config};
use quorate_agent::generate::{self, Generated};
use quorate_agent::logging::{self, LogFormat};
use quorate_agent::reload::ReloadError;

/// Exit code for an invalid config or bad arguments.
const EXIT_CONFIG: u8 = 2;

/// quorate's agent: heartbeats its peers, elects a primary, answers health checks.
#[derive(Parser)]
#[command(name = "quorate-agent", version)]
struct Args {
    /// Configuration file.
    #[arg(long, default_value = "/etc/quorate/agent.toml")]
    config: PathBuf,
    /// Check the configuration and exit: every error, one per line (file:line: reason),
    /// including the certificate (names this node, not ended), the key's mode, hooks
    /// (executable) and state_dir (writable); warnings and notes after `ok`.
    #[arg(long)]
    check_config: bool,
    /// Print the default configuration file, every key commented at its default, and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Where log lines go: auto is the journal under systemd, else text on stderr.
    #[arg(long, value_enum, default_value_t)]
    log_format: LogFormat,
    /// Print a man page or a shell completion script and exit (for packagers).
    #[arg(long, value_enum, hide = true)]
    generate: Option<Generated>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        let out = generate::write(kind, Args::command(), "8", &mut std::io::stdout());
        return if out.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if args.print_default_config {
        let text = quorate_agent::config::defaults::render(false);
        let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
        return ExitCode::SUCCESS;
    }
    // The same check as `--check-config`, whole, before anything is bound: every error
    // of the file, one per line.
    let checked = match Config::check(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("quorate-agent: {e}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.check_config {
        let config = &checked.config;
        let mut text = format!(
            "{}: ok (node {} in cluster {}, advertise {}, {} peers)\n",
            args.config.display(),
            config.node,
            config.cluster,
            config.advertise,
            config.peers.len()
        );
        for warning in &checked.warnings {
            text.push_str(&format!("warning: {warning}\n"));
        }
        for note in checked.notes.iter().chain(&config.sandbox_notes()) {
            text.push_str(&format!("note: {note}\n"));
        }
        // Not println!: it panics when stdout is a closed pipe (`… | head -1`).
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(text.as_bytes());
        return ExitCode::SUCCESS;
    }
    let Checked {
        config,
        warnings,
        notes,
    } = checked;
    let level = logging::init(args.log_format, &config.log_level);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    for note in &notes {
        tracing::info!("config: {note}");
    }
    // One thread drives the core and the QUIC endpoint: the work is small and ordered,
    // and a single thread saves the cross-thread wake-ups that dominated idle CPU.
    // HTTP answers on a thread of its own (http::spawn), probes on theirs.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .thread_name("quorate-driver")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quorate-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // Handlers first: from here on no signal takes the default action (for SIGHUP,
        // that was exiting without a handover).
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            eprintln!("quorate-agent: cannot install signal handlers");
            return ExitCode::FAILURE;
        };
        let mut running = match quorate_agent::start(config).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot start: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let reloader = running.reloader();
        let signal = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                _ = hup.recv() => {
                    running.notify().reloading();
                    match reloader.reload_file(&args.config).await {
                        Ok(outcome) => match outcome.log_level.map(|l| level.set(&l)) {
                            Some(Ok(true)) => tracing::info!("reload: log_level applied"),
                            Some(Ok(false)) => tracing::info!(
                                "reload: log_level not applied: {} is set and wins",
                                logging::LOG_ENV
                            ),
                            Some(Err(e)) => tracing::warn!("reload: log_level not applied: {e}"),
                            None => {}
                        },
                        Err(ReloadError::Config(errors)) => {
                            for e in &errors {
                                tracing::error!("reload: {e}; nothing changed");
                            }
                        }
                        Err(e) => tracing::error!("reload: {e}; nothing changed"),
                    }
                    running.notify().reloaded();
                }
                e = running.failed() => {
                    tracing::error!("stopped: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
        };
        tracing::info!("{signal}: leaving the cluster");
        match running.stop().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("while leaving: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}
