//! `quorate events [--follow] [--json]`: the agent's event journal over the operator
//! channel — the history it keeps (across restarts), then with `--follow` what happens
//! next. Human output is one aligned line per event; `--json` one `EventRecord` object
//! per line (stable field names, see `proto::ctl::EventRecord`).

use proto::WallMicros;
use proto::ctl::EventRecord;
use quorate_agent::ctl::client::EventItem;

use super::status::out;
use super::{EventsArgs, Global};
use crate::target;

pub fn run(global: &Global, args: &EventsArgs) -> anyhow::Result<()> {
    let client = target::connect(global)?;
    let events = client.events(None, args.follow)?;
    if !args.json {
        out(&format!("{}\n", header()))?;
    }
    for item in events {
        match item? {
            EventItem::Event(r) => {
                let line = if args.json {
                    serde_json::to_string(&r)?
                } else {
                    line(&r)
                };
                out(&format!("{line}\n"))?;
            }
            EventItem::End if !args.follow => break,
            EventItem::End => {}
        }
    }
    Ok(())
}

fn header() -> String {
    format!(
        "{:>6}  {:<20}  {:<8}  {:<10}  TEXT",
        "SEQ", "TIME (UTC)", "BY", "KIND"
    )
}

/// One event as a line: sequence, time, recording node, kind, text.
pub fn line(r: &EventRecord) -> String {
    let text: String = r
        .text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "{:>6}  {:<20}  {:<8}  {:<10}  {}",
        r.seq,
        quorate_agent::assess::rfc3339(WallMicros(r.at_micros)),
        r.recorded_by,
        r.kind.as_str(),
        text
    )
    .trim_end()
    .to_owned()
}

#[cfg(test)]
mod tests {
    use proto::ctl::EventKind;

    use super::*;

    #[test]
    fn lines_align_under_the_header() {
        let r = EventRecord {
            seq: 42,
            at_micros: 1_795_000_000_000_000,
            recorded_by: "n1".into(),
            kind: EventKind::Election,
            node: Some("n2".into()),
            text: "n2 is primary (term 4)\nx".into(),
        };
        let l = line(&r);
        assert_eq!(
            l,
            "    42  2026-11-18T11:06:40Z  n1        election    n2 is primary (term 4) x"
        );
        assert_eq!(header().find("TEXT"), l.find("n2 is"));
    }
}
