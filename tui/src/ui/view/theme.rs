//! The look: the [`Glyphs`] (Unicode or ASCII) and the [`Theme`]'s styles (with colour or
//! under NO_COLOR, where only bold, dim and reverse video are used).
//!
//! Owns every character the view draws that is not a letter, digit or plain punctuation
//! (bars included), and every style. Must never: decide layout or content, or hold
//! state; nothing outside this module picks a colour or writes a box-drawing character
//! itself.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::widgets::Block;

use super::text::{fit, fit_left, wrap};
pub(super) use crate::columns::Level;
use crate::ui::term::Charset;

/// The characters the view draws with, other than letters, digits and plain
/// punctuation. [`UNICODE`] is the intended look; [`ASCII`] is for terminals that can
/// show nothing else, so every entry there must be ASCII.
#[derive(Debug)]
pub(super) struct Glyphs {
    pub(super) border: border::Set<'static>,
    /// Between the header's parts.
    pub(super) sep: &'static str,
    /// Between items within a line (spaced by the caller).
    pub(super) dot: &'static str,
    /// Where text was cut.
    pub(super) more: &'static str,
    /// Differs from the other nodes, in text.
    pub(super) differs: &'static str,
    /// Differs, missing, in one cell of the config matrix.
    pub(super) differs_cell: char,
    pub(super) missing_cell: char,
    /// In a range, `0–100%`.
    pub(super) dash: &'static str,
    /// "At least", before an age that was already so at start.
    pub(super) at_least: &'static str,
    /// After the title of the column the table is sorted by.
    pub(super) sorted: &'static str,
    pub(super) up: &'static str,
    pub(super) down: &'static str,
    pub(super) arrow: &'static str,
    pub(super) times: &'static str,
    pub(super) quotes: (&'static str, &'static str),
    pub(super) cursor: &'static str,
    /// Partial cells of a bar, the last one full.
    pub(super) bar: &'static [char],
    pub(super) bar_empty: char,
    /// Sparkline, lowest first, and its mark for a missing sample.
    pub(super) spark: [char; 8],
    pub(super) spark_none: char,
}

pub(super) const UNICODE: Glyphs = Glyphs {
    border: border::PLAIN,
    sep: "│",
    dot: "·",
    more: "…",
    differs: "≠",
    differs_cell: '≠',
    missing_cell: '–',
    dash: "–",
    at_least: "≥",
    sorted: "▾",
    up: "↑",
    down: "↓",
    arrow: "→",
    times: "×",
    quotes: ("“", "”"),
    cursor: "▏",
    bar: &['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'],
    bar_empty: '░',
    spark: ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
    spark_none: '·',
};

pub(super) const ASCII: Glyphs = Glyphs {
    border: border::Set {
        top_left: "+",
        top_right: "+",
        bottom_left: "+",
        bottom_right: "+",
        vertical_left: "|",
        vertical_right: "|",
        horizontal_top: "-",
        horizontal_bottom: "-",
    },
    sep: "|",
    dot: "-",
    more: "...",
    differs: "!=",
    differs_cell: 'x',
    missing_cell: '-',
    dash: "-",
    at_least: ">=",
    sorted: "v",
    up: "^",
    down: "v",
    arrow: "->",
    times: "x",
    quotes: ("\"", "\""),
    cursor: "_",
    bar: &['#'],
    bar_empty: '.',
    spark: ['_', '.', ':', '-', '=', '+', '*', '#'],
    spark_none: '?',
};

pub(super) fn glyphs(charset: Charset) -> &'static Glyphs {
    match charset {
        Charset::Unicode => &UNICODE,
        Charset::Ascii => &ASCII,
    }
}

/// Styles, with and without colour, and the glyphs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Theme {
    pub(super) color: bool,
    pub(super) g: &'static Glyphs,
}

impl Theme {
    /// A bordered block in the glyphs' border set.
    pub(super) fn block(self) -> Block<'static> {
        Block::bordered().border_set(self.g.border)
    }
    pub(super) fn fit(self, s: &str, w: usize) -> String {
        fit(s, w, self.g.more)
    }
    pub(super) fn fit_left(self, s: &str, w: usize) -> String {
        fit_left(s, w, self.g.more)
    }
    pub(super) fn wrap(self, s: &str, w: usize) -> Vec<String> {
        wrap(s, w, self.g.more)
    }
    pub(super) fn bar(self, fraction: f64, w: usize) -> String {
        bar(fraction, w, self.g)
    }
    pub(super) fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    pub(super) fn plain(self) -> Style {
        Style::new()
    }
    pub(super) fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    pub(super) fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    pub(super) fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub(super) fn stale(self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }
    pub(super) fn strong(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub(super) fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub(super) fn flag(self) -> Style {
        self.warn()
            .add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }
    pub(super) fn alarm(self) -> Style {
        self.bad().add_modifier(Modifier::REVERSED)
    }
    pub(super) fn border(self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan)
        } else {
            self.plain()
        }
    }
    pub(super) fn title(self, focused: bool) -> Style {
        if focused {
            self.accent().add_modifier(Modifier::REVERSED)
        } else {
            self.strong()
        }
    }
    pub(super) fn level(self, level: Level) -> Style {
        match level {
            Level::Plain => self.plain(),
            Level::Ok => self.ok(),
            Level::Warn => self.warn(),
            Level::Bad => self.bad(),
            Level::Dim => self.stale(),
            Level::Accent => self.accent(),
            Level::Strong => self.strong(),
        }
    }
}

/// A bar of `w` cells for a fraction 0–1, in as many parts of a cell as the glyphs have
/// (eighths in Unicode, whole cells in ASCII).
pub(super) fn bar(fraction: f64, w: usize, g: &Glyphs) -> String {
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let parts = g.bar.len().max(1);
    let full = g.bar.last().copied().unwrap_or('#');
    let units = (f * (w * parts) as f64).round() as usize;
    let mut out: String = std::iter::repeat_n(full, units / parts).collect();
    if let Some(part) = (units % parts).checked_sub(1) {
        out.push(g.bar[part]);
    }
    let filled = out.chars().count();
    out.extend(std::iter::repeat_n(g.bar_empty, w.saturating_sub(filled)));
    out
}
