//! Any header value as `X-Haproxy-Server-State`: parsed without a panic; what it keeps is
//! short printable text (it is shown to operators and gossiped), and the kept fields,
//! written back as HAProxy would, parse to the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorate_agent::http::haproxy_agent::parse_server_state;

/// The longest field the parser keeps.
const MAX_FIELD: usize = 64;

fuzz_target!(|data: &[u8]| {
    // hyper hands the parser a header value it could read as a string.
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Some(st) = parse_server_state(header) else {
        return;
    };
    for field in [Some(&st.state), st.balancer.as_ref(), st.weight.as_ref()]
        .into_iter()
        .flatten()
    {
        assert!(!field.is_empty() && field.len() <= MAX_FIELD, "{field:?}");
        assert!(
            field.chars().all(|c| c == ' ' || c.is_ascii_graphic()),
            "{field:?}"
        );
        assert_eq!(field.trim(), field, "kept untrimmed: {field:?}");
        assert!(!field.contains(';'), "{field:?}");
    }
    let word = st.state.split(' ').next().unwrap_or_default();
    assert!(
        word.len() >= 2 && word.bytes().all(|b| b.is_ascii_uppercase()),
        "{st:?}"
    );

    let mut again = st.state.clone();
    if let Some(b) = &st.balancer {
        again.push_str(&format!("; node={b}"));
    }
    if let Some(w) = &st.weight {
        again.push_str(&format!("; weight={w}"));
    }
    assert_eq!(parse_server_state(&again).as_ref(), Some(&st), "{again:?}");
});
