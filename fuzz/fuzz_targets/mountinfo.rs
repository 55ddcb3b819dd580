//! Any text as /proc/self/mountinfo: parsed without a panic, garbage lines skipped; every
//! entry kept has an absolute mount point and a file system type, and `mount_for` finds
//! an entry that holds the path it is asked about.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use quorate_agent::probe::mounts::{mount_for, parse_mountinfo};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let entries = parse_mountinfo(text);
    assert!(entries.len() <= text.lines().count());
    for e in &entries {
        assert!(e.mount_point.is_absolute(), "{e:?}");
        assert!(!e.fstype.is_empty(), "{e:?}");
    }
    for path in ["/", "/mnt/nfs/repository/assets", "/srv/data"] {
        if let Some(e) = mount_for(&entries, Path::new(path)) {
            assert!(Path::new(path).starts_with(&e.mount_point), "{path}: {e:?}");
        }
    }
});
