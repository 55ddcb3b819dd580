//! The header: the cluster (quorum, primary, term, frozen), the connection, the
//! snapshot's age, packed into as many lines as the width needs.
//!
//! Must never: cut a part (it wraps to the next line instead), or colour without a text
//! twin (`NO QUORUM`, `STALE`, `RECONNECTING`).

use ratatui::style::Modifier;
use ratatui::text::{Line, Span, Text};

use super::text::age;
use super::theme::Theme;
use crate::ui::state::{ConnStatus, State};

/// Puts the parts side by side, separated by `│`, starting a new line where the next
/// part would not fit (so that nothing is cut on a narrow screen, only wrapped).
pub(super) fn pack(parts: Vec<Line<'static>>, w: usize, th: Theme) -> Text<'static> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    for part in parts {
        match lines.last_mut() {
            Some(last) if last.width() + 3 + part.width() <= w => {
                last.spans.push(Span::raw(format!(" {} ", th.g.sep)));
                last.spans.extend(part.spans);
            }
            _ => lines.push(part),
        }
    }
    Text::from(lines)
}

/// The header's parts: the cluster (quorum, primary, term, frozen), the connection, a
/// `MEMBERS` warning when the attached node's member set disagrees, and the snapshot's
/// age.
pub(super) fn header_parts(state: &State, th: Theme) -> Vec<Line<'static>> {
    let sep = || Span::raw(format!(" {} ", th.g.sep));
    let dot = th.g.dot;
    let mut a = vec![Span::styled(
        " quorate ",
        th.strong().add_modifier(Modifier::REVERSED),
    )];
    match state.status() {
        None => a.push(Span::raw(" waiting for the first snapshot")),
        Some(s) => {
            a.push(Span::styled(format!(" {}", s.cluster), th.strong()));
            a.push(sep());
            let (alive, voters) = state.quorum_counts().unwrap_or((0, s.voters));
            if s.quorum {
                a.push(Span::styled(format!("quorum {alive}/{voters}"), th.ok()));
            } else {
                a.push(Span::styled(
                    format!(" NO QUORUM {alive}/{voters} "),
                    th.alarm(),
                ));
            }
            a.push(sep());
            match &s.primary {
                Some(p) => {
                    a.push(Span::raw("primary "));
                    a.push(Span::styled(p.clone(), th.accent()));
                }
                None => a.push(Span::styled("no primary", th.bad())),
            }
            a.push(Span::raw(format!(" {dot} term {}", s.term)));
            if s.frozen {
                a.push(Span::raw(" "));
                a.push(Span::styled(" FROZEN ", th.flag()));
            }
        }
    }

    let now = state.now();
    let attached = state.status().map(|s| s.node.clone());
    let mut b = Vec::new();
    match state.conn() {
        ConnStatus::Connecting { to } => {
            b.push(Span::styled(
                format!("connecting to {to}{}", th.g.more),
                th.warn(),
            ));
        }
        ConnStatus::Connected { to, since } => {
            b.push(Span::raw("attached "));
            match attached.filter(|n| n != to) {
                Some(node) => {
                    b.push(Span::styled(node, th.strong()));
                    b.push(Span::raw(format!(" ({to})")));
                }
                None => b.push(Span::styled(to.clone(), th.strong())),
            }
            b.push(Span::raw(format!(
                " {dot} up {}",
                age(now.saturating_duration_since(*since))
            )));
        }
        ConnStatus::Reconnecting {
            last,
            attempt,
            retry_at,
            error,
        } => {
            b.push(Span::styled(" RECONNECTING ", th.alarm()));
            b.push(Span::raw(format!(
                " {last} lost ({error}); attempt {attempt}, next in {}",
                age(retry_at.saturating_duration_since(now))
            )));
        }
    }
    let mut parts = vec![Line::from(a), Line::from(b)];
    if let Some(m) = members_warning(state, th) {
        parts.push(m);
    }
    if let Some(a) = state.snapshot_age() {
        let mut c = vec![Span::raw(format!("snapshot {} ago", age(a)))];
        if state.snapshot_stale() {
            c.push(Span::raw(" "));
            c.push(Span::styled(" STALE ", th.alarm()));
        }
        parts.push(Line::from(c));
    }
    parts
}

/// `MEMBERS n1 cannot vote · peers ≠ member set 7.4`: the attached node has a member-set
/// problem, or its `peers` disagree with the agreed set (the detail of the attached node
/// says what exactly; `quorate member list` too).
fn members_warning(state: &State, th: Theme) -> Option<Line<'static>> {
    let s = state.status()?;
    let m = &s.members;
    if !m.disagrees() {
        return None;
    }
    let mut what = Vec::new();
    if m.problem.is_some() {
        what.push(format!("{} cannot vote", s.node));
    }
    if !m.only_in_peers.is_empty() || !m.not_in_peers.is_empty() {
        let set = if m.stamp.is_empty() {
            "member set".to_string()
        } else {
            format!("member set {}", m.stamp)
        };
        what.push(format!("{}'s peers {} {set}", s.node, th.g.differs));
    }
    Some(Line::from(vec![
        Span::styled(" MEMBERS ", th.flag()),
        Span::styled(
            format!(" {}", what.join(&format!(" {} ", th.g.dot))),
            th.warn(),
        ),
    ]))
}
