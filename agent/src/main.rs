//! `quorate-agent`: parse arguments, check the config, run the agent until SIGTERM;
//! SIGHUP reloads the config.
//! Everything else lives in the library so tests run the same code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use quorate_agent::config::Config;

/// Exit code for an invalid config or bad arguments.
const EXIT_CONFIG: u8 = 2;

/// quorate's agent: heartbeats its peers, elects a primary, answers health checks.
#[derive(Parser)]
#[command(name = "quorate-agent", version)]
struct Args {
    /// Configuration file.
    #[arg(long, default_value = "/etc/quorate/agent.toml")]
    config: PathBuf,
    /// Check the configuration (including that the certificate names this node) and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quorate-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.check_config {
        println!(
            "{}: ok (node {} in cluster {}, {} peers)",
            args.config.display(),
            config.node,
            config.cluster,
            config.peers.len()
        );
        return ExitCode::SUCCESS;
    }
    init_tracing();
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
                _ = hup.recv() => match reloader.reload_file(&args.config).await {
                    Ok(outcome) => {
                        if let Some(level) = outcome.log_level {
                            // For the logging setup to apply (QUORATE_LOG still wins).
                            tracing::info!("reload: log_level is now {level:?}");
                        }
                    }
                    Err(e) => tracing::error!("reload: {e}; nothing changed"),
                },
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

fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUORATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
