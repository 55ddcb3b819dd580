//! Golden vectors: the exact bytes of fixed sample messages, checked in under
//! `tests/golden/*.bin`. A failure here means the wire format changed, which is a
//! protocol bump (`PROTOCOL_VERSION`), not a test to re-bless casually.
//!
//! Re-bless (rewrite the files from the current encoder) with
//! `QUORATE_BLESS=1 cargo test -p quorate-protocol --test golden`, then review the diff.
//!
//! Heartbeat size: a steady-cluster heartbeat (node id `"n1"`, primary `Some("n1")`,
//! echo `Some`, lease ack `Some`, no task grant) is **127 bytes** on the wire, version byte included,
//! whatever its sequence number, timestamps, interval, term, freeze flag, health or load
//! figures: every counter is a fixed-width little-endian integer. Only the lengths of the node ids
//! (sender and believed primary), the four `Option` tags and a task grant (5 bytes plus 4
//! per task placed on the receiver) change it. `MAX_DATAGRAM`
//! is 1100.

use std::path::PathBuf;

use quorate_protocol::{
    ClusterName, ConfigStamp, Datagram, Echo, Frame, FreezeFlag, Goodbye, HealthBits, Heartbeat,
    Hello, Incarnation, LoadFigures, MAX_DATAGRAM, MemberChange, MemberReply, MemberRequest,
    MemberSlot, Membership, Mode, NodeId, NodeState, Seq, StateDigest, TaskGrant, TaskTag, Term,
    TimeoutNow, TransferRequest, VoteReply, VoteRequest, WallMicros, decode_datagram,
    decode_frame_body, encode_datagram, encode_frame, frame_body_len,
};

/// The size pinned in this file's doc comment.
const STEADY_HEARTBEAT_LEN: usize = 127;

fn id(s: &str) -> NodeId {
    NodeId::new(s).expect("valid node id")
}

/// A steady-cluster heartbeat. Values use distinct byte patterns so that the golden
/// file shows field order and endianness at a glance.
fn heartbeat() -> Heartbeat {
    Heartbeat {
        node: id("n1"),
        incarnation: Incarnation(0x0102_0304_0506_0708),
        seq: Seq(0x1112_1314_1516_1718),
        sent: WallMicros(0x2122_2324_2526_2728),
        interval_ms: 0x3132,
        echo: Some(Echo {
            peer_sent: WallMicros(0x4142_4344_4546_4748),
            received: WallMicros(0x5152_5354_5556_5758),
            held_us: 0x6162_6364,
        }),
        term: Term(0x7172_7374_7576_7778),
        primary: Some(id("n1")),
        lease_ack: Some(Seq(0x8182_8384_8586_8788)),
        lease_ms: 0xc1c2_c3c4,
        promise_ms: 0xd1d2_d3d4,
        freeze: FreezeFlag {
            frozen: true,
            version: 0x9192_9394_9596_9798,
        },
        health: HealthBits(HealthBits::READY | HealthBits::HEALTHY | HealthBits::ELIGIBLE),
        load: LoadFigures {
            cpu_permille: 0xa1a2,
            mem_permille: 0xa3a4,
            load1_centi: 0xa5a6_a7a8,
        },
        digest: StateDigest(0xb1b2_b3b4_b5b6_b7b8),
        config: ConfigStamp {
            term: Term(0x0e),
            index: 0x0f,
        },
        tasks: None,
    }
}

/// A heartbeat that places two singleton tasks on its receiver.
fn heartbeat_task_grant() -> Heartbeat {
    Heartbeat {
        tasks: Some(TaskGrant {
            promise_ms: 0xe1e2_e3e4,
            tasks: vec![TaskTag(0xf1f2_f3f4), TaskTag::of("nightly-report")],
        }),
        ..heartbeat()
    }
}

/// A heartbeat from a node that has heard nothing yet: no echo, no primary, no ack.
fn heartbeat_no_echo() -> Heartbeat {
    Heartbeat {
        node: id("node-2"),
        incarnation: Incarnation(7),
        seq: Seq(0),
        sent: WallMicros(1_700_000_000_000_000),
        interval_ms: 1000,
        echo: None,
        term: Term(0),
        primary: None,
        lease_ack: None,
        lease_ms: 300,
        promise_ms: 450,
        freeze: FreezeFlag::default(),
        health: HealthBits::default(),
        load: LoadFigures::default(),
        digest: StateDigest(0),
        config: ConfigStamp::NONE,
        tasks: None,
    }
}

fn goodbye() -> Goodbye {
    Goodbye {
        node: id("n3"),
        incarnation: Incarnation(0x0102_0304_0506_0708),
    }
}

/// Asked before campaigning; not a handover, so no `transfer_from`.
fn pre_vote() -> VoteRequest {
    VoteRequest {
        term: Term(0x0102_0304_0506_0708),
        candidate: id("n2"),
        transfer_from: None,
        req: Seq(0x1112_1314_1516_1718),
        lease_ms: 0x4142_4344,
        config: ConfigStamp {
            term: Term(0x5152_5354_5556_5758),
            index: 0x6162_6364_6566_6768,
        },
    }
}

fn pre_vote_reply() -> VoteReply {
    VoteReply {
        term: Term(0x0102_0304_0506_0708),
        voter: id("n3"),
        granted: false,
        req: Seq(0x1112_1314_1516_1718),
        promise_ms: 0x4142_4344,
    }
}

/// A campaign after a handover from `n1`.
fn vote() -> VoteRequest {
    VoteRequest {
        term: Term(0x2122_2324_2526_2728),
        candidate: id("n2"),
        transfer_from: Some(id("n1")),
        req: Seq(0x3132_3334_3536_3738),
        lease_ms: 0x4142_4344,
        config: ConfigStamp::NONE,
    }
}

fn vote_reply() -> VoteReply {
    VoteReply {
        term: Term(0x2122_2324_2526_2728),
        voter: id("n3"),
        granted: true,
        req: Seq(0x3132_3334_3536_3738),
        promise_ms: 0x4142_4344,
    }
}

fn timeout_now() -> TimeoutNow {
    TimeoutNow {
        term: Term(0x4142_4344_4546_4748),
        from: id("n1"),
    }
}

fn member_request() -> MemberRequest {
    MemberRequest {
        req: Seq(0x0102_0304_0506_0708),
        change: MemberChange::Replace {
            old: id("n3"),
            node: id("n4"),
            addr: "10.0.0.14:7700".to_owned(),
        },
    }
}

fn member_reply() -> MemberReply {
    MemberReply {
        req: Seq(0x0102_0304_0506_0708),
        accepted: false,
        message: "a change is still being committed".to_owned(),
    }
}

fn transfer_request() -> TransferRequest {
    TransferRequest { to: Some(id("n2")) }
}

fn hello() -> Hello {
    Hello {
        cluster: ClusterName::new("prod_db.eu-1").expect("valid cluster name"),
        node: id("db-01"),
        incarnation: Incarnation(0x0a0b_0c0d_0e0f_1011),
        advertise: "10.0.0.1:7946".to_owned(),
        mode: Mode::Member,
    }
}

fn node_state() -> NodeState {
    NodeState {
        node: id("db-02"),
        incarnation: Incarnation(42),
        advertise: "[fd00::2]:7946".to_owned(),
        mode: Mode::Witness,
        priority: 300,
        roles: vec!["postgres".to_owned(), "vip".to_owned()],
        agent_version: "0.1.0".to_owned(),
        app_version: Some("16.4".to_owned()),
        started: WallMicros(1_700_000_000_123_456),
        peers_hash: [0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67],
        members: Membership {
            origin: 0x0102_0304_0506_0708,
            stamp: ConfigStamp {
                term: Term(3),
                index: 5,
            },
            members: vec![
                MemberSlot {
                    addr: "[fd00::1]:7946".to_owned(),
                    node: None,
                    voter: true,
                },
                MemberSlot {
                    addr: "[fd00::2]:7946".to_owned(),
                    node: Some(id("db-02")),
                    voter: false,
                },
            ],
        },
        lists_disagree: true,
        checks: vec![quorate_protocol::CheckState {
            name: "app".into(),
            code: quorate_protocol::CheckCode::Hung,
            reason: "no answer in 2s".to_owned(),
        }],
        mounts: vec![quorate_protocol::MountState {
            path: "/mnt/repo".to_owned(),
            code: quorate_protocol::CheckCode::Ok,
            reason: String::new(),
            source: Some("nas:/export/repo".to_owned()),
            fstype: Some("nfs4".to_owned()),
            proof: Some("5f3a".to_owned()),
        }],
        config: vec![quorate_protocol::ConfigSetState {
            name: "app-config".to_owned(),
            files: vec![quorate_protocol::FileHash {
                path: "/etc/app/app.xml".to_owned(),
                hash: [7; 16],
            }],
            error: None,
        }],
        drain: Some(quorate_protocol::Drain {
            reason: "kernel update".to_owned(),
            by: "alice".to_owned(),
            since: WallMicros(1_700_000_000_000_000),
            until: None,
        }),
        drain_orders: vec![quorate_protocol::DrainOrder {
            target: id("db-03"),
            drain: None,
            version: 9,
        }],
        drift_acks: vec![quorate_protocol::DriftAck {
            name: "app-config".to_owned(),
            reason: "mid-upgrade".to_owned(),
            by: "bob".to_owned(),
            until: WallMicros(1_700_000_100_000_000),
        }],
        balancer: Some(quorate_protocol::BalancerSeen {
            state: "UP 2/3".to_owned(),
            balancer: Some("lb1".to_owned()),
            weight: Some("1/2".to_owned()),
            since: WallMicros(1_700_000_000_500_000),
        }),
        tasks: vec![quorate_protocol::TaskPlacement {
            name: "rebuild".to_owned(),
            holder: Some(id("db-02")),
        }],
        upgrade_allowed: true,
        suspects: vec![id("db-03")],
        cert_expires: Some(WallMicros(1_790_000_000_000_000)),
    }
}

fn datagram_samples() -> Vec<(&'static str, Datagram)> {
    vec![
        ("heartbeat", Datagram::Heartbeat(heartbeat())),
        (
            "heartbeat_no_echo",
            Datagram::Heartbeat(heartbeat_no_echo()),
        ),
        (
            "heartbeat_task_grant",
            Datagram::Heartbeat(heartbeat_task_grant()),
        ),
        ("goodbye", Datagram::Goodbye(goodbye())),
        ("pre_vote", Datagram::PreVote(pre_vote())),
        ("pre_vote_reply", Datagram::PreVoteReply(pre_vote_reply())),
        ("vote", Datagram::Vote(vote())),
        ("vote_reply", Datagram::VoteReply(vote_reply())),
        ("timeout_now", Datagram::TimeoutNow(timeout_now())),
        (
            "transfer_request",
            Datagram::TransferRequest(transfer_request()),
        ),
        ("member_request", Datagram::MemberRequest(member_request())),
        ("member_reply", Datagram::MemberReply(member_reply())),
    ]
}

fn frame_samples() -> Vec<(&'static str, Frame)> {
    vec![
        ("frame_hello", Frame::Hello(hello())),
        ("frame_state_request", Frame::StateRequest),
        ("frame_state", Frame::State(node_state())),
    ]
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("{name}.bin"))
}

fn blessing() -> bool {
    std::env::var_os("QUORATE_BLESS").is_some_and(|v| v == "1")
}

/// Compares `bytes` with the golden file `name`, or rewrites it when blessing.
/// Returns the checked-in bytes.
fn check_golden(name: &str, bytes: &[u8]) -> Vec<u8> {
    let path = golden_path(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, bytes).expect("write golden file");
        println!("blessed {} ({} bytes)", path.display(), bytes.len());
        return bytes.to_vec();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run with QUORATE_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        golden == bytes,
        "wire format of `{name}` changed: this is a protocol bump.\n golden:  {}\n encoded: {}\n\
         If intended, bump PROTOCOL_VERSION and re-bless with QUORATE_BLESS=1.",
        hex(&golden),
        hex(bytes),
    );
    golden
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn datagrams_match_golden_vectors() {
    for (name, msg) in datagram_samples() {
        let bytes = encode_datagram(&msg).expect("encode datagram");
        let golden = check_golden(name, &bytes);
        assert_eq!(
            decode_datagram(&golden),
            Ok(msg),
            "decoding golden `{name}`"
        );
    }
}

#[test]
fn frames_match_golden_vectors() {
    for (name, msg) in frame_samples() {
        let bytes = encode_frame(&msg).expect("encode frame");
        let golden = check_golden(name, &bytes);
        let (header, body) = golden.split_at(4);
        let len = frame_body_len(header.try_into().expect("4-byte header")).expect("header");
        assert_eq!(len, body.len(), "length prefix of golden `{name}`");
        assert_eq!(decode_frame_body(body), Ok(msg), "decoding golden `{name}`");
    }
}

/// The golden files and the sample lists agree: no stale vector is left behind.
#[test]
fn no_stray_golden_files() {
    if blessing() {
        return;
    }
    let dir = golden_path("x").parent().expect("golden dir").to_owned();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("read golden dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = datagram_samples()
        .iter()
        .map(|(n, _)| *n)
        .chain(frame_samples().iter().map(|(n, _)| *n))
        .map(|n| format!("{n}.bin"))
        .collect();
    expected.sort();
    assert_eq!(on_disk, expected);
}

/// Field values at the edges of their ranges, for the steady heartbeat.
fn steady_variants() -> Vec<Heartbeat> {
    let edges = [
        0u64,
        1,
        127,
        128,
        0xffff,
        1 << 32,
        1_700_000_000_000_000,
        u64::MAX,
    ];
    let mut out = Vec::new();
    for &v in &edges {
        let v32 = v as u32;
        let v16 = v as u16;
        let mut hb = heartbeat();
        hb.incarnation = Incarnation(v);
        hb.seq = Seq(v);
        hb.sent = WallMicros(v.rotate_left(7));
        hb.interval_ms = v16;
        hb.echo = Some(Echo {
            peer_sent: WallMicros(v),
            received: WallMicros(!v),
            held_us: v32,
        });
        hb.term = Term(v);
        hb.lease_ack = Some(Seq(v));
        hb.freeze = FreezeFlag {
            frozen: v % 2 == 1,
            version: v,
        };
        hb.health = HealthBits(v32);
        hb.load = LoadFigures {
            cpu_permille: v16,
            mem_permille: v16,
            load1_centi: v32,
        };
        hb.digest = StateDigest(v);
        out.push(hb);
    }
    out
}

#[test]
fn steady_heartbeat_has_constant_size() {
    let base = encode_datagram(&Datagram::Heartbeat(heartbeat())).expect("encode");
    println!(
        "steady heartbeat datagram: {} bytes (MAX_DATAGRAM {MAX_DATAGRAM})",
        base.len()
    );
    assert_eq!(
        base.len(),
        STEADY_HEARTBEAT_LEN,
        "update the doc comment too"
    );
    // Well under the cap: at most an eighth of it, election and member-set fields
    // included, so the steady rate costs little.
    assert!(base.len() * 8 <= MAX_DATAGRAM, "{} bytes", base.len());

    for hb in steady_variants() {
        let bytes = encode_datagram(&Datagram::Heartbeat(hb.clone())).expect("encode");
        assert_eq!(bytes.len(), STEADY_HEARTBEAT_LEN, "size changed for {hb:?}");
        assert_eq!(decode_datagram(&bytes), Ok(Datagram::Heartbeat(hb)));
    }
}

/// The worst case still fits: longest node ids for sender and primary, every option set.
#[test]
fn largest_heartbeat_fits() {
    let long = id(&"a".repeat(63));
    let mut hb = heartbeat();
    hb.node = long.clone();
    hb.primary = Some(long);
    let bytes = encode_datagram(&Datagram::Heartbeat(hb)).expect("encode");
    println!("largest heartbeat datagram: {} bytes", bytes.len());
    // 102 - 2 * 2 (ids "n1") + 2 * 63: a 63-byte id keeps a one-byte length prefix.
    assert_eq!(bytes.len(), STEADY_HEARTBEAT_LEN - 4 + 2 * 63);
    assert!(bytes.len() < MAX_DATAGRAM / 4);
}
