//! What the fuzz targets share: a counting global allocator, so a target can assert how
//! much memory a decoder took for one input (the same bound `protocol/tests/decode_fuzz.rs`
//! measures: a decoded message never takes more than twice its cap).
//!
//! The allocator is the only unsafe code here; it forwards every call to the system
//! allocator unchanged and keeps its books in allocation-free thread locals.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

#[global_allocator]
static ALLOC: Counting = Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let live = LIVE.get() + size;
            LIVE.set(live);
            PEAK.set(PEAK.get().max(live));
        }
    });
}

fn on_dealloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            LIVE.set(LIVE.get().saturating_sub(size));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping touches only `const` thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        on_dealloc(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Both blocks counted for a moment: errs on the high side, as a moving
            // realloc does hold both.
            on_alloc(new_size);
            on_dealloc(layout.size());
        }
        p
    }
}

/// Runs `f` and returns its result with the most bytes it held allocated at once.
pub fn peak<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LIVE.set(0);
    PEAK.set(0);
    TRACKING.set(true);
    let r = f();
    TRACKING.set(false);
    (r, PEAK.get())
}
