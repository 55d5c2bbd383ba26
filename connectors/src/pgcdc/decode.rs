//! The pgoutput decoder: one logical replication message (protocol version 1) from the
//! bytes a `pg_logical_slot_peek_binary_changes` row holds, to a [`Message`].
//!
//! Every length is checked against what is left before it is used, and a message must be
//! consumed exactly: a truncated message, a length past the end, an unknown tag or bytes
//! left over are a [`DecodeError`], never a panic or an out-of-bounds read. Nothing is
//! allocated from a length the input claims until that many bytes are known to be there.
//!
//! Wire layout (big-endian integers, strings NUL-terminated):
//!
//! ```text
//! Begin     'B' final_lsn:u64 commit_ts:i64 xid:u32
//! Commit    'C' flags:u8 commit_lsn:u64 end_lsn:u64 commit_ts:i64
//! Origin    'O' lsn:u64 name:str
//! Relation  'R' id:u32 namespace:str name:str identity:u8 ncols:i16
//!               { flags:u8 name:str type_oid:u32 type_modifier:i32 } * ncols
//! Type      'Y' oid:u32 namespace:str name:str
//! Insert    'I' relation:u32 'N' tuple
//! Update    'U' relation:u32 [ 'K' tuple | 'O' tuple ] 'N' tuple
//! Delete    'D' relation:u32 ( 'K' | 'O' ) tuple
//! Truncate  'T' nrels:u32 options:u8 relation:u32 * nrels
//! Message   'M' flags:u8 lsn:u64 prefix:str len:u32 content:[len]
//! tuple     ncols:i16 { 'n' | 'u' | 't' len:u32 bytes:[len] | 'b' len:u32 bytes:[len] } * ncols
//! ```
//!
//! Timestamps are microseconds since 2000-01-01 00:00 UTC, as PostgreSQL sends them.

/// A pgoutput message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A transaction starts.
    Begin {
        /// The LSN of the transaction's commit record.
        final_lsn: u64,
        /// Commit time, microseconds since 2000-01-01 UTC.
        commit_ts: i64,
        /// The transaction id.
        xid: u32,
    },
    /// The transaction ends.
    Commit {
        /// Flags (unused by PostgreSQL so far).
        flags: u8,
        /// The LSN of the commit record.
        commit_lsn: u64,
        /// The LSN just past the commit record: where decoding resumes after it.
        end_lsn: u64,
        /// Commit time, microseconds since 2000-01-01 UTC.
        commit_ts: i64,
    },
    /// The transaction came from another node (replication origin).
    Origin {
        /// The commit LSN on the origin.
        lsn: u64,
        /// The origin's name.
        name: String,
    },
    /// A table's layout, sent before its first change in a session and after it changes.
    Relation(Relation),
    /// A non-built-in type's name.
    Type {
        /// The type's OID.
        oid: u32,
        /// Its schema.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A row was inserted.
    Insert {
        /// The relation's id (see [`Relation::id`]).
        relation: u32,
        /// The new row.
        new: Vec<Value>,
    },
    /// A row was updated.
    Update {
        /// The relation's id.
        relation: u32,
        /// The old key ([`OldTuple::Key`], when a key column changed) or the whole old
        /// row ([`OldTuple::Full`], with `REPLICA IDENTITY FULL`).
        old: Option<OldTuple>,
        /// The new row.
        new: Vec<Value>,
    },
    /// A row was deleted.
    Delete {
        /// The relation's id.
        relation: u32,
        /// The old key or the whole old row.
        old: OldTuple,
    },
    /// Tables were truncated.
    Truncate {
        /// `1`: CASCADE, `2`: RESTART IDENTITY.
        options: u8,
        /// The relations' ids.
        relations: Vec<u32>,
    },
    /// A message written with `pg_logical_emit_message`.
    Message {
        /// Whether it was written inside a transaction.
        transactional: bool,
        /// Its LSN.
        lsn: u64,
        /// Its prefix.
        prefix: String,
        /// Its content.
        content: Vec<u8>,
    },
}

/// A table's layout as pgoutput describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// The table's OID: how changes refer to it.
    pub id: u32,
    /// Its schema (`public`).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `REPLICA IDENTITY`: `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// The replicated columns, in order.
    pub columns: Vec<RelationColumn>,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key sent with deletes).
    pub key: bool,
    /// Its name.
    pub name: String,
    /// Its type's OID.
    pub type_oid: u32,
    /// Its type modifier (`atttypmod`: a numeric's precision and scale), `-1` for none.
    pub type_modifier: i32,
}

/// The old values sent with an update or delete.
#[derive(Debug, Clone, PartialEq)]
pub enum OldTuple {
    /// Only the replica identity's columns carry values (the others are null).
    Key(Vec<Value>),
    /// The whole old row (`REPLICA IDENTITY FULL`).
    Full(Vec<Value>),
}

impl OldTuple {
    /// The values, whichever kind.
    pub fn values(&self) -> &[Value] {
        match self {
            OldTuple::Key(values) | OldTuple::Full(values) => values,
        }
    }
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A TOASTed value the change did not touch: not sent.
    Unchanged,
    /// The value in the type's text format.
    Text(Vec<u8>),
    /// The value in the type's binary format (only with the `binary` option).
    Binary(Vec<u8>),
}

/// Why bytes are not a pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message ends before a field it announces.
    #[error(
        "pgoutput message truncated: {field} needs {needed} bytes at offset {offset}, \
         only {left} left"
    )]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Its offset in the message.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there were.
        left: usize,
    },
    /// A field holds something pgoutput never sends.
    #[error("malformed pgoutput message at offset {offset}: {reason}")]
    Malformed {
        /// The field's offset in the message.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Decodes one pgoutput message (protocol version 1, text or binary values).
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes, offset: 0 };
    let tag = r.u8("message tag")?;
    let message = match tag {
        b'B' => Message::Begin {
            final_lsn: r.u64("final_lsn")?,
            commit_ts: r.i64("commit timestamp")?,
            xid: r.u32("xid")?,
        },
        b'C' => Message::Commit {
            flags: r.u8("commit flags")?,
            commit_lsn: r.u64("commit_lsn")?,
            end_lsn: r.u64("end_lsn")?,
            commit_ts: r.i64("commit timestamp")?,
        },
        b'O' => Message::Origin {
            lsn: r.u64("origin lsn")?,
            name: r.string("origin name")?,
        },
        b'R' => Message::Relation(relation(&mut r)?),
        b'Y' => Message::Type {
            oid: r.u32("type oid")?,
            namespace: r.string("type namespace")?,
            name: r.string("type name")?,
        },
        b'I' => {
            let relation = r.u32("relation id")?;
            r.expect(b'N', "new tuple marker 'N'")?;
            Message::Insert {
                relation,
                new: tuple(&mut r)?,
            }
        }
        b'U' => {
            let relation = r.u32("relation id")?;
            let at = r.offset;
            let old = match r.u8("tuple marker")? {
                b'K' => Some(OldTuple::Key(tuple(&mut r)?)),
                b'O' => Some(OldTuple::Full(tuple(&mut r)?)),
                b'N' => None,
                other => return Err(malformed(at, format!("tuple marker {other:#04x}"))),
            };
            if old.is_some() {
                r.expect(b'N', "new tuple marker 'N'")?;
            }
            Message::Update {
                relation,
                old,
                new: tuple(&mut r)?,
            }
        }
        b'D' => {
            let relation = r.u32("relation id")?;
            let at = r.offset;
            let old = match r.u8("tuple marker")? {
                b'K' => OldTuple::Key(tuple(&mut r)?),
                b'O' => OldTuple::Full(tuple(&mut r)?),
                other => return Err(malformed(at, format!("delete tuple marker {other:#04x}"))),
            };
            Message::Delete { relation, old }
        }
        b'T' => {
            let count = r.u32("relation count")? as usize;
            let options = r.u8("truncate options")?;
            // Four bytes per id: check they are all there before allocating for them.
            r.need("relation ids", count.saturating_mul(4))?;
            let mut relations = Vec::with_capacity(count);
            for _ in 0..count {
                relations.push(r.u32("relation id")?);
            }
            Message::Truncate { options, relations }
        }
        b'M' => {
            let flags = r.u8("message flags")?;
            let lsn = r.u64("message lsn")?;
            let prefix = r.string("message prefix")?;
            let len = r.u32("message length")? as usize;
            Message::Message {
                transactional: flags & 1 == 1,
                lsn,
                prefix,
                content: r.take("message content", len)?.to_vec(),
            }
        }
        other => {
            return Err(malformed(
                0,
                format!("unknown message tag {other:#04x} (not pgoutput protocol 1)"),
            ));
        }
    };
    if r.offset != bytes.len() {
        return Err(malformed(
            r.offset,
            format!(
                "{} bytes left over after the message",
                bytes.len() - r.offset
            ),
        ));
    }
    Ok(message)
}

fn relation(r: &mut Reader<'_>) -> Result<Relation, DecodeError> {
    let id = r.u32("relation id")?;
    let namespace = r.string("relation namespace")?;
    let name = r.string("relation name")?;
    let replica_identity = r.u8("replica identity")?;
    let count = column_count(r)?;
    // A column takes at least 10 bytes (flags, empty name, oid, typmod).
    r.need("relation columns", count.saturating_mul(10))?;
    let mut columns = Vec::with_capacity(count);
    for _ in 0..count {
        columns.push(RelationColumn {
            key: r.u8("column flags")? & 1 == 1,
            name: r.string("column name")?,
            type_oid: r.u32("column type oid")?,
            type_modifier: r.i32("column type modifier")?,
        });
    }
    Ok(Relation {
        id,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn tuple(r: &mut Reader<'_>) -> Result<Vec<Value>, DecodeError> {
    let count = column_count(r)?;
    // A value takes at least its kind byte.
    r.need("tuple values", count)?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.offset;
        let value = match r.u8("value kind")? {
            b'n' => Value::Null,
            b'u' => Value::Unchanged,
            b't' => {
                let len = r.u32("text value length")? as usize;
                Value::Text(r.take("text value", len)?.to_vec())
            }
            b'b' => {
                let len = r.u32("binary value length")? as usize;
                Value::Binary(r.take("binary value", len)?.to_vec())
            }
            other => return Err(malformed(at, format!("value kind {other:#04x}"))),
        };
        values.push(value);
    }
    Ok(values)
}

fn column_count(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let at = r.offset;
    let count = r.i16("column count")?;
    usize::try_from(count).map_err(|_| malformed(at, format!("negative column count {count}")))
}

fn malformed(offset: usize, reason: String) -> DecodeError {
    DecodeError::Malformed { offset, reason }
}

/// A cursor over a message that refuses to read past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    fn need(&self, field: &'static str, needed: usize) -> Result<(), DecodeError> {
        if needed > self.left() {
            return Err(DecodeError::Truncated {
                field,
                offset: self.offset,
                needed,
                left: self.left(),
            });
        }
        Ok(())
    }

    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
        self.need(field, len)?;
        let end = self.offset + len;
        let out = self
            .bytes
            .get(self.offset..end)
            .ok_or(DecodeError::Truncated {
                field,
                offset: self.offset,
                needed: len,
                left: self.left(),
            })?;
        self.offset = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn expect(&mut self, want: u8, field: &'static str) -> Result<(), DecodeError> {
        let at = self.offset;
        let got = self.u8(field)?;
        if got != want {
            return Err(malformed(at, format!("expected {field}, found {got:#04x}")));
        }
        Ok(())
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return Err(DecodeError::Truncated {
                field,
                offset: self.offset,
                needed: rest.len() + 1,
                left: rest.len(),
            });
        };
        let at = self.offset;
        let text = self.take(field, len)?;
        let text = std::str::from_utf8(text)
            .map_err(|e| malformed(at, format!("{field} is not UTF-8: {e}")))?
            .to_string();
        self.offset += 1; // the NUL, known to be there
        Ok(text)
    }
}

#[cfg(test)]
mod tests;
