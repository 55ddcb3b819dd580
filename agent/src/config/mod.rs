//! The agent's configuration file (`/etc/quorate/agent.toml`): its types, defaults and
//! validation.
//!
//! Owns: parsing (serde, unknown keys rejected, durations with units), semantic checks
//! (addresses, the certificate naming this node), and errors that name the file, the line
//! and the reason. It must never listen on a port or start anything: `--check-config`
//! runs it alone, and the agent runs it whole before it binds anything. (The one socket
//! it opens asks the kernel which address reaches the first peer, for a default
//! `advertise`; it sends nothing.)
//!
//! Files, lowest first (each imports only those before it; this file only re-exports):
//! `duration.rs` and `tls.rs` (certificate and key files: loading, names, expiry, key
//! modes), `checks.rs` (the `[app]`, `[[mount]]`, `[[config]]`, `[clock]`, `[[task]]`
//! sections), `model.rs` (the checked [`Config`]), `raw.rs` (the file as serde reads
//! it), `validate.rs` (raw → checked, errors with `file:line: reason`), `defaults.rs`
//! (the commented default file, `--print-default-config`).

mod checks;
pub mod defaults;
mod duration;
mod model;
mod raw;
#[cfg(test)]
pub(crate) mod tests_support;
pub mod tls;
mod validate;

pub use checks::{App, AppCheck, Clock, ConfigSet, HaproxyAgent, Mount, Task};
pub use duration::Dur;
pub use model::{
    Cidr, Config, DEFAULT_CLUSTER, DEFAULT_LOG_LEVEL, Election, Hooks, Http, LoadLimits, Timing,
};
pub use tls::TlsPaths;
pub use validate::ConfigError;
