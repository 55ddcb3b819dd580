//! Property tests for the decoders: any byte string is rejected or accepted without a
//! panic, the caps are checked before the payload is looked at, and decoding a small
//! message never allocates far past the frame cap, whatever its length prefixes claim.
//!
//! The allocation checks use the counting global allocator of `support/counting.rs`.

#[path = "support/counting.rs"]
mod counting;

use counting::measure;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use quorate_protocol::limits::{self, Limit, Unit};
use quorate_protocol::{
    ClusterName, ConfigStamp, Datagram, DecodeError, Echo, FRAME_HEADER_LEN, Frame, FreezeFlag,
    Goodbye, HealthBits, Heartbeat, Hello, Incarnation, LoadFigures, MAX_DATAGRAM, MAX_FRAME,
    MemberSlot, Membership, Mode, NodeId, NodeState, PROTOCOL_VERSION, Seq, StateDigest, TaskGrant,
    TaskTag, Term, TimeoutNow, TransferRequest, VoteReply, VoteRequest, WallMicros,
    decode_datagram, decode_frame_body, encode_datagram, encode_frame, frame_body_len,
};

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
                cert_expires: upgrade_allowed.then_some(started),
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
    // upgrade_allowed: false; suspects: empty; cert_expires: None.
    b.extend([0; 11]);
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
        // Refused when the input runs out, or when the empty strings after the role
        // (read as more roles) pass the ROLES limit: either way, at once.
        assert!(
            matches!(
                r,
                Err(DecodeError::Malformed(_) | DecodeError::OverLimit { .. })
            ),
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

/// A body at the cap made of empty roles: every byte would become a 24-byte `String`
/// (48 frames' worth at peak before the wire limits). The roles' claimed length is
/// refused before anything is allocated for them.
#[test]
fn max_frame_of_empty_roles_is_refused_before_allocating() {
    let overhead = crafted_state_body(0, &[]).len() + 4; // + room for a longer varint
    let n = MAX_FRAME - overhead;
    let body = crafted_state_body(n as u64, &vec![0; n]);
    assert!(body.len() <= MAX_FRAME);
    let (r, stats) = measure(|| decode_frame_body(&body));
    println!(
        "{n} empty roles in a {}-byte frame: {r:?}; peak {} bytes",
        body.len(),
        stats.peak
    );
    assert_eq!(
        r,
        Err(DecodeError::OverLimit {
            field: "NodeState.roles",
            limit: "ROLES",
            found: Some(n),
            max: limits::ROLES.max,
            unit: Unit::Entries,
        })
    );
    assert!(stats.peak < 4096, "peak {} bytes", stats.peak);
}

// ---------------------------------------------------------------------------------------
// Wire limits: the worst messages the limits allow decode to at most twice the frame cap,
// and one entry or byte over any limit is refused, naming the field and the limit.

/// The same wire layout as the protocol's types, without their limits: what a hostile or
/// broken peer could send. `mirror_encodes_like_the_real_types` keeps the two equal.
mod raw {
    use quorate_protocol::{CheckCode, ConfigStamp, Incarnation, Mode, NodeState, WallMicros};
    use serde::Serialize;

    #[derive(Clone, Serialize)]
    pub struct State {
        pub node: String,
        pub incarnation: Incarnation,
        pub advertise: String,
        pub mode: Mode,
        pub priority: u32,
        pub roles: Vec<String>,
        pub agent_version: String,
        pub app_version: Option<String>,
        pub started: WallMicros,
        pub peers_hash: [u8; 8],
        pub members: Membership,
        pub lists_disagree: bool,
        pub checks: Vec<Check>,
        pub mounts: Vec<Mount>,
        pub config: Vec<Set>,
        pub drain: Option<Drain>,
        pub drain_orders: Vec<Order>,
        pub drift_acks: Vec<Ack>,
        pub balancer: Option<Balancer>,
        pub tasks: Vec<Task>,
        pub upgrade_allowed: bool,
        pub suspects: Vec<String>,
        pub cert_expires: Option<WallMicros>,
    }

    #[derive(Clone, Serialize)]
    pub struct Membership {
        #[serde(with = "postcard::fixint::le")]
        pub origin: u64,
        pub stamp: ConfigStamp,
        pub members: Vec<Slot>,
    }

    #[derive(Clone, Serialize)]
    pub struct Slot {
        pub addr: String,
        pub node: Option<String>,
        pub voter: bool,
    }

    #[derive(Clone, Serialize)]
    pub struct Check {
        pub name: String,
        pub code: CheckCode,
        pub reason: String,
    }

    #[derive(Clone, Serialize)]
    pub struct Mount {
        pub path: String,
        pub code: CheckCode,
        pub reason: String,
        pub source: Option<String>,
        pub fstype: Option<String>,
        pub proof: Option<String>,
    }

    #[derive(Clone, Serialize)]
    pub struct Set {
        pub name: String,
        pub files: Vec<File>,
        pub error: Option<String>,
    }

    #[derive(Clone, Serialize)]
    pub struct File {
        pub path: String,
        pub hash: [u8; 16],
    }

    #[derive(Clone, Serialize)]
    pub struct Drain {
        pub reason: String,
        pub by: String,
        pub since: WallMicros,
        pub until: Option<WallMicros>,
    }

    #[derive(Clone, Serialize)]
    pub struct Order {
        pub target: String,
        pub drain: Option<Drain>,
        pub version: u64,
    }

    #[derive(Clone, Serialize)]
    pub struct Ack {
        pub name: String,
        pub reason: String,
        pub by: String,
        pub until: WallMicros,
    }

    #[derive(Clone, Serialize)]
    pub struct Balancer {
        pub state: String,
        pub balancer: Option<String>,
        pub weight: Option<String>,
        pub since: WallMicros,
    }

    #[derive(Clone, Serialize)]
    pub struct Task {
        pub name: String,
        pub holder: Option<String>,
    }

    fn drain(d: &quorate_protocol::Drain) -> Drain {
        Drain {
            reason: d.reason.clone(),
            by: d.by.clone(),
            since: d.since,
            until: d.until,
        }
    }

    impl From<&NodeState> for State {
        fn from(s: &NodeState) -> Self {
            State {
                node: s.node.to_string(),
                incarnation: s.incarnation,
                advertise: s.advertise.clone(),
                mode: s.mode,
                priority: s.priority,
                roles: s.roles.clone(),
                agent_version: s.agent_version.clone(),
                app_version: s.app_version.clone(),
                started: s.started,
                peers_hash: s.peers_hash,
                members: Membership {
                    origin: s.members.origin,
                    stamp: s.members.stamp,
                    members: s
                        .members
                        .members
                        .iter()
                        .map(|m| Slot {
                            addr: m.addr.clone(),
                            node: m.node.as_ref().map(ToString::to_string),
                            voter: m.voter,
                        })
                        .collect(),
                },
                lists_disagree: s.lists_disagree,
                checks: s
                    .checks
                    .iter()
                    .map(|c| Check {
                        name: c.name.to_string(),
                        code: c.code,
                        reason: c.reason.clone(),
                    })
                    .collect(),
                mounts: s
                    .mounts
                    .iter()
                    .map(|m| Mount {
                        path: m.path.clone(),
                        code: m.code,
                        reason: m.reason.clone(),
                        source: m.source.clone(),
                        fstype: m.fstype.clone(),
                        proof: m.proof.clone(),
                    })
                    .collect(),
                config: s
                    .config
                    .iter()
                    .map(|c| Set {
                        name: c.name.clone(),
                        files: c
                            .files
                            .iter()
                            .map(|f| File {
                                path: f.path.clone(),
                                hash: f.hash,
                            })
                            .collect(),
                        error: c.error.clone(),
                    })
                    .collect(),
                drain: s.drain.as_ref().map(drain),
                drain_orders: s
                    .drain_orders
                    .iter()
                    .map(|o| Order {
                        target: o.target.to_string(),
                        drain: o.drain.as_ref().map(drain),
                        version: o.version,
                    })
                    .collect(),
                drift_acks: s
                    .drift_acks
                    .iter()
                    .map(|a| Ack {
                        name: a.name.clone(),
                        reason: a.reason.clone(),
                        by: a.by.clone(),
                        until: a.until,
                    })
                    .collect(),
                balancer: s.balancer.as_ref().map(|b| Balancer {
                    state: b.state.clone(),
                    balancer: b.balancer.clone(),
                    weight: b.weight.clone(),
                    since: b.since,
                }),
                tasks: s
                    .tasks
                    .iter()
                    .map(|t| Task {
                        name: t.name.clone(),
                        holder: t.holder.as_ref().map(ToString::to_string),
                    })
                    .collect(),
                upgrade_allowed: s.upgrade_allowed,
                suspects: s.suspects.iter().map(ToString::to_string).collect(),
                cert_expires: s.cert_expires,
            }
        }
    }

    /// The body of a `Frame::State` carrying `s`, written without any limit.
    pub fn body(s: &State) -> Vec<u8> {
        let mut out = vec![quorate_protocol::PROTOCOL_VERSION, 2]; // version, Frame::State
        postcard::to_extend(s, out.split_off(2)).map_or_else(
            |e| panic!("raw encode: {e}"),
            |tail| {
                out.extend(tail);
                out
            },
        )
    }
}

fn nid(s: &str) -> NodeId {
    NodeId::new(s).expect("valid node id")
}

/// A small state with one entry in every list and a value in every option, so that each
/// list and string below can be pushed to its limit from it.
fn small_state() -> NodeState {
    use quorate_protocol::{
        CheckCode, CheckState, ConfigSetState, Drain, DrainOrder, DriftAck, FileHash, MountState,
        TaskPlacement,
    };
    let drain = Drain {
        reason: "kernel".into(),
        by: "alice".into(),
        since: WallMicros(1),
        until: Some(WallMicros(2)),
    };
    NodeState {
        roles: vec!["db".into()],
        agent_version: "0.1.0".into(),
        app_version: Some("16.4".into()),
        members: Membership {
            origin: 1,
            stamp: ConfigStamp {
                term: Term(1),
                index: 1,
            },
            members: vec![MemberSlot {
                addr: "10.0.0.1:7946".into(),
                node: Some(nid("n1")),
                voter: true,
            }],
        },
        checks: vec![CheckState {
            name: "app".into(),
            code: CheckCode::Fail,
            reason: "HTTP 500".into(),
        }],
        mounts: vec![MountState {
            path: "/mnt/repo".into(),
            code: CheckCode::Ok,
            reason: String::new(),
            source: Some("nas:/export".into()),
            fstype: Some("nfs4".into()),
            proof: Some("5f3a".into()),
        }],
        config: vec![ConfigSetState {
            name: "app".into(),
            files: vec![FileHash {
                path: "/etc/app.xml".into(),
                hash: [7; 16],
            }],
            error: Some("unreadable".into()),
        }],
        drain: Some(drain.clone()),
        drain_orders: vec![DrainOrder {
            target: nid("n2"),
            drain: Some(drain),
            version: 3,
        }],
        drift_acks: vec![DriftAck {
            name: "app".into(),
            reason: "upgrade".into(),
            by: "bob".into(),
            until: WallMicros(9),
        }],
        balancer: Some(quorate_protocol::BalancerSeen {
            state: "UP 2/3".into(),
            balancer: Some("lb1".into()),
            weight: Some("1/2".into()),
            since: WallMicros(4),
        }),
        tasks: vec![TaskPlacement {
            name: "nightly".into(),
            holder: Some(nid("n1")),
        }],
        suspects: vec![nid("n3")],
        cert_expires: Some(WallMicros(1_800_000_000_000_000)),
        ..NodeState::new(
            nid("n1"),
            Incarnation(5),
            "10.0.0.1:7946".into(),
            Mode::Member,
            100,
            WallMicros(0),
        )
    }
}

#[test]
fn mirror_encodes_like_the_real_types() {
    for state in [small_state(), worst_state()] {
        let real = frame_body(&Frame::State(state.clone()));
        assert_eq!(raw::body(&raw::State::from(&state)), real);
    }
}

/// One way of pushing one field to `n` entries or bytes.
struct Push {
    field: &'static str,
    limit: &'static Limit,
    set: fn(&mut raw::State, usize),
}

fn text(n: usize) -> String {
    "a".repeat(n)
}

/// Every list and string of a node's state, with the limit that holds it.
fn pushes() -> Vec<Push> {
    fn files(n: usize) -> Vec<raw::File> {
        vec![
            raw::File {
                path: String::new(),
                hash: [0; 16],
            };
            n
        ]
    }
    vec![
        Push {
            field: "a node id",
            limit: &limits::NODE_ID,
            set: |s, n| s.node = text(n),
        },
        Push {
            field: "NodeState.advertise",
            limit: &limits::ADDR,
            set: |s, n| s.advertise = text(n),
        },
        Push {
            field: "NodeState.roles",
            limit: &limits::ROLES,
            set: |s, n| s.roles = vec![String::new(); n],
        },
        Push {
            field: "NodeState.roles[]",
            limit: &limits::NAME,
            set: |s, n| s.roles[0] = text(n),
        },
        Push {
            field: "NodeState.agent_version",
            limit: &limits::VERSION,
            set: |s, n| s.agent_version = text(n),
        },
        Push {
            field: "NodeState.app_version",
            limit: &limits::VERSION,
            set: |s, n| s.app_version = Some(text(n)),
        },
        Push {
            field: "Membership.members",
            limit: &limits::MEMBERS,
            set: |s, n| {
                let one = s.members.members[0].clone();
                s.members.members = vec![one; n];
            },
        },
        Push {
            field: "MemberSlot.addr",
            limit: &limits::ADDR,
            set: |s, n| s.members.members[0].addr = text(n),
        },
        Push {
            field: "a node id",
            limit: &limits::NODE_ID,
            set: |s, n| s.members.members[0].node = Some(text(n)),
        },
        Push {
            field: "NodeState.checks",
            limit: &limits::CHECKS,
            set: |s, n| {
                let one = s.checks[0].clone();
                s.checks = vec![one; n];
            },
        },
        Push {
            field: "CheckState.name",
            limit: &limits::NAME,
            set: |s, n| s.checks[0].name = text(n),
        },
        Push {
            field: "CheckState.reason",
            limit: &limits::TEXT,
            set: |s, n| s.checks[0].reason = text(n),
        },
        Push {
            field: "NodeState.mounts",
            limit: &limits::MOUNTS,
            set: |s, n| {
                let one = s.mounts[0].clone();
                s.mounts = vec![one; n];
            },
        },
        Push {
            field: "MountState.path",
            limit: &limits::PATH,
            set: |s, n| s.mounts[0].path = text(n),
        },
        Push {
            field: "MountState.reason",
            limit: &limits::TEXT,
            set: |s, n| s.mounts[0].reason = text(n),
        },
        Push {
            field: "MountState.source",
            limit: &limits::TEXT,
            set: |s, n| s.mounts[0].source = Some(text(n)),
        },
        Push {
            field: "MountState.fstype",
            limit: &limits::LABEL,
            set: |s, n| s.mounts[0].fstype = Some(text(n)),
        },
        Push {
            field: "MountState.proof",
            limit: &limits::PROOF,
            set: |s, n| s.mounts[0].proof = Some(text(n)),
        },
        Push {
            field: "NodeState.config",
            limit: &limits::CONFIG_SETS,
            set: |s, n| {
                let one = s.config[0].clone();
                s.config = vec![one; n];
            },
        },
        Push {
            field: "ConfigSetState.name",
            limit: &limits::NAME,
            set: |s, n| s.config[0].name = text(n),
        },
        Push {
            field: "ConfigSetState.files",
            limit: &limits::CONFIG_FILES_PER_SET,
            set: |s, n| s.config[0].files = files(n),
        },
        Push {
            field: "NodeState.config[].files, all sets together",
            limit: &limits::CONFIG_FILES,
            set: |s, n| {
                // Full sets, then the rest in one more.
                let per = limits::CONFIG_FILES_PER_SET.max;
                let one = s.config[0].clone();
                s.config = (0..n.div_ceil(per))
                    .map(|i| raw::Set {
                        files: files(per.min(n - i * per)),
                        ..one.clone()
                    })
                    .collect();
            },
        },
        Push {
            field: "ConfigSetState.error",
            limit: &limits::TEXT,
            set: |s, n| s.config[0].error = Some(text(n)),
        },
        Push {
            field: "FileHash.path",
            limit: &limits::PATH,
            set: |s, n| s.config[0].files[0].path = text(n),
        },
        Push {
            field: "Drain.reason",
            limit: &limits::TEXT,
            set: |s, n| s.drain.as_mut().expect("drain").reason = text(n),
        },
        Push {
            field: "Drain.by",
            limit: &limits::LABEL,
            set: |s, n| s.drain.as_mut().expect("drain").by = text(n),
        },
        Push {
            field: "NodeState.drain_orders",
            limit: &limits::DRAIN_ORDERS,
            set: |s, n| {
                let one = s.drain_orders[0].clone();
                s.drain_orders = vec![one; n];
            },
        },
        Push {
            field: "a node id",
            limit: &limits::NODE_ID,
            set: |s, n| s.drain_orders[0].target = text(n),
        },
        Push {
            field: "Drain.reason",
            limit: &limits::TEXT,
            set: |s, n| s.drain_orders[0].drain.as_mut().expect("drain").reason = text(n),
        },
        Push {
            field: "NodeState.drift_acks",
            limit: &limits::DRIFT_ACKS,
            set: |s, n| {
                let one = s.drift_acks[0].clone();
                s.drift_acks = vec![one; n];
            },
        },
        Push {
            field: "DriftAck.name",
            limit: &limits::NAME,
            set: |s, n| s.drift_acks[0].name = text(n),
        },
        Push {
            field: "DriftAck.reason",
            limit: &limits::TEXT,
            set: |s, n| s.drift_acks[0].reason = text(n),
        },
        Push {
            field: "DriftAck.by",
            limit: &limits::LABEL,
            set: |s, n| s.drift_acks[0].by = text(n),
        },
        Push {
            field: "BalancerSeen.state",
            limit: &limits::LABEL,
            set: |s, n| s.balancer.as_mut().expect("balancer").state = text(n),
        },
        Push {
            field: "BalancerSeen.balancer",
            limit: &limits::LABEL,
            set: |s, n| s.balancer.as_mut().expect("balancer").balancer = Some(text(n)),
        },
        Push {
            field: "BalancerSeen.weight",
            limit: &limits::LABEL,
            set: |s, n| s.balancer.as_mut().expect("balancer").weight = Some(text(n)),
        },
        Push {
            field: "NodeState.tasks",
            limit: &limits::TASKS,
            set: |s, n| {
                let one = s.tasks[0].clone();
                s.tasks = vec![one; n];
            },
        },
        Push {
            field: "TaskPlacement.name",
            limit: &limits::NAME,
            set: |s, n| s.tasks[0].name = text(n),
        },
        Push {
            field: "a node id",
            limit: &limits::NODE_ID,
            set: |s, n| s.tasks[0].holder = Some(text(n)),
        },
        Push {
            field: "NodeState.suspects",
            limit: &limits::SUSPECTS,
            set: |s, n| s.suspects = vec!["n3".into(); n],
        },
        Push {
            field: "a node id",
            limit: &limits::NODE_ID,
            set: |s, n| s.suspects[0] = text(n),
        },
    ]
}

/// At its limit every field decodes; one entry or byte over, the state is refused with
/// an error that names the field and the limit.
#[test]
fn one_over_any_limit_of_a_state_is_refused() {
    let base = raw::State::from(&small_state());
    let mut seen = std::collections::BTreeSet::new();
    for p in pushes() {
        seen.insert(p.limit.name);
        let mut at = base.clone();
        (p.set)(&mut at, p.limit.max);
        let body = raw::body(&at);
        assert!(body.len() <= MAX_FRAME, "{}", p.field);
        let decoded = decode_frame_body(&body);
        assert!(
            decoded.is_ok(),
            "{} at {}: {decoded:?}",
            p.field,
            p.limit.max
        );

        let mut over = base.clone();
        (p.set)(&mut over, p.limit.max + 1);
        let (r, stats) = measure(|| decode_frame_body(&raw::body(&over)));
        let Err(DecodeError::OverLimit {
            field,
            limit,
            max,
            unit,
            ..
        }) = r
        else {
            panic!("{} at {}: {r:?}", p.field, p.limit.max + 1);
        };
        assert_eq!(
            (field, limit, max, unit),
            (p.field, p.limit.name, p.limit.max, p.limit.unit),
            "{}",
            p.field
        );
        assert!(
            stats.peak <= 2 * MAX_FRAME,
            "{}: peak {}",
            p.field,
            stats.peak
        );
    }
    // Every limit of a state is exercised (the others belong to datagrams and requests).
    for l in limits::ALL {
        let elsewhere = ["CLUSTER_NAME", "OPERATOR_REASON", "CTL_TEXT"];
        assert!(
            seen.contains(l.name) || elsewhere.contains(&l.name),
            "{} untested",
            l.name
        );
    }
}

/// The encoder refuses what peers would refuse, naming the field, and cuts free text.
#[test]
fn the_encoder_refuses_over_limit_lists_and_cuts_text() {
    let mut s = small_state();
    s.roles = vec![String::new(); limits::ROLES.max + 1];
    let err = encode_frame(&Frame::State(s)).expect_err("65 roles");
    let msg = err.to_string();
    assert!(
        msg.contains("NodeState.roles: 65 entries") && msg.contains("ROLES"),
        "{msg}"
    );

    let mut s = small_state();
    s.checks[0].reason = "é".repeat(limits::TEXT.max); // twice the limit in bytes
    let body = frame_body(&Frame::State(s));
    let Ok(Frame::State(back)) = decode_frame_body(&body) else {
        panic!("a cut reason decodes");
    };
    let reason = &back.checks[0].reason;
    assert!(
        reason.len() <= limits::TEXT.max && reason.ends_with('…'),
        "{}",
        reason.len()
    );
    assert!(reason.starts_with("éé"));
}

/// A state with every list at its limit, made of the smallest entries, and every byte
/// left under the frame cap spent on the longest strings allowed: the most memory a
/// state the limits admit can take.
fn worst_state() -> NodeState {
    use quorate_protocol::{
        CheckCode, CheckState, ConfigSetState, DrainOrder, DriftAck, FileHash, MountState,
        TaskPlacement,
    };
    let per = limits::CONFIG_FILES_PER_SET.max;
    let full_sets = limits::CONFIG_FILES.max / per;
    let mut s = NodeState::new(
        nid(&"n".repeat(63)),
        Incarnation(1),
        text(limits::ADDR.max),
        Mode::Member,
        u32::MAX,
        WallMicros(1),
    );
    s.roles = vec![String::new(); limits::ROLES.max];
    s.members.members = vec![
        MemberSlot {
            addr: String::new(),
            node: None,
            voter: false,
        };
        limits::MEMBERS.max
    ];
    s.checks = vec![
        CheckState {
            name: "".into(),
            code: CheckCode::Ok,
            reason: String::new(),
        };
        limits::CHECKS.max
    ];
    s.mounts = vec![
        MountState {
            path: String::new(),
            code: CheckCode::Ok,
            reason: String::new(),
            source: None,
            fstype: None,
            proof: None,
        };
        limits::MOUNTS.max
    ];
    s.config = (0..limits::CONFIG_SETS.max)
        .map(|i| ConfigSetState {
            name: String::new(),
            files: if i < full_sets {
                vec![
                    FileHash {
                        path: String::new(),
                        hash: [0; 16],
                    };
                    per
                ]
            } else {
                Vec::new()
            },
            error: None,
        })
        .collect();
    s.drain_orders = vec![
        DrainOrder {
            target: nid("a"),
            drain: None,
            version: 0,
        };
        limits::DRAIN_ORDERS.max
    ];
    s.drift_acks = vec![
        DriftAck {
            name: String::new(),
            reason: String::new(),
            by: String::new(),
            until: WallMicros(0),
        };
        limits::DRIFT_ACKS.max
    ];
    s.tasks = vec![
        TaskPlacement {
            name: String::new(),
            holder: None,
        };
        limits::TASKS.max
    ];
    s.suspects = vec![nid("a"); limits::SUSPECTS.max];
    fill_paths(&mut s);
    s
}

/// Spends the bytes left under the frame cap on file paths of up to `PATH` bytes.
fn fill_paths(s: &mut NodeState) {
    let mut left = MAX_FRAME - frame_body(&Frame::State(s.clone())).len();
    let files = s.config.iter_mut().flat_map(|c| c.files.iter_mut());
    for f in files {
        // A path of up to 16383 bytes has a 2-byte length prefix (1 for the empty one).
        let n = limits::PATH.max.min(left.saturating_sub(1));
        if n < 128 {
            break;
        }
        f.path = text(n);
        left -= n + 1;
    }
}

fn ratio(bytes: usize) -> f64 {
    bytes as f64 / MAX_FRAME as f64
}

/// The arithmetic behind "a decoded message takes at most twice the frame cap": a string
/// costs on the heap what it costs on the wire, so all a decoder can add to the frame's
/// own bytes is, per entry of a list, its in-memory size less the fewest bytes it takes
/// on the wire. Summed over every list at its limit (with one config set's files counted
/// twice: the total is checked after each set), that must stay under one frame. The
/// tests below measure the same bound with the counting allocator.
#[test]
fn lists_at_their_limits_fit_in_one_more_frame() {
    use quorate_protocol::{
        CheckState, ConfigSetState, DrainOrder, DriftAck, FileHash, MountState, TaskPlacement,
    };
    use std::mem::size_of;
    let files = Limit {
        max: limits::CONFIG_FILES.max + limits::CONFIG_FILES_PER_SET.max,
        ..limits::CONFIG_FILES
    };
    // (limit, bytes in memory per entry, fewest bytes on the wire per entry)
    let lists: [(&Limit, usize, usize); 10] = [
        (&limits::ROLES, size_of::<String>(), 1),
        (&limits::MEMBERS, size_of::<MemberSlot>(), 3),
        (&limits::CHECKS, size_of::<CheckState>(), 3),
        (&limits::MOUNTS, size_of::<MountState>(), 6),
        (&limits::CONFIG_SETS, size_of::<ConfigSetState>(), 3),
        (&limits::DRAIN_ORDERS, size_of::<DrainOrder>(), 4),
        (&limits::DRIFT_ACKS, size_of::<DriftAck>(), 11),
        (&limits::TASKS, size_of::<TaskPlacement>(), 2),
        (&limits::SUSPECTS, size_of::<NodeId>(), 2),
        (&files, size_of::<FileHash>(), 17),
    ];
    let extra: usize = lists
        .iter()
        .map(|(limit, mem, wire)| limit.max * mem.saturating_sub(*wire))
        .sum();
    println!(
        "lists at their limits add at most {extra} bytes ({:.2} frames)",
        ratio(extra)
    );
    assert!(extra <= MAX_FRAME, "{extra} bytes");
}

#[test]
fn worst_state_decodes_within_twice_the_frame_cap() {
    let body = frame_body(&Frame::State(worst_state()));
    assert!(
        body.len() <= MAX_FRAME && body.len() > MAX_FRAME - 256,
        "{}",
        body.len()
    );
    let (r, stats) = measure(|| decode_frame_body(&body).map(|_| ()));
    assert_eq!(r, Ok(()));
    println!(
        "worst state: {}-byte frame decodes to a peak of {} bytes ({:.2} x MAX_FRAME)",
        body.len(),
        stats.peak,
        ratio(stats.peak)
    );
    assert!(stats.peak <= 2 * MAX_FRAME, "peak {} bytes", stats.peak);
}

/// The worst refused state: one config set past the files' total (read before the total
/// is checked) with everything else at its limit, and the rest of the frame in strings.
#[test]
fn worst_refused_state_stays_within_twice_the_frame_cap() {
    let mut s = raw::State::from(&worst_state());
    let per = limits::CONFIG_FILES_PER_SET.max;
    let extra = s
        .config
        .iter()
        .position(|c| c.files.is_empty())
        .expect("an empty set");
    s.config[extra].files = vec![
        raw::File {
            path: String::new(),
            hash: [0; 16],
        };
        per
    ];
    // Give back the bytes the extra set took, from the long paths.
    let mut excess = raw::body(&s).len().saturating_sub(MAX_FRAME);
    for f in s.config.iter_mut().flat_map(|c| c.files.iter_mut()) {
        let cut = excess.min(f.path.len());
        f.path.truncate(f.path.len() - cut);
        excess -= cut;
    }
    let body = raw::body(&s);
    assert!(body.len() <= MAX_FRAME, "{}", body.len());
    let (r, stats) = measure(|| decode_frame_body(&body).map(|_| ()));
    assert!(
        matches!(
            r,
            Err(DecodeError::OverLimit {
                limit: "CONFIG_FILES",
                ..
            })
        ),
        "{r:?}"
    );
    println!(
        "worst refused state: {}-byte frame, peak {} bytes ({:.2} x MAX_FRAME)",
        body.len(),
        stats.peak,
        ratio(stats.peak)
    );
    assert!(stats.peak <= 2 * MAX_FRAME, "peak {} bytes", stats.peak);
}

/// Cut anywhere, the worst state is refused within the bound too: a list whose claimed
/// length the rest cannot hold grows as entries arrive, never past its limit.
#[test]
fn truncated_worst_states_stay_within_twice_the_frame_cap() {
    let body = frame_body(&Frame::State(worst_state()));
    let mut worst = 0;
    for k in 1..64 {
        let cut = body.len() * k / 64;
        let (r, stats) = measure(|| decode_frame_body(&body[..cut]).map(|_| ()));
        assert!(r.is_err(), "cut at {cut}");
        assert!(
            stats.peak <= 2 * MAX_FRAME,
            "cut at {cut}: peak {}",
            stats.peak
        );
        worst = worst.max(stats.peak);
    }
    println!(
        "truncated worst states: peak {worst} bytes ({:.2} x MAX_FRAME)",
        ratio(worst)
    );
}

// Datagrams and operator requests: the same rules under their own caps.

/// A heartbeat placing the most tasks a datagram may name, with the longest ids.
fn widest_heartbeat() -> Datagram {
    Datagram::Heartbeat(Heartbeat {
        node: nid(&"a".repeat(63)),
        incarnation: Incarnation(1),
        seq: Seq(1),
        sent: WallMicros(1),
        interval_ms: 100,
        echo: None,
        term: Term(1),
        primary: Some(nid(&"b".repeat(63))),
        lease_ack: None,
        lease_ms: 300,
        promise_ms: 450,
        freeze: FreezeFlag::default(),
        health: HealthBits::default(),
        load: LoadFigures::default(),
        digest: StateDigest(0),
        config: ConfigStamp::NONE,
        tasks: Some(TaskGrant {
            promise_ms: 450,
            tasks: vec![TaskTag(7); limits::TASKS.max],
        }),
    })
}

#[test]
fn datagrams_hold_their_limits() {
    let at = encode_datagram(&widest_heartbeat()).expect("TASKS tags fit a datagram");
    let (r, stats) = measure(|| decode_datagram(&at).map(|_| ()));
    assert_eq!(r, Ok(()));
    println!(
        "widest heartbeat: {} bytes, peak {} bytes",
        at.len(),
        stats.peak
    );
    assert!(stats.peak <= 2 * MAX_DATAGRAM, "peak {}", stats.peak);

    // The grant is the heartbeat's last field: [Some][promise: 4][count][tags]. One tag
    // more: the next count (a varint of the same length), and four bytes follow.
    let (mut count, mut next) = (Vec::new(), Vec::new());
    varint(limits::TASKS.max as u64, &mut count);
    varint(limits::TASKS.max as u64 + 1, &mut next);
    assert_eq!(count.len(), next.len());
    let mut over = at.clone();
    let count_at = over.len() - 4 * limits::TASKS.max - count.len();
    assert_eq!(&over[count_at..count_at + count.len()], &count[..]);
    over[count_at..count_at + count.len()].copy_from_slice(&next);
    over.extend([7, 0, 0, 0]);
    assert_eq!(
        decode_datagram(&over),
        Err(DecodeError::OverLimit {
            field: "TaskGrant.tasks",
            limit: "TASKS",
            found: Some(limits::TASKS.max + 1),
            max: limits::TASKS.max,
            unit: Unit::Entries,
        })
    );

    // A member change forwarded to the primary: [version][MemberRequest = 8][req: 8]
    // [Add = 0][node][addr][voter].
    let request = |addr_len: usize| {
        let mut b = vec![PROTOCOL_VERSION, 8];
        b.extend([0; 8]);
        b.push(0);
        b.extend([2, b'n', b'4']);
        varint(addr_len as u64, &mut b);
        b.extend(text(addr_len).bytes());
        b.push(1);
        b
    };
    assert!(decode_datagram(&request(limits::ADDR.max)).is_ok());
    assert!(matches!(
        decode_datagram(&request(limits::ADDR.max + 1)),
        Err(DecodeError::OverLimit {
            field: "MemberChange::Add.addr",
            limit: "ADDR",
            ..
        })
    ));

    // A goodbye from a 64-byte "node id": refused on its length, before it is copied.
    let mut bye = vec![PROTOCOL_VERSION, 1, 64];
    bye.extend(text(64).bytes());
    bye.extend([0; 8]);
    assert!(matches!(
        decode_datagram(&bye),
        Err(DecodeError::OverLimit {
            field: "a node id",
            limit: "NODE_ID",
            found: Some(64),
            ..
        })
    ));
}

#[test]
fn ctl_requests_hold_their_limits() {
    use quorate_protocol::ctl::{CtlCommand, CtlRequest, MAX_REQUEST_BYTES, decode_request};
    // [version][Command = 2][Drain = 0][node: Some][reason][for_secs: None]
    let drain = |node_len: usize, reason_len: usize| {
        let mut b = vec![PROTOCOL_VERSION, 2, 0, 1];
        varint(node_len as u64, &mut b);
        b.extend(text(node_len).bytes());
        varint(reason_len as u64, &mut b);
        b.extend(text(reason_len).bytes());
        b.push(0);
        b
    };
    let body = drain(limits::NAME.max, limits::OPERATOR_REASON.max);
    let (r, stats) = measure(|| decode_request(&body));
    assert_eq!(
        r,
        Ok(CtlRequest::Command(CtlCommand::Drain {
            node: Some(text(limits::NAME.max)),
            reason: text(limits::OPERATOR_REASON.max),
            for_secs: None,
        }))
    );
    assert!(stats.peak <= 2 * MAX_REQUEST_BYTES, "peak {}", stats.peak);
    assert!(matches!(
        decode_request(&drain(limits::NAME.max + 1, 1)),
        Err(DecodeError::OverLimit {
            field: "CtlCommand::Drain.node",
            limit: "NAME",
            ..
        })
    ));
    assert!(matches!(
        decode_request(&drain(1, limits::OPERATOR_REASON.max + 1)),
        Err(DecodeError::OverLimit {
            field: "CtlCommand::Drain.reason",
            limit: "OPERATOR_REASON",
            ..
        })
    ));
    // A request is at most MAX_REQUEST_BYTES, whoever reads it.
    let big = vec![PROTOCOL_VERSION; MAX_REQUEST_BYTES + 1];
    assert_eq!(
        decode_request(&big),
        Err(DecodeError::TooLarge {
            len: MAX_REQUEST_BYTES + 1,
            cap: MAX_REQUEST_BYTES
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes as a datagram or an operator request: no panic, and never more than
    /// twice the cap in memory.
    #[test]
    fn datagrams_and_requests_stay_within_twice_their_caps(bytes in steered_bytes(2048)) {
        use quorate_protocol::ctl::{MAX_REQUEST_BYTES, decode_request, encode_request};
        let (_, stats) = measure(|| decode_datagram(&bytes));
        prop_assert!(stats.peak <= 2 * MAX_DATAGRAM, "peak {}", stats.peak);
        let (r, stats) = measure(|| decode_request(&bytes));
        prop_assert!(stats.peak <= 2 * MAX_REQUEST_BYTES, "peak {}", stats.peak);
        if let Ok(req) = r {
            let again = encode_request(&req).expect("a decoded request re-encodes");
            prop_assert_eq!(decode_request(&again[FRAME_HEADER_LEN..]), Ok(req));
        }
    }
}

/// Bring the limits table of docs/protocol.md and `limits::ALL` into agreement: every
/// limit has a row with its name and number.
#[test]
fn docs_list_every_limit() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
        .expect("docs/protocol.md");
    let section = doc.split("## Limits").nth(1).expect("a Limits section");
    for l in limits::ALL {
        let row = section
            .lines()
            .find(|line| line.starts_with('|') && line.contains(&format!("`{}`", l.name)))
            .unwrap_or_else(|| panic!("docs/protocol.md: no row for {}", l.name));
        assert!(
            row.contains(&format!("| {} ", l.max))
                || row.contains(&format!("| {} {}", l.max, l.unit)),
            "docs/protocol.md: the row of {} does not say {} {}: {row}",
            l.name,
            l.max,
            l.unit
        );
    }
}
