//! A sink's operations between commits, bounded by a row count.
//!
//! Writes are held until the commit so that a commit that fails for an outside reason
//! (the connection dropped) can simply be tried again with the same operations. When the
//! buffer passes its bound the sink writes it ahead into an open transaction and marks the
//! buffer *spilled*: a failure after that cannot be retried in place, and the sink says so
//! (the runtime reopens it and resumes from the stored offsets).

use crate::batch::SinkOp;

/// Buffered operations in offset order.
#[derive(Debug, Default)]
pub struct OpBuffer {
    ops: Vec<SinkOp>,
    rows: usize,
    /// The bound, in rows.
    rows_max: usize,
    /// Some operations of this commit were already written into the open transaction.
    pub spilled: bool,
}

impl OpBuffer {
    /// An empty buffer holding up to `rows_max` rows.
    pub fn new(rows_max: usize) -> OpBuffer {
        OpBuffer {
            ops: Vec::new(),
            rows: 0,
            rows_max: rows_max.max(1),
            spilled: false,
        }
    }

    /// Adds operations; returns whether the buffer is now over its bound.
    pub fn push(&mut self, ops: Vec<SinkOp>) -> bool {
        for op in ops {
            let n = op.rows().num_rows();
            if n > 0 {
                self.rows += n;
                self.ops.push(op);
            }
        }
        self.rows >= self.rows_max
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[SinkOp] {
        &self.ops
    }

    /// Forgets the operations (written, or to be read again after a reopen).
    pub fn clear(&mut self) {
        self.ops.clear();
        self.rows = 0;
    }

    /// Forgets everything, spill included.
    pub fn reset(&mut self) {
        self.clear();
        self.spilled = false;
    }
}
