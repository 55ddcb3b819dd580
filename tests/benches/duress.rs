//! The duress scenarios in their long form, on five real agents in network namespaces
//! (`quorate_tests::lab`), one after another, printing the table docs/benchmarks.md
//! shows. Needs root.
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p quorate-tests --bench duress                 # loss for 1 hour
//! QUORATE_DURESS_SECS=600 cargo bench -p quorate-tests --bench duress
//! QUORATE_DURESS_ONLY=pause,starve cargo bench -p quorate-tests --bench duress
//! ```
//!
//! `QUORATE_DURESS_SECS` is the loss scenario's length (default 3600); the others run
//! 30 pauses, a minute of starvation, a rolling restart and a minute of partition.

use std::time::Duration;

use quorate_tests::bench;
use quorate_tests::lab::{self, duress};

fn main() {
    if !bench::is_bench_run() {
        return;
    }
    if let Err(why) = lab::available() {
        println!("skipped: {why}");
        return;
    }
    let secs = std::env::var("QUORATE_DURESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    let only = std::env::var("QUORATE_DURESS_ONLY").unwrap_or_default();
    let forms = duress::Forms::long(Duration::from_secs(secs));
    println!("{}", duress::header());
    let mut failed = 0;
    for name in duress::SCENARIOS {
        if !only.is_empty() && !only.split(',').any(|s| s.trim() == name) {
            continue;
        }
        let o = duress::run(name, 5, &forms);
        println!("{}", duress::row(&o));
        for f in &o.failures {
            println!("  {}: {f}", o.name);
            failed += 1;
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
