//! Any bytes as a peer datagram: refused or decoded without a panic, in at most twice the
//! datagram cap of memory; whatever decodes is a message the encoder writes again (no
//! longer than it came) and that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorate_protocol::{MAX_DATAGRAM, decode_datagram, encode_datagram};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = quorate_fuzz::peak(|| decode_datagram(data));
    assert!(
        peak <= 2 * MAX_DATAGRAM,
        "{} input bytes took {peak} bytes",
        data.len()
    );
    if let Ok(msg) = decoded {
        let again = encode_datagram(&msg).expect("a decoded datagram re-encodes");
        assert!(
            again.len() <= data.len(),
            "the canonical form is never longer"
        );
        assert_eq!(decode_datagram(&again), Ok(msg));
    }
});
