//! Text: display widths, cutting and wrapping, and the formats of numbers, ages and
//! times, all to a fixed number of cells.
//!
//! Must never: know about the screen, the state or the glyphs (the characters that cut
//! text come in as an argument; bars are drawn by the theme); every function here is
//! pure, and none is longer than it says.

use std::time::Duration;

use ratatui::text::Span;

/// Display width of `s` in terminal cells (wide characters count two).
pub(super) fn width(s: &str) -> usize {
    Span::raw(s).width()
}

pub(super) fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    width(c.encode_utf8(&mut buf))
}

/// `s` cut to `w` cells, with `more` (`…`) where it was cut.
pub(super) fn fit(s: &str, w: usize, more: &str) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    let more_w = width(more).min(w);
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if used + cw + more_w > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    out.push_str(more_cut(more, w));
    out
}

/// `s` cut to `w` cells from the left (paths keep their file name).
pub(super) fn fit_left(s: &str, w: usize, more: &str) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    let more_w = width(more).min(w);
    let mut kept = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let cw = char_width(c);
        if used + cw + more_w > w {
            break;
        }
        used += cw;
        kept.push(c);
    }
    let mut out = more_cut(more, w).to_string();
    out.extend(kept.into_iter().rev());
    out
}

/// `more` cut to `w` cells: whole if it fits, else its first `w` characters (the
/// ellipses are one character wide each: `…`, `.`).
pub(super) fn more_cut(more: &str, w: usize) -> &str {
    if width(more) <= w {
        return more;
    }
    let end = more.char_indices().nth(w).map_or(more.len(), |(i, _)| i);
    &more[..end]
}

/// Word-wraps `s` to lines of at most `w` cells; words longer than a line are cut.
pub(super) fn wrap(s: &str, w: usize, more: &str) -> Vec<String> {
    let w = w.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let needed = width(&line) + usize::from(!line.is_empty()) + width(word);
        if !line.is_empty() && needed > w {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        if width(word) > w {
            line.push_str(&fit(word, w, more));
        } else {
            line.push_str(word);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `45%`; `-` for nonsense.
pub(super) fn pct(f: f64) -> String {
    if f.is_finite() && f >= 0.0 {
        format!("{:.0}%", (f * 100.0).min(999.0))
    } else {
        "-".to_string()
    }
}

/// At most four characters: `0.85`, `14.2`, `312`, `10k+`.
pub(super) fn num(x: f64) -> String {
    match x {
        x if !x.is_finite() || x < 0.0 => "-".to_string(),
        x if x < 9.995 => format!("{x:.2}"),
        x if x < 99.95 => format!("{x:.1}"),
        x if x < 9_999.5 => format!("{x:.0}"),
        _ => "10k+".to_string(),
    }
}

/// At most six characters: `0.4ms`, `12ms`, `1.2s`, `+0.4ms`, `>99s`.
pub(super) fn millis(ms: Option<f64>, signed: bool) -> String {
    let Some(ms) = ms.filter(|m| m.is_finite()) else {
        return "-".to_string();
    };
    let sign = if !signed {
        ""
    } else if ms < 0.0 {
        "-"
    } else {
        "+"
    };
    let a = if signed { ms.abs() } else { ms.max(0.0) };
    let body = if a < 9.95 {
        format!("{a:.1}ms")
    } else if a < 999.5 {
        format!("{a:.0}ms")
    } else if a < 9_950.0 {
        format!("{:.1}s", a / 1000.0)
    } else if a < 99_500.0 {
        format!("{:.0}s", a / 1000.0)
    } else {
        return format!("{}99s", if signed { sign } else { ">" });
    };
    format!("{sign}{body}")
}

/// At most five characters: `0.4s`, `12s`, `4m05s`, `2h05m`, `3d04h`, `>99d`.
pub(super) fn age(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 9_950 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
        86_400..8_640_000 => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3_600),
        _ => ">99d".to_string(),
    }
}

/// `HH:MM:SS` UTC of a wall time in microseconds since the epoch.
pub(super) fn clock(at_micros: u64) -> String {
    let s = at_micros / 1_000_000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3_600, s % 3_600 / 60, s % 60)
}
