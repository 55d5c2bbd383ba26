//! Which WHERE conditions a topic scan uses to read less: `_partition` (=, IN, ranges),
//! `_offset` (ranges) and `_timestamp` (ranges; a lower bound finds its start offset in
//! each partition's time index). Pushdown is Inexact: DataFusion still applies every
//! filter to what the scan returns, so a bound here only has to be no tighter than the
//! condition (timestamps are rounded outwards to whole milliseconds).
//!
//! Time bounds such as `_timestamp > now() - interval '5 minutes'` arrive as literals:
//! DataFusion's simplifier folds `now()` (the statement's start time) before filters are
//! pushed into the scan.

use std::collections::BTreeSet;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

use crate::catalog::table::{OFFSET_COLUMN, PARTITION_COLUMN, TIMESTAMP_COLUMN};

/// The ranges a scan is limited to; `None` = unbounded. Bounds are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScanBounds {
    pub(crate) partitions: Option<BTreeSet<i32>>,
    pub(crate) offset_min: Option<i64>,
    pub(crate) offset_max: Option<i64>,
    pub(crate) timestamp_min_ms: Option<i64>,
    pub(crate) timestamp_max_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    Partition,
    Offset,
    Timestamp,
}

impl ScanBounds {
    /// Narrows the bounds by one filter; returns whether the filter was used.
    pub(crate) fn apply(&mut self, filter: &Expr) -> bool {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if *op == Operator::And {
                    let l = self.apply(left);
                    let r = self.apply(right);
                    return l || r;
                }
                if *op == Operator::Or {
                    // DataFusion rewrites a short `_partition IN (...)` into ORs: a union
                    // of partition sets is usable, any other OR is not.
                    let (mut l, mut r) = (ScanBounds::default(), ScanBounds::default());
                    if !(l.apply(left) && r.apply(right)) {
                        return false;
                    }
                    return match (l.partitions_only(), r.partitions_only()) {
                        (Some(l), Some(r)) => {
                            self.restrict_partitions(l.union(r).copied().collect());
                            true
                        }
                        _ => false,
                    };
                }
                let (column, op, literal) = match (meta_column(left), meta_column(right)) {
                    (Some(c), None) => (c, *op, right.as_ref()),
                    (None, Some(c)) => match op.swap() {
                        Some(swapped) => (c, swapped, left.as_ref()),
                        None => return false,
                    },
                    _ => return false,
                };
                let Some(value) = literal_value(column, literal) else {
                    return false;
                };
                self.compare(column, op, value)
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let Some(column) = meta_column(expr) else {
                    return false;
                };
                match (literal_value(column, low), literal_value(column, high)) {
                    (Some(lo), Some(hi)) => {
                        self.compare(column, Operator::GtEq, lo);
                        self.compare(column, Operator::LtEq, hi);
                        true
                    }
                    _ => false,
                }
            }
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => {
                if meta_column(expr) != Some(Meta::Partition) {
                    return false;
                }
                let values: Option<BTreeSet<i32>> = list
                    .iter()
                    .map(|e| {
                        literal_value(Meta::Partition, e).map(|v| i32::try_from(v.lo).unwrap_or(-1))
                    })
                    .collect();
                match values {
                    Some(values) => {
                        self.restrict_partitions(values);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// Whether partition `id` may hold matching records.
    pub(crate) fn includes_partition(&self, id: i32) -> bool {
        self.partitions.as_ref().is_none_or(|p| p.contains(&id))
    }

    /// `[start, end)`, a partition's readable offsets, narrowed by the offset bounds.
    pub(crate) fn offset_range(&self, start: i64, end: i64) -> (i64, i64) {
        let start = self.offset_min.map_or(start, |min| start.max(min));
        let end = self
            .offset_max
            .map_or(end, |max| end.min(max.saturating_add(1)));
        (start, end)
    }

    /// The partition set, if that is all these bounds say.
    fn partitions_only(&self) -> Option<&BTreeSet<i32>> {
        let others = [
            self.offset_min,
            self.offset_max,
            self.timestamp_min_ms,
            self.timestamp_max_ms,
        ];
        if others.iter().any(Option::is_some) {
            return None;
        }
        self.partitions.as_ref()
    }

    fn compare(&mut self, column: Meta, op: Operator, value: Value) -> bool {
        // `lo`/`hi` are the literal rounded down/up (they differ only for sub-ms times).
        let (min, max) = match op {
            Operator::Eq => (Some(value.lo), Some(value.hi)),
            Operator::Gt => (
                Some(value.lo.saturating_add(i64::from(value.lo == value.hi))),
                None,
            ),
            Operator::GtEq => (Some(value.lo), None),
            Operator::Lt => (
                None,
                Some(value.hi.saturating_sub(i64::from(value.lo == value.hi))),
            ),
            Operator::LtEq => (None, Some(value.hi)),
            _ => return false,
        };
        match column {
            Meta::Partition => {
                // Partition ids are 0..i32::MAX; a bound outside that clamps.
                let lo = min.unwrap_or(0).clamp(0, i64::from(i32::MAX));
                let hi = max
                    .unwrap_or(i64::from(i32::MAX))
                    .clamp(-1, i64::from(i32::MAX));
                self.partition_range(lo, hi);
            }
            Meta::Offset => {
                tighten(&mut self.offset_min, min, i64::max);
                tighten(&mut self.offset_max, max, i64::min);
            }
            Meta::Timestamp => {
                tighten(&mut self.timestamp_min_ms, min, i64::max);
                tighten(&mut self.timestamp_max_ms, max, i64::min);
            }
        }
        true
    }

    /// Restricts to partitions `lo..=hi` (expanded to at most [`PARTITIONS_MAX`] ids: a
    /// topic has far fewer, and ids past its count are ignored when ranges are planned).
    fn partition_range(&mut self, lo: i64, hi: i64) {
        let lo = i32::try_from(lo).unwrap_or(i32::MAX);
        let hi = i32::try_from(hi).unwrap_or(i32::MAX);
        let set: BTreeSet<i32> = if hi < lo {
            BTreeSet::new()
        } else {
            (lo..=hi.min(lo.saturating_add(PARTITIONS_MAX))).collect()
        };
        self.restrict_partitions(set);
    }

    fn restrict_partitions(&mut self, values: BTreeSet<i32>) {
        self.partitions = Some(match self.partitions.take() {
            Some(current) => current.intersection(&values).copied().collect(),
            None => values,
        });
    }
}

/// The most partition ids a `_partition` range expands to.
const PARTITIONS_MAX: i32 = 1 << 16;

fn tighten(bound: &mut Option<i64>, new: Option<i64>, pick: fn(i64, i64) -> i64) {
    if let Some(new) = new {
        *bound = Some(bound.map_or(new, |old| pick(old, new)));
    }
}

/// Whether DataFusion may hand this filter to the scan (it still re-checks the rows).
pub(crate) fn is_supported(filter: &Expr) -> bool {
    ScanBounds::default().apply(filter)
}

/// A literal as the column's unit: the value rounded down (`lo`) and up (`hi`).
#[derive(Debug, Clone, Copy)]
struct Value {
    lo: i64,
    hi: i64,
}

fn meta_column(expr: &Expr) -> Option<Meta> {
    match expr {
        Expr::Column(c) => match c.name.as_str() {
            PARTITION_COLUMN => Some(Meta::Partition),
            OFFSET_COLUMN => Some(Meta::Offset),
            TIMESTAMP_COLUMN => Some(Meta::Timestamp),
            _ => None,
        },
        // Widening casts keep order, so a bound on the cast value bounds the column.
        Expr::Cast(c) if order_preserving(c.field.data_type()) => meta_column(&c.expr),
        Expr::TryCast(c) if order_preserving(c.field.data_type()) => meta_column(&c.expr),
        _ => None,
    }
}

fn order_preserving(to: &DataType) -> bool {
    matches!(to, DataType::Int64 | DataType::Timestamp(..))
}

fn literal_value(column: Meta, expr: &Expr) -> Option<Value> {
    let Expr::Literal(scalar, _) = expr else {
        return None;
    };
    let exact = |v: i64| Some(Value { lo: v, hi: v });
    match (column, scalar) {
        (Meta::Timestamp, ScalarValue::TimestampSecond(Some(v), _)) => exact(v.checked_mul(1000)?),
        (Meta::Timestamp, ScalarValue::TimestampMillisecond(Some(v), _)) => exact(*v),
        (Meta::Timestamp, ScalarValue::TimestampMicrosecond(Some(v), _)) => Some(Value {
            lo: v.div_euclid(1000),
            hi: v.div_euclid(1000) + i64::from(v.rem_euclid(1000) != 0),
        }),
        (Meta::Timestamp, ScalarValue::TimestampNanosecond(Some(v), _)) => Some(Value {
            lo: v.div_euclid(1_000_000),
            hi: v.div_euclid(1_000_000) + i64::from(v.rem_euclid(1_000_000) != 0),
        }),
        (Meta::Partition | Meta::Offset, ScalarValue::Int8(Some(v))) => exact(i64::from(*v)),
        (Meta::Partition | Meta::Offset, ScalarValue::Int16(Some(v))) => exact(i64::from(*v)),
        (Meta::Partition | Meta::Offset, ScalarValue::Int32(Some(v))) => exact(i64::from(*v)),
        (Meta::Partition | Meta::Offset, ScalarValue::Int64(Some(v))) => exact(*v),
        (Meta::Partition | Meta::Offset, ScalarValue::UInt8(Some(v))) => exact(i64::from(*v)),
        (Meta::Partition | Meta::Offset, ScalarValue::UInt16(Some(v))) => exact(i64::from(*v)),
        (Meta::Partition | Meta::Offset, ScalarValue::UInt32(Some(v))) => exact(i64::from(*v)),
        (Meta::Partition | Meta::Offset, ScalarValue::UInt64(Some(v))) => {
            exact(i64::try_from(*v).ok()?)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn bounds(filters: &[Expr]) -> ScanBounds {
        let mut b = ScanBounds::default();
        for f in filters {
            assert!(b.apply(f), "not pushed down: {f}");
        }
        b
    }

    // The bounds each supported condition gives; a strict bound excludes its literal.
    #[test]
    fn conditions_become_inclusive_bounds() {
        let b = bounds(&[
            col("_offset").gt(lit(5_i64)),
            col("_offset").lt_eq(lit(9_i64)),
        ]);
        assert_eq!((b.offset_min, b.offset_max), (Some(6), Some(9)));
        let b = bounds(&[lit(3_i32).lt(col("_partition"))]);
        assert_eq!(b.partitions.map(|p| p.first().copied()), Some(Some(4)));
        let b = bounds(&[col("_partition").in_list(vec![lit(0_i32), lit(2_i32)], false)]);
        assert_eq!(b.partitions, Some([0, 2].into()));
        let b = bounds(&[col("_partition")
            .eq(lit(0_i32))
            .or(col("_partition").eq(lit(2_i32)))]);
        assert_eq!(b.partitions, Some([0, 2].into()));
        assert!(!is_supported(
            &col("_partition")
                .eq(lit(0_i32))
                .or(col("_offset").eq(lit(2_i64)))
        ));
        let b = bounds(&[col("_partition").between(lit(1_i32), lit(2_i32))]);
        assert_eq!(b.partitions, Some([1, 2].into()));
        let ns = ScalarValue::TimestampNanosecond(Some(1_500_000), None);
        let b = bounds(&[col("_timestamp").gt(lit(ns))]);
        // 1.5 ms: the bound is the millisecond floor, never tighter than the condition.
        assert_eq!(b.timestamp_min_ms, Some(1));
        assert!(!is_supported(&col("amount").gt(lit(1))));
        assert!(!is_supported(&col("_offset").not_eq(lit(1_i64))));
    }
}
