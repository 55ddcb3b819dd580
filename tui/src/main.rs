//! `quorate`: the operator tool. Parses arguments and hands over to one `cli::*` module;
//! every error ends as one line on stderr and exit status 1.
//!
//! Internal modules:
//! - `cli`: argument definitions and one module per subcommand (`ca`, `status`, `demo`)
//! - `table`: the pure status table renderer
//! - `target`: which agent to ask (`--connect`, else the config's `[http] listen`)
//! - `http`: a tiny blocking HTTP/1.1 GET client
//! - `signals`: SIGINT/SIGTERM as a flag, signals to child processes

mod cli;
mod http;
mod signals;
mod table;
mod target;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command, StatusArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        // The terminal UI comes later; until then, and without a terminal, a one-shot table.
        None => cli::status::run(&cli.global, &StatusArgs::default()),
        Some(Command::Status(args)) => cli::status::run(&cli.global, args),
        Some(Command::Ca(command)) => cli::ca::run(command),
        Some(Command::Demo(args)) => cli::demo::run(args),
        Some(Command::Transfer { node }) => cli::control::transfer(&cli.global, node.as_ref()),
        Some(Command::Freeze) => cli::control::freeze(&cli.global, true),
        Some(Command::Unfreeze) => cli::control::freeze(&cli.global, false),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quorate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
