//! The operator channel, `quorate-ctl/1`: what `quorate` (CLI and TUI) and an agent say
//! to each other on a QUIC connection with that ALPN.
//!
//! Every exchange is one bidirectional stream: the tool writes one [`CtlRequest`] frame
//! and finishes its side; the agent answers with [`CtlResponse`] frames on the same
//! stream, using the same framing as peer streams (`[u32 length][version][postcard]`,
//! at most [`MAX_FRAME`](crate::MAX_FRAME) bytes):
//! - `Subscribe`: one `Snapshot` at once, then a `Snapshot` whenever the view changes,
//!   at most every [`SNAPSHOT_MIN_INTERVAL_MS`], and at least every
//!   [`SNAPSHOT_MAX_INTERVAL_MS`], interleaved with `Event`s as they happen; and a
//!   `KeepAlive` whenever nothing else was sent for [`KEEPALIVE_INTERVAL_MS`], so a
//!   stream silent for [`SILENCE_MS`] means a lost agent, not a quiet one. It ends when
//!   either side closes it.
//! - `Events`: the kept history after `after` (oldest first), then `EventsEnd`; with
//!   `follow`, new events afterwards until the tool closes the stream.
//! - `Command`: exactly one `Done` or `Refused`, then the agent finishes the stream.
//! - `ShouldRun`: exactly one `ShouldRun` answer (or `Refused` for an unknown task), judged
//!   at the moment the agent reads the request, like `GET /task/{name}`.
//!
//! A request that cannot be read (not a frame, another protocol version, more than
//! [`MAX_REQUEST_BYTES`], not a request) is answered with one `Refused` naming what was
//! wrong, and the stream is finished; the connection and the agent carry on.
//!
//! A snapshot carries the `/cluster` JSON document ([`ClusterStatus`](crate::status::ClusterStatus))
//! as text, not postcard: its fields are only ever added, and a JSON reader ignores the
//! ones it does not know, so a tool and an agent of different versions still understand
//! each other's view. The envelope types here change only with the protocol version.

use serde::{Deserialize, Serialize};

use crate::bounded;
use crate::codec::{DecodeError, EncodeError};

// Every string of the operator channel, held to its wire limit (see `crate::limits`);
// a request as a whole is at most `MAX_REQUEST_BYTES`.
bounded::fields! {
    should_run_task: Str("CtlRequest::ShouldRun.task", NAME);
    drain_node: OptStr("CtlCommand::Drain.node", NAME);
    drain_reason: Str("CtlCommand::Drain.reason", OPERATOR_REASON);
    undrain_node: OptStr("CtlCommand::Undrain.node", NAME);
    transfer_node: Str("CtlCommand::Transfer.node", NAME);
    upgrade_node: OptStr("CtlCommand::UpgradeAllow.node", NAME);
    ack_name: Str("CtlCommand::DriftAck.name", NAME);
    ack_reason: Str("CtlCommand::DriftAck.reason", OPERATOR_REASON);
    done_message: Str("CtlResponse::Done.message", CTL_TEXT);
    refused_reason: Str("CtlResponse::Refused.reason", CTL_TEXT);
    should_run_holder: OptStr("CtlResponse::ShouldRun.holder", NAME);
    event_recorded_by: Str("EventRecord.recorded_by", LABEL);
    event_node: OptStr("EventRecord.node", LABEL);
    event_text: Str("EventRecord.text", TEXT);
}

/// The fewest milliseconds between two snapshots on one subscription.
pub const SNAPSHOT_MIN_INTERVAL_MS: u64 = 250;
/// The most milliseconds between two snapshots on one subscription.
pub const SNAPSHOT_MAX_INTERVAL_MS: u64 = 2_000;
/// The most milliseconds a subscription goes without a frame: a `KeepAlive` (a few
/// bytes) fills any longer gap between snapshots and events.
pub const KEEPALIVE_INTERVAL_MS: u64 = 250;
/// A subscription silent this long has lost its agent (killed, cut off, frozen): four
/// keep-alive intervals, so that one late or retransmitted frame on a busy machine is
/// not taken for a loss.
pub const SILENCE_MS: u64 = 4 * KEEPALIVE_INTERVAL_MS;
/// The longest free text accepted in a command (a reason).
pub const MAX_REASON_CHARS: usize = 200;
/// The largest request frame body an agent reads (requests are small; answers may use
/// the whole [`MAX_FRAME`](crate::MAX_FRAME)).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The longest `for_secs` a drain or an acknowledgement may take (a year and a day).
pub const MAX_FOR_SECS: u64 = 366 * 24 * 3600;

/// What a tool asks for: the first and only frame it sends on a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtlRequest {
    /// The live view: snapshots and events.
    Subscribe,
    /// The event history after sequence number `after` (`None`: all that is kept).
    Events { after: Option<u64>, follow: bool },
    /// Change something. Answered by `Done` or `Refused`.
    Command(CtlCommand),
    /// Whether the agent runs singleton task `task` now (`quorate task should-run`).
    ShouldRun {
        #[serde(with = "should_run_task")]
        task: String,
    },
}

/// An operator command. `node: None` means the agent the tool is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtlCommand {
    Drain {
        #[serde(with = "drain_node")]
        node: Option<String>,
        #[serde(with = "drain_reason")]
        reason: String,
        /// Seconds until the drain ends by itself (`None`: until undrained).
        for_secs: Option<u64>,
    },
    Undrain {
        #[serde(with = "undrain_node")]
        node: Option<String>,
    },
    /// Hand the primary role to `node` (a transfer, not a failover).
    Transfer {
        #[serde(with = "transfer_node")]
        node: String,
    },
    /// No elections, no preemption, no transfers until unfrozen (the current primary
    /// stays as long as it holds its lease).
    Freeze,
    Unfreeze,
    /// Open the upgrade gate for `node`'s app version.
    UpgradeAllow {
        #[serde(with = "upgrade_node")]
        node: Option<String>,
    },
    /// Acknowledge the current drift of config set `name`.
    DriftAck {
        #[serde(with = "ack_name")]
        name: String,
        #[serde(with = "ack_reason")]
        reason: String,
        for_secs: u64,
    },
    /// Change the agreed member set (`quorate member add|remove|replace|promote`): made
    /// by the primary, to which the agent asked forwards it; answered with what the
    /// primary did or why it refused.
    Member(crate::MemberChange),
    /// `quorate member force-new-cluster`: the node asked becomes the only voter of a
    /// new member set (refused while any other voter answers). For a majority lost for
    /// good.
    ForceNewCluster,
}

/// What the agent sends back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CtlResponse {
    /// The whole view, as the `/cluster` JSON document.
    Snapshot {
        json: String,
    },
    Event(EventRecord),
    /// The end of the history of an `Events` request (more follow only with `follow`).
    EventsEnd,
    /// The command was carried out (or handed on to the node it is for): what happened.
    Done {
        #[serde(with = "done_message")]
        message: String,
    },
    /// The command was not carried out, and why ("n3 is not eligible: app check
    /// failing").
    Refused {
        #[serde(with = "refused_reason")]
        reason: String,
    },
    /// The answer to `ShouldRun`: whether the agent runs the task now, and the term to
    /// use as a fencing token (`QUORATE_TERM`).
    ShouldRun {
        here: bool,
        term: u64,
        /// Where the agent places the task, if anywhere.
        #[serde(with = "should_run_holder")]
        holder: Option<String>,
    },
    /// Nothing new on a subscription: the agent is there (see
    /// [`KEEPALIVE_INTERVAL_MS`]).
    KeepAlive,
}

/// One thing that happened, as the agent that saw it records it. Its JSON form (serde's,
/// field names as here) is what `quorate events --json` prints, one object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Increasing on the recording agent, across restarts (the journal is persisted).
    pub seq: u64,
    /// Wall clock of the recording agent, microseconds since the Unix epoch.
    pub at_micros: u64,
    /// The node that recorded it.
    #[serde(with = "event_recorded_by")]
    pub recorded_by: String,
    pub kind: EventKind,
    /// The node it is about, if one.
    #[serde(with = "event_node")]
    pub node: Option<String>,
    /// One line for people: "n1 became primary (term 4)".
    #[serde(with = "event_text")]
    pub text: String,
}

/// What kind of thing happened, for filtering and colour. In JSON (`quorate events
/// --json`, the agent's `events.jsonl`) it is [`as_str`](Self::as_str)'s word; on the
/// wire, postcard's variant index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A node joined, restarted, left, or changed alive/suspect/dead.
    Membership,
    /// An election started, a primary was won or lost, a handover.
    Election,
    /// A check changed (app, mounts, clock, version, load, ready, healthy).
    Check,
    /// A config set drifted or agrees again.
    Drift,
    /// An operator command (drain, transfer, freeze, …), with who gave it.
    Operator,
    /// Something that must not happen (two primary claims in one term).
    Alarm,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Membership => "membership",
            Self::Election => "election",
            Self::Check => "check",
            Self::Drift => "drift",
            Self::Operator => "operator",
            Self::Alarm => "alarm",
        }
    }
}

/// Encodes a request as a length-prefixed frame of at most [`MAX_REQUEST_BYTES`].
pub fn encode_request(msg: &CtlRequest) -> Result<Vec<u8>, EncodeError> {
    crate::codec::encode_framed(msg, MAX_REQUEST_BYTES)
}

/// Decodes a request frame body (after the length prefix) of at most
/// [`MAX_REQUEST_BYTES`].
pub fn decode_request(body: &[u8]) -> Result<CtlRequest, DecodeError> {
    crate::codec::decode_framed(body, MAX_REQUEST_BYTES)
}

/// Encodes a response as a length-prefixed frame.
pub fn encode_response(msg: &CtlResponse) -> Result<Vec<u8>, EncodeError> {
    crate::codec::encode_framed(msg, crate::MAX_FRAME)
}

/// Decodes a response frame body (after the length prefix).
pub fn decode_response(body: &[u8]) -> Result<CtlResponse, DecodeError> {
    crate::codec::decode_framed(body, crate::MAX_FRAME)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::codec::{FRAME_HEADER_LEN, frame_body_len};

    fn round_trip_request(r: CtlRequest) {
        let bytes = encode_request(&r).unwrap();
        let len = frame_body_len(bytes[..FRAME_HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(len, bytes.len() - FRAME_HEADER_LEN);
        assert_eq!(decode_request(&bytes[FRAME_HEADER_LEN..]).unwrap(), r);
    }

    #[test]
    fn requests_round_trip() {
        round_trip_request(CtlRequest::Subscribe);
        round_trip_request(CtlRequest::Events {
            after: Some(41),
            follow: true,
        });
        round_trip_request(CtlRequest::Command(CtlCommand::Drain {
            node: Some("n3".into()),
            reason: "kernel update".into(),
            for_secs: Some(3600),
        }));
        round_trip_request(CtlRequest::Command(CtlCommand::Transfer {
            node: "n2".into(),
        }));
        round_trip_request(CtlRequest::ShouldRun {
            task: "nightly".into(),
        });
    }

    #[test]
    fn event_json_is_stable() {
        let r = EventRecord {
            seq: 3,
            at_micros: 5,
            recorded_by: "n1".into(),
            kind: EventKind::Alarm,
            node: None,
            text: "x".into(),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"seq":3,"at_micros":5,"recorded_by":"n1","kind":"alarm","node":null,"text":"x"}"#
        );
        assert_eq!(serde_json::from_str::<EventRecord>(&json).unwrap(), r);
        for k in [
            EventKind::Membership,
            EventKind::Election,
            EventKind::Check,
            EventKind::Drift,
            EventKind::Operator,
            EventKind::Alarm,
        ] {
            let word = serde_json::to_string(&k).unwrap();
            assert_eq!(word, format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            CtlResponse::Snapshot {
                json: "{\"cluster\":\"x\"}".into(),
            },
            CtlResponse::Event(EventRecord {
                seq: 7,
                at_micros: 1_795_000_000_000_000,
                recorded_by: "n1".into(),
                kind: EventKind::Election,
                node: Some("n2".into()),
                text: "n2 became primary (term 4)".into(),
            }),
            CtlResponse::EventsEnd,
            CtlResponse::Done {
                message: "n3 drained".into(),
            },
            CtlResponse::Refused {
                reason: "n3 is not eligible: app check failing".into(),
            },
            CtlResponse::ShouldRun {
                here: true,
                term: 9,
                holder: Some("n2".into()),
            },
            CtlResponse::KeepAlive,
        ] {
            let bytes = encode_response(&r).unwrap();
            assert_eq!(decode_response(&bytes[FRAME_HEADER_LEN..]).unwrap(), r);
        }
    }

    /// An idle subscription costs a keep-alive four times a second: it must stay tiny.
    #[test]
    fn a_keep_alive_is_a_few_bytes() {
        let bytes = encode_response(&CtlResponse::KeepAlive).unwrap();
        assert_eq!(bytes.len(), FRAME_HEADER_LEN + 2, "{bytes:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[1],
            &[1, 200, 200, 200],
            &[9, 0],
            &[1, 0, 0, 0, 0, 0],
        ] {
            assert!(decode_request(bytes).is_err());
            assert!(decode_response(bytes).is_err());
        }
    }
}
