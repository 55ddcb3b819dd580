//! The duress scenarios in their short form (CI), one after another, on five real agents
//! in network namespaces (`quorate_tests::lab`):
//!
//! - 5 % loss on every link with 20 ± 20 ms delay for 2 minutes: no term change, no
//!   change of primary, no `dead` mark;
//! - the primary SIGSTOPped for 200 ms every 10 s (4 times): no failover;
//! - the primary held to 5 % of a core for 20 s: never two primaries (it may lose the
//!   role), and the cluster recovers by itself once it has its CPU back;
//! - a rolling restart (SIGTERM, start, converge) of every node in turn: never two
//!   primaries, a primary again after each step (the handover gaps are printed);
//! - two non-primary nodes cut off for 10 s, then healed: the primary answers 200 all
//!   along in the same term, and the majority's term never moves.
//!
//! Every scenario also checks that no two nodes ever answer `/primary` 200 at once. The
//! table of what each measured is printed (`cargo test … -- --nocapture`). The long forms
//! are `tests/benches/duress.rs`. `QUORATE_DURESS_ONLY=loss,pause` runs a subset.
//!
//! The lab needs root (namespaces, nftables, cgroups): without it the test says so and
//! passes.

use quorate_tests::lab::{self, duress};

#[test]
fn duress_scenarios_short_forms() {
    if let Err(why) = lab::available() {
        eprintln!("skipped: {why}");
        return;
    }
    let only = std::env::var("QUORATE_DURESS_ONLY").unwrap_or_default();
    let forms = duress::Forms::short();
    let mut outcomes = Vec::new();
    for name in duress::SCENARIOS {
        if !only.is_empty() && !only.split(',').any(|s| s.trim() == name) {
            continue;
        }
        let o = duress::run(name, 5, &forms);
        eprintln!("{}", duress::row(&o));
        outcomes.push(o);
    }
    let mut table = duress::header();
    for o in &outcomes {
        table.push('\n');
        table.push_str(&duress::row(o));
    }
    println!("{table}");
    let failures: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.failures.iter().map(move |f| format!("{}: {f}", o.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{table}\n\nfailures:\n{}",
        failures.join("\n")
    );
}
