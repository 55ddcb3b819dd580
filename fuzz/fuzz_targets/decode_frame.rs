//! Any bytes as a peer frame body (after the length prefix): refused or decoded without a
//! panic, in at most twice the frame cap of memory; whatever decodes re-encodes (so it is
//! within every wire limit, which the encoder checks too) to a frame that decodes to the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorate_protocol::{FRAME_HEADER_LEN, MAX_FRAME, decode_frame_body, encode_frame};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = quorate_fuzz::peak(|| decode_frame_body(data));
    assert!(
        peak <= 2 * MAX_FRAME,
        "{} input bytes took {peak} bytes",
        data.len()
    );
    if let Ok(msg) = decoded {
        let again = encode_frame(&msg).expect("a decoded frame re-encodes");
        let body = &again[FRAME_HEADER_LEN..];
        assert!(
            body.len() <= data.len(),
            "the canonical form is never longer"
        );
        assert_eq!(decode_frame_body(body), Ok(msg));
    }
});
