//! The source's position: where in the snapshot, or after which transaction of the slot,
//! to resume.
//!
//! ```json
//! {"phase":"snapshot","slot":"sluice_orders","slot_lsn":"0/1D9DC80","table":"public.orders","after":["17"]}
//! {"phase":"stream","slot":"sluice_orders","lsn":"0/1D9DE10"}
//! {"phase":"stream","slot":"sluice_orders","lsn":"0/1D9DE10","txn":"0/1DA0000","changes":5000}
//! ```
//!
//! `lsn` is the end of the last transaction whose changes were all emitted: the slot may
//! be advanced to it. `txn` and `changes` say that the first `changes` changes of the
//! transaction committing at `txn` were emitted too (a transaction bigger than a batch):
//! resuming skips exactly those. Decoding a transaction twice yields the same changes in
//! the same order, which is what makes the count exact.

use serde::{Deserialize, Serialize};

use crate::batch::Position;
use crate::error::{Error, Result};

/// A parsed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case", deny_unknown_fields)]
pub enum CdcPosition {
    /// Copying existing rows.
    Snapshot {
        /// The slot the changes come from after the snapshot.
        slot: String,
        /// Where the slot started: changes after it are streamed after the snapshot.
        slot_lsn: String,
        /// The table being copied (`schema.table`).
        table: String,
        /// The primary key (as text) of the last row copied; `None`: none yet.
        after: Option<Vec<String>>,
    },
    /// Streaming changes from the slot.
    Stream {
        /// The slot.
        slot: String,
        /// The end LSN of the last fully emitted transaction.
        lsn: String,
        /// The commit LSN of a transaction partly emitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        txn: Option<String>,
        /// How many of its changes were emitted.
        #[serde(default, skip_serializing_if = "is_zero")]
        changes: u64,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CdcPosition {
    /// Reads a stored position.
    pub fn from_json(position: &Position) -> Result<CdcPosition> {
        serde_json::from_value(position.clone()).map_err(|e| {
            Error::config(format!(
                "the stored postgres-cdc position {position} is not one this source writes \
                 ({e}); drop the pipeline's position to start over"
            ))
        })
    }

    /// As JSON for the runtime.
    pub fn to_json(&self) -> Position {
        serde_json::to_value(self).unwrap_or(Position::Null)
    }

    /// The slot it belongs to.
    pub fn slot(&self) -> &str {
        match self {
            CdcPosition::Snapshot { slot, .. } | CdcPosition::Stream { slot, .. } => slot,
        }
    }
}

/// `16/B374D848` -> 0x16_B374_D848.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// 0x16_B374_D848 -> `16/B374D848`.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Parses an LSN of a stored position.
pub fn position_lsn(text: &str) -> Result<u64> {
    parse_lsn(text).ok_or_else(|| {
        Error::config(format!(
            "the stored postgres-cdc position holds `{text}`, not an LSN like 0/1D9DC80"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_and_positions_round_trip() {
        // Proves LSN text and position JSON read back as written.
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nope"), None);
        let position = CdcPosition::Stream {
            slot: "s".into(),
            lsn: "0/10".into(),
            txn: Some("0/20".into()),
            changes: 3,
        };
        assert_eq!(
            CdcPosition::from_json(&position.to_json()).unwrap(),
            position
        );
        assert!(CdcPosition::from_json(&serde_json::json!({"phase": "x"})).is_err());
    }
}
