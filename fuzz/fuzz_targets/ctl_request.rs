//! Any bytes as an operator request body (what an agent reads from a `quorate-ctl/1`
//! stream), and the same bytes as an answer (what `quorate` reads): refused or decoded
//! without a panic, within twice their caps in memory, and round-tripping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorate_protocol::ctl::{
    MAX_REQUEST_BYTES, decode_request, decode_response, encode_request, encode_response,
};
use quorate_protocol::{FRAME_HEADER_LEN, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let (request, peak) = quorate_fuzz::peak(|| decode_request(data));
    assert!(
        peak <= 2 * MAX_REQUEST_BYTES,
        "{} bytes took {peak}",
        data.len()
    );
    if let Ok(req) = request {
        let again = encode_request(&req).expect("a decoded request re-encodes");
        assert!(again.len() - FRAME_HEADER_LEN <= data.len());
        assert_eq!(decode_request(&again[FRAME_HEADER_LEN..]), Ok(req));
    }

    let (response, peak) = quorate_fuzz::peak(|| decode_response(data));
    assert!(peak <= 2 * MAX_FRAME, "{} bytes took {peak}", data.len());
    if let Ok(resp) = response {
        let again = encode_response(&resp).expect("a decoded answer re-encodes");
        assert!(again.len() - FRAME_HEADER_LEN <= data.len());
        assert_eq!(decode_response(&again[FRAME_HEADER_LEN..]), Ok(resp));
    }
});
