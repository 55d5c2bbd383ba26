//! The decoder over hand-built messages, and over arbitrary and cut-short bytes.

use proptest::prelude::*;

use super::*;

/// Builds messages the way pgoutput writes them.
#[derive(Default)]
struct Builder(Vec<u8>);

impl Builder {
    fn tag(tag: u8) -> Builder {
        Builder(vec![tag])
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    fn text(self, s: &str) -> Self {
        let mut b = self.u8(b't').u32(s.len() as u32);
        b.0.extend_from_slice(s.as_bytes());
        b
    }
}

fn relation_bytes() -> Vec<u8> {
    Builder::tag(b'R')
        .u32(16384)
        .str("public")
        .str("orders")
        .u8(b'd')
        .i16(2)
        .u8(1)
        .str("id")
        .u32(23)
        .i32(-1)
        .u8(0)
        .str("amount")
        .u32(1700)
        .i32((12 << 16 | 2) + 4)
        .0
}

fn every_kind() -> Vec<Vec<u8>> {
    vec![
        Builder::tag(b'B').u64(0x16D_30F8).i64(7).u32(691).0,
        Builder::tag(b'C').u8(0).u64(10).u64(20).i64(7).0,
        Builder::tag(b'O').u64(5).str("node1").0,
        relation_bytes(),
        Builder::tag(b'Y').u32(70000).str("public").str("mood").0,
        Builder::tag(b'I')
            .u32(16384)
            .u8(b'N')
            .i16(2)
            .text("1")
            .u8(b'n')
            .0,
        Builder::tag(b'U')
            .u32(16384)
            .u8(b'K')
            .i16(2)
            .text("1")
            .u8(b'n')
            .u8(b'N')
            .i16(2)
            .text("2")
            .u8(b'u')
            .0,
        Builder::tag(b'U').u32(16384).u8(b'N').i16(1).text("x").0,
        Builder::tag(b'D').u32(16384).u8(b'O').i16(1).text("1").0,
        Builder::tag(b'T').u32(2).u8(1).u32(1).u32(2).0,
        Builder::tag(b'M')
            .u8(1)
            .u64(9)
            .str("p")
            .u32(2)
            .u8(b'h')
            .u8(b'i')
            .0,
    ]
}

#[test]
fn every_message_kind_decodes() {
    // Proves each pgoutput v1 message decodes into the fields pgoutput put there.
    let decoded: Vec<Message> = every_kind()
        .iter()
        .map(|m| decode_message(m).unwrap())
        .collect();
    assert_eq!(
        decoded[0],
        Message::Begin {
            final_lsn: 0x16D_30F8,
            commit_ts: 7,
            xid: 691
        }
    );
    assert_eq!(
        decoded[1],
        Message::Commit {
            flags: 0,
            commit_lsn: 10,
            end_lsn: 20,
            commit_ts: 7
        }
    );
    let Message::Relation(rel) = &decoded[3] else {
        panic!("{:?}", decoded[3])
    };
    assert_eq!(
        (rel.id, rel.namespace.as_str(), rel.name.as_str()),
        (16384, "public", "orders")
    );
    assert!(rel.columns[0].key && !rel.columns[1].key);
    assert_eq!(rel.columns[1].type_modifier, (12 << 16 | 2) + 4);
    assert_eq!(
        decoded[5],
        Message::Insert {
            relation: 16384,
            new: vec![Value::Text(b"1".to_vec()), Value::Null]
        }
    );
    assert_eq!(
        decoded[6],
        Message::Update {
            relation: 16384,
            old: Some(OldTuple::Key(vec![Value::Text(b"1".to_vec()), Value::Null])),
            new: vec![Value::Text(b"2".to_vec()), Value::Unchanged]
        }
    );
    assert!(matches!(&decoded[7], Message::Update { old: None, .. }));
    assert!(matches!(&decoded[8], Message::Delete { old: OldTuple::Full(v), .. } if v.len() == 1));
    assert_eq!(
        decoded[9],
        Message::Truncate {
            options: 1,
            relations: vec![1, 2]
        }
    );
    assert!(
        matches!(&decoded[10], Message::Message { transactional: true, content, .. } if content == b"hi")
    );
}

#[test]
fn every_cut_short_message_is_an_error() {
    // Proves a message missing any number of trailing bytes is refused, not misread.
    for message in every_kind() {
        for len in 0..message.len() {
            assert!(
                decode_message(&message[..len]).is_err(),
                "{:?} cut to {len} bytes decoded",
                message
            );
        }
    }
}

#[test]
fn trailing_bytes_and_bad_markers_are_errors() {
    // Proves leftovers, unknown tags, bad tuple markers and huge claimed lengths are refused.
    let mut long = relation_bytes();
    long.push(0);
    assert!(matches!(
        decode_message(&long),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(
        decode_message(b"Zxxxx")
            .unwrap_err()
            .to_string()
            .contains("unknown message tag")
    );
    let bad_marker = Builder::tag(b'I').u32(1).u8(b'X').i16(0).0;
    assert!(decode_message(&bad_marker).is_err());
    let bad_kind = Builder::tag(b'I').u32(1).u8(b'N').i16(1).u8(b'q').0;
    assert!(decode_message(&bad_kind).is_err());
    let huge = Builder::tag(b'I')
        .u32(1)
        .u8(b'N')
        .i16(1)
        .u8(b't')
        .u32(u32::MAX)
        .0;
    assert!(matches!(
        decode_message(&huge),
        Err(DecodeError::Truncated { .. })
    ));
    let negative = Builder::tag(b'I').u32(1).u8(b'N').i16(-1).0;
    assert!(decode_message(&negative).is_err());
    let many_ids = Builder::tag(b'T').u32(u32::MAX).u8(0).0;
    assert!(matches!(
        decode_message(&many_ids),
        Err(DecodeError::Truncated { .. })
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Proves the decoder returns (Ok or Err) on any input, without panicking.
        let _ = decode_message(&bytes);
    }

    #[test]
    fn tuples_round_trip(values in proptest::collection::vec(
        prop_oneof![
            Just(Value::Null),
            Just(Value::Unchanged),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Binary),
        ], 0..20)) {
        // Proves any tuple pgoutput can write decodes back to the same values.
        let mut b = Builder::tag(b'I').u32(42).u8(b'N').i16(values.len() as i16);
        for v in &values {
            b = match v {
                Value::Null => b.u8(b'n'),
                Value::Unchanged => b.u8(b'u'),
                Value::Text(t) | Value::Binary(t) => {
                    let kind = if matches!(v, Value::Text(_)) { b't' } else { b'b' };
                    let mut b = b.u8(kind).u32(t.len() as u32);
                    b.0.extend_from_slice(t);
                    b
                }
            };
        }
        let decoded = decode_message(&b.0).unwrap();
        prop_assert_eq!(decoded, Message::Insert { relation: 42, new: values });
    }
}
