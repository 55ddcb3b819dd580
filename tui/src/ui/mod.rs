//! The terminal UI that `quorate` opens with no subcommand, split as tokio-console and
//! gitui split theirs (STYLE.md P9):
//!
//! - [`state`]: folds snapshots, events, connection changes and command answers into
//!   what the screen shows; no IO, no clock, no ratatui.
//! - [`app`]: keys in, [`app::Action`]s out; the only place a key becomes a command, and
//!   every command is confirmed first.
//! - [`view`]: `draw(frame, &State, &App)`, pure; degrades down to 80×24 and below, and
//!   draws in Unicode or in ASCII only; one file per part of the screen.
//! - [`term`]: raw mode, alternate screen, the restoring guard and panic hook, NO_COLOR,
//!   and the charset (ASCII under `QUORATE_ASCII=1` or a non-UTF-8 locale).
//!
//! - [`conn`]: the thread that stays subscribed to some member (reconnecting to another
//!   when the attached agent goes away) and carries commands.
//! - [`run`]: the event loop: feeds `State::on_*` and `App::handle_key`, sends the
//!   commands `App` returns through `conn`, and calls `view::draw`.
//!
//! Only `conn` and `run` do IO or read the clock; the rest is tested without a terminal;
//! `snapshots/` holds the screens at 80×24 and 120×40 from the fixtures (and the ASCII
//! variants of some), which are the design review. The end-to-end test (tests/tests/tui.rs) drives the real binary in tmux.

pub mod app;
pub mod conn;
pub mod run;
pub mod state;
pub mod term;
pub mod view;

#[cfg(test)]
pub(crate) mod fixtures;
