//! Property tests for the decoders: any byte string is rejected or accepted without a
//! panic, the caps are checked before the payload is looked at, and decoding a small
//! message never allocates far past the frame cap, whatever its length prefixes claim.
//!
//! The allocation checks use a counting global allocator, which needs `unsafe impl
//! GlobalAlloc`; that is the only unsafe code in the workspace, and it is test-only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use quorate_protocol::{
    ClusterName, ConfigStamp, Datagram, DecodeError, Echo, FRAME_HEADER_LEN, Frame, FreezeFlag,
    Goodbye, HealthBits, Heartbeat, Hello, Incarnation, LoadFigures, MAX_DATAGRAM, MAX_FRAME,
    MemberSlot, Membership, Mode, NodeId, NodeState, PROTOCOL_VERSION, Seq, StateDigest, TaskGrant,
    TaskTag, Term, TimeoutNow, TransferRequest, VoteReply, VoteRequest, WallMicros,
    decode_datagram, decode_frame_body, encode_datagram, encode_frame, frame_body_len,
};

// ---------------------------------------------------------------------------------------
// Counting allocator: tracks live and peak bytes of the current thread while a closure
// runs under `measure`. Per-thread, so tests running in parallel do not disturb it.

struct Counting;

#[global_allocator]
static ALLOC: Counting = Counting;

thread_local! {
    // `const` thread locals without destructors never allocate and are never torn down,
    // so the allocator may touch them.
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let live = LIVE.get() + size;
            LIVE.set(live);
            PEAK.set(PEAK.get().max(live));
            TOTAL.set(TOTAL.get() + size);
        }
    });
}

fn on_dealloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            LIVE.set(LIVE.get().saturating_sub(size));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping only touches allocation-free thread locals.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        on_dealloc(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // New block counted before the old one is released: a moving realloc has
            // both live for a moment, so this errs on the high side.
            on_alloc(new_size);
            on_dealloc(layout.size());
        }
        p
    }
}

#[derive(Debug, Clone, Copy)]
struct AllocStats {
    /// Most bytes live at once (allocated inside the closure, not yet freed).
    peak: usize,
    /// All bytes allocated inside the closure.
    total: usize,
}

fn measure<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    LIVE.set(0);
    PEAK.set(0);
    TOTAL.set(0);
    TRACKING.set(true);
    let r = f();
    TRACKING.set(false);
    (
        r,
        AllocStats {
            peak: PEAK.get(),
            total: TOTAL.get(),
        },
    )
}

// ---------------------------------------------------------------------------------------
// Strategies for valid messages.

fn node_id() -> impl Strategy<Value = NodeId> {
    "[a-zA-Z0-9][a-zA-Z0-9-]{0,62}".prop_map(|s| NodeId::new(s).expect("regex yields valid ids"))
}

fn cluster_name() -> impl Strategy<Value = ClusterName> {
    "[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}"
        .prop_map(|s| ClusterName::new(s).expect("regex yields valid names"))
}

fn wall() -> impl Strategy<Value = WallMicros> {
    any::<u64>().prop_map(WallMicros)
}

fn echo() -> impl Strategy<Value = Echo> {
    (wall(), wall(), any::<u32>()).prop_map(|(peer_sent, received, held_us)| Echo {
        peer_sent,
        received,
        held_us,
    })
}

fn load() -> impl Strategy<Value = LoadFigures> {
    (any::<u16>(), any::<u16>(), any::<u32>()).prop_map(|(cpu, mem, load1)| LoadFigures {
        cpu_permille: cpu,
        mem_permille: mem,
        load1_centi: load1,
    })
}

fn seq() -> impl Strategy<Value = Seq> {
    any::<u64>().prop_map(Seq)
}

fn term() -> impl Strategy<Value = Term> {
    any::<u64>().prop_map(Term)
}

fn freeze() -> impl Strategy<Value = FreezeFlag> {
    (any::<bool>(), any::<u64>()).prop_map(|(frozen, version)| FreezeFlag { frozen, version })
}

fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (
        (node_id(), any::<u64>(), seq(), wall(), any::<u16>()),
        (
            proptest::option::of(echo()),
            term(),
            proptest::option::of(task_grant()),
        ),
        (
            proptest::option::of(node_id()),
            proptest::option::of(seq()),
            freeze(),
        ),
        (
            any::<u32>(),
            load(),
            any::<u64>(),
            (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>()),
        ),
    )
        .prop_map(
            |(
                (node, incarnation, seq, sent, interval_ms),
                (echo, term, tasks),
                (primary, lease_ack, freeze),
                (health, load, digest, (lease_ms, promise_ms, config_term, config_index)),
            )| Heartbeat {
                node,
                incarnation: Incarnation(incarnation),
                seq,
                sent,
                interval_ms,
                echo,
                term,
                primary,
                lease_ack,
                lease_ms,
                promise_ms,
                freeze,
                health: HealthBits(health),
                load,
                digest: StateDigest(digest),
                config: ConfigStamp {
                    term: Term(config_term),
                    index: config_index,
                },
                tasks,
            },
        )
}

fn task_grant() -> impl Strategy<Value = TaskGrant> {
    (any::<u32>(), vec(any::<u32>().prop_map(TaskTag), 0..8))
        .prop_map(|(promise_ms, tasks)| TaskGrant { promise_ms, tasks })
}

fn goodbye() -> impl Strategy<Value = Goodbye> {
    (node_id(), any::<u64>()).prop_map(|(node, inc)| Goodbye {
        node,
        incarnation: Incarnation(inc),
    })
}

fn vote_request() -> impl Strategy<Value = VoteRequest> {
    (
        term(),
        node_id(),
        proptest::option::of(node_id()),
        seq(),
        any::<u32>(),
        (term(), any::<u64>()),
    )
        .prop_map(
            |(term, candidate, transfer_from, req, lease_ms, (config_term, index))| VoteRequest {
                term,
                candidate,
                transfer_from,
                req,
                lease_ms,
                config: ConfigStamp {
                    term: config_term,
                    index,
                },
            },
        )
}

fn vote_reply() -> impl Strategy<Value = VoteReply> {
    (term(), node_id(), any::<bool>(), seq(), any::<u32>()).prop_map(
        |(term, voter, granted, req, promise_ms)| VoteReply {
            term,
            voter,
            granted,
            req,
            promise_ms,
        },
    )
}

fn timeout_now() -> impl Strategy<Value = TimeoutNow> {
    (term(), node_id()).prop_map(|(term, from)| TimeoutNow { term, from })
}

fn transfer_request() -> impl Strategy<Value = TransferRequest> {
    proptest::option::of(node_id()).prop_map(|to| TransferRequest { to })
}

/// The election datagrams: every variant after `Goodbye`.
fn election_datagram() -> impl Strategy<Value = Datagram> {
    prop_oneof![
        vote_request().prop_map(Datagram::PreVote),
        vote_reply().prop_map(Datagram::PreVoteReply),
        vote_request().prop_map(Datagram::Vote),
        vote_reply().prop_map(Datagram::VoteReply),
        timeout_now().prop_map(Datagram::TimeoutNow),
        transfer_request().prop_map(Datagram::TransferRequest),
    ]
}

fn datagram() -> impl Strategy<Value = Datagram> {
    prop_oneof![
        3 => heartbeat().prop_map(Datagram::Heartbeat),
        1 => goodbye().prop_map(Datagram::Goodbye),
        6 => election_datagram(),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Member), Just(Mode::Witness)]
}

fn hello() -> impl Strategy<Value = Hello> {
    (cluster_name(), node_id(), any::<u64>(), ".{0,40}", mode()).prop_map(
        |(cluster, node, inc, advertise, mode)| Hello {
            cluster,
            node,
            incarnation: Incarnation(inc),
            advertise,
            mode,
        },
    )
}

fn node_state() -> impl Strategy<Value = NodeState> {
    (
        (node_id(), any::<u64>(), ".{0,40}", mode(), any::<u32>()),
        (
            vec(".{0,16}", 0..6),
            ".{0,16}",
            proptest::option::of(".{0,16}"),
        ),
        (wall(), any::<[u8; 8]>(), vec(node_id(), 0..4)),
        (
            vec((".{0,8}", ".{0,16}"), 0..4),
            vec((".{0,16}", any::<[u8; 16]>()), 0..4),
            proptest::option::of((".{0,16}", wall())),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (node, inc, advertise, mode, priority),
                (roles, agent_version, app_version),
                (started, peers_hash, suspects),
                (checks, files, drain, upgrade_allowed),
            )| NodeState {
                node,
                incarnation: Incarnation(inc),
                advertise,
                mode,
                priority,
                roles,
                agent_version,
                app_version,
                started,
                peers_hash,
                members: Membership {
                    origin: inc,
                    stamp: ConfigStamp::NONE,
                    members: suspects
                        .iter()
                        .map(|n| MemberSlot {
                            addr: n.to_string(),
                            node: Some(n.clone()),
                            voter: true,
                        })
                        .collect(),
                },
                lists_disagree: upgrade_allowed,
                checks: checks
                    .into_iter()
                    .map(|(name, reason)| quorate_protocol::CheckState {
                        name: name.into(),
                        code: quorate_protocol::CheckCode::Fail,
                        reason,
                    })
                    .collect(),
                mounts: Vec::new(),
                config: vec![quorate_protocol::ConfigSetState {
                    name: "set".into(),
                    files: files
                        .into_iter()
                        .map(|(path, hash)| quorate_protocol::FileHash { path, hash })
                        .collect(),
                    error: None,
                }],
                drain: drain.map(|(reason, since)| quorate_protocol::Drain {
                    reason,
                    by: "op".into(),
                    since,
                    until: None,
                }),
                drain_orders: Vec::new(),
                drift_acks: Vec::new(),
                balancer: None,
                tasks: Vec::new(),
                upgrade_allowed,
                suspects,
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        hello().prop_map(Frame::Hello),
        Just(Frame::StateRequest),
        node_state().prop_map(Frame::State),
    ]
}

/// The body of an encoded frame (length prefix stripped).
fn frame_body(f: &Frame) -> Vec<u8> {
    let mut bytes = encode_frame(f).expect("encode frame");
    let header: [u8; FRAME_HEADER_LEN] = bytes[..FRAME_HEADER_LEN].try_into().expect("header");
    assert_eq!(
        frame_body_len(header),
        Ok(bytes.len() - FRAME_HEADER_LEN),
        "length prefix"
    );
    bytes.drain(..FRAME_HEADER_LEN);
    bytes
}

// ---------------------------------------------------------------------------------------
// Byte mutations of valid encodings.

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Insert(ref i, b) => bytes.insert(i.index(len + 1), b),
            _ if len == 0 => {}
            Mutation::Flip(ref i, mask) => bytes[i.index(len)] ^= mask,
            Mutation::Set(ref i, b) => bytes[i.index(len)] = b,
            Mutation::Delete(ref i) => {
                bytes.remove(i.index(len));
            }
            Mutation::Truncate(ref i) => bytes.truncate(i.index(len)),
        }
    }
}

/// Anything that decodes is a message the encoder can write again, to the same value.
fn check_datagram_reencodes(bytes: &[u8]) {
    if let Ok(msg) = decode_datagram(bytes) {
        let again = encode_datagram(&msg).expect("a decoded datagram re-encodes");
        assert!(again.len() <= bytes.len(), "canonical form is never longer");
        assert_eq!(decode_datagram(&again), Ok(msg));
    }
}

fn check_frame_reencodes(body: &[u8]) {
    if let Ok(msg) = decode_frame_body(body) {
        let again = frame_body(&msg);
        assert!(again.len() <= body.len(), "canonical form is never longer");
        assert_eq!(decode_frame_body(&again), Ok(msg));
    }
}

/// Datagram variants (`Heartbeat` .. `MemberReply`); frames have fewer.
const DATAGRAM_VARIANTS: u8 = 10;

/// Prefixes that steer random bytes past the version check and into each variant (of
/// datagrams and frames), or just past the last one.
fn steered_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(vec![]),
        Just(vec![PROTOCOL_VERSION]),
        (0..=DATAGRAM_VARIANTS).prop_map(|variant| vec![PROTOCOL_VERSION, variant]),
    ];
    (prefix, vec(any::<u8>(), 0..max)).prop_map(|(mut p, rest)| {
        p.extend(rest);
        p
    })
}

/// A heartbeat's encoded size follows from its id lengths and option tags alone.
fn expected_heartbeat_len(hb: &Heartbeat) -> usize {
    // version, variant, node (1-byte length prefix for ids <= 63 bytes), incarnation,
    // seq, sent, interval_ms, echo, term, primary, lease_ack, lease_ms, promise_ms,
    // freeze, health, load, digest, config, tasks (fewer than 128 tags: a 1-byte count).
    1 + 1
        + id_len(&hb.node)
        + 8
        + 8
        + 8
        + 2
        + if hb.echo.is_some() { 1 + 8 + 8 + 4 } else { 1 }
        + 8
        + opt_id_len(hb.primary.as_ref())
        + if hb.lease_ack.is_some() { 1 + 8 } else { 1 }
        + 4
        + 4
        + (1 + 8)
        + 4
        + (2 + 2 + 4)
        + 8
        + (8 + 8)
        + hb.tasks
            .as_ref()
            .map_or(1, |g| 1 + 4 + 1 + 4 * g.tasks.len())
}

/// An encoded node id: a 1-byte length prefix (ids are at most 63 bytes), then the id.
fn id_len(id: &NodeId) -> usize {
    1 + id.as_str().len()
}

fn opt_id_len(id: Option<&NodeId>) -> usize {
    1 + id.map_or(0, id_len)
}

/// An election datagram's encoded size: version, variant (one byte each), then the fields
/// in order; terms and sequence numbers are fixed-width, so only ids and options vary.
fn expected_election_len(d: &Datagram) -> usize {
    1 + 1
        + match d {
            Datagram::PreVote(r) | Datagram::Vote(r) => {
                8 + id_len(&r.candidate) + opt_id_len(r.transfer_from.as_ref()) + 8 + 4 + 16
            }
            Datagram::PreVoteReply(r) | Datagram::VoteReply(r) => 8 + id_len(&r.voter) + 1 + 8 + 4,
            Datagram::TimeoutNow(t) => 8 + id_len(&t.from),
            Datagram::TransferRequest(t) => opt_id_len(t.to.as_ref()),
            Datagram::Heartbeat(_)
            | Datagram::Goodbye(_)
            | Datagram::MemberRequest(_)
            | Datagram::MemberReply(_) => {
                unreachable!("not an election datagram")
            }
        }
}

// ---------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_datagram_bytes_never_panic(bytes in steered_bytes(2048)) {
        let r = decode_datagram(&bytes);
        if bytes.len() > MAX_DATAGRAM {
            prop_assert_eq!(r, Err(DecodeError::TooLarge { len: bytes.len(), cap: MAX_DATAGRAM }));
        }
        check_datagram_reencodes(&bytes);
    }

    #[test]
    fn arbitrary_frame_bytes_never_panic(bytes in steered_bytes(2048)) {
        let _ = decode_frame_body(&bytes);
        check_frame_reencodes(&bytes);
    }

    #[test]
    fn mutated_datagrams_never_panic(msg in datagram(), muts in vec(mutation(), 1..8)) {
        let mut bytes = encode_datagram(&msg).expect("encode");
        mutate(&mut bytes, &muts);
        check_datagram_reencodes(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(msg in frame(), muts in vec(mutation(), 1..8)) {
        let mut body = frame_body(&msg);
        mutate(&mut body, &muts);
        check_frame_reencodes(&body);
    }

    #[test]
    fn heartbeats_round_trip(hb in heartbeat()) {
        let msg = Datagram::Heartbeat(hb.clone());
        let bytes = encode_datagram(&msg).expect("encode");
        prop_assert_eq!(bytes.len(), expected_heartbeat_len(&hb));
        prop_assert!(bytes.len() <= MAX_DATAGRAM);
        prop_assert_eq!(bytes[0], PROTOCOL_VERSION);
        prop_assert_eq!(decode_datagram(&bytes), Ok(msg));
    }

    #[test]
    fn election_datagrams_round_trip(d in election_datagram()) {
        let bytes = encode_datagram(&d).expect("encode");
        prop_assert_eq!(bytes.len(), expected_election_len(&d));
        prop_assert!(bytes.len() <= MAX_DATAGRAM);
        prop_assert_eq!(bytes[0], PROTOCOL_VERSION);
        prop_assert_eq!(decode_datagram(&bytes), Ok(d));
    }

    #[test]
    fn mutated_election_datagrams_never_panic(
        msg in election_datagram(),
        muts in vec(mutation(), 1..8),
    ) {
        let mut bytes = encode_datagram(&msg).expect("encode");
        mutate(&mut bytes, &muts);
        check_datagram_reencodes(&bytes);
    }

    #[test]
    fn datagrams_and_frames_round_trip(d in datagram(), f in frame()) {
        let bytes = encode_datagram(&d).expect("encode");
        prop_assert_eq!(decode_datagram(&bytes), Ok(d));
        let body = frame_body(&f);
        prop_assert_eq!(decode_frame_body(&body), Ok(f));
    }

    #[test]
    fn truncated_encodings_are_rejected(d in datagram(), f in frame(), cut in any::<Index>()) {
        let bytes = encode_datagram(&d).expect("encode");
        let n = cut.index(bytes.len());
        prop_assert!(decode_datagram(&bytes[..n]).is_err());
        let body = frame_body(&f);
        let n = cut.index(body.len());
        prop_assert!(decode_frame_body(&body[..n]).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected(d in datagram(), extra in vec(any::<u8>(), 1..16)) {
        let mut bytes = encode_datagram(&d).expect("encode");
        bytes.extend(&extra);
        prop_assert_eq!(decode_datagram(&bytes), Err(DecodeError::Trailing(extra.len())));
    }

    #[test]
    fn version_mismatch_is_reported(
        v in any::<u8>().prop_filter("another version", |v| *v != PROTOCOL_VERSION),
        d in datagram(),
        f in frame(),
        tail in vec(any::<u8>(), 0..64),
    ) {
        let want = DecodeError::Version { theirs: v, ours: PROTOCOL_VERSION };
        let mut bytes = encode_datagram(&d).expect("encode");
        bytes[0] = v;
        prop_assert_eq!(decode_datagram(&bytes).err(), Some(want.clone()));
        let mut body = frame_body(&f);
        body[0] = v;
        prop_assert_eq!(decode_frame_body(&body).err(), Some(want.clone()));
        // Whatever follows the version byte.
        let mut junk = vec![v];
        junk.extend(&tail);
        prop_assert_eq!(decode_datagram(&junk).err(), Some(want.clone()));
        prop_assert_eq!(decode_frame_body(&junk).err(), Some(want));
    }

    #[test]
    fn frame_body_len_accepts_only_1_to_max(len in any::<u32>()) {
        let r = frame_body_len(len.to_be_bytes());
        let len = len as usize;
        if len == 0 {
            prop_assert_eq!(r, Err(DecodeError::Empty));
        } else if len > MAX_FRAME {
            prop_assert_eq!(r, Err(DecodeError::TooLarge { len, cap: MAX_FRAME }));
        } else {
            prop_assert_eq!(r, Ok(len));
        }
    }

    #[test]
    fn frame_body_len_rejects_above_cap(len in (MAX_FRAME as u32 + 1)..=u32::MAX) {
        prop_assert_eq!(
            frame_body_len(len.to_be_bytes()),
            Err(DecodeError::TooLarge { len: len as usize, cap: MAX_FRAME })
        );
    }
}

proptest! {
    // Each case builds a buffer of about a MiB: keep these few.
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Oversized input is refused on its length alone: the version byte and payload are
    /// never read (a wrong version still gives TooLarge) and nothing is allocated.
    #[test]
    fn oversized_input_is_too_large_untouched(extra in 1usize..4096, fill in any::<u8>()) {
        let big = vec![fill; MAX_DATAGRAM + extra];
        let (r, stats) = measure(|| decode_datagram(&big));
        prop_assert_eq!(r, Err(DecodeError::TooLarge { len: big.len(), cap: MAX_DATAGRAM }));
        prop_assert_eq!(stats.total, 0);

        let big = vec![fill; MAX_FRAME + extra];
        let (r, stats) = measure(|| decode_frame_body(&big));
        prop_assert_eq!(r, Err(DecodeError::TooLarge { len: big.len(), cap: MAX_FRAME }));
        prop_assert_eq!(stats.total, 0);
    }

    /// A mutated body still within the cap but padded near it never panics.
    #[test]
    fn large_junk_frames_never_panic(prefix in steered_bytes(64), fill in any::<u8>(), pad in 0usize..4096) {
        let mut body = prefix;
        body.resize(MAX_FRAME - pad, fill);
        let (_, stats) = measure(|| decode_frame_body(&body));
        prop_assert!(stats.peak <= 2 * MAX_FRAME, "peak {} bytes", stats.peak);
    }
}

// ---------------------------------------------------------------------------------------
// Fixed cases.

#[test]
fn empty_input_is_empty() {
    assert_eq!(decode_datagram(&[]), Err(DecodeError::Empty));
    assert_eq!(decode_frame_body(&[]), Err(DecodeError::Empty));
    assert_eq!(frame_body_len([0; 4]), Err(DecodeError::Empty));
}

#[test]
fn inputs_at_the_cap_are_not_too_large() {
    let at_cap = vec![PROTOCOL_VERSION; MAX_DATAGRAM];
    assert!(!matches!(
        decode_datagram(&at_cap),
        Err(DecodeError::TooLarge { .. })
    ));
    let at_cap = vec![PROTOCOL_VERSION; MAX_FRAME];
    assert!(!matches!(
        decode_frame_body(&at_cap),
        Err(DecodeError::TooLarge { .. })
    ));
    assert_eq!(
        frame_body_len(u32::try_from(MAX_FRAME).expect("fits").to_be_bytes()),
        Ok(MAX_FRAME)
    );
    assert_eq!(
        frame_body_len(u32::try_from(MAX_FRAME + 1).expect("fits").to_be_bytes()),
        Err(DecodeError::TooLarge {
            len: MAX_FRAME + 1,
            cap: MAX_FRAME
        })
    );
    assert_eq!(
        frame_body_len([0xff; 4]),
        Err(DecodeError::TooLarge {
            len: u32::MAX as usize,
            cap: MAX_FRAME
        })
    );
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A `Frame::State` body, written by hand, whose `roles` length prefix claims
/// `roles_len` elements and is followed by `role_bytes`.
fn crafted_state_body(roles_len: u64, role_bytes: &[u8]) -> Vec<u8> {
    let mut b = vec![PROTOCOL_VERSION, 2]; // version, Frame::State
    b.extend([2, b'n', b'1']); // node
    b.extend([0; 8]); // incarnation
    b.push(0); // advertise: ""
    b.push(0); // mode: Member
    b.push(0); // priority: 0
    varint(roles_len, &mut b); // roles: length prefix
    b.extend(role_bytes);
    b.push(0); // agent_version: ""
    b.push(0); // app_version: None
    b.extend([0; 8]); // started
    b.extend([0; 8]); // peers_hash
    b.extend([0; 8]); // members: origin
    b.extend([0; 16]); // members: stamp
    b.push(0); // members: no slots
    b.push(0); // lists_disagree: false
    // checks, mounts, config, drain, drain_orders, drift_acks, balancer, tasks: empty;
    // upgrade_allowed: false; suspects: empty.
    b.extend([0; 10]);
    b
}

#[test]
fn crafted_state_body_layout_is_right() {
    let body = crafted_state_body(1, &[3, b'a', b'b', b'c']);
    let Ok(Frame::State(state)) = decode_frame_body(&body) else {
        panic!("{:?}", decode_frame_body(&body));
    };
    assert_eq!(state.node.as_str(), "n1");
    assert_eq!(state.roles, ["abc"]);
    assert_eq!(frame_body(&Frame::State(state)), body);
}

/// A tiny body whose `roles` prefix claims 2^31 (or 2^64 - 1) elements: decoding fails
/// at once and allocates no more than the cap allows, because postcard hides the claimed
/// length from serde when the input cannot hold it and serde caps preallocation at 1 MiB.
#[test]
#[allow(clippy::disallowed_methods)] // Instant::now: timing this test is the point.
fn huge_length_prefix_does_not_preallocate() {
    for claimed in [1u64 << 31, u64::from(u32::MAX), u64::MAX] {
        let body = crafted_state_body(claimed, &[3, b'a', b'b', b'c']);
        assert!(body.len() < 96);
        let start = std::time::Instant::now();
        let (r, stats) = measure(|| decode_frame_body(&body));
        let elapsed = start.elapsed();
        assert!(
            matches!(r, Err(DecodeError::Malformed(_))),
            "claimed {claimed}: {r:?}"
        );
        assert!(
            stats.peak <= 2 * MAX_FRAME,
            "claimed {claimed}: peak {} bytes",
            stats.peak
        );
        assert!(
            elapsed < std::time::Duration::from_secs(1),
            "claimed {claimed}: {elapsed:?}"
        );
        println!(
            "roles length {claimed}: {r:?}; peak {} bytes, {} allocated, {elapsed:?}",
            stats.peak, stats.total
        );
    }
}

/// The same for the strings themselves: a role claiming 2^31 bytes in a tiny body.
#[test]
fn huge_string_length_does_not_preallocate() {
    let mut role = Vec::new();
    varint(1 << 31, &mut role);
    role.extend(b"abc");
    let body = crafted_state_body(1, &role);
    let (r, stats) = measure(|| decode_frame_body(&body));
    assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
    assert!(stats.peak <= 2 * MAX_FRAME, "peak {} bytes", stats.peak);
}

/// A body at the cap made of empty roles: every byte becomes a 24-byte `String`, so the
/// decoded value is far larger than the frame. This pins the current bound (see the
/// note in the test): the frame cap alone does not bound the decoded size.
#[test]
fn max_frame_of_empty_roles_amplification() {
    let overhead = crafted_state_body(0, &[]).len() + 4; // + room for a longer varint
    let n = MAX_FRAME - overhead;
    let body = crafted_state_body(n as u64, &vec![0; n]);
    assert!(body.len() <= MAX_FRAME);
    let (r, stats) = measure(|| {
        decode_frame_body(&body).map(|f| match f {
            Frame::State(s) => s.roles.len(),
            _ => 0,
        })
    });
    assert_eq!(r, Ok(n));
    println!(
        "{n} empty roles in a {}-byte frame: peak {} bytes ({:.1} x MAX_FRAME)",
        body.len(),
        stats.peak,
        stats.peak as f64 / MAX_FRAME as f64
    );
    // Each empty role costs size_of::<String>() = 24 bytes; doubling growth rounds the
    // capacity up (to 1.33 n here) and a moving realloc briefly holds the old buffer as
    // well: about 48 frames' worth at peak (measured: 48.0). Flagged in the protocol
    // review; tighten this to 2 * MAX_FRAME once NodeState bounds its collections.
    assert!(stats.peak <= 64 * MAX_FRAME, "peak {} bytes", stats.peak);
}
