//! What checking a config asks of the machine it runs on: its hostname, the system
//! resolver, whether an address is one of its own, the route to a peer, the wall clock.
//!
//! Owns the [`Host`] trait and [`System`], the real machine. Validation takes a `&dyn
//! Host` so tests can play another machine (a hostname, names that resolve or not, a
//! date past a certificate's end). Every call may block (the resolver, the kernel's route
//! lookup): config is read before the runtime starts, and a reload reads it off the
//! runtime's threads. It must never send a packet or bind a port it keeps.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _, UdpSocket};

use super::addr::{self, Written};

/// The machine a config is checked on.
pub trait Host {
    /// The hostname (as `hostname` prints it, possibly with dots).
    fn hostname(&self) -> String;
    /// What the system resolver says `name` is (with `port`).
    fn resolve(&self, name: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
    /// Whether `ip` is an address of this machine (a socket can be bound to it).
    fn is_local(&self, ip: IpAddr) -> bool;
    /// The address this machine sends from to reach `peer`.
    fn route_source(&self, peer: SocketAddr) -> Option<IpAddr>;
    /// Seconds since the Unix epoch, for certificate ends.
    fn now_unix(&self) -> i64;
}

/// The real machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Host for System {
    fn hostname(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn resolve(&self, name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        (name, port).to_socket_addrs().map(Iterator::collect)
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        // Binding fails with EADDRNOTAVAIL for an address no interface holds; the socket
        // is closed at once and nothing is sent.
        UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
    }

    fn route_source(&self, peer: SocketAddr) -> Option<IpAddr> {
        // A connected UDP socket makes the kernel look the route up; no packet is sent.
        let any: SocketAddr = if peer.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = UdpSocket::bind(any).ok()?;
        socket.connect(peer).ok()?;
        let source = socket.local_addr().ok()?.ip();
        (!source.is_unspecified()).then_some(source)
    }

    fn now_unix(&self) -> i64 {
        i64::try_from(crate::clock::wall().0 / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// The node id a config without `node` gets: the hostname up to its first dot (the
/// operator tool reads it too, to expand `{node}` in `[tls]` paths).
pub fn hostname_node() -> String {
    let hostname = System.hostname();
    hostname.split('.').next().unwrap_or_default().to_owned()
}

/// An address as an operator writes it (`10.0.0.14:7700`, `[fd00::14]:7700`, `n4:7700`,
/// `n4`: `default_port` when none), as one socket address: a name is resolved now with
/// the system resolver and taken as `peers` takes one (IPv4 first, exactly one). For
/// `quorate member add|replace`: the agreed member set keeps addresses, so a name is
/// taken as the address it has when the command is given. The error names what was
/// written and the fix.
pub fn resolve_address(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    match addr::parse(s, default_port)? {
        Written::Addr(a) => Ok(a),
        Written::Name { host, port } => {
            let addrs = System.resolve(&host, port).map_err(|e| {
                format!(
                    "{s:?} does not resolve: {e}: add {host} to DNS or /etc/hosts, or write \
                     its IP address"
                )
            })?;
            addr::pick(&addrs).map_err(|why| format!("{s:?} {why}"))
        }
    }
}
