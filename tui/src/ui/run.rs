//! The event loop of `quorate` with a terminal: keys and connection messages in,
//! [`State`] and [`App`] updated, the screen redrawn.
//!
//! Owns the main thread while the UI runs. Must never block on the network (that is
//! [`Conn`]'s thread) or hold state the view needs (that is [`State`]).

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use quorate_agent::clock;

use super::app::{Action, App};
use super::conn::{Conn, ConnMsg};
use super::state::{ConnStatus, State};
use super::{term, view};
use crate::target::Target;

/// How long to wait for a key before looking at the connection again: the screen's
/// ages and the reconnect countdown move at this pace.
const TICK: Duration = Duration::from_millis(100);

/// Runs the UI against `target` until the operator quits.
pub fn run(target: &Target) -> anyhow::Result<()> {
    let (to_ui, from_conn) = std_mpsc::channel();
    let conn = Conn::start(target.addr, target.bind, target.tls.clone(), to_ui)?;
    let (mut terminal, _guard) = term::init()?;
    let mut state = State::new(
        clock::now(),
        ConnStatus::Connecting {
            to: target.addr.to_string(),
        },
    );
    let mut app = App::new(term::colors_enabled(), term::charset());
    loop {
        let now = clock::now();
        while let Ok(msg) = from_conn.try_recv() {
            match msg {
                ConnMsg::Status(s) => state.on_connection(s),
                ConnMsg::Snapshot(s) => state.on_snapshot(now, *s),
                ConnMsg::Event(e) => state.on_event(e),
                ConnMsg::CommandResult(r) => state.on_command_result(r),
            }
        }
        state.tick(now);
        terminal.draw(|frame| view::draw(frame, &state, &app))?;
        if !event::poll(TICK)? {
            continue;
        }
        let action = match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => app.handle_key(key, &state),
            Event::Paste(text) => {
                app.handle_paste(&text);
                Action::None
            }
            _ => Action::None,
        };
        match action {
            Action::None => {}
            Action::Quit => return Ok(()),
            Action::Command(command) => conn.send(command),
        }
    }
}
