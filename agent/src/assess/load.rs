//! The load check: above any `[load]` limit the node is overloaded: unfit for traffic,
//! still eligible (a busy primary is better than an election).

use proto::ctl::EventKind;
use proto::{CheckCode, CheckName, HealthBits};

use super::check::{Cx, Detail, Holds, Judged, Spec};
use super::reason::Reason;
use crate::config::LoadLimits;
use crate::probe::load::LoadSample;

pub const SPEC: Spec = Spec {
    name: CheckName::Load,
    judge,
    bit: HealthBits::OVERLOADED,
    bad: CheckCode::Fail,
    blocks_eligibility: false,
    probe_logs: true,
    event: EventKind::Check,
};

/// Whether any figure of `sample` is above its limit.
pub fn over(sample: &LoadSample, limits: &LoadLimits) -> bool {
    sample.cpu > limits.max_cpu
        || sample.mem > limits.max_mem
        || sample.load1 / sample.cores.max(1) as f64 > limits.max_load_per_core
}

fn judge(cx: &Cx<'_>, _: &mut Detail) -> Judged {
    let overloaded = cx.local.overloaded;
    let (code, reason) = match (&cx.cfg.load, overloaded) {
        (None, _) => (CheckCode::Off, String::new()),
        (Some(_), true) => (CheckCode::Fail, "above its limits".to_owned()),
        (Some(_), false) => (CheckCode::Ok, String::new()),
    };
    Judged {
        code,
        reason,
        // The first sample is part of the first round of checks.
        pending: cx.local.load.is_none(),
        holds: Holds {
            healthy: overloaded,
            reason: overloaded.then_some(Reason::Overloaded),
            bit: overloaded,
            ..Holds::default()
        },
    }
}
