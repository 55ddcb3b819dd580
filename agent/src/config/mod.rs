//! The agent's configuration file (`/etc/quorate/agent.toml`): its types, defaults and
//! validation.
//!
//! Owns: parsing (serde, unknown keys rejected, durations with units), semantic checks
//! (addresses and host names, the certificate naming this node and its end, what the
//! machine must provide), and errors that name the file, the line and the reason — every
//! error of a file, not only the first. It must never listen on a port or start
//! anything: `--check-config` runs it alone, and the agent runs it whole before it binds
//! anything. (The sockets it opens ask the kernel which address reaches a peer and
//! whether an address is this machine's, for a default `advertise`; they send nothing.
//! Host names are resolved here, with the system resolver, which may block: the agent
//! reads its config before its runtime starts, and reloads off the runtime's threads.)
//!
//! Files, lowest first (this file only re-exports): `duration.rs`, `addr.rs` (addresses
//! as written, one address per name), `host.rs` (the machine: hostname, resolver, local
//! addresses, clock), `tls.rs` (certificate and key files: loading, names, expiry, key
//! modes), `preflight.rs` (`state_dir`, hooks, certificate ends), `checks.rs` (the
//! `[app]`, `[[mount]]`, `[[config]]`, `[clock]`, `[[task]]` sections), `model.rs` (the
//! checked [`Config`]), `raw.rs` (the file as serde reads it), `report.rs` (what a check
//! found: errors with `file:line: reason`, warnings, notes), `validate.rs` (raw →
//! checked), `defaults.rs` (the commented default file,
//! `--print-default-config`).

mod addr;
mod checks;
pub mod defaults;
mod duration;
mod host;
mod model;
mod preflight;
mod raw;
mod report;
#[cfg(test)]
pub(crate) mod tests_support;
pub mod tls;
mod validate;

pub use checks::{App, AppCheck, Clock, ConfigSet, HaproxyAgent, Mount, Task};
pub use duration::Dur;
pub use host::{hostname_node, resolve_address};
pub use model::{
    Cidr, Config, DEFAULT_CLUSTER, DEFAULT_LOG_LEVEL, Election, Hooks, Http, LoadLimits, Timing,
};
pub use report::{Checked, ConfigError, ConfigErrors, ConfigWarning};
pub use tls::TlsPaths;
