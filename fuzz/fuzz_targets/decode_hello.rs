//! The bytes after `[version][Frame::Hello]`: what an unauthenticated-yet peer controls in
//! the first frame of a connection. Decoded without a panic; a hello that decodes fits the
//! hello cap (about 1 KiB) whatever its fields hold, and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorate_protocol::{
    FRAME_HEADER_LEN, Frame, PROTOCOL_VERSION, decode_frame_body, encode_frame,
};

/// The hello cap the agent reads a first frame under.
const HELLO_CAP: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let mut body = Vec::with_capacity(data.len() + 2);
    body.extend([PROTOCOL_VERSION, 0]); // Frame::Hello is variant 0
    body.extend_from_slice(data);
    let (decoded, peak) = quorate_fuzz::peak(|| decode_frame_body(&body));
    assert!(
        peak <= 2 * body.len().max(HELLO_CAP),
        "{} bytes took {peak}",
        body.len()
    );
    match decoded {
        Ok(Frame::Hello(hello)) => {
            let again = encode_frame(&Frame::Hello(hello.clone())).expect("re-encodes");
            let again = &again[FRAME_HEADER_LEN..];
            assert!(
                again.len() <= HELLO_CAP,
                "a valid hello of {} bytes",
                again.len()
            );
            assert_eq!(decode_frame_body(again), Ok(Frame::Hello(hello)));
        }
        Ok(other) => panic!("[version][0] decoded to {other:?}"),
        Err(_) => {}
    }
});
