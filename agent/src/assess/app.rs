//! The app check: the probe's verdict after rise/fall, as it came. A failing app makes
//! the node unfit for traffic and ineligible.

use proto::ctl::EventKind;
use proto::{CheckCode, CheckName, HealthBits};

use super::check::{Cx, Detail, FIRST_PROBE_PENDING, Holds, Judged, Spec};
use super::reason::Reason;

pub const SPEC: Spec = Spec {
    name: CheckName::App,
    judge,
    bit: HealthBits::APP_FAIL,
    bad: CheckCode::Fail,
    blocks_eligibility: true,
    probe_logs: true,
    event: EventKind::Check,
};

fn judge(cx: &Cx<'_>, _: &mut Detail) -> Judged {
    let (code, reason, pending) = match (&cx.cfg.app.check, &cx.local.app) {
        (None, _) => (CheckCode::Off, String::new(), false),
        (Some(_), None) => (CheckCode::Off, FIRST_PROBE_PENDING.into(), true),
        (Some(_), Some(r)) => (r.code, r.reason.clone(), false),
    };
    let failing = !code.passing();
    Judged {
        code,
        reason,
        pending,
        holds: Holds {
            healthy: failing,
            eligible: failing,
            reason: failing.then_some(Reason::App),
            bit: failing,
            ..Holds::default()
        },
    }
}
