//! quorate-agent as a library: the binary and the tests both run it.
pub mod ca;
