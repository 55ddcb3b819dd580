//! Identifier validation: node ids are DNS labels, cluster names a little wider.

use quorate_protocol::{
    ClusterName, Datagram, DecodeError, Goodbye, IdError, Incarnation, NodeId, Seq, Term,
    TransferRequest, VoteRequest, decode_datagram, encode_datagram,
};

#[test]
fn node_id_accepts_dns_labels() {
    for s in ["n1", "a", "7", "db-01", "Node-A", "0-0", &"a".repeat(63)] {
        let id = NodeId::new(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(id.as_str(), s);
        assert_eq!(id.to_string(), s);
        assert_eq!(s.parse::<NodeId>(), Ok(id.clone()));
        assert_eq!(NodeId::try_from(s.to_owned()), Ok(id.clone()));
        assert_eq!(String::from(id), s);
    }
}

#[test]
fn node_id_rejects_empty() {
    assert_eq!(NodeId::new(""), Err(IdError::Empty));
    assert_eq!("".parse::<NodeId>(), Err(IdError::Empty));
}

#[test]
fn node_id_rejects_too_long() {
    assert_eq!(
        NodeId::new("a".repeat(64)),
        Err(IdError::TooLong { len: 64, max: 63 })
    );
    assert_eq!(
        NodeId::new("a".repeat(1000)),
        Err(IdError::TooLong { len: 1000, max: 63 })
    );
}

#[test]
fn node_id_rejects_bad_chars() {
    for (s, c) in [
        ("n_1", '_'),
        ("n.1", '.'),
        ("n 1", ' '),
        ("n1/", '/'),
        ("nöde", 'ö'),
        ("n\0", '\0'),
        ("a:b", ':'),
    ] {
        assert_eq!(NodeId::new(s), Err(IdError::BadChar(c)), "{s:?}");
    }
}

#[test]
fn node_id_rejects_bad_start() {
    assert_eq!(NodeId::new("-n1"), Err(IdError::BadStart));
    assert_eq!(NodeId::new("-"), Err(IdError::BadStart));
}

/// A bad character is reported before a bad start: the message names the character.
#[test]
fn node_id_bad_char_wins_over_bad_start() {
    assert_eq!(NodeId::new("_n1"), Err(IdError::BadChar('_')));
}

#[test]
fn cluster_name_accepts_dots_and_underscores() {
    for s in ["prod", "prod_db.eu-1", "a.b.c", "x_", "9", &"c".repeat(63)] {
        let name = ClusterName::new(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(name.as_str(), s);
        assert_eq!(name.to_string(), s);
        assert_eq!(ClusterName::try_from(s.to_owned()), Ok(name.clone()));
        assert_eq!(String::from(name), s);
    }
}

#[test]
fn cluster_name_rejects_invalid() {
    assert_eq!(ClusterName::new(""), Err(IdError::Empty));
    assert_eq!(
        ClusterName::new("c".repeat(64)),
        Err(IdError::TooLong { len: 64, max: 63 })
    );
    assert_eq!(ClusterName::new("a b"), Err(IdError::BadChar(' ')));
    assert_eq!(ClusterName::new("a/b"), Err(IdError::BadChar('/')));
    for s in ["-a", "_a", ".a", "."] {
        assert_eq!(ClusterName::new(s), Err(IdError::BadStart), "{s:?}");
    }
}

#[test]
fn errors_read_well() {
    assert_eq!(IdError::Empty.to_string(), "must not be empty");
    assert_eq!(
        IdError::TooLong { len: 64, max: 63 }.to_string(),
        "is 64 characters long; at most 63 are allowed"
    );
    assert_eq!(
        IdError::BadChar('_').to_string(),
        "contains '_'; only ASCII letters, digits and '-' are allowed"
    );
}

/// Ids are validated when decoded too: a peer cannot smuggle in an invalid one.
#[test]
fn decoding_validates_ids() {
    let good = Datagram::Goodbye(Goodbye {
        node: NodeId::new("nx").expect("valid"),
        incarnation: Incarnation(1),
    });
    let mut bytes = encode_datagram(&good).expect("encode");
    assert_eq!(decode_datagram(&bytes), Ok(good));
    // [version][variant][len = 2]['n']['x']...: turn "nx" into "-x".
    assert_eq!(&bytes[..5], &[1, 1, 2, b'n', b'x']);
    bytes[3] = b'-';
    assert!(
        matches!(
            decode_datagram(&bytes),
            Err(DecodeError::Invalid {
                field: "a node id",
                ..
            })
        ),
        "{:?}",
        decode_datagram(&bytes)
    );
    // And an empty id.
    let empty = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    assert!(matches!(
        decode_datagram(&empty),
        Err(DecodeError::Invalid {
            field: "a node id",
            ..
        })
    ));
}

/// The same for the ids inside election datagrams, including optional ones.
#[test]
fn decoding_validates_election_ids() {
    let nx = || NodeId::new("nx").expect("valid");
    let vote = Datagram::Vote(VoteRequest {
        term: Term(0),
        candidate: nx(),
        transfer_from: Some(nx()),
        req: Seq(0),
        lease_ms: 300,
        config: quorate_protocol::ConfigStamp::NONE,
    });
    let bytes = encode_datagram(&vote).expect("encode");
    assert_eq!(decode_datagram(&bytes), Ok(vote));
    // [version][variant 4][term: 8][len = 2]['n']['x'][Some][len = 2]['n']['x'][req: 8]
    // [lease_ms: 4][config: 16]
    assert_eq!(&bytes[..2], &[1, 4]);
    assert_eq!(&bytes[10..18], &[2, b'n', b'x', 1, 2, b'n', b'x', 0]);
    for at in [11, 15] {
        let mut bad = bytes.clone();
        bad[at] = b'_';
        assert!(
            matches!(
                decode_datagram(&bad),
                Err(DecodeError::Invalid {
                    field: "a node id",
                    ..
                })
            ),
            "byte {at}: {:?}",
            decode_datagram(&bad)
        );
    }

    let transfer = Datagram::TransferRequest(TransferRequest { to: Some(nx()) });
    let mut bytes = encode_datagram(&transfer).expect("encode");
    assert_eq!(bytes, [1, 7, 1, 2, b'n', b'x']);
    assert_eq!(decode_datagram(&bytes), Ok(transfer));
    bytes[4] = b'-';
    assert!(matches!(
        decode_datagram(&bytes),
        Err(DecodeError::Invalid {
            field: "a node id",
            ..
        })
    ));
}
