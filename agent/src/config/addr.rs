//! Addresses as a config file writes them (`peers`, `advertise`): an IP address with a
//! port (`10.0.0.12:7700`, `[fd00::12]:7700`), an IP address alone, or a host name with
//! or without a port (`nas-b:7700`, `nas-b`), and the rule that picks one address from
//! what a name resolves to.
//!
//! Owns the syntax and the pick rule, both pure: it must never resolve a name itself
//! (that is `host.rs`, so tests can play any resolver) nor decide what an address means
//! to the node (`validate.rs`).

use std::net::{IpAddr, SocketAddr};

/// An address as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// An IP address (with the default port when none was written).
    Addr(SocketAddr),
    /// A host name to resolve, and the port.
    Name { host: String, port: u16 },
}

/// Reads `s` as an address; `default_port` when it names none. The error is the reason
/// alone (the caller names the key and the line).
pub fn parse(s: &str, default_port: u16) -> Result<Written, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("an empty address".into());
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(Written::Addr(a));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Written::Addr(SocketAddr::new(ip, default_port)));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<IpAddr>()
            .map(|ip| Written::Addr(SocketAddr::new(ip, default_port)))
            .map_err(|_| format!("{s:?}: {inner:?} in brackets is not an IPv6 address"));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{s:?}: the port {port:?} is not a number from 1 to 65535"))?;
            (host, port)
        }
        None => (s, default_port),
    };
    if host.contains(':') {
        return Err(format!(
            "{s:?} is not an address: write an IPv6 address in brackets, like [fd00::12]:7700"
        ));
    }
    if !is_host_name(host) {
        return Err(format!(
            "{s:?} is not an address or a host name (like 10.0.0.12:7700 or nas-b:7700)"
        ));
    }
    Ok(Written::Name {
        host: host.to_owned(),
        port,
    })
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1–63 characters, at most 253
/// in all: what a resolver can be asked for.
fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The one address taken from what `name` resolved to: its IPv4 address if it has
/// exactly one, else its IPv6 address if it has exactly one. Every node must derive the
/// same address for a name (the voters' lists are compared), and resolvers order several
/// addresses differently on different machines, so several of one family are refused
/// rather than guessed.
pub fn pick(addrs: &[SocketAddr]) -> Result<SocketAddr, String> {
    let mut v4: Vec<SocketAddr> = addrs.iter().copied().filter(|a| a.is_ipv4()).collect();
    let mut v6: Vec<SocketAddr> = addrs.iter().copied().filter(|a| a.is_ipv6()).collect();
    for family in [&mut v4, &mut v6] {
        family.sort();
        family.dedup();
    }
    let family = if v4.is_empty() { v6 } else { v4 };
    match family.as_slice() {
        [] => Err("resolves to no address".into()),
        [one] => Ok(*one),
        several => {
            let list: Vec<String> = several.iter().map(|a| a.ip().to_string()).collect();
            Err(format!(
                "resolves to several addresses ({}); every node must reach it at one: write \
                 that address, or give the name one address in DNS or /etc/hosts",
                list.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_as_written() {
        let name = |h: &str, port| Written::Name {
            host: h.into(),
            port,
        };
        let addr = |s: &str| Written::Addr(s.parse().unwrap());
        let cases: &[(&str, Written)] = &[
            ("10.0.0.12:7800", addr("10.0.0.12:7800")),
            ("10.0.0.12", addr("10.0.0.12:7700")),
            ("[fd00::12]:7800", addr("[fd00::12]:7800")),
            ("fd00::12", addr("[fd00::12]:7700")),
            ("[fd00::12]", addr("[fd00::12]:7700")),
            ("nas-b:7800", name("nas-b", 7800)),
            ("nas-b", name("nas-b", 7700)),
            (" n2.dam.example ", name("n2.dam.example", 7700)),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s, 7700).as_ref(), Ok(want), "{s}");
        }
        for bad in [
            "",
            "nas-b:port",
            "nas-b:70000",
            "nas b",
            "-nas",
            "a..b",
            "{node}:7700",
            "fd00::12:7700:x",
            "[nas]:1",
        ] {
            assert!(parse(bad, 7700).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_address_per_name_ipv4_first() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            pick(&[a("[fd00::2]:7700"), a("10.0.0.2:7700")]),
            Ok(a("10.0.0.2:7700"))
        );
        assert_eq!(
            pick(&[a("[fd00::2]:7700"), a("[fd00::2]:7700")]),
            Ok(a("[fd00::2]:7700"))
        );
        let e = pick(&[a("10.0.0.2:7700"), a("10.1.0.2:7700"), a("[fd00::2]:7700")]).unwrap_err();
        assert!(e.contains("10.0.0.2, 10.1.0.2"), "{e}");
        assert!(pick(&[]).is_err());
    }
}
