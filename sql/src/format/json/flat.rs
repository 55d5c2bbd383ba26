//! The fast path of [`read_object`](super::read_object): a tokenizer for the shape nearly
//! every record has, a flat object whose values are strings without escapes, plain numbers,
//! booleans and nulls. serde_json's generic parser spent most of the scan's time on these
//! (a per-byte state machine, a visitor call per key, UTF-8 validation of every key).
//!
//! Invariant: the fast path reads a record exactly as serde_json does, or not at all. It
//! hands each value to the same [`FieldOf`] conversions the serde_json visitor calls, as
//! serde_json would (`u64` for a non-negative integer, `int` for a negative one, `f64`
//! for `-0` and decimals, computed as serde_json computes them), so conversions cannot
//! differ. Whatever it is not sure of (an escape, a control character, a nested value, an
//! exponent, more than 18 digits, invalid UTF-8, any syntax error) makes it return `None`
//! having decided nothing, and the caller reads the record again with serde_json, which
//! also writes the error messages.

use super::field::FieldOf;
use super::swar;
use super::{ColumnDef, Field, Want};

/// Powers of ten exactly representable as `f64`, as serde_json's own table has them.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
/// Below this, a decimal's digits are an exact `f64`, so one division by an exact power of
/// ten is correctly rounded: the value serde_json gives with or without `float_roundtrip`.
const EXACT_SIGNIFICAND_MAX: u64 = 1 << 53;
/// Digits that always fit a `u64` (no overflow handling to mirror).
const DIGITS_MAX: usize = 18;
/// `POW10_U64[n]` is 10^n: what a significand is multiplied by to take `n` more digits.
const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// serde_json's reading of one number.
enum Number {
    U64(u64),
    I64(i64),
    F64(f64),
}

/// Reads `value` into `fields` (already one NULL per column) and `text`; `None`: not read,
/// and `fields` and `text` must be reset before another reader fills them.
pub(super) fn read(
    value: &[u8],
    columns: &[ColumnDef],
    keys: &[Option<KeyPattern>],
    wants: &[Want],
    fields: &mut [Field],
    text: &mut String,
) -> Option<()> {
    // UTF-8 is checked string by string, not over the whole value: outside strings only
    // ASCII tokens are accepted, so a value is read here only if it is valid UTF-8 as a
    // whole, as before, and an ASCII string (nearly all of them) is checked by the scan
    // that finds its end.
    let mut c = Cursor {
        bytes: value,
        at: 0,
    };
    // The column after the last one matched: keys usually come in the same order.
    let mut hint = 0;
    c.skip_whitespace();
    c.eat(b'{')?;
    c.skip_whitespace();
    if c.peek()? == b'}' {
        c.at += 1;
    } else {
        loop {
            c.eat(b'"')?;
            let column = match c.expected_key(keys, hint) {
                Some(i) => Some(i),
                None => {
                    let key = c.string()?;
                    let column = column_of(columns, key.bytes, hint);
                    if column.is_none() && !key.ascii {
                        // serde_json refuses a key that is not UTF-8, matched or not.
                        std::str::from_utf8(key.bytes).ok()?;
                    }
                    column
                }
            };
            c.skip_whitespace();
            c.eat(b':')?;
            c.skip_whitespace();
            let target = column.and_then(|i| {
                hint = i + 1;
                let want = *wants.get(i)?;
                let ty = columns.get(i)?.ty;
                (want != Want::Skip).then_some((i, want, ty))
            });
            match target {
                Some((i, want, ty)) => {
                    let seed = FieldOf {
                        ty,
                        keep: want == Want::Value,
                        text,
                    };
                    c.value(seed, fields.get_mut(i)?)?;
                }
                None => c.skip_value()?,
            }
            c.skip_whitespace();
            match c.peek()? {
                b',' => {
                    c.at += 1;
                    c.skip_whitespace();
                }
                b'}' => {
                    c.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    c.skip_whitespace();
    (c.at == value.len()).then_some(())
}

/// The column named `key`, trying `hint` first.
fn column_of(columns: &[ColumnDef], key: &[u8], hint: usize) -> Option<usize> {
    if columns.get(hint).is_some_and(|c| c.name.as_bytes() == key) {
        return Some(hint);
    }
    columns.iter().position(|c| c.name.as_bytes() == key)
}

/// A column's name as a record's key shows it, followed by the key's closing quote, as
/// up to two words to compare with the record's next sixteen bytes: prepared once per scan
/// ([`KeyPattern::new`]), so the key a record most likely has next (keys usually come in
/// the columns' order) is matched without scanning it or comparing names byte by byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyPattern {
    /// The name and the quote, in the low lanes.
    words: [u64; 2],
    /// The lanes of `words` that count.
    masks: [u64; 2],
    /// Bytes the name and the quote take.
    len: usize,
}

impl KeyPattern {
    /// The pattern of a column's name; `None` when it is longer than fifteen bytes or holds
    /// a byte a JSON string would escape or end at (`"`, `\`, a control character), where
    /// the record's bytes are not the name's own.
    pub(crate) fn new(name: &str) -> Option<KeyPattern> {
        let name = name.as_bytes();
        if name.len() > 15 || name.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut masks = [0u8; 16];
        for (i, &b) in name.iter().chain(b"\"").enumerate() {
            *bytes.get_mut(i)? = b;
            *masks.get_mut(i)? = 0xff;
        }
        let word = |b: &[u8; 16], i: usize| swar::word(b, i).unwrap_or_default();
        Some(KeyPattern {
            words: [word(&bytes, 0), word(&bytes, 8)],
            masks: [word(&masks, 0), word(&masks, 8)],
            len: name.len() + 1,
        })
    }

    /// Whether `bytes` at `at` start with the name and the quote.
    #[inline]
    fn matches(&self, bytes: &[u8], at: usize) -> bool {
        let Some(first) = swar::word(bytes, at) else {
            return false;
        };
        if first & self.masks[0] != self.words[0] {
            return false;
        }
        self.masks[1] == 0
            || swar::word(bytes, at + 8).is_some_and(|w| w & self.masks[1] == self.words[1])
    }
}

/// Each column's [`KeyPattern`].
pub(crate) fn key_patterns(columns: &[ColumnDef]) -> Vec<Option<KeyPattern>> {
    columns.iter().map(|c| KeyPattern::new(&c.name)).collect()
}

/// Whether a string's byte-at-a-time scan stops at `b`: its closing quote, an escape, a
/// control character, or a non-ASCII byte (whose sequence is then validated).
fn string_stop(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20 || !b.is_ascii()
}

/// A string's contents (between its quotes, escape-free), valid UTF-8.
struct Str<'a> {
    bytes: &'a [u8],
    /// Whether every byte is ASCII (so the scan has checked it is UTF-8); when false the
    /// bytes are UTF-8 only once [`Cursor::string`]'s caller has validated them.
    ascii: bool,
}

/// A position in a record's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// JSON's whitespace, as serde_json skips it.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// The column `hint` when its key pattern comes next, the cursor moved past the key's
    /// closing quote; else `None`, the cursor unmoved. What scanning the key and looking it
    /// up would find: a name the pattern takes ends the key exactly where the scan stops.
    #[inline]
    fn expected_key(&mut self, keys: &[Option<KeyPattern>], hint: usize) -> Option<usize> {
        let pattern = keys.get(hint)?.as_ref()?;
        if !pattern.matches(self.bytes, self.at) {
            return None;
        }
        self.at += pattern.len;
        Some(hint)
    }

    /// A string whose opening quote was read, up to its closing quote (eaten); `None` at
    /// an escape or a control character (serde_json decides those). Its bytes are not
    /// validated as UTF-8 when they are not all ASCII: see [`Str::ascii`].
    fn string(&mut self) -> Option<Str<'a>> {
        let start = self.at;
        let mut end = start;
        while let Some(w) = swar::word(self.bytes, end) {
            let stops = swar::string_stops(w);
            if stops != 0 {
                end += swar::first_lane(stops);
                break;
            }
            end += 8;
        }
        while let Some(&b) = self.bytes.get(end) {
            if string_stop(b) {
                break;
            }
            end += 1;
        }
        let mut ascii = true;
        if self.bytes.get(end).is_some_and(|b| !b.is_ascii()) {
            // Multi-byte characters: on to the end the slow way.
            ascii = false;
            while let Some(&b) = self.bytes.get(end) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                end += 1;
            }
        }
        if *self.bytes.get(end)? != b'"' {
            return None;
        }
        self.at = end + 1;
        Some(Str {
            bytes: self.bytes.get(start..end)?,
            ascii,
        })
    }

    /// A string, skipped; `None` if it is not UTF-8 (or [`string`](Self::string) gives up).
    fn valid_string(&mut self) -> Option<()> {
        let s = self.string()?;
        if !s.ascii {
            std::str::from_utf8(s.bytes).ok()?;
        }
        Some(())
    }

    /// A string as `&str` (`None` if it is not UTF-8).
    fn str(&mut self) -> Option<&'a str> {
        // An ASCII string is valid UTF-8; `from_utf8` says so at a few instructions a byte.
        std::str::from_utf8(self.string()?.bytes).ok()
    }

    /// Digits at the cursor, appended to `significand` (wrapping); how many. The
    /// significand is only meaningful while the number has at most [`DIGITS_MAX`] digits.
    fn digits(&mut self, significand: &mut u64) -> usize {
        let start = self.at;
        while let Some(w) = swar::word(self.bytes, self.at) {
            let (stops, values) = swar::non_digits(w);
            let n = swar::first_lane(stops);
            if n > 0 {
                *significand = significand
                    .wrapping_mul(POW10_U64[n])
                    .wrapping_add(swar::digits_value(values, n));
                self.at += n;
            }
            if n < 8 {
                return self.at - start;
            }
        }
        while let Some(&d) = self.bytes.get(self.at) {
            if !d.is_ascii_digit() {
                break;
            }
            *significand = significand
                .wrapping_mul(10)
                .wrapping_add(u64::from(d - b'0'));
            self.at += 1;
        }
        self.at - start
    }

    /// `word` (a literal: `true`, `false`, `null`) at the cursor.
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A number as serde_json reads it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most
    /// [`DIGITS_MAX`] digits, no exponent (else `None`).
    fn number(&mut self) -> Option<Number> {
        let negative = self.eat(b'-').is_some();
        let mut significand = 0u64;
        let mut digits = match self.peek()? {
            b'0' => {
                self.at += 1;
                // One leading zero only.
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return None;
                }
                1
            }
            b'1'..=b'9' => self.digits(&mut significand),
            _ => return None,
        };
        let mut fraction_digits = 0usize;
        if self.peek() == Some(b'.') {
            self.at += 1;
            fraction_digits = self.digits(&mut significand);
            if fraction_digits == 0 {
                return None;
            }
            digits += fraction_digits;
        }
        if digits > DIGITS_MAX || matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        Some(match (fraction_digits, negative) {
            (0, false) => Number::U64(significand),
            // serde_json reads `-0` as a float.
            (0, true) if significand == 0 => Number::F64(-0.0),
            (0, true) => Number::I64(-i64::try_from(significand).ok()?),
            _ => {
                if significand > EXACT_SIGNIFICAND_MAX {
                    return None;
                }
                let f = significand as f64 / POW10.get(fraction_digits)?;
                Number::F64(if negative { -f } else { f })
            }
        })
    }

    /// A value for a column: the field `seed` makes of it, written to `slot`. (Through
    /// the conversions' plain methods, inlined, which build the field in place: a
    /// visitor's `Result` and an `Option` around it cost two copies of the field through
    /// memory per value.)
    #[inline]
    fn value(&mut self, seed: FieldOf, slot: &mut Field) -> Option<()> {
        let field = match self.peek()? {
            b'"' => {
                self.at += 1;
                if seed.checks_text_only() {
                    // What `seed.str` gives any valid string, without making it a `&str`.
                    self.valid_string()?;
                    Field::Checked
                } else {
                    seed.str(self.str()?)
                }
            }
            b'-' | b'0'..=b'9' => match self.number()? {
                Number::U64(v) => seed.u64(v),
                Number::I64(v) => seed.int(v),
                Number::F64(v) => seed.f64(v),
            },
            b't' => {
                self.literal(b"true")?;
                seed.bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                seed.bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                Field::NULL
            }
            _ => return None,
        };
        let old = std::mem::replace(slot, field);
        // The slot is nearly always still NULL, which owns nothing: no drop call for it.
        if old.is_null() {
            std::mem::forget(old);
        }
        Some(())
    }

    /// A value no column takes, skipped. A string with non-ASCII bytes is validated all
    /// the same: a record that is not UTF-8 throughout is left to serde_json.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.valid_string()
            }
            b'-' | b'0'..=b'9' => self.number().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnType;
    use crate::format::json::{NotAnObject, read_object_with_serde};

    fn columns() -> Vec<ColumnDef> {
        [
            ("i", ColumnType::BigInt),
            ("s", ColumnType::Varchar),
            ("d", ColumnType::Double),
            ("r", ColumnType::Real),
            ("b", ColumnType::Boolean),
            ("t", ColumnType::Timestamp),
            ("n", ColumnType::SmallInt),
            ("v", ColumnType::Varchar),
        ]
        .iter()
        .map(|(n, ty)| ColumnDef {
            name: n.to_string(),
            ty: *ty,
            nullable: true,
        })
        .collect()
    }

    /// The fields (text resolved) a reader gives, or `None` when it gives up / fails.
    fn resolve(fields: Vec<Field>, text: &str) -> Vec<Field> {
        fields
            .into_iter()
            .map(|f| match f {
                Field::Text(r) => Field::Cell(crate::format::cell::Cell::Text(
                    text.get(r).unwrap().to_string(),
                )),
                other => other,
            })
            .collect()
    }

    fn fast(value: impl AsRef<[u8]>, wants: &[Want]) -> Option<Vec<Field>> {
        let columns = columns();
        let mut fields = vec![Field::NULL; columns.len()];
        let mut text = String::new();
        let keys = key_patterns(&columns);
        read(
            value.as_ref(),
            &columns,
            &keys,
            wants,
            &mut fields,
            &mut text,
        )?;
        Some(resolve(fields, &text))
    }

    fn serde(value: impl AsRef<[u8]>, wants: &[Want]) -> Result<Vec<Field>, String> {
        let columns = columns();
        let mut fields = Vec::new();
        let mut text = String::new();
        read_object_with_serde(value.as_ref(), &columns, wants, &mut fields, &mut text).map_err(
            |e| match e {
                NotAnObject::NotJson(e) => e,
                NotAnObject::NotObject => "not an object".into(),
            },
        )?;
        Ok(resolve(fields, &text))
    }

    /// Asserts the fast path either gives up on `value` or agrees with serde_json.
    fn agrees(value: impl AsRef<[u8]>, wants: &[Want]) -> bool {
        let value = value.as_ref();
        let Some(got) = fast(value, wants) else {
            return false;
        };
        let shown = String::from_utf8_lossy(value);
        assert_eq!(Ok(got), serde(value, wants), "fast path on {shown}");
        true
    }

    // Guards the fast path's invariant on hand-picked edge cases: every record it reads
    // reads the same through serde_json, and it gives up on what it must leave to it.
    #[test]
    fn reads_as_serde_json_or_gives_up() {
        let all = [Want::Value; 8];
        let plain = [
            r#"{"i":1,"s":"a","d":2.5,"r":0.1,"b":true,"t":17,"n":-3,"v":null}"#,
            r#" { "i" : -0 , "d" : -0.0 , "s" : 12 , "v" : false } "#,
            r#"{"i":1.5,"n":70000,"b":1,"t":"2024-03-01T12:00:00Z","s":"é","x":"\u0001"}"#,
            r#"{"i":18446744073709551,"d":123456789012345678,"r":0.000000000000000000001}"#,
            r#"{"i":"1","i":2,"other":null,"more":[1],"s":-12.50}"#,
            r#"{}"#,
            r#"{"d":9007199254740993.5}"#,
        ];
        let given_up = [
            r#"{"s":"a\"b"}"#,
            r#"{"s":{"a":1}}"#,
            r#"{"d":1e5}"#,
            r#"{"i":1234567890123456789}"#,
            r#"{"i":01}"#,
            r#"{"i":1.}"#,
            r#"{"i":1,}"#,
            r#"{"i":1} x"#,
            r#"{"i":tru}"#,
            "{\"s\":\"a\tb\"}",
            r#"[1]"#,
            r#"{"i":1"#,
            "",
        ];
        for value in plain {
            // Some of these still give up (an escape, an array); those must not be read.
            agrees(value, &all);
        }
        assert!(agrees(plain[0], &all));
        assert!(agrees(plain[1], &all));
        assert!(agrees(plain[5], &all));
        for value in given_up {
            assert!(fast(value, &all).is_none(), "read {value}");
        }
        let checked = [
            Want::Check,
            Want::Check,
            Want::Value,
            Want::Skip,
            Want::Check,
            Want::Skip,
            Want::Value,
            Want::Check,
        ];
        assert!(agrees(plain[0], &checked));
        assert!(agrees(plain[1], &checked));
        // Invalid UTF-8 in a key no column takes: serde_json refuses it; the fast path
        // leaves any record with invalid UTF-8 to serde_json.
        let columns = columns();
        let mut fields = vec![Field::NULL; columns.len()];
        let mut text = String::new();
        let bad_key = b"{\"\xff\":1}";
        let keys = key_patterns(&columns);
        assert!(read(bad_key, &columns, &keys, &all, &mut fields, &mut text).is_none());
    }

    // Guards the invariant on many generated records: numbers of every length and sign,
    // strings, literals, whitespace, unknown and repeated keys.
    #[test]
    fn agrees_with_serde_json_on_generated_records() {
        let names = ["i", "s", "d", "r", "b", "t", "n", "v", "zz"];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut read_count = 0;
        for _ in 0..20_000 {
            let mut value = String::from("{");
            for k in 0..(next() % 6) {
                if k > 0 {
                    value.push(',');
                }
                let name = names[(next() % names.len() as u64) as usize];
                let ws = if next() % 5 == 0 { " " } else { "" };
                value.push_str(&format!("{ws}\"{name}\"{ws}:{ws}"));
                let digits = 1 + next() % 20;
                let mut number: String = (0..digits)
                    .map(|_| char::from(b'0' + (next() % 10) as u8))
                    .collect();
                if next() % 3 == 0 {
                    number.insert(0, '-');
                }
                match next() % 8 {
                    0 => value.push_str(&number),
                    1 => value.push_str(&format!("{number}.{}", next() % 1000)),
                    2 => value.push_str(&format!("\"{number}\"")),
                    3 => value.push_str(["true", "false", "null"][(next() % 3) as usize]),
                    4 => value.push_str("\"2024-03-01\""),
                    5 => value.push_str(&format!(
                        "0.{:0>width$}",
                        next() % 100,
                        width = (next() % 20) as usize
                    )),
                    6 => value.push_str(&(next() as f64 / 7.0).to_string()),
                    _ => value.push_str(&format!("\"x{}\"", next() % 100)),
                }
            }
            value.push('}');
            let wants: Vec<Want> = (0..8)
                .map(|_| [Want::Value, Want::Check, Want::Skip][(next() % 3) as usize])
                .collect();
            if agrees(&value, &wants) {
                read_count += 1;
            }
        }
        // Most generated records are plain enough for the fast path.
        assert!(read_count > 10_000, "fast path read only {read_count}");
    }

    // Guards the key patterns: a name matched by its pattern ends the key exactly where
    // scanning it would, names a record cannot show as they are have no pattern, and a
    // key that only starts like the expected name, or sits too near the record's end for
    // a word, is left to the scan and the lookup.
    #[test]
    fn key_patterns_match_only_whole_keys() {
        let names = [
            "id",
            "fifteen_bytes_1",
            "sixteen_bytes_12",
            "a\"b",
            "a\\b",
            "t\tb",
            "é",
        ];
        let patterns: Vec<bool> = names.iter().map(|n| KeyPattern::new(n).is_some()).collect();
        assert_eq!(patterns, [true, true, false, false, false, false, true]);
        let id = KeyPattern::new("id").unwrap();
        assert!(id.matches(b"id\":12345}", 0));
        assert!(!id.matches(b"idx\":12345}", 0));
        assert!(!id.matches(b"i\":123456}", 0));
        assert!(!id.matches(b"id\":1}", 0), "fewer than eight bytes left");
        let long = KeyPattern::new("fifteen_bytes_1").unwrap();
        assert!(long.matches(b"fifteen_bytes_1\":1}", 0));
        assert!(!long.matches(b"fifteen_bytes_2\":1}", 0));
        assert!(!long.matches(b"fifteen_bytes_1x\":1}", 0));

        let columns: Vec<ColumnDef> = names
            .iter()
            .map(|n| ColumnDef {
                name: n.to_string(),
                ty: ColumnType::BigInt,
                nullable: true,
            })
            .collect();
        let keys = key_patterns(&columns);
        let wants = vec![Want::Value; columns.len()];
        let read_as = |value: &[u8]| {
            let mut fields = vec![Field::NULL; columns.len()];
            let mut text = String::new();
            read(value, &columns, &keys, &wants, &mut fields, &mut text).map(|()| fields)
        };
        let got =
            read_as(br#"{"id":1,"fifteen_bytes_1":2,"sixteen_bytes_12":3,"\u00e9":4,"idx":5}"#);
        // `é` written as an escape is serde_json's to read.
        assert!(got.is_none());
        let got = read_as(
            "{\"id\":1,\"fifteen_bytes_1\":2,\"sixteen_bytes_12\":3,\"é\":4,\"idx\":5}".as_bytes(),
        )
        .unwrap();
        let ints: Vec<Option<i64>> = got
            .iter()
            .map(|f| match f {
                Field::Cell(crate::format::cell::Cell::I64(v)) => Some(*v),
                _ => None,
            })
            .collect();
        assert_eq!(ints, [Some(1), Some(2), Some(3), None, None, None, Some(4)]);
        // A name with a quote: the record's key is `a`, then garbage; not read.
        assert!(read_as(br#"{"a"b":1}"#).is_none());
    }

    // Guards the word-at-a-time scanning (strings and digit runs crossing eight-byte
    // boundaries and the record's end, multi-byte UTF-8, invalid UTF-8 anywhere, numbers at
    // the limits of the digits the fast path takes) against serde_json.
    #[test]
    fn agrees_with_serde_json_across_word_boundaries() {
        let all = [Want::Value; 8];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: [&[u8]; 10] = [
            b"a",
            b"page-07",
            b"\xc3\xa9",
            b"\xf0\x9f\x98\x80",
            b"\xff",
            b"\xc3",
            b" ",
            b"\\n",
            b"\t",
            b"0123456789",
        ];
        let names = ["i", "s", "d", "r", "b", "t", "n", "v", "zz", "\u{e9}"];
        let mut read_count = 0;
        for _ in 0..50_000 {
            let mut value = b"{".to_vec();
            for k in 0..(next() % 5) {
                if k > 0 {
                    value.push(b',');
                }
                if next() % 4 == 0 {
                    value.push(b' ');
                }
                value.push(b'"');
                if next() % 16 == 0 {
                    value.extend_from_slice(pieces[(next() % 10) as usize]);
                } else {
                    value.extend_from_slice(names[(next() % 10) as usize].as_bytes());
                }
                value.extend_from_slice(b"\":");
                match next() % 4 {
                    0 => {
                        value.push(b'"');
                        for _ in 0..(next() % 6) {
                            value.extend_from_slice(pieces[(next() % 10) as usize]);
                        }
                        value.push(b'"');
                    }
                    _ => {
                        if next() % 3 == 0 {
                            value.push(b'-');
                        }
                        let digits = 1 + next() % 20;
                        for _ in 0..digits {
                            value.push(b'0' + (next() % 10) as u8);
                        }
                        if next() % 2 == 0 {
                            value.push(b'.');
                            for _ in 0..(next() % 12) {
                                value.push(b'0' + (next() % 10) as u8);
                            }
                        }
                    }
                }
            }
            value.push(b'}');
            if next() % 8 == 0 {
                value.extend_from_slice(b" \n");
            }
            if agrees(&value, &all) {
                read_count += 1;
            }
        }
        assert!(read_count > 10_000, "fast path read only {read_count}");
        // Numbers at the limits: 18 digits are read, 19 are left to serde_json; -0 is a
        // float; the largest exact significand and one past it.
        for value in [
            r#"{"i":999999999999999999}"#,
            r#"{"i":-999999999999999999}"#,
            r#"{"d":-0}"#,
            r#"{"d":-0.0}"#,
            r#"{"d":0.00000000000000001}"#,
            r#"{"d":900719925474099.2}"#,
            r#"{"i":12345678,"t":123456781234567}"#,
        ] {
            assert!(agrees(value, &all), "not read: {value}");
        }
        for value in [
            r#"{"i":9223372036854775807}"#,
            r#"{"i":-9223372036854775808}"#,
            r#"{"d":9007199254740993.0}"#,
            r#"{"d":0.000000000000000001}"#,
        ] {
            assert!(fast(value, &all).is_none(), "read {value}");
        }
        // Invalid UTF-8 in a string a column reads, in one no column takes, and in a key.
        for value in [
            &b"{\"s\":\"abcdefgh\xff\"}"[..],
            b"{\"zz\":\"abcdefgh\xc3\"}",
            b"{\"abcdefgh\xe9\":1}",
            b"{\"s\":\"\xc3\xa9\xff\"}",
        ] {
            assert!(fast(value, &all).is_none());
        }
        assert!(agrees(
            "{\"s\":\"\u{e9}t\u{e9} \u{1f600} abcdefghij\"}",
            &all
        ));
        assert!(agrees(
            "{\"zz\":\"\u{e9}t\u{e9}\",\"\u{e9}\":\"\u{e9}\"}",
            &all
        ));
    }
}
