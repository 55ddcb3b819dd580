//! A counting global allocator for tests and fuzz targets: tracks the live, peak and
//! total bytes of the current thread while a closure runs under [`measure`]. Per-thread,
//! so tests running in parallel do not disturb it. Shared by `decode_fuzz.rs` and the
//! fuzz targets (`fuzz/src/lib.rs` includes this file by path), so both measure "a
//! decoded message never takes more than twice its cap" the same way.
//!
//! `unsafe impl GlobalAlloc` is the only unsafe code here; it is test-only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

#[global_allocator]
static ALLOC: Counting = Counting;

thread_local! {
    // `const` thread locals without destructors never allocate and are never torn down,
    // so the allocator may touch them.
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let live = LIVE.get() + size;
            LIVE.set(live);
            PEAK.set(PEAK.get().max(live));
            TOTAL.set(TOTAL.get() + size);
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
// bookkeeping only touches allocation-free thread locals.
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
            // New block counted before the old one is released: a moving realloc has
            // both live for a moment, so this errs on the high side.
            on_alloc(new_size);
            on_dealloc(layout.size());
        }
        p
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AllocStats {
    /// Most bytes live at once (allocated inside the closure, not yet freed).
    pub peak: usize,
    /// All bytes allocated inside the closure.
    pub total: usize,
}

pub fn measure<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    LIVE.set(0);
    PEAK.set(0);
    TOTAL.set(0);
    TRACKING.set(true);
    let r = f();
    TRACKING.set(false);
    (
        r,
        AllocStats {
            peak: PEAK.get(),
            total: TOTAL.get(),
        },
    )
}
