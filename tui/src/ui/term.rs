//! The terminal itself: raw mode and the alternate screen on the way in, and the way
//! back out on every exit path — a dropped [`TerminalGuard`], an error, or a panic (the
//! hook restores the screen *before* the panic message is printed, so the message is
//! readable and the operator's SSH session is not left in raw mode; ratatui's `init.rs`
//! and tokio-console's `term.rs` do the same).
//!
//! Also decides whether colours may be used (NO_COLOR, `TERM=dumb`) and which characters
//! the terminal can show ([`Charset`]: `QUORATE_ASCII=1` or a locale that is not UTF-8).
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

/// Which characters the view may draw with, decided once at start ([`charset`]). Data
/// from the cluster (node names, reasons) is printed as it is either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Box drawing, bars in eighths, `≠`, `…`, arrows: today's look.
    Unicode,
    /// Only ASCII: `+-|` borders, `#` bars, `!=`, `...`; for `LANG=C` terminals and
    /// fonts without the glyphs.
    Ascii,
}

/// The charset for this terminal, from `QUORATE_ASCII` and the locale (see
/// [`charset_for`]).
pub fn charset() -> Charset {
    let var = std::env::var_os;
    charset_for(
        var("QUORATE_ASCII").as_deref(),
        [
            var("LC_ALL").as_deref(),
            var("LC_CTYPE").as_deref(),
            var("LANG").as_deref(),
        ],
    )
}

/// ASCII when `QUORATE_ASCII=1`, or when the locale — the first non-empty of `LC_ALL`,
/// `LC_CTYPE`, `LANG`, in the order POSIX gives them precedence — does not mention UTF-8
/// (`utf-8` or `utf8`, any case): `C`, `POSIX`, `en_US.ISO-8859-1`.
///
/// With no locale set at all the answer is Unicode: that is what an SSH session that
/// forwards no locale variables looks like, and the terminals on the other end (and most
/// systems' defaults) are UTF-8 today; `QUORATE_ASCII=1` is there for the rest.
fn charset_for(quorate_ascii: Option<&OsStr>, locale: [Option<&OsStr>; 3]) -> Charset {
    if quorate_ascii == Some(OsStr::new("1")) {
        return Charset::Ascii;
    }
    let Some(locale) = locale.into_iter().flatten().find(|l| !l.is_empty()) else {
        return Charset::Unicode;
    };
    let locale = locale.to_string_lossy().to_ascii_lowercase();
    if locale.contains("utf-8") || locale.contains("utf8") {
        Charset::Unicode
    } else {
        Charset::Ascii
    }
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

    #[test]
    fn ascii_unless_the_locale_says_utf8() {
        use Charset::{Ascii, Unicode};
        let s = |s: &'static str| Some(OsStr::new(s));
        let locale = |all, ctype, lang| charset_for(None, [all, ctype, lang]);
        assert_eq!(
            locale(None, None, None),
            Unicode,
            "nothing set: assume UTF-8"
        );
        assert_eq!(
            locale(s(""), s(""), s("")),
            Unicode,
            "empty counts as unset"
        );
        assert_eq!(locale(None, None, s("en_US.UTF-8")), Unicode);
        assert_eq!(
            locale(None, None, s("C.utf8")),
            Unicode,
            "any case, with or without -"
        );
        assert_eq!(locale(None, None, s("de_DE.Utf-8@euro")), Unicode);
        assert_eq!(locale(None, None, s("C")), Ascii);
        assert_eq!(locale(None, None, s("POSIX")), Ascii);
        assert_eq!(locale(None, None, s("en_US.ISO-8859-1")), Ascii);
        assert_eq!(
            locale(s("C"), s("en_US.UTF-8"), s("en_US.UTF-8")),
            Ascii,
            "LC_ALL wins"
        );
        assert_eq!(
            locale(s(""), s("C"), s("en_US.UTF-8")),
            Ascii,
            "then LC_CTYPE"
        );
        assert_eq!(locale(s(""), None, s("C")), Ascii, "then LANG");
        assert_eq!(locale(s("C.UTF-8"), None, s("C")), Unicode);

        let utf8 = [None, None, s("en_US.UTF-8")];
        assert_eq!(
            charset_for(s("1"), utf8),
            Ascii,
            "QUORATE_ASCII=1 forces it"
        );
        assert_eq!(charset_for(s("0"), utf8), Unicode, "only 1 forces it");
        assert_eq!(charset_for(s(""), [None, None, s("C")]), Ascii);
    }
}
