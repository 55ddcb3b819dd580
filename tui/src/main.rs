//! `quorate`: the operator tool. Parses arguments and hands over to one `cli::*` module;
//! every error ends as one line on stderr and exit status 1, except where the exit status
//! means something else: `status` (0 ok, 1 degraded, 2 critical or no agent to ask) and
//! `task should-run` (0 here, 1 not here, 2 error).
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

use cli::control::{self, finish};
use cli::json::CommandName;
use cli::{Cli, Command, DriftCommand, StatusArgs, TaskCommand, UpgradeCommand};
use proto::status::Level;

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
    // The terminal UI on a terminal; without one (a pipe, cron, `ssh host quorate`) a
    // one-shot status table.
    let tui =
        cli.command.is_none() && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let result = match &cli.command {
        None if tui => done(target::resolve(&cli.global).and_then(|t| ui::run::run(&t))),
        None => cli::status::run(&cli.global, &StatusArgs::default()),
        Some(Command::Status(args)) => cli::status::run(&cli.global, args),
        Some(Command::Events(args)) => done(cli::events::run(&cli.global, args)),
        Some(Command::Ca(command)) => done(cli::ca::run(command)),
        Some(Command::Demo(args)) => done(cli::demo::run(args)),
        Some(Command::Transfer { node, out }) => finish(
            CommandName::Transfer,
            *out,
            control::transfer(&cli.global, node),
        ),
        Some(Command::Freeze(out)) => finish(
            CommandName::Freeze,
            *out,
            control::freeze(&cli.global, true),
        ),
        Some(Command::Unfreeze(out)) => finish(
            CommandName::Unfreeze,
            *out,
            control::freeze(&cli.global, false),
        ),
        Some(Command::Drain {
            node,
            reason,
            for_,
            out,
        }) => finish(
            CommandName::Drain,
            *out,
            cli::checks::drain(&cli.global, node.as_ref(), reason, for_.as_deref(), true),
        ),
        Some(Command::Undrain { node, out }) => finish(
            CommandName::Undrain,
            *out,
            cli::checks::drain(&cli.global, node.as_ref(), "", None, false),
        ),
        Some(Command::Drift(DriftCommand::Ack {
            name,
            for_,
            reason,
            out,
        })) => finish(
            CommandName::DriftAck,
            *out,
            cli::checks::drift_ack(&cli.global, name, for_, reason),
        ),
        Some(Command::Upgrade(UpgradeCommand::Status { json })) => {
            done(cli::checks::upgrade_status(&cli.global, *json))
        }
        Some(Command::Upgrade(UpgradeCommand::Allow(out))) => finish(
            CommandName::UpgradeAllow,
            *out,
            cli::checks::upgrade_allow(&cli.global),
        ),
        Some(Command::Member(command)) => cli::member::run(&cli.global, command),
        Some(Command::Task(TaskCommand::ShouldRun { name, json })) => {
            cli::checks::should_run(&cli.global, name, *json).map(|here| {
                if here {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("quorate: {e:#}");
            error_exit(cli.command.as_ref(), tui)
        }
    }
}

/// The exit status of an error (its message is on stderr, never on stdout, `--json` or
/// not): `status` is a monitoring check, and an agent it cannot ask is critical (2);
/// `task should-run` keeps 1 for "not here", so its errors are 2; 1 elsewhere.
fn error_exit(command: Option<&Command>, tui: bool) -> ExitCode {
    match command {
        None if tui => ExitCode::FAILURE,
        None | Some(Command::Status(_)) => ExitCode::from(Level::Critical.exit_code()),
        Some(Command::Task(_)) => ExitCode::from(2),
        Some(_) => ExitCode::FAILURE,
    }
}

/// A command that prints and exits 0 when it succeeds.
fn done(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    result.map(|()| ExitCode::SUCCESS)
}
