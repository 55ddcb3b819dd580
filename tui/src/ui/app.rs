//! Keys in, actions out: the one place a key press becomes a command to the cluster.
//!
//! Owns: what the operator is looking at (focus, selection, open detail, sort, filter,
//! scroll positions, overlays) and the confirmation flow — every command that changes the
//! cluster is asked about first and only then returned as [`Action::Command`] for the
//! caller to send.
//!
//! Must never: do IO, read a clock, change [`State`] (it only reads it), or draw. The
//! selection is a node *name*, not an index, so that it stays on the same node while
//! snapshots re-sort the table under it.

use std::cell::Cell;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use proto::ctl::CtlCommand;
use proto::status::NodeStatus;

use super::state::State;
use super::term::Charset;
use crate::columns::SortKey;

/// The reason sent with a drain from the TUI; the agent adds who asked.
pub const DRAIN_REASON: &str = "drained from the quorate TUI";

/// What the caller must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Send this command to the attached agent and hand its answer to
    /// [`State::on_command_result`].
    Command(CtlCommand),
}

/// Which pane the arrow keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Nodes,
    Detail,
    Events,
}

/// A command waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// "Drain n2?"
    pub question: String,
    /// What will happen, in one or two sentences.
    pub effect: String,
    pub command: CtlCommand,
}

/// What the keys mean right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing a filter; `input` filters the table live.
    Filter {
        input: String,
    },
    Confirm(Confirm),
}

/// A line for the status bar, shown until the next key or until a command result newer
/// than it comes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    /// [`State::outcomes`] when the notice was made.
    pub after: u64,
}

/// The operator's side of the screen. See the module doc.
#[derive(Debug, Clone)]
pub struct App {
    /// Whether the view may use colours (false under NO_COLOR).
    pub(super) colors: bool,
    /// Which characters the view may use (only ASCII under `LANG=C`).
    pub(super) charset: Charset,
    pub(super) focus: Focus,
    pub(super) mode: Mode,
    pub(super) sort: SortKey,
    /// The applied filter.
    pub(super) filter: String,
    pub(super) selected: Option<String>,
    pub(super) detail_open: bool,
    pub(super) detail_scroll: u16,
    /// How many events back from the newest the log is scrolled (0: follows the newest).
    pub(super) events_back: usize,
    pub(super) notice: Option<Notice>,
    /// How far the detail pane and the event log can scroll, as the last draw found
    /// (only the view knows how much fits); scrolling stops there instead of running on
    /// past what can be seen.
    pub(super) detail_max: Cell<u16>,
    pub(super) events_max: Cell<usize>,
}

impl App {
    pub fn new(colors: bool, charset: Charset) -> Self {
        Self {
            colors,
            charset,
            focus: Focus::Nodes,
            mode: Mode::Normal,
            sort: SortKey::default(),
            filter: String::new(),
            selected: None,
            detail_open: false,
            detail_scroll: 0,
            events_back: 0,
            notice: None,
            detail_max: Cell::new(u16::MAX),
            events_max: Cell::new(usize::MAX),
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    pub fn focus(&self) -> Focus {
        self.focus
    }

    pub fn sort(&self) -> SortKey {
        self.sort
    }

    /// The filter the table shows: the one being typed, else the applied one.
    pub fn filter(&self) -> &str {
        match &self.mode {
            Mode::Filter { input } => input,
            _ => &self.filter,
        }
    }

    pub fn detail_open(&self) -> bool {
        self.detail_open
    }

    /// The notice, unless a command result came in after it.
    pub fn notice(&self, state: &State) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|n| n.after == state.outcomes())
            .map(|n| n.text.as_str())
    }

    /// The rows shown and the index of the highlighted one: the selected node, or the
    /// first row when it is gone or none was chosen yet.
    pub fn rows<'s>(&self, state: &'s State) -> (Vec<&'s NodeStatus>, Option<usize>) {
        let rows = state.rows(self.sort, self.filter());
        let index = self
            .selected
            .as_ref()
            .and_then(|name| rows.iter().position(|n| &n.node == name))
            .or((!rows.is_empty()).then_some(0));
        (rows, index)
    }

    /// The node the detail pane and the node commands are about.
    pub fn current<'s>(&self, state: &'s State) -> Option<&'s NodeStatus> {
        let (rows, index) = self.rows(state);
        index.map(|i| rows[i])
    }

    pub fn handle_key(&mut self, key: KeyEvent, state: &State) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        self.notice = None;
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key, state),
            Mode::Help => match key.code {
                KeyCode::Char('q') => Action::Quit,
                KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => Action::None,
                _ => {
                    self.mode = Mode::Help;
                    Action::None
                }
            },
            Mode::Filter { mut input } => {
                match key.code {
                    KeyCode::Esc => self.filter.clear(),
                    KeyCode::Enter => self.filter = input.trim().to_string(),
                    KeyCode::Backspace => {
                        input.pop();
                        self.mode = Mode::Filter { input };
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        input.push(c);
                        self.mode = Mode::Filter { input };
                    }
                    _ => self.mode = Mode::Filter { input },
                }
                Action::None
            }
            Mode::Confirm(confirm) => match key.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => {
                    let more = match self.charset {
                        Charset::Unicode => "…",
                        Charset::Ascii => "...",
                    };
                    self.say(
                        state,
                        format!(
                            "{}: sent, waiting for the agent{more}",
                            describe(&confirm.command)
                        ),
                    );
                    Action::Command(confirm.command)
                }
                KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => {
                    self.say(state, "cancelled, nothing sent");
                    Action::None
                }
                _ => {
                    self.mode = Mode::Confirm(confirm);
                    Action::None
                }
            },
        }
    }

    /// Pasted text (bracketed paste): only the filter takes it, so that a paste can never
    /// act as keys that drain or transfer.
    pub fn handle_paste(&mut self, text: &str) {
        if let Mode::Filter { input } = &mut self.mode {
            input.extend(text.chars().filter(|c| !c.is_control()));
        }
    }

    fn normal_key(&mut self, key: KeyEvent, state: &State) -> Action {
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Tab => self.cycle_focus(true),
            KeyCode::BackTab => self.cycle_focus(false),
            KeyCode::Up | KeyCode::Char('k') => self.step(state, -1),
            KeyCode::Down | KeyCode::Char('j') => self.step(state, 1),
            KeyCode::PageUp => self.step(state, -10),
            KeyCode::PageDown => self.step(state, 10),
            KeyCode::Home | KeyCode::Char('g') => self.step(state, isize::MIN),
            KeyCode::End | KeyCode::Char('G') => self.step(state, isize::MAX),
            KeyCode::Enter => self.toggle_detail(),
            KeyCode::Esc => {
                if self.detail_open {
                    self.toggle_detail();
                } else {
                    self.filter.clear();
                }
            }
            KeyCode::Char('/') => {
                self.mode = Mode::Filter {
                    input: self.filter.clone(),
                }
            }
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('S') => self.sort = self.sort.prev(),
            KeyCode::Char(c @ ('d' | 'u' | 't')) => self.ask_node_command(c, state),
            KeyCode::Char('f') => self.ask_freeze(state),
            _ => {}
        }
        Action::None
    }

    fn say(&mut self, state: &State, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            after: state.outcomes(),
        });
    }

    fn cycle_focus(&mut self, forward: bool) {
        // The detail pane takes focus only while it is open.
        let order: &[Focus] = if self.detail_open {
            &[Focus::Nodes, Focus::Detail, Focus::Events]
        } else {
            &[Focus::Nodes, Focus::Events]
        };
        let i = order.iter().position(|f| *f == self.focus).unwrap_or(0);
        let n = order.len();
        self.focus = order[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }];
    }

    fn toggle_detail(&mut self) {
        self.detail_open = !self.detail_open;
        self.detail_scroll = 0;
        if !self.detail_open && self.focus == Focus::Detail {
            self.focus = Focus::Nodes;
        }
    }

    /// Moves what the focused pane shows by `by` lines (±isize::MAX: to either end).
    fn step(&mut self, state: &State, by: isize) {
        match self.focus {
            Focus::Nodes => {
                let (rows, index) = self.rows(state);
                let Some(i) = index else { return };
                let j = i.saturating_add_signed(by).min(rows.len() - 1);
                if j != i || self.selected.is_none() {
                    self.selected = Some(rows[j].node.clone());
                    self.detail_scroll = 0;
                }
            }
            Focus::Detail => {
                let to = usize::from(self.detail_scroll).saturating_add_signed(by);
                self.detail_scroll = u16::try_from(to)
                    .unwrap_or(u16::MAX)
                    .min(self.detail_max.get());
            }
            // Up goes back in time: further from the newest event.
            Focus::Events => {
                let max = state.events().len().min(self.events_max.get());
                self.events_back = self
                    .events_back
                    .saturating_add_signed(by.saturating_neg())
                    .min(max);
            }
        }
    }

    fn ask_node_command(&mut self, key: char, state: &State) {
        let Some(n) = self.current(state) else {
            self.say(
                state,
                "no node selected (no cluster view yet, or the filter hides all)",
            );
            return;
        };
        let name = n.node.clone();
        let confirm = match key {
            'd' if n.draining => {
                return self.say(state, format!("{name} is already draining (u undrains it)"));
            }
            'd' => Confirm {
                question: format!("Drain {name}?"),
                effect: format!(
                    "{name} hands over the primary role if it holds it, then its /health \
                     answers the drain code and the load balancer takes it out of traffic \
                     until it is undrained."
                ),
                command: CtlCommand::Drain {
                    node: Some(name),
                    reason: DRAIN_REASON.to_string(),
                    for_secs: None,
                },
            },
            'u' if !n.draining => {
                return self.say(state, format!("{name} is not draining"));
            }
            'u' => Confirm {
                question: format!("Undrain {name}?"),
                effect: format!("{name} takes traffic again once its checks pass."),
                command: CtlCommand::Undrain { node: Some(name) },
            },
            _ if state.status().and_then(|s| s.primary.as_deref()) == Some(name.as_str()) => {
                return self.say(state, format!("{name} is already the primary"));
            }
            _ => Confirm {
                question: format!("Transfer the primary role to {name}?"),
                effect: format!(
                    "The primary hands over to {name} (a transfer, not a failover). The \
                     agent refuses if {name} is not eligible."
                ),
                command: CtlCommand::Transfer { node: name },
            },
        };
        self.mode = Mode::Confirm(confirm);
    }

    fn ask_freeze(&mut self, state: &State) {
        let Some(status) = state.status() else {
            return self.say(state, "no cluster view yet");
        };
        self.mode = Mode::Confirm(if status.frozen {
            Confirm {
                question: format!("Unfreeze cluster {}?", status.cluster),
                effect: "Elections, preemption and transfers are allowed again.".into(),
                command: CtlCommand::Unfreeze,
            }
        } else {
            Confirm {
                question: format!("Freeze cluster {}?", status.cluster),
                effect: "No elections, no preemption and no transfers until unfrozen; the \
                         current primary stays as long as it holds its lease."
                    .into(),
                command: CtlCommand::Freeze,
            }
        });
    }
}

/// A command in a few words, for the status line.
pub fn describe(command: &CtlCommand) -> String {
    let who = |n: &Option<String>| n.clone().unwrap_or_else(|| "this node".into());
    match command {
        CtlCommand::Drain { node, .. } => format!("drain {}", who(node)),
        CtlCommand::Undrain { node } => format!("undrain {}", who(node)),
        CtlCommand::Transfer { node } => format!("transfer to {node}"),
        CtlCommand::Freeze => "freeze".into(),
        CtlCommand::Unfreeze => "unfreeze".into(),
        CtlCommand::UpgradeAllow { node } => format!("upgrade allow {}", who(node)),
        CtlCommand::DriftAck { name, .. } => format!("drift ack {name}"),
        CtlCommand::Member(change) => format!("member {change}"),
        CtlCommand::ForceNewCluster => "member force-new-cluster".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ui::fixtures;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn press(app: &mut App, state: &State, keys: &str) -> Vec<Action> {
        keys.chars()
            .map(|c| app.handle_key(key(KeyCode::Char(c)), state))
            .collect()
    }

    fn healthy() -> State {
        fixtures::state(fixtures::healthy(), fixtures::healthy_events())
    }

    fn selected(app: &App, state: &State) -> String {
        app.current(state).unwrap().node.clone()
    }

    #[test]
    fn quits_on_q_and_ctrl_c_anywhere() {
        let s = healthy();
        let mut app = App::new(false, Charset::Unicode);
        assert_eq!(app.handle_key(key(KeyCode::Char('q')), &s), Action::Quit);
        app.handle_key(key(KeyCode::Char('/')), &s);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.handle_key(ctrl_c, &s), Action::Quit);
    }

    #[test]
    fn moves_the_selection_and_keeps_it_on_the_same_node() {
        let s = healthy();
        let mut app = App::new(false, Charset::Unicode);
        assert_eq!(selected(&app, &s), "n1");
        press(&mut app, &s, "jj");
        assert_eq!(selected(&app, &s), "n3");
        press(&mut app, &s, "j");
        assert_eq!(selected(&app, &s), "n3", "stops at the end");
        app.handle_key(key(KeyCode::Up), &s);
        assert_eq!(selected(&app, &s), "n2");
        app.handle_key(key(KeyCode::Home), &s);
        assert_eq!(selected(&app, &s), "n1");
        app.handle_key(key(KeyCode::End), &s);
        assert_eq!(selected(&app, &s), "n3");
        // Sorting by cpu puts n3 (busiest) first; the selection follows the node.
        press(&mut app, &s, "sssss");
        assert_eq!(app.sort().column().title, "MEM");
        assert_eq!(app.rows(&s).1, Some(0));
        assert_eq!(selected(&app, &s), "n3");
        press(&mut app, &s, "S");
        assert_eq!(app.sort().column().title, "CPU");
    }

    #[test]
    fn filter_typing_applies_clears_and_filters_live() {
        let s = healthy();
        let mut app = App::new(false, Charset::Unicode);
        press(&mut app, &s, "/n3");
        assert_eq!(app.mode(), &Mode::Filter { input: "n3".into() });
        assert_eq!(app.rows(&s).0.len(), 1, "filters while typing");
        // q and d are text here, not commands.
        assert_eq!(press(&mut app, &s, "qd"), [Action::None, Action::None]);
        app.handle_key(key(KeyCode::Backspace), &s);
        app.handle_key(key(KeyCode::Backspace), &s);
        app.handle_key(key(KeyCode::Enter), &s);
        assert_eq!(app.mode(), &Mode::Normal);
        assert_eq!(app.filter(), "n3");
        assert_eq!(selected(&app, &s), "n3");

        // Reopening starts from the applied filter; Esc clears it.
        press(&mut app, &s, "/");
        assert_eq!(app.filter(), "n3");
        app.handle_key(key(KeyCode::Esc), &s);
        assert_eq!(app.filter(), "");
        assert_eq!(app.rows(&s).0.len(), 3);

        // A filter matching nothing leaves nothing to act on.
        press(&mut app, &s, "/zzz");
        app.handle_key(key(KeyCode::Enter), &s);
        assert_eq!(app.current(&s), None);
        assert_eq!(press(&mut app, &s, "d"), [Action::None]);
        assert!(app.notice(&s).unwrap().contains("no node selected"));
        assert_eq!(app.mode(), &Mode::Normal);
    }

    #[test]
    fn drain_asks_first_and_then_yields_the_command() {
        let mut s = healthy();
        let mut app = App::new(false, Charset::Unicode);
        assert_eq!(press(&mut app, &s, "jd"), [Action::None, Action::None]);
        let Mode::Confirm(c) = app.mode() else {
            panic!("no confirmation: {:?}", app.mode());
        };
        assert_eq!(c.question, "Drain n2?");
        // Other keys leave the question open.
        assert_eq!(press(&mut app, &s, "jx"), [Action::None, Action::None]);
        let drain = CtlCommand::Drain {
            node: Some("n2".into()),
            reason: DRAIN_REASON.into(),
            for_secs: None,
        };
        assert_eq!(press(&mut app, &s, "y"), [Action::Command(drain)]);
        assert_eq!(app.mode(), &Mode::Normal);
        assert_eq!(
            app.notice(&s),
            Some("drain n2: sent, waiting for the agent…")
        );
        let mut ascii = App::new(false, Charset::Ascii);
        press(&mut ascii, &s, "jdy");
        assert_eq!(
            ascii.notice(&s),
            Some("drain n2: sent, waiting for the agent..."),
            "the notice is drawn as it is: ASCII under ASCII"
        );
        // The answer replaces the notice.
        s.on_command_result(Ok("n2 drained".into()));
        assert_eq!(app.notice(&s), None);
    }

    #[test]
    fn cancel_sends_nothing() {
        let s = healthy();
        for cancel in [KeyCode::Esc, KeyCode::Char('n'), KeyCode::Char('q')] {
            let mut app = App::new(false, Charset::Unicode);
            press(&mut app, &s, "jjt");
            assert!(matches!(app.mode(), Mode::Confirm(_)));
            assert_eq!(app.handle_key(key(cancel), &s), Action::None);
            assert_eq!(app.mode(), &Mode::Normal);
            assert_eq!(app.notice(&s), Some("cancelled, nothing sent"));
        }
    }

    #[test]
    fn each_command_after_enter() {
        let s = fixtures::state(fixtures::hung_mount(), vec![]);
        let confirm = |keys: &str| {
            let mut app = App::new(false, Charset::Unicode);
            press(&mut app, &s, keys);
            app.handle_key(key(KeyCode::Enter), &s)
        };
        assert_eq!(
            confirm("ju"),
            Action::Command(CtlCommand::Undrain {
                node: Some("n2".into())
            })
        );
        assert_eq!(
            confirm("jjt"),
            Action::Command(CtlCommand::Transfer { node: "n3".into() })
        );
        assert_eq!(confirm("f"), Action::Command(CtlCommand::Freeze));
        let frozen = fixtures::state(fixtures::drift(), vec![]);
        let mut app = App::new(false, Charset::Unicode);
        press(&mut app, &frozen, "f");
        assert_eq!(
            app.handle_key(key(KeyCode::Char('y')), &frozen),
            Action::Command(CtlCommand::Unfreeze)
        );
    }

    #[test]
    fn pointless_commands_are_explained_not_asked() {
        let s = fixtures::state(fixtures::hung_mount(), vec![]);
        let mut app = App::new(false, Charset::Unicode);
        press(&mut app, &s, "t");
        assert_eq!(app.notice(&s), Some("n1 is already the primary"));
        press(&mut app, &s, "u");
        assert_eq!(app.notice(&s), Some("n1 is not draining"));
        press(&mut app, &s, "jd");
        assert_eq!(
            app.notice(&s),
            Some("n2 is already draining (u undrains it)")
        );
        // Any key clears a notice.
        press(&mut app, &s, "s");
        assert_eq!(app.notice(&s), None);

        let empty = State::new(
            fixtures::t0(),
            super::super::state::ConnStatus::Connecting { to: "x".into() },
        );
        let mut app = App::new(false, Charset::Unicode);
        assert_eq!(press(&mut app, &empty, "dtfjk"), vec![Action::None; 5]);
        assert_eq!(app.mode(), &Mode::Normal);
    }

    #[test]
    fn help_detail_and_focus() {
        let s = healthy();
        let mut app = App::new(false, Charset::Unicode);
        press(&mut app, &s, "?");
        assert_eq!(app.mode(), &Mode::Help);
        press(&mut app, &s, "j");
        assert_eq!(app.mode(), &Mode::Help, "help stays until closed");
        press(&mut app, &s, "?");
        assert_eq!(app.mode(), &Mode::Normal);

        app.handle_key(key(KeyCode::Tab), &s);
        assert_eq!(
            app.focus(),
            Focus::Events,
            "no detail focus while it is closed"
        );
        app.handle_key(key(KeyCode::Tab), &s);
        assert_eq!(app.focus(), Focus::Nodes);
        app.handle_key(key(KeyCode::Enter), &s);
        assert!(app.detail_open());
        app.handle_key(key(KeyCode::Tab), &s);
        assert_eq!(app.focus(), Focus::Detail);
        press(&mut app, &s, "jjj");
        assert_eq!(app.detail_scroll, 3);
        // Scrolling stops where the last draw said the content ends.
        app.detail_max.set(4);
        press(&mut app, &s, "jjj");
        assert_eq!(app.detail_scroll, 4);
        press(&mut app, &s, "k");
        assert_eq!(app.detail_scroll, 3);
        assert_eq!(
            selected(&app, &s),
            "n1",
            "scrolling the detail keeps the node"
        );
        app.handle_key(key(KeyCode::BackTab), &s);
        assert_eq!(app.focus(), Focus::Nodes);
        app.handle_key(key(KeyCode::Tab), &s);
        app.handle_key(key(KeyCode::Esc), &s);
        assert!(!app.detail_open());
        assert_eq!(app.focus(), Focus::Nodes);

        // The event log scrolls back in time and never past its start.
        app.handle_key(key(KeyCode::BackTab), &s);
        assert_eq!(app.focus(), Focus::Events);
        press(&mut app, &s, "kk");
        assert_eq!(app.events_back, 2);
        app.handle_key(key(KeyCode::Home), &s);
        assert_eq!(app.events_back, s.events().len());
        app.handle_key(key(KeyCode::End), &s);
        assert_eq!(app.events_back, 0);
    }

    #[test]
    fn pastes_only_go_into_the_filter() {
        let s = healthy();
        let mut app = App::new(false, Charset::Unicode);
        app.handle_paste("dyq");
        assert_eq!(app.mode(), &Mode::Normal);
        press(&mut app, &s, "/");
        app.handle_paste("n\n2\t");
        assert_eq!(app.filter(), "n2");
    }

    #[test]
    fn key_releases_are_ignored() {
        let s = healthy();
        let mut app = App::new(false, Charset::Unicode);
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(app.handle_key(release, &s), Action::None);
    }
}
