//! Arrow types to SQL types and back, and the calendar arithmetic the three systems need
//! (dates as days since 1970-01-01, timestamps as microseconds since 1970-01-01 UTC, as
//! Arrow stores them).
//!
//! Every column reaching a database is first brought to one of the *canonical* Arrow
//! types Sluice uses (see `crate::schema`): Boolean, Int16, Int32, Int64, Float32,
//! Float64, Decimal128, Utf8, Binary, Date32, Timestamp(µs) and Timestamp(µs, UTC).

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit};

use crate::error::{Error, Result};

/// The canonical Arrow type a column of type `ty` is written as, or `None` if no SQL type
/// holds it (lists, structs, maps...).
pub fn canonical(ty: &DataType) -> Option<DataType> {
    Some(match ty {
        DataType::Boolean => DataType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => DataType::Int16,
        DataType::Int32 | DataType::UInt16 => DataType::Int32,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float32,
        DataType::Float64 => DataType::Float64,
        DataType::Decimal128(p, s) => DataType::Decimal128(*p, *s),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => DataType::Binary,
        DataType::Date32 | DataType::Date64 => DataType::Date32,
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        _ => return None,
    })
}

/// The canonical type of `column` of type `ty`, or an error naming the column.
pub fn canonical_or_error(column: &str, ty: &DataType) -> Result<DataType> {
    canonical(ty).ok_or_else(|| {
        Error::config(format!(
            "column `{column}` has type {ty}, which no database column holds: cast it to \
             BOOLEAN, SMALLINT, INT, BIGINT, REAL, DOUBLE, DECIMAL(p,s), VARCHAR, BYTEA, DATE, \
             TIMESTAMP or TIMESTAMPTZ (a `cast` transform) or drop it"
        ))
    })
}

/// Casts `array` to `to`, failing (instead of writing nulls) on values that do not fit.
pub fn cast_strict(column: &str, array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if array.data_type() == to {
        return Ok(Arc::clone(array));
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, to, &options).map_err(|e| Error::Data {
        position: format!("column `{column}`"),
        reason: format!(
            "cannot convert {} to the table's type {to}: {e}",
            array.data_type()
        ),
    })
}

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days from 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in a month of the proleptic Gregorian calendar (`month` 1..=12).
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The civil date (year, month, day) of days from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` of days from 1970-01-01.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) of microseconds from 1970-01-01: sortable as text,
/// read by all three systems as a timestamp literal.
pub fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rest = micros.rem_euclid(MICROS_PER_DAY);
    let secs = rest / 1_000_000;
    format!(
        "{} {:02}:{:02}:{:02}.{:06}",
        format_date(days),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % 1_000_000
    )
}

/// Days from 1970-01-01 of `YYYY-MM-DD` (anything after the date is ignored).
pub fn parse_date(text: &str) -> Option<i64> {
    let date = text.get(..10)?;
    let mut parts = date.split('-');
    let year = parts.next()?.parse::<i64>().ok()?;
    let month = parts.next()?.parse::<u32>().ok()?;
    let day = parts.next()?.parse::<u32>().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Microseconds from 1970-01-01 of `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|±HH[:MM]]`.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let days = parse_date(text)?;
    let rest = text.get(10..)?;
    let rest = rest.strip_prefix([' ', 'T']).unwrap_or(rest);
    if rest.is_empty() {
        return Some(days * MICROS_PER_DAY);
    }
    // Split off a zone suffix: Z, +HH[:MM], -HH[:MM].
    let (clock, offset_secs) = match rest.find(['Z', '+', '-']) {
        Some(i) => {
            let (clock, zone) = rest.split_at(i);
            let offset = if zone == "Z" {
                0
            } else {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let digits: String = zone.chars().skip(1).filter(|c| *c != ':').collect();
                let hours = digits.get(..2)?.parse::<i64>().ok()?;
                let minutes = digits
                    .get(2..4)
                    .map_or(Some(0), |m| m.parse::<i64>().ok())?;
                sign * (hours * 3600 + minutes * 60)
            };
            (clock, offset)
        }
        None => (rest, 0),
    };
    let mut fields = clock.split(':');
    let hours = fields.next()?.trim().parse::<i64>().ok()?;
    let minutes = fields.next()?.parse::<i64>().ok()?;
    let (seconds, micros) = match fields.next() {
        None => (0, 0),
        Some(s) => match s.split_once('.') {
            None => (s.parse::<i64>().ok()?, 0),
            Some((whole, frac)) => {
                let digits: String = frac.chars().take(6).collect();
                let scale = 10i64.pow(6 - digits.len() as u32);
                (
                    whole.parse::<i64>().ok()?,
                    digits.parse::<i64>().ok()? * scale,
                )
            }
        },
    };
    Some(
        days * MICROS_PER_DAY
            + (hours * 3600 + minutes * 60 + seconds - offset_secs) * 1_000_000
            + micros,
    )
}

/// The value of decimal text (`-12.345`, `1e3` is refused) at `scale`, rounding half away
/// from zero past it.
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let scale = usize::try_from(scale).ok()?;
    let mut value: i128 = 0;
    for c in whole
        .chars()
        .chain(frac.chars().chain(std::iter::repeat('0')).take(scale))
    {
        let d = c.to_digit(10)?;
        value = value.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    if let Some(next) = frac.chars().nth(scale)
        && next.to_digit(10)? >= 5
    {
        value = value.checked_add(1)?;
    }
    Some(if negative { -value } else { value })
}

/// Decimal text of `value` at `scale`: `-12.34`.
pub fn format_decimal(value: i128, scale: i8) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    let scale = usize::try_from(scale).unwrap_or(0);
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        // Proves the civil-date conversions agree with each other over four centuries.
        for days in (-200_000..200_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(format_date(0), "1970-01-01");
    }

    #[test]
    fn timestamps_format_and_parse() {
        // Proves timestamp text round-trips, zones are applied and fractions are scaled.
        for micros in [0, 1_764_000_000_123_456, -1, -86_400_000_001] {
            assert_eq!(parse_timestamp(&format_timestamp(micros)), Some(micros));
        }
        assert_eq!(parse_timestamp("1970-01-01 01:00:00+01"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.5Z"), Some(500_000));
        assert_eq!(parse_timestamp("1970-01-02"), Some(MICROS_PER_DAY));
        assert_eq!(parse_timestamp("garbage"), None);
    }

    #[test]
    fn decimals_format_and_parse() {
        // Proves decimal text round-trips at a scale and rounds past it.
        for (v, s, t) in [(12345, 2, "123.45"), (-5, 3, "-0.005"), (7, 0, "7")] {
            assert_eq!(format_decimal(v, s), t);
            assert_eq!(parse_decimal(t, s), Some(v));
        }
        assert_eq!(parse_decimal("1.005", 2), Some(101));
        assert_eq!(parse_decimal("12", 2), Some(1200));
        assert_eq!(parse_decimal("x", 2), None);
    }

    #[test]
    fn unmappable_types_name_the_column() {
        // Proves a list column is refused with its name in the message.
        let ty = DataType::List(Arc::new(arrow::datatypes::Field::new(
            "x",
            DataType::Int32,
            true,
        )));
        let err = canonical_or_error("tags", &ty).unwrap_err().to_string();
        assert!(err.contains("`tags`"), "{err}");
    }
}
