//! What the fuzz targets share: the counting global allocator of the protocol's tests
//! (`protocol/tests/support/counting.rs`, included by path), so a target can assert how
//! much memory a decoder took for one input: the bound `protocol/tests/decode_fuzz.rs`
//! measures, a decoded message never takes more than twice its cap.

#[path = "../../protocol/tests/support/counting.rs"]
mod counting;

pub use counting::{AllocStats, measure};

/// Runs `f` and returns its result with the most bytes it held allocated at once.
pub fn peak<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (r, stats) = measure(f);
    (r, stats.peak)
}
