//! The terminal itself: raw mode and the alternate screen on the way in, and the way
//! back out on every exit path — a dropped [`TerminalGuard`], an error, or a panic (the
//! hook restores the screen *before* the panic message is printed, so the message is
//! readable and the operator's SSH session is not left in raw mode; ratatui's `init.rs`
//! and tokio-console's `term.rs` do the same).
//!
//! Also decides whether colours may be used (NO_COLOR, `TERM=dumb`).
//!
//! Must never: hold cluster state, handle keys or decide what to draw.

// Unit tests cannot own a terminal: everything but the NO_COLOR rule is exercised by the
// end-to-end test in tmux, so the test build sees these as unused.
#![cfg_attr(test, allow(dead_code))]

use std::ffi::OsStr;
use std::io::{self, Stdout};
use std::sync::Once;

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped, however the UI ends.
#[derive(Debug)]
#[must_use = "the terminal is restored when the guard is dropped"]
pub struct TerminalGuard(());

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        // Nothing useful can be done with a failure here: the process is leaving anyway.
        let _ = restore();
    }
}

/// Installs the panic hook, enters raw mode and the alternate screen, and returns the
/// terminal with the guard that undoes it. On error the terminal is already restored.
pub fn init() -> io::Result<(Term, TerminalGuard)> {
    install_panic_hook();
    let guard = TerminalGuard(());
    enable_raw_mode()?;
    // Bracketed paste: a pasted filter arrives as one event, not as keys that could
    // trigger commands.
    execute!(io::stdout(), EnterAlternateScreen, EnableBracketedPaste)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.hide_cursor()?;
    terminal.clear()?;
    Ok((terminal, guard))
}

/// Leaves the alternate screen and raw mode and shows the cursor. Safe to call more than
/// once, and before `init` ever ran.
pub fn restore() -> io::Result<()> {
    let raw = disable_raw_mode();
    execute!(
        io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    )?;
    raw
}

/// Chains a hook that restores the terminal in front of the existing one (once per
/// process, however often `init` runs, e.g. after a suspend).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            previous(info);
        }));
    });
}

/// Whether colours may be used: not when `NO_COLOR` is set to anything non-empty
/// (no-color.org), nor on a `dumb` terminal. The view then uses only bold, dim and
/// reverse video.
pub fn colors_enabled() -> bool {
    colors_allowed(
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    )
}

fn colors_allowed(no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    no_color.is_none_or(OsStr::is_empty) && term != Some(OsStr::new("dumb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_and_dumb_terminals_get_no_colour() {
        let s = |s: &'static str| Some(OsStr::new(s));
        assert!(colors_allowed(None, s("xterm-256color")));
        assert!(
            colors_allowed(s(""), None),
            "an empty NO_COLOR does not count"
        );
        assert!(!colors_allowed(s("1"), s("xterm")));
        assert!(!colors_allowed(s("false"), None), "any value counts");
        assert!(!colors_allowed(None, s("dumb")));
    }
}
