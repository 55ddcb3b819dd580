//! The certs check: how long this node's own certificate has left. Within
//! [`WARN_BEFORE`] of its end it is `warn`, past its end `fail`; either way the node
//! carries the `certs` reason. It is a warning for operators (`quorate ca renew`), never
//! a health failure: it holds back neither `/ready`, `/health` nor eligibility. An
//! expired certificate cannot connect to peers anyway, and a node that stopped taking
//! traffic over a date would turn a renewal chore into an outage.
//!
//! Judges the expiry the driver read from the certificate it runs with
//! ([`LocalState::cert_expires`](super::LocalState)); reads no file and no clock.

use std::time::Duration;

use proto::ctl::EventKind;
use proto::{CheckCode, CheckName, WallMicros};

use super::check::{Cx, Detail, Holds, Judged, Spec};
use super::reason::Reason;
use super::state::rfc3339;

/// How long before its end a certificate is reported: time to renew it at a calm
/// moment, in a month of ordinary working days.
pub const WARN_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

pub const SPEC: Spec = Spec {
    name: CheckName::Certs,
    judge,
    // A warning has no heartbeat bit: peers see it once they fetch the node's state.
    bit: 0,
    bad: CheckCode::Warn,
    blocks_eligibility: false,
    probe_logs: false,
    event: EventKind::Check,
};

fn judge(cx: &Cx<'_>, _: &mut Detail) -> Judged {
    let (code, reason) = judge_expiry(cx.local.cert_expires, cx.wall);
    let warned = code != CheckCode::Ok;
    Judged {
        code,
        reason,
        pending: false,
        holds: Holds {
            reason: warned.then_some(Reason::Certs),
            ..Holds::default()
        },
    }
}

/// The code and reason for a certificate ending at `expires` (`None`: its end could not
/// be read), judged at `wall`.
pub fn judge_expiry(expires: Option<WallMicros>, wall: WallMicros) -> (CheckCode, String) {
    let Some(end) = expires else {
        return (
            CheckCode::Warn,
            "cannot read the end of this node's certificate (notAfter)".to_owned(),
        );
    };
    if end <= wall {
        return (
            CheckCode::Fail,
            format!(
                "certificate expired at {}: peers refuse it; renew it with `quorate ca renew`",
                rfc3339(end)
            ),
        );
    }
    let left = Duration::from_micros(end.0 - wall.0);
    if left <= WARN_BEFORE {
        let days = left.as_secs() / 86_400;
        return (
            CheckCode::Warn,
            format!(
                "certificate expires at {} (in {days} days): renew it with `quorate ca renew`",
                rfc3339(end)
            ),
        );
    }
    (CheckCode::Ok, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400 * 1_000_000;

    #[test]
    fn warns_thirty_days_ahead_and_fails_once_expired() {
        let now = WallMicros(1_800_000_000_000_000);
        let at = |days: i64, extra: i64| -> Option<WallMicros> {
            let us = now.0 as i64 + days * DAY as i64 + extra;
            Some(WallMicros(us as u64))
        };
        // (expiry, code)
        let table = [
            (at(365, 0), CheckCode::Ok),
            (at(30, 1), CheckCode::Ok),
            (at(30, 0), CheckCode::Warn),
            (at(29, 0), CheckCode::Warn),
            (at(0, 1), CheckCode::Warn),
            (at(0, 0), CheckCode::Fail),
            (at(-10, 0), CheckCode::Fail),
            (None, CheckCode::Warn),
        ];
        for (expires, want) in table {
            let (code, reason) = judge_expiry(expires, now);
            assert_eq!(code, want, "{expires:?}");
            assert_eq!(reason.is_empty(), want == CheckCode::Ok, "{reason}");
        }
        let (_, reason) = judge_expiry(at(12, 3600 * 1_000_000), now);
        assert!(reason.contains("in 12 days"), "{reason}");
        assert!(reason.contains("quorate ca renew"), "{reason}");
        let (_, reason) = judge_expiry(at(-1, 0), now);
        assert!(
            reason.starts_with("certificate expired at 2027-"),
            "{reason}"
        );
    }
}
