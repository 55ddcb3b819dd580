//! Snapshots of every fixture at 80×24 and 120×40 (in `../snapshots/`, the design
//! review), their ASCII variants, and cell-by-cell checks: no colour under NO_COLOR,
//! nothing non-ASCII under ASCII, no panic at any size.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use proto::ctl::EventRecord;
use proto::status::ClusterStatus;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use super::detail::sparkline;
use super::table::fit_columns;
use super::text::{age, clock, millis, num, pct, width};
use super::theme::{ASCII, UNICODE, bar};
use super::*;
use crate::ui::fixtures;
use crate::ui::state::ConnStatus;
use crate::ui::term::Charset;

/// `insta::assert_snapshot!`, with the snapshots kept in `ui/snapshots/`, next to the
/// other modules' and where they were before `view` became a folder.
macro_rules! snapshot {
    ($name:expr, $value:expr $(,)?) => {
        insta::with_settings!({ snapshot_path => "../snapshots" }, {
            insta::assert_snapshot!($name, $value)
        })
    };
}

/// Room for the table's columns without rows, with a differs mark `differs` wide.
fn room(differs: usize) -> crate::columns::Room<'static> {
    crate::columns::Room {
        bars: false,
        differs,
        rows: &[],
        measure: width,
    }
}

/// The screen as text, one line per row, trailing blanks cut (what insta stores).
fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0usize;
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            if skip == 0 {
                line.push_str(c.symbol());
            }
            skip = skip.max(width(c.symbol())).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn render(state: &State, app: &App, w: u16, h: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| draw(f, state, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn keys(app: &mut App, state: &State, keys: &[KeyCode]) {
    for k in keys {
        app.handle_key(KeyEvent::new(*k, KeyModifiers::NONE), state);
    }
}

type Fixture = (
    &'static str,
    fn() -> ClusterStatus,
    fn() -> Vec<EventRecord>,
);

const FIXTURES: [Fixture; 5] = [
    ("healthy", fixtures::healthy, fixtures::healthy_events),
    ("failover", fixtures::failover, fixtures::failover_events),
    ("drift", fixtures::drift, fixtures::drift_events),
    (
        "hung_mount",
        fixtures::hung_mount,
        fixtures::hung_mount_events,
    ),
    (
        "lost_quorum",
        fixtures::lost_quorum,
        fixtures::lost_quorum_events,
    ),
];

/// Which node each fixture's detail shows: the interesting one.
fn detail_node(name: &str) -> usize {
    match name {
        "failover" => 0,
        "drift" => 2,
        "hung_mount" => 1,
        "lost_quorum" => 1,
        _ => 1,
    }
}

#[test]
fn screens() {
    for (name, status, events) in FIXTURES {
        let state = fixtures::state(status(), events());
        for (w, h) in [(80, 24), (120, 40)] {
            let mut app = App::new(false, Charset::Unicode);
            let main = text(&render(&state, &app, w, h));
            snapshot!(format!("{name}_main_{w}x{h}"), main);

            keys(&mut app, &state, &vec![KeyCode::Down; detail_node(name)]);
            keys(&mut app, &state, &[KeyCode::Enter]);
            let detail = text(&render(&state, &app, w, h));
            snapshot!(format!("{name}_detail_{w}x{h}"), detail);
        }
    }
}

#[test]
fn help_and_confirm() {
    let state = fixtures::state(fixtures::healthy(), fixtures::healthy_events());
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = App::new(false, Charset::Unicode);
        keys(&mut app, &state, &[KeyCode::Char('?')]);
        snapshot!(format!("help_{w}x{h}"), text(&render(&state, &app, w, h)));

        let mut app = App::new(false, Charset::Unicode);
        keys(&mut app, &state, &[KeyCode::Down, KeyCode::Char('d')]);
        snapshot!(
            format!("confirm_drain_{w}x{h}"),
            text(&render(&state, &app, w, h))
        );
    }
}

#[test]
fn connection_trouble_and_filter() {
    let mut state = fixtures::state(fixtures::healthy(), fixtures::healthy_events());
    state.on_connection(ConnStatus::Reconnecting {
        last: "n1".into(),
        attempt: 3,
        retry_at: fixtures::now() + Duration::from_secs(6),
        error: "connection refused".into(),
    });
    state.tick(fixtures::now() + Duration::from_secs(4));
    state.on_command_result(Err("n3 is not eligible: app check failing".into()));
    let mut app = App::new(false, Charset::Unicode);
    keys(
        &mut app,
        &state,
        &[KeyCode::Char('/'), KeyCode::Char('n'), KeyCode::Char('2')],
    );
    snapshot!(
        "reconnecting_filter_80x24",
        text(&render(&state, &app, 80, 24))
    );

    let waiting = State::new(
        fixtures::t0(),
        ConnStatus::Connecting {
            to: "10.0.0.1:7400".into(),
        },
    );
    snapshot!(
        "connecting_80x24",
        text(&render(
            &waiting,
            &App::new(false, Charset::Unicode),
            80,
            24
        ))
    );
}

/// The attached node's member-set trouble: a `MEMBERS` flag in the header (with its
/// text twin), the problem and the peers disagreement in its detail; nothing of it while
/// the set agrees.
#[test]
fn members_disagreement_shows_in_the_header_and_the_detail() {
    let state = fixtures::state(fixtures::members_disagree(), fixtures::healthy_events());
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = App::new(false, Charset::Unicode);
        let main = text(&render(&state, &app, w, h));
        snapshot!(format!("members_main_{w}x{h}"), main);
        assert!(
            main.contains(" MEMBERS  n3 cannot vote · n3's peers ≠ member set 7.5"),
            "{main}"
        );
        // n3, the attached node, is the third row.
        keys(
            &mut app,
            &state,
            &[KeyCode::Down, KeyCode::Down, KeyCode::Enter],
        );
        let detail = text(&render(&state, &app, w, h));
        snapshot!(format!("members_detail_{w}x{h}"), detail);
        assert!(
            detail.contains("members  not a voter in the agreed"),
            "{detail}"
        );
        assert!(
            detail.contains("members  peers ≠ member set 7.5: only in peers 10.0.0.3:7400"),
            "{detail}"
        );
        assert!(detail.contains("10.0.0.4:7400"), "{detail}");

        // Another node's detail does not repeat it.
        let mut app = App::new(false, Charset::Unicode);
        keys(&mut app, &state, &[KeyCode::Enter]);
        let other = text(&render(&state, &app, w, h));
        assert!(!other.contains("members  "), "{other}");
    }
    let app = App::new(false, Charset::Ascii);
    let ascii = text(&render(&state, &app, 120, 40));
    assert!(
        ascii.contains(" MEMBERS  n3 cannot vote - n3's peers != member set 7.5"),
        "{ascii}"
    );

    for (_, status, events) in FIXTURES {
        let state = fixtures::state(status(), events());
        let screen = text(&render(&state, &App::new(false, Charset::Unicode), 120, 40));
        assert!(!screen.contains("MEMBERS"), "{screen}");
    }
}

/// What does not fit in the detail pane at 80×24 is reachable by scrolling, and
/// scrolling stops at its end; a command's answer shows in the status line.
#[test]
fn detail_scrolls_to_its_end_and_answers_show() {
    let mut state = fixtures::state(fixtures::hung_mount(), fixtures::hung_mount_events());
    let mut app = App::new(false, Charset::Unicode);
    keys(&mut app, &state, &[KeyCode::Down, KeyCode::Enter]);
    let first = text(&render(&state, &app, 80, 24));
    assert!(first.contains("↓ more") && !first.contains("balancer"));
    keys(&mut app, &state, &[KeyCode::Tab, KeyCode::End]);
    let last = text(&render(&state, &app, 80, 24));
    assert!(last.contains("balancer MAINT (lb1, weight 0)"), "{last}");
    assert!(last.contains("↑ k"));
    let max = app.detail_max.get();
    assert!(max > 0);
    assert_eq!(app.detail_scroll, max);
    keys(&mut app, &state, &[KeyCode::Up]);
    assert_eq!(app.detail_scroll, max - 1);

    state.on_command_result(Err("n3 is not eligible: app check failing".into()));
    state.tick(fixtures::now() + Duration::from_secs(2));
    let screen = text(&render(&state, &app, 80, 24));
    let status = screen.lines().last().unwrap();
    assert!(
        status.starts_with("refused: n3 is not eligible: app check failing (2.0s ago)"),
        "{status}"
    );
}

/// Every size from tiny to large, every fixture, every overlay: no panic, and nothing
/// drawn outside the frame (ratatui would panic on that).
#[test]
fn no_size_panics() {
    let mut odd = fixtures::healthy();
    odd.nodes[0].node = "ノード-ü-very-long-unicode-name-that-goes-on".into();
    odd.nodes[1].last_seen_ms = Some(u64::MAX);
    odd.nodes[1].load.cpu = f64::NAN;
    odd.nodes[2].load.load1 = 1e300;
    odd.nodes[2].rtt_ms = Some(-1.0);
    odd.nodes[2].clock_offset_ms = Some(f64::INFINITY);
    let mut empty = fixtures::healthy();
    empty.nodes.clear();
    let mut states: Vec<State> = FIXTURES
        .iter()
        .map(|(_, s, e)| fixtures::state(s(), e()))
        .collect();
    states.push(fixtures::state(odd, vec![]));
    states.push(fixtures::state(empty, vec![]));
    states.push(fixtures::state(fixtures::members_disagree(), vec![]));
    states.push(State::new(
        fixtures::t0(),
        ConnStatus::Reconnecting {
            last: "n1".into(),
            attempt: 7,
            retry_at: fixtures::t0(),
            error: "x".into(),
        },
    ));
    for state in &states {
        for extra in [
            &[][..],
            &[KeyCode::Enter],
            &[KeyCode::Char('?')],
            &[KeyCode::Char('d')],
            &[KeyCode::Char('f')],
        ] {
            let mut app = App::new(true, Charset::Unicode);
            keys(&mut app, state, extra);
            for (w, h) in [
                (1, 1),
                (20, 5),
                (29, 7),
                (30, 8),
                (40, 12),
                (60, 15),
                (80, 24),
                (100, 30),
                (119, 29),
                (120, 40),
                (200, 60),
            ] {
                render(state, &app, w, h);
            }
        }
    }
}

#[test]
fn no_color_means_no_colour_and_stale_is_never_green() {
    let state = fixtures::state(fixtures::failover(), fixtures::failover_events());
    let mut app = App::new(false, Charset::Unicode);
    keys(&mut app, &state, &[KeyCode::Enter]);
    let buf = render(&state, &app, 120, 40);
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: a colour was used"
    );

    // With colours: n1 is dead, and nothing on its table row is green.
    let app = App::new(true, Charset::Unicode);
    let buf = render(&state, &app, 120, 40);
    let screen = text(&buf);
    let y = screen.lines().position(|l| l.contains(" n1 ")).unwrap() as u16;
    for x in 0..buf.area.width {
        assert_ne!(
            buf[(x, y)].fg,
            Color::Green,
            "green at column {x} of the dead node's row"
        );
    }
    // n3 is alive and fresh: its state is green.
    assert!(buf.content.iter().any(|c| c.fg == Color::Green));
}

/// The ASCII variant of the screens that show most of the glyphs.
#[test]
fn ascii_screens() {
    for (w, h) in [(80, 24), (120, 40)] {
        let state = fixtures::state(fixtures::healthy(), fixtures::healthy_events());
        let mut app = App::new(false, Charset::Ascii);
        snapshot!(
            format!("ascii_healthy_main_{w}x{h}"),
            text(&render(&state, &app, w, h))
        );
        keys(&mut app, &state, &[KeyCode::Char('?')]);
        snapshot!(
            format!("ascii_help_{w}x{h}"),
            text(&render(&state, &app, w, h))
        );

        for name in ["failover", "drift"] {
            let (_, status, events) = FIXTURES.into_iter().find(|f| f.0 == name).unwrap();
            let state = fixtures::state(status(), events());
            let mut app = App::new(false, Charset::Ascii);
            snapshot!(
                format!("ascii_{name}_main_{w}x{h}"),
                text(&render(&state, &app, w, h))
            );
            keys(&mut app, &state, &vec![KeyCode::Down; detail_node(name)]);
            keys(&mut app, &state, &[KeyCode::Enter]);
            snapshot!(
                format!("ascii_{name}_detail_{w}x{h}"),
                text(&render(&state, &app, w, h))
            );
        }
    }
}

/// Under ASCII every cell of every screen is ASCII: all fixtures, both sizes, the
/// main screen, the detail pane (scrolled to its end too), help, a confirmation,
/// filtering, and the too-small screen.
#[test]
fn ascii_screens_are_all_ascii() {
    assert!(format!("{ASCII:?}").is_ascii(), "the ASCII glyph table");
    let mut states: Vec<(&str, State)> = FIXTURES
        .iter()
        .map(|(name, s, e)| (*name, fixtures::state(s(), e())))
        .collect();
    let mut trouble = fixtures::state(fixtures::hung_mount(), fixtures::hung_mount_events());
    trouble.on_connection(ConnStatus::Reconnecting {
        last: "n1".into(),
        attempt: 3,
        retry_at: fixtures::now() + Duration::from_secs(6),
        error: "connection refused".into(),
    });
    trouble.tick(fixtures::now() + Duration::from_secs(30));
    states.push(("reconnecting", trouble));
    states.push((
        "members",
        fixtures::state(fixtures::members_disagree(), fixtures::healthy_events()),
    ));
    states.push((
        "connecting",
        State::new(
            fixtures::t0(),
            ConnStatus::Connecting {
                to: "10.0.0.1:7400".into(),
            },
        ),
    ));
    let n = |k| KeyCode::Char(k);
    let ways: [&[KeyCode]; 9] = [
        &[],
        &[KeyCode::Down, n('d'), n('y')],
        &[n('f')],
        &[KeyCode::Down, KeyCode::Enter],
        &[KeyCode::Down, KeyCode::Enter, KeyCode::Tab, KeyCode::End],
        &[n('?')],
        &[KeyCode::Down, n('d')],
        &[n('/'), n('z')],
        &[n('/'), n('n'), KeyCode::Enter, n('s'), n('s')],
    ];
    for (name, state) in &states {
        for (i, way) in ways.iter().enumerate() {
            let mut app = App::new(true, Charset::Ascii);
            keys(&mut app, state, way);
            for (w, h) in [(80, 24), (120, 40), (100, 30), (40, 12), (20, 5)] {
                let buf = render(state, &app, w, h);
                for (at, c) in buf.content.iter().enumerate() {
                    assert!(
                        c.symbol().is_ascii(),
                        "{name}, keys #{i}, {w}x{h}: {:?} at {at}:\n{}",
                        c.symbol(),
                        text(&buf)
                    );
                }
            }
        }
    }
    // Every node's detail, not only the interesting one.
    for (name, state) in &states {
        let nodes = state.status().map_or(0, |s| s.nodes.len());
        for down in 0..nodes {
            let mut app = App::new(false, Charset::Ascii);
            keys(&mut app, state, &vec![KeyCode::Down; down]);
            keys(&mut app, state, &[KeyCode::Enter]);
            for (w, h) in [(80, 24), (120, 40)] {
                let screen = text(&render(state, &app, w, h));
                assert!(screen.is_ascii(), "{name}, node {down}, {w}x{h}:\n{screen}");
            }
        }
    }
}

/// Cut text and bars in ASCII; the data itself is never rewritten.
#[test]
fn ascii_formats() {
    let th = Theme {
        color: false,
        g: &ASCII,
    };
    assert_eq!(th.fit("abcdefgh", 6), "abc...");
    assert_eq!(th.fit("abcdefgh", 2), "..");
    assert_eq!(th.fit("abc", 3), "abc");
    assert_eq!(th.fit_left("/etc/app/app.conf", 11), "...app.conf");
    assert_eq!(th.wrap("one two threefour", 7), ["one two", "thre..."]);
    assert_eq!(bar(0.5, 5, &ASCII), "###..");
    assert_eq!(bar(1.0, 5, &ASCII), "#####");
    assert_eq!(bar(f64::NAN, 3, &ASCII), "...");
    assert_eq!(
        sparkline(&[Some(0.0), Some(0.5), None, Some(1.0)], 1.0, &ASCII),
        "_-?#"
    );
    for w in [0, 1, 30, 80, 200] {
        let (cols, _) = fit_columns(w, &room(2));
        assert!(cols.iter().any(|c| c.title == "NODE"));
    }
}

#[test]
fn formats() {
    assert_eq!(age(Duration::from_millis(400)), "0.4s");
    assert_eq!(age(Duration::from_secs(12)), "12s");
    assert_eq!(age(Duration::from_secs(245)), "4m05s");
    assert_eq!(age(Duration::from_secs(7_500)), "2h05m");
    assert_eq!(age(Duration::MAX), ">99d");
    assert_eq!(millis(Some(0.42), false), "0.4ms");
    assert_eq!(millis(Some(-1234.0), true), "-1.2s");
    assert_eq!(millis(Some(1e9), true), "+99s");
    assert_eq!(millis(Some(f64::NAN), false), "-");
    assert_eq!(num(0.853), "0.85");
    assert_eq!(num(14.2), "14.2");
    assert_eq!(num(1e12), "10k+");
    assert_eq!(pct(0.456), "46%");
    assert_eq!(pct(f64::INFINITY), "-");
    assert_eq!(bar(0.5, 5, &UNICODE), "██▌░░");
    assert_eq!(bar(f64::NAN, 3, &UNICODE), "░░░");
    let th = Theme {
        color: false,
        g: &UNICODE,
    };
    assert_eq!(th.fit("abcdef", 4), "abc…");
    assert_eq!(th.fit("ノード", 4), "ノ…");
    assert_eq!(th.fit_left("/etc/app/app.conf", 9), "…app.conf");
    assert_eq!(th.wrap("one two three", 7), ["one two", "three"]);
    assert_eq!(clock(1_748_764_800_000_000 + 3_723_000_000), "09:02:03");
    assert_eq!(
        sparkline(&[Some(0.0), Some(0.5), None, Some(1.0)], 1.0, &UNICODE),
        "▁▄·█"
    );
    for w in [0, 1, 30, 80, 200] {
        let (cols, _) = fit_columns(w, &room(1));
        assert!(cols.iter().any(|c| c.title == "NODE"));
    }
}
