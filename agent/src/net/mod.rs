//! QUIC networking: the endpoint, mutual TLS and peer links.
pub mod tls;
