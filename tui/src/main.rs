//! `quorate`: the operator tool. Parses arguments and hands over to one `cli::*` module;
//! every error ends as one line on stderr and exit status 1.
//!
//! Internal modules:
//! - `cli`: argument definitions and one module per subcommand (`ca`, `status`, `demo`,
//!   `member`, …)
//! - `columns`: the node table's columns (title, alignment, sort, cell), shared by the
//!   status table and the terminal UI
//! - `table`: the pure status table renderer
//! - `target`: which agent to ask and with which certificate (`--connect`, `--cert`…,
//!   else the agent's config)
//! - `signals`: SIGINT/SIGTERM as a flag, signals to child processes
//! - `ui`: the terminal UI (`quorate` with no subcommand, on a terminal)

// Nothing here needs unsafe code; `forbid` (not the workspace's `deny`) so no
// `#[allow]` can bring it back.
#![forbid(unsafe_code)]

mod cli;
mod columns;
mod signals;
mod table;
mod target;
mod ui;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command, DriftCommand, StatusArgs, TaskCommand, UpgradeCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate {
        use clap::CommandFactory as _;
        let out = quorate_agent::generate::write(kind, Cli::command(), "1", &mut std::io::stdout());
        return if out.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let result = match &cli.command {
        // The terminal UI on a terminal; without one (a pipe, cron, `ssh host quorate`) a
        // one-shot table.
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            target::resolve(&cli.global).and_then(|t| ui::run::run(&t))
        }
        None => cli::status::run(&cli.global, &StatusArgs::default()),
        Some(Command::Status(args)) => cli::status::run(&cli.global, args),
        Some(Command::Events(args)) => cli::events::run(&cli.global, args),
        Some(Command::Ca(command)) => cli::ca::run(command),
        Some(Command::Demo(args)) => cli::demo::run(args),
        Some(Command::Transfer { node }) => cli::control::transfer(&cli.global, node),
        Some(Command::Freeze) => cli::control::freeze(&cli.global, true),
        Some(Command::Unfreeze) => cli::control::freeze(&cli.global, false),
        Some(Command::Drain { node, reason, for_ }) => {
            cli::checks::drain(&cli.global, node.as_ref(), reason, for_.as_deref(), true)
        }
        Some(Command::Undrain { node }) => {
            cli::checks::drain(&cli.global, node.as_ref(), "", None, false)
        }
        Some(Command::Drift(DriftCommand::Ack { name, for_, reason })) => {
            cli::checks::drift_ack(&cli.global, name, for_, reason)
        }
        Some(Command::Upgrade(UpgradeCommand::Status)) => cli::checks::upgrade_status(&cli.global),
        Some(Command::Upgrade(UpgradeCommand::Allow)) => cli::checks::upgrade_allow(&cli.global),
        Some(Command::Member(command)) => cli::member::run(&cli.global, command),
        Some(Command::Task(TaskCommand::ShouldRun { name })) => {
            match cli::checks::should_run(&cli.global, name) {
                Ok(true) => return ExitCode::SUCCESS,
                Ok(false) => return ExitCode::from(1),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quorate: {e:#}");
            // `task should-run` keeps 1 for "not here"; errors are 2 there, 1 elsewhere.
            if matches!(cli.command, Some(Command::Task(_))) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
