//! Mount namespaces, so that agents on one machine see different directories at the same
//! path, as on separate machines (config drift, shared-storage checks). Needs root.

use std::path::Path;

/// Runs each agent in a mount namespace of its own, with `src` bind-mounted at `dst`.
pub fn bind_wrapper(src: &Path, dst: &Path) -> Vec<String> {
    vec![
        "unshare".into(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "mount --bind '{}' '{}' && exec \"$@\"",
            src.display(),
            dst.display()
        ),
        "sh".into(),
    ]
}

/// Whether this process may make mount namespaces (root, and a kernel that allows it).
pub fn can_unshare() -> bool {
    std::process::Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success())
}
